/*
 * check_session_e2e: session mode through the whole daemon (issue 5).
 *
 * supagate runs as a process in front of the Auth emulator
 * (tests/emu/auth.mjs) and a REST upstream: fakeup (it echoes the
 * Authorization it received), a tiny 401 responder in this file, or the
 * real loopback stack (PostgreSQL + PostgREST) for supabase-js.
 *
 *   concurrency	500 keyless clients across several 3 s expiries: one
 *			refresh per expiry, every one a rotation, no 401, every
 *			token sent upstream still valid
 *   replay		upstream 401 invalid_token: GET replayed once, POST not
 *   revoke		revoked session: re-login with a password, else 503
 *			session_lost and health 503
 *   breaker		429 on /token for 30 s: at most the breaker's calls
 *   kill9		kill -9 at random moments, also between upstream's
 *			rotation and supagate's store write; tokens never in
 *			plaintext in state-dir
 *   supabase_js	supabase-js with a placeholder key reads exactly the
 *			session user's RLS rows (tests/conformance/session.mjs)
 *
 * Only 127.0.0.1; no timing assertions (every wait is a bounded poll).
 * SESSION_E2E_KILL_ROUNDS sets the kill -9 rounds (default 50, issue 5's
 * "across 50 refresh cycles"; max 50).
 * H_KEEP=1 keeps the temp dirs.
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <check.h>
#include <cJSON.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "ck_run.h"
#include "harness.h"

#define EMAIL		"e2e@example.com"
#define PASSWORD	"e2e-correct-horse-battery"
#define OTHER_EMAIL	"e2e-other@example.com"

static char	 tdir[256];
static int	 emu_port;
static struct h_proc emu_proc = { .pid = -1 };
static struct h_proc fake = { .pid = -1 };

/* every supagate a test started, killed at exit (also after a failure) */
#define GATES_MAX	4
static struct h_proc	*live_gates[GATES_MAX];

/* ---- small helpers ---------------------------------------------------- */

static int64_t
wall_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *
tpath(const char *name)
{
	return h_fmt("%s/%s", tdir, name);
}

static void
put_file(const char *name, const char *text, mode_t mode)
{
	int	fd;

	fd = open(tpath(name), O_WRONLY | O_CREAT | O_TRUNC, mode);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	fchmod(fd, mode);
	close(fd);
}

static int
contains(const char *hay, size_t len, const char *needle)
{
	return needle != NULL && needle[0] != '\0' && memmem(hay, len, needle,
	    strlen(needle)) != NULL;
}

