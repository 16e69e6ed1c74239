/* check_store: the SQLite cache store, through its API */
#include "config.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include <sqlite3.h>

#include "store.h"
#include "ck_run.h"

#define TIMEOUT_S	30
#define CRASH_ROUNDS	20
#define CRASH_KEYS	200
#define CRASH_MAX	(96 * 1024)
#define FILE_BODY	(16 * 1024)	/* store.c's FILE_MIN */

static char	 root[64];	/* per TCase, removed by the parent */
static char	 dir[128];	/* per test, inside root */
static char	 path[160];

static void
root_setup(void)
{
	snprintf(root, sizeof(root), "/tmp/check_store.XXXXXX");
	if (mkdtemp(root) == NULL)
		abort();
}

static int
rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* unchecked, so it also runs after a test that failed */
static void
root_teardown(void)
{
	nftw(root, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}

static void
setup(void)
{
	static unsigned	 n;

	snprintf(dir, sizeof(dir), "%s/%u.%ld", root, n++, (long)getpid());
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/cache.db", dir);
}

static void
teardown(void)
{
	char		 p[512];
	DIR		*d;
	struct dirent	*de;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

/* the body-file directory of path */
static const char *
files_dir(void)
{
	static char	p[200];

	snprintf(p, sizeof(p), "%s.d", path);
	return p;
}

static void
mkkey(unsigned n, unsigned char key[CACHE_KEY_LEN])
{
	memset(key, 0x5a, CACHE_KEY_LEN);
	key[0] = n & 0xff;
	key[1] = (n >> 8) & 0xff;
}

/* an entry borrowing hdr and body */
static void
mkentry(struct store_entry *e, const char *hdr, const void *body,
    size_t len)
{
	memset(e, 0, sizeof(*e));
	e->status = 200;
	e->headers = (char *)hdr;
	e->headers_len = hdr ? strlen(hdr) : 0;
	e->body = (unsigned char *)body;
	e->body_len = len;
	snprintf(e->etag, sizeof(e->etag), "\"e%zu\"", len);
	e->stored_at = 1700000000;
	e->ttl_s = 60;
}

/* put n bytes of body under key number k, with up to two tags */
static int
put_n(struct store *st, unsigned k, const char *p, size_t n,
    const char *t1, const char *t2)
{
	unsigned char		 key[CACHE_KEY_LEN];
	char			 tags[2][CACHE_TAG_MAX];
	struct store_entry	 e;
	unsigned char		*body;
	size_t			 nt = 0;
	int			 r;

	ck_assert_ptr_nonnull(body = malloc(n + 1));
	memset(body, 'a' + k % 26, n);
	mkkey(k, key);
	mkentry(&e, NULL, body, n);
	if (t1)
		snprintf(tags[nt++], CACHE_TAG_MAX, "%s", t1);
	if (t2)
		snprintf(tags[nt++], CACHE_TAG_MAX, "%s", t2);
	r = store_put(st, key, p, &e, tags, nt);
	free(body);
	return r;
}

/* 1 hit, 0 miss */
static int
has(struct store *st, unsigned k)
{
	unsigned char		 key[CACHE_KEY_LEN];
	struct store_entry	 e;
	int			 r;

	mkkey(k, key);
	r = store_get(st, key, &e);
	ck_assert_int_ge(r, 0);
	store_entry_fini(&e);
	return r;
}

START_TEST(round_trip)
{
	static const unsigned char	 bin[] = "a\0b\0\xff\x01\r\n\0";
	static const char		 hdr[] = "Content-Type: text/plain"
	    "\r\nContent-Range: 0-1/2\r\n";
	unsigned char			 key[CACHE_KEY_LEN];
	unsigned char			 key2[CACHE_KEY_LEN];
	struct store_entry		 e, g;
	struct store			*st;

	ck_assert_ptr_nonnull(st = store_open(path, 0));
	mkkey(1, key);
	mkentry(&e, hdr, bin, sizeof(bin));
	e.status = 206;
	e.stored_at = -5;
	e.ttl_s = 61;
	e.swr_s = 30;
	e.sie_s = UINT64_MAX;	/* clamped to INT64_MAX */
	snprintf(e.etag, sizeof(e.etag), "\"abcdefghijklmnopqrstuv\"");
	ck_assert_int_eq(store_put(st, key, "/rest/v1/todos", &e, NULL, 0), 0);

	ck_assert_int_eq(store_get(st, key, &g), 1);
	ck_assert_int_eq(g.status, 206);
	ck_assert_uint_eq(g.headers_len, strlen(hdr));
	ck_assert_mem_eq(g.headers, hdr, strlen(hdr));
	ck_assert_int_eq(g.headers[g.headers_len], '\0');
	ck_assert_uint_eq(g.body_len, sizeof(bin));
	ck_assert_mem_eq(g.body, bin, sizeof(bin));
	ck_assert_str_eq(g.etag, "\"abcdefghijklmnopqrstuv\"");
	ck_assert_int_eq(g.stored_at, -5);
	ck_assert_uint_eq(g.ttl_s, 61);
	ck_assert_uint_eq(g.swr_s, 30);
	ck_assert_uint_eq(g.sie_s, INT64_MAX);
	store_entry_fini(&g);
	ck_assert_ptr_null(g.body);
	store_entry_fini(&g);		/* twice is harmless */

	/* empty headers and body, given as NULL pointers */
	mkkey(2, key2);
	mkentry(&e, NULL, NULL, 0);
	e.etag[0] = '\0';
	ck_assert_int_eq(store_put(st, key2, NULL, &e, NULL, 0), 0);
	ck_assert_int_eq(store_get(st, key2, &g), 1);
	ck_assert_uint_eq(g.headers_len, 0);
	ck_assert_uint_eq(g.body_len, 0);
	ck_assert_ptr_nonnull(g.body);
	ck_assert_ptr_nonnull(g.headers);
	ck_assert_str_eq(g.etag, "");
	store_entry_fini(&g);

	ck_assert_uint_eq(store_count(st), 2);
	ck_assert_uint_eq(store_bytes(st), strlen(hdr) + sizeof(bin));
	ck_assert_int_eq(store_check(st), 1);
	store_close(st);
	store_close(NULL);
}
END_TEST

START_TEST(miss_and_replace)
{
	unsigned char		 key[CACHE_KEY_LEN];
	struct store_entry	 g;
	struct store		*st;

	ck_assert_ptr_nonnull(st = store_open(path, 0));
	mkkey(7, key);
	memset(&g, 0xee, sizeof(g));
	ck_assert_int_eq(store_get(st, key, &g), 0);
	ck_assert_ptr_null(g.body);	/* zeroed on a miss */
	store_entry_fini(&g);

	ck_assert_int_eq(put_n(st, 7, "/a", 100, "public.a", NULL), 0);
	ck_assert_int_eq(put_n(st, 7, "/b", 40, "public.b", NULL), 0);
	ck_assert_uint_eq(store_count(st), 1);
	ck_assert_uint_eq(store_bytes(st), 40);
	ck_assert_int_eq(store_get(st, key, &g), 1);
	ck_assert_uint_eq(g.body_len, 40);
	store_entry_fini(&g);
	/* the old version's tags and path went with it */
	ck_assert_int_eq(store_invalidate_tag(st, "public.a"), 0);
	ck_assert_int_eq(store_purge_prefix(st, "/a"), 0);
	ck_assert_int_eq(store_invalidate_tag(st, "public.b"), 1);
	ck_assert_uint_eq(store_count(st), 0);
	ck_assert_uint_eq(store_bytes(st), 0);
	store_close(st);
}
END_TEST

START_TEST(tag_invalidation)
{
	char		 t[3][CACHE_TAG_MAX] = { "public.a", "public.b",
	    "public.a" };
	unsigned char	 key[CACHE_KEY_LEN];
	struct store_entry e;
	struct store	*st;

	ck_assert_ptr_nonnull(st = store_open(path, 0));
	ck_assert_int_eq(put_n(st, 1, "/1", 10, "public.a", "public.b"), 0);
	ck_assert_int_eq(put_n(st, 2, "/2", 20, "public.b", "public.c"), 0);
	ck_assert_int_eq(put_n(st, 3, "/3", 30, "public.c", NULL), 0);
	ck_assert_int_eq(put_n(st, 4, "/4", 40, "public.d", NULL), 0);
	ck_assert_int_eq(store_invalidate_tag(st, "public.nope"), 0);
	ck_assert_int_eq(store_invalidate_tag(st, "public.b"), 2);
	ck_assert_int_eq(has(st, 1), 0);
	ck_assert_int_eq(has(st, 2), 0);
	ck_assert_int_eq(has(st, 3), 1);
	ck_assert_uint_eq(store_bytes(st), 70);
	/* entry 1's other tag went with it */
	ck_assert_int_eq(store_invalidate_tag(st, "public.a"), 0);
	ck_assert_int_eq(store_invalidate_tag(st, "public.c"), 1);
	ck_assert_int_eq(store_invalidate_tag(st, "public.c"), 0);
	ck_assert_uint_eq(store_count(st), 1);
	ck_assert_uint_eq(store_bytes(st), 40);

	/* a tag given twice is stored once; no LIKE semantics in tags */
	mkkey(5, key);
	mkentry(&e, "X: y\r\n", "z", 1);
	ck_assert_int_eq(store_put(st, key, "/5", &e, t, 3), 0);
	ck_assert_int_eq(store_invalidate_tag(st, "public.%"), 0);
	ck_assert_int_eq(store_invalidate_tag(st, "public.a"), 1);
	ck_assert_int_eq(store_invalidate_tag(st, "public.d"), 1);
	ck_assert_uint_eq(store_count(st), 0);
	ck_assert_uint_eq(store_bytes(st), 0);
	store_close(st);
}
END_TEST

START_TEST(prefix)
{
	static const char *const paths[] = {
		"/rest/v1/todos",		/* 0 */
		"/rest/v1/todos_archive",	/* 1 */
		"/rest/v1/tod",			/* 2 */
		"/rest/v1/t%dos",		/* 3 */
		"/rest/v1/a_b",			/* 4 */
		"/rest/v1/axb",			/* 5 */
		"/rest/v2/x",			/* 6 */
		"/REST/v1/todos",		/* 7 */
		"\xff\xff",			/* 8 */
		"\xff\xff" "a",			/* 9 */
		"\xff\xfe",			/* 10 */
	};
	struct store	*st;
	unsigned	 i;

	ck_assert_ptr_nonnull(st = store_open(path, 0));
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		ck_assert_int_eq(put_n(st, i, paths[i], 1, NULL, NULL), 0);
	ck_assert_int_eq(store_purge_prefix(st, "/rest/v1/t%"), 1);
	ck_assert_int_eq(has(st, 3), 0);
	ck_assert_int_eq(store_purge_prefix(st, "/rest/v1/a_"), 1);
	ck_assert_int_eq(has(st, 4), 0);
	ck_assert_int_eq(has(st, 5), 1);
	ck_assert_int_eq(store_purge_prefix(st, "/rest/v1/todos"), 2);
	ck_assert_int_eq(has(st, 2), 1);
	ck_assert_int_eq(store_purge_prefix(st, "/rest/v1/todos/"), 0);
	ck_assert_int_eq(store_purge_prefix(st, "/rest/v1/"), 2);
	ck_assert_int_eq(has(st, 6), 1);
	ck_assert_int_eq(has(st, 7), 1);
	ck_assert_int_eq(store_purge_prefix(st, "\xff\xff"), 2);
	ck_assert_int_eq(has(st, 10), 1);
	ck_assert_uint_eq(store_count(st), 3);
	ck_assert_int_eq(store_purge_prefix(st, ""), 3);
	ck_assert_uint_eq(store_count(st), 0);
	ck_assert_uint_eq(store_bytes(st), 0);
	store_close(st);
}
END_TEST

START_TEST(purge_all)
{
	struct store	*st;
	unsigned	 i;

	ck_assert_ptr_nonnull(st = store_open(path, 0));
	ck_assert_int_eq(store_purge_all(st), 0);
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(put_n(st, i, "/x", 10, "public.t", NULL), 0);
	ck_assert_int_eq(store_purge_all(st), 5);
	ck_assert_uint_eq(store_count(st), 0);
	ck_assert_uint_eq(store_bytes(st), 0);
	ck_assert_int_eq(has(st, 0), 0);
	ck_assert_int_eq(store_invalidate_tag(st, "public.t"), 0);
	ck_assert_int_eq(put_n(st, 1, "/x", 10, "public.t", NULL), 0);
	ck_assert_int_eq(store_invalidate_tag(st, "public.t"), 1);
	ck_assert_int_eq(store_check(st), 1);
	store_close(st);
}
END_TEST

START_TEST(accounting)
{
	unsigned char		 key[CACHE_KEY_LEN];
	struct store_entry	 e;
	struct store		*st;

	ck_assert_ptr_nonnull(st = store_open(path, 0));
	mkkey(1, key);
	mkentry(&e, "A: b\r\n", "hello", 5);
	ck_assert_int_eq(store_put(st, key, "/a", &e, NULL, 0), 0);
	ck_assert_uint_eq(store_bytes(st), 6 + 5);
	ck_assert_int_eq(put_n(st, 2, "/b", 1000, NULL, NULL), 0);
	ck_assert_int_eq(put_n(st, 3, "/c", 0, NULL, NULL), 0);
	ck_assert_uint_eq(store_bytes(st), 1011);
	ck_assert_uint_eq(store_count(st), 3);
	ck_assert_int_eq(put_n(st, 2, "/b", 10, NULL, NULL), 0);
	ck_assert_uint_eq(store_bytes(st), 21);
	store_close(st);
	ck_assert_ptr_nonnull(st = store_open(path, 0));
	ck_assert_uint_eq(store_bytes(st), 21);
	ck_assert_uint_eq(store_count(st), 3);
	ck_assert_int_eq(store_purge_prefix(st, "/a"), 1);
	ck_assert_uint_eq(store_bytes(st), 10);
	ck_assert_uint_eq(store_evictions(st), 0);
	store_close(st);
}
END_TEST

START_TEST(lru)
{
	struct store	*st;

	ck_assert_ptr_nonnull(st = store_open(path, 300));
	ck_assert_int_eq(put_n(st, 'A', "/", 100, NULL, NULL), 0);
	ck_assert_int_eq(put_n(st, 'B', "/", 100, NULL, NULL), 0);
	ck_assert_int_eq(put_n(st, 'C', "/", 100, NULL, NULL), 0);
	ck_assert_uint_eq(store_bytes(st), 300);
	ck_assert_uint_eq(store_evictions(st), 0);
	ck_assert_int_eq(has(st, 'A'), 1);	/* A is now the newest */
	ck_assert_int_eq(put_n(st, 'D', "/", 100, NULL, NULL), 0);
	ck_assert_uint_eq(store_evictions(st), 1);
	ck_assert_int_eq(has(st, 'B'), 0);
	ck_assert_int_eq(put_n(st, 'E', "/", 100, NULL, NULL), 0);
	ck_assert_uint_eq(store_evictions(st), 2);
	ck_assert_int_eq(has(st, 'C'), 0);
	ck_assert_int_eq(has(st, 'A'), 1);
	ck_assert_int_eq(has(st, 'D'), 1);
	ck_assert_int_eq(has(st, 'E'), 1);
	ck_assert_uint_eq(store_count(st), 3);

	/* recency survives a restart: A is the oldest again */
	store_close(st);
	ck_assert_ptr_nonnull(st = store_open(path, 300));
	ck_assert_uint_eq(store_evictions(st), 0);
	ck_assert_int_eq(put_n(st, 'F', "/", 100, NULL, NULL), 0);
	ck_assert_int_eq(store_flush(st), 0);	/* eviction runs here */
	ck_assert_int_eq(has(st, 'A'), 0);
	ck_assert_int_eq(has(st, 'D'), 1);

	/* one big entry pushes out several */
	ck_assert_int_eq(put_n(st, 'G', "/", 250, NULL, NULL), 0);
	ck_assert_uint_eq(store_evictions(st), 4);
	ck_assert_uint_eq(store_count(st), 1);
	ck_assert_uint_eq(store_bytes(st), 250);
	ck_assert_int_eq(has(st, 'G'), 1);
	store_close(st);

	/* a smaller max_size applies at open */
	ck_assert_ptr_nonnull(st = store_open(path, 100));
	ck_assert_uint_eq(store_evictions(st), 1);
	ck_assert_uint_eq(store_count(st), 0);
	ck_assert_uint_eq(store_bytes(st), 0);
	store_close(st);
}
END_TEST

/*
 * An entry served from elsewhere (the memory set) after store_get() is
 * kept by store_touch(): without it, it is the one evicted.
 */
START_TEST(lru_touch)
{
	unsigned char		 key[CACHE_KEY_LEN];
	struct store_entry	 ea;
	struct store		*st;
	int			 touched;

	for (touched = 0; touched < 2; touched++) {
		teardown();
		setup();
		ck_assert_ptr_nonnull(st = store_open(path, 300));
		ck_assert_int_eq(put_n(st, 'A', "/", 100, NULL, NULL), 0);
		ck_assert_int_eq(put_n(st, 'B', "/", 100, NULL, NULL), 0);
		ck_assert_int_eq(put_n(st, 'C', "/", 100, NULL, NULL), 0);
		ck_assert_int_eq(store_flush(st), 0);
		mkkey('A', key);
		ck_assert_int_eq(store_get(st, key, &ea), 1);
		ck_assert_int_gt(ea.id, 0);
		/* B and C go; A, read once, is the oldest left */
		ck_assert_int_eq(put_n(st, 'D', "/", 100, NULL, NULL), 0);
		ck_assert_int_eq(put_n(st, 'E', "/", 100, NULL, NULL), 0);
		ck_assert_int_eq(store_flush(st), 0);
		ck_assert_uint_eq(store_evictions(st), 2);
		if (touched)
			store_touch(st, &ea);
		ck_assert_int_eq(put_n(st, 'F', "/", 100, NULL, NULL), 0);
		ck_assert_int_eq(store_flush(st), 0);
		ck_assert_int_eq(has(st, 'D'), !touched);
		ck_assert_int_eq(has(st, 'A'), touched);
		store_entry_fini(&ea);
		store_close(st);
	}
}
END_TEST

START_TEST(lru_many)
{
	struct store	*st;
	unsigned	 i, j;

	/* with many entries, recency is approximate but hot entries stay */
	ck_assert_ptr_nonnull(st = store_open(path, 1000 * 10));
	for (i = 0; i < 1000; i++)
		ck_assert_int_eq(put_n(st, i, "/", 10, NULL, NULL), 0);
	for (i = 1000; i < 3000; i++) {
		for (j = 0; j < 10; j++)
			ck_assert_int_eq(has(st, j), 1);
		ck_assert_int_eq(put_n(st, i, "/", 10, NULL, NULL), 0);
	}
	ck_assert_uint_eq(store_count(st), 1000);
	ck_assert_uint_eq(store_evictions(st), 2000);
	ck_assert_uint_le(store_bytes(st), 10000);
	ck_assert_int_eq(has(st, 500), 0);
	ck_assert_int_eq(has(st, 2999), 1);
	store_close(st);
}
END_TEST

START_TEST(too_big)
{
	struct store	*st;

	ck_assert_ptr_nonnull(st = store_open(path, 300));
	ck_assert_int_eq(put_n(st, 1, "/", 300, NULL, NULL), 0);
	ck_assert_int_eq(put_n(st, 2, "/", 301, NULL, NULL), -1);
	ck_assert_int_eq(has(st, 1), 1);
	ck_assert_int_eq(has(st, 2), 0);
	ck_assert_uint_eq(store_evictions(st), 0);
	/* replacing with something too big drops the old version */
	ck_assert_int_eq(put_n(st, 1, "/", 1000, NULL, NULL), -1);
	ck_assert_int_eq(has(st, 1), 0);
	ck_assert_uint_eq(store_count(st), 0);
	ck_assert_uint_eq(store_bytes(st), 0);
	store_close(st);

	/* 0 is unbounded */
	ck_assert_ptr_nonnull(st = store_open(path, 0));
	ck_assert_int_eq(put_n(st, 1, "/", 1 << 20, NULL, NULL), 0);
	ck_assert_uint_eq(store_bytes(st), 1 << 20);
	store_close(st);
}
END_TEST

START_TEST(persistence)
{
	unsigned char		 key[CACHE_KEY_LEN];
	struct store_entry	 g;
	struct store		*st;

	ck_assert_ptr_nonnull(st = store_open(path, 0));
	ck_assert_int_eq(put_n(st, 1, "/rest/v1/a", 11, "public.a", NULL), 0);
	ck_assert_int_eq(put_n(st, 2, "/rest/v1/b", 12, "public.b", NULL), 0);
	ck_assert_int_eq(has(st, 1), 1);
	store_close(st);

	ck_assert_ptr_nonnull(st = store_open(path, 0));
	ck_assert_uint_eq(store_count(st), 2);
	ck_assert_uint_eq(store_bytes(st), 23);
	mkkey(2, key);
	ck_assert_int_eq(store_get(st, key, &g), 1);
	ck_assert_uint_eq(g.body_len, 12);
	ck_assert_int_eq(g.body[0], 'a' + 2);
	ck_assert_str_eq(g.etag, "\"e12\"");
	store_entry_fini(&g);
	ck_assert_int_eq(store_invalidate_tag(st, "public.a"), 1);
	ck_assert_int_eq(store_purge_prefix(st, "/rest/v1/b"), 1);
	store_close(st);
}
END_TEST

START_TEST(file_mode)
{
	char		 wal[200];
	struct stat	 sb;
	struct store	*st;
	int		 fd;

	ck_assert_ptr_nonnull(st = store_open(path, 0));
	ck_assert_int_eq(put_n(st, 1, "/", 10, NULL, NULL), 0);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0600);
	snprintf(wal, sizeof(wal), "%s-wal", path);
	ck_assert_int_eq(stat(wal, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0600);
	store_close(st);
	teardown();

	/* an existing empty file with a loose mode is tightened */
	setup();
	ck_assert_int_ge(fd = open(path, O_CREAT | O_WRONLY, 0644), 0);
	ck_assert_int_eq(fchmod(fd, 0644), 0);
	close(fd);
	ck_assert_ptr_nonnull(st = store_open(path, 0));
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0600);
	store_close(st);
}
END_TEST

/* how many files in dir start with "cache.db.corrupt-" */
static int
count_aside(void)
{
	DIR		*d;
	struct dirent	*de;
	int		 n = 0;

	ck_assert_ptr_nonnull(d = opendir(dir));
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "cache.db.corrupt-", 17) == 0 &&
		    strstr(de->d_name, "-wal") == NULL)
			n++;
	closedir(d);
	return n;
}

