/* check_policy: unit tests for the request policy */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "conf.h"
#include "crypto.h"
#include "policy.h"
#include "ck_run.h"

#define TIMEOUT_S	10
#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* unsigned test JWTs: header {"alg":"HS256","typ":"JWT"} */
#define JWT_HDR		"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
#define JWT_SIG		".c2lnbmF0dXJlLW5vdC1jaGVja2Vk"
/* {"role":"anon","iss":"supabase"} */
#define JWT_ANON	JWT_HDR "eyJyb2xlIjoiYW5vbiIsImlzcyI6InN1cGFiYXNlIn0" \
			JWT_SIG
/* {"role":"service_role"} */
#define JWT_SERVICE	JWT_HDR "eyJyb2xlIjoic2VydmljZV9yb2xlIn0" JWT_SIG
/* {"role":"authenticated","sub":"u1"} */
#define JWT_USER	JWT_HDR \
			"eyJyb2xlIjoiYXV0aGVudGljYXRlZCIsInN1YiI6InUxIn0" \
			JWT_SIG
/* {"sub":"u2"} */
#define JWT_NOROLE	JWT_HDR "eyJzdWIiOiJ1MiJ9" JWT_SIG
/* {"role":"Anon"}: not the anon role (roles are case-sensitive) */
#define JWT_ANONCASE	JWT_HDR "eyJyb2xlIjoiQW5vbiJ9" JWT_SIG

static char *
repeat(char c, size_t n, const char *prefix, const char *suffix)
{
	size_t	 pl = strlen(prefix), sl = strlen(suffix);
	char	*s;

	s = malloc(pl + n + sl + 1);
	ck_assert_ptr_nonnull(s);
	memcpy(s, prefix, pl);
	memset(s + pl, c, n);
	memcpy(s + pl + n, suffix, sl + 1);
	return s;
}

/* routes */

static const struct {
	const char		*path;
	enum policy_route	 route;
	const char		*sub;
} route_cases[] = {
	{ "/rest/v1",			POLICY_ROUTE_REST,	"" },
	{ "/rest/v1/",			POLICY_ROUTE_REST,	"/" },
	{ "/rest/v1/todos",		POLICY_ROUTE_REST,	"/todos" },
	{ "/rest/v1/rpc/fn",		POLICY_ROUTE_REST,	"/rpc/fn" },
	{ "/rest/v10",			POLICY_ROUTE_NONE,	NULL },
	{ "/rest/v1x",			POLICY_ROUTE_NONE,	NULL },
	{ "/rest/v",			POLICY_ROUTE_NONE,	NULL },
	{ "/rest",			POLICY_ROUTE_NONE,	NULL },
	{ "/REST/v1",			POLICY_ROUTE_NONE,	NULL },
	{ "//rest/v1",			POLICY_ROUTE_NONE,	NULL },
	{ "/auth/v1/token",		POLICY_ROUTE_AUTH,	"/token" },
	{ "/auth/v1",			POLICY_ROUTE_AUTH,	"" },
	{ "/storage/v1/object/b/x",	POLICY_ROUTE_STORAGE,	"/object/b/x" },
	{ "/functions/v1/hello",	POLICY_ROUTE_FUNCTIONS,	"/hello" },
	{ "/functions/v1",		POLICY_ROUTE_FUNCTIONS,	"" },
	{ "/graphql/v1",		POLICY_ROUTE_GRAPHQL,	"" },
	{ "/graphql/v1/",		POLICY_ROUTE_GRAPHQL,	"/" },
	{ "/graphql/v2",		POLICY_ROUTE_NONE,	NULL },
	{ "/_supagate",			POLICY_ROUTE_ADMIN,	"" },
	{ "/_supagate/health",		POLICY_ROUTE_ADMIN,	"/health" },
	{ "/_supagatex",		POLICY_ROUTE_NONE,	NULL },
	{ "/realtime/v1/websocket",	POLICY_ROUTE_NONE,	NULL },
	{ "/",				POLICY_ROUTE_NONE,	NULL },
	{ "",				POLICY_ROUTE_NONE,	NULL },
};

START_TEST(test_route_of)
{
	const char	*sub = "unset";
	enum policy_route r;

	r = policy_route_of(route_cases[_i].path, &sub);
	ck_assert_msg(r == route_cases[_i].route, "%s: route %d",
	    route_cases[_i].path, (int)r);
	if (route_cases[_i].sub != NULL) {
		ck_assert_str_eq(sub, route_cases[_i].sub);
		/* sub points into path */
		ck_assert_ptr_eq(sub, route_cases[_i].path +
		    strlen(route_cases[_i].path) -
		    strlen(route_cases[_i].sub));
	}
	/* sub may be NULL */
	ck_assert(policy_route_of(route_cases[_i].path, NULL) == r);
}
END_TEST

START_TEST(test_route_misc)
{
	const char	*sub = "unset";

	ck_assert(policy_route_of(NULL, &sub) == POLICY_ROUTE_NONE);
	ck_assert_ptr_nonnull(sub);
	ck_assert_str_eq(policy_route_name(POLICY_ROUTE_REST), "rest");
	ck_assert_str_eq(policy_route_name(POLICY_ROUTE_AUTH), "auth");
	ck_assert_str_eq(policy_route_name(POLICY_ROUTE_STORAGE), "storage");
	ck_assert_str_eq(policy_route_name(POLICY_ROUTE_FUNCTIONS),
	    "functions");
	ck_assert_str_eq(policy_route_name(POLICY_ROUTE_GRAPHQL), "graphql");
	ck_assert_str_eq(policy_route_name(POLICY_ROUTE_ADMIN), "admin");
	ck_assert_str_eq(policy_route_name(POLICY_ROUTE_NONE), "none");
	ck_assert_str_eq(policy_route_name(POLICY_ROUTE__N), "none");
	ck_assert_str_eq(policy_route_name((enum policy_route)99), "none");
}
END_TEST

/* paths */

static const char *const good_paths[] = {
	"/", "/rest/v1/todos", "/rest/v1/todos/", "/a/b%20c", "/a/%7Efoo",
	"/storage/v1/object/public/b/x.png", "/a/...", "/a/.x", "/a/..x",
	"/a/x..", "/a/x.", "/a/b:c@d!$&'()*+,;=", "/a//b", "/a/%2e%2e%2e",
	"/a/%25", "/a/%252e%252e/b", "/rest/v1/rpc/fn", "/a/-._~", "/a/%ff",
	"/%2ea", "/a/.%2e.",
};

static const char *const bad_paths[] = {
	"", "rest/v1", "*", "/a b", "/a\tb", "/a\x01", "/a\x7f", "/a\x80",
	"/a\xff", "/caf\xc3\xa9", "/a%", "/a%2", "/a%zz", "/a%g0", "/a%0g",
	"/a%00", "/a/%00b", "/.", "/..", "/a/.", "/a/..", "/a/./b",
	"/a/../b", "/a/%2e/b", "/a/%2E%2e/b", "/%2e%2e/", "/%2e", "/a/.%2E",
	"/a%2f..%2fb", "/a%2F%2e%2e", "/a%5c..%5cb", "/a%5C.", "/a?b",
	"/a#b", "/a\"b", "/a<b", "/a>b", "/a\\b", "/a{b}", "/a|b", "/a^b",
	"/a`b", "/a[b]", "/a\r\nHost: x",
};

START_TEST(test_path_good)
{
	const char	*why = NULL;

	ck_assert_msg(policy_path_ok(good_paths[_i], &why) == 0,
	    "%s: %s", good_paths[_i], why != NULL ? why : "");
	ck_assert_int_eq(policy_path_ok(good_paths[_i], NULL), 0);
}
END_TEST

