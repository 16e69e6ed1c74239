/* log: stderr logging with journald priority prefixes */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static int	verbose;
static int	journal;

static char	logbuf[64 * 1024];

void
log_init(int verbosity)
{
	verbose = verbosity;
	journal = getenv("JOURNAL_STREAM") != NULL;
	/* whole lines, written once per event-loop turn (log_flush) */
	setvbuf(stderr, logbuf, _IOFBF, sizeof(logbuf));
}

void
log_flush(void)
{
	fflush(stderr);
}

int
log_verbosity(void)
{
	return verbose;
}

static void
vlog(int prio, const char *tag, int with_errno, const char *fmt, va_list ap)
{
	char	msg[2048];
	int	saved = errno;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (journal)
		fprintf(stderr, "<%d>%s%s%s\n", prio, msg,
		    with_errno ? ": " : "", with_errno ? strerror(saved) : "");
	else
		fprintf(stderr, "supagate: %s%s%s%s\n", tag, msg,
		    with_errno ? ": " : "", with_errno ? strerror(saved) : "");
	errno = saved;
}

#define LOGFN(name, prio, tag, en, cond)			\
	void							\
	name(const char *fmt, ...)				\
	{							\
		va_list	ap;					\
		if (!(cond))					\
			return;					\
		va_start(ap, fmt);				\
		vlog(prio, tag, en, fmt, ap);			\
		va_end(ap);					\
	}

LOGFN(log_warn, 4, "warning: ", 1, 1)
LOGFN(log_warnx, 4, "warning: ", 0, 1)
LOGFN(log_info, 6, "", 0, 1)
LOGFN(log_debug, 7, "debug: ", 0, verbose > 0)
LOGFN(log_access, 6, "", 0, 1)

void
fatal(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog(2, "fatal: ", 1, fmt, ap);
	va_end(ap);
	fflush(stderr);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog(2, "fatal: ", 0, fmt, ap);
	va_end(ap);
	fflush(stderr);
	exit(1);
}