static void
write_file(const char *p, const void *data, size_t len, off_t at)
{
	int	 fd;

	ck_assert_int_ge(fd = open(p, O_CREAT | O_WRONLY, 0600), 0);
	ck_assert_int_eq(pwrite(fd, data, len, at), (ssize_t)len);
	close(fd);
}

START_TEST(garbage)
{
	char		 junk[8192];
	struct store	*st;

	memset(junk, 'x', sizeof(junk));
	write_file(path, junk, sizeof(junk), 0);
	ck_assert_ptr_nonnull(st = store_open(path, 0));
	ck_assert_int_eq(count_aside(), 1);
	ck_assert_int_eq(store_check(st), 1);
	ck_assert_uint_eq(store_count(st), 0);
	ck_assert_int_eq(put_n(st, 1, "/", 10, "t", NULL), 0);
	ck_assert_int_eq(has(st, 1), 1);
	store_close(st);

	/* a short file */
	teardown();
	setup();
	write_file(path, "SQLite", 6, 0);
	ck_assert_ptr_nonnull(st = store_open(path, 0));
	ck_assert_int_eq(count_aside(), 1);
	ck_assert_int_eq(put_n(st, 1, "/", 10, "t", NULL), 0);
	store_close(st);
}
END_TEST

START_TEST(damaged)
{
	char		 junk[4096];
	struct store	*st;
	unsigned	 i;

	/* a real store whose b-tree pages are then overwritten */
	ck_assert_ptr_nonnull(st = store_open(path, 0));
	for (i = 0; i < 200; i++)
		ck_assert_int_eq(put_n(st, i, "/rest/v1/x", 50, "public.x",
		    "public.y"), 0);
	store_close(st);
	memset(junk, 0xa5, sizeof(junk));
	for (i = 1; i < 8; i++)
		write_file(path, junk, sizeof(junk), (off_t)i * 4096);
	ck_assert_ptr_nonnull(st = store_open(path, 0));
	ck_assert_int_eq(count_aside(), 1);
	ck_assert_int_eq(store_check(st), 1);
	ck_assert_uint_eq(store_count(st), 0);
	ck_assert_int_eq(put_n(st, 1, "/", 10, "t", NULL), 0);
	ck_assert_int_eq(has(st, 1), 1);
	store_close(st);
}
END_TEST

