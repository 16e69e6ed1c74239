/*
 * check_badinput: malformed and hostile requests over raw TCP, each with
 * the answer it must get (a 4xx/5xx with a JSON {"code","message"} body),
 * a normal request after every one, then the daemon must be alive, idle
 * (supagate_inflight_requests back to 0) and not grown.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/wait.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "harness.h"

#define RSS_SLACK_KB	(8 * 1024)

static struct h_proc	up, gate;
static long		rss_base;

static void
fx_gate(void)
{
	struct h_resp	r;

	if (h_gate_start(&gate, "listen 127.0.0.1:0\n"
	    "state-dir @DIR@/state\n"
	    "upstream @UP@\n"
	    "anon-key-file @DIR@/anon.key\n"
	    "max-header-size 8k\n"
	    "max-body-size 1M\n"
	    "upstream-timeout 10s\n", up.port, NULL) == -1)
		ck_abort_msg("supagate did not start");
	/* warm-up before the baseline */
	h_get(&r, gate.port, "/rest/v1/echo");
	h_resp_free(&r);
	h_get(&r, gate.port, "/rest/v1/bytes?n=1000000");
	h_resp_free(&r);
	h_get(&r, gate.port, "/_supagate/metrics");
	h_resp_free(&r);
	rss_base = h_vm_kb(gate.pid, "VmRSS");
}

static void
fx_gate_down(void)
{
	h_gate_stop(&gate, 10000, "check_badinput");
}

struct bad {
	const char	*name;
	char		*req;		/* malloc'd */
	size_t		 len;
	int		 status;	/* the answer it must get */
	const char	*code;		/* JSON "code"; NULL: any code */
	unsigned	 flags;		/* H_RAW_* */
	int		 alt_status;	/* another answer the RFC allows */
	const char	*alt_needle;	/* ... when the body holds this */
};

static struct bad	cases[64];
static size_t		ncases;

static void
add(const char *name, const void *req, size_t len, int status,
    const char *code)
{
	struct bad	*b = &cases[ncases++];

	ck_assert_uint_lt(ncases, sizeof(cases) / sizeof(cases[0]));
	b->name = name;
	b->len = len ? len : strlen(req);
	b->req = malloc(b->len);
	memcpy(b->req, req, b->len);
	b->status = status;
	b->code = code;
	b->flags = 0;
	b->alt_status = 0;
	b->alt_needle = NULL;
}

/* "METHOD TARGET VERSION\r\n" + headers + "\r\n" */
#define REQ(line, hdrs)	line "\r\n" hdrs "\r\n"
#define HOST		"Host: localhost\r\n"

static char *
repeat(const char *head, const char *unit, size_t n, const char *tail)
{
	size_t	hl = strlen(head), ul = strlen(unit), tl = strlen(tail), i;
	char	*s = malloc(hl + ul * n + tl + 1), *p = s;

	memcpy(p, head, hl);
	p += hl;
	for (i = 0; i < n; i++, p += ul)
		memcpy(p, unit, ul);
	memcpy(p, tail, tl + 1);
	return s;
}

