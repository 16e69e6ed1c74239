/* fuzz_conf: conf_load on the input written to a temporary file */
#include "config.h"

#include <sys/stat.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sanitizer/common_interface_defs.h>

#include "conf.h"
#include "crypto.h"

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* a private directory with the config and key files it may name */
static char	dir[64], path[96];
static int	devnull = -1, saved_stderr = -1;

static const struct {
	const char	*name;
	const char	*data;
} keys[] = {
	{ "anon-key", "sb_publishable_fuzzfuzzfuzzfuzzfuzz\n" },
	{ "service-key", "sb_secret_fuzzfuzzfuzzfuzzfuzzfuzz\n" },
	/* {"alg":"HS256","typ":"JWT"} {"role":"anon"} */
	{ "anon-jwt", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
	    "eyJyb2xlIjoiYW5vbiJ9.c2lnbmF0dXJlLW5vdC1jaGVja2VkLWF0LWFsbC1"
	    "ub3BlIQ\n" },
	{ "jwt-secret", "super-secret-jwt-token-with-at-least-32-characters" },
	{ "password", "hunter2\r\n" },
	{ "refresh-token", "rt-fuzz" },
	{ "world-readable", "sb_publishable_open" },
	{ "empty", "" },
};

static void
cleanup(void)
{
	char	p[160];
	size_t	i;

	if (dir[0] == '\0')
		return;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, keys[i].name);
		unlink(p);
	}
	unlink(path);
	rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char	*tmp;
	char		 p[160];
	size_t		 i, n;
	int		 fd;

	(void)argc;
	(void)argv;
	if (crypto_setup() == -1)
		abort();
	/* only the file counts: no environment fallbacks or credentials */
	unsetenv("SUPABASE_URL");
	unsetenv("SUPABASE_KEY");
	unsetenv("CREDENTIALS_DIRECTORY");
	unsetenv("JOURNAL_STREAM");
	if ((tmp = getenv("TMPDIR")) == NULL || strlen(tmp) > 32)
		tmp = "/tmp";
	snprintf(dir, sizeof(dir), "%s/fuzz_conf.XXXXXX", tmp);
	if (mkdtemp(dir) == NULL)
		abort();
	atexit(cleanup);
	snprintf(path, sizeof(path), "%s/supagate.conf", dir);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, keys[i].name);
		if ((fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		    strcmp(keys[i].name, "world-readable") == 0 ? 0644 :
		    0600)) == -1)
			abort();
		n = strlen(keys[i].data);
		if (write(fd, keys[i].data, n) != (ssize_t)n)
			abort();
		fchmod(fd, strcmp(keys[i].name, "world-readable") == 0 ?
		    0644 : 0600);
		close(fd);
	}
	/*
	 * conf_load prints every error to stderr: it goes to /dev/null
	 * while conf_load runs, sanitizer reports to the real stderr.
	 */
	if ((devnull = open("/dev/null", O_WRONLY | O_CLOEXEC)) == -1 ||
	    (saved_stderr = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3)) == -1)
		abort();
	__sanitizer_set_report_fd((void *)(intptr_t)saved_stderr);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf	*c;
	FILE		*f;
	size_t		 i;

	if ((f = fopen(path, "w")) == NULL)
		abort();
	if (size > 0 && fwrite(data, 1, size, f) != size)
		abort();
	if (fclose(f) != 0)
		abort();
	fflush(stderr);
	if (dup2(devnull, STDERR_FILENO) == -1)
		abort();
	c = conf_load(path);
	fflush(stderr);
	if (dup2(saved_stderr, STDERR_FILENO) == -1)
		abort();
	if (c != NULL) {
		/* a loaded config keeps the documented invariants */
		if (c->refcnt != 1 || c->nlisten == 0 ||
		    c->nlisten > CONF_LISTEN_MAX)
			abort();
		for (i = 0; i < c->nlisten; i++)
			if (memchr(c->listen[i].host, '\0',
			    sizeof(c->listen[i].host)) == NULL ||
			    c->listen[i].port < 0 || c->listen[i].port > 65535)
				abort();
		for (i = 0; i < c->nexpose; i++)
			if (c->expose[i].prefix == NULL ||
			    c->expose[i].prefix[0] != '/')
				abort();
		if (c->upstream != NULL && c->upstream[0] != '\0' &&
		    c->upstream[strlen(c->upstream) - 1] == '/')
			abort();
		conf_unref(conf_ref(c));
		conf_unref(c);
	}
	return 0;
}