START_TEST(open_fails)
{
	char	 p[256];

	snprintf(p, sizeof(p), "%s/no/such/dir/cache.db", dir);
	ck_assert_ptr_null(store_open(p, 0));
	/* a directory is neither opened nor moved aside */
	ck_assert_ptr_null(store_open(dir, 0));
	ck_assert_int_eq(count_aside(), 0);
}
END_TEST

/*
 * How many files the body directory of path holds (-1: no directory):
 * with a body, or all (emptied ones are kept for reuse).
 */
static int
count_in_dir(int all)
{
	char		 p[512];
	struct stat	 sb;
	DIR		*d;
	struct dirent	*de;
	int		 n = 0;

	if ((d = opendir(files_dir())) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", files_dir(), de->d_name);
		n += all || (stat(p, &sb) == 0 && sb.st_size > 0);
	}
	closedir(d);
	return n;
}

static int
count_files(void)
{
	return count_in_dir(0);
}

/* the path of the single file holding a body, or "" */
static const char *
only_file(void)
{
	static char	 p[512];
	char		 q[512];
	struct stat	 sb;
	DIR		*d;
	struct dirent	*de;

	p[0] = '\0';
	if ((d = opendir(files_dir())) == NULL)
		return p;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(q, sizeof(q), "%s/%s", files_dir(), de->d_name);
		if (stat(q, &sb) == 0 && sb.st_size > 0)
			snprintf(p, sizeof(p), "%s", q);
	}
	closedir(d);
	return p;
}

