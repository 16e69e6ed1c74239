/* harness: start/stop supagate and fakeup, raw and libcurl clients, JSON */
#ifndef SUPAGATE_TESTS_HARNESS_H
#define SUPAGATE_TESTS_HARNESS_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "pattern.h"

#define H_PATH_MAX	512
#define H_BODY_MAX	(1024 * 1024)	/* body kept by h_req; more is counted */
#define H_HDRS_MAX	(64 * 1024)
#define H_RAW_MAX	(256 * 1024)

/* test keys, made once by h_init(); legacy keys are HS256 JWTs */
struct h_keys {
	char	secret[64];		/* the fake project's JWT secret */
	char	anon[512];		/* legacy anon JWT (role anon) */
	char	service[512];		/* legacy service JWT (service_role) */
	char	user[512];		/* a user's access token (authenticated) */
	char	user2[512];		/* another user */
	char	publishable[80];	/* sb_publishable_... */
	char	secret_key[80];		/* sb_secret_... */
};
extern struct h_keys h_keys;

/* a child process: supagate or fakeup */
struct h_proc {
	pid_t	pid;			/* -1: not running */
	int	port;
	char	dir[H_PATH_MAX];	/* private temp dir, holds the log */
	char	log[H_PATH_MAX + 16];	/* its stdout and stderr */
};

/*
 * Once per test binary: curl_global_init, sodium, keys, raise
 * RLIMIT_NOFILE, ignore SIGPIPE.  Reads SUPAGATE_BIN and FAKEUP_BIN.
 */
void h_init(void);

/*
 * Children start without SUPABASE_URL, SUPABASE_KEY, NOTIFY_SOCKET and
 * CREDENTIALS_DIRECTORY; this sets (value NULL: clears) one variable for
 * the children started after the call.
 */
void h_child_env(const char *name, const char *value);
/* start fakeup on 127.0.0.1:0; 0 or -1 (message on stderr) */
int h_fakeup_start(struct h_proc *);
/*
 * Start "supagate -f conf" with conf made from text: "@DIR@" becomes a
 * private dir that holds the key files anon.key (legacy anon JWT),
 * service.key (legacy service JWT), publishable.key, secret.key (all
 * 0600) and state/; "@UP@" becomes "http://127.0.0.1:<up_port>".
 * extra_argv (NULL-terminated, may be NULL) is added, e.g. "-d".  Waits
 * (bounded) for "supagate: listening on 127.0.0.1:PORT".  0 or -1.
 */
int h_gate_start(struct h_proc *, const char *text, int up_port,
    const char *const *extra_argv);
/*
 * SIGTERM, wait up to wait_ms, then SIGKILL.  Returns the wait status
 * (as from waitpid) or -1; *killed is set when SIGKILL was needed.
 */
int h_stop(struct h_proc *, int wait_ms, int *killed);
/* 1 if the process still runs (not a zombie) */
int h_alive(const struct h_proc *);
/* VmHWM/VmRSS/... of pid in KiB, -1 if unknown */
long h_vm_kb(pid_t, const char *field);
/*
 * For tests that bound supagate's peak RSS: under AddressSanitizer the
 * quarantine of freed memory (256 MiB by default) would be measured
 * too, so supagate processes started after this call run without it.
 * Use-after-free detection keeps its quarantine in every other test.
 */
void h_rss_tests(void);
/* reset VmHWM to the current RSS (clear_refs 5); 0 or -1 */
int h_reset_hwm(pid_t);
/* read the whole log file into a malloc'd string (NULL on error) */
char *h_slurp(const char *path, size_t *len);
/* print the last n bytes of a log to stderr (for failures) */
void h_dump_log(const struct h_proc *, size_t n);

/* a response from h_req() */
struct h_resp {
	long	 status;		/* 0: transport error */
	int	 curl_code;		/* CURLcode */
	char	 err[256];
	char	*hdrs;			/* the final response's header block */
	size_t	 hdrs_len;
	char	*body;			/* NUL-terminated, at most H_BODY_MAX */
	size_t	 body_len;
	uint64_t body_total;		/* every body byte received */
	struct pattern_sum sum;		/* over every body byte */
};

