/*
 * check_stack: scenario tests of supagate against the real loopback stack
 * (PostgreSQL + PostgREST + Deno functions + the Auth/Storage emulators).
 *
 * main() starts one stack (tests/stack/stack-up into a temp dir) and the
 * supagate processes the cases use, runs the suite, then stops all of it
 * (also on failure and on SIGINT/SIGTERM).  Check forks a child per test;
 * only the parent tears down.
 *
 * Environment: SUPAGATE_SRCDIR (the source tree: tests/stack, node_modules),
 * SUPAGATE_BIN (as for the harness).  H_KEEP=1 keeps the temp dirs.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <check.h>
#include <cJSON.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define ALICE	"11111111-1111-1111-1111-111111111111"

/* secrets, read or minted once */
static char	 anon_key[1024], service_key[1024], jwt_secret[256],
		 user_jwt[1024];

/* the supagates */
static struct h_proc	g_anon;		/* anon mode, 64M bodies */
static struct h_proc	g_svc;		/* service mode with expose */
static struct h_proc	g_replace;	/* client-auth replace */
static struct h_proc	g_fail;		/* rest down, functions-timeout 1s */
static struct h_proc	g_slow;		/* upstream-timeout 1s */
static struct h_proc	*const gates[] = {
	&g_anon, &g_svc, &g_replace, &g_fail, &g_slow
};
#define NGATES	(sizeof(gates) / sizeof(gates[0]))

/* ---- small helpers --------------------------------------------------- */

/*
 * stack-reset, then wait until PostgREST has reloaded its schema cache
 * after it and serves a write.  stack-reset alone returns as soon as a read
 * works, which can still be the old cache: a PATCH right after it was seen
 * to answer 404 "{}" while the reload was under way.
 */
static void
stack_reset(void)
{
	static const char *const js[] = {
		"Content-Type: application/json", NULL
	};
	const char	*cmd;
	struct h_resp	 r;
	struct h_opts	 o;
	const char	*hv[4];
	int64_t		 deadline;
	int		 before = h_stack_schema_loads(), ok = 0;

	cmd = h_fmt("'%s/tests/stack/stack-reset' '%s' >>'%s/reset.out' 2>&1",
	    h_stack.srcdir, h_stack.dir, h_stack.dir);
	ck_assert_msg(h_run(cmd) == 0, "stack-reset failed (see %s/reset.out)",
	    h_stack.dir);
	hv[0] = h_fmt("apikey: %s", anon_key);
	hv[1] = h_fmt("Authorization: Bearer %s", anon_key);
	hv[2] = js[0];
	hv[3] = NULL;
	memset(&o, 0, sizeof(o));
	o.hdrs = hv;
	o.body = "{\"population\":0}";
	o.body_len = strlen(o.body);
	o.has_body = 1;
	memset(&r, 0, sizeof(r));
	deadline = h_now_ms() + 10000;
	while (!ok && h_now_ms() < deadline) {
		if (h_stack_schema_loads() > before && h_req(&r,
		    h_stack.rest_port, "PATCH", "/cities?id=eq.-1", &o) == 0 &&
		    r.status / 100 == 2)
			ok = 1;
		h_resp_free(&r);
		if (!ok)
			h_sleep_ms(20);
	}
	ck_assert_msg(ok, "PostgREST did not reload its schema after "
	    "stack-reset");
}

static uint32_t
fnv1a(uint32_t h, const unsigned char *p, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x01000193u;
	return h;
}

/* a loopback port with nobody listening */
static int
closed_port(void)
{
	struct sockaddr_in	sa;
	socklen_t		len = sizeof(sa);
	int			fd, port;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) == -1) {
		close(fd);
		return -1;
	}
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* string member path a.b of a JSON object into buf; -1 if absent */
static int
json_path_str(const char *json, const char *a, const char *b, char *buf,
    size_t n)
{
	cJSON	*o = cJSON_Parse(json), *f;
	int	 ret = -1;

	buf[0] = '\0';
	f = cJSON_GetObjectItemCaseSensitive(o, a);
	if (f != NULL && b != NULL)
		f = cJSON_GetObjectItemCaseSensitive(f, b);
	if (f != NULL && cJSON_IsString(f)) {
		snprintf(buf, n, "%s", f->valuestring);
		ret = 0;
	}
	cJSON_Delete(o);
	return ret;
}

/* JSON text of member a of a top-level object (malloc'd, unformatted) */
static char *
json_member(const char *json, const char *a)
{
	cJSON	*o = cJSON_Parse(json), *f;
	char	*s = NULL;

	if ((f = cJSON_GetObjectItemCaseSensitive(o, a)) != NULL)
		s = cJSON_PrintUnformatted(f);
	cJSON_Delete(o);
	return s;
}

/* number of elements of a JSON array body; -1 if not an array */
static int
json_array_len(const char *json)
{
	cJSON	*o = cJSON_Parse(json);
	int	 n = cJSON_IsArray(o) ? cJSON_GetArraySize(o) : -1;

	cJSON_Delete(o);
	return n;
}

/* 1 if every element of the array body has string member k equal to v */
static int
json_all_eq(const char *json, const char *k, const char *v)
{
	cJSON	*o = cJSON_Parse(json), *e, *f;
	int	 ok = cJSON_IsArray(o);

	cJSON_ArrayForEach(e, o) {
		f = cJSON_GetObjectItemCaseSensitive(e, k);
		if (!cJSON_IsString(f) || strcmp(f->valuestring, v) != 0)
			ok = 0;
	}
	cJSON_Delete(o);
	return ok;
}

static const char *base_conf(const char *);

/* ---- REST through supagate and directly ------------------------------ */