/*
 * A body of 16 KiB and more lives in a file of its own: read back whole,
 * or as an open file; replaced, invalidated, purged and evicted with its
 * entry; kept over a reopen; files no entry names are removed at open,
 * what is not ours stays; a lost or cut file is a miss, not an error;
 * a file is never rewritten, so one held open keeps its bytes.
 */
/* key's entry has want (len bytes, headers of 8) whole and as a file */
static void
is_big_body(struct store *st, const unsigned char *key, const void *want,
    size_t len)
{
	static unsigned char	 buf[100001];
	struct store_entry	 g;
	int			 fd;

	ck_assert_uint_lt(len, sizeof(buf));
	ck_assert_int_eq(store_get(st, key, &g), 1);
	ck_assert_uint_eq(g.body_len, len);
	ck_assert_mem_eq(g.body, want, len);
	ck_assert_uint_eq(g.headers_len, 8);
	store_entry_fini(&g);
	ck_assert_int_eq(store_get_fd(st, key, &g, &fd), 1);
	ck_assert_int_ge(fd, 0);
	ck_assert_ptr_null(g.body);
	ck_assert_uint_eq(g.body_len, len);
	ck_assert_int_eq(pread(fd, buf, sizeof(buf), 0), (ssize_t)len);
	ck_assert_mem_eq(buf, want, len);
	close(fd);
	store_entry_fini(&g);
}

/*
 * A big body is written to its file as the put arrives and is not kept
 * in the queue too: before the flush it is read back from the file,
 * whole (store_get) or as the open file (store_get_fd); a second put of
 * the key before the flush wins.
 */
START_TEST(body_file_queued)
{
	static unsigned char	 big[50000], want[50000];
	unsigned char		 key[CACHE_KEY_LEN];
	struct store_entry	 e, g;
	struct store		*st;
	size_t			 i;
	int			 round;

	ck_assert_ptr_nonnull(st = store_open(path, 0));
	mkkey(7, key);
	for (round = 0; round < 2; round++) {
		for (i = 0; i < sizeof(big); i++)
			big[i] = (unsigned char)(i * 5 + round);
		memcpy(want, big, sizeof(big));
		mkentry(&e, "X-Q: 1\r\n", big, sizeof(big));
		ck_assert_int_eq(store_put(st, key, "/rest/v1/q", &e, NULL, 0),
		    0);
		memset(big, 0, sizeof(big));	/* the caller's buffer is free */
		ck_assert_uint_eq(store_queued(st), 1);
		is_big_body(st, key, want, sizeof(want));
	}
	ck_assert_int_eq(store_flush(st), 0);
	ck_assert_int_eq(store_get(st, key, &g), 1);
	ck_assert_mem_eq(g.body, want, sizeof(want));
	store_entry_fini(&g);
	store_close(st);
}
END_TEST

