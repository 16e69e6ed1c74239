/*
 * check_proxy: supagate in front of fakeup.  Forwarding, credentials,
 * errors and limits, admin endpoints.  Each TCase starts its own supagate
 * (unchecked fixture) with the config it needs; one fakeup serves all.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <curl/curl.h>

#include "harness.h"

#include "data/jwks/vectors.h"

#define BASE_CONF \
	"listen 127.0.0.1:0\n" \
	"state-dir @DIR@/state\n"

static struct h_proc	 up;		/* fakeup, for the whole binary */
static struct h_proc	 gate;		/* supagate of the running TCase */
static int		 dead_port;	/* nothing listens there */

static void
gate_up(const char *conf, int up_port)
{
	if (h_gate_start(&gate, conf, up_port, NULL) == -1)
		ck_abort_msg("supagate did not start");
}

static void
gate_down(void)
{
	int	st, killed;

	if (gate.pid <= 0)
		return;
	st = h_stop(&gate, 10000, &killed);
	if (killed || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fprintf(stderr, "check_proxy: supagate did not exit cleanly "
		    "on SIGTERM (status 0x%x, killed %d)\n", st, killed);
}

/* ---- fixtures: one config per TCase ---------------------------------- */

static void
fx_base(void)
{
	gate_up(BASE_CONF
	    "upstream @UP@\n"
	    "anon-key-file @DIR@/anon.key\n"
	    "max-body-size 1M\n", up.port);
}

static void
fx_override(void)
{
	gate_up(BASE_CONF
	    "upstream @UP@/base\n"
	    "rest-upstream @UP@/pgrst\n"
	    "auth-upstream @UP@/gotrue\n"
	    "storage-upstream @UP@/storage\n"
	    "functions-upstream @UP@/fn\n"
	    "anon-key-file @DIR@/anon.key\n", up.port);
}

static void
fx_replace(void)
{
	gate_up(BASE_CONF
	    "upstream @UP@\n"
	    "anon-key-file @DIR@/anon.key\n"
	    "client-auth replace\n", up.port);
}

static void
fx_publishable(void)
{
	gate_up(BASE_CONF
	    "upstream @UP@\n"
	    "anon-key-file @DIR@/publishable.key\n", up.port);
}

static void
fx_service(void)
{
	gate_up(BASE_CONF
	    "upstream @UP@\n"
	    "auth-mode service\n"
	    "service-key-file @DIR@/service.key\n"
	    "expose GET,HEAD /rest/v1/todos\n"
	    "expose POST /rest/v1/rpc/echo\n", up.port);
}

static void
fx_down(void)
{
	gate_up(BASE_CONF
	    "upstream @UP@\n"
	    "anon-key-file @DIR@/anon.key\n"
	    "connect-timeout 2s\n", dead_port);
}

static void
fx_limits(void)
{
	gate_up(BASE_CONF
	    "upstream @UP@\n"
	    "anon-key-file @DIR@/anon.key\n"
	    "upstream-timeout 1s\n"
	    "max-body-size 1k\n"
	    "max-header-size 8k\n"
	    "allow-origin http://localhost:3000\n"
	    "allow-host supagate.local\n", up.port);
}

static void
fx_conns(void)
{
	gate_up(BASE_CONF
	    "upstream @UP@\n"
	    "anon-key-file @DIR@/anon.key\n"
	    "max-connections-per-peer 2\n", up.port);
}

static void
fx_quiet(void)
{
	gate_up(BASE_CONF
	    "upstream @UP@\n"
	    "anon-key-file @DIR@/anon.key\n"
	    "access-log off\n", up.port);
}

static void
fx_maxconns(void)
{
	gate_up(BASE_CONF
	    "upstream @UP@\n"
	    "anon-key-file @DIR@/anon.key\n"
	    "max-connections 2\n", up.port);
}

/* ---- helpers --------------------------------------------------------- */

static const char *const routes[] = {
	"/rest/v1", "/auth/v1", "/storage/v1", "/functions/v1",
};

/* GET target through the gate; status must be 200; returns the body */
static void
get_ok(struct h_resp *r, const char *target, const char *const *hdrs)
{
	struct h_opts	o = { .hdrs = hdrs };

	ck_assert_msg(h_req(r, gate.port, "GET", target, &o) == 0,
	    "GET %s: %s", target, r->err);
	ck_assert_msg(r->status == 200, "GET %s: status %ld body %s", target,
	    r->status, r->body);
}

/* the fakeup log entry whose query contains tag; its JSON in buf */
static int
upstream_saw(const char *tag, char *method, size_t mlen, char *path,
    size_t plen)
{
	struct h_resp	 r;
	const char	*at;
	int		 found = -1;

	if (h_get(&r, up.port, "/_fake/log") == 0 &&
	    (at = strstr(r.body, tag)) != NULL) {
		/* walk back to the entry start: {"method":" */
		const char *s = at;

		while (s > r.body && strncmp(s, "{\"method\":\"", 11) != 0)
			s--;
		if (sscanf(s, "{\"method\":\"%31[^\"]\",\"path\":\"%255[^\"]",
		    method, path) == 2)
			found = 0;
	}
	(void)mlen;
	(void)plen;
	h_resp_free(&r);
	return found;
}

static int
health_ok(int port)
{
	struct h_resp	r;
	char		st[64];
	int		ok;

	ok = h_get(&r, port, "/_supagate/health") == 0 && r.status == 200 &&
	    h_json_str(r.body, "status", st, sizeof(st)) == 0 &&
	    strcmp(st, "ok") == 0;
	h_resp_free(&r);
	return ok;
}

START_TEST(survives)
{
	ck_assert_msg(h_alive(&gate), "supagate died");
	ck_assert(health_ok(gate.port));
}
END_TEST

/* ---- forwarding ------------------------------------------------------ */

START_TEST(methods_each_route)
{
	static const char *const methods[] = { "GET", "POST", "PUT", "PATCH",
	    "DELETE", "OPTIONS" };
	struct h_resp	r;
	struct h_opts	o;
	char		v[512], m[32], p[256];
	const char	*target, *body;
	size_t		i, j;

	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		for (j = 0; j < sizeof(methods) / sizeof(methods[0]); j++) {
			memset(&o, 0, sizeof(o));
			target = h_fmt("%s/echo?t=m%zu_%zu", routes[i], i, j);
			body = h_fmt("{\"m\":\"%s\"}", methods[j]);
			if (j >= 1 && j <= 3) {
				o.body = body;
				o.body_len = strlen(body);
				o.has_body = 1;
			}
			ck_assert_msg(h_req(&r, gate.port, methods[j], target,
			    &o) == 0, "%s %s: %s", methods[j], target, r.err);
			ck_assert_msg(r.status == 200, "%s %s: %ld %s",
			    methods[j], target, r.status, r.body);
			ck_assert_int_eq(h_json_str(r.body, "method", v,
			    sizeof(v)), 0);
			ck_assert_str_eq(v, methods[j]);
			ck_assert_int_eq(h_json_str(r.body, "path", v,
			    sizeof(v)), 0);
			ck_assert_str_eq(v, h_fmt("%s/echo", routes[i]));
			if (o.has_body) {
				ck_assert_int_eq(h_json_str(r.body, "body", v,
				    sizeof(v)), 0);
				ck_assert_str_eq(v, body);
			}
			h_resp_free(&r);
		}
		/* HEAD: no body comes back; ask fakeup what it saw */
		target = h_fmt("%s/echo?t=head_%zu", routes[i], i);
		ck_assert_int_eq(h_req(&r, gate.port, "HEAD", target, NULL), 0);
		ck_assert_int_eq(r.status, 200);
		ck_assert_uint_eq(r.body_total, 0);
		h_resp_free(&r);
		ck_assert_int_eq(upstream_saw(h_fmt("t=head_%zu\"", i), m,
		    sizeof(m), p, sizeof(p)), 0);
		ck_assert_str_eq(m, "HEAD");
		ck_assert_str_eq(p, h_fmt("%s/echo", routes[i]));
	}
}
END_TEST

