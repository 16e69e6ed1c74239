/* check_harness: the fake upstream and the harness, without supagate */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "harness.h"
#include "ck_run.h"

static struct h_proc	up;

static void
setup(void)
{
	h_init();
	if (h_fakeup_start(&up) == -1)
		ck_abort_msg("fakeup did not start");
}

static void
teardown(void)
{
	int	st, killed;

	st = h_stop(&up, 5000, &killed);
	if (killed || st != 0)
		fprintf(stderr, "fakeup stop: status 0x%x killed %d\n", st,
		    killed);
}

START_TEST(echo_raw_query_and_headers)
{
	static const char *const hdrs[] = { "X-Dup: 1", "X-Dup: 2",
	    "apikey: k", NULL };
	struct h_opts	o = { .hdrs = hdrs };
	struct h_resp	r;
	char		v[256];

	ck_assert_int_eq(h_req(&r, up.port, "GET",
	    "/rest/v1/echo?select=*,b(c)&a=%2F%20x&a=2", &o), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(h_json_str(r.body, "query", v, sizeof(v)), 0);
	ck_assert_str_eq(v, "select=*,b(c)&a=%2F%20x&a=2");
	ck_assert_int_eq(h_json_str(r.body, "path", v, sizeof(v)), 0);
	ck_assert_str_eq(v, "/rest/v1/echo");
	ck_assert_int_eq(h_echo_hdr_count(r.body, "x-dup"), 2);
	ck_assert_int_eq(h_echo_hdr(r.body, "X-Dup", 1, v, sizeof(v)), 0);
	ck_assert_str_eq(v, "2");
	ck_assert_int_eq(h_echo_hdr_count(r.body, "apikey"), 1);
	ck_assert_ptr_nonnull(h_resp_header(&r, "content-type", v,
	    sizeof(v)));
	ck_assert_str_eq(v, "application/json");
	h_resp_free(&r);
}
END_TEST

START_TEST(echo_bodies)
{
	static char	body[100000];
	struct h_opts	o = { .body = body, .body_len = sizeof(body) - 1,
			    .has_body = 1 };
	struct h_resp	r;
	double		n;
	char		v[64];

	memset(body, 'x', sizeof(body) - 1);
	ck_assert_int_eq(h_req(&r, up.port, "PATCH", "/echo", &o), 0);
	ck_assert_int_eq(h_json_num(r.body, "body_len", &n), 0);
	ck_assert_int_eq((long)n, (long)sizeof(body) - 1);
	ck_assert_int_eq(h_json_str(r.body, "method", v, sizeof(v)), 0);
	ck_assert_str_eq(v, "PATCH");
	h_resp_free(&r);

	o.chunked = 1;
	o.body = "hello";
	o.body_len = 5;
	ck_assert_int_eq(h_req(&r, up.port, "POST", "/x/y/echo", &o), 0);
	ck_assert_int_eq(h_json_str(r.body, "body", v, sizeof(v)), 0);
	ck_assert_str_eq(v, "hello");
	ck_assert_int_eq(h_echo_hdr(r.body, "Transfer-Encoding", 0, v,
	    sizeof(v)), 0);
	ck_assert_str_eq(v, "chunked");
	h_resp_free(&r);
}
END_TEST

START_TEST(bytes_and_sink)
{
	static unsigned char	 big[3 * 1024 * 1024 + 7];
	struct pattern_sum	 s = PATTERN_SUM_INIT;
	struct h_opts		 o = { .body = big, .body_len = sizeof(big),
				    .has_body = 1, .chunked = 1 };
	struct h_resp		 r;
	double			 n, sum;

	pattern_fill(big, 0, sizeof(big));
	pattern_sum_update(&s, big, sizeof(big));

	ck_assert_int_eq(h_get(&r, up.port,
	    h_fmt("/storage/v1/bytes?n=%zu&chunked=1", sizeof(big))), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.body_total, sizeof(big));
	ck_assert_uint_eq(pattern_sum_value(&r.sum), pattern_sum_value(&s));
	h_resp_free(&r);

	ck_assert_int_eq(h_req(&r, up.port, "PUT", "/storage/v1/sink", &o), 0);
	ck_assert_int_eq(h_json_num(r.body, "bytes", &n), 0);
	ck_assert_int_eq(h_json_num(r.body, "sum", &sum), 0);
	ck_assert_uint_eq((uint64_t)n, sizeof(big));
	ck_assert_uint_eq((uint32_t)sum, pattern_sum_value(&s));
	h_resp_free(&r);
}
END_TEST

START_TEST(status_headers_log)
{
	struct h_resp	r;
	char		v[256];

	ck_assert_int_eq(h_get(&r, up.port, "/_fake/reset"), 0);
	h_resp_free(&r);
	ck_assert_int_eq(h_get(&r, up.port, "/status?code=409"), 0);
	ck_assert_int_eq(r.status, 409);
	h_resp_free(&r);
	ck_assert_int_eq(h_get(&r, up.port, "/status?code=301"), 0);
	ck_assert_int_eq(r.status, 301);
	ck_assert_ptr_nonnull(h_resp_header(&r, "Location", v, sizeof(v)));
	h_resp_free(&r);
	ck_assert_int_eq(h_req(&r, up.port, "HEAD", "/status?code=204", NULL),
	    0);
	ck_assert_int_eq(r.status, 204);
	h_resp_free(&r);
	ck_assert_int_eq(h_get(&r, up.port,
	    "/headers?X-Custom=v1&Set-Cookie=a%3D1"), 0);
	ck_assert_str_eq(h_resp_header(&r, "x-custom", v, sizeof(v)), "v1");
	h_resp_free(&r);
	ck_assert_int_eq(h_get(&r, up.port, "/_fake/log"), 0);
	ck_assert_ptr_nonnull(strstr(r.body, "\"method\":\"HEAD\""));
	ck_assert_ptr_nonnull(strstr(r.body, "code=409"));
	ck_assert_ptr_null(strstr(r.body, "reset"));
	h_resp_free(&r);
}
END_TEST

START_TEST(raw_client)
{
	static struct h_raw_resp	rr;
	static const char		req[] =
	    "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
	    "\r\n5\r\nhello\r\n0\r\n\r\n";
	static const char		exp[] =
	    "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
	    "Expect: 100-continue\r\n\r\n";
	int				fd;

	ck_assert_int_eq(h_raw(up.port, req, sizeof(req) - 1, 0, 5000, &rr),
	    200);
	ck_assert_ptr_nonnull(strstr(rr.body, "\"body\":\"hello\""));
	ck_assert(!rr.timed_out);

	fd = h_connect(up.port);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(h_send_all(fd, exp, sizeof(exp) - 1, 2000), 0);
	memset(&rr, 0, sizeof(rr));
	ck_assert_int_eq(h_raw_read(fd, H_RAW_INTERIM, 5000, &rr), 100);
	ck_assert_int_eq(h_send_all(fd, "hi", 2, 2000), 0);
	memset(&rr, 0, sizeof(rr));
	ck_assert_int_eq(h_raw_read(fd, 0, 5000, &rr), 200);
	ck_assert_ptr_nonnull(strstr(rr.body, "\"body\":\"hi\""));
	close(fd);
}
END_TEST

START_TEST(sse_and_delay)
{
	struct h_resp	r;

	ck_assert_int_eq(h_get(&r, up.port, "/sse?n=3&ms=50"), 0);
	ck_assert_ptr_nonnull(strstr(r.body, "data: {\"event\":2}"));
	h_resp_free(&r);
	ck_assert_int_eq(h_get(&r, up.port, "/delay?ms=100"), 0);
	ck_assert_int_eq(r.status, 200);
	h_resp_free(&r);
	ck_assert_int_eq(h_get(&r, up.port, "/slowbody?n=4&ms=20"), 0);
	ck_assert_uint_eq(r.body_total, 4);
	h_resp_free(&r);
}
END_TEST

START_TEST(hang_times_out)
{
	struct h_opts	o = { .timeout_ms = 300 };
	struct h_resp	r;

	ck_assert_int_eq(h_req(&r, up.port, "GET", "/hang", &o), -1);
	ck_assert_int_eq(r.status, 0);
	h_resp_free(&r);
	ck_assert_int_eq(h_get(&r, up.port, "/echo"), 0);
	h_resp_free(&r);
}
END_TEST

START_TEST(metric_parser)
{
	static const char	text[] =
	    "# HELP supagate_requests_total requests\n"
	    "# TYPE supagate_requests_total counter\n"
	    "supagate_requests_total{route=\"rest\",status=\"200\"} 7\n"
	    "supagate_requests_total{status=\"404\",route=\"none\"} 2\n"
	    "supagate_inflight_requests 0\n"
	    "supagate_inflight_requests_x 5\n";
	double			v = -1;

	ck_assert_int_eq(h_metric_in(text, "supagate_requests_total",
	    "route=rest,status=200", &v), 0);
	ck_assert(v == 7);
	ck_assert_int_eq(h_metric_in(text, "supagate_requests_total",
	    "route=none,status=404", &v), 0);
	ck_assert(v == 2);
	ck_assert_int_eq(h_metric_in(text, "supagate_requests_total",
	    "route=rest", &v), -1);
	ck_assert_int_eq(h_metric_in(text, "supagate_inflight_requests", NULL,
	    &v), 0);
	ck_assert(v == 0);
}
END_TEST

START_TEST(keys_are_jwts)
{
	ck_assert_int_eq((int)(strchr(h_keys.anon, '.') != NULL), 1);
	ck_assert_ptr_nonnull(strchr(strchr(h_keys.anon, '.') + 1, '.'));
	ck_assert_str_ne(h_keys.anon, h_keys.service);
	ck_assert_int_eq(strncmp(h_keys.publishable, "sb_publishable_", 15),
	    0);
}
END_TEST

static Suite *
suite(void)
{
	Suite	*s = suite_create("harness");
	TCase	*tc = tcase_create("fakeup");

	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, echo_raw_query_and_headers);
	tcase_add_test(tc, echo_bodies);
	tcase_add_test(tc, bytes_and_sink);
	tcase_add_test(tc, status_headers_log);
	tcase_add_test(tc, raw_client);
	tcase_add_test(tc, sse_and_delay);
	tcase_add_test(tc, hang_times_out);
	suite_add_tcase(s, tc);

	tc = tcase_create("pure");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, metric_parser);
	tcase_add_test(tc, keys_are_jwts);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	h_init();
	return ck_run(suite());
}
