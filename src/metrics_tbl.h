/*
 * metrics_tbl.h: the plain counters and gauges, one line each.
 * METRIC(field, prometheus name, type, help)
 * Labelled families (requests by route and status, upstream errors by
 * route and kind, the upstream latency histogram, bytes by direction)
 * are kept in metrics.c.
 */
METRIC(inflight, "supagate_inflight_requests", "gauge",
    "Client requests being handled")
METRIC(connections, "supagate_connections", "gauge",
    "Open client connections")
METRIC(rejected_overload, "supagate_overload_rejections_total", "counter",
    "Requests refused with 503 because of connection limits")
METRIC(cache_hits, "supagate_cache_hits_total", "counter",
    "Reads answered from the cache")
METRIC(cache_misses, "supagate_cache_misses_total", "counter",
    "Cacheable reads that went upstream")
METRIC(cache_collapsed, "supagate_cache_collapsed_total", "counter",
    "Reads that waited for an identical miss instead of going upstream")
METRIC(cache_invalidations, "supagate_cache_invalidations_total", "counter",
    "Entries removed by writes and purges")
METRIC(cache_evictions, "supagate_cache_evictions_total", "counter",
    "Entries evicted to stay within cache-max-size")
METRIC(cache_bytes, "supagate_cache_bytes", "gauge",
    "Bytes held in the cache")
METRIC(cache_wal_bytes, "supagate_cache_wal_bytes", "gauge",
    "Bytes in the cache store's write-ahead log since it last started over")
METRIC(cache_checkpoints, "supagate_cache_checkpoints_total", "counter",
    "Checkpoint passes of the cache store's write-ahead log (its thread)")
METRIC(busy_poll_catches, "supagate_busy_poll_catches_total", "counter",
    "Events found by polling before sleeping (busy-poll)")
METRIC(busy_poll_empty, "supagate_busy_poll_empty_total", "counter",
    "Polls before sleeping that found nothing")
METRIC(reloads, "supagate_config_reloads_total", "counter",
    "Successful configuration reloads")
METRIC(reload_failures, "supagate_config_reload_failures_total", "counter",
    "Configuration reloads refused because the new file had errors")
METRIC(session_refreshes, "supagate_session_refreshes_total", "counter",
    "Session refreshes that rotated the token")
METRIC(session_refresh_failures, "supagate_session_refresh_failures_total",
    "counter", "Session refresh calls that failed (any reason)")
METRIC(session_logins, "supagate_session_logins_total", "counter",
    "Password sign-ins of the session (first and after a loss)")
METRIC(session_replays, "supagate_session_replays_total", "counter",
    "Requests retried once after a refresh (expired token)")
