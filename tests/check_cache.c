/* check_cache: unit tests for the cache policy (time passed in, no sleeps) */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "buf.h"
#include "cache.h"
#include "crypto.h"
#include "ck_run.h"

#define TIMEOUT_S	30
#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define BIG		(1024 * 1024)
#define CANON_MAX	65536

static char	canon_out[CANON_MAX + 1];

/* the canonical query, or NULL when cache_canon_query fails */
static const char *
canon(const char *q)
{
	struct sbuf	b;
	const char	*ret = NULL;

	sbuf_init(&b, CANON_MAX);
	if (cache_canon_query(q, &b) == 0) {
		memcpy(canon_out, sbuf_str(&b), strlen(sbuf_str(&b)) + 1);
		ret = canon_out;
	}
	sbuf_fini(&b);
	return ret;
}

static int
canon_eq(const char *a, const char *b)
{
	char		 ca[CANON_MAX + 1];
	const char	*r;

	if ((r = canon(a)) == NULL)
		return -1;
	memcpy(ca, r, strlen(r) + 1);
	if ((r = canon(b)) == NULL)
		return -1;
	return strcmp(ca, r) == 0;
}

/* a string of n copies of c, to be freed */
static char *
fill(size_t n, int c)
{
	char	*s = malloc(n + 1);

	ck_assert_ptr_nonnull(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* xorshift: deterministic garbage */
static uint32_t
rnd(uint32_t *st)
{
	uint32_t	x = *st;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *st = x;
}

/* NUL-free random bytes; avoid: bytes never produced */
static char *
garbage(uint32_t *st, size_t n, const char *avoid)
{
	char	*s = malloc(n + 1);
	size_t	 i;
	int	 c;

	ck_assert_ptr_nonnull(s);
	for (i = 0; i < n; i++) {
		do
			c = (int)(rnd(st) % 255) + 1;
		while (avoid != NULL && strchr(avoid, c) != NULL);
		s[i] = (char)c;
	}
	s[n] = '\0';
	return s;
}

/*
 * Query canonicalisation
 */

#define CANON_WANT	"id=in.%281%2C2%29&name=ilike.%2Aa%20b%2A&select=id%2Cname"

static const char *const same_query[] = {
	/* curl, characters as typed */
	"select=id,name&id=in.(1,2)&name=ilike.*a b*",
	/* postgrest-js: URLSearchParams */
	"select=id%2Cname&id=in.%281%2C2%29&name=ilike.*a+b*",
	/* httpx / urllib quote_plus */
	"select=id%2Cname&id=in.%281%2C2%29&name=ilike.%2Aa+b%2A",
	/* httpx 0.28: %20 for a space */
	"select=id%2Cname&id=in.%281%2C2%29&name=ilike.%2Aa%20b%2A",
	/* lowercase hex, another order, stray '&', an apikey */
	"&name=ilike.%2aa%20b%2a&&apikey=sb_publishable_x&id=in.%281%2c2%29"
	    "&select=id%2cname&",
	/* everything encoded, names too */
	"%73elect=%69%64%2C%6E%61%6D%65&%69d=%69%6E%2E%28%31%2C%32%29"
	    "&name=ilike%2E%2A%61%20b*",
};

START_TEST(test_canon_same)
{
	const char	*r = canon(same_query[_i]);

	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r, CANON_WANT);
}
END_TEST

static const struct {
	const char	*a, *b;
	int		 eq;
} pairs[] = {
	{ "a=1&b=2", "b=2&a=1", 1 },
	{ "order=a&order=b", "order=b&order=a", 0 },
	{ "order=a&x=1&order=b", "x=1&order=a&order=b", 1 },
	{ "id=eq.1", "id=eq.2", 0 },
	{ "name=a+b", "name=a%2Bb", 0 },	/* space vs plus */
	{ "name=a+b", "name=a%20b", 1 },
	{ "name=a+b", "name=a b", 1 },
	{ "a", "a=", 0 },
	{ "a=", "a=", 1 },
	{ "a%3Db=c", "a=b%3Dc", 0 },		/* '=' inside a name */
	{ "a=b%26c=d", "a=b&c=d", 0 },		/* '&' inside a value */
	{ "apikey=x&a=1", "a=1", 1 },
	{ "api%6Bey=x&a=1", "a=1", 1 },		/* decoded name */
	{ "APIKEY=x&a=1", "a=1", 0 },		/* not the key's name */
	{ "apikey2=x", "", 0 },
	{ "&&&", "", 1 },
	{ "a=1&&", "a=1", 1 },
	{ "A=1", "a=1", 0 },
	{ "a=%C3%A9", "a=\xc3\xa9", 1 },	/* raw UTF-8 */
	{ "a=%00", "a=", 0 },
	{ "ab=1&a=2", "a=2&ab=1", 1 },		/* prefix sorts first */
	{ "a.b=1", "a%2Eb=1", 1 },
	{ "a~=1", "a%7E=1", 1 },
};

START_TEST(test_canon_pairs)
{
	ck_assert_msg(canon_eq(pairs[_i].a, pairs[_i].b) == pairs[_i].eq,
	    "\"%s\" vs \"%s\"", pairs[_i].a, pairs[_i].b);
}
END_TEST

START_TEST(test_canon_shapes)
{
	struct sbuf	 b;

	ck_assert_str_eq(canon(""), "");
	ck_assert_str_eq(canon("apikey=x"), "");
	ck_assert_str_eq(canon("b=2&a"), "a&b=2");
	ck_assert_str_eq(canon("x=-._~AZaz09"), "x=-._~AZaz09");
	ck_assert_str_eq(canon("x=%ff%2f/"), "x=%FF%2F%2F");
	ck_assert_str_eq(canon("=v"), "=v");
	/* NULL is the empty query */
	sbuf_init(&b, 16);
	ck_assert_int_eq(cache_canon_query(NULL, &b), 0);
	ck_assert_str_eq(sbuf_str(&b), "");
	/* appended, and an overflowing out fails */
	ck_assert_int_eq(cache_canon_query("a=1", &b), 0);
	ck_assert_int_eq(cache_canon_query("b=2", &b), 0);
	ck_assert_str_eq(sbuf_str(&b), "a=1b=2");
	ck_assert_int_eq(cache_canon_query("c=0123456789", &b), -1);
	sbuf_fini(&b);
	sbuf_init(&b, 0);
	ck_assert_int_eq(cache_canon_query("a=1", &b), -1);
	sbuf_fini(&b);
}
END_TEST

static const char *const bad_query[] = {
	"a=%zz", "a=%4", "a=%", "%zz=1", "a=1&b=%g0", "a=%%41", "%=1",
	"a=1%", "a=%4g",
};

START_TEST(test_canon_malformed)
{
	ck_assert_msg(canon(bad_query[_i]) == NULL, "%s", bad_query[_i]);
}
END_TEST

START_TEST(test_canon_bounds)
{
	char	*s;
	char	 q[4096];
	size_t	 i, o;

	/* 16 KiB is the limit */
	s = fill(16384, 'x');
	s[0] = 'a';
	s[1] = '=';
	ck_assert_ptr_nonnull(canon(s));
	free(s);
	s = fill(16385, 'x');
	ck_assert_ptr_null(canon(s));
	free(s);
	s = fill(BIG, 'x');
	ck_assert_ptr_null(canon(s));
	free(s);
	/* 256 parameters, apikey and empty ones included, then 257 */
	for (i = o = 0; i < 256; i++)
		o += snprintf(q + o, sizeof(q) - o, "%sp%zu=1",
		    i ? "&" : "", i);
	ck_assert_ptr_nonnull(canon(q));
	snprintf(q + o, sizeof(q) - o, "&apikey=1");
	ck_assert_ptr_null(canon(q));
	q[o] = '\0';
	snprintf(q + o, sizeof(q) - o, "&&&&");	/* empty: not counted */
	ck_assert_ptr_nonnull(canon(q));
}
END_TEST

/* any NUL-free garbage: no crash; success gives a fixed point */
START_TEST(test_canon_garbage)
{
	uint32_t	 st = 0x9e3779b9u + (uint32_t)_i;
	char		*g, first[CANON_MAX + 1];
	const char	*r, *p;
	int		 k;

	for (k = 0; k < 200; k++) {
		g = garbage(&st, 1 + rnd(&st) % 2000, k % 2 ? "%" : NULL);
		if ((r = canon(g)) != NULL) {
			for (p = r; *p != '\0'; p++)
				ck_assert(strchr("-._~%&=", *p) != NULL ||
				    (*p >= '0' && *p <= '9') ||
				    (*p >= 'A' && *p <= 'Z') ||
				    (*p >= 'a' && *p <= 'z'));
			memcpy(first, r, strlen(r) + 1);
			r = canon(first);
			ck_assert_ptr_nonnull(r);
			ck_assert_str_eq(r, first);
		} else
			ck_assert(k % 2 == 0);	/* only '%' can fail */
		free(g);
	}
}
END_TEST

/*
 * Keys
 */

static const struct cache_key_in base_in = {
	.method = "GET",
	.path = "/rest/v1/todos",
	.canon_query = "select=id",
	.accept = "application/json",
	.accept_profile = "public",
	.prefer = "count=exact",
	.range = "0-9",
	.range_unit = "items",
	.identity = "jwt:authenticated:a",
};

static void
key(const struct cache_key_in *in, unsigned char out[CACHE_KEY_LEN])
{
	cache_key(in, out);
}

static int
key_eq(const struct cache_key_in *a, const struct cache_key_in *b)
{
	unsigned char	ka[CACHE_KEY_LEN], kb[CACHE_KEY_LEN];

	key(a, ka);
	key(b, kb);
	return memcmp(ka, kb, CACHE_KEY_LEN) == 0;
}

static const size_t key_fields[] = {
	offsetof(struct cache_key_in, method),
	offsetof(struct cache_key_in, path),
	offsetof(struct cache_key_in, canon_query),
	offsetof(struct cache_key_in, accept),
	offsetof(struct cache_key_in, accept_profile),
	offsetof(struct cache_key_in, prefer),
	offsetof(struct cache_key_in, range),
	offsetof(struct cache_key_in, range_unit),
	offsetof(struct cache_key_in, identity),
};

#define FIELD(in, off)	(*(const char **)((char *)(in) + (off)))

/* every field, changed or removed, changes the key */
START_TEST(test_key_fields)
{
	struct cache_key_in	 in = base_in;
	size_t			 off = key_fields[_i];

	FIELD(&in, off) = "POST";
	if (off == offsetof(struct cache_key_in, method))
		FIELD(&in, off) = "POST";
	else if (off == offsetof(struct cache_key_in, prefer))
		FIELD(&in, off) = "count=planned";
	else
		FIELD(&in, off) = "other";
	ck_assert(!key_eq(&in, &base_in));
	if (off != offsetof(struct cache_key_in, accept_profile)) {
		FIELD(&in, off) = NULL;
		ck_assert(!key_eq(&in, &base_in));
	}
	/* and the same input gives the same key */
	in = base_in;
	ck_assert(key_eq(&in, &base_in));
}
END_TEST

START_TEST(test_key_equivalences)
{
	struct cache_key_in	 a = base_in, b = base_in;

	/* HEAD keys as GET, other methods do not */
	b.method = "HEAD";
	ck_assert(key_eq(&a, &b));
	b.method = "get";
	ck_assert(!key_eq(&a, &b));

	/* Prefer: order, case, spaces and write-only tokens do not count */
	a.prefer = "count=exact,timezone=Europe/Paris";
	b = a;
	b.prefer = " TIMEZONE=europe/paris ,return=representation, "
	    "count=exact,handling=lenient,tx=commit,missing=default,"
	    "resolution=merge-duplicates,max-affected=5,,";
	ck_assert(key_eq(&a, &b));
	b.prefer = "count=exact, timezone=Europe/Paris, count=exact";
	ck_assert(key_eq(&a, &b));
	b.prefer = "count=exact";
	ck_assert(!key_eq(&a, &b));
	b.prefer = "count=planned,timezone=Europe/Paris";
	ck_assert(!key_eq(&a, &b));
	b.prefer = "count=exact,timezone=Europe/Paris,x-unknown=1";
	ck_assert(!key_eq(&a, &b));
	/* repeated names keep their order */
	a.prefer = "count=exact,count=planned";
	b.prefer = "count=planned,count=exact";
	ck_assert(!key_eq(&a, &b));
	/* only write tokens is the same as none */
	a.prefer = NULL;
	b.prefer = "return=minimal";
	ck_assert(key_eq(&a, &b));
	b.prefer = "";
	ck_assert(key_eq(&a, &b));

	/* Accept: trimmed and lowercased; empty is absent */
	a = b = base_in;
	b.accept = "  Application/JSON\t";
	ck_assert(key_eq(&a, &b));
	b.accept = "application/vnd.pgrst.object+json";
	ck_assert(!key_eq(&a, &b));
	b.accept = "text/csv";
	ck_assert(!key_eq(&a, &b));
	a.accept = NULL;
	b.accept = " ";
	ck_assert(key_eq(&a, &b));

	/* Accept-Profile: NULL and empty are public; case is kept */
	a = b = base_in;
	b.accept_profile = NULL;
	ck_assert(key_eq(&a, &b));
	b.accept_profile = " public ";
	ck_assert(key_eq(&a, &b));
	b.accept_profile = "";
	ck_assert(key_eq(&a, &b));
	b.accept_profile = "Public";
	ck_assert(!key_eq(&a, &b));
	b.accept_profile = "api";
	ck_assert(!key_eq(&a, &b));

	/* Range-Unit lowercased, Range trimmed */
	a = b = base_in;
	b.range_unit = "ITEMS";
	b.range = " 0-9 ";
	ck_assert(key_eq(&a, &b));
	b.range = "0-10";
	ck_assert(!key_eq(&a, &b));
}
END_TEST

START_TEST(test_key_identity)
{
	struct cache_key_in	 a = base_in, b = base_in;
	char			 ia[CACHE_IDENTITY_MAX], ib[CACHE_IDENTITY_MAX];

	cache_identity("Bearer x", 1, "authenticated", "user-a", ia,
	    sizeof(ia));
	cache_identity("Bearer y", 1, "authenticated", "user-b", ib,
	    sizeof(ib));
	a.identity = ia;
	b.identity = ib;
	ck_assert(!key_eq(&a, &b));
	cache_identity("Bearer x", 0, NULL, NULL, ib, sizeof(ib));
	ck_assert(!key_eq(&a, &b));
	cache_identity(NULL, 0, NULL, NULL, ib, sizeof(ib));
	ck_assert(!key_eq(&a, &b));
	b.identity = NULL;
	ck_assert(!key_eq(&a, &b));
	b.identity = "";
	ck_assert(!key_eq(&a, &b));
	/* same identity, same key */
	cache_identity("Bearer other", 1, "authenticated", "user-a", ib,
	    sizeof(ib));
	b.identity = ib;
	ck_assert(key_eq(&a, &b));
}
END_TEST

/* no collision by moving bytes from one field to the next */
START_TEST(test_key_concat)
{
	struct cache_key_in	 a = base_in, b = base_in;

	a.path = "/rest/v1/ab";
	a.canon_query = "";
	b.path = "/rest/v1/a";
	b.canon_query = "b";
	ck_assert(!key_eq(&a, &b));
	a = b = base_in;
	a.accept = "x";
	a.range = NULL;
	b.accept = NULL;
	b.range = "x";
	ck_assert(!key_eq(&a, &b));
	a = b = base_in;
	a.canon_query = "";
	b.canon_query = NULL;
	ck_assert(!key_eq(&a, &b));
}
END_TEST

START_TEST(test_key_hostile)
{
	struct cache_key_in	 a, b;
	char			*big = fill(BIG, 'A'), *big2 = fill(BIG, 'A');
	uint32_t		 st = 7;
	char			*g;
	size_t			 i;

	memset(&a, 0, sizeof(a));
	b = a;
	ck_assert(key_eq(&a, &b));	/* all NULL */
	big2[BIG - 1] = 'B';
	for (i = 0; i < NELEM(key_fields); i++) {
		a = b = base_in;
		FIELD(&a, key_fields[i]) = big;
		FIELD(&b, key_fields[i]) = big2;
		ck_assert(!key_eq(&a, &b));
		FIELD(&b, key_fields[i]) = big;
		ck_assert(key_eq(&a, &b));
	}
	/* a long Prefer is used raw, never equal to a short one */
	a = b = base_in;
	big[BIG - 1] = '\0';
	memcpy(big, "count=exact,", 12);
	memset(big + 12, ' ', BIG - 13);
	a.prefer = big;
	ck_assert(!key_eq(&a, &b));
	/* many Prefer tokens */
	for (i = 0; i + 2 < BIG; i += 2)
		memcpy(big + i, "a,", 2);
	a.prefer = big;
	ck_assert(!key_eq(&a, &b));
	for (i = 0; i < 100; i++) {
		g = garbage(&st, 1 + rnd(&st) % 5000, NULL);
		a = base_in;
		a.prefer = g;
		a.accept = g;
		a.range = g;
		key(&a, (unsigned char [CACHE_KEY_LEN]){ 0 });
		free(g);
	}
	free(big);
	free(big2);
}
END_TEST

/*
 * Identity
 */

START_TEST(test_identity)
{
	char		 a[CACHE_IDENTITY_MAX], b[CACHE_IDENTITY_MAX], *big;
	char		 small[CACHE_IDENTITY_MIN];
	size_t		 i;

	cache_identity("Bearer t", 1, "authenticated",
	    "5f1c0ab4-0000-4000-8000-000000000001", a, sizeof(a));
	ck_assert_str_eq(a, "jwt:authenticated:"
	    "5f1c0ab4-0000-4000-8000-000000000001");
	cache_identity(NULL, 1, "anon", NULL, a, sizeof(a));
	ck_assert_str_eq(a, "jwt:anon:");
	cache_identity(NULL, 1, NULL, NULL, a, sizeof(a));
	ck_assert_str_eq(a, "jwt::");
	cache_identity(NULL, 0, "anon", "x", a, sizeof(a));
	ck_assert_str_eq(a, "none");

	/* ':' cannot move between role and sub */
	cache_identity(NULL, 1, "a:b", "c", a, sizeof(a));
	cache_identity(NULL, 1, "a", "b:c", b, sizeof(b));
	ck_assert_str_ne(a, b);
	ck_assert_str_eq(a, "jwt:a%3Ab:c");
	cache_identity(NULL, 1, "a%3Ab", "c", b, sizeof(b));
	ck_assert_str_ne(a, b);
	cache_identity(NULL, 1, "r", "s p\n\xff", a, sizeof(a));
	ck_assert_str_eq(a, "jwt:r:s%20p%0A%FF");

	/* bearer: a hash of the whole value */
	cache_identity("Bearer abc", 0, NULL, NULL, a, sizeof(a));
	cache_identity("Bearer abd", 0, NULL, NULL, b, sizeof(b));
	ck_assert_int_eq(strlen(a), 7 + 64);
	ck_assert(strncmp(a, "bearer:", 7) == 0);
	ck_assert_str_ne(a, b);
	cache_identity("Bearer abc", 0, "ignored", "ignored", b, sizeof(b));
	ck_assert_str_eq(a, b);
	cache_identity("bearer abc", 0, NULL, NULL, b, sizeof(b));
	ck_assert_str_ne(a, b);
	cache_identity("", 0, NULL, NULL, b, sizeof(b));
	ck_assert_str_ne(b, "none");
	/* fits exactly in the minimum */
	cache_identity("Bearer abc", 0, NULL, NULL, small, sizeof(small));
	ck_assert_str_eq(small, a);

	/* too long to print: hashed, never truncated */
	big = fill(BIG, 'u');
	cache_identity(NULL, 1, "authenticated", big, a, sizeof(a));
	ck_assert(strncmp(a, "jwth:", 5) == 0);
	ck_assert_int_eq(strlen(a), 5 + 64);
	big[BIG - 1] = 'v';
	cache_identity(NULL, 1, "authenticated", big, b, sizeof(b));
	ck_assert_str_ne(a, b);
	cache_identity(big, 0, NULL, NULL, b, sizeof(b));
	ck_assert(strncmp(b, "bearer:", 7) == 0);
	free(big);
	/* a sub that just fits and one byte more */
	big = fill(sizeof(a) - 1 - strlen("jwt:r:"), 's');
	cache_identity(NULL, 1, "r", big, a, sizeof(a));
	ck_assert(strncmp(a, "jwt:r:ss", 8) == 0);
	free(big);
	big = fill(sizeof(a) - strlen("jwt:r:"), 's');
	cache_identity(NULL, 1, "r", big, a, sizeof(a));
	ck_assert(strncmp(a, "jwth:", 5) == 0);
	free(big);
	/* two long subs that share the printable prefix */
	for (i = 0; i < 2; i++) {
		big = fill(300, 'p');
		big[299] = (char)('0' + i);
		cache_identity(NULL, 1, "r", big, i ? b : a, sizeof(a));
		free(big);
	}
	ck_assert_str_ne(a, b);

	/* an out too small gets "", never a prefix */
	memset(small, 'x', sizeof(small));
	cache_identity("Bearer abc", 0, NULL, NULL, small, sizeof(small) - 1);
	ck_assert_str_eq(small, "");
	cache_identity("Bearer abc", 0, NULL, NULL, NULL, 0);
	cache_identity("Bearer abc", 0, NULL, NULL, small, 0);
}
END_TEST

/*
 * Tags
 */

struct tcase_tags {
	const char	*schema, *path, *select;
	int		 n;		/* -1: malformed */
	const char	*want[6];	/* any order */
};

static const struct tcase_tags tag_cases[] = {
	{ "public", "/rest/v1/todos", NULL, 1, { "public.todos" } },
	{ NULL, "/rest/v1/todos", "", 1, { "public.todos" } },
	{ "", "/rest/v1/todos", "*", 1, { "public.todos" } },
	{ " api ", "/rest/v1/todos", NULL, 1, { "api.todos" } },
	{ "api", "/rest/v1/todos", "id,cities(name)", 2,
	    { "api.todos", "api.cities" } },
	{ "public", "/rest/v1/todos/", "id", 1, { "public.todos" } },
	{ "public", "/rest/v1/todos?select=x(y)", NULL, 1,
	    { "public.todos" } },
	{ "public", "/rest/v1/t%61ble", NULL, 1, { "public.table" } },
	{ "public", "/rest/v1/my%20table", NULL, 1, { "public.my table" } },
	{ "public", "/rest/v1/a+b", NULL, 1, { "public.a+b" } },
	/* rpc: no path tag, embeds still count */
	{ "public", "/rest/v1/rpc/fn", NULL, 0, { NULL } },
	{ "public", "/rest/v1/rpc/fn", "*,cities(name)", 1,
	    { "public.cities" } },
	{ "public", "/rest/v1/rpc", NULL, 1, { "public.rpc" } },
	{ "public", "/rest/v1/rpcx", NULL, 1, { "public.rpcx" } },
	/* not REST */
	{ "public", "/auth/v1/user", NULL, 0, { NULL } },
	{ "public", "/rest/v1/", NULL, 0, { NULL } },
	{ "public", "/rest/v1", NULL, 0, { NULL } },
	{ "public", "/rest/v2/todos", NULL, 0, { NULL } },
	{ "public", NULL, "cities(id)", 1, { "public.cities" } },
	{ "public", "", NULL, 0, { NULL } },
	/* nesting */
	{ "public", "/rest/v1/regions", "*,cities(name,countries(id))", 3,
	    { "public.regions", "public.cities", "public.countries" } },
	{ "public", "/rest/v1/a", "b(c(d(e(id))))", 5,
	    { "public.a", "public.b", "public.c", "public.d", "public.e" } },
	/* aliases, hints, spreads */
	{ "public", "/rest/v1/posts", "id,author:users(name)", 2,
	    { "public.posts", "public.users" } },
	{ "public", "/rest/v1/posts", "users!inner(name)", 2,
	    { "public.posts", "public.users" } },
	{ "public", "/rest/v1/posts", "a:users!posts_author_fkey!left(id)", 2,
	    { "public.posts", "public.users" } },
	{ "public", "/rest/v1/posts", "...countries(name)", 2,
	    { "public.posts", "public.countries" } },
	{ "public", "/rest/v1/posts", "...countries!fk(name,x:y(z))", 3,
	    { "public.posts", "public.countries", "public.y" } },
	{ "public", "/rest/v1/posts", " id , users ( name ) ", 2,
	    { "public.posts", "public.users" } },
	/* quoted names */
	{ "public", "/rest/v1/posts", "\"My Table\"(id)", 2,
	    { "public.posts", "public.My Table" } },
	{ "public", "/rest/v1/posts", "\"a,b(c\"(id)", 2,
	    { "public.posts", "public.a,b(c" } },
	{ "public", "/rest/v1/posts", "x:\"T:1\"!hint(id),\"w(x)\"", 2,
	    { "public.posts", "public.T:1" } },
	{ "public", "/rest/v1/posts", "\"data\"->>\"a(b\",c", 1,
	    { "public.posts" } },
	/* dedup */
	{ "public", "/rest/v1/a", "a(id),x:a(name),b(a(id))", 2,
	    { "public.a", "public.b" } },
	/* not embeds: columns, casts, JSON paths, aggregates */
	{ "public", "/rest/v1/t", "id::text,data->a->>b,n:full_name", 1,
	    { "public.t" } },
	{ "public", "/rest/v1/t", "count()", 1, { "public.t" } },
	{ "public", "/rest/v1/t", "amount.sum(),id.count()::int,a.avg( )", 1,
	    { "public.t" } },
	{ "public", "/rest/v1/t", "cities(count)", 2,
	    { "public.t", "public.cities" } },
	{ "public", "/rest/v1/t", "cities(count())", 2,
	    { "public.t", "public.cities" } },
	{ "public", "/rest/v1/t", "count(id)", 2, { "public.t", "public.count" } },
	/* malformed */
	{ "public", "/rest/v1/t", "cities(name", -1, { NULL } },
	{ "public", "/rest/v1/t", "cities(name))", -1, { NULL } },
	{ "public", "/rest/v1/t", ")(", -1, { NULL } },
	{ "public", "/rest/v1/t", "\"abc", -1, { NULL } },
	{ "public", "/rest/v1/t", "a(\"b)", -1, { NULL } },
	{ "public", "/rest/v1/t", "(id)", -1, { NULL } },
	{ "public", "/rest/v1/t", "!inner(id)", -1, { NULL } },
	{ "public", "/rest/v1/t", "x:(id)", -1, { NULL } },
	{ "public", "/rest/v1/t", "...(id)", -1, { NULL } },
	{ "public", "/rest/v1/t", "\"\"(id)", -1, { NULL } },
	{ "public", "/rest/v1/t", "a(b)c(d)", -1, { NULL } },
	{ "public", "/rest/v1/t%zz", NULL, -1, { NULL } },
	{ "public", "/rest/v1/t%00", NULL, -1, { NULL } },
	{ "public", "/rest/v1/t%4", "", -1, { NULL } },
};

static int
has_tag(char tags[][CACHE_TAG_MAX], int n, const char *t)
{
	int	i;

	for (i = 0; i < n; i++)
		if (strcmp(tags[i], t) == 0)
			return 1;
	return 0;
}

START_TEST(test_tags)
{
	const struct tcase_tags	*c = &tag_cases[_i];
	char			 tags[CACHE_TAGS_MAX][CACHE_TAG_MAX];
	int			 n, i;

	n = cache_tags(c->schema, c->path, c->select, tags, CACHE_TAGS_MAX);
	ck_assert_msg(n == c->n, "%s %s: %d tags, want %d", c->path,
	    c->select ? c->select : "(null)", n, c->n);
	for (i = 0; i < c->n; i++)
		ck_assert_msg(has_tag(tags, n, c->want[i]), "%s: no %s",
		    c->select ? c->select : c->path, c->want[i]);
}
END_TEST

START_TEST(test_tags_bounds)
{
	char	 tags[CACHE_TAGS_MAX][CACHE_TAG_MAX], sel[512], *big;
	char	 path[512];
	size_t	 i, o;
	int	 n;

	/* nesting: 16 levels are fine, 17 are not */
	for (o = 0, i = 0; i < 16; i++)
		o += snprintf(sel + o, sizeof(sel) - o, "t%zu(", i);
	o += snprintf(sel + o, sizeof(sel) - o, "id");
	for (i = 0; i < 16; i++)
		sel[o++] = ')';
	sel[o] = '\0';
	ck_assert_int_eq(cache_tags("public", "/rest/v1/t", sel, tags,
	    CACHE_TAGS_MAX), 17);
	memmove(sel + 2, sel, strlen(sel) + 1);
	memcpy(sel, "x(", 2);
	strcat(sel, ")");
	ck_assert_int_eq(cache_tags("public", "/rest/v1/t", sel, tags,
	    CACHE_TAGS_MAX), -1);

	/* more tags than room: refused, never truncated */
	ck_assert_int_eq(cache_tags("public", "/rest/v1/t", "a(id),b(id)", tags,
	    3), 3);
	ck_assert_int_eq(cache_tags("public", "/rest/v1/t", "a(id),b(id)", tags,
	    2), -1);
	ck_assert_int_eq(cache_tags("public", "/rest/v1/t", NULL, tags, 0), -1);
	ck_assert_int_eq(cache_tags("public", "/auth/v1/x", NULL, tags, 0), 0);
	for (o = 0, i = 0; i < CACHE_TAGS_MAX; i++)
		o += snprintf(sel + o, sizeof(sel) - o, "%st%zu(id)",
		    i ? "," : "", i);
	ck_assert_int_eq(cache_tags("public", "/rest/v1/x", sel, tags,
	    CACHE_TAGS_MAX + 5), -1);
	ck_assert_int_eq(cache_tags("public", "/rest/v1/t0", sel, tags,
	    CACHE_TAGS_MAX + 5), CACHE_TAGS_MAX);

	/* 63-byte schema and table fit exactly; one more byte does not */
	big = fill(63, 's');
	snprintf(path, sizeof(path), "/rest/v1/%s", big);
	n = cache_tags(big, path, NULL, tags, CACHE_TAGS_MAX);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(strlen(tags[0]), 127);
	snprintf(path, sizeof(path), "/rest/v1/%sx", big);
	ck_assert_int_eq(cache_tags(big, path, NULL, tags, CACHE_TAGS_MAX),
	    -1);
	snprintf(sel, sizeof(sel), "%sx(id)", big);
	ck_assert_int_eq(cache_tags(big, "/rest/v1/t", sel, tags,
	    CACHE_TAGS_MAX), -1);
	free(big);

	/* 1 MB strings */
	big = fill(BIG, 'a');
	ck_assert_int_eq(cache_tags("public", "/rest/v1/t", big, tags,
	    CACHE_TAGS_MAX), -1);
	ck_assert_int_eq(cache_tags(big, "/rest/v1/t", NULL, tags,
	    CACHE_TAGS_MAX), -1);
	memcpy(big, "/rest/v1/", 9);
	ck_assert_int_eq(cache_tags("public", big, NULL, tags,
	    CACHE_TAGS_MAX), -1);
	free(big);
}
END_TEST

START_TEST(test_tags_garbage)
{
	char		 tags[CACHE_TAGS_MAX][CACHE_TAG_MAX];
	uint32_t	 st = 12345u + (uint32_t)_i;
	char		*g;
	int		 k, n, i;

	for (k = 0; k < 500; k++) {
		g = garbage(&st, 1 + rnd(&st) % 300,
		    k % 3 ? NULL : "\"'!:.");
		n = cache_tags("public", "/rest/v1/t", g, tags, CACHE_TAGS_MAX);
		ck_assert(n >= -1 && n <= CACHE_TAGS_MAX);
		for (i = 0; i < n; i++)
			ck_assert(strlen(tags[i]) < CACHE_TAG_MAX &&
			    strncmp(tags[i], "public.", 7) == 0);
		n = cache_tags(g, g, NULL, tags, CACHE_TAGS_MAX);
		ck_assert(n >= -1 && n <= 1);
		free(g);
	}
}
END_TEST

static const struct {
	const char	*schema, *path, *want;	/* want NULL: -1 */
} write_cases[] = {
	{ "public", "/rest/v1/todos", "public.todos" },
	{ NULL, "/rest/v1/todos", "public.todos" },
	{ "api", "/rest/v1/todos", "api.todos" },
	{ "public", "/rest/v1/todos?id=eq.1", "public.todos" },
	{ "public", "/rest/v1/t%61ble", "public.table" },
	{ "public", "/rest/v1/rpc", "public.rpc" },
	{ "public", "/rest/v1/rpc/fn", NULL },
	{ "public", "/rest/v1/rpc/", NULL },
	{ "public", "/rest/v1/", NULL },
	{ "public", "/rest/v1", NULL },
	{ "public", "/storage/v1/object/b/x", NULL },
	{ "public", "/rest/v1/t%zz", NULL },
	{ "public", NULL, NULL },
	{ "public", "", NULL },
};

START_TEST(test_write_tag)
{
	char	tag[CACHE_TAG_MAX];
	int	r;

	r = cache_write_tag(write_cases[_i].schema, write_cases[_i].path, tag,
	    sizeof(tag));
	if (write_cases[_i].want == NULL)
		ck_assert_int_eq(r, -1);
	else {
		ck_assert_int_eq(r, 0);
		ck_assert_str_eq(tag, write_cases[_i].want);
	}
}
END_TEST

/* a read's path tag and the write's tag agree */
START_TEST(test_write_tag_agrees)
{
	char	tags[CACHE_TAGS_MAX][CACHE_TAG_MAX], tag[CACHE_TAG_MAX];

	ck_assert_int_eq(cache_tags("api", "/rest/v1/my%20t", NULL, tags,
	    CACHE_TAGS_MAX), 1);
	ck_assert_int_eq(cache_write_tag(" api", "/rest/v1/my%20t", tag,
	    sizeof(tag)), 0);
	ck_assert_str_eq(tags[0], tag);
	/* too small a buffer */
	ck_assert_int_eq(cache_write_tag("public", "/rest/v1/todos", tag, 12),
	    -1);
	ck_assert_int_eq(cache_write_tag("public", "/rest/v1/todos", tag, 13),
	    0);
	ck_assert_str_eq(tag, "public.todos");
	ck_assert_int_eq(cache_write_tag("public", "/rest/v1/todos", tag, 0),
	    -1);
}
END_TEST

/*
 * Request directives
 */

static const struct {
	const char	*cc, *pragma;
	enum cache_req	 want;
} req_cases[] = {
	{ NULL, NULL, CACHE_REQ_NORMAL },
	{ "", "", CACHE_REQ_NORMAL },
	{ "no-cache", NULL, CACHE_REQ_NO_CACHE },
	{ "NO-CACHE", NULL, CACHE_REQ_NO_CACHE },
	{ "no-store", NULL, CACHE_REQ_NO_STORE },
	{ "no-cache, no-store", NULL, CACHE_REQ_NO_STORE },
	{ "no-store,no-cache", NULL, CACHE_REQ_NO_STORE },
	{ "max-age=0", NULL, CACHE_REQ_NO_CACHE },
	{ "max-age=000", NULL, CACHE_REQ_NO_CACHE },
	{ "max-age=\"0\"", NULL, CACHE_REQ_NO_CACHE },
	{ "max-age = 0", NULL, CACHE_REQ_NO_CACHE },
	{ "max-age=60", NULL, CACHE_REQ_NORMAL },
	{ "max-age=abc", NULL, CACHE_REQ_NO_CACHE },
	{ "max-age", NULL, CACHE_REQ_NO_CACHE },
	{ "max-age=-1", NULL, CACHE_REQ_NO_CACHE },
	{ "max-stale=10, min-fresh=5, only-if-cached", NULL,
	    CACHE_REQ_NORMAL },
	{ "no-cachex", NULL, CACHE_REQ_NORMAL },
	{ "x-no-store", NULL, CACHE_REQ_NORMAL },
	{ "foo=\"no-store\"", NULL, CACHE_REQ_NORMAL },
	{ "foo=\"a,no-store\"", NULL, CACHE_REQ_NORMAL },
	{ ",,  ,no-cache,,", NULL, CACHE_REQ_NO_CACHE },
	{ "\tno-store\t", NULL, CACHE_REQ_NO_STORE },
	{ NULL, "no-cache", CACHE_REQ_NO_CACHE },
	{ NULL, "No-Cache", CACHE_REQ_NO_CACHE },
	{ "", "no-cache", CACHE_REQ_NO_CACHE },
	{ " ", "no-cache", CACHE_REQ_NO_CACHE },
	{ NULL, "x, no-cache", CACHE_REQ_NO_CACHE },
	{ NULL, "no-store", CACHE_REQ_NORMAL },	/* not a Pragma */
	{ NULL, "garbage", CACHE_REQ_NORMAL },
	/* RFC 9111 5.4: Cache-Control present, Pragma ignored */
	{ "max-age=60", "no-cache", CACHE_REQ_NORMAL },
	{ "no-cache", "no-cache", CACHE_REQ_NO_CACHE },
	{ "no-store", "no-cache", CACHE_REQ_NO_STORE },
	{ "=, =x, \"", NULL, CACHE_REQ_NORMAL },
	{ "\"unterminated, no-store", NULL, CACHE_REQ_NO_STORE },
};

START_TEST(test_request_directive)
{
	ck_assert_msg(cache_request_directive(req_cases[_i].cc,
	    req_cases[_i].pragma) == req_cases[_i].want, "%s / %s",
	    req_cases[_i].cc ? req_cases[_i].cc : "(null)",
	    req_cases[_i].pragma ? req_cases[_i].pragma : "(null)");
}
END_TEST

/*
 * Response policy
 */

static const struct {
	int		 status;
	const char	*cc;
	int		 cookie, varystar;
	int		 storable;
	uint64_t	 ttl, swr, sie;
} resp_cases[] = {
	/* defaults: ttl 60, swr 30, sie 300 */
	{ 200, NULL, 0, 0, 1, 60, 30, 300 },
	{ 204, NULL, 0, 0, 1, 60, 30, 300 },
	{ 206, NULL, 0, 0, 1, 60, 30, 300 },
	{ 201, NULL, 0, 0, 0, 0, 0, 0 },
	{ 304, NULL, 0, 0, 0, 0, 0, 0 },
	{ 404, NULL, 0, 0, 0, 0, 0, 0 },
	{ 406, NULL, 0, 0, 0, 0, 0, 0 },
	{ 500, NULL, 0, 0, 0, 0, 0, 0 },
	{ 0, NULL, 0, 0, 0, 0, 0, 0 },
	{ -200, NULL, 0, 0, 0, 0, 0, 0 },
	{ 200, NULL, 1, 0, 0, 0, 0, 0 },
	{ 200, NULL, 0, 1, 0, 0, 0, 0 },
	{ 200, "public", 1, 0, 0, 0, 0, 0 },
	{ 200, "no-store", 0, 0, 0, 0, 0, 0 },
	{ 200, "private", 0, 0, 0, 0, 0, 0 },
	{ 200, "private=\"x-a\"", 0, 0, 0, 0, 0, 0 },
	{ 200, "no-cache", 0, 0, 0, 0, 0, 0 },
	{ 200, "No-Cache=\"set-cookie\"", 0, 0, 0, 0, 0, 0 },
	{ 200, "max-age=120, NO-STORE", 0, 0, 0, 0, 0, 0 },
	{ 200, "max-age=120", 0, 0, 1, 120, 30, 300 },
	{ 200, "MAX-AGE=120", 0, 0, 1, 120, 30, 300 },
	{ 200, "max-age=\"120\"", 0, 0, 1, 120, 30, 300 },
	{ 200, "max-age=120, s-maxage=10", 0, 0, 1, 10, 30, 300 },
	{ 200, "s-maxage=10, max-age=120", 0, 0, 1, 10, 30, 300 },
	{ 200, "s-maxage=0, max-age=120", 0, 0, 0, 0, 0, 0 },
	{ 200, "max-age=0", 0, 0, 0, 0, 0, 0 },
	{ 200, "max-age=abc", 0, 0, 0, 0, 0, 0 },
	{ 200, "max-age=-5", 0, 0, 0, 0, 0, 0 },
	{ 200, "max-age=", 0, 0, 0, 0, 0, 0 },
	{ 200, "max-age", 0, 0, 0, 0, 0, 0 },
	{ 200, "max-age=5, max-age=50", 0, 0, 1, 5, 30, 300 },
	{ 200, "max-age=99999999999999999999999", 0, 0, 1, 2147483648u,
	    30, 300 },
	{ 200, "max-age=2147483649", 0, 0, 1, 2147483648u, 30, 300 },
	{ 200, "public, max-age=10, immutable", 0, 0, 1, 10, 30, 300 },
	{ 200, "max-age=10, stale-while-revalidate=5", 0, 0, 1, 10, 5, 300 },
	{ 200, "max-age=10, stale-if-error=7", 0, 0, 1, 10, 30, 7 },
	{ 200, "stale-while-revalidate=0, stale-if-error=0", 0, 0, 1, 60, 0,
	    0 },
	{ 200, "stale-while-revalidate=x", 0, 0, 1, 60, 0, 300 },
	{ 200, "must-revalidate", 0, 0, 1, 60, 0, 0 },
	{ 200, "proxy-revalidate, max-age=5", 0, 0, 1, 5, 0, 0 },
	{ 200, "must-revalidate, stale-if-error=9", 0, 0, 1, 60, 0, 9 },
	{ 200, "x-max-age=5, foo=\"max-age=1\"", 0, 0, 1, 60, 30, 300 },
	{ 200, "foo=\"a, no-store\", max-age=9", 0, 0, 1, 9, 30, 300 },
	{ 200, "", 0, 0, 1, 60, 30, 300 },
	{ 200, ",,,", 0, 0, 1, 60, 30, 300 },
};

START_TEST(test_response_policy)
{
	struct cache_resp_in	 in;
	struct cache_policy	 p;

	memset(&in, 0, sizeof(in));
	in.status = resp_cases[_i].status;
	in.cache_control = resp_cases[_i].cc;
	in.has_set_cookie = resp_cases[_i].cookie;
	in.has_vary_star = resp_cases[_i].varystar;
	in.default_ttl_s = 60;
	in.swr_s = 30;
	in.sie_s = 300;
	memset(&p, 0xa5, sizeof(p));
	cache_response_policy(&in, &p);
	ck_assert_msg(p.storable == resp_cases[_i].storable &&
	    p.ttl_s == resp_cases[_i].ttl && p.swr_s == resp_cases[_i].swr &&
	    p.sie_s == resp_cases[_i].sie,
	    "%d \"%s\": storable %d ttl %llu swr %llu sie %llu",
	    resp_cases[_i].status,
	    resp_cases[_i].cc ? resp_cases[_i].cc : "(null)", p.storable,
	    (unsigned long long)p.ttl_s, (unsigned long long)p.swr_s,
	    (unsigned long long)p.sie_s);
}
END_TEST

START_TEST(test_response_policy_edges)
{
	struct cache_resp_in	 in;
	struct cache_policy	 p;
	char			*big;

	memset(&in, 0, sizeof(in));
	in.status = 200;
	/* a default ttl of 0 and no max-age: not storable */
	cache_response_policy(&in, &p);
	ck_assert_int_eq(p.storable, 0);
	in.cache_control = "max-age=5";
	cache_response_policy(&in, &p);
	ck_assert_int_eq(p.storable, 1);
	ck_assert_uint_eq(p.ttl_s, 5);
	ck_assert_uint_eq(p.swr_s, 0);
	/* a huge configured default is kept */
	in.cache_control = NULL;
	in.default_ttl_s = UINT64_MAX;
	cache_response_policy(&in, &p);
	ck_assert_uint_eq(p.ttl_s, UINT64_MAX);
	/* 1 MB of junk, and 1 MB of directives ending in no-store */
	big = fill(BIG, 'x');
	in.cache_control = big;
	cache_response_policy(&in, &p);
	ck_assert_int_eq(p.storable, 1);
	memset(big, ',', BIG);
	memcpy(big + BIG - 8, "no-store", 8);
	cache_response_policy(&in, &p);
	ck_assert_int_eq(p.storable, 0);
	ck_assert_int_eq(cache_request_directive(big, big), CACHE_REQ_NO_STORE);
	free(big);
}
END_TEST

/*
 * Other statuses with a configured lifetime (cache-ttl-status)
 */

static const struct {
	int		 status;
	uint64_t	 status_ttl;	/* cache-ttl-status, 0: none */
	const char	*cc;
	int		 cookie;
	int		 storable;
	uint64_t	 ttl;
} status_cases[] = {
	/* configured: stored for its own lifetime, never stale */
	{ 404, 120, NULL, 0, 1, 120 },
	{ 400, 5, NULL, 0, 1, 5 },
	{ 203, 7, NULL, 0, 1, 7 },
	{ 300, 7, NULL, 0, 1, 7 },
	{ 301, 7, NULL, 0, 1, 7 },
	{ 308, 7, NULL, 0, 1, 7 },
	{ 405, 7, NULL, 0, 1, 7 },
	{ 410, 7, NULL, 0, 1, 7 },
	{ 414, 7, NULL, 0, 1, 7 },
	{ 501, 7, NULL, 0, 1, 7 },
	/* not configured (the default): not stored */
	{ 404, 0, NULL, 0, 0, 0 },
	{ 400, 0, NULL, 0, 0, 0 },
	{ 501, 0, NULL, 0, 0, 0 },
	{ 404, 0, "max-age=60", 0, 0, 0 },
	/* never, whatever the caller passes */
	{ 401, 60, NULL, 0, 0, 0 },
	{ 403, 60, NULL, 0, 0, 0 },
	{ 406, 60, NULL, 0, 0, 0 },
	{ 409, 60, NULL, 0, 0, 0 },
	{ 429, 60, NULL, 0, 0, 0 },
	{ 500, 60, NULL, 0, 0, 0 },
	{ 502, 60, NULL, 0, 0, 0 },
	{ 503, 60, NULL, 0, 0, 0 },
	{ 504, 60, NULL, 0, 0, 0 },
	{ 302, 60, NULL, 0, 0, 0 },
	{ 304, 60, NULL, 0, 0, 0 },
	{ 201, 60, NULL, 0, 0, 0 },
	{ 0, 60, NULL, 0, 0, 0 },
	{ -404, 60, NULL, 0, 0, 0 },
	/* upstream still decides: no-store, private, no-cache, cookies */
	{ 404, 60, "no-store", 0, 0, 0 },
	{ 404, 60, "private", 0, 0, 0 },
	{ 404, 60, "no-cache", 0, 0, 0 },
	{ 404, 60, NULL, 1, 0, 0 },
	{ 404, 60, "max-age=0", 0, 0, 0 },
	{ 404, 60, "max-age=5", 0, 1, 5 },
	{ 404, 60, "s-maxage=9, max-age=5", 0, 1, 9 },
	/* upstream stale windows do not apply to them */
	{ 404, 60, "stale-while-revalidate=30, stale-if-error=600", 0, 1, 60 },
	/* a 200 keeps cache-ttl (60 here), not the status lifetime */
	{ 200, 5, NULL, 0, 1, 60 },
};

START_TEST(test_response_policy_status)
{
	struct cache_resp_in	 in;
	struct cache_policy	 p;

	memset(&in, 0, sizeof(in));
	in.status = status_cases[_i].status;
	in.status_ttl_s = status_cases[_i].status_ttl;
	in.cache_control = status_cases[_i].cc;
	in.has_set_cookie = status_cases[_i].cookie;
	in.default_ttl_s = 60;
	in.swr_s = 30;
	in.sie_s = 300;
	memset(&p, 0xa5, sizeof(p));
	cache_response_policy(&in, &p);
	ck_assert_msg(p.storable == status_cases[_i].storable &&
	    p.ttl_s == status_cases[_i].ttl,
	    "%d (status ttl %llu) \"%s\"%s: storable %d ttl %llu",
	    status_cases[_i].status,
	    (unsigned long long)status_cases[_i].status_ttl,
	    status_cases[_i].cc ? status_cases[_i].cc : "(null)",
	    status_cases[_i].cookie ? " Set-Cookie" : "", p.storable,
	    (unsigned long long)p.ttl_s);
	if (in.status == 200) {
		ck_assert_uint_eq(p.swr_s, 30);
		ck_assert_uint_eq(p.sie_s, 300);
	} else {
		/* never served stale, never a stale-if-error fallback */
		ck_assert_uint_eq(p.swr_s, 0);
		ck_assert_uint_eq(p.sie_s, 0);
	}
}
END_TEST

START_TEST(test_status_configurable)
{
	static const int	 yes[] = {
		203, 300, 301, 308, 400, 404, 405, 410, 414, 501,
	};
	size_t			 i;
	int			 st, n = 0;

	for (i = 0; i < NELEM(yes); i++)
		ck_assert_msg(cache_status_configurable(yes[i]), "%d", yes[i]);
	for (st = -1000; st < 1000; st++)
		n += cache_status_configurable(st);
	ck_assert_int_eq(n, (int)NELEM(yes));
	ck_assert(!cache_status_configurable(200));
	ck_assert(!cache_status_configurable(401));
	ck_assert(!cache_status_configurable(500));
}
END_TEST

/* a 404 lives its lifetime, then is gone: no SWR, no SIE (time passed in) */
START_TEST(test_status_freshness)
{
	struct cache_resp_in	 in;
	struct cache_policy	 p, ok;
	const int64_t		 t = 1000;

	memset(&in, 0, sizeof(in));
	in.status = 404;
	in.status_ttl_s = 60;
	in.default_ttl_s = 300;
	in.swr_s = 30;
	in.sie_s = 86400;
	cache_response_policy(&in, &p);
	ck_assert_int_eq(cache_freshness(t, &p, t), CACHE_FRESH);
	ck_assert_int_eq(cache_freshness(t, &p, t + 59), CACHE_FRESH);
	ck_assert_int_eq(cache_freshness(t, &p, t + 60), CACHE_EXPIRED);
	ck_assert_int_eq(cache_freshness(t, &p, t + 86399), CACHE_EXPIRED);
	/* the same windows keep a 200 servable stale */
	in.status = 200;
	cache_response_policy(&in, &ok);
	ck_assert_int_eq(cache_freshness(t, &ok, t + 300), CACHE_STALE_SWR);
	ck_assert_int_eq(cache_freshness(t, &ok, t + 331), CACHE_STALE_SIE);
	/* upstream asking for stale-if-error on a 404 does not get it */
	in.status = 404;
	in.cache_control = "max-age=10, stale-if-error=3600";
	cache_response_policy(&in, &p);
	ck_assert_uint_eq(p.ttl_s, 10);
	ck_assert_int_eq(cache_freshness(t, &p, t + 10), CACHE_EXPIRED);
}
END_TEST

/*
 * Freshness
 */

START_TEST(test_freshness_windows)
{
	struct cache_policy	 p = { 1, 60, 30, 120 };
	const int64_t		 t = 1000;

	ck_assert_int_eq(cache_freshness(t, &p, t), CACHE_FRESH);
	ck_assert_int_eq(cache_freshness(t, &p, t + 59), CACHE_FRESH);
	ck_assert_int_eq(cache_freshness(t, &p, t + 60), CACHE_STALE_SWR);
	ck_assert_int_eq(cache_freshness(t, &p, t + 89), CACHE_STALE_SWR);
	ck_assert_int_eq(cache_freshness(t, &p, t + 90), CACHE_STALE_SIE);
	ck_assert_int_eq(cache_freshness(t, &p, t + 179), CACHE_STALE_SIE);
	ck_assert_int_eq(cache_freshness(t, &p, t + 180), CACHE_EXPIRED);
	ck_assert_int_eq(cache_freshness(t, &p, INT64_MAX), CACHE_EXPIRED);

	/* SIE shorter than SWR: SWR, then expired */
	p.sie_s = 10;
	ck_assert_int_eq(cache_freshness(t, &p, t + 69), CACHE_STALE_SWR);
	ck_assert_int_eq(cache_freshness(t, &p, t + 89), CACHE_STALE_SWR);
	ck_assert_int_eq(cache_freshness(t, &p, t + 90), CACHE_EXPIRED);
	/* no windows */
	p.swr_s = p.sie_s = 0;
	ck_assert_int_eq(cache_freshness(t, &p, t + 59), CACHE_FRESH);
	ck_assert_int_eq(cache_freshness(t, &p, t + 60), CACHE_EXPIRED);
	/* SIE only */
	p.sie_s = 5;
	ck_assert_int_eq(cache_freshness(t, &p, t + 60), CACHE_STALE_SIE);
	ck_assert_int_eq(cache_freshness(t, &p, t + 64), CACHE_STALE_SIE);
	ck_assert_int_eq(cache_freshness(t, &p, t + 65), CACHE_EXPIRED);
	/* a ttl of 1 */
	p.ttl_s = 1;
	p.sie_s = 0;
	ck_assert_int_eq(cache_freshness(t, &p, t), CACHE_FRESH);
	ck_assert_int_eq(cache_freshness(t, &p, t + 1), CACHE_EXPIRED);
}
END_TEST

START_TEST(test_freshness_edges)
{
	struct cache_policy	 p = { 1, 60, 30, 120 };

	/* a clock that went backwards */
	ck_assert_int_eq(cache_freshness(1000, &p, 999), CACHE_FRESH);
	ck_assert_int_eq(cache_freshness(1000, &p, INT64_MIN), CACHE_FRESH);
	/* not storable, NULL */
	p.storable = 0;
	ck_assert_int_eq(cache_freshness(1000, &p, 1000), CACHE_EXPIRED);
	ck_assert_int_eq(cache_freshness(1000, NULL, 1000), CACHE_EXPIRED);
	/* saturating sums */
	p.storable = 1;
	p.ttl_s = UINT64_MAX;
	p.swr_s = UINT64_MAX;
	p.sie_s = UINT64_MAX;
	ck_assert_int_eq(cache_freshness(INT64_MIN, &p, INT64_MAX - 1),
	    CACHE_FRESH);
	ck_assert_int_eq(cache_freshness(INT64_MIN, &p, INT64_MAX),
	    CACHE_EXPIRED);
	p.ttl_s = 10;
	ck_assert_int_eq(cache_freshness(0, &p, INT64_MAX), CACHE_STALE_SWR);
	ck_assert_int_eq(cache_freshness(-5, &p, 4), CACHE_FRESH);
	ck_assert_int_eq(cache_freshness(-5, &p, 5), CACHE_STALE_SWR);
}
END_TEST

START_TEST(test_age)
{
	ck_assert_int_eq(cache_age(1000, 1000), 0);
	ck_assert_int_eq(cache_age(1000, 1061), 61);
	ck_assert_int_eq(cache_age(1000, 999), 0);
	ck_assert_int_eq(cache_age(1000, INT64_MIN), 0);
	ck_assert_int_eq(cache_age(0, INT64_MAX), INT64_C(2147483648));
	ck_assert_int_eq(cache_age(INT64_MIN, INT64_MAX), INT64_C(2147483648));
	ck_assert_int_eq(cache_age(0, INT64_C(2147483647)),
	    INT64_C(2147483647));
	ck_assert_int_eq(cache_age(-10, 10), 20);
}
END_TEST

/*
 * Validators
 */

START_TEST(test_etag)
{
	char	 a[CACHE_ETAG_LEN], b[CACHE_ETAG_LEN], small[CACHE_ETAG_LEN];
	char	*big;
	size_t	 i;

	cache_etag("[{\"id\":1}]", 10, a, sizeof(a));
	cache_etag("[{\"id\":1}]", 10, b, sizeof(b));
	ck_assert_str_eq(a, b);
	ck_assert_int_eq(strlen(a), 24);
	ck_assert_int_eq(a[0], '"');
	ck_assert_int_eq(a[23], '"');
	for (i = 1; i < 23; i++)
		ck_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz0123456789-_", a[i]) != NULL);
	cache_etag("[{\"id\":2}]", 10, b, sizeof(b));
	ck_assert_str_ne(a, b);
	cache_etag("[{\"id\":1}]", 9, b, sizeof(b));
	ck_assert_str_ne(a, b);
	/* empty bodies, NULL allowed */
	cache_etag("", 0, a, sizeof(a));
	cache_etag(NULL, 0, b, sizeof(b));
	ck_assert_str_eq(a, b);
	ck_assert_int_eq(strlen(a), 24);
	/* binary bodies with NULs */
	cache_etag("\0a", 2, a, sizeof(a));
	cache_etag("\0b", 2, b, sizeof(b));
	ck_assert_str_ne(a, b);
	/* 1 MB */
	big = fill(BIG, 'z');
	cache_etag(big, BIG, a, sizeof(a));
	big[BIG / 2] = 'y';
	cache_etag(big, BIG, b, sizeof(b));
	ck_assert_str_ne(a, b);
	free(big);
	/* too small an out: "" */
	memset(small, 'x', sizeof(small));
	cache_etag("x", 1, small, sizeof(small) - 1);
	ck_assert_str_eq(small, "");
	cache_etag("x", 1, NULL, 0);
	cache_etag(NULL, 5, a, sizeof(a));
	ck_assert_str_eq(a, "");
}
END_TEST

#define ET	"\"abc\""

static const struct {
	const char	*inm, *etag;
	int		 want;
} inm_cases[] = {
	{ ET, ET, 1 },
	{ "\"abd\"", ET, 0 },
	{ "W/" ET, ET, 1 },
	{ ET, "W/" ET, 1 },
	{ "W/" ET, "W/" ET, 1 },
	{ "w/" ET, ET, 0 },			/* W/ is case-sensitive */
	{ "*", ET, 1 },
	{ "  *  ", ET, 1 },
	{ "*", NULL, 0 },
	{ "\"x\", " ET, ET, 1 },
	{ "\"x\",W/" ET ",\"y\"", ET, 1 },
	{ "\"x\" , \"y\"", ET, 0 },
	{ ", ," ET ",,", ET, 1 },
	{ "\"\"", ET, 0 },
	{ "\"\"", "\"\"", 1 },
	{ "", ET, 0 },
	{ "  ", ET, 0 },
	{ NULL, ET, 0 },
	{ ET, NULL, 0 },
	{ "abc", ET, 0 },			/* unquoted */
	{ "abc", "abc", 0 },
	{ "\"abc", ET, 0 },
	{ "W/abc", ET, 0 },
	{ ET " junk", ET, 0 },
	{ ET "x", ET, 0 },
	{ "*, " ET, ET, 0 },			/* '*' only alone */
	{ ET ", *", ET, 0 },
	{ "\"a bc\"", "\"a bc\"", 0 },		/* space is not etagc */
	{ "\"ab\\\"", ET, 0 },
	{ ET ", garbage", ET, 0 },
	{ "\"\xc3\xa9\"", "\"\xc3\xa9\"", 1 },	/* obs-text */
	{ "\"\x7f\"", "\"\x7f\"", 0 },
	{ ET, "abc", 0 },
	{ ET, "", 0 },
	{ ET, ET " ", 0 },
};

START_TEST(test_etag_match)
{
	ck_assert_msg(cache_etag_match(inm_cases[_i].inm, inm_cases[_i].etag)
	    == inm_cases[_i].want, "%s vs %s",
	    inm_cases[_i].inm ? inm_cases[_i].inm : "(null)",
	    inm_cases[_i].etag ? inm_cases[_i].etag : "(null)");
}
END_TEST

START_TEST(test_etag_match_real)
{
	char		 e[CACHE_ETAG_LEN], inm[128], *big;
	uint32_t	 st = 99;
	size_t		 i;
	char		*g;

	cache_etag("body", 4, e, sizeof(e));
	ck_assert(cache_etag_match(e, e));
	snprintf(inm, sizeof(inm), "W/%s", e);
	ck_assert(cache_etag_match(inm, e));
	snprintf(inm, sizeof(inm), "\"old\", %s", e);
	ck_assert(cache_etag_match(inm, e));
	/* a 1 MB list with the match last, then without it */
	big = malloc(BIG + 64);
	ck_assert_ptr_nonnull(big);
	for (i = 0; i + 4 <= BIG; i += 4)
		memcpy(big + i, "\"a\",", 4);
	memcpy(big + i, e, strlen(e) + 1);
	ck_assert(cache_etag_match(big, e));
	big[i] = '\0';
	ck_assert(!cache_etag_match(big, e));
	free(big);
	for (i = 0; i < 300; i++) {
		g = garbage(&st, 1 + rnd(&st) % 200, NULL);
		ck_assert(cache_etag_match(g, e) == 0 ||
		    strstr(g, e + 1) != NULL || strchr(g, '*') != NULL);
		(void)cache_etag_match(e, g);
		(void)cache_etag_match(g, g);
		free(g);
	}
}
END_TEST

static void
add(Suite *s, const char *name, const TTest *t, int n)
{
	TCase	*tc;

	tc = tcase_create(name);
	tcase_set_timeout(tc, TIMEOUT_S);
	if (n > 0)
		tcase_add_loop_test(tc, t, 0, n);
	else
		tcase_add_test(tc, t);
	suite_add_tcase(s, tc);
}

static Suite *
cache_suite(void)
{
	Suite	*s;

	s = suite_create("cache");
	add(s, "canon_same", test_canon_same, NELEM(same_query));
	add(s, "canon_pairs", test_canon_pairs, NELEM(pairs));
	add(s, "canon_shapes", test_canon_shapes, 0);
	add(s, "canon_malformed", test_canon_malformed, NELEM(bad_query));
	add(s, "canon_bounds", test_canon_bounds, 0);
	add(s, "canon_garbage", test_canon_garbage, 4);
	add(s, "key_fields", test_key_fields, NELEM(key_fields));
	add(s, "key_equivalences", test_key_equivalences, 0);
	add(s, "key_identity", test_key_identity, 0);
	add(s, "key_concat", test_key_concat, 0);
	add(s, "key_hostile", test_key_hostile, 0);
	add(s, "identity", test_identity, 0);
	add(s, "tags", test_tags, NELEM(tag_cases));
	add(s, "tags_bounds", test_tags_bounds, 0);
	add(s, "tags_garbage", test_tags_garbage, 4);
	add(s, "write_tag", test_write_tag, NELEM(write_cases));
	add(s, "write_tag_agrees", test_write_tag_agrees, 0);
	add(s, "request_directive", test_request_directive,
	    NELEM(req_cases));
	add(s, "response_policy", test_response_policy, NELEM(resp_cases));
	add(s, "response_policy_edges", test_response_policy_edges, 0);
	add(s, "response_policy_status", test_response_policy_status,
	    NELEM(status_cases));
	add(s, "status_configurable", test_status_configurable, 0);
	add(s, "status_freshness", test_status_freshness, 0);
	add(s, "freshness_windows", test_freshness_windows, 0);
	add(s, "freshness_edges", test_freshness_edges, 0);
	add(s, "age", test_age, 0);
	add(s, "etag", test_etag, 0);
	add(s, "etag_match", test_etag_match, NELEM(inm_cases));
	add(s, "etag_match_real", test_etag_match_real, 0);
	return s;
}

int
main(void)
{
	if (crypto_setup() == -1)
		return EXIT_FAILURE;
	return ck_run(cache_suite());
}