START_TEST(test_path_bad)
{
	const char	*why = NULL;

	ck_assert_msg(policy_path_ok(bad_paths[_i], &why) == -1, "%s",
	    bad_paths[_i]);
	ck_assert_ptr_nonnull(why);
	ck_assert(*why != '\0');
	ck_assert_int_eq(policy_path_ok(bad_paths[_i], NULL), -1);
}
END_TEST

START_TEST(test_path_hostile)
{
	const char	*why = NULL;
	char		*s;

	ck_assert_int_eq(policy_path_ok(NULL, &why), -1);
	ck_assert_ptr_nonnull(why);
	s = repeat('a', 100000, "/", "");
	ck_assert_int_eq(policy_path_ok(s, NULL), 0);
	free(s);
	s = repeat('a', 100000, "/", "/..");
	ck_assert_int_eq(policy_path_ok(s, NULL), -1);
	free(s);
	s = repeat('/', 100000, "", "");
	ck_assert_int_eq(policy_path_ok(s, NULL), 0);
	free(s);
	s = repeat('.', 100000, "/", "");
	ck_assert_int_eq(policy_path_ok(s, NULL), 0);
	free(s);
	s = repeat('a', 100000, "/", "%");
	ck_assert_int_eq(policy_path_ok(s, NULL), -1);
	free(s);
	s = repeat('a', 100000, "/", "%2");
	ck_assert_int_eq(policy_path_ok(s, NULL), -1);
	free(s);
}
END_TEST

/* upstream URLs */

static void
base_conf(struct conf *c)
{
	memset(c, 0, sizeof(*c));
	c->upstream = "http://up.example";
	c->client_auth = CONF_CLIENT_AUTH_PASS;
	c->auth_mode = CONF_AUTH_ANON;
}

static void
url_ok(const struct conf *c, enum policy_route r, const char *path,
    const char *sub, const char *query, const char *want)
{
	char	out[512];

	memset(out, 'x', sizeof(out));
	ck_assert_msg(policy_upstream_url(c, r, path, sub, query, out,
	    sizeof(out)) == 0, "%s", path);
	ck_assert_str_eq(out, want);
}

START_TEST(test_upstream_url)
{
	struct conf	c;
	char		out[64];
	const char	*want;
	size_t		n;

	base_conf(&c);
	url_ok(&c, POLICY_ROUTE_REST, "/rest/v1/todos", "/todos", "select=id",
	    "http://up.example/rest/v1/todos?select=id");
	url_ok(&c, POLICY_ROUTE_REST, "/rest/v1/todos", "/todos", NULL,
	    "http://up.example/rest/v1/todos");
	url_ok(&c, POLICY_ROUTE_REST, "/rest/v1/todos", "/todos", "",
	    "http://up.example/rest/v1/todos");
	url_ok(&c, POLICY_ROUTE_REST, "/rest/v1/todos", NULL, "a=1",
	    "http://up.example/rest/v1/todos?a=1");
	url_ok(&c, POLICY_ROUTE_GRAPHQL, "/graphql/v1", "", NULL,
	    "http://up.example/graphql/v1");
	url_ok(&c, POLICY_ROUTE_AUTH, "/auth/v1/token", "/token",
	    "grant_type=password",
	    "http://up.example/auth/v1/token?grant_type=password");

	c.upstream = "http://up.example/";
	url_ok(&c, POLICY_ROUTE_STORAGE, "/storage/v1/object/b/x",
	    "/object/b/x", NULL, "http://up.example/storage/v1/object/b/x");

	/* per-service overrides strip the prefix */
	c.svc_upstream[CONF_SVC_REST] = "http://127.0.0.1:3000";
	url_ok(&c, POLICY_ROUTE_REST, "/rest/v1/todos", "/todos", "x=1",
	    "http://127.0.0.1:3000/todos?x=1");
	url_ok(&c, POLICY_ROUTE_REST, "/rest/v1", "", NULL,
	    "http://127.0.0.1:3000");
	url_ok(&c, POLICY_ROUTE_REST, "/rest/v1/", "/", NULL,
	    "http://127.0.0.1:3000/");
	/* GraphQL through the REST override */
	url_ok(&c, POLICY_ROUTE_GRAPHQL, "/graphql/v1", "", NULL,
	    "http://127.0.0.1:3000/rpc/graphql");
	url_ok(&c, POLICY_ROUTE_GRAPHQL, "/graphql/v1", "", "q=1",
	    "http://127.0.0.1:3000/rpc/graphql?q=1");
	c.svc_upstream[CONF_SVC_REST] = "http://127.0.0.1:3000/";
	url_ok(&c, POLICY_ROUTE_REST, "/rest/v1/todos", "/todos", NULL,
	    "http://127.0.0.1:3000/todos");
	url_ok(&c, POLICY_ROUTE_GRAPHQL, "/graphql/v1", "", NULL,
	    "http://127.0.0.1:3000/rpc/graphql");
	/* a GraphQL override wins */
	c.svc_upstream[CONF_SVC_GRAPHQL] = "http://127.0.0.1:4000/graphql";
	url_ok(&c, POLICY_ROUTE_GRAPHQL, "/graphql/v1", "", NULL,
	    "http://127.0.0.1:4000/graphql");
	c.svc_upstream[CONF_SVC_AUTH] = "http://127.0.0.1:9999";
	url_ok(&c, POLICY_ROUTE_AUTH, "/auth/v1/token", "/token",
	    "grant_type=refresh_token",
	    "http://127.0.0.1:9999/token?grant_type=refresh_token");
	c.svc_upstream[CONF_SVC_FUNCTIONS] = "http://127.0.0.1:8000";
	url_ok(&c, POLICY_ROUTE_FUNCTIONS, "/functions/v1/hello", "/hello",
	    NULL, "http://127.0.0.1:8000/hello");
	/* storage has no override: the base URL */
	url_ok(&c, POLICY_ROUTE_STORAGE, "/storage/v1/bucket", "/bucket",
	    NULL, "http://up.example/storage/v1/bucket");

	/* no route, admin, no upstream */
	ck_assert_int_eq(policy_upstream_url(&c, POLICY_ROUTE_ADMIN,
	    "/_supagate/health", "/health", NULL, out, sizeof(out)), -1);
	ck_assert_int_eq(policy_upstream_url(&c, POLICY_ROUTE_NONE, "/x",
	    "/x", NULL, out, sizeof(out)), -1);
	ck_assert_int_eq(policy_upstream_url(&c, POLICY_ROUTE__N, "/x",
	    "/x", NULL, out, sizeof(out)), -1);
	ck_assert_int_eq(policy_upstream_url(&c, (enum policy_route)-1, "/x",
	    "/x", NULL, out, sizeof(out)), -1);
	c.upstream = NULL;
	ck_assert_int_eq(policy_upstream_url(&c, POLICY_ROUTE_STORAGE,
	    "/storage/v1/x", "/x", NULL, out, sizeof(out)), -1);
	c.upstream = "";
	ck_assert_int_eq(policy_upstream_url(&c, POLICY_ROUTE_STORAGE,
	    "/storage/v1/x", "/x", NULL, out, sizeof(out)), -1);
	url_ok(&c, POLICY_ROUTE_AUTH, "/auth/v1/user", "/user", NULL,
	    "http://127.0.0.1:9999/user");
	ck_assert_int_eq(policy_upstream_url(NULL, POLICY_ROUTE_REST,
	    "/rest/v1", "", NULL, out, sizeof(out)), -1);
	ck_assert_int_eq(policy_upstream_url(&c, POLICY_ROUTE_REST,
	    NULL, "", NULL, out, sizeof(out)), -1);
	/* sub NULL with a path of another route */
	ck_assert_int_eq(policy_upstream_url(&c, POLICY_ROUTE_REST,
	    "/auth/v1/user", NULL, NULL, out, sizeof(out)), -1);

	/* buffer edges */
	base_conf(&c);
	want = "http://up.example/rest/v1/t?a=1";
	n = strlen(want);
	ck_assert_int_eq(policy_upstream_url(&c, POLICY_ROUTE_REST,
	    "/rest/v1/t", "/t", "a=1", out, n + 1), 0);
	ck_assert_str_eq(out, want);
	ck_assert_int_eq(policy_upstream_url(&c, POLICY_ROUTE_REST,
	    "/rest/v1/t", "/t", "a=1", out, n), -1);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(policy_upstream_url(&c, POLICY_ROUTE_REST,
	    "/rest/v1/t", "/t", "a=1", out, n - 3), -1);
	ck_assert_int_eq(policy_upstream_url(&c, POLICY_ROUTE_REST,
	    "/rest/v1/t", "/t", "a=1", out, 5), -1);
	ck_assert_int_eq(policy_upstream_url(&c, POLICY_ROUTE_REST,
	    "/rest/v1/t", "/t", "a=1", out, 1), -1);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(policy_upstream_url(&c, POLICY_ROUTE_REST,
	    "/rest/v1/t", "/t", "a=1", out, 0), -1);
	ck_assert_int_eq(policy_upstream_url(&c, POLICY_ROUTE_REST,
	    "/rest/v1/t", "/t", "a=1", NULL, 10), -1);
}
END_TEST