/* request options for h_req(); zero-initialise */
struct h_opts {
	const char	*const *hdrs;	/* "Name: value", NULL-terminated */
	const void	*body;		/* with body_len: Content-Length */
	size_t		 body_len;
	int		 has_body;	/* send body (even if empty) */
	int		 chunked;	/* send body chunked (unknown length) */
	int		 expect100;	/* keep curl's Expect: 100-continue */
	long		 timeout_ms;	/* default 20000 */
	const char	*host;		/* connect to 127.0.0.1 with this Host */
};

/*
 * One request to http://127.0.0.1:port<target> with method (HEAD uses
 * NOBODY).  0 if an HTTP response arrived, -1 otherwise (r->err says).
 */
int h_req(struct h_resp *, int port, const char *method, const char *target,
    const struct h_opts *);
/* shorthand: GET with no options */
int h_get(struct h_resp *, int port, const char *target);
void h_resp_free(struct h_resp *);
/* value of the first header name in the final response (NULL: none) */
const char *h_resp_header(const struct h_resp *, const char *name,
    char *buf, size_t buflen);
/* how many times the header occurs in the final response */
int h_resp_header_count(const struct h_resp *, const char *name);

/* a raw exchange over one TCP connection */
struct h_raw_resp {
	int	 status;		/* final status; 0: none */
	int	 interim;		/* a 1xx status seen before it */
	int	 closed;		/* the server closed the connection */
	int	 reset;			/* ECONNRESET/EPIPE seen */
	int	 timed_out;		/* read deadline passed */
	char	 buf[H_RAW_MAX + 1];	/* everything received */
	size_t	 len;
	const char *body;		/* into buf, after the final headers */
	size_t	 body_len;
};

#define H_RAW_SHUT	0x1	/* shutdown(SHUT_WR) after sending */
#define H_RAW_HEAD	0x2	/* the request is HEAD: no body expected */
#define H_RAW_CLOSE	0x4	/* read until the server closes */
#define H_RAW_INTERIM	0x8	/* stop after a 1xx interim response */

/*
 * Connect to 127.0.0.1:port, send len bytes of req, read one complete
 * response (Content-Length, chunked, or until close) within timeout_ms.
 * Returns the final status, 0 if none arrived, -1 if connect failed.
 */
int h_raw(int port, const void *req, size_t len, unsigned flags,
    int timeout_ms, struct h_raw_resp *);
/* open a connected socket to 127.0.0.1:port (blocking); -1 on error */
int h_connect(int port);
/* send all bytes with a deadline; 0 or -1 */
int h_send_all(int fd, const void *, size_t, int timeout_ms);
/* read one response from fd as h_raw() does */
int h_raw_read(int fd, unsigned flags, int timeout_ms, struct h_raw_resp *);

/* JSON helpers (cJSON behind them) */
/* string field of a top-level object into buf; -1 if absent/not string */
int h_json_str(const char *json, const char *field, char *buf, size_t n);
/* number field; -1 if absent */
int h_json_num(const char *json, const char *field, double *out);
/* fakeup echo: how many request headers named name (any case) */
int h_echo_hdr_count(const char *json, const char *name);
/* fakeup echo: the idx-th value of header name into buf; -1 if none */
int h_echo_hdr(const char *json, const char *name, int idx, char *buf,
    size_t n);
/* check a 4xx/5xx JSON error: status, "code" and a "message"; 0 if ok */
int h_is_error(const struct h_resp *, long status, const char *code);

/*
 * Metric value from /_supagate/metrics at port: name and labels given
 * as "k=v,k=v" (any order, all must match, no other labels).  Returns
 * 0 and sets *v, or -1 if absent or unreachable.
 */
int h_metric(int port, const char *name, const char *labels, double *v);
/* the metric from an already fetched metrics text */
int h_metric_in(const char *text, const char *name, const char *labels,
    double *v);

/* monotonic milliseconds (for deadlines only; tests assert no timing) */
int64_t h_now_ms(void);
/* sleep ms */
void h_sleep_ms(long ms);
/* printf into a static ring of buffers (test convenience) */
const char *h_fmt(const char *, ...) __attribute__((format(printf, 1, 2)));

#endif