/* exp, iat and session_id of a JWT (unverified); 0 or -1 */
static int
jwt_claims(const char *jwt, int64_t *exp, int64_t *iat, char *sid, size_t n)
{
	const char	*a, *b;
	unsigned char	 bin[4096];
	size_t		 blen;
	cJSON		*j, *v;
	int		 rc = -1;

	if ((a = strchr(jwt, '.')) == NULL || (b = strchr(a + 1, '.')) == NULL)
		return -1;
	if (sodium_base642bin(bin, sizeof(bin) - 1, a + 1, (size_t)(b - a - 1),
	    NULL, &blen, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		return -1;
	bin[blen] = '\0';
	if ((j = cJSON_Parse((char *)bin)) == NULL)
		return -1;
	if (cJSON_IsNumber(v = cJSON_GetObjectItem(j, "exp"))) {
		*exp = (int64_t)v->valuedouble;
		rc = 0;
	}
	if (iat != NULL && cJSON_IsNumber(v = cJSON_GetObjectItem(j, "iat")))
		*iat = (int64_t)v->valuedouble;
	if (sid != NULL && n > 0) {
		sid[0] = '\0';
		if (cJSON_IsString(v = cJSON_GetObjectItem(j, "session_id")))
			snprintf(sid, n, "%s", v->valuestring);
	}
	cJSON_Delete(j);
	return rc;
}

/* a growing set of strings (tokens seen), deduplicated */
struct strset {
	char	**s;
	size_t	  n, cap;
};

static void
strset_add(struct strset *set, const char *v)
{
	size_t	i;

	if (v == NULL || v[0] == '\0')
		return;
	for (i = 0; i < set->n; i++)
		if (strcmp(set->s[i], v) == 0)
			return;
	if (set->n == set->cap) {
		set->cap = set->cap ? set->cap * 2 : 32;
		set->s = realloc(set->s, set->cap * sizeof(*set->s));
		ck_assert_ptr_nonnull(set->s);
	}
	ck_assert_ptr_nonnull(set->s[set->n++] = strdup(v));
}

static void
strset_free(struct strset *set)
{
	size_t	i;

	for (i = 0; i < set->n; i++)
		free(set->s[i]);
	free(set->s);
	memset(set, 0, sizeof(*set));
}

/* ---- processes -------------------------------------------------------- */

/*
 * What a test leaves behind when it fails: Check ends a failed test's
 * process with _exit() and kills its process group, so the dirs are
 * recorded in memory shared with the runner, whose teardown (after each
 * test case; the next test of a case does it too) shows the logs and
 * removes them.
 */
struct leftovers {
	char	tdir[256];
	char	gdirs[GATES_MAX][H_PATH_MAX];
};
static struct leftovers	*left;

static void
show_tail(const char *path, size_t n)
{
	char	*s;
	size_t	 len;

	if ((s = h_slurp(path, &len)) == NULL)
		return;
	fprintf(stderr, "---- %s ----\n%s\n", path, s + (len > n ? len - n :
	    0));
	free(s);
}

static void
runner_teardown(void)
{
	int	i, keep = getenv("H_KEEP") != NULL;

	for (i = 0; i < GATES_MAX; i++) {
		if (left->gdirs[i][0] == '\0')
			continue;
		show_tail(h_fmt("%s/log", left->gdirs[i]), 3000);
		if (!keep)
			(void)!system(h_fmt("rm -rf '%s'", left->gdirs[i]));
		left->gdirs[i][0] = '\0';
	}
	if (left->tdir[0] != '\0') {
		show_tail(h_fmt("%s/emu.log", left->tdir), 2000);
		if (!keep)
			(void)!system(h_fmt("rm -rf '%s'", left->tdir));
		left->tdir[0] = '\0';
	}
}

static void
left_gate(const struct h_proc *g, int gone)
{
	int	i, free_slot = -1;

	for (i = 0; i < GATES_MAX; i++) {
		if (strcmp(left->gdirs[i], g->dir) == 0) {
			if (gone)
				left->gdirs[i][0] = '\0';
			return;
		}
		if (left->gdirs[i][0] == '\0' && free_slot == -1)
			free_slot = i;
	}
	if (!gone && free_slot != -1)
		snprintf(left->gdirs[free_slot], H_PATH_MAX, "%s", g->dir);
}

static void
gate_start(struct h_proc *g, const char *conf)
{
	int	i;

	memset(g, 0, sizeof(*g));
	g->pid = -1;
	static const char *const dbg[] = { "-d", NULL };

	ck_assert_msg(h_gate_start(g, conf, 0, getenv("SESSION_E2E_DEBUG") ?
	    dbg : NULL) == 0, "supagate did not start");
	left_gate(g, 0);
	for (i = 0; i < GATES_MAX; i++)
		if (live_gates[i] == NULL || live_gates[i] == g ||
		    live_gates[i]->pid <= 0) {
			live_gates[i] = g;
			break;
		}
}

/* kill -9 and reap; the harness dir goes, state-dir (ours) stays */
static void
gate_kill9(struct h_proc *g)
{
	int	st;

	ck_assert_int_gt(g->pid, 0);
	kill(g->pid, SIGKILL);
	ck_assert_int_eq(waitpid(g->pid, &st, 0), g->pid);
	ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	g->pid = -1;
	if (getenv("H_KEEP") == NULL)
		(void)!h_run(h_fmt("rm -rf '%s'", g->dir));
	left_gate(g, 1);
}

static void
gate_stop(struct h_proc *g, int dump)
{
	if (g->pid <= 0)
		return;
	if (dump)
		h_dump_log(g, 4000);
	left_gate(g, 1);
	h_stop(g, 5000, NULL);
}

/* the Auth emulator, 127.0.0.1 only, in tdir (made here) */
static void
env_start(int with_fakeup)
{
	h_init();
	runner_teardown();	/* what an earlier failed test left */
	unsetenv("CREDENTIALS_DIRECTORY");
	snprintf(tdir, sizeof(tdir), "/tmp/sge2e.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tdir));
	snprintf(left->tdir, sizeof(left->tdir), "%s", tdir);
	put_file("jwt-secret", h_fmt("%s\n", h_keys.secret), 0600);
	put_file("anon.key", h_fmt("%s\n", h_keys.anon), 0600);
	put_file("pw", PASSWORD "\n", 0600);
	ck_assert_int_eq(mkdir(tpath("state"), 0700), 0);
	ck_assert_msg(h_emu_start(&emu_proc, tdir, 15000) == 0,
	    "the auth emulator did not start");
	emu_port = emu_proc.port;
	if (with_fakeup)
		ck_assert_int_eq(h_fakeup_start(&fake), 0);
}

static void
env_stop(void)
{
	int	i;

	for (i = 0; i < GATES_MAX; i++)
		if (live_gates[i] != NULL)
			gate_stop(live_gates[i], 0);
	if (fake.pid > 0)
		h_stop(&fake, 3000, NULL);
	h_stop(&emu_proc, 5000, NULL);
	emu_port = 0;
	if (tdir[0] != '\0' && getenv("H_KEEP") == NULL)
		(void)!h_run(h_fmt("rm -rf '%s'", tdir));
	tdir[0] = left->tdir[0] = '\0';
}

/* ---- the emulator's control API ---------------------------------------- */

static long
emu_req(int port, const char *method, const char *path, const char *json,
    const char *apikey, char **out)
{
	const char	*hdrs[3];
	struct h_opts	 o;
	struct h_resp	 r;
	long		 status;

	memset(&o, 0, sizeof(o));
	hdrs[0] = "Content-Type: application/json";
	hdrs[1] = apikey != NULL ? h_fmt("apikey: %s", apikey) : NULL;
	hdrs[2] = NULL;
	o.hdrs = hdrs;
	if (json != NULL) {
		o.body = json;
		o.body_len = strlen(json);
		o.has_body = 1;
	}
	ck_assert_int_eq(h_req(&r, port, method, path, &o), 0);
	status = r.status;
	if (out != NULL)
		ck_assert_ptr_nonnull(*out = strdup(r.body ? r.body : ""));
	h_resp_free(&r);
	return status;
}

/* a control call that must answer 200; the body (caller frees) */
static char *
emu(const char *method, const char *path, const char *json)
{
	char	*b;
	long	 st = emu_req(emu_port, method, path, json, NULL, &b);

	ck_assert_msg(st == 200, "%s %s: %ld %s", method, path, st, b);
	return b;
}

static void
emu_do(const char *method, const char *path, const char *json)
{
	free(emu(method, path, json));
}

static int
emu_state(const char *field)
{
	char	*b = emu("GET", "/_emu/state", NULL);
	double	 v = -1;

	ck_assert_msg(h_json_num(b, field, &v) == 0, "no %s in %s", field, b);
	free(b);
	return (int)v;
}

/* a confirmed user; its id into uid */
static void
seed_user(const char *email, const char *pw, char *uid, size_t n)
{
	char	*b = emu("POST", "/_emu/users", h_fmt("{\"email\":\"%s\","
	    "\"password\":\"%s\"}", email, pw));

	if (uid != NULL)
		ck_assert_int_eq(h_json_str(b, "id", uid, n), 0);
	free(b);
}

/*
 * Walk the request log: add every refresh token sent to /token to rts,
 * count /token calls (with fault set: only the faulted ones), and keep
 * the last refresh token sent in last (may be NULL).
 */
static int
emu_token_log(struct strset *rts, const char *fault, char *last, size_t n)
{
	char	*b = emu("GET", "/_emu/requests", NULL), rt[512];
	cJSON	*j = cJSON_Parse(b), *e, *sp, *body, *f;
	int	 count = 0;

	ck_assert_ptr_nonnull(j);
	cJSON_ArrayForEach(e, j) {
		sp = cJSON_GetObjectItem(e, "service_path");
		if (!cJSON_IsString(sp) || strcmp(sp->valuestring, "/token"))
			continue;
		f = cJSON_GetObjectItem(e, "fault");
		if (fault == NULL || (cJSON_IsString(f) &&
		    strcmp(f->valuestring, fault) == 0))
			count++;
		body = cJSON_GetObjectItem(e, "body");
		if (cJSON_IsString(body) && h_json_str(body->valuestring,
		    "refresh_token", rt, sizeof(rt)) == 0) {
			if (rts != NULL)
				strset_add(rts, rt);
			if (last != NULL)
				snprintf(last, n, "%s", rt);
		}
	}
	cJSON_Delete(j);
	free(b);
	return count;
}

/* ---- supagate ------------------------------------------------------- */

/* the lines every session-mode supagate here shares; rest: the REST URL */
static const char *
gate_conf(const char *rest, int with_password, const char *extra)
{
	return h_fmt("listen 127.0.0.1:0\n"
	    "auth-mode session\n"
	    "upstream http://127.0.0.1:%d\n"
	    "rest-upstream %s\n"
	    "auth-upstream http://127.0.0.1:%d\n"
	    "anon-key-file %s/anon.key\n"
	    "state-dir %s/state\n"
	    "%s%s",
	    emu_port, rest, emu_port, tdir, tdir,
	    with_password ? h_fmt("session-email " EMAIL "\n"
	    "session-password-file %s/pw\n", tdir) : "",
	    extra != NULL ? extra : "");
}

/* GET /_supagate/health: the status, the body into buf */
static long
health(int port, char *buf, size_t n)
{
	struct h_resp	r;
	long		st;

	if (h_get(&r, port, "/_supagate/health") != 0) {
		snprintf(buf, n, "(no answer: %s)", r.err);
		h_resp_free(&r);
		return 0;
	}
	st = r.status;
	snprintf(buf, n, "%s", r.body ? r.body : "");
	h_resp_free(&r);
	return st;
}

static int
wait_health(int port, const char *state, int max_ms)
{
	char	b[1024];
	int64_t	end = h_now_ms() + max_ms;

	do {
		health(port, b, sizeof(b));
		if (strstr(b, h_fmt("\"state\":\"%s\"", state)) != NULL)
			return 1;
		h_sleep_ms(25);
	} while (h_now_ms() < end);
	fprintf(stderr, "check_session_e2e: health stays %s\n", b);
	return 0;
}

/*
 * A keyless GET through supagate that never lands in the cache (fakeup
 * echoes the token into the body); the token upstream saw into tok.
 */
static long
echo_get(int port, const char *target, char *tok, size_t n, long tmo_ms)
{
	static const char *const hdrs[] = { "Cache-Control: no-store", NULL };
	struct h_opts	 o;
	struct h_resp	 r;
	char		 a[4096];
	long		 st;

	memset(&o, 0, sizeof(o));
	o.hdrs = hdrs;
	o.timeout_ms = tmo_ms;
	if (tok != NULL)
		tok[0] = '\0';
	if (h_req(&r, port, "GET", target, &o) != 0) {
		h_resp_free(&r);
		return 0;
	}
	st = r.status;
	if (st == 200 && tok != NULL && h_echo_hdr(r.body, "Authorization", 0,
	    a, sizeof(a)) == 0 && strncmp(a, "Bearer ", 7) == 0)
		snprintf(tok, n, "%s", a + 7);
	h_resp_free(&r);
	return st;
}

/* ---- many clients at once (curl multi) -------------------------------- */

struct client {
	CURL		*e;
	char		 url[256];
	char		*buf;
	size_t		 len, cap;
	int64_t		 t0_wall;	/* when the request started */
	int64_t		 due;		/* monotonic: start the next one */
	int		 active, seq;
};

struct load {
	int	 total, n200, n401, n503, nother, nbad, nexpired;
	int64_t	 max_late_ms;
	int64_t	 exps[256];
	int	 nexps;
	char	 first_bad[512], code503[64];
};

static size_t
client_write(char *p, size_t size, size_t nm, void *arg)
{
	struct client	*c = arg;
	size_t		 n = size * nm;

	if (c->len + n + 1 > c->cap) {
		c->cap = (c->len + n + 1) * 2;
		if ((c->buf = realloc(c->buf, c->cap)) == NULL)
			return 0;
	}
	memcpy(c->buf + c->len, p, n);
	c->len += n;
	c->buf[c->len] = '\0';
	return n;
}

static void
load_record(struct load *L, struct client *c, CURLcode cc)
{
	long	 status = 0;
	char	 a[4096], code[64];
	int64_t	 exp = 0;
	int	 i;

	L->total++;
	if (cc == CURLE_OK)
		curl_easy_getinfo(c->e, CURLINFO_RESPONSE_CODE, &status);
	if (status == 401) {
		L->n401++;
		if (L->first_bad[0] == '\0')
			snprintf(L->first_bad, sizeof(L->first_bad), "401: %s",
			    c->buf ? c->buf : "");
		return;
	}
	if (status == 503) {
		L->n503++;
		if (h_json_str(c->buf ? c->buf : "", "code", code,
		    sizeof(code)) != 0)
			snprintf(code, sizeof(code), "(no code)");
		if (L->code503[0] == '\0' || strcmp(L->code503, code) != 0)
			snprintf(L->code503, sizeof(L->code503), "%s", code);
		return;
	}
	if (status != 200) {
		L->nother++;
		if (L->first_bad[0] == '\0')
			snprintf(L->first_bad, sizeof(L->first_bad), "%ld "
			    "(curl %d): %.300s", status, (int)cc,
			    c->buf ? c->buf : "");
		return;
	}
	L->n200++;
	if (c->buf == NULL || h_echo_hdr(c->buf, "Authorization", 0, a,
	    sizeof(a)) != 0 || strncmp(a, "Bearer ", 7) != 0 ||
	    jwt_claims(a + 7, &exp, NULL, NULL, 0) != 0) {
		L->nbad++;
		if (L->first_bad[0] == '\0')
			snprintf(L->first_bad, sizeof(L->first_bad), "200 "
			    "without a session JWT: %.300s", c->buf ?
			    c->buf : "");
		return;
	}
	/* the token must not have expired before the request was sent */
	if (exp * 1000 <= c->t0_wall) {
		L->nexpired++;
		if (c->t0_wall - exp * 1000 > L->max_late_ms)
			L->max_late_ms = c->t0_wall - exp * 1000;
	}
	for (i = 0; i < L->nexps; i++)
		if (L->exps[i] == exp)
			break;
	if (i == L->nexps && L->nexps < 256)
		L->exps[L->nexps++] = exp;
}

/*
 * nclients clients, each sending keyless GETs one after another (a
 * random pause of up to pause_ms between) for dur_ms; all start at
 * once.  Bounded: gives up dur_ms + 60 s after the start.
 */
static void
load_run(int port, int nclients, int64_t dur_ms, int pause_ms,
    struct load *L)
{
	struct curl_slist	*hdrs = NULL;
	struct client		*cl;
	CURLM			*m;
	CURLMsg			*msg;
	int64_t			 now, start = h_now_ms(), end = start + dur_ms;
	int			 i, running, active = 0, q;
	uint32_t		 r;

	memset(L, 0, sizeof(*L));
	ck_assert_ptr_nonnull(cl = calloc((size_t)nclients, sizeof(*cl)));
	hdrs = curl_slist_append(hdrs, "Cache-Control: no-store");
	ck_assert_ptr_nonnull(m = curl_multi_init());
	for (i = 0; i < nclients; i++) {
		ck_assert_ptr_nonnull(cl[i].e = curl_easy_init());
		curl_easy_setopt(cl[i].e, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(cl[i].e, CURLOPT_WRITEFUNCTION, client_write);
		curl_easy_setopt(cl[i].e, CURLOPT_WRITEDATA, &cl[i]);
		curl_easy_setopt(cl[i].e, CURLOPT_PRIVATE, &cl[i]);
		curl_easy_setopt(cl[i].e, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(cl[i].e, CURLOPT_PROXY, "");
		curl_easy_setopt(cl[i].e, CURLOPT_NOPROXY, "*");
		curl_easy_setopt(cl[i].e, CURLOPT_TIMEOUT_MS, 30000L);
		curl_easy_setopt(cl[i].e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
		cl[i].due = start;
	}
	for (;;) {
		now = h_now_ms();
		for (i = 0; i < nclients && now < end; i++) {
			if (cl[i].active || cl[i].due > now)
				continue;
			snprintf(cl[i].url, sizeof(cl[i].url),
			    "http://127.0.0.1:%d/rest/v1/echo?c=%d&n=%d", port,
			    i, cl[i].seq++);
			curl_easy_setopt(cl[i].e, CURLOPT_URL, cl[i].url);
			cl[i].len = 0;
			if (cl[i].buf != NULL)
				cl[i].buf[0] = '\0';
			cl[i].t0_wall = wall_ms();
			cl[i].active = 1;
			active++;
			curl_multi_add_handle(m, cl[i].e);
		}
		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &q)) != NULL) {
			struct client	*c;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
			    (char **)&c);
			load_record(L, c, msg->data.result);
			curl_multi_remove_handle(m, c->e);
			c->active = 0;
			active--;
			randombytes_buf(&r, sizeof(r));
			c->due = h_now_ms() + (pause_ms > 0 ? r % (uint32_t)
			    pause_ms : 0);
		}
		if (now >= end && active == 0)
			break;
		ck_assert_msg(now < end + 60000, "%d clients still waiting "
		    "60 s after the end", active);
		curl_multi_poll(m, NULL, 0, 5, NULL);
	}
	for (i = 0; i < nclients; i++) {
		curl_easy_cleanup(cl[i].e);
		free(cl[i].buf);
	}
	curl_multi_cleanup(m);
	curl_slist_free_all(hdrs);
	free(cl);
}

/* ---- a REST upstream that rejects chosen tokens with 401 --------------- */

/*
 * One thread, one request per connection (Connection: close).  While
 * armed, the next request's bearer token joins the rejected set; a
 * rejected token gets what PostgREST answers for an expired JWT: 401,
 * WWW-Authenticate: Bearer error="invalid_token".  Anything else gets
 * 200 {"method","path","authorization"}.
 */
static struct {
	int		 lfd, port;
	pthread_t	 th;
	int		 running;
	pthread_mutex_t	 mu;
	int		 armed;
	char		*rejected[32];
	int		 nrej;
	int		 requests, rejections, posts;
} rs = { .lfd = -1, .mu = PTHREAD_MUTEX_INITIALIZER };

static void
rs_serve(int fd)
{
	char	 req[65536], method[16] = "", path[1024] = "", tok[4096] = "";
	char	*hend, *line, *eol, *out, *body;
	size_t	 len = 0, need;
	long	 clen = 0;
	int	 i, rejected = 0, outlen;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t	 k;
	cJSON	*o;

	for (;;) {
		if (poll(&pfd, 1, 3000) <= 0)
			return;
		k = recv(fd, req + len, sizeof(req) - 1 - len, 0);
		if (k <= 0)
			return;
		len += (size_t)k;
		req[len] = '\0';
		if ((hend = strstr(req, "\r\n\r\n")) != NULL)
			break;
		if (len >= sizeof(req) - 1)
			return;
	}
	sscanf(req, "%15s %1023s", method, path);
	for (line = strstr(req, "\r\n") + 2; line < hend; line = eol + 2) {
		eol = strstr(line, "\r\n");
		if (strncasecmp(line, "content-length:", 15) == 0)
			clen = strtol(line + 15, NULL, 10);
		else if (strncasecmp(line, "authorization:", 14) == 0) {
			const char *v = line + 14;

			while (*v == ' ')
				v++;
			if (strncmp(v, "Bearer ", 7) == 0 &&
			    (size_t)(eol - v - 7) < sizeof(tok))
				snprintf(tok, (size_t)(eol - v - 7) + 1, "%s",
				    v + 7);
		}
	}
	/* read (and drop) the body */
	need = (size_t)(hend + 4 - req) + (size_t)(clen > 0 ? clen : 0);
	while (len < need && need < sizeof(req)) {
		if (poll(&pfd, 1, 3000) <= 0)
			return;
		if ((k = recv(fd, req + len, sizeof(req) - 1 - len, 0)) <= 0)
			return;
		len += (size_t)k;
	}

	pthread_mutex_lock(&rs.mu);
	rs.requests++;
	if (strcmp(method, "POST") == 0)
		rs.posts++;
	if (rs.armed && tok[0] != '\0' && rs.nrej < 32) {
		rs.rejected[rs.nrej++] = strdup(tok);
		rs.armed = 0;
	}
	for (i = 0; i < rs.nrej; i++)
		if (rs.rejected[i] != NULL && strcmp(rs.rejected[i], tok) == 0)
			rejected = 1;
	if (rejected)
		rs.rejections++;
	pthread_mutex_unlock(&rs.mu);

	if (rejected) {
		body = strdup("{\"code\":\"PGRST301\",\"details\":null,"
		    "\"hint\":null,\"message\":\"JWT expired\"}");
		outlen = asprintf(&out, "HTTP/1.1 401 Unauthorized\r\n"
		    "Content-Type: application/json; charset=utf-8\r\n"
		    "WWW-Authenticate: Bearer error=\"invalid_token\", "
		    "error_description=\"JWT expired\"\r\n"
		    "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
		    strlen(body), body);
	} else {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "method", method);
		cJSON_AddStringToObject(o, "path", path);
		cJSON_AddStringToObject(o, "authorization", tok);
		body = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
		outlen = asprintf(&out, "HTTP/1.1 200 OK\r\n"
		    "Content-Type: application/json\r\n"
		    "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
		    strlen(body), body);
	}
	free(body);
	if (outlen > 0)
		(void)!h_send_all(fd, out, (size_t)outlen, 3000);
	free(out);
}

static void *
rs_main(void *arg)
{
	struct pollfd	pfd;
	int		fd;

	(void)arg;
	while (__atomic_load_n(&rs.running, __ATOMIC_SEQ_CST)) {
		pfd.fd = rs.lfd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		if ((fd = accept(rs.lfd, NULL, NULL)) == -1)
			continue;
		rs_serve(fd);
		shutdown(fd, SHUT_WR);
		close(fd);
	}
	return NULL;
}

static void
rs_start(void)
{
	struct sockaddr_in	sin;
	socklen_t		sl = sizeof(sin);
	int			one = 1;

	ck_assert_int_ne(rs.lfd = socket(AF_INET, SOCK_STREAM, 0), -1);
	setsockopt(rs.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(rs.lfd, (struct sockaddr *)&sin, sizeof(sin)),
	    0);
	ck_assert_int_eq(listen(rs.lfd, 128), 0);
	ck_assert_int_eq(getsockname(rs.lfd, (struct sockaddr *)&sin, &sl), 0);
	rs.port = ntohs(sin.sin_port);
	rs.running = 1;
	ck_assert_int_eq(pthread_create(&rs.th, NULL, rs_main, NULL), 0);
}

static void
rs_stop(void)
{
	if (!rs.running)
		return;
	__atomic_store_n(&rs.running, 0, __ATOMIC_SEQ_CST);
	pthread_join(rs.th, NULL);
	close(rs.lfd);
	rs.lfd = -1;
}

static void
rs_arm(void)
{
	pthread_mutex_lock(&rs.mu);
	rs.armed = 1;
	pthread_mutex_unlock(&rs.mu);
}

static int
rs_get(int *field)
{
	int	v;

	pthread_mutex_lock(&rs.mu);
	v = *field;
	pthread_mutex_unlock(&rs.mu);
	return v;
}

/* a request through supagate to the responder; the token it saw */
static long
rs_call(int port, const char *method, const char *target, char *tok,
    size_t n, struct h_resp *keep)
{
	static const char *const hdrs[] = {
		"Content-Type: application/json", NULL
	};
	struct h_opts	 o;
	struct h_resp	 r;
	long		 st;

	memset(&o, 0, sizeof(o));
	o.hdrs = hdrs;
	if (strcmp(method, "POST") == 0) {
		o.body = "{\"task\":\"x\"}";
		o.body_len = strlen(o.body);
		o.has_body = 1;
	}
	ck_assert_int_eq(h_req(&r, port, method, target, &o), 0);
	st = r.status;
	if (tok != NULL) {
		tok[0] = '\0';
		if (st == 200)
			ck_assert_int_eq(h_json_str(r.body, "authorization",
			    tok, n), 0);
	}
	if (keep != NULL)
		*keep = r;
	else
		h_resp_free(&r);
	return st;
}

static double
metric(int port, const char *name)
{
	double	v = -1;

	ck_assert_msg(h_metric(port, name, "", &v) == 0, "no metric %s",
	    name);
	return v;
}

/*
 * Sign in, stop, and start again from the stored session.  supagate
 * ignores a 401 for 10 s after a sign-in or refresh (REJECT_MIN_MS in
 * src/session.c); a resumed session has had none, so a 401 acts at once.
 */
static void
gate_start_resumed(struct h_proc *g, const char *text)
{
	char	*conf = strdup(text);	/* h_fmt's buffers get reused */

	ck_assert_ptr_nonnull(conf);
	gate_start(g, conf);
	ck_assert_msg(wait_health(g->port, "valid", 15000), "no session");
	gate_stop(g, 0);
	gate_start(g, conf);
	ck_assert_msg(wait_health(g->port, "valid", 15000), "not resumed");
	free(conf);
	/* the emulator's JWTs of one second are byte-identical: a refresh
	 * must not hand back the very token upstream refused */
	h_sleep_ms(1100);
}

/* ---- concurrency ------------------------------------------------------ */

#define LIFETIME_S	3
#define LOAD_CLIENTS	500
#define LOAD_MS		9000

START_TEST(concurrent_500_across_expiries)
{
	struct h_proc	 g;
	struct load	 L;
	char		 hb[1024];
	int64_t		 t0, t1, d;
	int		 req0, rot0, nreq, nrot, lo, hi;

	env_start(1);
	seed_user(EMAIL, PASSWORD, NULL, 0);
	emu_do("POST", "/_emu/config", h_fmt("{\"token_lifetime\":%d}",
	    LIFETIME_S));
	gate_start(&g, gate_conf(h_fmt("http://127.0.0.1:%d", fake.port), 1,
	    "max-connections 2000\nmax-connections-per-peer 1000\n"));
	ck_assert_msg(wait_health(g.port, "valid", 15000), "no session");

	req0 = emu_state("refresh_requests");
	rot0 = emu_state("refresh_rotations");
	t0 = h_now_ms();
	load_run(g.port, LOAD_CLIENTS, LOAD_MS, 200, &L);
	t1 = h_now_ms();
	nreq = emu_state("refresh_requests") - req0;
	nrot = emu_state("refresh_rotations") - rot0;
	d = t1 - t0;
	/* refreshes at 80% of L: D / 0.8L of them, give or take one */
	lo = (int)(d / (LIFETIME_S * 800)) - 1;
	hi = (int)((d + LIFETIME_S * 800 - 1) / (LIFETIME_S * 800)) + 1;
	fprintf(stderr, "concurrency: %d requests in %lld ms (%d ok, %d 401, "
	    "%d 503, %d other, %d bad), %d refreshes (%d rotations), "
	    "%d tokens, %d sent after their exp (latest %lld ms late)\n",
	    L.total, (long long)d, L.n200, L.n401, L.n503, L.nother, L.nbad,
	    nreq, nrot, L.nexps, L.nexpired, (long long)L.max_late_ms);
	health(g.port, hb, sizeof(hb));

	ck_assert_int_ge(L.total, LOAD_CLIENTS);
	ck_assert_msg(L.n401 == 0, "%d client-visible 401s: %s", L.n401,
	    L.first_bad);
	ck_assert_msg(L.n200 == L.total, "%d of %d not 200 (503 %s): %s",
	    L.total - L.n200, L.total, L.code503, L.first_bad);
	ck_assert_msg(L.nbad == 0, "%s", L.first_bad);
	ck_assert_msg(nreq >= lo && nreq <= hi, "%d refreshes in %lld ms "
	    "with %d s tokens, want %d..%d", nreq, (long long)d, LIFETIME_S,
	    lo, hi);
	ck_assert_int_eq(nrot, nreq);
	ck_assert_int_eq(emu_state("refresh_failures"), 0);
	ck_assert_int_eq(emu_state("refresh_reuse_in_interval"), 0);
	ck_assert_int_eq(emu_state("refresh_parent_returns"), 0);
	ck_assert_int_eq(emu_state("refresh_family_revocations"), 0);
	ck_assert_int_eq(emu_state("password_grants"), 1);
	ck_assert_int_eq((int)metric(g.port,
	    "supagate_session_refreshes_total"), emu_state("refresh_requests"));
	ck_assert_int_eq((int)metric(g.port,
	    "supagate_session_refresh_failures_total"), 0);
	ck_assert_msg(L.nexps >= nreq, "%d distinct tokens for %d refreshes",
	    L.nexps, nreq);
	ck_assert_msg(strstr(hb, "\"state\":\"valid\"") != NULL, "%s", hb);
	/* every token upstream got was still valid when it was sent */
	ck_assert_msg(L.nexpired == 0, "%d of %d requests went upstream with "
	    "an access token past its exp claim (up to %lld ms late)",
	    L.nexpired, L.n200, (long long)L.max_late_ms);
	gate_stop(&g, 0);
	env_stop();
}
END_TEST

/* ---- 401 replay ------------------------------------------------------- */

START_TEST(replay_get_not_post)
{
	struct h_proc	 g;
	struct h_resp	 r;
	char		 t1[4096], t2[4096], www[512];
	int		 n;
	long		 st;
	double		 fails;

	env_start(0);
	seed_user(EMAIL, PASSWORD, NULL, 0);
	rs_start();
	gate_start_resumed(&g, gate_conf(h_fmt("http://127.0.0.1:%d",
	    rs.port), 1, NULL));
	ck_assert_int_eq(rs_call(g.port, "GET", "/rest/v1/items?n=1", t1,
	    sizeof(t1), NULL), 200);
	ck_assert_int_gt(strlen(t1), 20);
	ck_assert_int_eq((int)metric(g.port,
	    "supagate_session_replays_total"), 0);

	/* the session's token is refused: refreshed, sent again, 200 */
	rs_arm();
	n = rs_get(&rs.requests);
	st = rs_call(g.port, "GET", "/rest/v1/items?n=2", t2, sizeof(t2),
	    NULL);
	ck_assert_msg(st == 200, "GET with a refused token: %ld, not "
	    "replayed (upstream saw %d requests, refused %d)", st,
	    rs_get(&rs.requests) - n, rs_get(&rs.rejections));
	ck_assert_str_ne(t1, t2);
	ck_assert_int_eq(rs_get(&rs.requests) - n, 2);
	ck_assert_int_eq(rs_get(&rs.rejections), 1);
	ck_assert_int_eq((int)metric(g.port,
	    "supagate_session_replays_total"), 1);
	fails = metric(g.port, "supagate_session_refresh_failures_total");
	ck_assert_int_eq(emu_state("refresh_requests"), 1);
	ck_assert_int_eq(emu_state("refresh_rotations"), 1);
	ck_assert_int_eq(emu_state("password_grants"), 1);

	/* a POST is not replayed: the client sees upstream's 401 */
	rs_arm();
	n = rs_get(&rs.posts);
	ck_assert_int_eq(rs_call(g.port, "POST", "/rest/v1/items", NULL, 0,
	    &r), 401);
	ck_assert_ptr_nonnull(h_resp_header(&r, "WWW-Authenticate", www,
	    sizeof(www)));
	ck_assert_ptr_nonnull(strstr(www, "invalid_token"));
	h_resp_free(&r);
	ck_assert_int_eq(rs_get(&rs.posts) - n, 1);
	ck_assert_int_eq((int)metric(g.port,
	    "supagate_session_replays_total"), 1);
	/*
	 * the refresh after the 401 went out at once: no failed attempt
	 * first (the emulator answered every /token call it got)
	 */
	ck_assert_msg(fails == 0, "%.0f refresh failures: the refresh the 401 "
	    "asked for did not start at once (\"cannot start the /token "
	    "call\" in the log) and waited for the backoff retry", fails);
	gate_stop(&g, 0);
	rs_stop();
	env_stop();
}
END_TEST

/* ---- revoked session -------------------------------------------------- */

START_TEST(revoked_relogin_with_password)
{
	struct h_proc	 g;
	char		 uid[128], t1[4096], t2[4096], s1[128], s2[128];
	int64_t		 exp;

	env_start(0);
	seed_user(EMAIL, PASSWORD, uid, sizeof(uid));
	rs_start();
	gate_start_resumed(&g, gate_conf(h_fmt("http://127.0.0.1:%d",
	    rs.port), 1, NULL));
	ck_assert_int_eq(rs_call(g.port, "GET", "/rest/v1/items?n=1", t1,
	    sizeof(t1), NULL), 200);
	ck_assert_int_eq(emu_state("password_grants"), 1);

	emu_do("POST", "/_emu/revoke", h_fmt("{\"user_id\":\"%s\"}", uid));
	/* upstream refuses the token of the revoked session */
	rs_arm();
	ck_assert_int_eq(rs_call(g.port, "GET", "/rest/v1/items?n=2", t2,
	    sizeof(t2), NULL), 200);
	ck_assert_int_eq(jwt_claims(t1, &exp, NULL, s1, sizeof(s1)), 0);
	ck_assert_int_eq(jwt_claims(t2, &exp, NULL, s2, sizeof(s2)), 0);
	ck_assert_str_ne(s1, s2);		/* a new session */
	ck_assert_int_eq(emu_state("password_grants"), 2);  /* one re-login */
	ck_assert_int_eq(emu_state("refresh_requests"), 1);
	ck_assert_int_eq(emu_state("refresh_failures"), 1);
	/* (this process resumed the session: its only sign-in) */
	ck_assert_int_eq((int)metric(g.port,
	    "supagate_session_logins_total"), 1);
	ck_assert(wait_health(g.port, "valid", 5000));
	gate_stop(&g, 0);
	rs_stop();
	env_stop();
}
END_TEST

START_TEST(revoked_without_password)
{
	struct h_proc	 g;
	struct h_resp	 r;
	struct stat	 st;
	char		 uid[128], t1[4096], hb[1024];
	const char	*bin = getenv("SUPAGATE_BIN");
	int		 calls;

	ck_assert_ptr_nonnull(bin);
	env_start(0);
	seed_user(EMAIL, PASSWORD, uid, sizeof(uid));
	rs_start();
	/* the session comes from "supagate login" on stdin */
	put_file("login.conf", gate_conf(h_fmt("http://127.0.0.1:%d",
	    rs.port), 0, NULL), 0600);
	ck_assert_int_eq(h_run(h_fmt("printf '%%s\\n%%s\\n' " EMAIL " " PASSWORD
	    " | %s login -f %s/login.conf >%s/login.log 2>&1", bin, tdir,
	    tdir)), 0);
	gate_start(&g, gate_conf(h_fmt("http://127.0.0.1:%d", rs.port), 0,
	    NULL));
	ck_assert(wait_health(g.port, "valid", 15000));
	ck_assert_int_eq(rs_call(g.port, "GET", "/rest/v1/items?n=1", t1,
	    sizeof(t1), NULL), 200);
	ck_assert_int_eq(emu_state("password_grants"), 1);

	emu_do("POST", "/_emu/revoke", h_fmt("{\"user_id\":\"%s\"}", uid));
	rs_arm();
	ck_assert_int_eq(rs_call(g.port, "GET", "/rest/v1/items?n=2", NULL, 0,
	    &r), 503);
	ck_assert_msg(h_is_error(&r, 503, "session_lost") == 0, "%s", r.body);
	h_resp_free(&r);
	ck_assert_int_eq(health(g.port, hb, sizeof(hb)), 503);
	ck_assert_msg(strstr(hb, "\"state\":\"failed\"") != NULL, "%s", hb);
	calls = emu_token_log(NULL, NULL, NULL, 0);
	/* and so it stays, without more /token calls */
	ck_assert_int_eq(rs_call(g.port, "GET", "/rest/v1/items?n=3", NULL, 0,
	    &r), 503);
	ck_assert_msg(h_is_error(&r, 503, "session_lost") == 0, "%s", r.body);
	h_resp_free(&r);
	ck_assert_int_eq(rs_call(g.port, "POST", "/rest/v1/items", NULL, 0,
	    &r), 503);
	ck_assert_msg(h_is_error(&r, 503, "session_lost") == 0, "%s", r.body);
	h_resp_free(&r);
	ck_assert_int_eq(emu_token_log(NULL, NULL, NULL, 0), calls);
	ck_assert_int_eq(emu_state("password_grants"), 1);
	ck_assert_int_eq(emu_state("refresh_requests"), 1);
	ck_assert_int_eq(stat(tpath("state/session"), &st), -1);
	ck_assert_int_eq(health(g.port, hb, sizeof(hb)), 503);
	gate_stop(&g, 0);
	rs_stop();
	env_stop();
}
END_TEST

/* ---- 429 for 30 s ----------------------------------------------------- */

#define FAULT_MS	30000

/*
 * The breaker's allowance in a window of w ms: the first call, then
 * gaps of 5 s doubling (Retry-After 1 s is shorter).
 */
static int
breaker_allowance(int64_t w)
{
	int64_t	gap = 5000, t = 0;
	int	n = 1;

	while (t + gap <= w) {
		t += gap;
		gap *= 2;
		n++;
	}
	return n;
}

START_TEST(rate_limited_30s)
{
	struct h_proc	 g;
	struct load	 L;
	char		 tok[4096], hb[1024];
	int64_t		 t0, w, exp, end;
	int		 during, after, allow, grants, ok = 0;

	env_start(1);
	seed_user(EMAIL, PASSWORD, NULL, 0);
	emu_do("POST", "/_emu/config", h_fmt("{\"token_lifetime\":%d}",
	    LIFETIME_S));
	gate_start(&g, gate_conf(h_fmt("http://127.0.0.1:%d", fake.port), 1,
	    NULL));
	ck_assert(wait_health(g.port, "valid", 15000));
	grants = emu_state("password_grants");
	emu_do("DELETE", "/_emu/requests", NULL);

	emu_do("POST", "/_emu/fault", "{\"mode\":\"ratelimit\","
	    "\"retry_after\":1,\"path\":\"/token\"}");
	t0 = h_now_ms();
	/* 20 clients keep asking all the while */
	load_run(g.port, 20, FAULT_MS, 100, &L);
	emu_do("POST", "/_emu/fault", "{\"mode\":\"none\"}");
	w = h_now_ms() - t0;
	during = emu_token_log(NULL, "ratelimit", NULL, 0);
	allow = breaker_allowance(w);
	health(g.port, hb, sizeof(hb));
	fprintf(stderr, "breaker: %d /token calls answered 429 in %lld ms "
	    "(allowance %d); clients: %d requests, %d ok, %d 503 (%s), "
	    "%d 401, %d other, %d with an expired token (up to %lld ms)\n",
	    during, (long long)w, allow, L.total, L.n200, L.n503, L.code503,
	    L.n401, L.nother, L.nexpired, (long long)L.max_late_ms);
	ck_assert_int_ge(during, 1);
	ck_assert_msg(during <= allow, "%d /token calls in %lld ms of 429s, "
	    "the breaker allows %d", during, (long long)w, allow);
	ck_assert_int_eq(emu_token_log(NULL, NULL, NULL, 0), during);
	ck_assert_msg(L.n401 == 0 && L.nother == 0 && L.nbad == 0, "%s",
	    L.first_bad);
	ck_assert_int_gt(L.total, 20);

	/* the fault is gone: the next probe brings the session back */
	end = h_now_ms() + 45000;
	while (h_now_ms() < end && !ok) {
		if (echo_get(g.port, "/rest/v1/echo?after=1", tok, sizeof(tok),
		    20000) == 200 && jwt_claims(tok, &exp, NULL, NULL, 0) == 0
		    && exp * 1000 > wall_ms() &&
		    strstr((health(g.port, hb, sizeof(hb)), hb),
		    "\"state\":\"valid\"") != NULL)
			ok = 1;
		else
			h_sleep_ms(200);
	}
	ck_assert_msg(ok, "no recovery after the 429s: %s", hb);
	after = emu_token_log(NULL, NULL, NULL, 0) - during;
	ck_assert_msg(after >= 1 && after <= 3, "%d /token calls to recover",
	    after);
	ck_assert_int_eq(emu_state("password_grants"), grants);
	ck_assert_int_eq(emu_state("refresh_family_revocations"), 0);
	/* while the token could not be renewed, none went out expired */
	ck_assert_msg(L.nexpired == 0, "%d requests went upstream with an "
	    "access token past its exp claim (up to %lld ms late)",
	    L.nexpired, (long long)L.max_late_ms);
	gate_stop(&g, 0);
	env_stop();
}
END_TEST

/* ---- kill -9 ---------------------------------------------------------- */

#define KILL_LIFETIME_S	2

enum kmode { K_RANDOM, K_ROTATION, K_EARLY, K_STOLEN };

/* the state-dir files as they are now, concatenated */
static char *
snapshot_state(size_t *len, int *nfiles)
{
	DIR		*d;
	struct dirent	*de;
	char		*all = NULL, *f;
	size_t		 n = 0, fl;

	*nfiles = 0;
	ck_assert_ptr_nonnull(d = opendir(tpath("state")));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if ((f = h_slurp(tpath(h_fmt("state/%s", de->d_name)), &fl)) ==
		    NULL)
			continue;
		ck_assert_ptr_nonnull(all = realloc(all, n + fl + 1));
		memcpy(all + n, f, fl);
		n += fl;
		free(f);
		(*nfiles)++;
	}
	closedir(d);
	if (all == NULL)
		ck_assert_ptr_nonnull(all = calloc(1, 1));
	*len = n;
	return all;
}