START_TEST(test_upstream_url_long)
{
	struct conf	 c;
	char		*q, *out;
	size_t		 n = 200000;

	base_conf(&c);
	q = repeat('q', n, "", "");
	out = malloc(n + 64);
	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(policy_upstream_url(&c, POLICY_ROUTE_REST,
	    "/rest/v1/t", "/t", q, out, n + 64), 0);
	ck_assert_uint_eq(strlen(out), strlen("http://up.example/rest/v1/t?") +
	    n);
	ck_assert_int_eq(policy_upstream_url(&c, POLICY_ROUTE_REST,
	    "/rest/v1/t", "/t", q, out, n), -1);
	free(q);
	free(out);
}
END_TEST

/* apikey in the query */

static const struct {
	const char	*query;
	const char	*out;
	int		 removed;
	const char	*key;
} strip_cases[] = {
	{ "",			"",			0, "" },
	{ "select=id",		"select=id",		0, "" },
	{ "apikey=abc",		"",			1, "abc" },
	{ "apikey=abc&select=id", "select=id",		1, "abc" },
	{ "select=id&apikey=abc", "select=id",		1, "abc" },
	{ "a=1&apikey=abc&b=2",	"a=1&b=2",		1, "abc" },
	{ "api%6Bey=abc&b=2",	"b=2",			1, "abc" },
	{ "api%6bey=abc",	"",			1, "abc" },
	{ "%61%70%69%6b%65%79=x", "",			1, "x" },
	{ "apikey",		"",			1, "" },
	{ "apikey=",		"",			1, "" },
	{ "apikey==x",		"",			1, "=x" },
	{ "APIKEY=x",		"APIKEY=x",		0, "" },
	{ "ApiKey=x",		"ApiKey=x",		0, "" },
	{ "apikeys=x",		"apikeys=x",		0, "" },
	{ "xapikey=x",		"xapikey=x",		0, "" },
	{ "apike=x",		"apike=x",		0, "" },
	{ "api%6=x",		"api%6=x",		0, "" },
	{ "api%6Bey%00=x",	"api%6Bey%00=x",	0, "" },
	{ "apikey%00=x",	"apikey%00=x",		0, "" },
	{ "api+key=x",		"api+key=x",		0, "" },
	{ "apikey=a&apikey=b",	"",			2, "a" },
	{ "apikey=a&x=1&api%6Bey=b", "x=1",		2, "a" },
	{ "a=1&&b=2",		"a=1&&b=2",		0, "" },
	{ "&a=1&",		"&a=1&",		0, "" },
	{ "a=1&&apikey=x&&b=2",	"a=1&b=2",		1, "x" },
	{ "apikey=x&",		"",			1, "x" },
	{ "&apikey=x",		"",			1, "x" },
	{ "a=apikey",		"a=apikey",		0, "" },
	{ "order=apikey.desc&apikey=k", "order=apikey.desc", 1, "k" },
	{ "a=1;apikey=2",	"a=1;apikey=2",		0, "" },
	{ "apikey=a%26b&c",	"c",			1, "a%26b" },
	{ "apikey=" JWT_ANON "&select=*", "select=*",	1, JWT_ANON },
};

START_TEST(test_strip_apikey)
{
	char	out[256], key[256];
	int	n;

	memset(out, 'x', sizeof(out));
	memset(key, 'x', sizeof(key));
	n = policy_strip_apikey(strip_cases[_i].query, out, sizeof(out), key,
	    sizeof(key));
	ck_assert_msg(n == strip_cases[_i].removed, "%s: %d",
	    strip_cases[_i].query, n);
	ck_assert_str_eq(out, strip_cases[_i].out);
	ck_assert_str_eq(key, strip_cases[_i].key);
	/* key is optional */
	n = policy_strip_apikey(strip_cases[_i].query, out, sizeof(out), NULL,
	    0);
	ck_assert_int_eq(n, strip_cases[_i].removed);
	ck_assert_str_eq(out, strip_cases[_i].out);
}
END_TEST

#define BIG	200000

START_TEST(test_strip_apikey_edges)
{
	char	 out[16], key[8];
	char	*q, *big;
	size_t	 i, n;

	ck_assert_int_eq(policy_strip_apikey(NULL, out, sizeof(out), key,
	    sizeof(key)), 0);
	ck_assert_str_eq(out, "");
	ck_assert_str_eq(key, "");
	ck_assert_int_eq(policy_strip_apikey("a", NULL, 10, NULL, 0), -1);
	ck_assert_int_eq(policy_strip_apikey("a", out, 0, NULL, 0), -1);
	ck_assert_int_eq(policy_strip_apikey("", out, 1, NULL, 0), 0);
	ck_assert_int_eq(policy_strip_apikey("a", out, 1, NULL, 0), -1);
	ck_assert_str_eq(out, "");
	/* exact fit */
	ck_assert_int_eq(policy_strip_apikey("select=id", out, 10, NULL, 0),
	    0);
	ck_assert_str_eq(out, "select=id");
	ck_assert_int_eq(policy_strip_apikey("select=id", out, 9, NULL, 0),
	    -1);
	ck_assert_int_eq(policy_strip_apikey("apikey=k&a=12345678", out, 11,
	    NULL, 0), 1);
	ck_assert_str_eq(out, "a=12345678");
	ck_assert_int_eq(policy_strip_apikey("apikey=k&a=12345678", out, 10,
	    NULL, 0), -1);
	ck_assert_int_eq(policy_strip_apikey("a=1&b=2&apikey=k", out, 8,
	    NULL, 0), 1);
	ck_assert_int_eq(policy_strip_apikey("a=1&b=2&apikey=k", out, 7,
	    NULL, 0), -1);
	/* a key that does not fit is never truncated */
	ck_assert_int_eq(policy_strip_apikey("apikey=1234567", out,
	    sizeof(out), key, sizeof(key)), 1);
	ck_assert_str_eq(key, "1234567");
	ck_assert_int_eq(policy_strip_apikey("apikey=12345678", out,
	    sizeof(out), key, sizeof(key)), -1);
	ck_assert_str_eq(key, "");
	ck_assert_int_eq(policy_strip_apikey("apikey=1", out, sizeof(out),
	    key, 0), -1);
	/* only the first key is returned, the second need not fit */
	ck_assert_int_eq(policy_strip_apikey("apikey=1&apikey=123456789",
	    out, sizeof(out), key, sizeof(key)), 2);
	ck_assert_str_eq(key, "1");

	/* 20000 parameters with one apikey in the middle */
	n = 20000;
	q = malloc(n * 4 + 32);
	big = malloc(BIG);
	ck_assert_ptr_nonnull(q);
	ck_assert_ptr_nonnull(big);
	q[0] = '\0';
	for (i = 0; i < n; i++) {
		if (i == n / 2)
			strcat(q, "apikey=k&");
		strcat(q, i + 1 < n ? "a=1&" : "a=1");
	}
	ck_assert_int_eq(policy_strip_apikey(q, big, BIG, key,
	    sizeof(key)), 1);
	ck_assert_uint_eq(strlen(big), n * 4 - 1);
	ck_assert_ptr_null(strstr(big, "apikey"));
	ck_assert_ptr_null(strstr(big, "&&"));
	ck_assert_str_eq(key, "k");
	free(q);
	/* a long name that starts like apikey */
	q = repeat('y', 100000, "apikey", "=1");
	ck_assert_int_eq(policy_strip_apikey(q, big, BIG, NULL, 0), 0);
	ck_assert_str_eq(big, q);
	free(q);
	q = repeat('%', 100000, "", "");
	ck_assert_int_eq(policy_strip_apikey(q, big, BIG, NULL, 0), 0);
	free(q);
	free(big);
}
END_TEST