START_TEST(body_files)
{
	static unsigned char	 big[70000];
	unsigned char		 key[CACHE_KEY_LEN], buf[70001];
	struct store_entry	 e, g;
	struct store		*st;
	char			 tags[1][CACHE_TAG_MAX] = { "public.big" };
	char			 stray[512], notours[512];
	struct stat		 sb;
	size_t			 i;
	int			 fd, all;

	for (i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 7 + 3);
	ck_assert_ptr_nonnull(st = store_open(path, 0));
	mkkey(1, key);
	mkentry(&e, "X-A: 1\r\n", big, sizeof(big));
	ck_assert_int_eq(store_put(st, key, "/rest/v1/big", &e, tags, 1), 0);
	ck_assert_int_eq(store_flush(st), 0);
	ck_assert_int_eq(count_files(), 1);
	is_big_body(st, key, big, sizeof(big));
	/* small bodies stay in the database, and come without a file */
	ck_assert_int_eq(put_n(st, 2, "/rest/v1/small", 100, NULL, NULL), 0);
	mkkey(2, key);
	ck_assert_int_eq(store_get_fd(st, key, &g, &fd), 1);
	ck_assert_int_eq(fd, -1);
	ck_assert_ptr_nonnull(g.body);
	store_entry_fini(&g);
	ck_assert_int_eq(count_files(), 1);
	/* replaced: one file, the new bytes */
	mkkey(1, key);
	big[0] ^= 0xff;
	ck_assert_int_eq(store_put(st, key, "/rest/v1/big", &e, tags, 1), 0);
	ck_assert_int_eq(store_flush(st), 0);
	ck_assert_int_eq(count_files(), 1);
	ck_assert_int_eq(store_get(st, key, &g), 1);
	ck_assert_mem_eq(g.body, big, sizeof(big));
	store_entry_fini(&g);
	store_close(st);

	/* kept over a reopen; strays emptied, what is not ours left */
	snprintf(stray, sizeof(stray), "%s/999999", files_dir());
	snprintf(notours, sizeof(notours), "%s/notes.txt", files_dir());
	fd = open(stray, O_WRONLY | O_CREAT, 0600);
	ck_assert_int_eq(write(fd, "stray", 5), 5);
	ck_assert_int_eq(close(fd), 0);
	fd = open(notours, O_WRONLY | O_CREAT, 0600);
	ck_assert_int_eq(write(fd, "notes", 5), 5);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_ptr_nonnull(st = store_open(path, 0));
	ck_assert_int_eq(stat(stray, &sb), 0);
	ck_assert_int_eq(sb.st_size, 0);
	ck_assert_int_eq(stat(notours, &sb), 0);
	ck_assert_int_eq(sb.st_size, 5);
	ck_assert_int_eq(unlink(notours), 0);
	ck_assert_int_eq(count_files(), 1);
	/* the body, the stray and the replaced body's file, emptied */
	ck_assert_int_eq(all = count_in_dir(1), 3);
	ck_assert_int_eq(has(st, 1), 1);
	/*
	 * Invalidated with its tag while held open: unlinked, never
	 * emptied or rewritten, so the holder keeps reading its body.
	 */
	ck_assert_int_eq(store_get_fd(st, key, &g, &fd), 1);
	store_entry_fini(&g);
	ck_assert_int_eq(store_invalidate_tag(st, "public.big"), 1);
	ck_assert_int_eq(count_files(), 0);
	ck_assert_int_eq(count_in_dir(1), all - 1);
	ck_assert_int_eq(has(st, 1), 0);
	/*
	 * Purged by prefix, held by nobody: emptied and kept; the next
	 * body takes an emptied file rather than a new one.
	 */
	big[1] ^= 0xff;
	ck_assert_int_eq(store_put(st, key, "/rest/v1/big", &e, tags, 1), 0);
	ck_assert_int_eq(count_in_dir(1), all - 1);
	ck_assert_int_eq(store_get(st, key, &g), 1);
	ck_assert_mem_eq(g.body, big, sizeof(big));
	store_entry_fini(&g);
	ck_assert_int_eq(store_purge_prefix(st, "/rest/v1/b"), 1);
	ck_assert_int_eq(count_files(), 0);
	ck_assert_int_eq(count_in_dir(1), all - 1);
	big[1] ^= 0xff;
	/* what was opened before still reads the body it had */
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(pread(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(big));
	ck_assert_mem_eq(buf, big, sizeof(big));
	close(fd);
	ck_assert_int_eq(store_put(st, key, "/rest/v1/big", &e, tags, 1), 0);
	ck_assert_int_eq(store_purge_all(st), 2);
	ck_assert_int_eq(count_files(), 0);
	/* a cut file is a miss, and its entry goes */
	ck_assert_int_eq(store_put(st, key, "/rest/v1/big", &e, tags, 1), 0);
	ck_assert_int_eq(store_flush(st), 0);
	ck_assert_int_eq(truncate(only_file(), 1000), 0);
	ck_assert_uint_eq(store_count(st), 1);
	ck_assert_int_eq(store_get_fd(st, key, &g, &fd), 0);
	ck_assert_int_eq(fd, -1);
	ck_assert_uint_eq(store_count(st), 0);
	ck_assert_uint_eq(store_bytes(st), 0);
	ck_assert_int_eq(count_files(), 0);
	/* and a lost one */
	ck_assert_int_eq(store_put(st, key, "/rest/v1/big", &e, tags, 1), 0);
	ck_assert_int_eq(store_flush(st), 0);
	ck_assert_int_eq(unlink(only_file()), 0);
	ck_assert_int_eq(has(st, 1), 0);
	ck_assert_uint_eq(store_count(st), 0);
	store_close(st);

	/* evicted for room: the file goes too */
	ck_assert_ptr_nonnull(st = store_open(path, 100000));
	ck_assert_int_eq(store_put(st, key, "/rest/v1/big", &e, tags, 1), 0);
	ck_assert_int_eq(store_flush(st), 0);
	ck_assert_int_eq(count_files(), 1);
	mkkey(3, key);
	ck_assert_int_eq(store_put(st, key, "/rest/v1/big3", &e, tags, 1), 0);
	ck_assert_int_eq(store_flush(st), 0);
	ck_assert_int_eq(has(st, 1), 0);
	ck_assert_int_eq(has(st, 3), 1);
	ck_assert_int_eq(count_files(), 1);
	store_close(st);

	/*
	 * A queued put has its file at once; replaced or invalidated
	 * before the flush, it leaves none behind.
	 */
	ck_assert_ptr_nonnull(st = store_open(path, 0));
	ck_assert_int_eq(count_files(), 1);
	mkkey(9, key);
	ck_assert_int_eq(store_put(st, key, "/rest/v1/q", &e, tags, 1), 0);
	ck_assert_int_eq(store_queued(st), 1);
	ck_assert_int_eq(count_files(), 2);
	ck_assert_int_eq(store_put(st, key, "/rest/v1/q", &e, tags, 1), 0);
	ck_assert_int_eq(count_files(), 2);
	ck_assert_int_eq(store_invalidate_tag(st, "public.big"), 2);
	ck_assert_int_eq(count_files(), 0);
	/* emptied files are taken again: the directory does not grow */
	ck_assert_int_le(count_in_dir(1), all);
	store_close(st);
}
END_TEST

/*
 * A body directory that is a link to somewhere else is not used: the
 * bodies stay in the database, and nothing is written there.
 */
START_TEST(body_dir_link)
{
	char		 elsewhere[300];
	struct store	*st;
	DIR		*d;
	struct dirent	*de;
	int		 n = 0;

	snprintf(elsewhere, sizeof(elsewhere), "%s.elsewhere", path);
	ck_assert_int_eq(mkdir(elsewhere, 0700), 0);
	ck_assert_int_eq(symlink(elsewhere, files_dir()), 0);
	ck_assert_ptr_nonnull(st = store_open(path, 0));
	ck_assert_int_eq(put_n(st, 1, "/rest/v1/big", 40000, NULL, NULL), 0);
	ck_assert_int_eq(store_flush(st), 0);
	ck_assert_int_eq(has(st, 1), 1);
	store_close(st);
	ck_assert_ptr_nonnull(d = opendir(elsewhere));
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(unlink(files_dir()), 0);
	ck_assert_int_eq(rmdir(elsewhere), 0);
}
END_TEST

/* a store of schema 1 (bodies in the database only) is taken as is */
START_TEST(schema_1_upgrade)
{
	static const char	 v1[] =
	    "PRAGMA application_id = 1397183555;"
	    "CREATE TABLE entries (id INTEGER PRIMARY KEY,"
	    " key BLOB NOT NULL UNIQUE, path TEXT NOT NULL,"
	    " status INTEGER NOT NULL, etag TEXT NOT NULL,"
	    " stored_at INTEGER NOT NULL, ttl INTEGER NOT NULL,"
	    " swr INTEGER NOT NULL, sie INTEGER NOT NULL,"
	    " size INTEGER NOT NULL, last_access INTEGER NOT NULL);"
	    "CREATE INDEX entries_lru ON entries (last_access);"
	    "CREATE INDEX entries_path ON entries (path);"
	    "CREATE TABLE bodies (id INTEGER PRIMARY KEY,"
	    " headers BLOB NOT NULL, body BLOB NOT NULL);"
	    "CREATE TABLE tags (tag TEXT NOT NULL, entry INTEGER NOT NULL,"
	    " PRIMARY KEY (tag, entry)) WITHOUT ROWID;"
	    "CREATE INDEX tags_entry ON tags (entry);"
	    "CREATE TRIGGER entries_delete AFTER DELETE ON entries BEGIN"
	    "  DELETE FROM tags WHERE entry = old.id;"
	    "  DELETE FROM bodies WHERE id = old.id; END;"
	    "PRAGMA user_version = 1;";
	unsigned char		 key[CACHE_KEY_LEN];
	struct store_entry	 g;
	struct store		*st;
	sqlite3			*db;
	sqlite3_stmt		*q;
	static unsigned char	 big[20000];

	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, v1, NULL, NULL, NULL), SQLITE_OK);
	mkkey(7, key);
	memset(big, 'v', sizeof(big));
	ck_assert_int_eq(sqlite3_prepare_v2(db, "INSERT INTO entries VALUES"
	    " (1, ?1, '/rest/v1/old', 200, '\"x\"', 1700000000, 60, 0, 0,"
	    " 20000, 1)", -1, &q, NULL), SQLITE_OK);
	sqlite3_bind_blob(q, 1, key, CACHE_KEY_LEN, SQLITE_STATIC);
	ck_assert_int_eq(sqlite3_step(q), SQLITE_DONE);
	sqlite3_finalize(q);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "INSERT INTO bodies VALUES"
	    " (1, '', ?1)", -1, &q, NULL), SQLITE_OK);
	sqlite3_bind_blob(q, 1, big, sizeof(big), SQLITE_STATIC);
	ck_assert_int_eq(sqlite3_step(q), SQLITE_DONE);
	sqlite3_finalize(q);
	sqlite3_close(db);

	ck_assert_ptr_nonnull(st = store_open(path, 0));
	ck_assert_int_eq(count_aside(), 0);
	ck_assert_int_eq(store_check(st), 1);
	/* a big body of schema 1 stays where it is, and is read from there */
	ck_assert_int_eq(store_get(st, key, &g), 1);
	ck_assert_uint_eq(g.body_len, sizeof(big));
	ck_assert_mem_eq(g.body, big, sizeof(big));
	store_entry_fini(&g);
	ck_assert_int_eq(count_files(), 0);
	/* new big ones go to files, and both are deleted alike */
	ck_assert_int_eq(put_n(st, 8, "/rest/v1/new", 30000, NULL, NULL), 0);
	ck_assert_int_eq(store_flush(st), 0);
	ck_assert_int_eq(count_files(), 1);
	ck_assert_int_eq(store_purge_all(st), 2);
	ck_assert_int_eq(count_files(), 0);
	store_close(st);
}
END_TEST