START_TEST(graphql_base_mapping)
{
	static const char	q[] = "{\"query\":\"{ todosCollection { "
				    "edges { node { id } } } }\"}";
	struct h_opts		o = { .body = q, .body_len = sizeof(q) - 1,
				    .has_body = 1 };
	struct h_resp		r;
	char			v[256];

	ck_assert_int_eq(h_req(&r, gate.port, "POST", "/graphql/v1", &o), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(h_json_str(r.body, "path", v, sizeof(v)), 0);
	ck_assert_str_eq(v, "/graphql/v1");
	ck_assert_int_eq(h_json_str(r.body, "body", v, sizeof(v)), 0);
	ck_assert_str_eq(v, q);
	h_resp_free(&r);
}
END_TEST

START_TEST(query_byte_for_byte)
{
	static const char *const qs[] = {
	    "select=id,name,items(*)&id=eq.5&order=id.desc.nullslast"
	    "&limit=10&offset=0",
	    "or=(a.eq.1,b.eq.2)&name=ilike.*%25x%25*&x=%2F%3F%26%3D&empty=&flag",
	    "a=1&a=2&b=%C3%A9&plus=a+b&sp=%20&star=*&tilde=~&comma=,",
	    "select=*,cities!inner(name)&cities.name=in.(%22A%22,%22B%22)",
	};
	struct h_resp	r;
	char		v[1024];
	size_t		i;

	for (i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		get_ok(&r, h_fmt("/rest/v1/echo?%s", qs[i]), NULL);
		ck_assert_int_eq(h_json_str(r.body, "query", v, sizeof(v)), 0);
		ck_assert_str_eq(v, qs[i]);
		h_resp_free(&r);
	}
}
END_TEST

START_TEST(request_headers)
{
	static const char *const hdrs[] = {
	    "Accept: application/vnd.pgrst.object+json",
	    "Accept-Profile: private",
	    "Content-Profile: private",
	    "Prefer: return=representation,count=exact",
	    "Range: 0-9",
	    "Range-Unit: items",
	    "X-Client-Info: supabase-js/2.109.0",
	    "Content-Type: application/json",
	    "X-Dup: 1",
	    "X-Dup: 2",
	    "Connection: keep-alive, X-Hop",
	    "X-Hop: must-not-pass",
	    "Keep-Alive: timeout=5",
	    "TE: trailers",
	    "Proxy-Connection: keep-alive",
	    NULL,
	};
	static const char *const same[][2] = {
	    { "Accept", "application/vnd.pgrst.object+json" },
	    { "Accept-Profile", "private" },
	    { "Content-Profile", "private" },
	    { "Prefer", "return=representation,count=exact" },
	    { "Range", "0-9" },
	    { "Range-Unit", "items" },
	    { "X-Client-Info", "supabase-js/2.109.0" },
	    { "Content-Type", "application/json" },
	};
	static const char *const gone[] = { "X-Hop", "Keep-Alive", "TE",
	    "Proxy-Connection" };
	struct h_opts	o = { .hdrs = hdrs, .body = "{}", .body_len = 2,
			    .has_body = 1 };
	struct h_resp	r;
	char		v[512], v2[64];
	size_t		i;

	ck_assert_int_eq(h_req(&r, gate.port, "POST", "/rest/v1/echo", &o),
	    0);
	ck_assert_int_eq(r.status, 200);
	for (i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		ck_assert_msg(h_echo_hdr(r.body, same[i][0], 0, v,
		    sizeof(v)) == 0, "%s not forwarded", same[i][0]);
		ck_assert_str_eq(v, same[i][1]);
		ck_assert_int_eq(h_echo_hdr_count(r.body, same[i][0]), 1);
	}
	/* repeated fields may be kept apart or joined with ", " */
	if (h_echo_hdr_count(r.body, "X-Dup") == 2) {
		h_echo_hdr(r.body, "X-Dup", 0, v, sizeof(v));
		h_echo_hdr(r.body, "X-Dup", 1, v2, sizeof(v2));
		ck_assert_str_eq(v, "1");
		ck_assert_str_eq(v2, "2");
	} else {
		ck_assert_int_eq(h_echo_hdr(r.body, "X-Dup", 0, v, sizeof(v)),
		    0);
		ck_assert_str_eq(v, "1, 2");
	}
	for (i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
		ck_assert_msg(h_echo_hdr_count(r.body, gone[i]) == 0,
		    "hop-by-hop %s was forwarded: %s", gone[i], r.body);
	if (h_echo_hdr(r.body, "Connection", 0, v, sizeof(v)) == 0)
		ck_assert_ptr_null(strcasestr(v, "X-Hop"));
	h_resp_free(&r);
}
END_TEST

START_TEST(response_headers)
{
	struct h_resp	r;
	char		v[256];

	get_ok(&r, "/rest/v1/headers?X-Custom=v1&Content-Range=0-9%2F100"
	    "&Cache-Control=max-age%3D5&ETag=%22abc%22&Set-Cookie=a%3D1"
	    "&Set-Cookie=b%3D2&Keep-Alive=timeout%3D5"
	    "&Proxy-Connection=keep-alive&Upgrade=h2c&Connection=X-Resp-Hop"
	    "&X-Resp-Hop=1", NULL);
	ck_assert_str_eq(h_resp_header(&r, "X-Custom", v, sizeof(v)), "v1");
	ck_assert_str_eq(h_resp_header(&r, "Content-Range", v, sizeof(v)),
	    "0-9/100");
	ck_assert_str_eq(h_resp_header(&r, "Cache-Control", v, sizeof(v)),
	    "max-age=5");
	ck_assert_str_eq(h_resp_header(&r, "ETag", v, sizeof(v)), "\"abc\"");
	ck_assert_str_eq(h_resp_header(&r, "Content-Type", v, sizeof(v)),
	    "application/json");
	ck_assert_int_eq(h_resp_header_count(&r, "Set-Cookie"), 2);
	ck_assert_int_eq(h_resp_header_count(&r, "Keep-Alive"), 0);
	ck_assert_int_eq(h_resp_header_count(&r, "Proxy-Connection"), 0);
	ck_assert_int_eq(h_resp_header_count(&r, "Upgrade"), 0);
	ck_assert_msg(h_resp_header_count(&r, "X-Resp-Hop") == 0,
	    "a header named in Connection was relayed");
	ck_assert_str_eq(r.body, "{\"headers\":true}");
	h_resp_free(&r);
}
END_TEST

START_TEST(status_codes)
{
	static const int codes[] = { 200, 201, 204, 301, 404, 409, 500 };
	struct h_resp	r;
	char		v[256];
	size_t		i;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		ck_assert_int_eq(h_get(&r, gate.port,
		    h_fmt("/rest/v1/status?code=%d", codes[i])), 0);
		ck_assert_int_eq(r.status, codes[i]);
		ck_assert_str_eq(h_resp_header(&r, "X-Fakeup", v, sizeof(v)),
		    "1");
		if (codes[i] == 204)
			ck_assert_uint_eq(r.body_total, 0);
		else
			ck_assert_str_eq(r.body, h_fmt("{\"status\":%d,"
			    "\"message\":\"fake status %d\"}", codes[i],
			    codes[i]));
		if (codes[i] == 301)
			ck_assert_str_eq(h_resp_header(&r, "Location", v,
			    sizeof(v)),
			    "/rest/v1/status?code=200&from=redirect");
		h_resp_free(&r);
	}
}
END_TEST

START_TEST(bodies_chunked_and_length)
{
	static unsigned char	body[60000];
	struct pattern_sum	s = PATTERN_SUM_INIT;
	struct h_opts		o = { .body = body, .body_len = sizeof(body),
				    .has_body = 1 };
	struct h_resp		r;
	double			n, sum;
	int			chunked;

	pattern_fill(body, 7, sizeof(body));
	pattern_sum_update(&s, body, sizeof(body));
	for (chunked = 0; chunked < 2; chunked++) {
		o.chunked = chunked;
		ck_assert_int_eq(h_req(&r, gate.port, "POST",
		    "/storage/v1/echo", &o), 0);
		ck_assert_msg(r.status == 200, "chunked %d: %ld %s", chunked,
		    r.status, r.body);
		ck_assert_int_eq(h_json_num(r.body, "body_len", &n), 0);
		ck_assert_int_eq(h_json_num(r.body, "sum", &sum), 0);
		ck_assert_uint_eq((uint64_t)n, sizeof(body));
		ck_assert_uint_eq((uint32_t)sum, pattern_sum_value(&s));
		h_resp_free(&r);
	}
}
END_TEST

/*
 * An upstream that closes a kept-alive connection as the next request
 * arrives: curl retries on a fresh connection, and supagate sends the
 * body again (it keeps bodies up to 64 KiB for that).  A bigger body
 * cannot be sent again: 502.
 */
START_TEST(retry_on_dead_keepalive)
{
	static unsigned char	small[20000], big[200000];
	struct pattern_sum	s = PATTERN_SUM_INIT;
	struct h_opts		o = { .body = small, .body_len = sizeof(small),
				    .has_body = 1 };
	struct h_resp		r;
	double			n, sum;
	int			chunked;

	pattern_fill(small, 3, sizeof(small));
	pattern_sum_update(&s, small, sizeof(small));
	for (chunked = 0; chunked < 2; chunked++) {
		o.chunked = chunked;
		/* one request opens the upstream connection, the next reuses it */
		ck_assert_int_eq(h_req(&r, gate.port, "POST",
		    "/rest/v1/drop-on-reuse", &o), 0);
		ck_assert_int_eq(r.status, 200);
		h_resp_free(&r);
		ck_assert_int_eq(h_req(&r, gate.port, "POST",
		    "/rest/v1/drop-on-reuse", &o), 0);
		ck_assert_msg(r.status == 200, "chunked %d: %ld %s", chunked,
		    r.status, r.body);
		ck_assert_int_eq(h_json_num(r.body, "body_len", &n), 0);
		ck_assert_int_eq(h_json_num(r.body, "sum", &sum), 0);
		ck_assert_uint_eq((uint64_t)n, sizeof(small));
		ck_assert_uint_eq((uint32_t)sum, pattern_sum_value(&s));
		h_resp_free(&r);
	}
	/* the connection of that retry is reused, and dropped, next */
	o.body = big;
	o.body_len = sizeof(big);
	o.chunked = 0;
	ck_assert_int_eq(h_req(&r, gate.port, "POST",
	    "/rest/v1/drop-on-reuse", &o), 0);
	ck_assert(h_is_error(&r, 502, "upstream_unavailable") == 0);
	h_resp_free(&r);
	get_ok(&r, "/rest/v1/echo", NULL);
	h_resp_free(&r);
}
END_TEST

/*
 * An upstream that dies in the middle of a body must not look like a
 * complete answer: with a Content-Length the client gets fewer bytes
 * than announced, chunked it gets no terminating chunk; either way curl
 * reports an error, not a clean 200.  The next request works.
 */
START_TEST(upstream_dies_mid_body)
{
	struct h_resp	r;
	int		chunked;

	for (chunked = 0; chunked < 2; chunked++) {
		h_req(&r, gate.port, "GET", h_fmt("/storage/v1/bytes?n=3000000"
		    "&cut=1000000&chunked=%d", chunked), NULL);
		ck_assert_msg(r.curl_code != 0, "chunked %d: a cut body ended "
		    "cleanly (%ld, %llu bytes)", chunked, r.status,
		    (unsigned long long)r.body_total);
		ck_assert_msg(r.body_total < 3000000, "chunked %d: %llu bytes",
		    chunked, (unsigned long long)r.body_total);
		h_resp_free(&r);
	}
	get_ok(&r, "/rest/v1/echo", NULL);
	h_resp_free(&r);
}
END_TEST

START_TEST(expect_100_continue)
{
	static struct h_raw_resp	rr;
	static unsigned char		big[200000];
	char				req[256];
	struct h_opts			o = { .body = big,
					    .body_len = sizeof(big),
					    .has_body = 1, .expect100 = 1 };
	struct h_resp			r;
	double				n;
	int				fd;

	/* the interim 100 comes before we send the body */
	snprintf(req, sizeof(req), "POST /rest/v1/echo HTTP/1.1\r\n"
	    "Host: 127.0.0.1:%d\r\nContent-Type: text/plain\r\n"
	    "Content-Length: 5\r\nExpect: 100-continue\r\n\r\n", gate.port);
	fd = h_connect(gate.port);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(h_send_all(fd, req, strlen(req), 2000), 0);
	ck_assert_int_eq(h_raw_read(fd, H_RAW_INTERIM, 5000, &rr), 100);
	ck_assert_int_eq(h_send_all(fd, "hello", 5, 2000), 0);
	memset(&rr, 0, offsetof(struct h_raw_resp, buf));
	rr.len = 0;
	ck_assert_int_eq(h_raw_read(fd, 0, 5000, &rr), 200);
	ck_assert_ptr_nonnull(strstr(rr.body, "\"body\":\"hello\""));
	close(fd);

	/* and libcurl's own 100-continue dance */
	memset(big, 'e', sizeof(big));
	ck_assert_int_eq(h_req(&r, gate.port, "PUT", "/rest/v1/echo", &o), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(h_json_num(r.body, "body_len", &n), 0);
	ck_assert_uint_eq((uint64_t)n, sizeof(big));
	ck_assert_int_eq(h_echo_hdr_count(r.body, "Expect"), 0);
	h_resp_free(&r);
}
END_TEST

START_TEST(head_keeps_length)
{
	struct h_resp	r;
	char		v[64];

	ck_assert_int_eq(h_req(&r, gate.port, "HEAD",
	    "/storage/v1/bytes?n=12345", NULL), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.body_total, 0);
	ck_assert_ptr_nonnull(h_resp_header(&r, "Content-Length", v,
	    sizeof(v)));
	ck_assert_str_eq(v, "12345");
	h_resp_free(&r);
}
END_TEST

/* SSE: record in which write callback each event arrived */
struct sse_rec {
	char	buf[4096];
	size_t	len;
	int	calls;
	int	first_call;	/* call that completed event 0 */
	int	last_call;	/* call that completed the last event */
};

static size_t
sse_write_cb(char *data, size_t size, size_t n, void *cls)
{
	struct sse_rec	*s = cls;
	size_t		 len = size * n, keep;

	s->calls++;
	keep = sizeof(s->buf) - 1 - s->len;
	if (keep > len)
		keep = len;
	memcpy(s->buf + s->len, data, keep);
	s->len += keep;
	s->buf[s->len] = '\0';
	if (s->first_call == 0 && strstr(s->buf, "{\"event\":0}\n\n"))
		s->first_call = s->calls;
	if (s->last_call == 0 && strstr(s->buf, "{\"event\":3}\n\n"))
		s->last_call = s->calls;
	return len;
}

START_TEST(sse_incremental)
{
	static struct sse_rec	 s;
	CURL			*c = curl_easy_init();
	char			*ct = NULL;
	long			 st = 0;

	ck_assert_ptr_nonnull(c);
	curl_easy_setopt(c, CURLOPT_URL, h_fmt("http://127.0.0.1:%d"
	    "/functions/v1/sse?n=4&ms=300", gate.port));
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sse_write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
	curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
	ck_assert_int_eq(st, 200);
	ck_assert_ptr_nonnull(ct);
	ck_assert_ptr_nonnull(strstr(ct, "text/event-stream"));
	ck_assert_msg(s.first_call > 0 && s.last_call > 0, "events: %s",
	    s.buf);
	ck_assert_msg(s.first_call < s.last_call, "the first event arrived "
	    "together with the last one (buffered): calls %d/%d",
	    s.first_call, s.last_call);
	curl_easy_cleanup(c);
}
END_TEST

/* ---- per-service overrides ------------------------------------------- */

START_TEST(override_strips_prefix)
{
	static const char *const map[][2] = {
	    { "/rest/v1/todos", "/pgrst/todos" },
	    { "/auth/v1/token", "/gotrue/token" },
	    { "/storage/v1/object/public/b/a.txt",
	      "/storage/object/public/b/a.txt" },
	    { "/functions/v1/hello", "/fn/hello" },
	    { "/graphql/v1", "/pgrst/rpc/graphql" },
	};
	struct h_resp	r;
	char		v[256];
	size_t		i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		get_ok(&r, h_fmt("%s?q=%zu", map[i][0], i), NULL);
		ck_assert_int_eq(h_json_str(r.body, "path", v, sizeof(v)), 0);
		ck_assert_str_eq(v, map[i][1]);
		ck_assert_int_eq(h_json_str(r.body, "query", v, sizeof(v)), 0);
		ck_assert_str_eq(v, h_fmt("q=%zu", i));
		h_resp_free(&r);
	}
	get_ok(&r, "/rest/v1/", NULL);
	ck_assert_int_eq(h_json_str(r.body, "path", v, sizeof(v)), 0);
	ck_assert_str_eq(v, "/pgrst/");
	h_resp_free(&r);
}
END_TEST

/* ---- credentials ----------------------------------------------------- */

/* upstream must see exactly one apikey == key and Authorization == authz */
static void
creds_are(const char *target, const char *const *hdrs, const char *key,
    const char *authz)
{
	struct h_resp	r;
	char		v[1024];

	get_ok(&r, target, hdrs);
	ck_assert_msg(h_echo_hdr_count(r.body, "apikey") == 1,
	    "%s: apikey count %d", target, h_echo_hdr_count(r.body, "apikey"));
	h_echo_hdr(r.body, "apikey", 0, v, sizeof(v));
	ck_assert_str_eq(v, key);
	if (authz == NULL)
		ck_assert_msg(h_echo_hdr_count(r.body, "Authorization") == 0,
		    "%s: Authorization sent: %s", target, r.body);
	else {
		ck_assert_int_eq(h_echo_hdr_count(r.body, "Authorization"), 1);
		h_echo_hdr(r.body, "Authorization", 0, v, sizeof(v));
		ck_assert_str_eq(v, authz);
	}
	h_resp_free(&r);
}

START_TEST(anon_legacy_credentials)
{
	const char	*bearer = h_fmt("Bearer %s", h_keys.anon);
	const char	*user = h_fmt("Bearer %s", h_keys.user);
	const char	*h_none[] = { NULL };
	const char	*h_ph[] = { "apikey: placeholder",
			    "Authorization: Bearer placeholder", NULL };
	const char	*h_own[] = { h_fmt("apikey: %s", h_keys.anon),
			    h_fmt("Authorization: Bearer %s", h_keys.anon),
			    NULL };
	const char	*h_dup[] = { "apikey: one", "apikey: two", NULL };
	const char	*h_user[] = { "apikey: placeholder",
			    h_fmt("Authorization: %s", user), NULL };
	const char	*h_svc[] = { h_fmt("Authorization: Bearer %s",
			    h_keys.service), NULL };

	creds_are("/rest/v1/echo?c=none", h_none, h_keys.anon, bearer);
	creds_are("/rest/v1/echo?c=ph", h_ph, h_keys.anon, bearer);
	creds_are("/rest/v1/echo?c=own", h_own, h_keys.anon, bearer);
	creds_are("/rest/v1/echo?c=dup", h_dup, h_keys.anon, bearer);
	creds_are("/auth/v1/echo?c=user", h_user, h_keys.anon, user);
	/* an API key that is not ours is not a user token: replaced */
	creds_are("/rest/v1/echo?c=svc", h_svc, h_keys.anon, bearer);
}
END_TEST

START_TEST(query_apikey_removed)
{
	struct h_resp	r;
	char		v[4096], q[4096];
	size_t		len = 0;
	int		i;

	get_ok(&r, h_fmt("/rest/v1/echo?apikey=%s&select=*&apikey=two",
	    h_keys.user2), NULL);
	ck_assert_int_eq(h_json_str(r.body, "query", v, sizeof(v)), 0);
	ck_assert_str_eq(v, "select=*");
	ck_assert_int_eq(h_echo_hdr_count(r.body, "apikey"), 1);
	h_echo_hdr(r.body, "apikey", 0, v, sizeof(v));
	ck_assert_str_eq(v, h_keys.anon);
	h_resp_free(&r);

	get_ok(&r, "/rest/v1/echo?apikey=only", NULL);
	ck_assert_int_eq(h_json_str(r.body, "query", v, sizeof(v)), 0);
	ck_assert_str_eq(v, "");
	h_resp_free(&r);

	len = (size_t)snprintf(q, sizeof(q), "/rest/v1/echo?a=1");
	for (i = 0; i < 60; i++)
		len += (size_t)snprintf(q + len, sizeof(q) - len,
		    "&apikey=k%d", i);
	snprintf(q + len, sizeof(q) - len, "&b=2");
	get_ok(&r, q, NULL);
	ck_assert_int_eq(h_json_str(r.body, "query", v, sizeof(v)), 0);
	ck_assert_str_eq(v, "a=1&b=2");
	ck_assert_int_eq(h_echo_hdr_count(r.body, "apikey"), 1);
	h_resp_free(&r);
}
END_TEST

START_TEST(user_agent_is_ours)
{
	static const char *const hdrs[] = { "User-Agent: evil/1.0", NULL };
	struct h_resp	r;
	char		v[256];

	get_ok(&r, "/rest/v1/echo", hdrs);
	ck_assert_int_eq(h_echo_hdr_count(r.body, "User-Agent"), 1);
	h_echo_hdr(r.body, "User-Agent", 0, v, sizeof(v));
	ck_assert_msg(strncmp(v, "supagate/", 9) == 0, "User-Agent %s", v);
	h_resp_free(&r);
}
END_TEST

START_TEST(log_is_redacted)
{
	const char	*hdrs[] = { h_fmt("Authorization: Bearer %s",
			    h_keys.user), NULL };
	struct h_resp	 r;
	char		*log;

	get_ok(&r, h_fmt("/rest/v1/echo?apikey=%s&select=id", h_keys.user2),
	    hdrs);
	h_resp_free(&r);
	get_ok(&r, "/_supagate/health", NULL);	/* flush ordering */
	h_resp_free(&r);
	log = h_slurp(gate.log, NULL);
	ck_assert_ptr_nonnull(log);
	ck_assert_msg(strstr(log, "[redacted]") != NULL,
	    "no [redacted] in the log");
	ck_assert_msg(strstr(log, h_keys.anon) == NULL, "anon key logged");
	ck_assert_msg(strstr(log, h_keys.user) == NULL, "user token logged");
	ck_assert_msg(strstr(log, h_keys.user2) == NULL, "query key logged");
	ck_assert_msg(strstr(log, strrchr(h_keys.anon, '.')) == NULL,
	    "anon key signature logged");
	free(log);
}
END_TEST

START_TEST(replace_user_token)
{
	const char	*h_user[] = { h_fmt("Authorization: Bearer %s",
			    h_keys.user), NULL };

	creds_are("/rest/v1/echo", h_user, h_keys.anon,
	    h_fmt("Bearer %s", h_keys.anon));
}
END_TEST

START_TEST(publishable_key)
{
	const char	*h_none[] = { NULL };
	const char	*h_pub[] = { h_fmt("apikey: %s", h_keys.publishable),
			    h_fmt("Authorization: Bearer %s",
			    h_keys.publishable), NULL };
	const char	*h_user[] = { h_fmt("Authorization: Bearer %s",
			    h_keys.user), NULL };
	const char	*h_ph[] = { "Authorization: Bearer placeholder",
			    NULL };

	creds_are("/rest/v1/echo", h_none, h_keys.publishable, NULL);
	creds_are("/rest/v1/echo", h_pub, h_keys.publishable, NULL);
	creds_are("/rest/v1/echo", h_ph, h_keys.publishable, NULL);
	creds_are("/rest/v1/echo", h_user, h_keys.publishable,
	    h_fmt("Bearer %s", h_keys.user));
}
END_TEST

START_TEST(service_expose)
{
	static const char *const bad[][2] = {
	    { "POST", "/rest/v1/todos" },
	    { "DELETE", "/rest/v1/todos?id=eq.1" },
	    { "GET", "/rest/v1/secrets" },
	    { "GET", "/rest/v1/todosx" },
	    { "GET", "/auth/v1/admin/users" },
	    { "GET", "/storage/v1/bucket" },
	    { "POST", "/functions/v1/hello" },
	    { "GET", "/rest/v1/rpc/echo" },
	};
	struct h_opts	o = { .body = "{}", .body_len = 2 };
	struct h_resp	r;
	size_t		i;

	creds_are("/rest/v1/todos?select=*", NULL, h_keys.service,
	    h_fmt("Bearer %s", h_keys.service));
	o.has_body = 1;
	ck_assert_int_eq(h_req(&r, gate.port, "POST", "/rest/v1/rpc/echo",
	    &o), 0);
	ck_assert_int_eq(r.status, 200);
	h_resp_free(&r);
	ck_assert_int_eq(h_get(&r, up.port, "/_fake/reset"), 0);
	h_resp_free(&r);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o.has_body = strcmp(bad[i][0], "POST") == 0;
		ck_assert_int_eq(h_req(&r, gate.port, bad[i][0], bad[i][1],
		    &o), 0);
		ck_assert_msg(h_is_error(&r, 403, "forbidden") == 0,
		    "%s %s: %ld %s", bad[i][0], bad[i][1], r.status, r.body);
		h_resp_free(&r);
	}
	ck_assert_int_eq(h_get(&r, up.port, "/_fake/log"), 0);
	ck_assert_str_eq(r.body, "[]");		/* nothing reached upstream */
	h_resp_free(&r);
}
END_TEST