/* headers */

static const char *const drop_req[] = {
	"Connection", "connection", "CONNECTION", "Keep-Alive", "keep-alive",
	"Proxy-Connection", "Proxy-Authorization", "TE", "te", "Trailer",
	"Transfer-Encoding", "transfer-encoding", "Upgrade", "Host", "host",
	"Content-Length", "content-length", "Expect", "apikey", "apiKey",
	"APIKEY", "Authorization", "authorization", "User-Agent",
	"user-agent",
};

static const char *const keep_req[] = {
	"Accept", "Accept-Profile", "Content-Profile", "Content-Type",
	"Prefer", "Range", "Range-Unit", "X-Client-Info",
	"X-Supabase-Api-Version", "Cookie", "If-None-Match", "apikey2",
	"Authorizations", "xapikey", "Hostname", "Tus-Resumable", "",
	"Connection ", " Host",
};

static const char *const drop_resp[] = {
	"Connection", "connection", "Keep-Alive", "Proxy-Connection",
	"Proxy-Authenticate", "TE", "Trailer", "Transfer-Encoding",
	"TRANSFER-ENCODING", "Upgrade", "Content-Length", "content-length",
};

static const char *const keep_resp[] = {
	"Content-Type", "Content-Range", "Content-Location", "ETag",
	"Set-Cookie", "Location", "Cache-Control", "Vary",
	"Preference-Applied", "sb-auth-session-id", "WWW-Authenticate",
	"Content-Encoding", "", "Content-Lengthx",
};

START_TEST(test_headers)
{
	size_t	i;

	for (i = 0; i < NELEM(drop_req); i++)
		ck_assert_msg(policy_drop_request_header(drop_req[i]) == 1,
		    "%s", drop_req[i]);
	for (i = 0; i < NELEM(keep_req); i++)
		ck_assert_msg(policy_drop_request_header(keep_req[i]) == 0,
		    "%s", keep_req[i]);
	for (i = 0; i < NELEM(drop_resp); i++)
		ck_assert_msg(policy_drop_response_header(drop_resp[i]) == 1,
		    "%s", drop_resp[i]);
	for (i = 0; i < NELEM(keep_resp); i++)
		ck_assert_msg(policy_drop_response_header(keep_resp[i]) == 0,
		    "%s", keep_resp[i]);
	ck_assert_int_eq(policy_drop_request_header(NULL), 0);
	ck_assert_int_eq(policy_drop_response_header(NULL), 0);
	/* responses keep the credential and agent headers */
	ck_assert_int_eq(policy_drop_response_header("Authorization"), 0);
	ck_assert_int_eq(policy_drop_response_header("Host"), 0);
}
END_TEST

START_TEST(test_header_value)
{
	char	*s;

	ck_assert_int_eq(policy_header_value_bad("abc", 3), 0);
	ck_assert_int_eq(policy_header_value_bad("", 0), 0);
	ck_assert_int_eq(policy_header_value_bad(NULL, 0), 0);
	ck_assert_int_eq(policy_header_value_bad(NULL, 1), 1);
	ck_assert_int_eq(policy_header_value_bad("a\rb", 3), 1);
	ck_assert_int_eq(policy_header_value_bad("a\nb", 3), 1);
	ck_assert_int_eq(policy_header_value_bad("a\0b", 3), 1);
	ck_assert_int_eq(policy_header_value_bad("ab\r\n", 2), 0);
	ck_assert_int_eq(policy_header_value_bad("a\tb \x7f\x80", 6), 0);
	s = repeat('v', 100000, "", "\n");
	ck_assert_int_eq(policy_header_value_bad(s, strlen(s)), 1);
	ck_assert_int_eq(policy_header_value_bad(s, strlen(s) - 1), 0);
	free(s);
}
END_TEST

static const struct {
	const char	*value;
	const char	*name;
	int		 want;
} conn_cases[] = {
	{ "close",			"close",	1 },
	{ "Close",			"close",	1 },
	{ "keep-alive, X-Foo",		"x-foo",	1 },
	{ "keep-alive,X-Foo ",		"X-Foo",	1 },
	{ "keep-alive, X-Foo",		"keep-alive",	1 },
	{ " , ,x",			"x",		1 },
	{ "\tx\t",			"x",		1 },
	{ "a,,b",			"b",		1 },
	{ "X-Foo-Bar",			"X-Foo",	0 },
	{ "X-Foo",			"X-Foo-Bar",	0 },
	{ "xx",				"x",		0 },
	{ "a b",			"a",		0 },
	{ "",				"x",		0 },
	{ ",",				"x",		0 },
	{ "x",				"",		0 },
	{ NULL,				"x",		0 },
	{ "x",				NULL,		0 },
};

START_TEST(test_connection_lists)
{
	ck_assert_msg(policy_connection_lists(conn_cases[_i].value,
	    conn_cases[_i].name) == conn_cases[_i].want, "%s / %s",
	    conn_cases[_i].value != NULL ? conn_cases[_i].value : "NULL",
	    conn_cases[_i].name != NULL ? conn_cases[_i].name : "NULL");
}
END_TEST

/* Authorization */

#define KEEP		"<keep>"	/* the client's value is kept */
#define OURS		"Bearer " JWT_ANON