/* what the crash child writes for key number k */
static size_t
crash_len(unsigned k)
{
	/* one in ten in a body file of its own */
	return (k % 10 == 0 ? FILE_BODY : 0) + (k * 37) % 2000;
}

static void
crash_hdr(unsigned k, char *buf, size_t len)
{
	snprintf(buf, len, "X-Key: %u\r\n", k);
}

static void
crash_tags(unsigned k, char tags[2][CACHE_TAG_MAX])
{
	snprintf(tags[0], CACHE_TAG_MAX, "public.t%u", k % 7);
	snprintf(tags[1], CACHE_TAG_MAX, "public.u%u", k % 5);
}

static void
crash_path(unsigned k, char *buf, size_t len)
{
	snprintf(buf, len, "/rest/v1/p%u/%u", k % 3, k);
}

static void __attribute__((noreturn))
crash_child(void)
{
	unsigned char		 key[CACHE_KEY_LEN], body[FILE_BODY + 2000];
	char			 hdr[32], p[64], t[CACHE_TAG_MAX];
	char			 tags[2][CACHE_TAG_MAX];
	struct store_entry	 e, g;
	struct store		*st;
	unsigned		 k;

	alarm(20);	/* never outlive a parent that failed */
	if ((st = store_open(path, CRASH_MAX)) == NULL)
		_exit(1);
	srand((unsigned)getpid());
	for (;;) {
		k = (unsigned)rand() % CRASH_KEYS;
		mkkey(k, key);
		switch (rand() % 16) {
		case 0:
			snprintf(t, sizeof(t), "public.t%u", k % 7);
			if (store_invalidate_tag(st, t) < 0)
				_exit(2);
			break;
		case 1:
			snprintf(p, sizeof(p), "/rest/v1/p%u/", k % 3);
			if (store_purge_prefix(st, p) < 0)
				_exit(2);
			break;
		case 2:
			/* the end of an event-loop turn */
			if (store_flush(st) < 0)
				_exit(2);
			break;
		case 3:
		case 4:
			if (store_get(st, key, &g) < 0)
				_exit(2);
			store_entry_fini(&g);
			break;
		default:
			memset(body, (int)(k & 0xff), sizeof(body));
			crash_hdr(k, hdr, sizeof(hdr));
			crash_path(k, p, sizeof(p));
			crash_tags(k, tags);
			mkentry(&e, hdr, body, crash_len(k));
			if (store_put(st, key, p, &e, tags, 2) < 0)
				_exit(2);
		}
	}
}

/* everything in the store is what the child wrote, and the totals agree */
static void
crash_verify(struct store *st)
{
	unsigned char		 key[CACHE_KEY_LEN];
	char			 hdr[32];
	struct store_entry	 g;
	uint64_t		 n = 0, bytes = 0;
	unsigned		 k;
	size_t			 i;
	int			 nfile = 0;

	ck_assert_int_eq(store_check(st), 1);
	for (k = 0; k < CRASH_KEYS; k++) {
		mkkey(k, key);
		if (store_get(st, key, &g) != 1)
			continue;
		n++;
		crash_hdr(k, hdr, sizeof(hdr));
		ck_assert_int_eq(g.status, 200);
		ck_assert_uint_eq(g.headers_len, strlen(hdr));
		ck_assert_mem_eq(g.headers, hdr, strlen(hdr));
		ck_assert_uint_eq(g.body_len, crash_len(k));
		for (i = 0; i < g.body_len; i++)
			ck_assert_uint_eq(g.body[i], k & 0xff);
		bytes += g.headers_len + g.body_len;
		nfile += g.body_len >= FILE_BODY;
		store_entry_fini(&g);
	}
	ck_assert_uint_eq(n, store_count(st));
	ck_assert_uint_eq(bytes, store_bytes(st));
	ck_assert_uint_le(bytes, CRASH_MAX);
	/* no body file left that no entry names */
	ck_assert_int_eq(count_files(), nfile);
}

START_TEST(crash)
{
	struct store	*st;
	pid_t		 pid;
	int		 round, status, killed = 0;
	unsigned	 k;
	char		 t[CACHE_TAG_MAX];

	srand((unsigned)time(NULL));
	for (round = 0; round < CRASH_ROUNDS; round++) {
		ck_assert_int_ge(pid = fork(), 0);
		if (pid == 0)
			crash_child();
		/* from before the open to well into the put loop */
		usleep((useconds_t)(rand() % 40000));
		ck_assert_int_eq(kill(pid, SIGKILL), 0);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		/* the child only ends by our signal */
		ck_assert(WIFSIGNALED(status));
		ck_assert_int_eq(WTERMSIG(status), SIGKILL);
		killed++;

		ck_assert_ptr_nonnull(st = store_open(path, CRASH_MAX));
		ck_assert_int_eq(count_aside(), 0);
		crash_verify(st);
		/* and it still takes writes */
		k = (unsigned)rand() % CRASH_KEYS;
		snprintf(t, sizeof(t), "public.t%u", k % 7);
		ck_assert_int_ge(store_invalidate_tag(st, t), 0);
		ck_assert_int_eq(has(st, k), 0);
		store_close(st);
	}
	ck_assert_int_eq(killed, CRASH_ROUNDS);
	ck_assert_ptr_nonnull(st = store_open(path, CRASH_MAX));
	crash_verify(st);
	ck_assert_int_eq(put_n(st, 1000, "/", 10, NULL, NULL), 0);
	ck_assert_int_eq(has(st, 1000), 1);
	store_close(st);
}
END_TEST