/* wait (bounded) until supagate serves a session request; its token */
static void
wait_served(int port, char *tok, size_t n, const char *what)
{
	int64_t	end = h_now_ms() + 15000, exp;
	long	st = 0;
	char	hb[1024];

	while (h_now_ms() < end) {
		st = echo_get(port, "/rest/v1/echo?k=1", tok, n, 10000);
		if (st == 200 && jwt_claims(tok, &exp, NULL, NULL, 0) == 0)
			return;
		h_sleep_ms(50);
	}
	health(port, hb, sizeof(hb));
	ck_abort_msg("%s: no session request served (last %ld, health %s)",
	    what, st, hb);
}

/* poll c() until it is true, bounded */
static int
poll_until(int (*c)(void *), void *arg, int max_ms, int step_ms)
{
	int64_t	end = h_now_ms() + max_ms;

	while (!c(arg)) {
		if (h_now_ms() >= end)
			return 0;
		if (step_ms > 0)
			h_sleep_ms(step_ms);
	}
	return 1;
}

static int
fault_used(void *arg)
{
	char	*b = emu("GET", "/_emu/fault", NULL);
	int	 used = strcmp(b, "[]") == 0;

	(void)arg;
	free(b);
	return used;
}

static int	want_val;
#define F_GRANTS	((void *)(uintptr_t)"password_grants")
#define F_ROTATIONS	((void *)(uintptr_t)"refresh_rotations")
#define F_REQUESTS	((void *)(uintptr_t)"refresh_requests")

