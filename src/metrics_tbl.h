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
METRIC(reloads, "supagate_config_reloads_total", "counter",
    "Successful configuration reloads")
METRIC(reload_failures, "supagate_config_reload_failures_total", "counter",
    "Configuration reloads refused because the new file had errors")