static const struct {
	enum conf_client_auth	 mode;
	int			 apikey_is_jwt;
	const char		*authz;
	const char		*client_key;
	int			 ret;
	const char		*out;	/* KEEP, a string or NULL */
} authz_cases[] = {
	{ CONF_CLIENT_AUTH_PASS, 1, NULL, NULL,			1, OURS },
	{ CONF_CLIENT_AUTH_PASS, 1, "", NULL,			1, OURS },
	{ CONF_CLIENT_AUTH_PASS, 1, "Bearer " JWT_USER, NULL,	1, KEEP },
	{ CONF_CLIENT_AUTH_PASS, 1, "bearer " JWT_USER, NULL,	1, KEEP },
	{ CONF_CLIENT_AUTH_PASS, 1, "BEARER   " JWT_USER, NULL,	1, KEEP },
	{ CONF_CLIENT_AUTH_PASS, 1, "Bearer " JWT_USER, JWT_ANON, 1, KEEP },
	{ CONF_CLIENT_AUTH_PASS, 1, "Bearer " JWT_NOROLE, NULL,	1, KEEP },
	{ CONF_CLIENT_AUTH_PASS, 1, "Bearer " JWT_ANONCASE, NULL, 1, KEEP },
	{ CONF_CLIENT_AUTH_PASS, 1, "Bearer\t" JWT_USER, NULL,	1, OURS },
	{ CONF_CLIENT_AUTH_PASS, 1, "Bearer" JWT_USER, NULL,	1, OURS },
	{ CONF_CLIENT_AUTH_PASS, 1, " Bearer " JWT_USER, NULL,	1, OURS },
	{ CONF_CLIENT_AUTH_PASS, 1, "Bearer " JWT_USER " ", NULL, 1, OURS },
	{ CONF_CLIENT_AUTH_PASS, 1, "Bearer " JWT_USER "\r\nX: y", NULL,
	    1, OURS },
	{ CONF_CLIENT_AUTH_PASS, 1, "Bearer " JWT_USER, JWT_USER, 1, OURS },
	{ CONF_CLIENT_AUTH_PASS, 1, "Bearer " JWT_ANON, NULL,	1, OURS },
	{ CONF_CLIENT_AUTH_PASS, 1, "Bearer " JWT_SERVICE, NULL, 1, OURS },
	{ CONF_CLIENT_AUTH_PASS, 1, "Bearer sb_publishable_xyz", NULL,
	    1, OURS },
	{ CONF_CLIENT_AUTH_PASS, 1, "Bearer sb_secret_xyz",
	    "sb_secret_xyz",					1, OURS },
	{ CONF_CLIENT_AUTH_PASS, 1, "Bearer SB_secret_x", NULL,	1, OURS },
	{ CONF_CLIENT_AUTH_PASS, 1, "Bearer sb_a.b.c", NULL,	1, OURS },
	{ CONF_CLIENT_AUTH_PASS, 1, "Bearer placeholder", NULL,	1, OURS },
	{ CONF_CLIENT_AUTH_PASS, 1, "Bearer placeholder", "placeholder",
	    1, OURS },
	/* beside an apikey, another token is the client's own: upstream judges */
	{ CONF_CLIENT_AUTH_PASS, 1, "Bearer not-a-jwt", "placeholder",
	    1, KEEP },
	{ CONF_CLIENT_AUTH_REPLACE, 1, "Bearer not-a-jwt", "placeholder",
	    1, OURS },
	/* JWT-shaped but undecodable: not an API key, kept */
	{ CONF_CLIENT_AUTH_PASS, 1, "Bearer a.b.c", NULL,	1, KEEP },
	{ CONF_CLIENT_AUTH_PASS, 1, "Bearer ", NULL,		1, OURS },
	{ CONF_CLIENT_AUTH_PASS, 1, "Bearer", NULL,		1, OURS },
	{ CONF_CLIENT_AUTH_PASS, 1, "Basic dXNlcjpwYXNz", NULL,	1, OURS },
	{ CONF_CLIENT_AUTH_PASS, 1, "Token " JWT_USER, NULL,	1, OURS },
	{ CONF_CLIENT_AUTH_PASS, 1, "Bearers " JWT_USER, NULL,	1, OURS },
	{ CONF_CLIENT_AUTH_PASS, 1, JWT_USER, NULL,		1, OURS },
	{ CONF_CLIENT_AUTH_REPLACE, 1, "Bearer " JWT_USER, NULL, 1, OURS },
	{ CONF_CLIENT_AUTH_REPLACE, 1, NULL, NULL,		1, OURS },
	/* sb_publishable_ apikey: no Authorization of ours */
	{ CONF_CLIENT_AUTH_PASS, 0, NULL, NULL,			0, NULL },
	{ CONF_CLIENT_AUTH_PASS, 0, "Bearer " JWT_USER, "sb_publishable_x",
	    1, KEEP },
	{ CONF_CLIENT_AUTH_PASS, 0, "Bearer sb_publishable_x",
	    "sb_publishable_x",					0, NULL },
	{ CONF_CLIENT_AUTH_PASS, 0, "Bearer " JWT_ANON, NULL,	0, NULL },
	{ CONF_CLIENT_AUTH_PASS, 0, "Basic x", NULL,		0, NULL },
	{ CONF_CLIENT_AUTH_REPLACE, 0, "Bearer " JWT_USER, NULL, 0, NULL },
};

START_TEST(test_authorization)
{
	struct secret	 key = { strlen(JWT_ANON), JWT_ANON };
	struct conf	 c;
	char		 buf[512];
	const char	*out = "unset";
	int		 ret;

	base_conf(&c);
	c.apikey = &key;
	c.client_auth = authz_cases[_i].mode;
	c.apikey_is_jwt = authz_cases[_i].apikey_is_jwt;
	ret = policy_authorization(&c, authz_cases[_i].authz,
	    authz_cases[_i].client_key, buf, sizeof(buf), &out);
	ck_assert_msg(ret == authz_cases[_i].ret, "case %d: ret %d", _i, ret);
	if (authz_cases[_i].out == NULL)
		ck_assert_ptr_null(out);
	else if (strcmp(authz_cases[_i].out, KEEP) == 0)
		ck_assert_msg(out == authz_cases[_i].authz, "case %d: not kept",
		    _i);
	else {
		ck_assert_ptr_eq(out, buf);
		ck_assert_str_eq(out, authz_cases[_i].out);
	}
}
END_TEST

START_TEST(test_authorization_edges)
{
	struct secret	 key = { strlen(JWT_ANON), JWT_ANON };
	struct conf	 c;
	char		 buf[512];
	const char	*out;
	char		*s;
	size_t		 n = strlen(OURS);

	base_conf(&c);
	c.apikey = &key;
	c.apikey_is_jwt = 1;
	/* exact fit, one short */
	ck_assert_int_eq(policy_authorization(&c, NULL, NULL, buf, n + 1,
	    &out), 1);
	ck_assert_str_eq(out, OURS);
	ck_assert_int_eq(policy_authorization(&c, NULL, NULL, buf, n, &out),
	    -1);
	ck_assert_ptr_null(out);
	ck_assert_int_eq(policy_authorization(&c, NULL, NULL, buf, 3, &out),
	    -1);
	ck_assert_int_eq(policy_authorization(&c, NULL, NULL, buf, 0, &out),
	    -1);
	ck_assert_int_eq(policy_authorization(&c, NULL, NULL, NULL, 100,
	    &out), -1);
	/* a kept token needs no buffer */
	ck_assert_int_eq(policy_authorization(&c, "Bearer " JWT_USER, NULL,
	    NULL, 0, &out), 1);
	ck_assert_str_eq(out, "Bearer " JWT_USER);
	/* no apikey at all: nothing to send */
	c.apikey = NULL;
	ck_assert_int_eq(policy_authorization(&c, NULL, NULL, buf,
	    sizeof(buf), &out), 0);
	ck_assert_ptr_null(out);
	ck_assert_int_eq(policy_authorization(NULL, NULL, NULL, buf,
	    sizeof(buf), &out), 0);
	c.apikey = &key;
	/* hostile bearer values */
	s = repeat('a', 100000, "Bearer ", "");
	ck_assert_int_eq(policy_authorization(&c, s, NULL, buf, sizeof(buf),
	    &out), 1);
	ck_assert_str_eq(out, OURS);
	free(s);
	s = repeat(' ', 100000, "Bearer", "");
	ck_assert_int_eq(policy_authorization(&c, s, NULL, buf, sizeof(buf),
	    &out), 1);
	ck_assert_str_eq(out, OURS);
	free(s);
	s = repeat('.', 100000, "Bearer ", "");
	ck_assert_int_eq(policy_authorization(&c, s, NULL, buf, sizeof(buf),
	    &out), 1);
	ck_assert_str_eq(out, OURS);
	free(s);
}
END_TEST

/* peers */

static struct sockaddr_storage	ss;

