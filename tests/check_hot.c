/* check_hot: unit tests for the in-memory set of hot cache entries */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "cache.h"
#include "hot.h"
#include "store.h"
#include "ck_run.h"

#define TIMEOUT_S	30

static void
mkkey(unsigned char *k, unsigned n)
{
	unsigned	i;

	/* spread over the digest like a real key: vary the low bytes */
	for (i = 0; i < CACHE_KEY_LEN; i++)
		k[i] = (unsigned char)((n * 2654435761u) >> ((i % 4) * 8)) ^
		    (unsigned char)i;
	memcpy(k + CACHE_KEY_LEN - sizeof(n), &n, sizeof(n));
}

static int	last_fd;

/* hot_get(), keeping the file descriptor it gives in last_fd */
static const struct store_entry *
get(struct hot *h, const unsigned char *k)
{
	return hot_get(h, k, &last_fd);
}

/* an entry with a body of n bytes of fill and a one-line head */
static struct store_entry
mkent(size_t n, int fill)
{
	static unsigned char	body[1 << 20];
	static char		head[] = "Content-Type: application/json\r\n";
	struct store_entry	e;

	memset(&e, 0, sizeof(e));
	memset(body, fill, n);
	e.status = 200;
	e.headers = head;
	e.headers_len = sizeof(head) - 1;
	e.body = body;
	e.body_len = n;
	snprintf(e.etag, sizeof(e.etag), "\"e%d\"", fill);
	e.stored_at = 1000;
	e.ttl_s = 60;
	return e;
}

START_TEST(put_get_copy)
{
	struct hot			*h = hot_new(1 << 20);
	unsigned char			 k[CACHE_KEY_LEN], k2[CACHE_KEY_LEN];
	struct store_entry		 e = mkent(100, 'a');
	const struct store_entry	*g;

	ck_assert_ptr_nonnull(h);
	mkkey(k, 1);
	mkkey(k2, 2);
	ck_assert_ptr_null(get(h, k));
	hot_put(h, k, &e);
	/* a copy: changing the source does not change what is held */
	e = mkent(100, 'b');
	ck_assert_ptr_nonnull(g = get(h, k));
	ck_assert_int_eq(g->status, 200);
	ck_assert_uint_eq(g->body_len, 100);
	ck_assert_int_eq(g->body[0], 'a');
	ck_assert_int_eq(g->body[100], '\0');
	ck_assert_str_eq(g->headers, "Content-Type: application/json\r\n");
	ck_assert_str_eq(g->etag, "\"e97\"");
	ck_assert_int_eq(g->stored_at, 1000);
	ck_assert_uint_eq(g->ttl_s, 60);
	ck_assert_ptr_null(get(h, k2));
	/* replacing */
	hot_put(h, k, &e);
	ck_assert_int_eq(get(h, k)->body[0], 'b');
	hot_drop(h, k);
	ck_assert_ptr_null(get(h, k));
	ck_assert_uint_eq(hot_bytes(h), 0);
	hot_drop(h, k);			/* absent: no-op */
	hot_free(h);
}
END_TEST

START_TEST(bound_and_lru)
{
	struct hot		*h = hot_new(64 * 1024);
	unsigned char		 k[CACHE_KEY_LEN];
	struct store_entry	 e = mkent(1000, 'x');
	unsigned		 i, held = 0;

	for (i = 0; i < 200; i++) {
		mkkey(k, i);
		hot_put(h, k, &e);
		ck_assert_uint_le(hot_bytes(h), 64 * 1024);
		/* key 0 stays the most recently used one */
		mkkey(k, 0);
		ck_assert_ptr_nonnull(get(h, k));
	}
	for (i = 0; i < 200; i++) {
		mkkey(k, i);
		held += get(h, k) != NULL;
	}
	ck_assert_uint_gt(held, 10);
	ck_assert_uint_lt(held, 200);
	/* the newest ones are held, the oldest ones (but key 0) are not */
	mkkey(k, 199);
	ck_assert_ptr_nonnull(get(h, k));
	mkkey(k, 1);
	ck_assert_ptr_null(get(h, k));
	hot_clear(h);
	ck_assert_uint_eq(hot_bytes(h), 0);
	mkkey(k, 199);
	ck_assert_ptr_null(get(h, k));
	hot_free(h);
}
END_TEST

START_TEST(oversized_not_held)
{
	struct hot		*h = hot_new(64 * 1024);
	unsigned char		 k[CACHE_KEY_LEN];
	struct store_entry	 e = mkent(64 * 1024 / 8, 'x');

	mkkey(k, 7);
	hot_put(h, k, &e);
	ck_assert_ptr_null(get(h, k));
	/* nor does a too big replacement keep the older, smaller copy */
	e = mkent(10, 'y');
	hot_put(h, k, &e);
	ck_assert_ptr_nonnull(get(h, k));
	e = mkent(1 << 19, 'z');
	hot_put(h, k, &e);
	ck_assert_ptr_null(get(h, k));
	hot_free(h);
}
END_TEST