/* ---- errors ---------------------------------------------------------- */

START_TEST(upstream_down_502)
{
	struct h_resp	r;

	ck_assert_int_eq(h_get(&r, gate.port, "/rest/v1/echo"), 0);
	ck_assert(h_is_error(&r, 502, "upstream_unavailable") == 0);
	h_resp_free(&r);
	ck_assert_int_eq(h_get(&r, gate.port, "/storage/v1/object/x"), 0);
	ck_assert(h_is_error(&r, 502, "upstream_unavailable") == 0);
	h_resp_free(&r);
	ck_assert(h_alive(&gate));
}
END_TEST

START_TEST(upstream_timeout_504)
{
	struct h_resp	r;

	ck_assert_int_eq(h_get(&r, gate.port, "/rest/v1/hang"), 0);
	ck_assert(h_is_error(&r, 504, "upstream_timeout") == 0);
	h_resp_free(&r);
	get_ok(&r, "/rest/v1/echo", NULL);
	h_resp_free(&r);
}
END_TEST

START_TEST(host_check)
{
	static const char *const good[] = { "localhost", "127.0.0.1",
	    "supagate.local:8787", "supagate.local" };
	static const char *const bad[] = { "evil.example.com",
	    "localhost.evil.example", "127.0.0.2", "supagate.local.evil" };
	struct h_opts	o;
	struct h_resp	r;
	size_t		i;

	memset(&o, 0, sizeof(o));
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		o.host = good[i];
		ck_assert_int_eq(h_req(&r, gate.port, "GET", "/rest/v1/echo",
		    &o), 0);
		ck_assert_msg(r.status == 200, "Host %s: %ld", good[i],
		    r.status);
		h_resp_free(&r);
	}
	o.host = h_fmt("localhost:%d", gate.port);
	ck_assert_int_eq(h_req(&r, gate.port, "GET", "/rest/v1/echo", &o), 0);
	ck_assert_int_eq(r.status, 200);
	h_resp_free(&r);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o.host = bad[i];
		ck_assert_int_eq(h_req(&r, gate.port, "GET", "/rest/v1/echo",
		    &o), 0);
		ck_assert_msg(h_is_error(&r, 403, "forbidden_host") == 0,
		    "Host %s: %ld", bad[i], r.status);
		h_resp_free(&r);
	}
}
END_TEST