START_TEST(queue)
{
	unsigned char		 key[CACHE_KEY_LEN];
	struct store_entry	 g;
	struct store		*st;
	unsigned		 i;

	ck_assert_ptr_nonnull(st = store_open(path, 0));
	/* a put waits for the flush, and lookups see it meanwhile */
	ck_assert_int_eq(put_n(st, 1, "/rest/v1/a", 100, "public.a", NULL), 0);
	ck_assert_uint_eq(store_queued(st), 1);
	mkkey(1, key);
	ck_assert_int_eq(store_get(st, key, &g), 1);
	ck_assert_uint_eq(g.body_len, 100);
	ck_assert_int_eq(g.body[0], 'a' + 1);
	ck_assert_int_eq(g.body[100], '\0');
	ck_assert_int_eq(g.headers[g.headers_len], '\0');
	ck_assert_int_eq(g.status, 200);
	ck_assert_str_eq(g.etag, "\"e100\"");
	store_entry_fini(&g);
	/* a second put of the key replaces the queued one */
	ck_assert_int_eq(put_n(st, 1, "/rest/v1/b", 40, "public.b", NULL), 0);
	ck_assert_uint_eq(store_queued(st), 1);
	ck_assert_int_eq(store_get(st, key, &g), 1);
	ck_assert_uint_eq(g.body_len, 40);
	store_entry_fini(&g);
	/* invalidation and purges apply to queued puts */
	ck_assert_int_eq(store_invalidate_tag(st, "public.a"), 0);
	ck_assert_int_eq(store_invalidate_tag(st, "public.b"), 1);
	ck_assert_uint_eq(store_queued(st), 0);
	ck_assert_int_eq(has(st, 1), 0);
	ck_assert_int_eq(put_n(st, 2, "/rest/v1/c", 10, NULL, NULL), 0);
	ck_assert_int_eq(put_n(st, 3, "/rest/v1/d", 10, NULL, NULL), 0);
	ck_assert_int_eq(store_purge_prefix(st, "/rest/v1/c"), 1);
	ck_assert_int_eq(has(st, 2), 0);
	ck_assert_int_eq(has(st, 3), 1);
	ck_assert_int_eq(put_n(st, 4, "/rest/v1/e", 10, NULL, NULL), 0);
	ck_assert_int_eq(store_purge_all(st), 2);
	ck_assert_int_eq(has(st, 4), 0);
	ck_assert_uint_eq(store_count(st), 0);

	/* an entry replaced while its old version is on disk */
	ck_assert_int_eq(put_n(st, 5, "/x", 10, NULL, NULL), 0);
	ck_assert_int_eq(store_flush(st), 0);
	ck_assert_int_eq(put_n(st, 5, "/x", 20, NULL, NULL), 0);
	ck_assert_uint_eq(store_count(st), 1);
	ck_assert_uint_eq(store_bytes(st), 20);

	/* the queue is bounded: many puts flush on their own */
	for (i = 100; i < 1100; i++)
		ck_assert_int_eq(put_n(st, i, "/m", 10, NULL, NULL), 0);
	ck_assert_uint_lt(store_queued(st), 1000);
	ck_assert_uint_gt(store_queued(st), 0);
	/* and closing writes what is left */
	store_close(st);
	ck_assert_ptr_nonnull(st = store_open(path, 0));
	ck_assert_uint_eq(store_count(st), 1001);
	ck_assert_int_eq(has(st, 1099), 1);
	ck_assert_int_eq(has(st, 5), 1);
	ck_assert_int_eq(store_check(st), 1);
	store_close(st);
}
END_TEST

/* the size of path's WAL file; 0 when there is none */
static off_t
wal_size(void)
{
	char		 p[200];
	struct stat	 sb;

	snprintf(p, sizeof(p), "%s-wal", path);
	return stat(p, &sb) == 0 ? sb.st_size : 0;
}

/*
 * Write n puts of CKPT_BODY bytes from key k on, flushing every 16 as
 * the daemon's flush timer does (due: store_flush_due, trying again
 * while it puts the write off; else store_flush, which never waits);
 * the most the WAL file held.
 */
#define CKPT_BODY	(12 * 1024)		/* stays in the database */
#define CKPT_HARD	(32 * 1024 * 1024)	/* store.c's WAL_HARD */
#define CKPT_PUTS	(3 * CKPT_HARD / CKPT_BODY)
static off_t
write_through(struct store *st, unsigned k, unsigned n, int due)
{
	unsigned	 i;
	off_t		 most = 0, sz;
	int		 r, tries;

	for (i = k; i < k + n; i++) {
		ck_assert_int_eq(put_n(st, i, "/rest/v1/w", CKPT_BODY,
		    "public.w", NULL), 0);
		if (i % 16 != 15)
			continue;
		for (tries = 0; tries < 1000; tries++) {
			ck_assert_int_ge(r = due ? store_flush_due(st) :
			    store_flush(st), 0);
			if (r == 0)
				break;
			usleep(1000);
		}
		if ((sz = wal_size()) > most)
			most = sz;
	}
	ck_assert_int_eq(store_flush(st), 0);
	return most;
}

/*
 * Checkpoints run on the store's thread, and the WAL starts over while
 * writes keep coming: writing three times WAL_HARD (store.c, 32 MiB)
 * through it leaves a WAL file (never shrunk below 64 MiB, so its size
 * is the most it ever held) well under that.  Without checkpoints, or
 * with checkpoints that never finish before the next write, the WAL
 * would hold everything written.  Writes that wait while a checkpoint
 * finishes let the WAL start over early; writes that do not (a full
 * queue) are held back at WAL_HARD.
 */
START_TEST(checkpoint_thread)
{
	struct store	*st;
	off_t		 most;

	ck_assert_ptr_nonnull(st = store_open(path, 0));
	most = write_through(st, 0, CKPT_PUTS, 1);
	ck_assert_uint_gt(store_checkpoints(st), 0);
	ck_assert_int_lt(most, CKPT_HARD + CKPT_HARD / 4);
	ck_assert_uint_gt(store_wal_bytes(st), 0);
	/* the file holds them, with a header per frame */
	ck_assert_uint_le(store_wal_bytes(st), (uint64_t)wal_size());
	most = write_through(st, CKPT_PUTS, CKPT_PUTS, 0);
	ck_assert_int_lt(most, CKPT_HARD + CKPT_HARD / 4);
	ck_assert_uint_eq(store_count(st), 2 * CKPT_PUTS);
	ck_assert_int_eq(has(st, 0), 1);
	ck_assert_int_eq(has(st, 2 * CKPT_PUTS - 1), 1);
	ck_assert_int_eq(store_check(st), 1);
	store_close(st);
	/* closing checkpoints what is left and removes the WAL */
	ck_assert_int_eq(wal_size(), 0);
	ck_assert_ptr_nonnull(st = store_open(path, 0));
	ck_assert_uint_eq(store_count(st), 2 * CKPT_PUTS);
	ck_assert_int_eq(store_check(st), 1);
	store_close(st);
}
END_TEST

