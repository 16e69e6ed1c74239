/* proxy_cache: the read cache in the request path (uses cache and store) */
#ifndef SUPAGATE_PROXY_CACHE_H
#define SUPAGATE_PROXY_CACHE_H

#include <stddef.h>

#include "upstream.h"

struct conf;
struct request;
struct sbuf;
struct store;

/* what proxy_cache_begin decided */
enum pc_next {
	PC_UPSTREAM,	/* go upstream (the answer may be stored) */
	PC_ANSWERED,	/* answered from the cache: respond now */
	PC_WAIT,	/* an identical miss is in flight: wait for it */
};

/* open the store in state-dir (cache off or unwritable: no cache); 0/-1 */
int proxy_cache_setup(const struct conf *);
void proxy_cache_teardown(void);
/* write the stored responses that wait for their batch now */
void proxy_cache_flush(void);
/*
 * A request is about to go upstream with r->authz: if it is a cacheable
 * read, look it up.  Writes to /rest/v1 are noted so that their success
 * invalidates.
 */
enum pc_next proxy_cache_begin(struct request *);
/* a waiting request woke up: look again */
enum pc_next proxy_cache_retry(struct request *);
/* upstream's response head: decide whether to store; Cache-Status */
void proxy_cache_head(struct request *);
/* response body bytes as they pass to the client */
void proxy_cache_data(struct request *, const char *, size_t);
/* the upstream transfer ended: store, invalidate, wake waiters */
void proxy_cache_done(struct request *, enum upstream_result);
/*
 * Upstream failed (refused, timed out, 5xx): answer from a stale entry
 * if stale-if-error allows; 1 if answered.
 */
int proxy_cache_stale(struct request *, const char *why);
/*
 * 1 if status is one that cache-ttl-status keeps for r's read: upstream's
 * answer then stands (a configured 501 is not a failure that
 * stale-if-error covers).
 */
int proxy_cache_keeps_status(struct request *, int status);
/* make d, a background refresh of src's entry, store and lead; 0/-1 */
int proxy_cache_adopt(struct request *d, struct request *src);
/* the If-None-Match to send when revalidating a stored object, or NULL */
const char *proxy_cache_if_none_match(struct request *);
/* upstream said 304 to our revalidation: answered from the store; 1 */
int proxy_cache_revalidated(struct request *, int status);
/* the request is freed */
void proxy_cache_free(struct request *);
/* POST /_supagate/purge?tag=|prefix=|all=1: JSON answer into r */
void proxy_cache_purge(struct request *);
/* the open store, NULL when the cache is off (for the signed-URL broker) */
struct store *proxy_cache_store(void);
/* drop every entry tagged tag (counted in the metrics); how many */
long proxy_cache_invalidate_tag(const char *tag);
/* the identity r's upstream answer is for (cache partition), into out */
void proxy_cache_identity(struct request *, char *out, size_t outlen);
/* health members: "\"cache\":{...}" */
void proxy_cache_health(struct sbuf *);

#endif
