/* hot: recently used cache entries held in memory before the store */
#ifndef SUPAGATE_HOT_H
#define SUPAGATE_HOT_H

#include <stddef.h>

#include "cache.h"
#include "store.h"

struct hot;

/* a set bounded by max_bytes (entries and their bookkeeping); NULL if 0 */
struct hot *hot_new(size_t max_bytes);
void hot_free(struct hot *);
/*
 * The entry under key, or NULL; it stays valid until the next hot_put,
 * hot_drop, hot_clear or hot_free.  A NULL set holds nothing.  A big
 * body (16 KiB and more) is held in a memory file instead: then body is
 * NULL and *fd is the file (the set's own: dup(2) it to keep it), else
 * *fd is -1.  The caller may only update its recency (store_touch()).
 */
struct store_entry *hot_get(struct hot *,
    const unsigned char key[CACHE_KEY_LEN], int *fd);
/*
 * Hold a copy of e under key, replacing any older one and dropping the
 * least recently used entries to make room; an entry bigger than an
 * eighth of the bound is not held, and one with a big body (16 KiB and
 * more) only when it is put a second time soon after the first.
 */
void hot_put(struct hot *, const unsigned char key[CACHE_KEY_LEN],
    const struct store_entry *);
/*
 * The same, for an entry whose body is the file fd (e->body NULL): the
 * set keeps a duplicate of fd rather than a copy of the bytes.
 */
void hot_put_fd(struct hot *, const unsigned char key[CACHE_KEY_LEN],
    const struct store_entry *, int fd);
void hot_drop(struct hot *, const unsigned char key[CACHE_KEY_LEN]);
/* drop everything (after an invalidation by tag, prefix or purge) */
void hot_clear(struct hot *);
size_t hot_bytes(const struct hot *);

#endif
