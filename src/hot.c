/*
 * hot: the most recently used cache entries in memory, in front of the
 * SQLite store, so that a hit on them costs no database work.  A copy,
 * never the authority: the store keeps every entry; this set is dropped
 * whenever entries could have changed in ways it cannot follow (tag and
 * prefix invalidations, purges) and updated when one key is replaced.
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/queue.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hot.h"
#include "util.h"

#define HOT_BUCKETS_MIN	256
#define HOT_FILE_MIN	(16 * 1024)	/* bodies from here on: memfd */
#define HOT_DOOR	64		/* big bodies seen once, by print */

struct hot_ent {
	unsigned char		 key[CACHE_KEY_LEN];
	struct store_entry	 e;	/* a body in a file: e.body NULL */
	int			 fd;	/* the body's memory file, or -1 */
	size_t			 bytes;
	struct hot_ent		*hnext;		/* hash chain */
	TAILQ_ENTRY(hot_ent)	 lru;		/* most recent first */
};

#define HOT_OVERHEAD	(sizeof(struct hot_ent) + 64)

struct hot {
	struct hot_ent		**bucket;
	size_t			 nbucket;	/* a power of two */
	size_t			 n;
	size_t			 bytes;
	size_t			 max_bytes;
	TAILQ_HEAD(hot_lru, hot_ent) lru;
	uint64_t		 door[HOT_DOOR];	/* seen once: prints */
};


/* the bucket of key among nbucket (a power of two) */
static size_t
slot(const unsigned char *key, size_t nbucket)
{
	size_t	v;

	/* the key is a digest: any of its bytes are well mixed */
	memcpy(&v, key, sizeof(v));
	return v & (nbucket - 1);
}

