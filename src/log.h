/* log: levels, stderr with journald priority prefixes, redaction */
#ifndef SUPAGATE_LOG_H
#define SUPAGATE_LOG_H

#include <stdarg.h>
#include <stdnoreturn.h>

#define LOG_FMT(a, b) __attribute__((format(printf, a, b)))

/* verbosity: 0 warnings and info, 1 and more debug; buffers stderr */
void log_init(int verbosity);
/* write buffered lines out (the event loop calls it every turn) */
void log_flush(void);
int log_verbosity(void);
/* append ": strerror(errno)" */
void log_warn(const char *, ...) LOG_FMT(1, 2);
void log_warnx(const char *, ...) LOG_FMT(1, 2);
void log_info(const char *, ...) LOG_FMT(1, 2);
void log_debug(const char *, ...) LOG_FMT(1, 2);
noreturn void fatal(const char *, ...) LOG_FMT(1, 2);
noreturn void fatalx(const char *, ...) LOG_FMT(1, 2);
/* one access line, already formatted (and redacted) by the caller */
void log_access(const char *, ...) LOG_FMT(1, 2);

#endif
