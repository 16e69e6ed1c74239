/* proxy_broker: Storage in the request path: the signed-URL broker,
 * invalidation by object writes, and Location rewriting for TUS */
#ifndef SUPAGATE_PROXY_BROKER_H
#define SUPAGATE_PROXY_BROKER_H

#include <stddef.h>

#include "proxy.h"

struct request;
struct sbuf;

/*
 * Classify a storage request (credentials decided).  1: a sign request
 * whose body the broker holds until it is complete; 0: go on (the
 * broker may watch the answer); -1 on ENOMEM.
 */
int proxy_broker_begin(struct request *);
/* 1 if the broker holds the request body (sign requests) */
int proxy_broker_holds_body(const struct request *);
/* request body bytes (held, or a side copy for move/copy/remove); -1: too big */
int proxy_broker_body(struct request *, const char *, size_t);
/* the held body is complete: PROXY_RESPOND (answered) or PROXY_CONTINUE */
enum proxy_next proxy_broker_decide(struct request *);
/*
 * 1 while a batch is split between the cache and upstream: upstream's
 * answer is collected, not relayed, and proxy_broker_done answers
 */
int proxy_broker_merging(const struct request *);
/* the held body, to send upstream */
struct sbuf *proxy_broker_held_body(struct request *);
/* upstream's head is in r->head: rewrite a storage Location */
void proxy_broker_head(struct request *);
/* upstream response body bytes */
void proxy_broker_data(struct request *, const char *, size_t);
/* the transfer ended: remember signed URLs, invalidate written objects */
void proxy_broker_done(struct request *, enum upstream_result);
void proxy_broker_free(struct request *);

#endif