struct hot *
hot_new(size_t max_bytes)
{
	struct hot	*h;

	if (max_bytes == 0 || (h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	h->nbucket = HOT_BUCKETS_MIN;
	if ((h->bucket = calloc(h->nbucket, sizeof(*h->bucket))) == NULL) {
		free(h);
		return NULL;
	}
	h->max_bytes = max_bytes;
	TAILQ_INIT(&h->lru);
	return h;
}

static struct hot_ent **
find(struct hot *h, const unsigned char *key)
{
	struct hot_ent	**pp;

	for (pp = &h->bucket[slot(key, h->nbucket)]; *pp != NULL;
	    pp = &(*pp)->hnext)
		if (memcmp((*pp)->key, key, CACHE_KEY_LEN) == 0)
			return pp;
	return pp;
}

static void
unlink_free(struct hot *h, struct hot_ent **pp)
{
	struct hot_ent	*x = *pp;

	*pp = x->hnext;
	TAILQ_REMOVE(&h->lru, x, lru);
	h->n--;
	h->bytes -= x->bytes;
	if (x->fd != -1)
		close(x->fd);
	store_entry_fini(&x->e);
	free(x);
}

struct store_entry *
hot_get(struct hot *h, const unsigned char key[CACHE_KEY_LEN], int *fd)
{
	struct hot_ent	*x;

	*fd = -1;
	if (h == NULL || (x = *find(h, key)) == NULL)
		return NULL;
	*fd = x->fd;
	if (TAILQ_FIRST(&h->lru) != x) {
		TAILQ_REMOVE(&h->lru, x, lru);
		TAILQ_INSERT_HEAD(&h->lru, x, lru);
	}
	return &x->e;
}

void
hot_drop(struct hot *h, const unsigned char key[CACHE_KEY_LEN])
{
	struct hot_ent	**pp;

	if (h != NULL && *(pp = find(h, key)) != NULL)
		unlink_free(h, pp);
}

static void
grow(struct hot *h)
{
	struct hot_ent	**nb, *x, *next;
	size_t		  i, n = h->nbucket * 2, s;

	if ((nb = calloc(n, sizeof(*nb))) == NULL)
		return;		/* longer chains, still correct */
	for (i = 0; i < h->nbucket; i++)
		for (x = h->bucket[i]; x != NULL; x = next) {
			next = x->hnext;
			s = slot(x->key, n);
			x->hnext = nb[s];
			nb[s] = x;
		}
	free(h->bucket);
	h->bucket = nb;
	h->nbucket = n;
}

/*
 * Taking in a big body costs a memory file, its write and, when it
 * leaves, its close: more than serving it from the store once.  So a big
 * body comes in on its second put within a short while only: a key seen
 * once leaves its print in a small direct-mapped table, which random
 * reads over a set far bigger than this one keep overwriting, while a
 * key read again soon finds its print still there.
 */
static int
second_time(struct hot *h, const unsigned char *key)
{
	uint64_t	print, *slot;

	memcpy(&print, key + 8, sizeof(print));
	print |= 1;			/* never 0, the empty slot */
	slot = &h->door[key[16] % HOT_DOOR];
	if (*slot == print)
		return 1;
	*slot = print;
	return 0;
}

/*
 * A body this big is held in a memory file, so that it is sent with
 * sendfile(2): the kernel takes its pages and the copy into the socket
 * costs no user-space memcpy and write copy.  -1 if there is none.
 */
static int
body_file(const struct store_entry *e)
{
	int	fd;

	if ((fd = memfd_create("supagate-hot", MFD_CLOEXEC)) == -1)
		return -1;
	if (util_write_all(fd, e->body, e->body_len) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

void
hot_put(struct hot *h, const unsigned char key[CACHE_KEY_LEN],
    const struct store_entry *e)
{
	hot_put_fd(h, key, e, -1);
}

void
hot_put_fd(struct hot *h, const unsigned char key[CACHE_KEY_LEN],
    const struct store_entry *e, int fd)
{
	struct hot_ent	*x, **pp;
	size_t		 bytes;

	if (h == NULL)
		return;
	hot_drop(h, key);
	bytes = e->headers_len + e->body_len + HOT_OVERHEAD;
	/* one entry may take an eighth of the room at most */
	if (bytes > h->max_bytes / 8)
		return;
	if (e->body_len >= HOT_FILE_MIN && !second_time(h, key))
		return;
	if ((x = calloc(1, sizeof(*x))) == NULL)
		return;
	x->e = *e;
	x->e.body = NULL;
	if (fd != -1)
		x->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	else
		x->fd = e->body_len >= HOT_FILE_MIN ? body_file(e) : -1;
	x->e.headers = malloc(e->headers_len + 1);
	if (x->fd == -1)
		x->e.body = malloc(e->body_len + 1);
	if (x->e.headers == NULL || (x->fd == -1 && x->e.body == NULL) ||
	    (fd != -1 && x->fd == -1)) {
		if (x->fd != -1)
			close(x->fd);
		store_entry_fini(&x->e);
		free(x);
		return;
	}
	if (e->headers_len > 0)
		memcpy(x->e.headers, e->headers, e->headers_len);
	x->e.headers[e->headers_len] = '\0';
	if (x->e.body != NULL) {
		if (e->body_len > 0)
			memcpy(x->e.body, e->body, e->body_len);
		x->e.body[e->body_len] = '\0';
	}
	memcpy(x->key, key, CACHE_KEY_LEN);
	x->bytes = bytes;
	while (h->bytes + bytes > h->max_bytes && !TAILQ_EMPTY(&h->lru))
		unlink_free(h, find(h, TAILQ_LAST(&h->lru, hot_lru)->key));
	if (h->n >= h->nbucket)
		grow(h);
	pp = &h->bucket[slot(key, h->nbucket)];
	x->hnext = *pp;
	*pp = x;
	TAILQ_INSERT_HEAD(&h->lru, x, lru);
	h->n++;
	h->bytes += bytes;
}

void
hot_clear(struct hot *h)
{
	struct hot_ent	*x;

	if (h == NULL)
		return;
	while ((x = TAILQ_FIRST(&h->lru)) != NULL)
		unlink_free(h, find(h, x->key));
}

void
hot_free(struct hot *h)
{
	if (h == NULL)
		return;
	hot_clear(h);
	free(h->bucket);
	free(h);
}

size_t
hot_bytes(const struct hot *h)
{
	return h != NULL ? h->bytes : 0;
}