START_TEST(origin_check)
{
	static const char *const evil[] = { "Origin: http://evil.example",
	    NULL };
	static const char *const evil_pre[] = { "Origin: http://evil.example",
	    "Access-Control-Request-Method: POST", NULL };
	static const char *const good[] = { "Origin: http://localhost:3000",
	    NULL };
	static const char *const good_pre[] = {
	    "Origin: http://localhost:3000",
	    "Access-Control-Request-Method: POST",
	    "Access-Control-Request-Headers: apikey, content-type", NULL };
	struct h_opts	o = { .hdrs = evil };
	struct h_resp	r;
	char		v[256];

	ck_assert_int_eq(h_req(&r, gate.port, "GET", "/rest/v1/echo", &o), 0);
	ck_assert(h_is_error(&r, 403, "forbidden_origin") == 0);
	h_resp_free(&r);
	o.hdrs = evil_pre;
	ck_assert_int_eq(h_req(&r, gate.port, "OPTIONS", "/rest/v1/echo", &o),
	    0);
	ck_assert(h_is_error(&r, 403, "forbidden_origin") == 0);
	h_resp_free(&r);

	o.hdrs = good;
	ck_assert_int_eq(h_req(&r, gate.port, "GET", "/rest/v1/echo", &o), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(h_json_str(r.body, "path", v, sizeof(v)) == 0 ? v :
	    "", "/rest/v1/echo");
	ck_assert_ptr_nonnull(h_resp_header(&r, "Access-Control-Allow-Origin",
	    v, sizeof(v)));
	ck_assert_str_eq(v, "http://localhost:3000");
	h_resp_free(&r);
	o.hdrs = good_pre;
	ck_assert_int_eq(h_req(&r, gate.port, "OPTIONS", "/rest/v1/echo", &o),
	    0);
	ck_assert_msg(r.status == 200 || r.status == 204, "preflight %ld",
	    r.status);
	ck_assert_ptr_nonnull(h_resp_header(&r, "Access-Control-Allow-Origin",
	    v, sizeof(v)));
	ck_assert_str_eq(v, "http://localhost:3000");
	h_resp_free(&r);
}
END_TEST

START_TEST(body_too_large_413)
{
	static char	body[2000];
	struct h_opts	o = { .body = body, .body_len = sizeof(body),
			    .has_body = 1 };
	struct h_resp	r;
	double		n;

	memset(body, 'b', sizeof(body));
	ck_assert_int_eq(h_get(&r, up.port, "/_fake/reset"), 0);
	h_resp_free(&r);
	ck_assert_int_eq(h_req(&r, gate.port, "POST", "/rest/v1/sink?t=cl413",
	    &o), 0);
	ck_assert(h_is_error(&r, 413, "payload_too_large") == 0);
	h_resp_free(&r);
	ck_assert_int_eq(h_get(&r, up.port, "/_fake/log"), 0);
	ck_assert_msg(strstr(r.body, "cl413") == NULL,
	    "a declared oversized body reached upstream");
	h_resp_free(&r);

	o.chunked = 1;
	ck_assert_int_eq(h_req(&r, gate.port, "POST", "/rest/v1/sink?t=ch413",
	    &o), 0);
	ck_assert(h_is_error(&r, 413, "payload_too_large") == 0);
	h_resp_free(&r);

	o.chunked = 0;
	o.body_len = 1000;
	ck_assert_int_eq(h_req(&r, gate.port, "POST", "/rest/v1/sink", &o), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(h_json_num(r.body, "bytes", &n), 0);
	ck_assert_int_eq((int)n, 1000);
	h_resp_free(&r);
}
END_TEST

START_TEST(headers_too_large_431)
{
	static char	big[12000];
	const char	*hdrs[] = { big, NULL };
	struct h_opts	o = { .hdrs = hdrs };
	struct h_resp	r;

	memcpy(big, "X-Big: ", 7);
	memset(big + 7, 'h', sizeof(big) - 8);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(h_req(&r, gate.port, "GET", "/rest/v1/echo", &o), 0);
	ck_assert(h_is_error(&r, 431, "headers_too_large") == 0);
	h_resp_free(&r);
	get_ok(&r, "/rest/v1/echo", NULL);
	h_resp_free(&r);
}
END_TEST

/* hold n connections with a slow request in flight on each */
static void
hold(int *fds, int n)
{
	const char	*req = "GET /rest/v1/delay?ms=4000 HTTP/1.1\r\n"
			    "Host: 127.0.0.1\r\n\r\n";
	int		 i;

	for (i = 0; i < n; i++) {
		fds[i] = h_connect(gate.port);
		ck_assert_int_ge(fds[i], 0);
		ck_assert_int_eq(h_send_all(fds[i], req, strlen(req), 2000),
		    0);
	}
}

static void
overload_then_recover(void)
{
	struct h_resp	r;
	char		v[64];
	int		fds[2], i, ok = 0;

	hold(fds, 2);
	ck_assert_int_eq(h_get(&r, gate.port, "/rest/v1/echo"), 0);
	ck_assert(h_is_error(&r, 503, "overloaded") == 0);
	ck_assert_ptr_nonnull(h_resp_header(&r, "Retry-After", v, sizeof(v)));
	ck_assert_msg(atoi(v) >= 1, "Retry-After: %s", v);
	h_resp_free(&r);
	close(fds[0]);
	close(fds[1]);
	for (i = 0; i < 100 && !ok; i++) {	/* closes are seen async */
		ok = h_get(&r, gate.port, "/rest/v1/echo") == 0 &&
		    r.status == 200;
		h_resp_free(&r);
		if (!ok)
			h_sleep_ms(50);
	}
	ck_assert_msg(ok, "no recovery after the held connections closed");
}

START_TEST(per_peer_limit_503)
{
	overload_then_recover();
}
END_TEST

START_TEST(connection_limit_503)
{
	overload_then_recover();
}
END_TEST

/* ---- admin ----------------------------------------------------------- */

START_TEST(health_and_metrics)
{
	struct h_resp	r;
	char		v[64];
	double		before = 0, after = 0, x;
	int		i;

	get_ok(&r, "/_supagate/health", NULL);
	ck_assert_int_eq(h_json_str(r.body, "status", v, sizeof(v)), 0);
	ck_assert_str_eq(v, "ok");
	ck_assert_ptr_nonnull(h_resp_header(&r, "Content-Type", v, sizeof(v)));
	ck_assert_ptr_nonnull(strstr(v, "json"));
	h_resp_free(&r);

	get_ok(&r, "/_supagate/metrics", NULL);
	ck_assert_ptr_nonnull(h_resp_header(&r, "Content-Type", v, sizeof(v)));
	ck_assert_ptr_nonnull(strstr(v, "text/plain"));
	if (h_metric_in(r.body, "supagate_requests_total",
	    "route=rest,status=200", &x) == 0)
		before = x;
	h_resp_free(&r);
	get_ok(&r, "/rest/v1/echo?m=1", NULL);
	h_resp_free(&r);
	for (i = 0; i < 40; i++) {
		if (h_metric(gate.port, "supagate_requests_total",
		    "route=rest,status=200", &after) == 0 && after >= before + 1)
			break;
		h_sleep_ms(50);
	}
	ck_assert_msg(after == before + 1, "requests_total %g -> %g", before,
	    after);

	get_ok(&r, "/_supagate/metrics", NULL);
	ck_assert_int_eq(h_metric_in(r.body, "supagate_inflight_requests",
	    NULL, &x), 0);
	ck_assert_ptr_nonnull(strstr(r.body,
	    "\nsupagate_upstream_duration_seconds_bucket{"));
	ck_assert_ptr_nonnull(strstr(r.body, "le=\"+Inf\"}"));
	ck_assert_int_eq(h_metric_in(r.body, "supagate_bytes_total",
	    "direction=upstream", &x), 0);
	ck_assert_int_eq(h_metric_in(r.body, "supagate_bytes_total",
	    "direction=client", &x), 0);
	ck_assert(x > 0);
	ck_assert_ptr_nonnull(strstr(r.body, "# TYPE supagate_requests_total "
	    "counter"));
	h_resp_free(&r);
}
END_TEST

START_TEST(errors_are_counted)
{
	struct h_resp	 r;
	const char	*at;
	int		 i, seen = 0;

	for (i = 0; i < 40 && !seen; i++) {
		ck_assert_int_eq(h_get(&r, gate.port, "/_supagate/metrics"), 0);
		for (at = r.body; (at = strstr(at,
		    "supagate_upstream_errors_total{")) != NULL; at++) {
			const char *eol = strchr(at, '\n');
			const char *sp = eol ? memchr(at, '}', (size_t)(eol -
			    at)) : NULL;

			if (sp != NULL && memmem(at, (size_t)(sp - at),
			    "route=\"rest\"", 12) != NULL &&
			    strtod(sp + 1, NULL) >= 1)
				seen = 1;
		}
		h_resp_free(&r);
		if (!seen)
			h_sleep_ms(50);
	}
	ck_assert_msg(seen, "no supagate_upstream_errors_total{route=\"rest\"}");
}
END_TEST

/* ---- the cache: stale-while-revalidate ------------------------------ */

static void
fx_swr(void)
{
	gate_up(BASE_CONF
	    "upstream @UP@\n"
	    "anon-key-file @DIR@/anon.key\n"
	    "cache-ttl 1s\n"
	    "cache-ttl-for /rest/v1/lo 1m\n"
	    "cache-ttl-for /rest/v1/long 1h\n"
	    "cache-stale-while-revalidate 1h\n", up.port);
}

/* how many requests fakeup logged whose query holds tag */
static int
upstream_count(const char *tag)
{
	struct h_resp	 r;
	const char	*at;
	int		 n = 0;

	ck_assert_int_eq(h_get(&r, up.port, "/_fake/log"), 0);
	for (at = r.body; (at = strstr(at, tag)) != NULL; at++)
		n++;
	h_resp_free(&r);
	return n;
}

static void
cache_status(const char *target, char *v, size_t vlen)
{
	struct h_resp	r;

	get_ok(&r, target, NULL);
	ck_assert_ptr_nonnull(h_resp_header(&r, "Cache-Status", v, vlen));
	h_resp_free(&r);
}

/* ---- the cache: identities verified with a JWK set ------------------ */

static char	jwks_path[H_PATH_MAX];

static void
fx_jwks(void)
{
	char	dir[] = "/tmp/check_proxy_jwks.XXXXXX";
	FILE	*fp;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(jwks_path, sizeof(jwks_path), "%s/jwks.json", dir);
	ck_assert_ptr_nonnull(fp = fopen(jwks_path, "w"));
	fputs(JWKS, fp);
	ck_assert_int_eq(fclose(fp), 0);
	gate_up(h_fmt(BASE_CONF
	    "upstream @UP@\n"
	    "anon-key-file @DIR@/anon.key\n"
	    "jwt-jwks-file %s\n"
	    "cache-ttl 1h\n", jwks_path), up.port);
}

static void
fx_jwks_down(void)
{
	char	*slash;

	gate_down();
	unlink(jwks_path);
	if ((slash = strrchr(jwks_path, '/')) != NULL) {
		*slash = '\0';
		rmdir(jwks_path);
	}
}

/* Cache-Status of GET target with tok as the bearer */
static void
status_as(const char *target, const char *tok, char *v, size_t vlen)
{
	const char	*hdrs[] = { h_fmt("Authorization: Bearer %s", tok),
			    NULL };
	struct h_resp	 r;

	get_ok(&r, target, hdrs);
	ck_assert_ptr_nonnull(h_resp_header(&r, "Cache-Status", v, vlen));
	h_resp_free(&r);
}

#define IS_HIT(v)	ck_assert_msg(strncmp((v), "supagate; hit", 13) == \
			    0, "expected a hit: %s", (v))
#define IS_MISS(v)	ck_assert_msg(strstr((v), "fwd=miss") != NULL,	\
			    "expected a miss: %s", (v))

/*
 * ES256 and RS256 tokens verified with jwt-jwks-file: two users get
 * separate entries, one user's second token (another iat) shares the
 * first one's; expired or tampered tokens are keyed by the whole token
 */
START_TEST(jwks_identity)
{
	const char	*t = "/rest/v1/things?t=jwks-1";
	char		 v[256], bad[4096];
	size_t		 n;

	status_as(t, TOK_ES_A, v, sizeof(v));
	IS_MISS(v);
	status_as(t, TOK_ES_A2, v, sizeof(v));
	IS_HIT(v);
	ck_assert_int_eq(upstream_count("t=jwks-1"), 1);
	status_as(t, TOK_ES_B, v, sizeof(v));
	IS_MISS(v);
	status_as(t, TOK_ES_B, v, sizeof(v));
	IS_HIT(v);
	ck_assert_int_eq(upstream_count("t=jwks-1"), 2);
	/* user-a, but expired: not user-a's entry */
	status_as(t, TOK_ES_EXPIRED, v, sizeof(v));
	IS_MISS(v);
	/* user-a's token with one signature character changed */
	n = strlen(TOK_ES_A);
	memcpy(bad, TOK_ES_A, n + 1);
	bad[n - 5] = bad[n - 5] == 'A' ? 'B' : 'A';
	status_as(t, bad, v, sizeof(v));
	IS_MISS(v);
	/* RS256 user, then a second RS256 user */
	status_as(t, TOK_RS_1, v, sizeof(v));
	IS_MISS(v);
	status_as(t, TOK_RS_4, v, sizeof(v));
	IS_MISS(v);
	status_as(t, TOK_RS_4, v, sizeof(v));
	IS_HIT(v);
	ck_assert_int_eq(upstream_count("t=jwks-1"), 6);
	/* user-a still hits with either token */
	status_as(t, TOK_ES_A, v, sizeof(v));
	IS_HIT(v);
}
END_TEST

/* SIGHUP the gate, the first time, and wait until it has reloaded */
static void
reload_gate(void)
{
	double	n = 0;
	int	i;

	kill(gate.pid, SIGHUP);
	for (i = 0; i < 500 && n < 1; i++) {
		if (h_metric(gate.port, "supagate_config_reloads_total", NULL,
		    &n) != 0 || n < 1)
			h_sleep_ms(20);
	}
	ck_assert_msg(n == 1, "no reload");
}

/*
 * SIGHUP with ec-1 gone from jwt-jwks-file: tokens verified before (and
 * remembered) are no longer user-a's; ec-2 tokens still verify
 */
START_TEST(jwks_reload)
{
	const char	*t = "/rest/v1/things?t=jwks-2";
	char		 v[256];
	FILE		*fp;

	status_as(t, TOK_ES_A, v, sizeof(v));
	IS_MISS(v);
	ck_assert_ptr_nonnull(fp = fopen(jwks_path, "w"));
	fputs(JWKS_EC2, fp);
	ck_assert_int_eq(fclose(fp), 0);
	reload_gate();
	t = "/rest/v1/things?t=jwks-3";
	status_as(t, TOK_ES_A, v, sizeof(v));
	IS_MISS(v);
	status_as(t, TOK_ES_A2, v, sizeof(v));
	IS_MISS(v);
	status_as(t, TOK_ES_B, v, sizeof(v));
	IS_MISS(v);
	status_as(t, TOK_ES_B2, v, sizeof(v));
	IS_HIT(v);
}
END_TEST

/* ---- client-tokens-file: local client tokens ------------------------ */

static char	tokens_path[H_PATH_MAX];
static char	tok1[128], tok2[128];	/* made by "supagate token" */
static char	line1[160], line2[160];	/* their client-tokens-file lines */

/* "supagate token name": the token and the file's line */
static void
make_token(const char *name, char *tok, char *line)
{
	FILE	*p;

	ck_assert_ptr_nonnull(p = popen(h_fmt("'%s' token %s",
	    getenv("SUPAGATE_BIN"), name), "r"));
	ck_assert_ptr_nonnull(fgets(tok, 128, p));
	ck_assert_ptr_nonnull(fgets(line, 160, p));
	ck_assert_int_eq(pclose(p), 0);
	tok[strcspn(tok, "\n")] = '\0';
	ck_assert(strncmp(tok, "sgt_", 4) == 0 && strlen(tok) == 47);
	ck_assert(strncmp(line, name, strlen(name)) == 0);
}

static void
write_tokens(const char *text)
{
	FILE	*fp;

	ck_assert_ptr_nonnull(fp = fopen(tokens_path, "w"));
	fputs(text, fp);
	ck_assert_int_eq(fclose(fp), 0);
}