static void
build_cases(void)
{
	static const char	nul_hdr[] = "GET /rest/v1/echo HTTP/1.1\r\n"
				    HOST "X-A: a\0b\r\n\r\n";
	static const char	nul_path[] = "GET /rest/v1/ec\0ho HTTP/1.1\r\n"
				    HOST "\r\n";
	static const char	tls[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc"
				    "\x03\x03\r\n\r\n";
	char			*s;

	ncases = 0;
	s = repeat("GET /rest/v1/echo HTTP/1.1\r\n" HOST "X-Big: ", "h",
	    20000, "\r\n\r\n");
	add("oversized header line", s, 0, 431, "headers_too_large");
	free(s);
	s = repeat("GET /rest/v1/echo HTTP/1.1\r\n" HOST, "X-Many: 123\r\n",
	    1000, "\r\n");
	add("too many headers", s, 0, 431, "headers_too_large");
	free(s);
	add("bad method token", REQ("G(ET /rest/v1/echo HTTP/1.1", HOST), 0,
	    400, "bad_request");
	add("unknown method BREW", REQ("BREW /rest/v1/echo HTTP/1.1", HOST),
	    0, 501, NULL);
	add("lowercase method", REQ("get /rest/v1/echo HTTP/1.1", HOST), 0,
	    501, NULL);
	add("TRACE", REQ("TRACE /rest/v1/echo HTTP/1.1", HOST), 0, 405, NULL);
	add("CONNECT", REQ("CONNECT localhost:443 HTTP/1.1", HOST), 0, 405,
	    NULL);
	add("bare CR in header value", REQ("GET /rest/v1/echo HTTP/1.1",
	    HOST "X-A: a\rb\r\n"), 0, 400, "bad_request");
	add("NUL in header value", nul_hdr, sizeof(nul_hdr) - 1, 400,
	    "bad_request");
	add("NUL in path", nul_path, sizeof(nul_path) - 1, 400, "bad_request");
	add("control char in path", REQ("GET /rest/v1/ec\001ho HTTP/1.1",
	    HOST), 0, 400, "bad_request");
	add("space in target", REQ("GET /rest/v1/ec ho HTTP/1.1", HOST), 0,
	    400, "bad_request");
	add("invalid %zz", REQ("GET /rest/v1/echo%zz HTTP/1.1", HOST), 0, 400,
	    "bad_request");
	add("truncated %4", REQ("GET /rest/v1/echo%4 HTTP/1.1", HOST), 0, 400,
	    "bad_request");
	add("encoded NUL %00", REQ("GET /rest/v1/ec%00ho HTTP/1.1", HOST), 0,
	    400, "bad_request");
	add("dot-dot segment", REQ("GET /rest/v1/../_supagate/metrics "
	    "HTTP/1.1", HOST), 0, 400, "bad_request");
	add("%2e%2e segment", REQ("GET /rest/v1/%2e%2e/x HTTP/1.1", HOST), 0,
	    400, "bad_request");
	add("%2E%2E segment", REQ("GET /rest/v1/%2E%2E/%2E%2E/etc HTTP/1.1",
	    HOST), 0, 400, "bad_request");
	add("dot segment", REQ("GET /rest/v1/./echo HTTP/1.1", HOST), 0, 400,
	    "bad_request");
	add("target without slash", REQ("GET rest/v1/echo HTTP/1.1", HOST), 0,
	    400, "bad_request");
	add("absolute-form to another host",
	    REQ("GET http://evil.example/rest/v1/echo HTTP/1.1", HOST), 0,
	    403, "forbidden_host");
	add("missing Host (HTTP/1.1)", REQ("GET /rest/v1/echo HTTP/1.1", ""),
	    0, 400, "bad_request");
	add("HTTP/1.0 without Host", REQ("GET /rest/v1/echo HTTP/1.0", ""), 0,
	    403, "forbidden_host");
	add("two different Host", REQ("GET /rest/v1/echo HTTP/1.1",
	    HOST "Host: evil.example\r\n"), 0, 400, "bad_request");
	add("unsupported version", REQ("GET /rest/v1/echo HTTP/9.9", HOST), 0,
	    505, NULL);
	add("malformed version", REQ("GET /rest/v1/echo HTTP/1.1x", HOST), 0,
	    400, "bad_request");
	add("huge Content-Length", REQ("POST /rest/v1/sink HTTP/1.1",
	    HOST "Content-Length: 10000000000\r\n"), 0, 413,
	    "payload_too_large");
	add("huge Content-Length with Expect", REQ("POST /rest/v1/sink "
	    "HTTP/1.1", HOST "Content-Length: 10000000000\r\n"
	    "Expect: 100-continue\r\n"), 0, 413, "payload_too_large");
	add("negative Content-Length", REQ("POST /rest/v1/sink HTTP/1.1",
	    HOST "Content-Length: -1\r\n"), 0, 400, "bad_request");
	add("garbage Content-Length", REQ("POST /rest/v1/sink HTTP/1.1",
	    HOST "Content-Length: abc\r\n"), 0, 400, "bad_request");
	add("conflicting Content-Length", REQ("POST /rest/v1/sink HTTP/1.1",
	    HOST "Content-Length: 5\r\nContent-Length: 6\r\n") "hello!", 0,
	    400, "bad_request");
	add("Content-Length and chunked", REQ("POST /rest/v1/sink HTTP/1.1",
	    HOST "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n")
	    "5\r\nhello\r\n0\r\n\r\n", 0, 400, "bad_request");
	/* RFC 9112 6.1 also allows Transfer-Encoding to win */
	cases[ncases - 1].alt_status = 200;
	cases[ncases - 1].alt_needle = "\"bytes\":5,";
	/*
	 * Chunked bodies are decoded by libmicrohttpd after the head has
	 * passed supagate's gate; a framing error there is its own 400
	 * with its own (HTML) body, as supagate(8) DIAGNOSTICS says.
	 */
	add("bad chunk size", REQ("POST /rest/v1/sink HTTP/1.1",
	    HOST "Transfer-Encoding: chunked\r\n") "zz\r\nhello\r\n0\r\n\r\n",
	    0, 400, "");
	add("chunked not last", REQ("POST /rest/v1/sink HTTP/1.1",
	    HOST "Transfer-Encoding: chunked, gzip\r\n") "x", 0, 400,
	    "bad_request");
	add("space before colon", REQ("POST /rest/v1/sink HTTP/1.1",
	    HOST "Transfer-Encoding : chunked\r\nContent-Length: 5\r\n")
	    "hello", 0, 400, "bad_request");
	add("header without colon", REQ("GET /rest/v1/echo HTTP/1.1",
	    HOST "Garbage\r\n"), 0, 400, "bad_request");
	add("obs-fold", REQ("GET /rest/v1/echo HTTP/1.1",
	    HOST "X-A: a\r\n b\r\n"), 0, 400, "bad_request");
	add("TLS handshake bytes", tls, sizeof(tls) - 1, 400, "bad_request");
	add("unknown route", REQ("GET /nope HTTP/1.1", HOST), 0, 404,
	    "not_found");
	add("near-miss route", REQ("GET /rest/v10/x HTTP/1.1", HOST), 0, 404,
	    "not_found");
	add("root", REQ("GET / HTTP/1.1", HOST), 0, 404, "not_found");
	s = repeat("GET /rest/v1/echo?", "aaaaaaaaaa", 10000,
	    " HTTP/1.1\r\n" HOST "\r\n");
	add("very long URL", s, 0, 414, NULL);
	free(s);
	s = repeat("GET /rest/v1/echo?select=id", "&apikey=x", 400,
	    " HTTP/1.1\r\n" HOST "\r\n");
	add("many apikey params", s, 0, 200, "");
	free(s);
}

START_TEST(hostile_requests)
{
	static struct h_raw_resp	 rr;
	static char			 fails[16384];
	struct h_resp			 r;
	size_t				 i, flen = 0;
	int				 ok;

	build_cases();
	ck_assert_uint_ge(ncases, 30);
	for (i = 0; i < ncases; i++) {
		const struct bad *b = &cases[i];

		h_raw(gate.port, b->req, b->len, b->flags, 5000, &rr);
		ok = rr.status == b->status;
		if (ok && b->code != NULL && b->code[0] != '\0')
			ok = strstr(rr.body, h_fmt("\"code\":\"%s\"",
			    b->code)) != NULL;
		else if (ok && b->code == NULL)
			ok = strstr(rr.body, "\"code\":\"") != NULL &&
			    strstr(rr.body, "\"message\":\"") != NULL;
		if (ok && strcmp(b->name, "many apikey params") == 0)
			ok = strstr(rr.body, "\"query\":\"select=id\"") != NULL;
		if (!ok && b->alt_status != 0 && rr.status == b->alt_status &&
		    rr.body != NULL && strstr(rr.body, b->alt_needle) != NULL)
			ok = 1;
		if (ok && b->status == 413)
			ok = rr.interim == 0;	/* no 100 Continue first */
		if (!ok && flen < sizeof(fails) - 512)
			flen += (size_t)snprintf(fails + flen,
			    sizeof(fails) - flen, "\n  %s: want %d %s, got "
			    "%d%s%s [%.120s]", b->name, b->status,
			    b->code ? b->code : "(json)", rr.status,
			    rr.timed_out ? " (timed out)" : "",
			    rr.closed && rr.status == 0 ? " (closed)" : "",
			    rr.body ? rr.body : "");
		/* the next request is served normally */
		if (h_get(&r, gate.port, "/rest/v1/echo") != 0 ||
		    r.status != 200)
			flen += (size_t)snprintf(fails + flen,
			    sizeof(fails) - flen, "\n  after %s: normal "
			    "request got %ld", b->name, r.status);
		h_resp_free(&r);
		ck_assert_msg(h_alive(&gate), "supagate died on %s", b->name);
	}
	for (i = 0; i < ncases; i++)
		free(cases[i].req);
	ck_assert_msg(flen == 0, "wrong answers:%s", fails);
}
END_TEST

/* partial headers held open: others are served meanwhile */
START_TEST(slowloris)
{
	static const char	part[] = "GET /rest/v1/echo HTTP/1.1\r\n"
				    "Host: localhost\r\nX-Slow: ";
	struct h_resp		r;
	int			fds[20], i;

	for (i = 0; i < 20; i++) {
		fds[i] = h_connect(gate.port);
		ck_assert_int_ge(fds[i], 0);
		ck_assert_int_eq(h_send_all(fds[i], part, sizeof(part) - 1,
		    2000), 0);
	}
	for (i = 0; i < 5; i++) {
		ck_assert_int_eq(h_get(&r, gate.port, "/rest/v1/echo"), 0);
		ck_assert_int_eq(r.status, 200);
		h_resp_free(&r);
		ck_assert_int_eq(h_send_all(fds[i], "a", 1, 2000), 0);
	}
	for (i = 0; i < 20; i++)
		close(fds[i]);
}
END_TEST

/* the client goes away in the middle of an upload or a download */
START_TEST(early_disconnects)
{
	static const char	up_hdr[] = "POST /rest/v1/sink HTTP/1.1\r\n"
				    "Host: localhost\r\n"
				    "Content-Length: 1000000\r\n\r\n";
	static const char	down[] = "GET /storage/v1/bytes?n=500000000 "
				    "HTTP/1.1\r\nHost: localhost\r\n\r\n";
	static const char	hang[] = "GET /rest/v1/hang HTTP/1.1\r\n"
				    "Host: localhost\r\n\r\n";
	static char		chunk[100000];
	char			buf[65536];
	double			inflight;
	int			fd, i;
	ssize_t			n;
	size_t			got;

	memset(chunk, 'u', sizeof(chunk));
	for (i = 0; i < 5; i++) {
		fd = h_connect(gate.port);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(h_send_all(fd, up_hdr, sizeof(up_hdr) - 1,
		    2000), 0);
		ck_assert_int_eq(h_send_all(fd, chunk, sizeof(chunk), 2000),
		    0);
		close(fd);

		fd = h_connect(gate.port);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(h_send_all(fd, down, sizeof(down) - 1, 2000),
		    0);
		for (got = 0; got < 2000000; got += (size_t)n) {
			n = recv(fd, buf, sizeof(buf), 0);
			if (n <= 0)
				break;
		}
		ck_assert_uint_ge(got, 2000000);
		close(fd);

		fd = h_connect(gate.port);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(h_send_all(fd, hang, sizeof(hang) - 1, 2000),
		    0);
		h_sleep_ms(100);	/* let it reach upstream; not asserted */
		close(fd);
	}
	ck_assert(h_alive(&gate));
	inflight = h_wait_inflight(gate.port, 1, 200);
	/* the metrics request itself may count */
	ck_assert_msg(inflight >= 0 && inflight <= 1, "inflight stays %g",
	    inflight);
}
END_TEST

START_TEST(still_healthy)
{
	struct h_resp	r;
	char		v[32];
	double		inflight;
	long		rss;

	ck_assert(h_alive(&gate));
	ck_assert_int_eq(h_get(&r, gate.port, "/_supagate/health"), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(h_json_str(r.body, "status", v, sizeof(v)), 0);
	ck_assert_str_eq(v, "ok");
	h_resp_free(&r);
	ck_assert_int_eq(h_get(&r, gate.port, "/rest/v1/echo?after=all"), 0);
	ck_assert_int_eq(r.status, 200);
	h_resp_free(&r);
	inflight = h_wait_inflight(gate.port, 1, 100);
	ck_assert_msg(inflight >= 0 && inflight <= 1, "inflight %g", inflight);
	rss = h_vm_kb(gate.pid, "VmRSS");
	ck_assert_msg(rss - rss_base < RSS_SLACK_KB, "RSS %ld kB -> %ld kB",
	    rss_base, rss);
}
END_TEST

static Suite *
suite(void)
{
	Suite	*s = suite_create("badinput");
	TCase	*t = tcase_create("badinput");

	tcase_add_unchecked_fixture(t, fx_gate, fx_gate_down);
	tcase_set_timeout(t, 180);
	tcase_add_test(t, hostile_requests);
	tcase_add_test(t, slowloris);
	tcase_add_test(t, early_disconnects);
	tcase_add_test(t, still_healthy);
	suite_add_tcase(s, t);
	return s;
}

int
main(void)
{
	h_rss_tests();
	gate.pid = -1;
	return h_fakeup_main(&up, suite);
}