static const struct sockaddr *
sa_of(const char *addr)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else {
		ck_assert_msg(inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1,
		    "%s", addr);
		sin6->sin6_family = AF_INET6;
	}
	return (const struct sockaddr *)&ss;
}

static struct conf_cidr
cidr(const char *addr, int prefix)
{
	struct conf_cidr	c;

	memset(&c, 0, sizeof(c));
	c.prefix = prefix;
	if (inet_pton(AF_INET, addr, c.addr) == 1)
		c.family = AF_INET;
	else {
		ck_assert(inet_pton(AF_INET6, addr, c.addr) == 1);
		c.family = AF_INET6;
	}
	return c;
}

static const struct {
	const char	*addr;
	int		 loopback;
	int		 ok;	/* with the allow list below */
} peer_cases[] = {
	{ "127.0.0.1",		1, 1 },
	{ "127.255.255.254",	1, 1 },
	{ "127.0.0.0",		1, 1 },
	{ "::1",		1, 1 },
	{ "::ffff:127.0.0.1",	1, 1 },
	{ "::ffff:127.9.9.9",	1, 1 },
	{ "10.1.2.3",		0, 1 },
	{ "10.0.0.0",		0, 1 },
	{ "10.255.255.255",	0, 1 },
	{ "11.0.0.0",		0, 0 },
	{ "9.255.255.255",	0, 0 },
	{ "192.168.1.7",	0, 1 },
	{ "192.168.1.8",	0, 0 },
	{ "192.168.1.6",	0, 0 },
	{ "172.16.0.1",		0, 1 },
	{ "172.16.0.2",		0, 0 },
	{ "172.16.0.0",		0, 1 },
	{ "::ffff:10.9.9.9",	0, 1 },
	{ "::ffff:192.168.1.7",	0, 1 },
	{ "::ffff:192.168.1.6",	0, 0 },
	{ "2001:db8::5",	0, 1 },
	{ "2001:db8:ffff::1",	0, 1 },
	{ "2001:db9::",		0, 0 },
	{ "fd00::1",		0, 1 },
	{ "fd00::2",		0, 0 },
	{ "fe80::1",		0, 0 },
	{ "::2",		0, 0 },
	{ "::127.0.0.1",	0, 0 },
	{ "::",			0, 0 },
	{ "0.0.0.0",		0, 0 },
	{ "::ffff:0.0.0.0",	0, 0 },
	{ "128.0.0.1",		0, 0 },
	{ "255.255.255.255",	0, 0 },
};

START_TEST(test_peer)
{
	struct conf_cidr	list[5];
	struct conf		c;

	list[0] = cidr("10.0.0.0", 8);
	list[1] = cidr("192.168.1.7", 32);
	list[2] = cidr("172.16.0.0", 31);
	list[3] = cidr("2001:db8::", 32);
	list[4] = cidr("fd00::1", 128);
	base_conf(&c);
	c.allow_from = list;
	c.nallow_from = NELEM(list);

	ck_assert_msg(policy_peer_is_loopback(sa_of(peer_cases[_i].addr)) ==
	    peer_cases[_i].loopback, "%s", peer_cases[_i].addr);
	ck_assert_msg(policy_peer_ok(&c, sa_of(peer_cases[_i].addr)) ==
	    peer_cases[_i].ok, "%s", peer_cases[_i].addr);
	/* without an allow list only loopback passes */
	c.nallow_from = 0;
	ck_assert_int_eq(policy_peer_ok(&c, sa_of(peer_cases[_i].addr)),
	    peer_cases[_i].loopback);
	ck_assert_int_eq(policy_peer_ok(NULL, sa_of(peer_cases[_i].addr)),
	    peer_cases[_i].loopback);
}
END_TEST

START_TEST(test_peer_edges)
{
	struct conf_cidr	 l;
	struct conf		 c;
	struct sockaddr_un	 sun;
	struct sockaddr		 sa;

	base_conf(&c);
	c.allow_from = &l;
	c.nallow_from = 1;

	/* 0.0.0.0/0: every IPv4 peer, v4-mapped too, no native IPv6 */
	l = cidr("0.0.0.0", 0);
	ck_assert_int_eq(policy_peer_ok(&c, sa_of("203.0.113.9")), 1);
	ck_assert_int_eq(policy_peer_ok(&c, sa_of("::ffff:203.0.113.9")), 1);
	ck_assert_int_eq(policy_peer_ok(&c, sa_of("2001:db8::1")), 0);
	/* ::/0: everything, IPv4 peers as v4-mapped */
	l = cidr("::", 0);
	ck_assert_int_eq(policy_peer_ok(&c, sa_of("2001:db8::1")), 1);
	ck_assert_int_eq(policy_peer_ok(&c, sa_of("203.0.113.9")), 1);
	/* ::ffff:0:0/96 is all of IPv4 */
	l = cidr("::ffff:0.0.0.0", 96);
	ck_assert_int_eq(policy_peer_ok(&c, sa_of("203.0.113.9")), 1);
	ck_assert_int_eq(policy_peer_ok(&c, sa_of("2001:db8::1")), 0);
	/* /32 and /128 are exact */
	l = cidr("203.0.113.9", 32);
	ck_assert_int_eq(policy_peer_ok(&c, sa_of("203.0.113.9")), 1);
	ck_assert_int_eq(policy_peer_ok(&c, sa_of("203.0.113.8")), 0);
	ck_assert_int_eq(policy_peer_ok(&c, sa_of("203.0.113.10")), 0);
	l = cidr("2001:db8::9", 128);
	ck_assert_int_eq(policy_peer_ok(&c, sa_of("2001:db8::9")), 1);
	ck_assert_int_eq(policy_peer_ok(&c, sa_of("2001:db8::8")), 0);
	l = cidr("2001:db8::8", 127);
	ck_assert_int_eq(policy_peer_ok(&c, sa_of("2001:db8::9")), 1);
	ck_assert_int_eq(policy_peer_ok(&c, sa_of("2001:db8::a")), 0);
	/* odd prefixes: /1, /25, /65 */
	l = cidr("128.0.0.0", 1);
	ck_assert_int_eq(policy_peer_ok(&c, sa_of("200.1.1.1")), 1);
	ck_assert_int_eq(policy_peer_ok(&c, sa_of("100.1.1.1")), 0);
	l = cidr("198.51.100.128", 25);
	ck_assert_int_eq(policy_peer_ok(&c, sa_of("198.51.100.200")), 1);
	ck_assert_int_eq(policy_peer_ok(&c, sa_of("198.51.100.127")), 0);
	l = cidr("2001:db8:0:0:8000::", 65);
	ck_assert_int_eq(policy_peer_ok(&c, sa_of("2001:db8::8000:0:0:1")),
	    1);
	ck_assert_int_eq(policy_peer_ok(&c, sa_of("2001:db8::7fff:0:0:1")),
	    0);
	/* out-of-range prefixes never match */
	l = cidr("0.0.0.0", 33);
	ck_assert_int_eq(policy_peer_ok(&c, sa_of("203.0.113.9")), 0);
	l = cidr("0.0.0.0", -1);
	ck_assert_int_eq(policy_peer_ok(&c, sa_of("203.0.113.9")), 0);
	l = cidr("::", 129);
	ck_assert_int_eq(policy_peer_ok(&c, sa_of("2001:db8::1")), 0);
	l = cidr("::", 0);
	l.family = AF_UNIX;
	ck_assert_int_eq(policy_peer_ok(&c, sa_of("2001:db8::1")), 0);

	/* AF_UNIX is local; unknown families and NULL are not */
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	ck_assert_int_eq(policy_peer_is_loopback((struct sockaddr *)&sun), 1);
	ck_assert_int_eq(policy_peer_ok(NULL, (struct sockaddr *)&sun), 1);
	memset(&sa, 0, sizeof(sa));
	sa.sa_family = AF_UNSPEC;
	ck_assert_int_eq(policy_peer_is_loopback(&sa), 0);
	ck_assert_int_eq(policy_peer_ok(&c, &sa), 0);
	ck_assert_int_eq(policy_peer_is_loopback(NULL), 0);
	ck_assert_int_eq(policy_peer_ok(&c, NULL), 0);
}
END_TEST

