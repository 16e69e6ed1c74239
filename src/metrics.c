/* metrics: counters and their Prometheus text rendering */
#include "config.h"

#include <string.h>

#include "buf.h"
#include "metrics.h"
#include "policy.h"

struct metrics metrics;

#define STATUS_MIN	100
#define STATUS_MAX	599

static uint64_t	requests[POLICY_ROUTE__N][STATUS_MAX - STATUS_MIN + 1];
static uint64_t	upstream_errors[POLICY_ROUTE__N][METRICS_ERR__N];
static uint64_t	bytes[METRICS_DIR__N];
static uint64_t	stale[METRICS_STALE__N];

/* upstream latency histogram, bucket upper bounds in milliseconds */
static const int64_t lat_le_ms[] = {
	5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000
};
#define NLAT	(sizeof(lat_le_ms) / sizeof(lat_le_ms[0]))
static uint64_t	lat_bucket[NLAT];
static uint64_t	lat_count;
static int64_t	lat_sum_ms;

static const char *err_names[METRICS_ERR__N] = {
	"connect", "timeout", "protocol"
};
static const char *dir_names[METRICS_DIR__N] = { "upstream", "client" };
static const char *stale_names[METRICS_STALE__N] = {
	"stale-while-revalidate", "stale-if-error"
};

void
metrics_request(int route, int status)
{
	if (route < 0 || route >= POLICY_ROUTE__N || status < STATUS_MIN ||
	    status > STATUS_MAX)
		return;
	requests[route][status - STATUS_MIN]++;
}

void
metrics_upstream_error(int route, enum metrics_err kind)
{
	if (route < 0 || route >= POLICY_ROUTE__N || kind >= METRICS_ERR__N)
		return;
	upstream_errors[route][kind]++;
}

void
metrics_upstream_latency(int64_t ms)
{
	size_t	i;

	if (ms < 0)
		ms = 0;
	for (i = 0; i < NLAT; i++)
		if (ms <= lat_le_ms[i])
			lat_bucket[i]++;
	lat_count++;
	lat_sum_ms += ms;
}

void
metrics_cache_stale(enum metrics_stale why)
{
	if (why < METRICS_STALE__N)
		stale[why]++;
}

void
metrics_bytes(enum metrics_dir d, uint64_t n)
{
	if (d < METRICS_DIR__N)
		bytes[d] += n;
}

int
metrics_render(struct sbuf *b)
{
	int	r, s;
	size_t	i;

#define METRIC(f, n, t, h)						\
	sbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n", n, h, n, \
	    t, n, (long long)metrics.f);
#include "metrics_tbl.h"
#undef METRIC

	sbuf_printf(b, "# HELP supagate_requests_total Client requests "
	    "answered, by route and status\n"
	    "# TYPE supagate_requests_total counter\n");
	for (r = 0; r < POLICY_ROUTE__N; r++)
		for (s = STATUS_MIN; s <= STATUS_MAX; s++)
			if (requests[r][s - STATUS_MIN] != 0)
				sbuf_printf(b, "supagate_requests_total{route="
				    "\"%s\",status=\"%d\"} %llu\n",
				    policy_route_name(r), s,
				    (unsigned long long)
				    requests[r][s - STATUS_MIN]);

	sbuf_printf(b, "# HELP supagate_upstream_errors_total Upstream "
	    "failures, by route and kind\n"
	    "# TYPE supagate_upstream_errors_total counter\n");
	for (r = 0; r < POLICY_ROUTE_ADMIN; r++)
		for (s = 0; s < METRICS_ERR__N; s++)
			sbuf_printf(b, "supagate_upstream_errors_total{route="
			    "\"%s\",kind=\"%s\"} %llu\n", policy_route_name(r),
			    err_names[s],
			    (unsigned long long)upstream_errors[r][s]);

	sbuf_printf(b, "# HELP supagate_upstream_duration_seconds Time from "
	    "sending a request upstream to its response headers\n"
	    "# TYPE supagate_upstream_duration_seconds histogram\n");
	for (i = 0; i < NLAT; i++)
		sbuf_printf(b, "supagate_upstream_duration_seconds_bucket"
		    "{le=\"%g\"} %llu\n", (double)lat_le_ms[i] / 1000.0,
		    (unsigned long long)lat_bucket[i]);
	sbuf_printf(b, "supagate_upstream_duration_seconds_bucket{le=\"+Inf\"}"
	    " %llu\nsupagate_upstream_duration_seconds_sum %.3f\n"
	    "supagate_upstream_duration_seconds_count %llu\n",
	    (unsigned long long)lat_count, (double)lat_sum_ms / 1000.0,
	    (unsigned long long)lat_count);

	sbuf_printf(b, "# HELP supagate_cache_stale_total Stale entries "
	    "served, by reason\n# TYPE supagate_cache_stale_total counter\n");
	for (i = 0; i < METRICS_STALE__N; i++)
		sbuf_printf(b, "supagate_cache_stale_total{reason=\"%s\"} %llu\n",
		    stale_names[i], (unsigned long long)stale[i]);

	sbuf_printf(b, "# HELP supagate_signed_urls_total Storage signed URLs "
	    "handed out, by source\n# TYPE supagate_signed_urls_total counter\n"
	    "supagate_signed_urls_total{source=\"cache\"} %llu\n"
	    "supagate_signed_urls_total{source=\"upstream\"} %llu\n",
	    (unsigned long long)metrics.signed_urls_cache,
	    (unsigned long long)metrics.signed_urls_upstream);

	sbuf_printf(b, "# HELP supagate_bytes_total Body bytes relayed, by "
	    "direction\n# TYPE supagate_bytes_total counter\n");
	for (i = 0; i < METRICS_DIR__N; i++)
		sbuf_printf(b, "supagate_bytes_total{direction=\"%s\"} %llu\n",
		    dir_names[i], (unsigned long long)bytes[i]);
	return b->overflow ? -1 : 0;
}