static int
rotated(void *arg)
{
	return emu_state(arg) >= want_val;
}

/* refresh rt ourselves (as another holder of the token would): the new */
static void
steal_refresh(const char *rt, char *out, size_t n)
{
	char	*b;
	long	 st;

	st = emu_req(emu_port, "POST", "/token?grant_type=refresh_token",
	    h_fmt("{\"refresh_token\":\"%s\"}", rt), h_keys.anon, &b);
	ck_assert_msg(st == 200, "refresh: %ld %s", st, b);
	ck_assert_int_eq(h_json_str(b, "refresh_token", out, n), 0);
	free(b);
}

START_TEST(kill9_rounds)
{
	static const enum kmode	 cycle[] = {
		K_RANDOM, K_ROTATION, K_RANDOM, K_EARLY, K_ROTATION, K_STOLEN
	};
	static const char *const mname[] = {
		"random", "rotation", "early", "stolen"
	};
	struct h_proc	 g;
	struct h_resp	 hr;
	struct stat	 sb;
	struct strset	 rts = { 0 }, ats = { 0 };
	char		*snaps[64], tok[4096], last[512];
	char		 a[512], b2[512], c[512];
	char		*conf, msg[160];
	size_t		 snap_len[64], i, j;
	int		 rounds = 50, r, nsnap = 0, nfiles, grants, revoked = 0;
	int		 parents0, parent_hits = 0, expect_relogin = 0, req0;
	const char	*e = getenv("SESSION_E2E_KILL_ROUNDS");
	enum kmode	 m;
	uint32_t	 rnd;
	int64_t		 t0 = h_now_ms();

	if (e != NULL && atoi(e) > 0)
		rounds = atoi(e) > 50 ? 50 : atoi(e);
	env_start(1);
	seed_user(EMAIL, PASSWORD, NULL, 0);
	emu_do("POST", "/_emu/config", h_fmt("{\"token_lifetime\":%d}",
	    KILL_LIFETIME_S));
	conf = strdup(gate_conf(h_fmt("http://127.0.0.1:%d", fake.port), 1,
	    NULL));
	grants = 1;
	parents0 = emu_state("refresh_parent_returns");

	for (r = 0; r <= rounds; r++) {
		snprintf(msg, sizeof(msg), "round %d (after %s)", r, r == 0 ?
		    "first start" : mname[cycle[(r - 1) % 6]]);
		gate_start(&g, conf);
		wait_served(g.port, tok, sizeof(tok), msg);
		strset_add(&ats, tok);
		if (expect_relogin) {
			/*
			 * the stored refresh token was used up by someone
			 * else: one password sign-in, at the next refresh
			 */
			want_val = grants + 1;
			ck_assert_msg(poll_until(rotated, F_GRANTS, 15000,
			    50), "%s: no password sign-in", msg);
			grants++;
			expect_relogin = 0;
			emu_do("POST", "/_emu/config",
			    "{\"reuse_interval\":10}");
			wait_served(g.port, tok, sizeof(tok), msg);
			strset_add(&ats, tok);
		}
		ck_assert_msg(emu_state("password_grants") == grants,
		    "%s: %d password sign-ins, want %d", msg,
		    emu_state("password_grants"), grants);
		ck_assert_msg(emu_state("refresh_family_revocations") ==
		    revoked, "%s: a refresh token family was revoked", msg);
		/* a cacheable read, so cache.db holds something */
		ck_assert_int_eq(h_get(&hr, g.port, h_fmt("/rest/v1/bytes?"
		    "n=64&r=%d", r)), 0);
		ck_assert_int_eq(hr.status, 200);
		h_resp_free(&hr);
		if (r == rounds)
			break;

		m = cycle[r % 6];
		randombytes_buf(&rnd, sizeof(rnd));
		switch (m) {
		case K_RANDOM:
		case K_STOLEN:
			h_sleep_ms(rnd % (KILL_LIFETIME_S * 900));
			break;
		case K_EARLY:
			break;
		case K_ROTATION:
			/*
			 * between upstream's rotation and supagate's store
			 * write: hold the next /token call, stop supagate
			 * while it waits, let the emulator rotate, kill
			 */
			want_val = emu_state("refresh_rotations") + 1;
			emu_do("POST", "/_emu/fault", "{\"mode\":\"delay\","
			    "\"ms\":400,\"path\":\"/token\",\"count\":1}");
			ck_assert_msg(poll_until(fault_used, NULL, 10000, 2),
			    "%s: no refresh within 10 s", msg);
			kill(g.pid, SIGSTOP);
			ck_assert_msg(poll_until(rotated, F_ROTATIONS, 5000,
			    10), "%s: the held refresh did not rotate", msg);
			parent_hits++;
			break;
		}
		gate_kill9(&g);
		ck_assert_ptr_nonnull(snaps[nsnap] = snapshot_state(
		    &snap_len[nsnap], &nfiles));
		ck_assert_msg(stat(tpath("state/session"), &sb) == 0 &&
		    stat(tpath("state/session.key"), &sb) == 0 &&
		    stat(tpath("state/cache.db"), &sb) == 0, "%s: state-dir "
		    "lacks session, session.key or cache.db (%d files)", msg,
		    nfiles);
		nsnap++;
		emu_token_log(&rts, NULL, last, sizeof(last));
		if (m == K_STOLEN && last[0] != '\0') {
			/*
			 * the last refresh token supagate sent is used
			 * three times elsewhere: what supagate stored is
			 * now neither active nor its parent, and outside
			 * the reuse interval
			 */
			emu_do("POST", "/_emu/config",
			    "{\"reuse_interval\":0}");
			steal_refresh(last, a, sizeof(a));
			steal_refresh(a, b2, sizeof(b2));
			steal_refresh(b2, c, sizeof(c));
			strset_add(&rts, a);
			strset_add(&rts, b2);
			strset_add(&rts, c);
			revoked++;
			expect_relogin = 1;
		}
		emu_do("DELETE", "/_emu/requests", NULL);
	}

	/* the last run: two more refreshes, still no extra sign-in */
	req0 = emu_state("refresh_requests");
	want_val = req0 + 2;
	ck_assert_msg(poll_until(rotated, F_REQUESTS, 15000, 50),
	    "no refreshes after the last restart");
	wait_served(g.port, tok, sizeof(tok), "the end");
	strset_add(&ats, tok);
	ck_assert_int_eq(emu_state("password_grants"), grants);
	ck_assert_int_eq(emu_state("refresh_family_revocations"), revoked);
	emu_token_log(&rts, NULL, NULL, 0);
	/* the kills between rotation and store write were recovered by
	 * the parent-token rule, not by signing in */
	ck_assert_msg(emu_state("refresh_parent_returns") - parents0 >=
	    parent_hits, "%d parent returns for %d rotation kills",
	    emu_state("refresh_parent_returns") - parents0, parent_hits);
	gate_stop(&g, 0);
	ck_assert_ptr_nonnull(snaps[nsnap] = snapshot_state(&snap_len[nsnap],
	    &nfiles));
	nsnap++;

	/* no token in plaintext in any file of state-dir, at any kill */
	ck_assert_int_gt(rts.n, (size_t)rounds / 2);
	ck_assert_int_gt(ats.n, (size_t)rounds / 2);
	for (i = 0; i < (size_t)nsnap; i++) {
		for (j = 0; j < rts.n; j++)
			ck_assert_msg(!contains(snaps[i], snap_len[i],
			    rts.s[j]), "a refresh token in plaintext in "
			    "state-dir (snapshot %zu)", i);
		for (j = 0; j < ats.n; j++)
			ck_assert_msg(!contains(snaps[i], snap_len[i],
			    ats.s[j]) && !contains(snaps[i], snap_len[i],
			    strrchr(ats.s[j], '.') + 1), "an access token in "
			    "plaintext in state-dir (snapshot %zu)", i);
		ck_assert(!contains(snaps[i], snap_len[i], PASSWORD));
		free(snaps[i]);
	}
	fprintf(stderr, "kill9: %d rounds (%d between rotation and store "
	    "write, %d with the token used up elsewhere) in %lld ms; %zu "
	    "refresh and %zu access tokens grepped in %d snapshots\n",
	    rounds, parent_hits, revoked, (long long)(h_now_ms() - t0),
	    rts.n, ats.n, nsnap);
	strset_free(&rts);
	strset_free(&ats);
	free(conf);
	env_stop();
}
END_TEST