/* Host */

static const struct {
	const char	*host;
	int		 ok;
} host_cases[] = {
	{ "localhost",			1 },
	{ "LOCALHOST",			1 },
	{ "LocalHost:8787",		1 },
	{ "localhost:1",		1 },
	{ "localhost:65535",		1 },
	{ "127.0.0.1",			1 },
	{ "127.0.0.1:8787",		1 },
	{ "[::1]",			1 },
	{ "[::1]:8787",			1 },
	{ "[0:0:0:0:0:0:0:1]",		1 },
	{ "[::1]:80",			1 },
	{ "192.168.1.5",		1 },
	{ "192.168.1.5:8787",		1 },
	{ "supagate.lan",		1 },
	{ "SUPAGATE.LAN:80",		1 },
	{ "[fd00::5]",			1 },
	{ "[FD00::5]:1",		1 },
	{ "[fd00:0::5]",		1 },
	{ "[fd00::9]",			1 },
	{ "[fd00::a]:8787",		1 },
	{ "",				0 },
	{ ":8787",			0 },
	{ "localhost:",			0 },
	{ "localhost:0",		0 },
	{ "localhost:00000",		0 },
	{ "localhost:65536",		0 },
	{ "localhost:123456",		0 },
	{ "localhost:80a",		0 },
	{ "localhost:-1",		0 },
	{ "localhost:+80",		0 },
	{ "localhost: 80",		0 },
	{ "localhost :80",		0 },
	{ " localhost",			0 },
	{ "localhost ",			0 },
	{ "local host",			0 },
	{ "localhost\r",		0 },
	{ "localhost\n",		0 },
	{ "localhost\t",		0 },
	{ "localhost\x7f",		0 },
	{ "localhost\xc3\xa9",		0 },
	{ "evil.com",			0 },
	{ "evil.com:8787",		0 },
	{ "localhost.evil.com",		0 },
	{ "evil.localhost.com",		0 },
	{ "localhost.",			0 },
	{ "127.0.0.2",			0 },
	{ "127.1",			0 },
	{ "0.0.0.0",			0 },
	{ "0.0.0.0:8787",		0 },
	{ "[::]",			0 },
	{ "[::]:80",			0 },
	{ "::1",			0 },
	{ "[::1",			0 },
	{ "[::1]x",			0 },
	{ "[::1]:",			0 },
	{ "[::1]:80:80",		0 },
	{ "[]",				0 },
	{ "[]:80",			0 },
	{ "[fe80::1%25eth0]",		0 },
	{ "[::2]",			0 },
	{ "[127.0.0.1]",		0 },
	{ "[localhost]",		0 },
	{ "[::ffff:127.0.0.1]",		0 },
	{ "localhost:80:80",		0 },
	{ "evil.com#@localhost",	0 },
	{ "localhost@evil",		0 },
	{ "user@localhost",		0 },
	{ "supagate.lan.evil",		0 },
	{ "192.168.1.6",		0 },
	{ "fd00::5",			0 },
};

START_TEST(test_host)
{
	struct conf	 c;
	char		*allow[] = { "supagate.lan", "[fd00::9]", "fd00::a" };

	base_conf(&c);
	strcpy(c.listen[0].host, "127.0.0.1");
	c.listen[0].port = 8787;
	strcpy(c.listen[1].host, "192.168.1.5");
	strcpy(c.listen[2].host, "::");
	strcpy(c.listen[3].host, "fd00::5");
	strcpy(c.listen[4].host, "0.0.0.0");
	c.nlisten = 5;
	c.allow_host = allow;
	c.nallow_host = NELEM(allow);
	ck_assert_msg(policy_host_ok(&c, host_cases[_i].host) ==
	    host_cases[_i].ok, "%s", host_cases[_i].host);
}
END_TEST

START_TEST(test_host_edges)
{
	struct conf	 c;
	char		*s;

	base_conf(&c);
	ck_assert_int_eq(policy_host_ok(&c, NULL), 0);
	ck_assert_int_eq(policy_host_ok(NULL, NULL), 0);
	ck_assert_int_eq(policy_host_ok(NULL, "localhost"), 1);
	ck_assert_int_eq(policy_host_ok(NULL, "[::1]:1"), 1);
	ck_assert_int_eq(policy_host_ok(NULL, "192.168.1.5"), 0);
	ck_assert_int_eq(policy_host_ok(&c, "localhost"), 1);
	ck_assert_int_eq(policy_host_ok(&c, "supagate.lan"), 0);
	s = repeat('a', 300, "", "");
	ck_assert_int_eq(policy_host_ok(&c, s), 0);
	free(s);
	s = repeat('a', 100000, "", ":80");
	ck_assert_int_eq(policy_host_ok(&c, s), 0);
	free(s);
	s = repeat('1', 100000, "localhost:", "");
	ck_assert_int_eq(policy_host_ok(&c, s), 0);
	free(s);
	s = repeat(':', 100000, "[", "]");
	ck_assert_int_eq(policy_host_ok(&c, s), 0);
	free(s);
	s = repeat('[', 100000, "", "");
	ck_assert_int_eq(policy_host_ok(&c, s), 0);
	free(s);
}
END_TEST

/* Origin */

static const struct {
	const char	*origin;
	int		 ok;		/* with the list */
	int		 ok_null;	/* with the list and "null" */
} origin_cases[] = {
	{ "http://localhost:3000",		1, 1 },
	{ "HTTP://LOCALHOST:3000",		1, 1 },
	{ "http://localhost:3001",		0, 0 },
	{ "http://localhost:30",		0, 0 },
	{ "http://localhost:3000/",		0, 0 },
	{ "http://localhost:3000.evil.com",	0, 0 },
	{ "http://localhost",			0, 0 },
	{ "https://localhost:3000",		0, 0 },
	{ "https://app.example.com",		1, 1 },
	{ "https://APP.example.com",		1, 1 },
	{ "http://app.example.com",		0, 0 },
	{ "https://app.example.com.evil",	0, 0 },
	{ "https://evil.app.example.com",	0, 0 },
	{ "null",				0, 1 },
	{ "Null",				0, 1 },
	{ "nul",				0, 0 },
	{ "",					0, 0 },
	{ "*",					0, 0 },
	{ "http://localhost:3000\r\n",		0, 0 },
	{ "http://localhost:3000 ",		0, 0 },
	{ " http://localhost:3000",		0, 0 },
};

START_TEST(test_origin)
{
	struct conf	 c;
	char		*list[] = { "http://localhost:3000",
			    "https://App.Example.com/" };
	char		*list_null[] = { "http://localhost:3000",
			    "https://App.Example.com/", "null" };

	base_conf(&c);
	ck_assert_int_eq(policy_origin_ok(&c, NULL), 1);
	ck_assert_int_eq(policy_origin_ok(NULL, NULL), 1);
	/* no list: every Origin is refused */
	ck_assert_int_eq(policy_origin_ok(&c, origin_cases[_i].origin), 0);
	c.allow_origin = list;
	c.nallow_origin = NELEM(list);
	ck_assert_msg(policy_origin_ok(&c, origin_cases[_i].origin) ==
	    origin_cases[_i].ok, "%s", origin_cases[_i].origin);
	c.allow_origin = list_null;
	c.nallow_origin = NELEM(list_null);
	ck_assert_msg(policy_origin_ok(&c, origin_cases[_i].origin) ==
	    origin_cases[_i].ok_null, "%s (null listed)",
	    origin_cases[_i].origin);
	ck_assert_int_eq(policy_origin_ok(&c, NULL), 1);
}
END_TEST