/*
 * Without a shared WAL index (here a directory where path-shm should
 * be) the store still opens and works, with one connection in EXCLUSIVE
 * locking mode and no checkpoint thread.
 */
START_TEST(no_shared_index)
{
	char		 shm[200];
	struct store	*st;

	snprintf(shm, sizeof(shm), "%s-shm", path);
	ck_assert_int_eq(mkdir(shm, 0700), 0);
	ck_assert_ptr_nonnull(st = store_open(path, 0));
	ck_assert_uint_eq(store_checkpoints(st), 0);
	ck_assert_int_eq(put_n(st, 1, "/rest/v1/a", 100, "public.a", NULL), 0);
	ck_assert_int_eq(put_n(st, 2, "/rest/v1/a", FILE_BODY, NULL, NULL),
	    0);
	ck_assert_int_eq(store_flush(st), 0);
	ck_assert_int_eq(store_check(st), 1);
	store_close(st);
	ck_assert_ptr_nonnull(st = store_open(path, 0));
	ck_assert_uint_eq(store_count(st), 2);
	ck_assert_int_eq(has(st, 2), 1);
	store_close(st);
	ck_assert_int_eq(rmdir(shm), 0);
	/* with the index back, the thread is back */
	ck_assert_ptr_nonnull(st = store_open(path, 0));
	ck_assert_int_eq(has(st, 1), 1);
	ck_assert_int_eq(store_invalidate_tag(st, "public.a"), 1);
	store_close(st);
}
END_TEST

/* the page size in path's header (big-endian bytes 16-17) */
static unsigned
file_page_size(void)
{
	unsigned char	 hdr[18];
	FILE		*f;

	ck_assert_ptr_nonnull(f = fopen(path, "rb"));
	ck_assert_uint_eq(fread(hdr, 1, sizeof(hdr), f), sizeof(hdr));
	fclose(f);
	return (unsigned)(hdr[16] << 8 | hdr[17]);
}

/*
 * A new file gets 4 KiB pages; one that has 16 KiB pages (made by an
 * older version) keeps them, and works.
 */
START_TEST(page_size)
{
	struct store	*st;
	sqlite3		*db;
	unsigned	 k, n[2] = { 30000, 3000 };
	int		 old;

	for (old = 0; old < 2; old++) {
		teardown();
		setup();
		if (old) {
			ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
			ck_assert_int_eq(sqlite3_exec(db, "PRAGMA page_size ="
			    " 16384; PRAGMA journal_mode = WAL; CREATE TABLE"
			    " t (x); DROP TABLE t;", NULL, NULL, NULL),
			    SQLITE_OK);
			sqlite3_close(db);
		}
		ck_assert_ptr_nonnull(st = store_open(path, 0));
		for (k = 0; k < 2; k++)
			ck_assert_int_eq(put_n(st, k, "/", n[k], NULL, NULL),
			    0);
		store_close(st);
		ck_assert_uint_eq(file_page_size(), old ? 16384 : 4096);
		ck_assert_ptr_nonnull(st = store_open(path, 0));
		for (k = 0; k < 2; k++)
			ck_assert_int_eq(has(st, k), 1);
		ck_assert_int_eq(store_check(st), 1);
		store_close(st);
	}
}
END_TEST

START_TEST(hostile)
{
	static char		 many[10000][CACHE_TAG_MAX];
	unsigned char		 key[CACHE_KEY_LEN];
	struct store_entry	 e, g;
	struct store		*st;
	char			*hdr, full[1][CACHE_TAG_MAX];
	size_t			 i, hlen = 1 << 20;

	ck_assert_ptr_nonnull(st = store_open(path, 0));

	/* a megabyte of headers with every byte value but NUL */
	ck_assert_ptr_nonnull(hdr = malloc(hlen + 1));
	for (i = 0; i < hlen; i++)
		hdr[i] = (char)(1 + i % 255);
	hdr[hlen] = '\0';
	mkkey(1, key);
	mkentry(&e, hdr, "", 0);
	ck_assert_int_eq(store_put(st, key, "/rest/v1/%00'\";--", &e, NULL,
	    0), 0);
	ck_assert_int_eq(store_get(st, key, &g), 1);
	ck_assert_uint_eq(g.headers_len, hlen);
	ck_assert_mem_eq(g.headers, hdr, hlen);
	store_entry_fini(&g);
	free(hdr);
	ck_assert_int_eq(store_purge_prefix(st, "/rest/v1/%00'\""), 1);

	/* 10k tags asked for; the caller passes CACHE_TAGS_MAX of them */
	for (i = 0; i < 10000; i++)
		snprintf(many[i], CACHE_TAG_MAX, "public.t%zu", i);
	mkkey(2, key);
	mkentry(&e, "A: b\r\n", "x", 1);
	ck_assert_int_eq(store_put(st, key, "/t", &e, many, CACHE_TAGS_MAX),
	    0);
	ck_assert_int_eq(store_invalidate_tag(st, "public.t40"), 0);
	ck_assert_int_eq(store_invalidate_tag(st, "public.t9999"), 0);
	ck_assert_int_eq(store_invalidate_tag(st, "public.t31"), 1);

	/* a tag filling its whole slot, without a NUL */
	memset(full[0], 'z', CACHE_TAG_MAX);
	mkkey(3, key);
	ck_assert_int_eq(store_put(st, key, "/t", &e, full, 1), 0);
	full[0][CACHE_TAG_MAX - 1] = '\0';
	ck_assert_int_eq(store_invalidate_tag(st, full[0]), 0);
	memset(full[0], 'z', CACHE_TAG_MAX);
	hdr = strndup(full[0], CACHE_TAG_MAX);
	ck_assert_int_eq(store_invalidate_tag(st, hdr), 1);
	free(hdr);

	/* keys that differ in the last byte only */
	memset(key, 0xff, sizeof(key));
	ck_assert_int_eq(store_put(st, key, "/k", &e, NULL, 0), 0);
	key[CACHE_KEY_LEN - 1] = 0xfe;
	ck_assert_int_eq(store_get(st, key, &g), 0);
	ck_assert_int_eq(store_check(st), 1);
	store_close(st);
}
END_TEST

static Suite *
store_suite(void)
{
	Suite	*s = suite_create("store");
	TCase	*tc;

	tc = tcase_create("api");
	tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, TIMEOUT_S);
	tcase_add_test(tc, round_trip);
	tcase_add_test(tc, miss_and_replace);
	tcase_add_test(tc, tag_invalidation);
	tcase_add_test(tc, prefix);
	tcase_add_test(tc, purge_all);
	tcase_add_test(tc, accounting);
	tcase_add_test(tc, lru);
	tcase_add_test(tc, lru_touch);
	tcase_add_test(tc, lru_many);
	tcase_add_test(tc, too_big);
	tcase_add_test(tc, persistence);
	tcase_add_test(tc, hostile);
	tcase_add_test(tc, queue);
	tcase_add_test(tc, page_size);
	tcase_add_test(tc, body_files);
	tcase_add_test(tc, body_file_queued);
	tcase_add_test(tc, body_dir_link);
	tcase_add_test(tc, checkpoint_thread);
	suite_add_tcase(s, tc);

	tc = tcase_create("file");
	tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, TIMEOUT_S);
	tcase_add_test(tc, file_mode);
	tcase_add_test(tc, garbage);
	tcase_add_test(tc, damaged);
	tcase_add_test(tc, open_fails);
	tcase_add_test(tc, schema_1_upgrade);
	tcase_add_test(tc, no_shared_index);
	suite_add_tcase(s, tc);

	tc = tcase_create("crash");
	tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 2 * TIMEOUT_S);
	tcase_add_test(tc, crash);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return ck_run(store_suite());
}