enum how { DIRECT, KEYLESS, PLACEHOLDER, USER };

/*
 * One request: through g_anon (path under /rest/v1 or /functions/v1) or,
 * with DIRECT, to the service itself with the real anon key.
 */
static void
call(struct h_resp *r, int port, enum how how, const char *method,
    const char *path, const char *const *extra, const char *body)
{
	const char	*hv[3];
	size_t		 n = 0;

	switch (how) {
	case DIRECT:
		if (strncmp(path, "/rest/v1", 8) == 0) {
			port = h_stack.rest_port;
			path += 8;
		} else if (strncmp(path, "/functions/v1", 13) == 0) {
			port = h_stack.functions_port;
			path += 13;
		}
		hv[n++] = h_fmt("apikey: %s", anon_key);
		hv[n++] = h_fmt("Authorization: Bearer %s", anon_key);
		break;
	case PLACEHOLDER:
		hv[n++] = "apikey: placeholder";
		hv[n++] = "Authorization: Bearer placeholder";
		break;
	case USER:
		hv[n++] = "apikey: placeholder";
		hv[n++] = h_fmt("Authorization: Bearer %s", user_jwt);
		break;
	case KEYLESS:
		break;
	}
	hv[n] = NULL;
	if (h_call(r, port, method, path, hv, extra, body) == -1)
		ck_abort_msg("%s %s (%d): no response: %s", method, path,
		    (int)how, r->err);
}

static void
same(const struct h_resp *want, const struct h_resp *got, const char *what)
{
	static const char *const names[] = {
		"Content-Type", "Content-Range", "Preference-Applied",
	};
	size_t	i;

	ck_assert_msg(got->status == want->status,
	    "%s: status %ld, direct %ld (body %s)", what, got->status,
	    want->status, got->body);
	ck_assert_msg(got->body_total == want->body_total &&
	    memcmp(got->body, want->body, want->body_len) == 0,
	    "%s: body\n  got    %s\n  direct %s", what, got->body, want->body);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		ck_assert_msg(strcmp(h_hdr(got, names[i]),
		    h_hdr(want, names[i])) == 0, "%s: %s: got %s, direct %s",
		    what, names[i], h_hdr(got, names[i]),
		    h_hdr(want, names[i]));
}

struct rest_case {
	const char	*name;
	const char	*method;
	const char	*path;
	const char	*hdrs[4];
	const char	*body;
	int		 writes;	/* reset the database around each call */
	long		 status;	/* expected status */
};

static const struct rest_case rest_cases[] = {
	{ "select with embed", "GET",
	  "/rest/v1/cities?select=name,countries(name)&order=id", { NULL },
	  NULL, 0, 200 },
	{ "select with filters", "GET",
	  "/rest/v1/cities?select=id,name,population&country_id=in.(4,5,6)"
	  "&population=gt.1000000&order=population.desc", { NULL }, NULL, 0,
	  200 },
	{ "count exact with range", "GET",
	  "/rest/v1/cities?select=id,name&order=id",
	  { "Prefer: count=exact", "Range-Unit: items", "Range: 0-2", NULL },
	  NULL, 0, 206 },
	{ "head with count", "HEAD", "/rest/v1/cities?select=id",
	  { "Prefer: count=exact", NULL }, NULL, 0, 200 },
	{ "insert", "POST", "/rest/v1/cities",
	  { "Prefer: return=representation",
	    "Content-Type: application/json", NULL },
	  "{\"name\":\"Nice\",\"country_id\":4,\"population\":342669}", 1,
	  201 },
	{ "update", "PATCH", "/rest/v1/cities?id=eq.5",
	  { "Prefer: return=representation",
	    "Content-Type: application/json", NULL },
	  "{\"population\":1}", 1, 200 },
	{ "upsert", "POST", "/rest/v1/countries",
	  { "Prefer: resolution=merge-duplicates,return=representation",
	    "Content-Type: application/json", NULL },
	  "[{\"id\":4,\"name\":\"France\",\"code\":\"FX\"},"
	  "{\"id\":9,\"name\":\"Chile\",\"code\":\"CL\"}]", 1, 201 },
	{ "delete", "DELETE", "/rest/v1/cities?id=eq.11",
	  { "Prefer: return=representation", NULL }, NULL, 1, 200 },
	{ "rpc get", "GET", "/rest/v1/rpc/add?a=2&b=3", { NULL }, NULL, 0,
	  200 },
	{ "rpc get setof with modifiers", "GET",
	  "/rest/v1/rpc/countries_starting_with?prefix=A&order=name.desc"
	  "&limit=2", { NULL }, NULL, 0, 200 },
	{ "rpc post", "POST", "/rest/v1/rpc/countries_starting_with",
	  { "Content-Type: application/json", NULL },
	  "{\"prefix\":\"A\"}", 0, 200 },
	{ "rpc post void", "POST", "/rest/v1/rpc/noop",
	  { "Content-Type: application/json", NULL }, "{}", 0, 204 },
	{ "csv", "GET", "/rest/v1/countries?select=id,name,code&order=id",
	  { "Accept: text/csv", NULL }, NULL, 0, 200 },
	{ "single object", "GET", "/rest/v1/countries?id=eq.4",
	  { "Accept: application/vnd.pgrst.object+json", NULL }, NULL, 0,
	  200 },
	{ "single object, many rows", "GET", "/rest/v1/countries",
	  { "Accept: application/vnd.pgrst.object+json", NULL }, NULL, 0,
	  406 },
	{ "rpc error", "POST", "/rest/v1/rpc/fail",
	  { "Content-Type: application/json", NULL },
	  "{\"msg\":\"nope\"}", 0, 400 },
};
#define NREST	(int)(sizeof(rest_cases) / sizeof(rest_cases[0]))

