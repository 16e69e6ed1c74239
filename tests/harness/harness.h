/*
 * harness: start/stop supagate, fakeup, the Auth emulator and the loopback
 * stack; raw and libcurl clients, JSON
 */
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
/*
 * Stop supagate as h_stop() does; 0 if it exited 0 by itself, else -1
 * after "<prog>: supagate did not exit cleanly ..." on stderr.
 */
int h_gate_stop(struct h_proc *, int wait_ms, const char *prog);
/*
 * Start the Auth emulator (tests/emu/auth.mjs from $srcdir, else ".")
 * on 127.0.0.1:0 with the JWT secret in dir/jwt-secret; it writes
 * dir/emu.port and dir/emu.log, and dies with the thread that started
 * it.  Waits (bounded by wait_ms) for the port.  0 or -1; p->dir stays
 * empty, so h_stop() leaves dir alone.
 */
int h_emu_start(struct h_proc *, const char *dir, int wait_ms);
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
/*
 * h_req() with the headers hdrs, then extra (both NULL-terminated, may
 * be NULL; 63 in all at most), body (NULL: none) and a 30 s timeout.
 */
int h_call(struct h_resp *, int port, const char *method, const char *target,
    const char *const *hdrs, const char *const *extra, const char *body);
void h_resp_free(struct h_resp *);
/* value of the first header name in the final response (NULL: none) */
const char *h_resp_header(const struct h_resp *, const char *name,
    char *buf, size_t buflen);
/* how many times the header occurs in the final response */
int h_resp_header_count(const struct h_resp *, const char *name);
/* h_resp_header() into a ring of static buffers; "(none)" if absent */
const char *h_hdr(const struct h_resp *, const char *name);

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

/*
 * Poll supagate_inflight_requests at port until it is at most max, up
 * to tries times 50 ms apart.  Returns the last value read, -1 if none.
 */
double h_wait_inflight(int port, double max, int tries);

/* the loopback stack (tests/stack), one per test binary */
struct h_stack {
	char	dir[H_PATH_MAX];	/* its temp dir: logs, stack.env */
	char	srcdir[H_PATH_MAX];	/* the source tree, with tests/stack */
	/* from DIR/stack.env; "" and 0 where absent */
	char	rest_url[128];
	char	functions_url[128];
	char	auth_url[128];
	char	storage_url[128];
	char	pghost[H_PATH_MAX];
	char	jwt_secret_file[H_PATH_MAX];
	char	anon_key_file[H_PATH_MAX];
	char	service_key_file[H_PATH_MAX];
	char	mkjwt[H_PATH_MAX];
	int	rest_port, functions_port, auth_port, storage_port, pgport;
	/* the suite failed (1 until h_stack_main sets it): keep the logs */
	int	failed;
};
extern struct h_stack h_stack;

/*
 * Start the stack: tests/stack/stack-up from SUPAGATE_SRCDIR (else
 * $srcdir, else ".") into a new $TMPDIR/<tag>.XXXXXX, output in
 * stack-up.out (copied to stderr on failure), then fill h_stack.  Needs
 * PostgREST from node_modules (npm ci).  From the call on, exit and
 * SIGINT/SIGTERM in this process (not in Check's test children) run
 * before_down (may be NULL), then stack-down; the dir goes unless H_KEEP
 * is set, and after a failure only its logs stay.  NULL on success, else
 * why not (a static string).
 */
const char *h_stack_up(const char *tag, void (*before_down)(void));
/*
 * "<program>: msg" on stderr, then exit(EXIT_FAILURE): for set-up
 * failures (the stack and before_down are stopped at exit).
 */
void h_die(const char *msg) __attribute__((noreturn));
/* h_gate_start() with conf (no @UP@, no extra argv), else h_die() */
void h_stack_gate_start(struct h_proc *, const char *name, const char *conf);
/*
 * Stop supagate at the end of a stack suite as h_stop() does; after a
 * failure (h_stack.failed) its log goes to stderr and its dir stays.
 * Returns h_stop()'s status, -1 if it was not running.
 */
int h_stack_gate_stop(struct h_proc *, int wait_ms, int *killed);
/* value of key in DIR/stack.env into buf; 0, or -1 if absent ("") */
int h_stack_env(const char *key, char *buf, size_t n);
/* how many times PostgREST logged "Schema cache loaded" */
int h_stack_schema_loads(void);
/*
 * A JWT (role authenticated, sub, email unless NULL, ttl_s) signed with
 * the stack's secret by its mkjwt, into out; 0 or -1 (message on stderr).
 */
int h_stack_jwt(char *out, size_t n, const char *sub, const char *email,
    int ttl_s);
/* sh -c cmd (stdio flushed first); its exit status, -1 if none */
int h_run(const char *cmd);
/* the port of "http://host:port" (after the last ':'); 0 if none */
int h_url_port(const char *url);
/*
 * A secret file's contents, trailing line ends cut, into buf; 0, or -1
 * if it is unreadable, empty or longer than n - 1.
 */
int h_read_secret(const char *path, char *buf, size_t n);

/* Check */
struct Suite;
/*
 * The main() of a suite against one fakeup: start up, run the suite mk
 * makes, stop up.  EXIT_SUCCESS if every test passed.
 */
int h_fakeup_main(struct h_proc *up, struct Suite *(*mk)(void));
/*
 * The main() of a suite against the stack: setup() (it calls
 * h_stack_up()), run the suite mk makes, keep its result in
 * h_stack.failed.  EXIT_SUCCESS if every test passed.
 */
int h_stack_main(void (*setup)(void), struct Suite *(*mk)(void));

/* monotonic milliseconds (for deadlines only; tests assert no timing) */
int64_t h_now_ms(void);
/* sleep ms */
void h_sleep_ms(long ms);
/* printf into a static ring of buffers (test convenience) */
const char *h_fmt(const char *, ...) __attribute__((format(printf, 1, 2)));

#endif