START_TEST(many_keys_grow)
{
	struct hot		*h = hot_new(64u << 20);
	unsigned char		 k[CACHE_KEY_LEN];
	struct store_entry	 e = mkent(16, 'q');
	unsigned		 i;

	/* more entries than the initial buckets: chains rehash */
	for (i = 0; i < 5000; i++) {
		mkkey(k, i);
		hot_put(h, k, &e);
	}
	for (i = 0; i < 5000; i++) {
		mkkey(k, i);
		ck_assert_msg(get(h, k) != NULL, "key %u lost", i);
	}
	for (i = 0; i < 5000; i += 2) {
		mkkey(k, i);
		hot_drop(h, k);
	}
	for (i = 0; i < 5000; i++) {
		mkkey(k, i);
		ck_assert_int_eq(get(h, k) != NULL, i % 2);
	}
	hot_free(h);
}
END_TEST

START_TEST(big_body_in_a_file)
{
	struct hot			*h = hot_new(8u << 20);
	unsigned char			 k[CACHE_KEY_LEN];
	static char			 back[100000];
	struct store_entry		 e = mkent(100000, 'f');
	const struct store_entry	*g;

	mkkey(k, 3);
	/* a big body comes in on its second put only */
	hot_put(h, k, &e);
	ck_assert_ptr_null(get(h, k));
	hot_put(h, k, &e);
	ck_assert_ptr_nonnull(g = get(h, k));
	ck_assert_int_ne(last_fd, -1);
	ck_assert_ptr_null(g->body);
	ck_assert_uint_eq(g->body_len, 100000);
	ck_assert_str_eq(g->headers, "Content-Type: application/json\r\n");
	ck_assert_int_eq(pread(last_fd, back, sizeof(back), 0), 100000);
	ck_assert(back[0] == 'f' && back[99999] == 'f');
	/* small bodies stay in memory */
	e = mkent(100, 's');
	mkkey(k, 4);
	hot_put(h, k, &e);
	ck_assert_ptr_nonnull(g = get(h, k));
	ck_assert_int_eq(last_fd, -1);
	ck_assert_ptr_nonnull(g->body);
	hot_free(h);
}
END_TEST

START_TEST(big_bodies_read_at_random_stay_out)
{
	struct hot		*h = hot_new(8u << 20);
	unsigned char		 k[CACHE_KEY_LEN];
	struct store_entry	 e = mkent(64 * 1024, 'r');
	unsigned		 i, taken = 0, x = 12345;

	/*
	 * Random reads over 2000 keys, far more than the set holds, each
	 * put after a read that missed it: few are taken in (without the
	 * second-put rule every one would be, and would push another out)
	 */
	for (i = 0; i < 20000; i++) {
		x = x * 1103515245u + 12345u;
		mkkey(k, (x >> 8) % 2000);
		if (get(h, k) != NULL)
			continue;
		hot_put(h, k, &e);
		taken += get(h, k) != NULL;
	}
	ck_assert_msg(taken < 20000 / 16, "%u of the puts taken", taken);
	/* one key read again and again comes in at once */
	mkkey(k, 5000);
	hot_put(h, k, &e);
	hot_put(h, k, &e);
	ck_assert_ptr_nonnull(get(h, k));
	hot_free(h);
}
END_TEST

START_TEST(off_is_empty)
{
	unsigned char		 k[CACHE_KEY_LEN];
	struct store_entry	 e = mkent(16, 'q');

	ck_assert_ptr_null(hot_new(0));
	mkkey(k, 1);
	/* a NULL set (cache-memory 0) holds nothing and takes anything */
	hot_put(NULL, k, &e);
	ck_assert_ptr_null(get(NULL, k));
	hot_drop(NULL, k);
	hot_clear(NULL);
	hot_free(NULL);
	ck_assert_uint_eq(hot_bytes(NULL), 0);
}
END_TEST

static Suite *
hot_suite(void)
{
	Suite	*s = suite_create("hot");
	TCase	*tc = tcase_create("hot");

	tcase_set_timeout(tc, TIMEOUT_S);
	tcase_add_test(tc, put_get_copy);
	tcase_add_test(tc, bound_and_lru);
	tcase_add_test(tc, oversized_not_held);
	tcase_add_test(tc, many_keys_grow);
	tcase_add_test(tc, big_body_in_a_file);
	tcase_add_test(tc, big_bodies_read_at_random_stay_out);
	tcase_add_test(tc, off_is_empty);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return ck_run(hot_suite());
}