START_TEST(rest_equal)
{
	const struct rest_case	*c = &rest_cases[_i];
	struct h_resp		 d, k, p;

	if (c->writes)
		stack_reset();
	call(&d, 0, DIRECT, c->method, c->path, c->hdrs, c->body);
	ck_assert_msg(d.status == c->status, "%s: direct status %ld, want "
	    "%ld (%s)", c->name, d.status, c->status, d.body);
	if (c->writes)
		stack_reset();
	call(&k, g_anon.port, KEYLESS, c->method, c->path, c->hdrs, c->body);
	same(&d, &k, h_fmt("%s, keyless", c->name));
	if (c->writes)
		stack_reset();
	call(&p, g_anon.port, PLACEHOLDER, c->method, c->path, c->hdrs,
	    c->body);
	same(&d, &p, h_fmt("%s, placeholder key", c->name));
	if (c->writes)
		stack_reset();
	h_resp_free(&d);
	h_resp_free(&k);
	h_resp_free(&p);
}
END_TEST

/* ---- service mode ---------------------------------------------------- */

START_TEST(service_writes_products)
{
	static const char *const js[] = {
		"Content-Type: application/json",
		"Prefer: return=representation", NULL
	};
	struct h_resp	r;
	char		buf[1200];

	stack_reset();
	/* anon may not write products: the key is what makes it work */
	call(&r, g_anon.port, KEYLESS, "POST", "/rest/v1/products", js,
	    "{\"id\":6,\"name\":\"Hat\",\"price\":1}");
	ck_assert_msg(r.status == 401 || r.status == 403,
	    "anon insert into products: %ld %s", r.status, r.body);
	h_resp_free(&r);

	call(&r, g_svc.port, KEYLESS, "POST", "/rest/v1/products", js,
	    "{\"id\":6,\"name\":\"Yellow scarf\",\"price\":12.5}");
	ck_assert_msg(r.status == 201, "service insert: %ld %s", r.status,
	    r.body);
	ck_assert_msg(strstr(r.body, "\"Yellow scarf\"") != NULL, "%s",
	    r.body);
	h_resp_free(&r);

	call(&r, g_svc.port, PLACEHOLDER, "PATCH", "/rest/v1/products?id=eq.6",
	    js, "{\"price\":13}");
	ck_assert_msg(r.status == 200 && strstr(r.body, "13") != NULL,
	    "service update: %ld %s", r.status, r.body);
	h_resp_free(&r);

	call(&r, g_svc.port, KEYLESS, "DELETE", "/rest/v1/products?id=eq.1",
	    js, NULL);
	ck_assert_msg(r.status == 200 && json_array_len(r.body) == 1,
	    "service delete: %ld %s", r.status, r.body);
	h_resp_free(&r);

	call(&r, g_svc.port, KEYLESS, "GET",
	    "/rest/v1/products?select=id&order=id", NULL, NULL);
	ck_assert_msg(r.status == 200 && strcmp(r.body,
	    "[{\"id\":2}, \n {\"id\":3}, \n {\"id\":4}, \n {\"id\":5}, \n "
	    "{\"id\":6}]") == 0, "products after writes: %ld %s", r.status,
	    r.body);
	h_resp_free(&r);

	/* the echo function is exposed: it shows the service key arrived */
	call(&r, g_svc.port, KEYLESS, "GET", "/functions/v1/echo", NULL, NULL);
	ck_assert_msg(r.status == 200, "echo: %ld %s", r.status, r.body);
	json_path_str(r.body, "headers", "apikey", buf, sizeof(buf));
	ck_assert_msg(strcmp(buf, service_key) == 0,
	    "apikey upstream is not the service key: %s", buf);
	h_resp_free(&r);
	stack_reset();
}
END_TEST

START_TEST(service_not_exposed)
{
	struct h_resp	r;

	call(&r, g_svc.port, KEYLESS, "GET", "/rest/v1/cities?select=id",
	    NULL, NULL);
	ck_assert_msg(h_is_error(&r, 403, "forbidden") == 0,
	    "GET cities: %ld %s", r.status, r.body);
	h_resp_free(&r);
	/* exposed for GET only */
	call(&r, g_svc.port, KEYLESS, "DELETE", "/rest/v1/countries?id=eq.8",
	    NULL, NULL);
	ck_assert_msg(h_is_error(&r, 403, "forbidden") == 0,
	    "DELETE countries: %ld %s", r.status, r.body);
	h_resp_free(&r);
	call(&r, g_svc.port, KEYLESS, "POST", "/functions/v1/hello", NULL,
	    "{}");
	ck_assert_msg(h_is_error(&r, 403, "forbidden") == 0,
	    "POST hello: %ld %s", r.status, r.body);
	h_resp_free(&r);
	/* and what is exposed still works */
	call(&r, g_svc.port, KEYLESS, "GET", "/rest/v1/countries?id=eq.8",
	    NULL, NULL);
	ck_assert_msg(r.status == 200 && strstr(r.body, "Peru") != NULL,
	    "GET countries: %ld %s", r.status, r.body);
	h_resp_free(&r);
}
END_TEST

/* ---- a client's own user JWT ----------------------------------------- */