static void
fx_tokens(void)
{
	char	dir[] = "/tmp/check_proxy_tokens.XXXXXX";

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(tokens_path, sizeof(tokens_path), "%s/tokens", dir);
	make_token("app1", tok1, line1);
	make_token("app2", tok2, line2);
	write_tokens(h_fmt("# local apps\n%s%s", line1, line2));
	gate_up(h_fmt(BASE_CONF
	    "upstream @UP@\n"
	    "anon-key-file @DIR@/anon.key\n"
	    "client-tokens-file %s\n", tokens_path), up.port);
}

static void
fx_tokens_down(void)
{
	char	*slash;

	gate_down();
	unlink(tokens_path);
	if ((slash = strrchr(tokens_path, '/')) != NULL) {
		*slash = '\0';
		rmdir(tokens_path);
	}
}

/* GET target with hdrs: want status, and the JSON code when an error */
static void
token_status(const char *target, const char *const *hdrs, long want,
    const char *code)
{
	struct h_opts	o = { .hdrs = hdrs };
	struct h_resp	r;
	char		v[64];

	ck_assert_msg(h_req(&r, gate.port, "GET", target, &o) == 0,
	    "GET %s: %s", target, r.err);
	ck_assert_msg(r.status == want, "GET %s: status %ld body %s", target,
	    r.status, r.body);
	if (code != NULL) {
		ck_assert_int_eq(h_json_str(r.body, "code", v, sizeof(v)), 0);
		ck_assert_str_eq(v, code);
	}
	ck_assert_ptr_null(strstr(r.body, tok1));
	ck_assert_ptr_null(strstr(r.body, tok2));
	h_resp_free(&r);
}

/*
 * With client-tokens-file a request must carry one of the tokens, as
 * supabase-js sends its key (apikey and Bearer), as Bearer alone, or as
 * ?apikey=; upstream never sees it (supagate's own key goes there).
 */
START_TEST(client_tokens)
{
	static char	 bearer[600], anon[600], user[600], k1[160], b1[160],
			 k2[160], b2[160], big[6000], t[300];
	const char	*h_none[] = { NULL };
	const char	*h_anon[] = { anon, NULL };
	const char	*h_bad[] = { "apikey: sgt_not-a-token", b1, NULL };
	const char	*h_js[] = { k1, b1, NULL };
	const char	*h_b2[] = { b2, NULL };
	const char	*h_user[] = { k2, user, NULL };
	const char	*h_big[] = { big, NULL };
	char		*log;

	snprintf(bearer, sizeof(bearer), "Bearer %s", h_keys.anon);
	snprintf(anon, sizeof(anon), "apikey: %s", h_keys.anon);
	snprintf(user, sizeof(user), "Authorization: Bearer %s", h_keys.user);
	snprintf(k1, sizeof(k1), "apikey: %s", tok1);
	snprintf(b1, sizeof(b1), "Authorization: Bearer %s", tok1);
	snprintf(k2, sizeof(k2), "apikey: %s", tok2);
	snprintf(b2, sizeof(b2), "Authorization: Bearer %s", tok2);

	token_status("/rest/v1/echo?t=none", h_none, 401,
	    "invalid_client_token");
	/* the project's own key is no client token */
	token_status("/rest/v1/echo?t=anon", h_anon, 401,
	    "invalid_client_token");
	/* apikey decides, when there is one */
	token_status("/rest/v1/echo?t=bad", h_bad, 401,
	    "invalid_client_token");
	snprintf(t, sizeof(t), "/rest/v1/echo?apikey=%s", tok1 + 1);
	token_status(t, h_none, 401, "invalid_client_token");
	snprintf(big, sizeof(big), "apikey: %s%0*d", tok1, 5000, 7);
	token_status("/rest/v1/echo?t=big", h_big, 401,
	    "invalid_client_token");

	creds_are("/rest/v1/echo?t=js", h_js, h_keys.anon, bearer);
	creds_are("/rest/v1/echo?t=b2", h_b2, h_keys.anon, bearer);
	snprintf(t, sizeof(t), "/rest/v1/echo?t=q&apikey=%s", tok1);
	creds_are(t, h_none, h_keys.anon, bearer);
	snprintf(t, sizeof(t), "/rest/v1/echo?t=q2&apikey=%s", tok2);
	token_status(t, h_none, 200, NULL);
	/* a signed-in client keeps its own user token */
	creds_are("/auth/v1/user?t=user", h_user, h_keys.anon,
	    user + strlen("Authorization: "));
	/* the admin endpoints stay loopback-only, without a token */
	token_status("/_supagate/health", h_none, 200, NULL);
	/* no token in the log, from a header or the query */
	ck_assert_ptr_nonnull(log = h_slurp(gate.log, NULL));
	ck_assert_ptr_nonnull(strstr(log, "t=q2"));
	ck_assert_ptr_null(strstr(log, tok1));
	ck_assert_ptr_null(strstr(log, tok2));
	free(log);
}
END_TEST

/* a token taken out of the file and SIGHUP: refused from then on */
START_TEST(client_tokens_revoked)
{
	static char	 k1[160], k2[160];
	const char	*h1[] = { k1, NULL };
	const char	*h2[] = { k2, NULL };

	snprintf(k1, sizeof(k1), "apikey: %s", tok1);
	snprintf(k2, sizeof(k2), "apikey: %s", tok2);

	token_status("/rest/v1/echo?t=r1", h1, 200, NULL);
	write_tokens(line2);
	reload_gate();
	token_status("/rest/v1/echo?t=r2", h1, 401, "invalid_client_token");
	token_status("/rest/v1/echo?t=r3", h2, 200, NULL);
}
END_TEST

/* ---- listen unix:PATH ---------------------------------------------- */

static char	sock_dir[H_PATH_MAX], sock_path[H_PATH_MAX + 16];

static void
fx_unix(void)
{
	char	dir[] = "/tmp/check_proxy_unix.XXXXXX";

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sock_dir, sizeof(sock_dir), "%s", dir);
	snprintf(sock_path, sizeof(sock_path), "%s/http.sock", dir);
	gate_up(h_fmt(BASE_CONF
	    "listen unix:%s\n"
	    "upstream @UP@\n"
	    "anon-key-file @DIR@/anon.key\n", sock_path), up.port);
}

static void
fx_unix_down(void)
{
	gate_down();
	unlink(sock_path);
	rmdir(sock_dir);
}

/* send req on a new connection to the unix socket, read until close */
static void
unix_raw(const char *path, const char *req, struct h_raw_resp *rr)
{
	struct sockaddr_un	 sun;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	ck_assert_uint_lt(strlen(path), sizeof(sun.sun_path));
	memcpy(sun.sun_path, path, strlen(path) + 1);
	ck_assert_int_ge(fd = socket(AF_UNIX, SOCK_STREAM, 0), 0);
	ck_assert_msg(connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0,
	    "connect %s: %s", path, strerror(errno));
	ck_assert_int_eq(h_send_all(fd, req, strlen(req), 5000), 0);
	memset(rr, 0, sizeof(*rr));
	h_raw_read(fd, H_RAW_CLOSE, 10000, rr);
	close(fd);
}