/* expose */

static const struct {
	const char	*method;
	const char	*path;
	int		 ok;
} expose_cases[] = {
	{ "GET",	"/rest/v1/todos",		1 },
	{ "HEAD",	"/rest/v1/todos",		1 },
	{ "POST",	"/rest/v1/todos",		0 },
	{ "DELETE",	"/rest/v1/todos",		0 },
	{ "GET",	"/rest/v1/todos/x",		1 },
	{ "GET",	"/rest/v1/todos/",		1 },
	{ "GET",	"/rest/v1/todosx",		0 },
	{ "GET",	"/rest/v1/todo",		0 },
	{ "GET",	"/rest/v1",			0 },
	{ "GET",	"/rest/v1/",			0 },
	{ "GET",	"/rest/v1/secrets",		0 },
	{ "GET",	"/REST/v1/todos",		0 },
	{ "GET",	"/functions/v1/hello",		1 },
	{ "DELETE",	"/functions/v1/x",		1 },
	{ "OPTIONS",	"/functions/v1/x",		1 },
	{ "GET",	"/functions/v1/",		1 },
	{ "GET",	"/functions/v1",		0 },
	{ "GET",	"/functions/v1x",		0 },
	{ "POST",	"/auth/v1/token",		1 },
	{ "POST",	"/auth/v1/token/x",		1 },
	{ "POST",	"/auth/v1/tokens",		0 },
	{ "GET",	"/auth/v1/token",		0 },
	{ "get",	"/rest/v1/todos",		0 },
	{ "TRACE",	"/rest/v1/todos",		0 },
	{ "CONNECT",	"/functions/v1/x",		0 },
	{ "",		"/functions/v1/x",		0 },
	{ NULL,		"/functions/v1/x",		0 },
	{ "GET",	NULL,				0 },
	{ "GET",	"",				0 },
};

START_TEST(test_expose)
{
	struct conf_expose	 x[] = {
		{ CONF_M_GET | CONF_M_HEAD, "/rest/v1/todos" },
		{ CONF_M_ALL, "/functions/v1/" },
		{ CONF_M_POST, "/auth/v1/token" },
	};
	struct conf		 c;

	base_conf(&c);
	c.expose = x;
	c.nexpose = NELEM(x);
	ck_assert_msg(policy_expose_ok(&c, expose_cases[_i].method,
	    expose_cases[_i].path) == expose_cases[_i].ok, "%s %s",
	    expose_cases[_i].method != NULL ? expose_cases[_i].method : "NULL",
	    expose_cases[_i].path != NULL ? expose_cases[_i].path : "NULL");
	/* the same in service mode: the lines decide */
	c.auth_mode = CONF_AUTH_SERVICE;
	ck_assert_int_eq(policy_expose_ok(&c, expose_cases[_i].method,
	    expose_cases[_i].path), expose_cases[_i].ok);
}
END_TEST

START_TEST(test_expose_default)
{
	struct conf	c;

	base_conf(&c);
	c.auth_mode = CONF_AUTH_ANON;
	ck_assert_int_eq(policy_expose_ok(&c, "GET", "/rest/v1/x"), 1);
	ck_assert_int_eq(policy_expose_ok(&c, "DELETE", "/storage/v1/x"), 1);
	c.auth_mode = CONF_AUTH_SESSION;
	ck_assert_int_eq(policy_expose_ok(&c, "POST", "/auth/v1/token"), 1);
	c.auth_mode = CONF_AUTH_SERVICE;
	ck_assert_int_eq(policy_expose_ok(&c, "GET", "/rest/v1/x"), 0);
	ck_assert_int_eq(policy_expose_ok(&c, "GET", "/"), 0);
	ck_assert_int_eq(policy_expose_ok(NULL, "GET", "/"), 0);
}
END_TEST

START_TEST(test_method_bit)
{
	ck_assert_uint_eq(policy_method_bit("GET"), CONF_M_GET);
	ck_assert_uint_eq(policy_method_bit("HEAD"), CONF_M_HEAD);
	ck_assert_uint_eq(policy_method_bit("POST"), CONF_M_POST);
	ck_assert_uint_eq(policy_method_bit("PUT"), CONF_M_PUT);
	ck_assert_uint_eq(policy_method_bit("PATCH"), CONF_M_PATCH);
	ck_assert_uint_eq(policy_method_bit("DELETE"), CONF_M_DELETE);
	ck_assert_uint_eq(policy_method_bit("OPTIONS"), CONF_M_OPTIONS);
	ck_assert_uint_eq(policy_method_bit("get"), 0);
	ck_assert_uint_eq(policy_method_bit("GETX"), 0);
	ck_assert_uint_eq(policy_method_bit("GE"), 0);
	ck_assert_uint_eq(policy_method_bit("CONNECT"), 0);
	ck_assert_uint_eq(policy_method_bit("TRACE"), 0);
	ck_assert_uint_eq(policy_method_bit(""), 0);
	ck_assert_uint_eq(policy_method_bit(NULL), 0);
}
END_TEST

static Suite *
policy_suite(void)
{
	Suite	*s = suite_create("policy");
	TCase	*tc;

	tc = tcase_create("routes");
	tcase_set_timeout(tc, TIMEOUT_S);
	tcase_add_loop_test(tc, test_route_of, 0, NELEM(route_cases));
	tcase_add_test(tc, test_route_misc);
	suite_add_tcase(s, tc);

	tc = tcase_create("paths");
	tcase_set_timeout(tc, TIMEOUT_S);
	tcase_add_loop_test(tc, test_path_good, 0, NELEM(good_paths));
	tcase_add_loop_test(tc, test_path_bad, 0, NELEM(bad_paths));
	tcase_add_test(tc, test_path_hostile);
	suite_add_tcase(s, tc);

	tc = tcase_create("upstream_url");
	tcase_set_timeout(tc, TIMEOUT_S);
	tcase_add_test(tc, test_upstream_url);
	tcase_add_test(tc, test_upstream_url_long);
	suite_add_tcase(s, tc);

	tc = tcase_create("strip_apikey");
	tcase_set_timeout(tc, TIMEOUT_S);
	tcase_add_loop_test(tc, test_strip_apikey, 0, NELEM(strip_cases));
	tcase_add_test(tc, test_strip_apikey_edges);
	suite_add_tcase(s, tc);

	tc = tcase_create("headers");
	tcase_set_timeout(tc, TIMEOUT_S);
	tcase_add_test(tc, test_headers);
	tcase_add_test(tc, test_header_value);
	tcase_add_loop_test(tc, test_connection_lists, 0,
	    NELEM(conn_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("authorization");
	tcase_set_timeout(tc, TIMEOUT_S);
	tcase_add_loop_test(tc, test_authorization, 0, NELEM(authz_cases));
	tcase_add_test(tc, test_authorization_edges);
	suite_add_tcase(s, tc);

	tc = tcase_create("access");
	tcase_set_timeout(tc, TIMEOUT_S);
	tcase_add_loop_test(tc, test_peer, 0, NELEM(peer_cases));
	tcase_add_test(tc, test_peer_edges);
	tcase_add_loop_test(tc, test_host, 0, NELEM(host_cases));
	tcase_add_test(tc, test_host_edges);
	tcase_add_loop_test(tc, test_origin, 0, NELEM(origin_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("expose");
	tcase_set_timeout(tc, TIMEOUT_S);
	tcase_add_loop_test(tc, test_expose, 0, NELEM(expose_cases));
	tcase_add_test(tc, test_expose_default);
	tcase_add_test(tc, test_method_bit);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	return ck_run(policy_suite());
}