START_TEST(user_jwt_rls)
{
	static const char *const js[] = {
		"Content-Type: application/json",
		"Prefer: return=representation", NULL
	};
	static const char	 sel[] =
	    "/rest/v1/todos?select=id,user_id,task&order=id";
	struct h_resp		 d, r;
	const char		*hv[4];

	stack_reset();
	call(&r, g_anon.port, USER, "GET", sel, NULL, NULL);
	ck_assert_msg(r.status == 200 && json_array_len(r.body) == 2 &&
	    json_all_eq(r.body, "user_id", ALICE), "alice's todos: %ld %s",
	    r.status, r.body);
	/* the same as PostgREST answers the token directly */
	hv[0] = h_fmt("apikey: %s", anon_key);
	hv[1] = h_fmt("Authorization: Bearer %s", user_jwt);
	hv[2] = NULL;
	if (h_req(&d, h_stack.rest_port, "GET", sel + 8,
	    &(struct h_opts){ .hdrs = hv }) == -1)
		ck_abort_msg("direct: %s", d.err);
	same(&d, &r, "todos as alice");
	h_resp_free(&d);
	h_resp_free(&r);

	call(&r, g_anon.port, USER, "POST", "/rest/v1/todos", js,
	    "{\"task\":\"alice: through supagate\"}");
	ck_assert_msg(r.status == 201 && json_all_eq(r.body, "user_id",
	    ALICE), "insert as alice: %ld %s", r.status, r.body);
	h_resp_free(&r);

	call(&r, g_anon.port, USER, "GET", sel, NULL, NULL);
	ck_assert_msg(r.status == 200 && json_array_len(r.body) == 3 &&
	    json_all_eq(r.body, "user_id", ALICE) &&
	    strstr(r.body, "through supagate") != NULL,
	    "alice's todos after insert: %ld %s", r.status, r.body);
	h_resp_free(&r);

	/* keyless runs as anon: RLS shows nothing, insert refused */
	call(&r, g_anon.port, KEYLESS, "GET", sel, NULL, NULL);
	ck_assert_msg(r.status == 200 && strcmp(r.body, "[]") == 0,
	    "anon todos: %ld %s", r.status, r.body);
	h_resp_free(&r);
	call(&r, g_anon.port, KEYLESS, "POST", "/rest/v1/todos", js,
	    "{\"task\":\"anon\"}");
	ck_assert_msg(r.status == 401 || r.status == 403,
	    "anon insert into todos: %ld %s", r.status, r.body);
	h_resp_free(&r);
	stack_reset();
}
END_TEST

START_TEST(user_jwt_untouched)
{
	struct h_resp	r;
	char		buf[1200];
	double		n;

	call(&r, g_anon.port, USER, "GET", "/functions/v1/echo", NULL, NULL);
	ck_assert_msg(r.status == 200, "echo: %ld %s", r.status, r.body);
	json_path_str(r.body, "headers", "authorization", buf, sizeof(buf));
	ck_assert_msg(strcmp(buf, h_fmt("Bearer %s", user_jwt)) == 0,
	    "authorization upstream: %s", buf);
	json_path_str(r.body, "headers", "apikey", buf, sizeof(buf));
	ck_assert_msg(strcmp(buf, anon_key) == 0, "apikey upstream: %s", buf);
	h_resp_free(&r);

	call(&r, g_anon.port, USER, "GET", "/rest/v1/rpc/whoami", NULL, NULL);
	ck_assert_msg(r.status == 200, "whoami: %ld %s", r.status, r.body);
	h_json_str(r.body, "sub", buf, sizeof(buf));
	ck_assert_msg(strcmp(buf, ALICE) == 0, "sub: %s", r.body);
	h_json_str(r.body, "role", buf, sizeof(buf));
	ck_assert_msg(strcmp(buf, "authenticated") == 0, "role: %s", r.body);
	h_json_str(r.body, "db_role", buf, sizeof(buf));
	ck_assert_msg(strcmp(buf, "authenticated") == 0, "db_role: %s",
	    r.body);
	ck_assert(h_json_num(r.body, "exp", &n) == 0);
	h_resp_free(&r);
}
END_TEST

START_TEST(user_jwt_replaced)
{
	struct h_resp	r;
	char		buf[1200];

	call(&r, g_replace.port, USER, "GET", "/rest/v1/rpc/whoami", NULL,
	    NULL);
	ck_assert_msg(r.status == 200, "whoami: %ld %s", r.status, r.body);
	h_json_str(r.body, "role", buf, sizeof(buf));
	ck_assert_msg(strcmp(buf, "anon") == 0, "role: %s", r.body);
	ck_assert_msg(h_json_str(r.body, "sub", buf, sizeof(buf)) == -1,
	    "sub: %s", r.body);
	h_resp_free(&r);

	call(&r, g_replace.port, USER, "GET", "/rest/v1/todos?select=id",
	    NULL, NULL);
	ck_assert_msg(r.status == 200 && strcmp(r.body, "[]") == 0,
	    "todos with replace: %ld %s", r.status, r.body);
	h_resp_free(&r);

	call(&r, g_replace.port, USER, "GET", "/functions/v1/echo", NULL,
	    NULL);
	json_path_str(r.body, "headers", "authorization", buf, sizeof(buf));
	ck_assert_msg(strcmp(buf, h_fmt("Bearer %s", anon_key)) == 0,
	    "authorization with replace: %s", buf);
	h_resp_free(&r);
}
END_TEST

/* ---- functions keyless ----------------------------------------------- */

