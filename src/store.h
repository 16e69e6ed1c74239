/* store: the SQLite cache database (WAL), LRU eviction, tags */
#ifndef SUPAGATE_STORE_H
#define SUPAGATE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "cache.h"

struct store;

/* one stored response */
struct store_entry {
	int		 status;
	char		*headers;	/* "Name: value\r\n" lines to replay */
	size_t		 headers_len;
	unsigned char	*body;
	size_t		 body_len;
	char		 etag[64];
	int64_t		 stored_at;	/* wall seconds */
	uint64_t	 ttl_s;
	uint64_t	 swr_s;
	uint64_t	 sie_s;
	/* the store's own: its row (0: not written yet) and recency */
	int64_t		 id;
	int64_t		 last_access;
};

/*
 * Open (create) path, mode 0600, WAL, with the schema; max_size bounds
 * the sum of stored bytes (headers + body; the file itself is larger),
 * 0 for no bound, and is applied at once (evicting) if the store holds
 * more.  Bodies of 16 KiB and more are files of their own in path.d/
 * (files no entry names are removed here).  A file that is not a
 * database, fails PRAGMA quick_check or has a newer schema is moved
 * aside to path.corrupt-<time> (its WAL with it) and a new one created.
 * Another application's SQLite database is left alone.  NULL on failure
 * (logged): the path cannot be opened, is not a regular file, is someone
 * else's database.
 */
struct store *store_open(const char *path, uint64_t max_size);
void store_close(struct store *);
/*
 * Look up key; on a hit fill e (malloc'd headers and body, each with a
 * NUL after its _len bytes, never NULL: free with store_entry_fini) and
 * record the access for LRU; 1 hit, 0 miss, -1 error.  e is zeroed
 * first, so store_entry_fini(e) is safe after any result.  Expiry is
 * the caller's business: an entry stays until replaced, purged or
 * evicted.  Recency is approximate: an entry among the newest eighth
 * of accesses is not moved, and accesses are written in batches (lost,
 * not harmful, on a crash).
 */
int store_get(struct store *, const unsigned char key[CACHE_KEY_LEN],
    struct store_entry *e);
/*
 * As store_get, but a body kept in a file of its own (16 KiB and more)
 * comes as that file open for reading: *fd, which the caller closes,
 * with e->body NULL and e->body_len its length.  Else *fd is -1.
 */
int store_get_fd(struct store *, const unsigned char key[CACHE_KEY_LEN],
    struct store_entry *e, int *fd);
/*
 * Read e's body from fd (as store_get_fd gave it) into e->body, NUL
 * after it; 0, or -1 (e unchanged)
 */
int store_entry_load(struct store_entry *, int fd);
void store_entry_fini(struct store_entry *);
/*
 * Insert or replace key with e and its tags (path is kept for prefix
 * purges; NULL is "").  The put is copied into a queue in memory (a
 * body of 16 KiB and more is written to its file at once instead) and
 * written by the next store_flush, which the owner calls within 10 ms
 * (or at once when 256 puts or 2 MiB are queued):
 * one transaction for all of them, then one round
 * of eviction of least recently used entries until the total is within
 * max_size.  store_get sees queued puts, and invalidations and purges
 * apply to them.  A crash (kill -9, power loss) loses the queued puts,
 * never the consistency of the store; a
 * failed flush drops them (logged).  The caller bounds
 * ntags (CACHE_TAGS_MAX); every tag passed is stored, up to
 * CACHE_TAG_MAX bytes (a NUL ends it earlier; empty ones are skipped).
 * headers and body may be NULL when their length is 0.  An entry larger
 * than max_size is not stored and any old entry under key is dropped
 * (it is out of date): -1, logged at debug level only.  0 or -1.
 */
int store_put(struct store *, const unsigned char key[CACHE_KEY_LEN],
    const char *path, const struct store_entry *e,
    char tags[][CACHE_TAG_MAX], size_t ntags);
/*
 * Write the queued puts and the batched LRU updates in one transaction,
 * evicting as needed; 0, or -1 (logged; the queue is dropped).  Also
 * done by store_close and by every call that reads the totals below.
 */
int store_flush(struct store *);
/*
 * store_flush, unless a checkpoint is finishing on its thread (then 1,
 * and nothing is written: write again a little later).  A write while
 * it finishes keeps the WAL from starting over, so it waits, but only
 * while the queue has room and the WAL is under 32 MiB.
 */
int store_flush_due(struct store *);
/* checkpoint passes run off the loop (0: they run in it) */
uint64_t store_checkpoints(struct store *);
/*
 * WAL bytes written since it last started over, as of the last commit
 * (0 when checkpoints run in the loop: nothing counts them)
 */
uint64_t store_wal_bytes(struct store *);
/*
 * Record a use of e, an entry store_get() returned earlier and served
 * from elsewhere (the memory set): the store's LRU order sees it too,
 * batched and rate-limited as store_get's own.  An entry deleted since
 * costs nothing (its id may name a newer row: that row looks used).
 */
void store_touch(struct store *, struct store_entry *);
/* puts waiting for store_flush */
size_t store_queued(const struct store *);
/* delete every entry tagged tag; returns how many, -1 on error */
long store_invalidate_tag(struct store *, const char *tag);
/*
 * delete every entry whose path starts with prefix, compared bytewise
 * (no wildcards; "" is everything); count or -1
 */
long store_purge_prefix(struct store *, const char *prefix);
/* delete everything; count or -1 */
long store_purge_all(struct store *);
/* bytes stored (headers + bodies) and entry count; flush first */
uint64_t store_bytes(struct store *);
uint64_t store_count(struct store *);
/* entries evicted for space since open; flushes first */
uint64_t store_evictions(struct store *);
/* PRAGMA integrity_check == "ok": 1, else 0 */
int store_check(struct store *);

#endif
