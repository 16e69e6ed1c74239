/*
 * check_session: the session module against the Auth emulator, in
 * process (evloop + upstream + session), and "supagate login" plus the
 * daemon as processes.  Only 127.0.0.1; no timing assertions: every
 * wait is a bounded poll for a condition.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "crypto.h"
#include "evloop.h"
#include "harness.h"
#include "log.h"
#include "metrics.h"
#include "session.h"
#include "upstream.h"
#include "ck_run.h"

#define EMAIL		"sess@example.com"
#define PASSWORD	"correct-horse-battery"

static char	 tdir[256];
static int	 emu_port;
static struct h_proc emu_proc = { .pid = -1 };
static struct conf *C;

/*
 * the Auth emulator
 */

static void
put_file(const char *name, const char *text, mode_t mode)
{
	char	path[512];
	int	fd;

	snprintf(path, sizeof(path), "%s/%s", tdir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	fchmod(fd, mode);
	close(fd);
}

static const char *
tpath(const char *name)
{
	return h_fmt("%s/%s", tdir, name);
}

static void
emu_start(void)
{
	h_init();
	unsetenv("CREDENTIALS_DIRECTORY");
	snprintf(tdir, sizeof(tdir), "/tmp/sgsess.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tdir));
	put_file("jwt-secret", h_fmt("%s\n", h_keys.secret), 0600);
	put_file("anon.key", h_fmt("%s\n", h_keys.anon), 0600);
	put_file("pw", PASSWORD "\n", 0600);
	put_file("badpw", "wrong-password\n", 0600);
	ck_assert_msg(h_emu_start(&emu_proc, tdir, 10000) == 0,
	    "the auth emulator did not start");
	emu_port = emu_proc.port;
}

static void
emu_stop(void)
{
	if (C != NULL)
		conf_unref(C);
	C = NULL;
	h_stop(&emu_proc, 5000, NULL);
	emu_port = 0;
	if (tdir[0] != '\0' && getenv("H_KEEP") == NULL)
		(void)!system(h_fmt("rm -rf '%s'", tdir));
}

/* a control call; the body is returned (caller frees) */
static char *
emu(const char *method, const char *path, const char *json)
{
	static const char *const hdrs[] = {
		"Content-Type: application/json", NULL
	};
	struct h_opts	 o;
	struct h_resp	 r;
	char		*body;

	memset(&o, 0, sizeof(o));
	o.hdrs = hdrs;
	if (json != NULL) {
		o.body = json;
		o.body_len = strlen(json);
		o.has_body = 1;
	}
	ck_assert_int_eq(h_req(&r, emu_port, method, path, &o), 0);
	ck_assert_msg(r.status == 200, "%s %s: %ld %s", method, path,
	    r.status, r.body);
	body = strdup(r.body);
	h_resp_free(&r);
	return body;
}

static void
emu_do(const char *method, const char *path, const char *json)
{
	free(emu(method, path, json));
}

static double
emu_state(const char *field)
{
	char	*b = emu("GET", "/_emu/state", NULL);
	double	 v = -1;

	ck_assert_int_eq(h_json_num(b, field, &v), 0);
	free(b);
	return v;
}

/* /token calls the emulator saw, and the refresh token of the last one */
static int
emu_token_calls(char *last_rt, size_t n)
{
	char	*b = emu("GET", "/_emu/requests", NULL);
	cJSON	*j = cJSON_Parse(b), *e, *sp, *body;
	int	 count = 0;

	ck_assert_ptr_nonnull(j);
	if (last_rt != NULL)
		last_rt[0] = '\0';
	cJSON_ArrayForEach(e, j) {
		sp = cJSON_GetObjectItem(e, "service_path");
		if (!cJSON_IsString(sp) || strcmp(sp->valuestring, "/token"))
			continue;
		count++;
		body = cJSON_GetObjectItem(e, "body");
		if (last_rt != NULL && cJSON_IsString(body))
			h_json_str(body->valuestring, "refresh_token",
			    last_rt, n);
	}
	cJSON_Delete(j);
	free(b);
	return count;
}

static void
seed_user(void)
{
	emu_do("POST", "/_emu/users", "{\"email\":\"" EMAIL "\","
	    "\"password\":\"" PASSWORD "\"}");
}

/* write t.conf: the common lines plus extra, and load it */
static struct conf *
load_conf(const char *extra)
{
	struct conf	*c;

	put_file("t.conf", h_fmt("auth-mode session\n"
	    "auth-upstream http://127.0.0.1:%d\n"
	    "anon-key-file %s/anon.key\n"
	    "state-dir %s/state\n"
	    "%s", emu_port, tdir, tdir, extra), 0600);
	c = conf_load(tpath("t.conf"));
	ck_assert_ptr_nonnull(c);
	return c;
}

#define PW_LINES	"session-email " EMAIL "\n" \
			"session-password-file %s/pw\n"

static void
up(void)
{
	ck_assert_int_eq(evloop_setup(), 0);
	ck_assert_int_eq(upstream_setup(), 0);
	ck_assert_int_eq(session_setup(C), 0);
}

static void
down(void)
{
	session_teardown();
	upstream_teardown();
	evloop_teardown();
}

/*
 * Run the loop, calling step every 20 ms until it returns 1 (-> 1) or
 * max_ms pass (-> 0).
 */
typedef int step_fn(void);
static step_fn		*cur_step;
static int64_t		 run_deadline;
static int		 run_met;
static struct evloop_timer poll_timer;

static void
poll_cb(void *arg)
{
	(void)arg;
	if (cur_step()) {
		run_met = 1;
		evloop_stop();
	} else if (evloop_now_ms() >= run_deadline)
		evloop_stop();
	else
		evloop_timer_arm(&poll_timer, 20, poll_cb, NULL);
}

static int
run(step_fn *f, int64_t max_ms)
{
	cur_step = f;
	run_met = 0;
	run_deadline = evloop_now_ms() + max_ms;
	poll_timer.due_ms = -1;
	evloop_timer_arm(&poll_timer, 0, poll_cb, NULL);
	evloop_run();
	evloop_timer_disarm(&poll_timer);
	return run_met;
}

static int
is_valid(void)
{
	return session_state() == SESSION_VALID;
}

static int
is_failed(void)
{
	return session_state() == SESSION_FAILED;
}

static const char *
health(void)
{
	static char	out[1024];
	struct sbuf	sb;

	sbuf_init(&sb, 1000);
	session_health(&sb);
	snprintf(out, sizeof(out), "%s", sbuf_str(&sb) ? sbuf_str(&sb) : "");
	sbuf_fini(&sb);
	return out;
}

static char *
slurp_state(size_t *len)
{
	return h_slurp(tpath("state/session"), len);
}

static int
contains(const char *hay, size_t len, const char *needle)
{
	return needle[0] != '\0' && memmem(hay, len, needle,
	    strlen(needle)) != NULL;
}

/*
 * tests
 */

START_TEST(password_signin)
{
	const char	*t;
	int		 w;

	emu_start();
	seed_user();
	C = load_conf(h_fmt(PW_LINES, tdir));
	up();
	ck_assert_int_eq(session_state(), SESSION_NONE);
	ck_assert_ptr_null(session_token(NULL, NULL, &w));
	ck_assert_int_eq(w, 0);		/* no callback: cannot wait */
	ck_assert_msg(run(is_valid, 15000), "not signed in: %s", health());
	t = session_token(NULL, NULL, &w);
	ck_assert_ptr_nonnull(t);
	ck_assert_msg(strncmp(t, "eyJ", 3) == 0, "not a JWT");
	ck_assert_int_eq(metrics.session_logins, 1);
	ck_assert_int_eq((int)emu_state("password_grants"), 1);
	ck_assert_ptr_nonnull(strstr(health(), "\"state\":\"valid\""));
	ck_assert_ptr_nonnull(strstr(health(), "\"expires_at\":"));
	ck_assert_int_gt(session_expires_at(), 0);
	ck_assert_ptr_nonnull(session_user_id());
	down();

	/* a wrong password: failed, and requests are told so */
	(void)!system(h_fmt("rm -rf '%s/state'", tdir));
	conf_unref(C);
	C = load_conf(h_fmt("session-email " EMAIL "\n"
	    "session-password-file %s/badpw\n", tdir));
	up();
	ck_assert_msg(run(is_failed, 15000), "not failed: %s", health());
	ck_assert_ptr_null(session_token(NULL, NULL, &w));
	ck_assert_int_eq(w, 0);
	ck_assert_ptr_nonnull(strstr(health(), "\"state\":\"failed\""));
	ck_assert_ptr_nonnull(strstr(health(), "invalid_credentials"));
	down();
	emu_stop();
}
END_TEST

/* refresh at 80% of a 4 s token, one per expiry, 100 waiters released */
static int	phase, released, released_new;
static char	old_tok[8192];
static int	slots[100];

static void
waiter_cb(void *arg)
{
	const char	*t;
	int		 w;

	(void)arg;
	released++;
	t = session_token(NULL, NULL, &w);
	if (t != NULL && strcmp(t, old_tok) != 0)
		released_new++;
}

static int
refresh_step(void)
{
	const char	*t;
	int		 i, w;

	switch (phase) {
	case 0:		/* the first refresh, untouched */
		if (metrics.session_refreshes < 1)
			return 0;
		ck_assert_int_eq((int)emu_state("refresh_requests"), 1);
		/* the next /token call takes 1.5 s: requests pile up */
		emu_do("POST", "/_emu/fault", "{\"mode\":\"delay\",\"ms\":1500,"
		    "\"path\":\"/token\",\"count\":1}");
		t = session_token(NULL, NULL, &w);
		ck_assert_ptr_nonnull(t);
		snprintf(old_tok, sizeof(old_tok), "%s", t);
		phase = 1;
		return 0;
	case 1:		/* the second refresh is in flight */
		if (session_state() != SESSION_REFRESHING)
			return 0;
		for (i = 0; i < 100; i++) {
			ck_assert_ptr_null(session_token(waiter_cb, &slots[i],
			    &w));
			ck_assert_int_eq(w, 1);
		}
		phase = 2;
		return 0;
	case 2:
		if (released < 100)
			return 0;
		ck_assert_int_eq(released_new, 100);
		ck_assert_int_eq(metrics.session_refreshes, 2);
		ck_assert_int_eq((int)emu_state("refresh_requests"), 2);
		phase = 3;
		return 0;
	default:	/* and one more cycle */
		return metrics.session_refreshes >= 3;
	}
}

START_TEST(refresh_at_80_percent)
{
	emu_start();
	seed_user();
	emu_do("POST", "/_emu/config", "{\"token_lifetime\":4}");
	C = load_conf(h_fmt(PW_LINES, tdir));
	up();
	ck_assert_msg(run(is_valid, 15000), "not signed in: %s", health());
	ck_assert_msg(run(refresh_step, 30000), "stuck in phase %d: %s",
	    phase, health());
	ck_assert_int_eq(released, 100);
	/* exactly one refresh per expiry, every one a rotation */
	ck_assert_int_eq((int)emu_state("refresh_requests"), 3);
	ck_assert_int_eq((int)emu_state("refresh_rotations"), 3);
	ck_assert_int_eq((int)emu_state("refresh_failures"), 0);
	ck_assert_int_eq((int)emu_state("password_grants"), 1);
	ck_assert_int_eq(metrics.session_refresh_failures, 0);
	down();
	emu_stop();
}
END_TEST

static const char	*tok_a;
static char		 tok_a_copy[8192];

static int
new_token(void)
{
	const char	*t;
	int		 w;

	if (session_state() != SESSION_VALID)
		return 0;
	/* (the same second gives a byte-identical JWT: count rotations) */
	t = session_token(NULL, NULL, &w);
	return t != NULL && metrics.session_refreshes == 1;
}

START_TEST(persistence)
{
	struct stat	 st;
	char		*f1, *f2, rt[512];
	size_t		 l1, l2;
	int		 w, grants, refreshes;

	emu_start();
	seed_user();
	C = load_conf(h_fmt(PW_LINES, tdir));
	up();
	ck_assert(run(is_valid, 15000));
	tok_a = session_token(NULL, NULL, &w);
	snprintf(tok_a_copy, sizeof(tok_a_copy), "%s", tok_a);
	down();

	/* the key is private, the file is sealed */
	ck_assert_int_eq(stat(tpath("state/session.key"), &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(st.st_size, 32);
	ck_assert_int_eq(stat(tpath("state/session"), &st), 0);
	ck_assert_int_eq(st.st_mode & 077, 0);
	ck_assert_ptr_nonnull(f1 = slurp_state(&l1));
	ck_assert(!contains(f1, l1, tok_a_copy));
	ck_assert(!contains(f1, l1, "refresh_token"));
	ck_assert(!contains(f1, l1, "access_token"));
	ck_assert(!contains(f1, l1, PASSWORD));

	/* restart: the stored session, no sign-in, no refresh */
	grants = (int)emu_state("password_grants");
	refreshes = (int)emu_state("refresh_requests");
	up();
	ck_assert_int_eq(session_state(), SESSION_VALID);
	ck_assert_str_eq(session_token(NULL, NULL, &w), tok_a_copy);
	ck_assert_int_eq((int)emu_state("password_grants"), grants);
	ck_assert_int_eq((int)emu_state("refresh_requests"), refreshes);
	ck_assert_int_eq(metrics.session_logins, 1);

	/* upstream rejects it: one refresh, with the stored refresh token */
	session_token_rejected("some-other-token");
	ck_assert_int_eq(session_state(), SESSION_VALID);
	session_token_rejected(tok_a_copy);
	ck_assert_int_eq(session_state(), SESSION_REFRESHING);
	ck_assert_ptr_null(session_token(NULL, NULL, &w));
	session_token_rejected(tok_a_copy);	/* single flight */
	ck_assert_msg(run(new_token, 15000), "no new token: %s", health());
	ck_assert_int_eq((int)emu_state("refresh_requests"), refreshes + 1);
	ck_assert_int_eq(emu_token_calls(rt, sizeof(rt)), 2);
	ck_assert_int_gt(strlen(rt), 8);
	ck_assert_msg(!contains(f1, l1, rt), "refresh token in plaintext");
	ck_assert_ptr_nonnull(f2 = slurp_state(&l2));
	ck_assert(!contains(f2, l2, session_token(NULL, NULL, &w)));
	ck_assert(!contains(f2, l2, rt));
	ck_assert(l1 != l2 || memcmp(f1, f2, l1) != 0);
	down();
	free(f1);
	free(f2);
	emu_stop();
}
END_TEST

static int
relogin_done(void)
{
	return metrics.session_logins >= 2 && session_state() ==
	    SESSION_VALID;
}

START_TEST(revoked_relogin)
{
	const char	*uid;

	emu_start();
	seed_user();
	emu_do("POST", "/_emu/config", "{\"token_lifetime\":4}");
	C = load_conf(h_fmt(PW_LINES, tdir));
	up();
	ck_assert(run(is_valid, 15000));
	ck_assert_ptr_nonnull(uid = session_user_id());
	emu_do("POST", "/_emu/revoke", h_fmt("{\"user_id\":\"%s\"}", uid));
	ck_assert_msg(run(relogin_done, 20000), "no re-login: %s", health());
	ck_assert_int_eq((int)emu_state("password_grants"), 2);
	ck_assert_int_eq((int)emu_state("refresh_requests"), 1);
	ck_assert_int_eq(metrics.session_refresh_failures, 1);
	ck_assert_int_eq(metrics.session_refreshes, 0);
	down();
	emu_stop();
}
END_TEST

START_TEST(revoked_without_password)
{
	const char	*h[3];
	struct h_opts	 o;
	struct h_resp	 r;
	char		 rt[512], uid[128];
	const char	*body = "{\"email\":\"" EMAIL "\",\"password\":\""
			    PASSWORD "\"}";
	struct stat	 st;
	int		 w;

	emu_start();
	seed_user();
	/* a refresh token handed over once, from a sign-in elsewhere */
	h[0] = h_fmt("apikey: %s", h_keys.anon);
	h[1] = "Content-Type: application/json";
	h[2] = NULL;
	memset(&o, 0, sizeof(o));
	o.hdrs = h;
	o.body = body;
	o.body_len = strlen(body);
	o.has_body = 1;
	ck_assert_int_eq(h_req(&r, emu_port, "POST",
	    "/token?grant_type=password", &o), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(h_json_str(r.body, "refresh_token", rt, sizeof(rt)),
	    0);
	h_resp_free(&r);
	put_file("rt", h_fmt("%s\n", rt), 0600);
	emu_do("POST", "/_emu/config", "{\"token_lifetime\":4}");
	C = load_conf(h_fmt("session-refresh-token-file %s/rt\n", tdir));
	up();
	ck_assert(run(is_valid, 15000));
	ck_assert_int_eq((int)emu_state("refresh_requests"), 1);
	ck_assert_int_eq((int)emu_state("password_grants"), 1);
	snprintf(uid, sizeof(uid), "%s", session_user_id());
	down();

	/* a restart takes the stored child, not the consumed file token */
	up();
	ck_assert_int_eq(session_state(), SESSION_VALID);
	ck_assert_int_eq((int)emu_state("refresh_requests"), 1);

	emu_do("POST", "/_emu/revoke", h_fmt("{\"user_id\":\"%s\"}", uid));
	ck_assert_msg(run(is_failed, 20000), "not failed: %s", health());
	ck_assert_ptr_null(session_token(NULL, NULL, &w));
	ck_assert_int_eq(w, 0);
	ck_assert_ptr_nonnull(strstr(health(), "\"state\":\"failed\""));
	ck_assert_int_eq(stat(tpath("state/session"), &st), -1);
	ck_assert_int_eq((int)emu_state("password_grants"), 1);
	down();
	emu_stop();
}
END_TEST

/* 429 for a while: the circuit breaker keeps /token calls few */
static int	saw_refreshing, saw_retry_in, dummy_arg, bphase, before,
		during;
static int64_t	fault_end;

static void
noop_cb(void *arg)
{
	(void)arg;
}

static int
breaker_step(void)
{
	int	w;

	/* requests keep coming: they must not cause /token calls */
	if (session_token(noop_cb, &dummy_arg, &w) == NULL && w)
		session_unwait(&dummy_arg);
	if (bphase == 0) {
		if (session_state() == SESSION_REFRESHING)
			saw_refreshing = 1;
		if (strstr(health(), "\"retry_in\":") != NULL)
			saw_retry_in = 1;
		if (evloop_now_ms() < fault_end)
			return 0;
		/* 10 s of 429s are over */
		during = emu_token_calls(NULL, 0) - before;
		ck_assert_int_ge(during, 1);
		ck_assert_msg(during <= 3, "%d /token calls in 10 s", during);
		ck_assert(saw_refreshing);
		ck_assert(saw_retry_in);
		ck_assert_int_eq(metrics.session_refresh_failures, during);
		emu_do("POST", "/_emu/fault", "{\"mode\":\"none\"}");
		bphase = 1;
		return 0;
	}
	/* the next probe, when the breaker allows it, succeeds */
	return session_state() == SESSION_VALID;
}

START_TEST(rate_limit_breaker)
{
	emu_start();
	seed_user();
	emu_do("POST", "/_emu/config", "{\"token_lifetime\":4}");
	C = load_conf(h_fmt(PW_LINES, tdir));
	up();
	ck_assert(run(is_valid, 15000));
	down();
	/* the same stored session, in one loop run from here */
	up();
	before = emu_token_calls(NULL, 0);
	emu_do("POST", "/_emu/fault", "{\"mode\":\"ratelimit\","
	    "\"retry_after\":1,\"path\":\"/token\"}");
	fault_end = evloop_now_ms() + 10000;
	ck_assert_msg(run(breaker_step, 45000), "phase %d: %s", bphase,
	    health());
	ck_assert_int_eq(bphase, 1);
	ck_assert_int_eq(metrics.session_logins, 1);
	ck_assert_int_eq(metrics.session_refreshes, 1);
	down();
	emu_stop();
}
END_TEST

/*
 * The /token calls in the emulator's log: grant type, status (-1: no
 * answer), whether a fault answered, and the refresh token sent.
 */
struct tcall {
	char	grant[32];
	int	status;
	int	faulted;
	char	rt[128];
};
#define TCALLS_MAX	64

static int
token_log(struct tcall *out, int max)
{
	char	*b = emu("GET", "/_emu/requests", NULL);
	cJSON	*j = cJSON_Parse(b), *e, *sp, *v, *q;
	int	 n = 0;

	ck_assert_ptr_nonnull(j);
	cJSON_ArrayForEach(e, j) {
		sp = cJSON_GetObjectItem(e, "service_path");
		if (!cJSON_IsString(sp) || strcmp(sp->valuestring, "/token"))
			continue;
		ck_assert_int_lt(n, max);
		memset(&out[n], 0, sizeof(out[n]));
		q = cJSON_GetObjectItem(cJSON_GetObjectItem(e, "query"),
		    "grant_type");
		if (cJSON_IsString(q))
			snprintf(out[n].grant, sizeof(out[n].grant), "%s",
			    q->valuestring);
		v = cJSON_GetObjectItem(e, "status");
		out[n].status = cJSON_IsNumber(v) ? v->valueint : -1;
		out[n].faulted = cJSON_IsString(cJSON_GetObjectItem(e,
		    "fault"));
		v = cJSON_GetObjectItem(e, "body");
		if (cJSON_IsString(v))
			h_json_str(v->valuestring, "refresh_token", out[n].rt,
			    sizeof(out[n].rt));
		n++;
	}
	cJSON_Delete(j);
	free(b);
	return n;
}

/* every call a refresh_token grant with the same refresh token */
static void
assert_same_refresh(const struct tcall *tc, int n)
{
	int	i;

	for (i = 0; i < n; i++) {
		ck_assert_msg(strcmp(tc[i].grant, "refresh_token") == 0,
		    "/token call %d is a %s grant", i, tc[i].grant);
		ck_assert_msg(strlen(tc[i].rt) > 8 && strcmp(tc[i].rt,
		    tc[0].rt) == 0, "/token call %d sent another refresh "
		    "token", i);
	}
}

/*
 * 409 conflict: retried once at once; a second 409 in a row is then a
 * transient failure (backoff, the current token stays in use).
 */
static int	cphase, saw_backoff;

static int
conflict_step(void)
{
	struct tcall	 tc[TCALLS_MAX];
	const char	*t;
	int		 n, w;

	ck_assert_msg(session_state() != SESSION_FAILED, "failed: %s",
	    health());
	if (cphase == 0)	/* one 409: the refresh succeeds on the retry */
		return metrics.session_refreshes >= 1 &&
		    session_state() == SESSION_VALID;
	/*
	 * two 409s: after the retry, no third call at once but a backoff,
	 * with the current token still served
	 */
	if (!saw_backoff && session_state() == SESSION_VALID &&
	    strstr(health(), "\"last_error\":\"conflict\"") != NULL) {
		n = token_log(tc, TCALLS_MAX);
		if (n == 2 && tc[0].status == 409 && tc[1].status == 409) {
			saw_backoff = 1;
			t = session_token(NULL, NULL, &w);
			ck_assert_ptr_nonnull(t);
			ck_assert_str_eq(t, old_tok);
		}
	}
	return metrics.session_refreshes >= 2 &&
	    session_state() == SESSION_VALID;
}

START_TEST(conflict_retried_once)
{
	struct tcall	 tc[TCALLS_MAX];
	const char	*t;
	int		 n, w;

	emu_start();
	seed_user();
	emu_do("POST", "/_emu/config", "{\"token_lifetime\":4}");
	C = load_conf(h_fmt(PW_LINES, tdir));
	up();
	ck_assert_msg(run(is_valid, 15000), "not signed in: %s", health());
	/* the next token lives 10 s: a backoff fits in its last second */
	emu_do("POST", "/_emu/config", "{\"token_lifetime\":10}");

	/* one 409 conflict: exactly two /token calls, one rotation */
	emu_do("DELETE", "/_emu/requests", NULL);
	emu_do("POST", "/_emu/fault", "{\"mode\":\"status\",\"status\":409,"
	    "\"error_code\":\"conflict\",\"path\":\"/token\",\"count\":1}");
	ck_assert_ptr_nonnull(t = session_token(NULL, NULL, &w));
	snprintf(old_tok, sizeof(old_tok), "%s", t);
	cphase = 0;
	ck_assert_msg(run(conflict_step, 20000), "no refresh: %s", health());
	n = token_log(tc, TCALLS_MAX);
	ck_assert_msg(n == 2, "%d /token calls for one 409", n);
	ck_assert(tc[0].faulted && tc[0].status == 409);
	ck_assert(!tc[1].faulted && tc[1].status == 200);
	assert_same_refresh(tc, n);
	ck_assert_ptr_nonnull(t = session_token(NULL, NULL, &w));
	ck_assert_str_ne(t, old_tok);
	ck_assert_int_eq((int)emu_state("password_grants"), 1);
	ck_assert_int_eq((int)emu_state("refresh_rotations"), 1);
	ck_assert_int_eq((int)emu_state("refresh_failures"), 0);
	ck_assert_int_eq(metrics.session_logins, 1);
	ck_assert_int_eq(metrics.session_refreshes, 1);
	ck_assert_int_eq(metrics.session_refresh_failures, 1);
	ck_assert_ptr_null(strstr(health(), "last_error"));

	/*
	 * two 409s in a row: one retry, then the backoff of any transient
	 * failure (supagate.8: "A 409 conflict is retried once"), no
	 * sign-in, no failed state; the next attempt succeeds
	 */
	emu_do("DELETE", "/_emu/requests", NULL);
	emu_do("POST", "/_emu/fault", "{\"mode\":\"status\",\"status\":409,"
	    "\"error_code\":\"conflict\",\"path\":\"/token\",\"count\":2}");
	snprintf(old_tok, sizeof(old_tok), "%s", t);
	cphase = 1;
	saw_backoff = 0;
	ck_assert_msg(run(conflict_step, 25000), "no refresh: %s", health());
	ck_assert_msg(saw_backoff, "no backoff with the current token after "
	    "the retried 409");
	n = token_log(tc, TCALLS_MAX);
	ck_assert_msg(n == 3, "%d /token calls for two 409s", n);
	ck_assert(tc[0].faulted && tc[0].status == 409);
	ck_assert(tc[1].faulted && tc[1].status == 409);
	ck_assert(!tc[2].faulted && tc[2].status == 200);
	assert_same_refresh(tc, n);
	ck_assert_ptr_nonnull(t = session_token(NULL, NULL, &w));
	ck_assert_str_ne(t, old_tok);
	ck_assert_int_eq((int)emu_state("password_grants"), 1);
	ck_assert_int_eq((int)emu_state("refresh_rotations"), 2);
	ck_assert_int_eq(metrics.session_logins, 1);
	ck_assert_int_eq(metrics.session_refreshes, 2);
	ck_assert_int_eq(metrics.session_refresh_failures, 3);
	down();
	emu_stop();
}
END_TEST

/*
 * Network failure or 5xx on /token for a window shorter than the
 * token's remaining life: retries back off (0.5 s doubling up to 60 s,
 * plus up to 25% jitter), requests keep the current token, and once the
 * fault is gone the session refreshes without a password sign-in.
 */
#define BO_LIFETIME_S	20	/* refresh at 16 s, usable until 19 s */
#define BO_WINDOW_MS	2000
#define BO_MIN_MS	500
#define BO_MAX_MS	60000

/* at most this many calls fit in ms: the first, then the shortest waits */
static int
max_attempts(int64_t ms)
{
	int64_t	t = 0, d = BO_MIN_MS;
	int	n = 1;

	while (t + d <= ms) {
		t += d;
		n++;
		d = d * 2 > BO_MAX_MS ? BO_MAX_MS : d * 2;
	}
	return n;
}

static int	bophase, bo_arg, bo_waits, bo_released, bo_released_null,
		bo_served_old, bo_faulted;
static int64_t	bo_start;

static void
bo_cb(void *arg)
{
	const char	*t;
	int		 w;

	(void)arg;
	bo_released++;
	t = session_token(NULL, NULL, &w);
	if (t == NULL)
		bo_released_null++;
	else if (bophase == 1) {
		ck_assert_str_eq(t, old_tok);
		bo_served_old++;
	}
}

static int
bo_step(void)
{
	struct tcall	 tc[TCALLS_MAX];
	const char	*t;
	int		 i, n, w;

	ck_assert_msg(session_state() != SESSION_FAILED, "failed: %s",
	    health());
	/* requests keep coming: they must not cause /token calls */
	for (i = 0; i < 10; i++) {
		t = session_token(bo_cb, &bo_arg, &w);
		if (t == NULL) {
			ck_assert_msg(w, "phase %d: no token and no wait: %s",
			    bophase, health());
			bo_waits++;
		} else if (bophase <= 1) {
			ck_assert_str_eq(t, old_tok);
			bo_served_old++;
		}
	}
	switch (bophase) {
	case 0:		/* until the refresh meets the fault */
		n = token_log(tc, TCALLS_MAX);
		if (n > 0 && tc[0].faulted) {
			bo_start = evloop_now_ms();
			bophase = 1;
		}
		return 0;
	case 1:		/* the window */
		if (evloop_now_ms() - bo_start < BO_WINDOW_MS)
			return 0;
		emu_do("POST", "/_emu/fault", "{\"mode\":\"none\"}");
		bophase = 2;
		return 0;
	default:	/* the fault is gone: one more call, a success */
		return metrics.session_refreshes >= 1 &&
		    session_state() == SESSION_VALID;
	}
}

static void
backoff_case(const char *fault, int want_status)
{
	struct tcall	 tc[TCALLS_MAX];
	const char	*t;
	int		 n, i, bound;

	emu_start();
	seed_user();
	emu_do("POST", "/_emu/config", h_fmt("{\"token_lifetime\":%d}",
	    BO_LIFETIME_S));
	C = load_conf(h_fmt(PW_LINES, tdir));
	up();
	ck_assert_msg(run(is_valid, 15000), "not signed in: %s", health());
	ck_assert_ptr_nonnull(t = session_token(NULL, NULL, &i));
	snprintf(old_tok, sizeof(old_tok), "%s", t);
	emu_do("DELETE", "/_emu/requests", NULL);
	emu_do("POST", "/_emu/fault", fault);
	bophase = 0;
	ck_assert_msg(run(bo_step, BO_LIFETIME_S * 1000 + 20000),
	    "phase %d: %s", bophase, health());

	n = token_log(tc, TCALLS_MAX);
	for (i = 0; i < n && tc[i].faulted; i++)
		ck_assert_msg(tc[i].status == want_status, "faulted call %d: "
		    "status %d", i, tc[i].status);
	bo_faulted = i;
	/*
	 * the window, plus a poll step of slack at either end; jitter only
	 * lengthens the waits, so this is an upper bound
	 */
	bound = max_attempts(BO_WINDOW_MS + 100);
	fprintf(stderr, "backoff %s: %d failed /token calls in a %d ms "
	    "window (bound %d), %d requests served the old token, %d "
	    "waited\n", fault, bo_faulted, BO_WINDOW_MS, bound,
	    bo_served_old, bo_waits);
	ck_assert_msg(bo_faulted >= 2, "%d failed /token calls: no retry "
	    "within %d ms", bo_faulted, BO_WINDOW_MS);
	ck_assert_msg(bo_faulted <= bound, "%d failed /token calls in "
	    "%d ms: more than the backoff allows (%d)", bo_faulted,
	    BO_WINDOW_MS, bound);
	/* then exactly one call, the successful refresh */
	ck_assert_msg(n == bo_faulted + 1, "%d /token calls, %d failed", n,
	    bo_faulted);
	ck_assert(!tc[n - 1].faulted && tc[n - 1].status == 200);
	assert_same_refresh(tc, n);
	ck_assert_ptr_nonnull(t = session_token(NULL, NULL, &i));
	ck_assert_str_ne(t, old_tok);
	ck_assert_int_gt(bo_served_old, 0);
	ck_assert_int_eq(bo_released, bo_waits);	/* nobody left waiting */
	ck_assert_int_eq(bo_released_null, 0);
	ck_assert_int_eq((int)emu_state("password_grants"), 1);
	ck_assert_int_eq((int)emu_state("refresh_rotations"), 1);
	ck_assert_int_eq((int)emu_state("refresh_failures"), 0);
	ck_assert_int_eq(metrics.session_logins, 1);
	ck_assert_int_eq(metrics.session_refreshes, 1);
	ck_assert_int_eq(metrics.session_refresh_failures, bo_faulted);
	ck_assert_ptr_null(strstr(health(), "last_error"));
	down();
	emu_stop();
}

START_TEST(network_down_backoff)
{
	backoff_case("{\"mode\":\"down\",\"path\":\"/token\"}", -1);
}
END_TEST

START_TEST(status_503_backoff)
{
	backoff_case("{\"mode\":\"status\",\"status\":503,"
	    "\"path\":\"/token\"}", 503);
}
END_TEST

START_TEST(nothing_to_start_from)
{
	emu_start();
	C = load_conf("");
	ck_assert_int_eq(evloop_setup(), 0);
	ck_assert_int_eq(upstream_setup(), 0);
	ck_assert_int_eq(session_setup(C), -1);
	ck_assert_int_eq(session_state(), SESSION_NONE);
	upstream_teardown();
	evloop_teardown();
	emu_stop();
}
END_TEST

static int
sh(const char *cmd)
{
	int	st = system(cmd);

	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(login_then_daemon)
{
	const char	*bin = getenv("SUPAGATE_BIN");
	struct h_proc	 gate;
	struct stat	 st;
	char		*log;
	int		 grants;

	ck_assert_ptr_nonnull(bin);
	emu_start();
	seed_user();
	C = load_conf("");
	put_file("login.conf", h_fmt("listen 127.0.0.1:0\n"
	    "auth-mode session\n"
	    "upstream http://127.0.0.1:%d\n"
	    "auth-upstream http://127.0.0.1:%d\n"
	    "anon-key-file %s/anon.key\n"
	    "state-dir %s/state\n", emu_port, emu_port, tdir, tdir), 0600);

	/* a wrong password: exit 1, nothing stored */
	ck_assert_int_eq(sh(h_fmt("printf '%%s\\n%%s\\n' " EMAIL " nope-nope "
	    "| %s login -f %s/login.conf", bin, tdir)), 1);
	ck_assert_int_eq(stat(tpath("state/session"), &st), -1);
	/* from stdin, as a script would */
	ck_assert_int_eq(sh(h_fmt("printf '%%s\\n%%s\\n' " EMAIL " " PASSWORD
	    " | %s login -f %s/login.conf", bin, tdir)), 0);
	ck_assert_int_eq(stat(tpath("state/session"), &st), 0);
	grants = (int)emu_state("password_grants");
	ck_assert_int_eq(grants, 2);	/* the wrong one and this one */

	/* the daemon starts from it: no sign-in, no refresh */
	ck_assert_int_eq(h_gate_start(&gate, h_fmt("listen 127.0.0.1:0\n"
	    "auth-mode session\n"
	    "upstream @UP@\n"
	    "anon-key-file %s/anon.key\n"
	    "state-dir %s/state\n", tdir, tdir), emu_port, NULL), 0);
	ck_assert_int_eq((int)emu_state("password_grants"), grants);
	ck_assert_int_eq((int)emu_state("refresh_requests"), 0);
	log = h_slurp(gate.log, NULL);
	ck_assert_ptr_nonnull(log);
	ck_assert_msg(strstr(log, "resuming the stored session") != NULL,
	    "%s", log);
	ck_assert_ptr_null(strstr(log, PASSWORD));
	free(log);

	/* the state-dir is locked while the daemon runs */
	ck_assert_int_eq(sh(h_fmt("printf '%%s\\n%%s\\n' " EMAIL " " PASSWORD
	    " | %s login -f %s/login.conf 2>/dev/null", bin, tdir)), 1);
	h_stop(&gate, 5000, NULL);
	emu_stop();
}
END_TEST

static Suite *
session_suite(void)
{
	Suite	*s = suite_create("session");
	TCase	*tc;

	tc = tcase_create("signin");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, password_signin);
	tcase_add_test(tc, nothing_to_start_from);
	suite_add_tcase(s, tc);

	tc = tcase_create("refresh");
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, refresh_at_80_percent);
	tcase_add_test(tc, persistence);
	suite_add_tcase(s, tc);

	tc = tcase_create("loss");
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, revoked_relogin);
	tcase_add_test(tc, revoked_without_password);
	suite_add_tcase(s, tc);

	tc = tcase_create("breaker");
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, rate_limit_breaker);
	suite_add_tcase(s, tc);

	tc = tcase_create("conflict");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, conflict_retried_once);
	suite_add_tcase(s, tc);

	tc = tcase_create("backoff");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, network_down_backoff);
	tcase_add_test(tc, status_503_backoff);
	suite_add_tcase(s, tc);

	tc = tcase_create("login");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, login_then_daemon);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	log_init(getenv("SESSION_DEBUG") != NULL);
	if (crypto_setup() != 0)
		return 1;
	return ck_run(session_suite());
}