START_TEST(fn_hello)
{
	static const char *const js[] = {
		"Content-Type: application/json", NULL
	};
	struct h_resp	r;
	struct h_opts	o;

	call(&r, g_anon.port, KEYLESS, "POST", "/functions/v1/hello", js,
	    "{\"name\":\"supagate\"}");
	ck_assert_msg(r.status == 200 &&
	    strcmp(r.body, "{\"message\":\"Hello supagate!\"}") == 0,
	    "hello: %ld %s", r.status, r.body);
	h_resp_free(&r);
	/* without supagate and without a key the router refuses */
	memset(&o, 0, sizeof(o));
	o.hdrs = js;
	o.body = "{}";
	o.body_len = 2;
	o.has_body = 1;
	ck_assert(h_req(&r, h_stack.functions_port, "POST", "/hello", &o) == 0);
	ck_assert_msg(r.status == 401, "direct keyless: %ld", r.status);
	h_resp_free(&r);
	/* a placeholder is replaced too */
	call(&r, g_anon.port, PLACEHOLDER, "POST", "/functions/v1/hello", js,
	    "{\"name\":\"p\"}");
	ck_assert_msg(r.status == 200 &&
	    strcmp(r.body, "{\"message\":\"Hello p!\"}") == 0,
	    "hello with placeholder: %ld %s", r.status, r.body);
	h_resp_free(&r);
}
END_TEST

START_TEST(fn_echo_headers)
{
	static const char *const two[] = {
		"apikey: a-placeholder", "apikey: another", NULL
	};
	struct h_resp	r;
	char		buf[1200];

	call(&r, g_anon.port, KEYLESS, "GET", "/functions/v1/echo", NULL,
	    NULL);
	ck_assert_msg(r.status == 200, "echo: %ld %s", r.status, r.body);
	/* Deno joins repeated headers with ", ": equality means one */
	json_path_str(r.body, "headers", "apikey", buf, sizeof(buf));
	ck_assert_msg(strcmp(buf, anon_key) == 0, "apikey: %s", buf);
	json_path_str(r.body, "headers", "authorization", buf, sizeof(buf));
	ck_assert_msg(strcmp(buf, h_fmt("Bearer %s", anon_key)) == 0,
	    "authorization: %s", buf);
	json_path_str(r.body, "headers", "user-agent", buf, sizeof(buf));
	ck_assert_msg(strncmp(buf, "supagate/", 9) == 0, "user-agent: %s",
	    buf);
	h_resp_free(&r);

	/* the client's own User-Agent is not what goes upstream */
	call(&r, g_anon.port, KEYLESS, "GET", "/functions/v1/echo",
	    (const char *const[]){ "User-Agent: client/1.0", NULL }, NULL);
	json_path_str(r.body, "headers", "user-agent", buf, sizeof(buf));
	ck_assert_msg(strncmp(buf, "supagate/", 9) == 0, "user-agent: %s",
	    buf);
	h_resp_free(&r);

	call(&r, g_anon.port, KEYLESS, "GET", "/functions/v1/echo", two, NULL);
	json_path_str(r.body, "headers", "apikey", buf, sizeof(buf));
	ck_assert_msg(strcmp(buf, anon_key) == 0, "two apikeys sent: %s",
	    buf);
	h_resp_free(&r);
}
END_TEST

START_TEST(fn_text_status)
{
	struct h_resp	r;

	call(&r, g_anon.port, KEYLESS, "GET", "/functions/v1/text", NULL, NULL);
	ck_assert_msg(r.status == 200 &&
	    strcmp(r.body, "Hello from a text function\n") == 0,
	    "text: %ld %s", r.status, r.body);
	ck_assert_str_eq(h_hdr(&r, "Content-Type"),
	    "text/plain; charset=utf-8");
	h_resp_free(&r);

	call(&r, g_anon.port, KEYLESS, "GET", "/functions/v1/status?code=418",
	    NULL, NULL);
	ck_assert_msg(r.status == 418 &&
	    strcmp(r.body, "{\"error\":\"status 418\",\"code\":418}") == 0,
	    "status: %ld %s", r.status, r.body);
	h_resp_free(&r);

	call(&r, g_anon.port, KEYLESS, "GET",
	    "/functions/v1/status?code=503&retry_after=7", NULL, NULL);
	ck_assert_msg(r.status == 503, "status 503: %ld %s", r.status, r.body);
	ck_assert_str_eq(h_hdr(&r, "Retry-After"), "7");
	h_resp_free(&r);
}
END_TEST

START_TEST(fn_binary)
{
	struct h_resp	r;
	uint32_t	h;
	char		want[16];

	call(&r, g_anon.port, KEYLESS, "GET",
	    "/functions/v1/binary?size=1048576", NULL, NULL);
	ck_assert_msg(r.status == 200, "binary: %ld %s", r.status, r.body);
	ck_assert_msg(r.body_total == 1048576 && r.body_len == 1048576,
	    "binary: %llu bytes", (unsigned long long)r.body_total);
	h = fnv1a(0x811c9dc5u, (const unsigned char *)r.body, r.body_len);
	snprintf(want, sizeof(want), "%08x", h);
	ck_assert_str_eq(h_hdr(&r, "x-fnv1a32"), want);
	ck_assert_str_eq(h_hdr(&r, "Content-Type"), "application/octet-stream");
	h_resp_free(&r);
}
END_TEST

START_TEST(fn_sse)
{
	struct h_resp	r;
	const char	*p;
	int		 n = 0;

	call(&r, g_anon.port, KEYLESS, "GET",
	    "/functions/v1/sse?count=3&interval=100", NULL, NULL);
	ck_assert_msg(r.status == 200, "sse: %ld %s", r.status, r.body);
	ck_assert_str_eq(h_hdr(&r, "Content-Type"), "text/event-stream");
	for (p = r.body; (p = strstr(p, "event: tick\n")) != NULL; p++)
		n++;
	ck_assert_msg(n == 3, "%d events: %s", n, r.body);
	ck_assert(strstr(r.body, "id: 3\n") != NULL);
	h_resp_free(&r);
}
END_TEST

