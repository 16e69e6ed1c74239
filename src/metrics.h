/* metrics: counters and their Prometheus text rendering */
#ifndef SUPAGATE_METRICS_H
#define SUPAGATE_METRICS_H

#include <stdint.h>

struct sbuf;

enum metrics_err {
	METRICS_ERR_CONNECT,	/* refused, DNS, TLS */
	METRICS_ERR_TIMEOUT,
	METRICS_ERR_PROTOCOL,	/* bad response, reset mid-body */
	METRICS_ERR__N
};

enum metrics_stale {
	METRICS_STALE_SWR,	/* served while revalidating */
	METRICS_STALE_ERROR,	/* served because upstream failed */
	METRICS_STALE__N
};

enum metrics_dir {
	METRICS_DIR_UPSTREAM,	/* bytes sent to upstream */
	METRICS_DIR_CLIENT,	/* bytes sent to clients */
	METRICS_DIR__N
};

struct metrics {
#define METRIC(f, n, t, h) int64_t f;
#include "metrics_tbl.h"
#undef METRIC
	/* supagate_signed_urls_total{source="cache"|"upstream"} */
	uint64_t	signed_urls_cache;
	uint64_t	signed_urls_upstream;
};

extern struct metrics metrics;

/* route is an enum policy_route value, status an HTTP status */
void metrics_request(int route, int status);
void metrics_upstream_error(int route, enum metrics_err);
void metrics_upstream_latency(int64_t ms);
void metrics_bytes(enum metrics_dir, uint64_t);
void metrics_cache_stale(enum metrics_stale);
/* render everything in Prometheus text format; -1 if it did not fit */
int metrics_render(struct sbuf *);

#endif