/* ---- supabase-js against the real stack ------------------------------- */

/* why the stack is not there; NULL: it is (started in main()) */
static const char	*stack_err = "not started";

START_TEST(supabase_js_rls_rows)
{
	struct h_proc	 g;
	const char	*nm;
	char		 sid[128], oid[128], svc[1024], *b, *out;
	const char	*hdrs[5];
	struct h_opts	 o;
	struct h_resp	 r;
	int		 rc;

	ck_assert_msg(stack_err == NULL, "the stack: %s", stack_err);
	nm = getenv("SUPAGATE_NODE_MODULES");
	h_init();
	runner_teardown();
	snprintf(tdir, sizeof(tdir), "/tmp/sge2e-js.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tdir));
	snprintf(left->tdir, sizeof(left->tdir), "%s", tdir);
	ck_assert_int_eq(mkdir(tpath("state"), 0700), 0);
	put_file("pw", PASSWORD "\n", 0600);
	emu_port = h_stack.auth_port;

	/* two users with rows each (inserted past RLS with the service key) */
	seed_user("js-" EMAIL, PASSWORD, sid, sizeof(sid));
	seed_user("js-" OTHER_EMAIL, PASSWORD, oid, sizeof(oid));
	ck_assert_int_eq(h_read_secret(h_stack.service_key_file, svc,
	    sizeof(svc)), 0);
	hdrs[0] = h_fmt("Authorization: Bearer %s", svc);
	hdrs[1] = h_fmt("apikey: %s", svc);
	hdrs[2] = "Content-Type: application/json";
	hdrs[3] = "Prefer: return=minimal";
	hdrs[4] = NULL;
	memset(&o, 0, sizeof(o));
	o.hdrs = hdrs;
	b = strdup(h_fmt("[{\"user_id\":\"%s\",\"task\":\"js-s one\"},"
	    "{\"user_id\":\"%s\",\"task\":\"js-s two\"},"
	    "{\"user_id\":\"%s\",\"task\":\"js-o one\"}]", sid, sid, oid));
	o.body = b;
	o.body_len = strlen(b);
	o.has_body = 1;
	ck_assert_int_eq(h_req(&r, h_stack.rest_port, "POST", "/todos", &o),
	    0);
	ck_assert_msg(r.status == 201, "insert: %ld %s", r.status, r.body);
	h_resp_free(&r);
	free(b);
	/* short tokens, so the reads span a refresh */
	emu_do("POST", "/_emu/config", h_fmt("{\"token_lifetime\":%d}",
	    LIFETIME_S));

	gate_start(&g, h_fmt("listen 127.0.0.1:0\n"
	    "auth-mode session\n"
	    "rest-upstream %s\n"
	    "auth-upstream %s\n"
	    "anon-key-file %s\n"
	    "state-dir %s/state\n"
	    "session-email js-" EMAIL "\n"
	    "session-password-file %s/pw\n",
	    h_stack.rest_url, h_stack.auth_url, h_stack.anon_key_file, tdir,
	    tdir));
	ck_assert(wait_health(g.port, "valid", 15000));
	rc = h_run(h_fmt("cd '%s' && SUPAGATE_URL=http://127.0.0.1:%d "
	    "EXPECT_USER=%s EXPECT_TASKS='js-s one|js-s two' "
	    "READ_MS=%d SUPAGATE_NODE_MODULES='%s' "
	    "node '%s/tests/conformance/session.mjs' >'%s/js.out' 2>&1",
	    tdir, g.port, sid, LIFETIME_S * 1500, nm ? nm : "",
	    h_stack.srcdir, tdir));
	out = h_slurp(tpath("js.out"), NULL);
	fprintf(stderr, "%s", out ? out : "");
	ck_assert_msg(rc == 0, "session.mjs exited %d", rc);
	ck_assert_ptr_nonnull(strstr(out, "session.mjs: ok"));
	free(out);
	ck_assert_int_ge(emu_state("refresh_requests"), 1);
	gate_stop(&g, 0);
	if (getenv("H_KEEP") == NULL)
		(void)!h_run(h_fmt("rm -rf '%s'", tdir));
	tdir[0] = left->tdir[0] = '\0';
}
END_TEST

static TCase *
tc_new(Suite *s, const char *name)
{
	TCase	*tc = tcase_create(name);

	(void)s;
	tcase_add_unchecked_fixture(tc, NULL, runner_teardown);
	return tc;
}

static Suite *
e2e_suite(void)
{
	Suite	*s = suite_create("session_e2e");
	TCase	*tc;

	tc = tc_new(s, "concurrency");
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, concurrent_500_across_expiries);
	suite_add_tcase(s, tc);

	tc = tc_new(s, "replay");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, replay_get_not_post);
	suite_add_tcase(s, tc);

	tc = tc_new(s, "revoke");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, revoked_relogin_with_password);
	tcase_add_test(tc, revoked_without_password);
	suite_add_tcase(s, tc);

	tc = tc_new(s, "breaker");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, rate_limited_30s);
	suite_add_tcase(s, tc);

	tc = tc_new(s, "kill9");
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, kill9_rounds);
	suite_add_tcase(s, tc);

	tc = tc_new(s, "supabase_js");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, supabase_js_rls_rows);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	const char	*only = getenv("CK_RUN_CASE");
	int		 nfail;

	if (sodium_init() < 0)
		return 1;
	left = mmap(NULL, sizeof(*left), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (left == MAP_FAILED)
		return 1;
	memset(left, 0, sizeof(*left));
	if (only == NULL || strcmp(only, "supabase_js") == 0) {
		stack_err = h_stack_up("sge2e-stack", NULL);
		if (stack_err == NULL && (h_stack.rest_url[0] == '\0' ||
		    h_stack.auth_url[0] == '\0'))
			stack_err = "stack.env lacks REST_URL or AUTH_URL";
	}
	nfail = ck_run(e2e_suite()) != EXIT_SUCCESS;
	h_stack.failed = nfail != 0;
	return nfail == 0 ? 0 : 1;
}