/* the first event reaches the client before the function sends the next */
START_TEST(fn_sse_streams)
{
	struct pollfd	 pfd;
	char		 buf[8192];
	size_t		 len = 0;
	ssize_t		 n;
	int64_t		 deadline;
	int		 fd;
	const char	*req = "GET /functions/v1/sse?count=2&interval=4000 "
	    "HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";

	fd = h_connect(g_anon.port);
	ck_assert(fd != -1);
	ck_assert(h_send_all(fd, req, strlen(req), 5000) == 0);
	buf[0] = '\0';
	deadline = h_now_ms() + 3000;	/* well before event 2 at 4 s */
	while (strstr(buf, "id: 1\n") == NULL && len < sizeof(buf) - 1 &&
	    h_now_ms() < deadline) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		if ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
	}
	close(fd);
	ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0 &&
	    strstr(buf, "id: 1\n") != NULL && strstr(buf, "id: 2\n") == NULL,
	    "the first event did not arrive on its own (buffered?): %s", buf);
}
END_TEST

/*
 * A client that leaves in the middle of an event stream ends the request:
 * supagate stops the upstream transfer instead of holding it until the
 * function next writes (an idle stream might never write again).
 */
START_TEST(fn_sse_client_gone)
{
	char		 buf[4096];
	size_t		 len = 0;
	ssize_t		 n;
	int64_t		 deadline;
	double		 v = -1;
	int		 fd;
	const char	*req = "GET /functions/v1/sse?count=2&interval=20000 "
	    "HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
	struct h_proc	 g;

	/* a supagate of its own: nothing else in flight there */
	ck_assert_msg(h_gate_start(&g, base_conf(h_stack.rest_url), 0,
	    NULL) == 0, "supagate did not start");
	fd = h_connect(g.port);
	ck_assert(fd != -1);
	ck_assert(h_send_all(fd, req, strlen(req), 5000) == 0);
	buf[0] = '\0';
	deadline = h_now_ms() + 5000;
	while (strstr(buf, "id: 1\n") == NULL && len < sizeof(buf) - 1 &&
	    h_now_ms() < deadline) {
		struct pollfd	pfd = { .fd = fd, .events = POLLIN };

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		if ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
	}
	ck_assert_msg(strstr(buf, "id: 1\n") != NULL, "no first event: %s",
	    buf);
	close(fd);
	/* only the metrics request itself should remain in flight */
	deadline = h_now_ms() + 3000;
	do {
		h_sleep_ms(100);
		if (h_metric(g.port, "supagate_inflight_requests", "",
		    &v) == -1)
			v = -1;
	} while (v != 1 && h_now_ms() < deadline);
	h_stop(&g, 1000, NULL);
	ck_assert_msg(v == 1, "3 s after the client closed an event stream, "
	    "supagate_inflight_requests is %g (want 1: the stream's upstream "
	    "transfer was not stopped)", v);
}
END_TEST

START_TEST(fn_sink_20m)
{
	static const char *const oct[] = {
		"Content-Type: application/octet-stream", NULL
	};
	const size_t	 len = 20u * 1024 * 1024;
	unsigned char	*b = malloc(len);
	struct h_resp	 r;
	struct h_opts	 o;
	char		 want[16], got[16];
	double		 n;

	ck_assert(b != NULL);
	pattern_fill(b, 0, len);
	snprintf(want, sizeof(want), "%08x", fnv1a(0x811c9dc5u, b, len));
	memset(&o, 0, sizeof(o));
	o.hdrs = oct;
	o.body = b;
	o.body_len = len;
	o.has_body = 1;
	o.timeout_ms = 60000;
	ck_assert_msg(h_req(&r, g_anon.port, "POST", "/functions/v1/sink",
	    &o) == 0, "sink: %s", r.err);
	ck_assert_msg(r.status == 200, "sink: %ld %s", r.status, r.body);
	ck_assert_msg(h_json_num(r.body, "bytes", &n) == 0 &&
	    n == (double)len, "sink: %s", r.body);
	h_json_str(r.body, "fnv1a32", got, sizeof(got));
	ck_assert_str_eq(got, want);
	h_resp_free(&r);
	free(b);
}
END_TEST

/* ---- apikey in the query, duplicate keys ----------------------------- */

START_TEST(query_apikey_rest)
{
	static const char	 path[] =
	    "/rest/v1/countries?select=id,name&order=id";
	struct h_resp		 d, r;

	/* PostgREST itself takes apikey= for a filter and fails */
	call(&d, 0, DIRECT, "GET", h_fmt("%s&apikey=placeholder", path),
	    NULL, NULL);
	ck_assert_msg(d.status == 400, "direct with ?apikey=: %ld %s",
	    d.status, d.body);
	h_resp_free(&d);

	call(&d, 0, DIRECT, "GET", path, NULL, NULL);
	call(&r, g_anon.port, KEYLESS, "GET",
	    h_fmt("%s&apikey=placeholder", path), NULL, NULL);
	same(&d, &r, "?apikey= at the end");
	h_resp_free(&r);
	call(&r, g_anon.port, KEYLESS, "GET",
	    "/rest/v1/countries?apikey=placeholder&select=id,name&order=id",
	    NULL, NULL);
	same(&d, &r, "?apikey= first");
	h_resp_free(&r);
	call(&r, g_anon.port, PLACEHOLDER, "GET",
	    h_fmt("%s&apikey=placeholder", path),
	    (const char *const[]){ "apikey: second", NULL }, NULL);
	same(&d, &r, "?apikey= with two apikey headers");
	h_resp_free(&r);
	h_resp_free(&d);
}
END_TEST