/* the same requests over unix:PATH as over TCP, file mode 0660 */
START_TEST(unix_socket)
{
	static struct h_raw_resp	 rr;
	struct stat			 sb;
	char				 v[1024];

	ck_assert_int_eq(lstat(sock_path, &sb), 0);
	ck_assert(S_ISSOCK(sb.st_mode));
	ck_assert_int_eq(sb.st_mode & 0777, 0660);

	unix_raw(sock_path, "GET /rest/v1/echo?via=unix HTTP/1.1\r\n"
	    "Host: localhost\r\nConnection: close\r\n\r\n", &rr);
	ck_assert_int_eq(rr.status, 200);
	ck_assert_ptr_nonnull(rr.body);
	ck_assert_int_eq(h_echo_hdr_count(rr.body, "apikey"), 1);
	h_echo_hdr(rr.body, "apikey", 0, v, sizeof(v));
	ck_assert_str_eq(v, h_keys.anon);
	/* bad input gets the same JSON answer */
	unix_raw(sock_path, "GET /rest/v1/echo HTTP/1.1\r\n"
	    "Host: localhost\r\nBad Name: 1\r\n\r\n", &rr);
	ck_assert_int_eq(rr.status, 400);
	ck_assert_int_eq(h_json_str(rr.body, "code", v, sizeof(v)), 0);
	ck_assert_str_eq(v, "bad_request");
	/* a chunked body goes to libmicrohttpd with a unix peer too */
	unix_raw(sock_path, "POST /rest/v1/sink HTTP/1.1\r\n"
	    "Host: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "5\r\nhello\r\n0\r\n\r\n", &rr);
	ck_assert_int_eq(rr.status, 200);
	ck_assert_ptr_nonnull(strstr(rr.body, "\"bytes\":5,"));
	/* and TCP still works */
	ck_assert(health_ok(gate.port));
}
END_TEST

/*
 * A socket file left by a killed daemon is replaced at the next start,
 * a clean stop removes it, and a path that is not a socket is refused.
 */
START_TEST(unix_socket_files)
{
	static struct h_proc	 g;
	char			 dir[] = "/tmp/check_proxy_unix2.XXXXXX";
	char			 path[H_PATH_MAX], conf[2 * H_PATH_MAX];
	struct stat		 sb;
	int			 st, killed, fd;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	/* unix first: a start that fails there never says "listening" */
	snprintf(conf, sizeof(conf), "listen unix:%s\n" BASE_CONF
	    "upstream @UP@\nanon-key-file @DIR@/anon.key\n", path);

	ck_assert_int_eq(h_gate_start(&g, conf, up.port, NULL), 0);
	ck_assert_int_eq(kill(g.pid, SIGKILL), 0);
	st = h_stop(&g, 5000, &killed);
	ck_assert(WIFSIGNALED(st));
	ck_assert_int_eq(lstat(path, &sb), 0);		/* stale */
	ck_assert_int_eq(h_gate_start(&g, conf, up.port, NULL), 0);
	ck_assert_int_eq(lstat(path, &sb), 0);
	ck_assert(S_ISSOCK(sb.st_mode));
	st = h_stop(&g, 10000, &killed);
	ck_assert(!killed && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_int_eq(lstat(path, &sb), -1);		/* removed */

	ck_assert_int_ge(fd = open(path, O_WRONLY | O_CREAT, 0600), 0);
	close(fd);
	ck_assert_int_eq(h_gate_start(&g, conf, up.port, NULL), -1);
	ck_assert_int_eq(lstat(path, &sb), 0);
	ck_assert(S_ISREG(sb.st_mode));			/* left alone */
	unlink(path);
	rmdir(dir);
}
END_TEST

/* ---- jwt-jwks-fetch: the set from Auth, kept in state-dir ---------- */

static char	fetch_state[H_PATH_MAX];

/* what fakeup's jwks.json answers ("": 503) */
static void
fake_jwks(const char *body)
{
	struct h_opts	o = { .body = body, .body_len = strlen(body),
			    .has_body = 1 };
	struct h_resp	r;

	ck_assert_int_eq(h_req(&r, up.port, "POST", "/_fake/jwks", &o), 0);
	ck_assert_int_eq(r.status, 200);
	h_resp_free(&r);
}

static void
gate_fetch_up(void)
{
	gate_up(h_fmt("listen 127.0.0.1:0\n"
	    "state-dir %s\n"
	    "upstream @UP@\n"
	    "anon-key-file @DIR@/anon.key\n"
	    "jwt-jwks-fetch on\n"
	    "cache-ttl 1h\n", fetch_state), up.port);
}

static void
fx_fetch(void)
{
	strcpy(fetch_state, "/tmp/check_proxy_fetch.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fetch_state));
	fake_jwks(JWKS_EC1);
	gate_fetch_up();
}

static void
fx_fetch_down(void)
{
	gate_down();
	fake_jwks("");
	if (strncmp(fetch_state, "/tmp/check_proxy_fetch.", 23) == 0 &&
	    system(h_fmt("rm -rf '%s'", fetch_state)) != 0)
		fprintf(stderr, "could not remove %s\n", fetch_state);
}

static int
jwks_fetches(void)
{
	return upstream_count("\"path\":\"/auth/v1/.well-known/jwks.json\"");
}

/* wait until state-dir/jwks.json holds kid (the fetch completed) */
static void
wait_stored(const char *kid)
{
	char	*s;
	size_t	 len;
	int	 i, found = 0;

	for (i = 0; i < 500 && !found; i++) {
		s = h_slurp(h_fmt("%s/jwks.json", fetch_state), &len);
		found = s != NULL && strstr(s, kid) != NULL;
		free(s);
		if (!found)
			h_sleep_ms(20);
	}
	ck_assert_msg(found, "state-dir/jwks.json never held %s", kid);
}

/*
 * The set fetched at start verifies; a token naming a new kid makes
 * supagate fetch again (at most once per 30 s)
 */
START_TEST(jwks_fetch)
{
	const char	*t = "/rest/v1/things?t=fetch-1";
	char		 v[256];
	int		 i, n;

	wait_stored("ec-1");
	ck_assert_int_eq(jwks_fetches(), 1);
	status_as(t, TOK_ES_A, v, sizeof(v));
	IS_MISS(v);
	status_as(t, TOK_ES_A2, v, sizeof(v));
	IS_HIT(v);

	/* a rotated-in key: the first token with its kid is not verified */
	fake_jwks(JWKS_EC12);
	status_as(t, TOK_ES_B, v, sizeof(v));
	IS_MISS(v);
	wait_stored("ec-2");
	ck_assert_int_eq(jwks_fetches(), 2);
	status_as(t, TOK_ES_B, v, sizeof(v));
	IS_MISS(v);			/* now keyed as user-b */
	status_as(t, TOK_ES_B2, v, sizeof(v));
	IS_HIT(v);

	/* more unknown kids right after: no fetch storm */
	for (i = 0; i < 5; i++)
		status_as(t, TOK_ES_UNKNOWN_KID, v, sizeof(v));
	n = jwks_fetches();
	ck_assert_msg(n <= 3, "%d fetches", n);

}
END_TEST

static int	offline_fetches0;

/* a set stored by an earlier run, and Auth answering 503 */
static void
fx_offline(void)
{
	FILE	*fp;

	strcpy(fetch_state, "/tmp/check_proxy_fetch.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fetch_state));
	ck_assert_ptr_nonnull(fp = fopen(h_fmt("%s/jwks.json", fetch_state),
	    "w"));
	fputs(JWKS_EC12, fp);
	ck_assert_int_eq(fclose(fp), 0);
	fake_jwks("");
	offline_fetches0 = jwks_fetches();
	gate_fetch_up();
}

/* a failed fetch keeps the stored set, which verifies */
START_TEST(jwks_offline)
{
	const char	*t = "/rest/v1/things?t=offline-1";
	char		 v[256];
	int		 i;

	for (i = 0; i < 500 && jwks_fetches() == offline_fetches0; i++)
		h_sleep_ms(20);
	ck_assert_int_eq(jwks_fetches(), offline_fetches0 + 1);
	status_as(t, TOK_ES_A, v, sizeof(v));
	IS_MISS(v);
	status_as(t, TOK_ES_A2, v, sizeof(v));
	IS_HIT(v);
	status_as(t, TOK_ES_B, v, sizeof(v));
	IS_MISS(v);
	status_as(t, TOK_ES_B2, v, sizeof(v));
	IS_HIT(v);
}
END_TEST

/*
 * Past its lifetime but inside the window, an entry is served at once
 * (marked stale) and fetched again in the background; the next read is
 * a hit of the new version without another upstream request.  /gen
 * answers {"n":1} fresh for 1 s, then {"n":2} fresh for an hour.
 */
START_TEST(stale_while_revalidate)
{
	const char	*t = "/rest/v1/gen?t=swr-1";
	struct h_resp	 r;
	char		 v[256];
	int		 i;

	get_ok(&r, t, NULL);
	ck_assert_str_eq(r.body, "{\"n\":1}");
	h_resp_free(&r);
	cache_status(t, v, sizeof(v));
	ck_assert_msg(strncmp(v, "supagate; hit", 13) == 0, "%s", v);
	ck_assert_int_eq(upstream_count("t=swr-1"), 1);
	h_sleep_ms(1100);	/* let the 1 s lifetime pass */
	get_ok(&r, t, NULL);
	ck_assert_str_eq(r.body, "{\"n\":1}");
	ck_assert_msg(strstr(h_resp_header(&r, "Cache-Status", v, sizeof(v)),
	    "detail=stale-while-revalidate") != NULL, "%s", v);
	h_resp_free(&r);
	/* the background refresh reaches upstream with no client waiting */
	for (i = 0; i < 250 && upstream_count("t=swr-1") < 2; i++)
		h_sleep_ms(20);
	ck_assert_int_eq(upstream_count("t=swr-1"), 2);
	/* and its answer is what the cache serves now */
	for (i = 0; i < 250; i++) {
		get_ok(&r, t, NULL);
		if (strcmp(r.body, "{\"n\":2}") == 0)
			break;
		h_resp_free(&r);
		h_sleep_ms(20);
	}
	ck_assert_str_eq(r.body, "{\"n\":2}");
	ck_assert_msg(strncmp(h_resp_header(&r, "Cache-Status", v, sizeof(v)),
	    "supagate; hit", 13) == 0 && strstr(v, "stale") == NULL, "%s", v);
	h_resp_free(&r);
	ck_assert_int_eq(upstream_count("t=swr-1"), 2);
}
END_TEST

/* the ttl= of a hit's Cache-Status, or -100000 */
static long
hit_ttl(const char *v)
{
	const char	*at = strstr(v, "hit; ttl=");

	return at != NULL ? strtol(at + 9, NULL, 10) : -100000;
}

/* cache-ttl-for: the longest matching prefix sets the lifetime */
START_TEST(ttl_per_prefix)
{
	char	v[256];
	long	ttl;

	cache_status("/rest/v1/long?t=ttl-1", v, sizeof(v));
	ck_assert_msg(strstr(v, "fwd=miss") != NULL, "%s", v);
	cache_status("/rest/v1/long?t=ttl-1", v, sizeof(v));
	ttl = hit_ttl(v);
	ck_assert_msg(ttl > 3000 && ttl <= 3600, "%s", v);
	cache_status("/rest/v1/lox?t=ttl-2", v, sizeof(v));
	cache_status("/rest/v1/lox?t=ttl-2", v, sizeof(v));
	ttl = hit_ttl(v);
	ck_assert_msg(ttl > 30 && ttl <= 60, "%s", v);
	cache_status("/rest/v1/echo?t=ttl-3", v, sizeof(v));
	cache_status("/rest/v1/echo?t=ttl-3", v, sizeof(v));
	/* cache-ttl 1s: at most 1 s left, or already stale */
	ck_assert_msg(hit_ttl(v) <= 1 || strstr(v, "stale") != NULL, "%s", v);
}
END_TEST

START_TEST(access_log_off)
{
	static const char	 bad[] = "GET /rest/v1/echo HTTP/1.1\r\n"
				    "Host: 127.0.0.1\r\nNo colon\r\n\r\n";
	static struct h_raw_resp rr;
	struct h_resp		 r;
	char			*log;

	get_ok(&r, "/rest/v1/echo?quiet=1", NULL);
	h_resp_free(&r);
	h_raw(gate.port, bad, sizeof(bad) - 1, H_RAW_CLOSE, 10000, &rr);
	ck_assert_int_eq(rr.status, 400);
	get_ok(&r, "/_supagate/health", NULL);	/* flush ordering */
	h_resp_free(&r);
	log = h_slurp(gate.log, NULL);
	ck_assert_ptr_nonnull(log);
	/* no access lines, but the other messages and the gate's refusal */
	ck_assert_msg(strstr(log, "quiet=1") == NULL, "access line logged");
	ck_assert_msg(strstr(log, "/_supagate/health") == NULL,
	    "access line logged");
	ck_assert_ptr_nonnull(strstr(log, "listening on"));
	ck_assert_ptr_nonnull(strstr(log, "400 gate=bad_request"));
	free(log);
}
END_TEST

/* ---- supagate's own HTTP/1.1 side (bodyless requests) ------------- */

#define HOST_LINE	"Host: 127.0.0.1\r\n"

/* the n-th (0-based) response in a raw exchange, or NULL */
static const char *
nth_response(const char *buf, int n)
{
	const char	*p = buf;

	for (; p != NULL; p = strstr(p + 1, "HTTP/1.1 "))
		if (strncmp(p, "HTTP/1.1 ", 9) == 0 && n-- == 0)
			return p;
	return NULL;
}

/* 1 if the head of the response at p holds the line "name: value" */
static int
head_has(const char *p, const char *line)
{
	const char	*end = strstr(p, "\r\n\r\n");
	const char	*at = strstr(p, line);

	return end != NULL && at != NULL && at < end;
}

START_TEST(front_pipelined_keepalive)
{
	static struct h_raw_resp	 rr;
	static const char		 req[] =
	    "GET /rest/v1/echo?a=1 HTTP/1.1\r\n" HOST_LINE "\r\n"
	    "GET /rest/v1/echo?a=2 HTTP/1.1\r\n" HOST_LINE "\r\n"
	    "GET /rest/v1/echo?a=3 HTTP/1.1\r\n" HOST_LINE
	    "Connection: close\r\n\r\n";
	const char			*r1, *r2, *r3;

	h_raw(gate.port, req, sizeof(req) - 1, H_RAW_CLOSE, 10000, &rr);
	ck_assert_msg(rr.closed && !rr.timed_out, "not closed after three");
	r1 = nth_response(rr.buf, 0);
	r2 = nth_response(rr.buf, 1);
	r3 = nth_response(rr.buf, 2);
	ck_assert_ptr_nonnull(r1);
	ck_assert_ptr_nonnull(r2);
	ck_assert_ptr_nonnull(r3);
	ck_assert_ptr_null(nth_response(rr.buf, 3));
	/* in order, each one whole, kept alive but for the last */
	ck_assert(strncmp(r1, "HTTP/1.1 200", 12) == 0);
	ck_assert(strncmp(r2, "HTTP/1.1 200", 12) == 0);
	ck_assert(strncmp(r3, "HTTP/1.1 200", 12) == 0);
	ck_assert_ptr_nonnull(strstr(r1, "\"query\":\"a=1\""));
	ck_assert(strstr(r1, "\"query\":\"a=1\"") < r2);
	ck_assert_ptr_nonnull(strstr(r2, "\"query\":\"a=2\""));
	ck_assert(strstr(r2, "\"query\":\"a=2\"") < r3);
	ck_assert_ptr_nonnull(strstr(r3, "\"query\":\"a=3\""));
	ck_assert(!head_has(r1, "Connection: close"));
	ck_assert(!head_has(r2, "Connection: close"));
	ck_assert(head_has(r3, "Connection: close"));
	ck_assert(head_has(r1, "Date: "));
}
END_TEST

START_TEST(front_http10_closes)
{
	static struct h_raw_resp	 rr;
	static const char		 req[] =
	    "GET /rest/v1/bytes?n=70000&chunked=1 HTTP/1.0\r\n"
	    HOST_LINE "\r\n";

	/* no length known and no chunked coding in 1.0: the close ends it */
	h_raw(gate.port, req, sizeof(req) - 1, H_RAW_CLOSE, 10000, &rr);
	ck_assert_int_eq(rr.status, 200);
	ck_assert(rr.closed && !rr.timed_out);
	ck_assert(head_has(rr.buf, "Connection: close"));
	ck_assert(!head_has(rr.buf, "Transfer-Encoding"));
	ck_assert(!head_has(rr.buf, "Content-Length"));
	ck_assert_uint_eq(rr.body_len, 70000);
}
END_TEST

START_TEST(front_chunked_when_length_unknown)
{
	static struct h_raw_resp	 rr;
	static const char		 req[] =
	    "GET /rest/v1/bytes?n=150000&chunked=1 HTTP/1.1\r\n"
	    HOST_LINE "Connection: close\r\n\r\n";
	const char			*p, *end;
	char				*e;
	size_t				 total = 0;
	unsigned long			 n;
	int				 chunks = 0, last = 0;

	h_raw(gate.port, req, sizeof(req) - 1, H_RAW_CLOSE, 10000, &rr);
	ck_assert_int_eq(rr.status, 200);
	ck_assert(head_has(rr.buf, "Transfer-Encoding: chunked"));
	ck_assert(!head_has(rr.buf, "Content-Length"));
	p = strstr(rr.buf, "\r\n\r\n") + 4;
	end = rr.buf + rr.len;
	while (p < end && chunks < 10000) {
		n = strtoul(p, &e, 16);
		ck_assert_msg(e != p && e[0] == '\r' && e[1] == '\n',
		    "bad chunk size line at %ld", (long)(p - rr.buf));
		p = e + 2;
		chunks++;
		if (n == 0) {
			last = 1;
			ck_assert(p + 2 == end && p[0] == '\r' && p[1] == '\n');
			break;
		}
		ck_assert((size_t)(end - p) >= n + 2);
		ck_assert(p[n] == '\r' && p[n + 1] == '\n');
		total += n;
		p += n + 2;
	}
	ck_assert_msg(last, "no last chunk");
	ck_assert_uint_eq(total, 150000);
}
END_TEST

START_TEST(front_head_has_length_no_body)
{
	static struct h_raw_resp	 rr;
	static const char		 req[] =
	    "HEAD /rest/v1/bytes?n=5000 HTTP/1.1\r\n" HOST_LINE
	    "Connection: close\r\n\r\n";

	h_raw(gate.port, req, sizeof(req) - 1, H_RAW_CLOSE | H_RAW_HEAD,
	    10000, &rr);
	ck_assert_int_eq(rr.status, 200);
	ck_assert(head_has(rr.buf, "Content-Length: 5000"));
	ck_assert(rr.closed);
	ck_assert_uint_eq(rr.len, (size_t)(strstr(rr.buf, "\r\n\r\n") + 4 -
	    rr.buf));
}
END_TEST

START_TEST(front_later_head_is_gated)
{
	static struct h_raw_resp	 rr;
	static const char		 req[] =
	    "GET /rest/v1/echo HTTP/1.1\r\n" HOST_LINE "\r\n"
	    "GET /rest/v1/echo HTTP/1.1\r\n" HOST_LINE "No colon here\r\n\r\n";
	const char			*r2;
	struct h_resp			 r;

	/* the second head on the connection is checked as strictly */
	h_raw(gate.port, req, sizeof(req) - 1, H_RAW_CLOSE, 10000, &rr);
	ck_assert(strncmp(rr.buf, "HTTP/1.1 200", 12) == 0);
	ck_assert_ptr_nonnull(r2 = nth_response(rr.buf, 1));
	ck_assert(strncmp(r2, "HTTP/1.1 400", 12) == 0);
	ck_assert(head_has(r2, "Content-Type: application/json"));
	ck_assert_ptr_nonnull(strstr(r2, "\"code\":\"bad_request\""));
	ck_assert(rr.closed);
	get_ok(&r, "/rest/v1/echo", NULL);
	h_resp_free(&r);
}
END_TEST

/*
 * A request with a Content-Length body is read by supagate's side too:
 * the connection stays, and the head after it is still gated (a JSON
 * 400, not libmicrohttpd's HTML).
 */
START_TEST(front_body_stays)
{
	static struct h_raw_resp	 rr;
	static const char		 req[] =
	    "GET /rest/v1/echo?a=1 HTTP/1.1\r\n" HOST_LINE "\r\n"
	    "POST /rest/v1/sink HTTP/1.1\r\n" HOST_LINE
	    "Content-Length: 5\r\n\r\nhello"
	    "PATCH /rest/v1/echo?a=3 HTTP/1.1\r\n" HOST_LINE
	    "Content-Length: 0\r\n\r\n"
	    "GET /rest/v1/echo?a=4 HTTP/1.1\r\n" HOST_LINE
	    "No colon here\r\n\r\n";
	const char			*r2, *r3, *r4;

	h_raw(gate.port, req, sizeof(req) - 1, H_RAW_CLOSE, 10000, &rr);
	ck_assert(strncmp(rr.buf, "HTTP/1.1 200", 12) == 0);
	ck_assert_ptr_nonnull(r2 = nth_response(rr.buf, 1));
	ck_assert_ptr_nonnull(r3 = nth_response(rr.buf, 2));
	ck_assert_ptr_nonnull(r4 = nth_response(rr.buf, 3));
	ck_assert(strncmp(r2, "HTTP/1.1 200", 12) == 0);
	ck_assert_ptr_nonnull(strstr(r2, "\"bytes\":5,"));
	ck_assert(!head_has(r2, "Connection: close"));
	ck_assert(strncmp(r3, "HTTP/1.1 200", 12) == 0);
	ck_assert_ptr_nonnull(strstr(r3, "\"method\":\"PATCH\""));
	ck_assert_ptr_nonnull(strstr(r3, "\"query\":\"a=3\""));
	ck_assert(strncmp(r4, "HTTP/1.1 400", 12) == 0);
	ck_assert(head_has(r4, "Content-Type: application/json"));
	ck_assert_ptr_nonnull(strstr(r4, "\"code\":\"bad_request\""));
	ck_assert(rr.closed);
}
END_TEST

/* a chunked body still moves the connection to libmicrohttpd */
/*
 * A chunked body goes to libmicrohttpd, which closes the connection after
 * its answer: what the client pipelined behind it is not answered, and
 * its next connection is supagate's own again (a bad head gets JSON).
 */
START_TEST(front_chunked_body_hands_over)
{
	static struct h_raw_resp	 rr;
	static const char		 req[] =
	    "GET /rest/v1/echo?a=1 HTTP/1.1\r\n" HOST_LINE "\r\n"
	    "POST /rest/v1/sink HTTP/1.1\r\n" HOST_LINE
	    "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
	    "GET /rest/v1/echo?a=3 HTTP/1.1\r\n" HOST_LINE "\r\n";
	static const char		 bad[] =
	    "GET /rest/v1/echo?a=4 HTTP/1.1\r\n" HOST_LINE
	    "Bad Name: 1\r\n\r\n";
	char				 code[64];
	const char			*r2;

	h_raw(gate.port, req, sizeof(req) - 1, H_RAW_CLOSE, 10000, &rr);
	ck_assert(strncmp(rr.buf, "HTTP/1.1 200", 12) == 0);
	ck_assert(!head_has(rr.buf, "Connection: close"));
	ck_assert_ptr_nonnull(r2 = nth_response(rr.buf, 1));
	ck_assert(strncmp(r2, "HTTP/1.1 200", 12) == 0);
	ck_assert_ptr_nonnull(strstr(r2, "\"bytes\":5,"));
	ck_assert(head_has(r2, "Connection: close"));
	ck_assert_ptr_null(nth_response(rr.buf, 2));
	ck_assert_ptr_null(strstr(rr.buf, "\"query\":\"a=3\""));
	ck_assert(rr.closed);

	h_raw(gate.port, bad, sizeof(bad) - 1, H_RAW_CLOSE, 10000, &rr);
	ck_assert_int_eq(rr.status, 400);
	ck_assert_ptr_nonnull(rr.body);
	ck_assert_int_eq(h_json_str(rr.body, "code", code, sizeof(code)), 0);
	ck_assert_str_eq(code, "bad_request");
}
END_TEST

/* a body that comes in pieces, with pauses, arrives whole */
START_TEST(front_body_in_pieces)
{
	static struct h_raw_resp	 rr;
	static const char		 head[] =
	    "POST /rest/v1/echo HTTP/1.1\r\n" HOST_LINE
	    "Content-Type: text/plain\r\nContent-Length: 16\r\n\r\n";
	static const char		 next[] =
	    "GET /rest/v1/echo?after=1 HTTP/1.1\r\n" HOST_LINE
	    "Connection: close\r\n\r\n";
	const char			*pieces[] = { "hello", "-wide-", "world" };
	size_t				 i;
	int				 fd;

	fd = h_connect(gate.port);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(h_send_all(fd, head, sizeof(head) - 1, 2000), 0);
	for (i = 0; i < 3; i++) {
		usleep(50000);
		ck_assert_int_eq(h_send_all(fd, pieces[i], strlen(pieces[i]),
		    2000), 0);
	}
	ck_assert_int_eq(h_raw_read(fd, 0, 5000, &rr), 200);
	ck_assert_ptr_nonnull(strstr(rr.body, "\"body\":\"hello-wide-world\""));
	/* the same connection goes on */
	ck_assert_int_eq(h_send_all(fd, next, sizeof(next) - 1, 2000), 0);
	memset(&rr, 0, offsetof(struct h_raw_resp, buf));
	rr.len = 0;
	ck_assert_int_eq(h_raw_read(fd, H_RAW_CLOSE, 5000, &rr), 200);
	ck_assert_ptr_nonnull(strstr(rr.body, "\"query\":\"after=1\""));
	close(fd);
}
END_TEST

/*
 * Refused before its body is read (here: declared larger than
 * max-body-size): the answer comes at once, without 100 Continue, and
 * the connection closes, since the body that would follow is not a
 * request.  A client that gives up in the middle of a body costs
 * nothing more than its connection.
 */
START_TEST(front_body_refused_early)
{
	static struct h_raw_resp	 rr;
	static const char		 req[] =
	    "POST /rest/v1/sink HTTP/1.1\r\n" HOST_LINE
	    "Content-Length: 2000000\r\nExpect: 100-continue\r\n\r\n";
	static const char		 cut[] =
	    "POST /rest/v1/sink HTTP/1.1\r\n" HOST_LINE
	    "Content-Length: 100000\r\n\r\npartial body";
	struct h_resp			 r;

	h_raw(gate.port, req, sizeof(req) - 1, H_RAW_CLOSE, 10000, &rr);
	ck_assert_int_eq(rr.status, 413);
	ck_assert_int_eq(rr.interim, 0);
	ck_assert(head_has(rr.buf, "Connection: close"));
	ck_assert_ptr_nonnull(strstr(rr.body, "\"code\":\"payload_too_large\""));
	ck_assert(rr.closed && !rr.timed_out);

	h_raw(gate.port, cut, sizeof(cut) - 1, H_RAW_SHUT, 3000, &rr);
	ck_assert_int_eq(rr.status, 0);
	get_ok(&r, "/rest/v1/echo", NULL);
	h_resp_free(&r);
}
END_TEST

/*
 * A cached body of 16 KiB and more is a file (the store's own, held open
 * by the memory set) sent with sendfile(2): by supagate's side, and, on
 * a connection handed to libmicrohttpd (a chunked body does that), by
 * libmicrohttpd; HEAD sends the length only.
 */
START_TEST(big_hit_from_memory_file)
{
	static struct h_raw_resp	 rr;
	static unsigned char		 want[100000];
	static const char		 req[] =
	    "GET /rest/v1/bytes?n=100000&t=big HTTP/1.1\r\n" HOST_LINE
	    "Accept: */*\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
	static const char		 head[] =
	    "HEAD /rest/v1/bytes?n=100000&t=big HTTP/1.1\r\n" HOST_LINE
	    "Accept: */*\r\nConnection: close\r\n\r\n";
	const char			*path = "/rest/v1/bytes?n=100000&t=big";
	const char			*r2, *body;
	struct h_resp			 r;
	char				 v[256];
	int				 i;

	pattern_fill(want, 0, sizeof(want));
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(h_get(&r, gate.port, path), 0);
		ck_assert_int_eq(r.status, 200);
		ck_assert_uint_eq(r.body_len, sizeof(want));
		ck_assert(memcmp(r.body, want, sizeof(want)) == 0);
		ck_assert_ptr_nonnull(h_resp_header(&r, "Cache-Status", v,
		    sizeof(v)));
		/* a miss, a hit read from the store, then one from memory */
		ck_assert_msg(i == 0 ? strstr(v, "fwd=miss") != NULL :
		    strstr(v, "; hit") != NULL, "%d: %s", i, v);
		h_resp_free(&r);
	}
	/*
	 * The same hit (with curl's Accept, which is a part of the key)
	 * through libmicrohttpd: a GET with an empty chunked body.
	 */
	h_raw(gate.port, req, sizeof(req) - 1, H_RAW_CLOSE, 10000, &rr);
	ck_assert_ptr_nonnull(r2 = nth_response(rr.buf, 0));
	ck_assert(strncmp(r2, "HTTP/1.1 200", 12) == 0);
	ck_assert(head_has(r2, "Content-Length: 100000"));
	ck_assert_ptr_nonnull(strstr(r2, "; hit"));
	ck_assert_ptr_nonnull(body = strstr(r2, "\r\n\r\n"));
	body += 4;
	ck_assert_uint_eq((size_t)(rr.buf + rr.len - body), sizeof(want));
	ck_assert(memcmp(body, want, sizeof(want)) == 0);
	h_raw(gate.port, head, sizeof(head) - 1, H_RAW_CLOSE | H_RAW_HEAD,
	    10000, &rr);
	ck_assert_int_eq(rr.status, 200);
	ck_assert(head_has(rr.buf, "Content-Length: 100000"));
	ck_assert_uint_eq(rr.len, (size_t)(strstr(rr.buf, "\r\n\r\n") + 4 -
	    rr.buf));
}
END_TEST

/*
 * Three big cacheable answers at once fill the store's write queue
 * (2 MiB), so the last put writes them all at once rather than in the
 * next batch: what that write stored still counts in supagate_cache_bytes.
 */
static size_t
drain(int fd, int timeout_ms)
{
	static char	 buf[65536];
	struct pollfd	 pfd = { .fd = fd, .events = POLLIN };
	int64_t		 end = h_now_ms() + timeout_ms;
	size_t		 total = 0;
	ssize_t		 n;

	while (h_now_ms() < end && poll(&pfd, 1, 100) >= 0) {
		if ((pfd.revents & (POLLIN | POLLHUP)) == 0)
			continue;
		if ((n = read(fd, buf, sizeof(buf))) <= 0)
			break;
		total += (size_t)n;
	}
	return total;
}

START_TEST(metrics_count_a_full_queue)
{
	char		 req[256];
	double		 b0, b1;
	int		 fd[3], i, n;

	ck_assert_int_eq(h_metric(gate.port, "supagate_cache_bytes", NULL,
	    &b0), 0);
	for (i = 0; i < 3; i++) {
		n = snprintf(req, sizeof(req), "GET /rest/v1/bytes?n=750000"
		    "&t=q%d HTTP/1.1\r\n" HOST_LINE "Connection: close\r\n"
		    "\r\n", i);
		ck_assert_int_ge(fd[i] = h_connect(gate.port), 0);
		ck_assert_int_eq(h_send_all(fd[i], req, (size_t)n, 5000), 0);
	}
	for (i = 0; i < 3; i++) {
		ck_assert_uint_gt(drain(fd[i], 10000), 750000);
		close(fd[i]);
	}
	ck_assert_int_eq(h_metric(gate.port, "supagate_cache_bytes", NULL,
	    &b1), 0);
	ck_assert_msg(b1 - b0 >= 3 * 750000.0, "%.0f -> %.0f", b0, b1);
	/* the write went through the WAL, which its thread checkpoints */
	ck_assert_int_eq(h_metric(gate.port, "supagate_cache_wal_bytes", NULL,
	    &b1), 0);
	ck_assert_msg(b1 >= 4096, "%.0f", b1);
	ck_assert_int_eq(h_metric(gate.port, "supagate_cache_checkpoints_total",
	    NULL, &b1), 0);
	ck_assert_msg(b1 >= 0, "%.0f", b1);
}
END_TEST

START_TEST(front_upstream_cut_is_not_clean)
{
	static struct h_raw_resp	 rr;
	static const char		 req[] =
	    "GET /rest/v1/bytes?n=200000&cut=70000 HTTP/1.1\r\n" HOST_LINE
	    "\r\n";

	/* announced 200000, upstream died at 70000: the client must see it */
	h_raw(gate.port, req, sizeof(req) - 1, H_RAW_CLOSE, 10000, &rr);
	ck_assert_int_eq(rr.status, 200);
	ck_assert(head_has(rr.buf, "Content-Length: 200000"));
	ck_assert(rr.closed && !rr.timed_out);
	ck_assert_uint_lt(rr.body_len, 200000);
}
END_TEST

/* ---- the cache: configured statuses and stale-if-error --------------- */

static void
fx_status(void)
{
	gate_up(BASE_CONF
	    "upstream @UP@\n"
	    "anon-key-file @DIR@/anon.key\n"
	    "cache-ttl 1s\n"
	    "cache-stale-if-error 1h\n"
	    "cache-ttl-status 501 1h\n", up.port);
}

/* GET target: want status and a Cache-Status containing cs */
static void
get_cs(const char *target, long want, const char *cs, const char *body)
{
	struct h_resp	r;
	char		v[256];

	ck_assert_msg(h_req(&r, gate.port, "GET", target, NULL) == 0,
	    "GET %s: %s", target, r.err);
	ck_assert_msg(r.status == want && h_resp_header(&r, "Cache-Status",
	    v, sizeof(v)) != NULL && strstr(v, cs) != NULL &&
	    strstr(r.body, body) != NULL, "GET %s: %ld (want %ld) %s, "
	    "Cache-Status %s (want %s)", target, r.status, want, r.body,
	    h_resp_header(&r, "Cache-Status", v, sizeof(v)) ? v : "(none)",
	    cs);
	h_resp_free(&r);
}

/*
 * An entry past its lifetime, in its stale-if-error window: upstream's
 * 500 is a failure, and the stale 200 is served; a 501 that the operator
 * configured is upstream's answer, served and stored, not replaced by
 * the stale 200.
 */
START_TEST(configured_status_not_an_error)
{
	const char	*a = "/rest/v1/status?code=200&then=501&t=cs-1";
	const char	*b = "/rest/v1/status?code=200&then=500&t=cs-2";

	get_cs(a, 200, "fwd=miss; fwd-status=200; stored", "status\":200");
	get_cs(b, 200, "fwd=miss; fwd-status=200; stored", "status\":200");
	h_sleep_ms(1100);	/* let the 1 s lifetime pass */
	get_cs(b, 200, "detail=stale-if-error; fwd-error=5xx",
	    "status\":200");
	get_cs(a, 501, "fwd=miss; fwd-status=501; stored", "status\":501");
	get_cs(a, 501, "supagate; hit", "status\":501");
	ck_assert_int_eq(upstream_count("t=cs-1"), 2);
	ck_assert_int_eq(upstream_count("t=cs-2"), 2);
}
END_TEST

/*
 * The same with a body of its own file (16 KiB and more): the stale
 * entry is kept as the open file, and served whole from it.
 */
START_TEST(stale_if_error_from_body_file)
{
	static unsigned char	 want[40000];
	const char		*t = "/rest/v1/bytes?n=40000&then=500&t=sie-big";
	struct h_resp		 r;
	char			 v[256];
	int			 i;

	pattern_fill(want, 0, sizeof(want));
	for (i = 0; i < 2; i++) {
		if (i == 1)
			h_sleep_ms(1100);	/* past the 1 s lifetime */
		ck_assert_int_eq(h_get(&r, gate.port, t), 0);
		ck_assert_int_eq(r.status, 200);
		ck_assert_ptr_nonnull(h_resp_header(&r, "Cache-Status", v,
		    sizeof(v)));
		ck_assert_msg(strstr(v, i == 0 ? "fwd=miss" :
		    "detail=stale-if-error; fwd-error=5xx") != NULL, "%s", v);
		ck_assert_uint_eq(r.body_len, sizeof(want));
		ck_assert(memcmp(r.body, want, sizeof(want)) == 0);
		h_resp_free(&r);
	}
	ck_assert_int_eq(upstream_count("t=sie-big"), 2);
}
END_TEST

/* ---- busy-poll: polling before sleeping is counted ---------------- */

static void
fx_busypoll(void)
{
	gate_up(BASE_CONF
	    "upstream @UP@\n"
	    "anon-key-file @DIR@/anon.key\n"
	    "access-log off\n"
	    "busy-poll 1000\n", up.port);
}

/* n requests in turn on one kept-alive connection; polls' counts after */
static void
requests_in_turn(int n, double *caught, double *empty)
{
	static struct h_raw_resp	 rr;
	static const char		 req[] =
	    "GET /_supagate/health HTTP/1.1\r\n" HOST_LINE "\r\n";
	int				 fd, i;

	ck_assert_int_ge(fd = h_connect(gate.port), 0);
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(h_send_all(fd, req, sizeof(req) - 1, 5000), 0);
		ck_assert_int_eq(h_raw_read(fd, 0, 5000, &rr), 200);
	}
	close(fd);
	ck_assert_int_eq(h_metric(gate.port,
	    "supagate_busy_poll_catches_total", NULL, caught), 0);
	ck_assert_int_eq(h_metric(gate.port,
	    "supagate_busy_poll_empty_total", NULL, empty), 0);
}

/*
 * A client sending its next request as soon as it has the answer: with
 * a 1 ms limit, supagate polls (its polls are counted, whether they
 * catch the next request or not: that depends on how fast this client
 * turns round on a loaded machine; check_evloop shows polls catching
 * events that are there).  After a reload with busy-poll 0 nothing is
 * polled any more.
 */
START_TEST(busy_poll_catches_and_reload_stops_it)
{
	char	 path[H_PATH_MAX + 32];
	double	 c1 = 0, e1 = 0, c2, e2;
	char	*text, *at;
	FILE	*fp;
	int	 i;

	/* polling starts after a wait of under 2 ms: 3000 chances */
	for (i = 0; i < 10 && c1 + e1 == 0; i++)
		requests_in_turn(300, &c1, &e1);
	ck_assert_msg(c1 + e1 > 0, "caught %.0f, empty %.0f", c1, e1);

	/* the same configuration, with busy-poll 0 */
	snprintf(path, sizeof(path), "%s/supagate.conf", gate.dir);
	ck_assert_ptr_nonnull(text = h_slurp(path, NULL));
	ck_assert_ptr_nonnull(at = strstr(text, "busy-poll 1000\n"));
	memcpy(at, "busy-poll 0   \n", 15);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	fputs(text, fp);
	free(text);
	ck_assert_int_eq(fclose(fp), 0);
	reload_gate();
	ck_assert_int_eq(h_metric(gate.port,
	    "supagate_busy_poll_catches_total", NULL, &c1), 0);
	ck_assert_int_eq(h_metric(gate.port,
	    "supagate_busy_poll_empty_total", NULL, &e1), 0);
	requests_in_turn(300, &c2, &e2);
	ck_assert_msg(c2 == c1 && e2 == e1, "polled after busy-poll 0: "
	    "%.0f/%.0f -> %.0f/%.0f", c1, e1, c2, e2);
}
END_TEST

static TCase *
tc_down(Suite *s, const char *name, void (*fx)(void), void (*down)(void),
    int timeout)
{
	TCase	*t = tcase_create(name);

	tcase_add_unchecked_fixture(t, fx, down);
	tcase_set_timeout(t, timeout);
	suite_add_tcase(s, t);
	return t;
}

static TCase *
tc(Suite *s, const char *name, void (*fx)(void), int timeout)
{
	return tc_down(s, name, fx, gate_down, timeout);
}

static Suite *
suite(void)
{
	Suite	*s = suite_create("proxy");
	TCase	*t;

	t = tc(s, "forward", fx_base, 60);
	tcase_add_test(t, methods_each_route);
	tcase_add_test(t, graphql_base_mapping);
	tcase_add_test(t, query_byte_for_byte);
	tcase_add_test(t, request_headers);
	tcase_add_test(t, response_headers);
	tcase_add_test(t, status_codes);
	tcase_add_test(t, bodies_chunked_and_length);
	tcase_add_test(t, retry_on_dead_keepalive);
	tcase_add_test(t, upstream_dies_mid_body);
	tcase_add_test(t, expect_100_continue);
	tcase_add_test(t, head_keeps_length);
	tcase_add_test(t, sse_incremental);
	tcase_add_test(t, anon_legacy_credentials);
	tcase_add_test(t, query_apikey_removed);
	tcase_add_test(t, user_agent_is_ours);
	tcase_add_test(t, log_is_redacted);
	tcase_add_test(t, health_and_metrics);
	tcase_add_test(t, survives);

	t = tc(s, "quiet", fx_quiet, 30);
	tcase_add_test(t, access_log_off);

	t = tc(s, "busypoll", fx_busypoll, 30);
	tcase_add_test(t, busy_poll_catches_and_reload_stops_it);
	tcase_add_test(t, survives);

	t = tc(s, "front", fx_base, 60);
	tcase_add_test(t, front_pipelined_keepalive);
	tcase_add_test(t, front_http10_closes);
	tcase_add_test(t, front_chunked_when_length_unknown);
	tcase_add_test(t, front_head_has_length_no_body);
	tcase_add_test(t, front_later_head_is_gated);
	tcase_add_test(t, front_body_stays);
	tcase_add_test(t, front_chunked_body_hands_over);
	tcase_add_test(t, front_body_in_pieces);
	tcase_add_test(t, front_body_refused_early);
	tcase_add_test(t, front_upstream_cut_is_not_clean);
	tcase_add_test(t, big_hit_from_memory_file);
	tcase_add_test(t, metrics_count_a_full_queue);
	tcase_add_test(t, survives);

	t = tc(s, "override", fx_override, 30);
	tcase_add_test(t, override_strips_prefix);
	tcase_add_test(t, survives);

	t = tc(s, "replace", fx_replace, 30);
	tcase_add_test(t, replace_user_token);

	t = tc(s, "publishable", fx_publishable, 30);
	tcase_add_test(t, publishable_key);

	t = tc(s, "service", fx_service, 30);
	tcase_add_test(t, service_expose);
	tcase_add_test(t, survives);

	t = tc(s, "down", fx_down, 30);
	tcase_add_test(t, upstream_down_502);
	tcase_add_test(t, errors_are_counted);

	t = tc(s, "limits", fx_limits, 60);
	tcase_add_test(t, upstream_timeout_504);
	tcase_add_test(t, errors_are_counted);
	tcase_add_test(t, host_check);
	tcase_add_test(t, origin_check);
	tcase_add_test(t, body_too_large_413);
	tcase_add_test(t, headers_too_large_431);
	tcase_add_test(t, survives);

	t = tc(s, "per_peer", fx_conns, 60);
	tcase_add_test(t, per_peer_limit_503);
	tcase_add_test(t, survives);

	t = tc(s, "max_connections", fx_maxconns, 60);
	tcase_add_test(t, connection_limit_503);
	tcase_add_test(t, survives);

	t = tc_down(s, "unix", fx_unix, fx_unix_down, 60);
	tcase_add_test(t, unix_socket);
	tcase_add_test(t, unix_socket_files);
	tcase_add_test(t, survives);

	t = tc_down(s, "tokens", fx_tokens, fx_tokens_down, 30);
	tcase_add_test(t, client_tokens);
	tcase_add_test(t, client_tokens_revoked);
	tcase_add_test(t, survives);

	t = tc_down(s, "jwks", fx_jwks, fx_jwks_down, 30);
	tcase_add_test(t, jwks_identity);
	tcase_add_test(t, jwks_reload);
	tcase_add_test(t, survives);

	t = tc_down(s, "jwks_fetch", fx_fetch, fx_fetch_down, 60);
	tcase_add_test(t, jwks_fetch);
	tcase_add_test(t, survives);

	t = tc_down(s, "jwks_offline", fx_offline, fx_fetch_down, 60);
	tcase_add_test(t, jwks_offline);
	tcase_add_test(t, survives);

	t = tc(s, "swr", fx_swr, 30);
	tcase_add_test(t, stale_while_revalidate);
	tcase_add_test(t, ttl_per_prefix);
	tcase_add_test(t, survives);

	t = tc(s, "status", fx_status, 30);
	tcase_add_test(t, configured_status_not_an_error);
	tcase_add_test(t, stale_if_error_from_body_file);
	tcase_add_test(t, survives);
	return s;
}

/* a loopback port with nothing listening */
static int
unused_port(void)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof(sin);
	int			fd, port;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1)
		return 9;	/* discard: never listened on in tests */
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

int
main(void)
{
	dead_port = unused_port();
	gate.pid = -1;
	return h_fakeup_main(&up, suite);
}