START_TEST(query_apikey_echo)
{
	static const char *const two[] = {
		"apikey: placeholder-1", "apikey: placeholder-2", NULL
	};
	struct h_resp	 r;
	char		 buf[1200], *q;

	call(&r, g_anon.port, KEYLESS, "GET",
	    "/functions/v1/echo?apikey=a&apikey=b&x=1", two, NULL);
	ck_assert_msg(r.status == 200, "echo: %ld %s", r.status, r.body);
	q = json_member(r.body, "query");
	ck_assert_msg(q != NULL && strcmp(q, "{\"x\":\"1\"}") == 0,
	    "query upstream: %s", q ? q : "(none)");
	free(q);
	json_path_str(r.body, "raw_query", NULL, buf, sizeof(buf));
	ck_assert_str_eq(buf, "x=1");
	json_path_str(r.body, "headers", "apikey", buf, sizeof(buf));
	ck_assert_msg(strcmp(buf, anon_key) == 0, "apikey upstream: %s", buf);
	h_resp_free(&r);
}
END_TEST

/* ---- upstream failures ----------------------------------------------- */

START_TEST(upstream_down)
{
	struct h_resp	r;
	double		v = 0;

	call(&r, g_fail.port, KEYLESS, "GET", "/rest/v1/countries", NULL,
	    NULL);
	ck_assert_msg(h_is_error(&r, 502, "upstream_unavailable") == 0,
	    "rest down: %ld %s", r.status, r.body);
	h_resp_free(&r);
	/* the next request (another route, same supagate) works */
	call(&r, g_fail.port, KEYLESS, "POST", "/functions/v1/hello",
	    (const char *const[]){ "Content-Type: application/json", NULL },
	    "{\"name\":\"again\"}");
	ck_assert_msg(r.status == 200 && strstr(r.body, "Hello again!"),
	    "after 502: %ld %s", r.status, r.body);
	h_resp_free(&r);
	/* and the down route still answers cleanly */
	call(&r, g_fail.port, KEYLESS, "GET", "/rest/v1/cities", NULL, NULL);
	ck_assert_msg(h_is_error(&r, 502, "upstream_unavailable") == 0,
	    "rest down again: %ld %s", r.status, r.body);
	h_resp_free(&r);
	ck_assert_msg(h_metric(g_fail.port, "supagate_upstream_errors_total",
	    "route=rest,kind=connect", &v) == 0 && v >= 1,
	    "connect errors: %g", v);
}
END_TEST

START_TEST(functions_slow)
{
	struct h_resp	r;
	double		v = 0;
	int64_t		t0 = h_now_ms();

	call(&r, g_fail.port, KEYLESS, "GET", "/functions/v1/slow?ms=3000",
	    NULL, NULL);
	ck_assert_msg(h_is_error(&r, 504, "upstream_timeout") == 0,
	    "slow function: %ld %s", r.status, r.body);
	ck_assert_msg(h_now_ms() - t0 < 2900, "504 took %lld ms",
	    (long long)(h_now_ms() - t0));
	h_resp_free(&r);
	call(&r, g_fail.port, KEYLESS, "GET", "/functions/v1/text", NULL, NULL);
	ck_assert_msg(r.status == 200, "after 504: %ld %s", r.status, r.body);
	h_resp_free(&r);
	ck_assert_msg(h_metric(g_fail.port, "supagate_upstream_errors_total",
	    "route=functions,kind=timeout", &v) == 0 && v >= 1,
	    "functions timeouts: %g", v);
}
END_TEST

START_TEST(rest_slow)
{
	struct h_resp	r, d;
	double		v = 0;

	call(&r, g_slow.port, KEYLESS, "GET", "/rest/v1/rpc/sleep_ms?ms=3000",
	    NULL, NULL);
	ck_assert_msg(h_is_error(&r, 504, "upstream_timeout") == 0,
	    "rpc/sleep_ms: %ld %s", r.status, r.body);
	h_resp_free(&r);
	call(&d, 0, DIRECT, "GET", "/rest/v1/countries?order=id", NULL, NULL);
	call(&r, g_slow.port, KEYLESS, "GET", "/rest/v1/countries?order=id",
	    NULL, NULL);
	same(&d, &r, "after 504");
	h_resp_free(&r);
	h_resp_free(&d);
	ck_assert_msg(h_metric(g_slow.port, "supagate_upstream_errors_total",
	    "route=rest,kind=timeout", &v) == 0 && v >= 1,
	    "rest timeouts: %g", v);
}
END_TEST

/* ---- the access logs ------------------------------------------------- */

START_TEST(logs_redacted)
{
	static const char *const bad[] = { "anon key", "service key",
	    "user JWT", "JWT secret" };
	const char	*secret[4];
	char		*log;
	size_t		 g, i;

	secret[0] = anon_key;
	secret[1] = service_key;
	secret[2] = user_jwt;
	secret[3] = jwt_secret;
	for (g = 0; g < NGATES; g++) {
		log = h_slurp(gates[g]->log, NULL);
		ck_assert_msg(log != NULL, "no log %s", gates[g]->log);
		ck_assert_msg(strstr(log, " /rest/v1/") != NULL ||
		    strstr(log, " /functions/v1/") != NULL,
		    "no access lines in %s", gates[g]->log);
		for (i = 0; i < 4; i++)
			ck_assert_msg(strstr(log, secret[i]) == NULL,
			    "%s appears in %s", bad[i], gates[g]->log);
		/* nor a recognisable piece of a JWT signature */
		for (i = 0; i < 3; i++)
			ck_assert_msg(strstr(log, strrchr(secret[i], '.'))
			    == NULL, "%s signature appears in %s", bad[i],
			    gates[g]->log);
		if (gates[g] == &g_anon) {
			ck_assert_msg(strstr(log, "apikey=[redacted]") != NULL,
			    "no apikey=[redacted] in %s", gates[g]->log);
			ck_assert_msg(strstr(log, "apikey=placeholder") ==
			    NULL && strstr(log, "apikey=a&") == NULL,
			    "a query apikey is logged in %s", gates[g]->log);
		}
		free(log);
	}
}
END_TEST

/* ---- set-up and tear-down -------------------------------------------- */

/* before stack-down (h_stack_up) */
static void
stop_gates(void)
{
	size_t	g;
	int64_t	t0;
	int	killed;

	for (g = 0; g < NGATES; g++) {
		if (gates[g]->pid <= 0)
			continue;
		t0 = h_now_ms();
		h_stack_gate_stop(gates[g], 3000, &killed);
		if (killed || h_now_ms() - t0 > 1000)
			fprintf(stderr, "check_stack: supagate %d took %lld ms "
			    "to stop%s\n", (int)g, (long long)(h_now_ms() - t0),
			    killed ? " and was killed" : "");
	}
}

static void
read_keys(void)
{
	if (h_stack.rest_port <= 0 || h_stack.functions_port <= 0 ||
	    h_stack.anon_key_file[0] == '\0')
		h_die("stack.env lacks REST_URL, FUNCTIONS_URL or key files");
	if (h_read_secret(h_stack.anon_key_file, anon_key,
	    sizeof(anon_key)) == -1 ||
	    h_read_secret(h_stack.service_key_file, service_key,
	    sizeof(service_key)) == -1 ||
	    h_read_secret(h_stack.jwt_secret_file, jwt_secret,
	    sizeof(jwt_secret)) == -1)
		h_die("cannot read the stack's keys");
}

/* the lines every supagate here shares */
static const char *
base_conf(const char *rest)
{
	return h_fmt(
	    "listen 127.0.0.1:0\n"
	    "state-dir @DIR@/state\n"
	    "rest-upstream %s\n"
	    "functions-upstream %s\n"
	    "%s%s%s"
	    "%s%s%s"
	    "anon-key-file %s\n",
	    rest, h_stack.functions_url,
	    h_stack.auth_url[0] ? "auth-upstream " : "", h_stack.auth_url,
	    h_stack.auth_url[0] ? "\n" : "",
	    h_stack.storage_url[0] ? "storage-upstream " : "",
	    h_stack.storage_url,
	    h_stack.storage_url[0] ? "\n" : "",
	    h_stack.anon_key_file);
}

static void
setup(void)
{
	const char	*why;

	h_init();
	if ((why = h_stack_up("sg-stack", stop_gates)) != NULL)
		h_die(why);
	read_keys();
	if (h_stack_jwt(user_jwt, sizeof(user_jwt), ALICE,
	    "alice@example.com", 3600) == -1)
		h_die("cannot mint the user JWT");

	h_stack_gate_start(&g_anon, "anon", h_fmt("%smax-body-size 64M\n",
	    base_conf(h_stack.rest_url)));
	h_stack_gate_start(&g_svc, "service", h_fmt("%s"
	    "auth-mode service\n"
	    "service-key-file %s\n"
	    "expose GET,HEAD,POST,PATCH,DELETE /rest/v1/products\n"
	    "expose GET /rest/v1/countries\n"
	    "expose GET /functions/v1/echo\n",
	    base_conf(h_stack.rest_url), h_stack.service_key_file));
	h_stack_gate_start(&g_replace, "replace",
	    h_fmt("%sclient-auth replace\n", base_conf(h_stack.rest_url)));
	h_stack_gate_start(&g_fail, "fail", h_fmt("%sfunctions-timeout 1s\n",
	    base_conf(h_fmt("http://127.0.0.1:%d", closed_port()))));
	h_stack_gate_start(&g_slow, "slow", h_fmt("%supstream-timeout 1s\n",
	    base_conf(h_stack.rest_url)));
}

static Suite *
stack_suite(void)
{
	Suite	*s = suite_create("stack");
	TCase	*tc;

	tc = tcase_create("rest_keyless_equals_direct");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, rest_equal, 0, NREST);
	suite_add_tcase(s, tc);

	tc = tcase_create("service_mode");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, service_writes_products);
	tcase_add_test(tc, service_not_exposed);
	suite_add_tcase(s, tc);

	tc = tcase_create("user_jwt");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, user_jwt_rls);
	tcase_add_test(tc, user_jwt_untouched);
	tcase_add_test(tc, user_jwt_replaced);
	suite_add_tcase(s, tc);

	tc = tcase_create("functions_keyless");
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, fn_hello);
	tcase_add_test(tc, fn_echo_headers);
	tcase_add_test(tc, fn_text_status);
	tcase_add_test(tc, fn_binary);
	tcase_add_test(tc, fn_sse);
	tcase_add_test(tc, fn_sse_streams);
	tcase_add_test(tc, fn_sse_client_gone);
	tcase_add_test(tc, fn_sink_20m);
	suite_add_tcase(s, tc);

	tc = tcase_create("query_apikey");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, query_apikey_rest);
	tcase_add_test(tc, query_apikey_echo);
	suite_add_tcase(s, tc);

	tc = tcase_create("upstream_failures");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, upstream_down);
	tcase_add_test(tc, functions_slow);
	tcase_add_test(tc, rest_slow);
	suite_add_tcase(s, tc);

	/* last: it reads the logs every case above wrote */
	tc = tcase_create("logs");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, logs_redacted);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return h_stack_main(setup, stack_suite);
}
