/*
 * conf_tbl.h: the configuration keywords, one line each.  This table
 * drives parsing, the built-in defaults, conf_dump() and the doc-drift
 * test (tests/check_docs.sh), so a keyword exists exactly here.
 *
 * CONF_V(name, type, flags, min, max, default, field, choices, help)
 *	single-valued keyword stored in struct conf at field; min and max
 *	bound numbers (durations in ms, sizes in bytes; 0, 0: unbounded)
 * CONF_H(name, flags, nargs, default, handler, help)
 *	keyword parsed by h_<handler>() and printed by d_<handler>()
 *
 * flags: CF_MULTI repeatable; CF_SECRET a path to a secret (relative:
 * $CREDENTIALS_DIRECTORY, else the config file's directory); CF_RESERVED
 * parsed and validated for a feature not built yet.
 *
 * The includer defines CONF_V, CONF_H and CONF_STATEDIR.
 */
CONF_H("listen", CF_MULTI, 1, "127.0.0.1:8787", listen,
    "address:port to listen on")
CONF_V("upstream", CT_URL, 0, 0, 0, NULL, upstream, NULL,
    "Supabase project base URL")
CONF_V("rest-upstream", CT_URL, 0, 0, 0, NULL,
    svc_upstream[CONF_SVC_REST], NULL, "PostgREST root URL")
CONF_V("auth-upstream", CT_URL, 0, 0, 0, NULL,
    svc_upstream[CONF_SVC_AUTH], NULL, "Auth (GoTrue) root URL")
CONF_V("storage-upstream", CT_URL, 0, 0, 0, NULL,
    svc_upstream[CONF_SVC_STORAGE], NULL, "Storage root URL")
CONF_V("functions-upstream", CT_URL, 0, 0, 0, NULL,
    svc_upstream[CONF_SVC_FUNCTIONS], NULL, "Edge Functions root URL")
CONF_V("graphql-upstream", CT_URL, 0, 0, 0, NULL,
    svc_upstream[CONF_SVC_GRAPHQL], NULL, "GraphQL root URL")
CONF_V("auth-mode", CT_ENUM, 0, 0, 0, "anon", auth_mode,
    "anon|service|session", "which credentials go upstream")
CONF_V("client-auth", CT_ENUM, 0, 0, 0, "pass", client_auth,
    "pass|replace", "keep or replace a client's own user JWT")
CONF_V("anon-key-file", CT_PATH, CF_SECRET, 0, 0, NULL, anon_key_file,
    NULL, "file with the anon or publishable key")
CONF_V("service-key-file", CT_PATH, CF_SECRET, 0, 0, NULL,
    service_key_file, NULL, "file with the service-role or secret key")
CONF_V("jwt-secret-file", CT_PATH, CF_SECRET, 0, 0, NULL,
    jwt_secret_file, NULL, "file with the project's JWT secret")
CONF_V("jwt-jwks-file", CT_PATH, 0, 0, 0, NULL, jwt_jwks_file, NULL,
    "file with the project's JWT signing keys (JWK set)")
CONF_V("jwt-jwks-fetch", CT_ENUM, 0, 0, 0, "off", jwt_jwks_fetch, "off|on",
    "fetch the JWK set from Auth and keep it in state-dir")
CONF_V("session-email", CT_STRING, 0, 0, 0, NULL, session_email,
    NULL, "email address supagate signs in with")
CONF_V("session-password-file", CT_PATH, CF_SECRET, 0, 0,
    NULL, session_password_file, NULL, "file with the session password")
CONF_V("session-refresh-token-file", CT_PATH, CF_SECRET, 0,
    0, NULL, session_refresh_token_file, NULL,
    "file with a refresh token handed over once")
CONF_V("state-dir", CT_PATH, 0, 0, 0, CONF_STATEDIR, state_dir, NULL,
    "directory for the cache database and session state")
CONF_V("ca-file", CT_PATH, 0, 0, 0, NULL, ca_file, NULL,
    "PEM file with extra CA certificates for upstream TLS")
CONF_V("cache", CT_ENUM, 0, 0, 0, "on", cache_off, "on|off",
    "cache PostgREST reads")
CONF_V("cache-ttl", CT_DURATION_S, 0, 0, 31536000000.0, "60s",
    cache_ttl_s, NULL, "default cache lifetime")
CONF_H("cache-ttl-for", CF_MULTI, 2, NULL, cache_ttl_for,
    "lifetime for paths under a prefix (the longest prefix wins)")
CONF_H("cache-ttl-status", CF_MULTI, 2, NULL, cache_ttl_status,
    "lifetime for reads answered with this status (e.g. 404)")
CONF_V("cache-stale-while-revalidate", CT_DURATION_S, 0, 0, 31536000000.0,
    "0s", cache_swr_s, NULL, "serve stale while refreshing in background")
CONF_V("cache-stale-if-error", CT_DURATION_S, 0, 0, 31536000000.0, "1d",
    cache_sie_s, NULL, "serve stale while upstream fails")
CONF_H("cache-rpc", CF_MULTI, 1, NULL, cache_rpc,
    "function whose GET results may be cached")
CONF_V("cache-rpc-invalidate", CT_ENUM, 0, 0, 0, "all", cache_rpc_keep,
    "all|none", "what a POST to /rest/v1/rpc invalidates")
CONF_V("cache-storage-public", CT_ENUM, 0, 0, 0, "off", cache_storage_public,
    "on|off", "cache public Storage objects, revalidated by ETag")
CONF_H("expose", CF_MULTI, 2, NULL, expose,
    "methods and path prefix that may pass")
CONF_H("allow-from", CF_MULTI, 1, NULL, allow_from,
    "client network allowed to connect")
CONF_H("allow-origin", CF_MULTI, 1, NULL, allow_origin,
    "browser Origin allowed to use supagate")
CONF_H("allow-host", CF_MULTI, 1, NULL, allow_host,
    "extra Host header name that names supagate")
CONF_V("client-tokens-file", CT_PATH, CF_SECRET, 0, 0, NULL,
    client_tokens_file, NULL,
    "file of local client token digests: clients must present one")
CONF_V("upstream-timeout", CT_DURATION_MS, 0, 100, 86400000.0, "60s",
    upstream_timeout_ms, NULL, "upstream response timeout")
CONF_V("functions-timeout", CT_DURATION_MS, 0, 100, 86400000.0, "150s",
    functions_timeout_ms, NULL, "Edge Functions response timeout")
CONF_V("connect-timeout", CT_DURATION_MS, 0, 100, 3600000.0, "10s",
    connect_timeout_ms, NULL, "upstream connect timeout")
CONF_V("max-header-size", CT_SIZE, 0, 1024, 1048576.0, "16k",
    max_header_size, NULL, "largest request header block")
CONF_V("max-body-size", CT_SIZE, 0, 0, 1099511627776.0, "10M",
    max_body_size, NULL, "largest request body (not storage)")
CONF_V("storage-max-body-size", CT_SIZE, 0, 0, 1099511627776.0, "5G",
    storage_max_body_size, NULL, "largest storage upload")
CONF_V("max-connections", CT_UINT, 0, 1, 1000000.0, "1024",
    max_connections, NULL, "client connections at once")
CONF_V("max-connections-per-peer", CT_UINT, 0, 1, 1000000.0, "256",
    max_connections_per_peer, NULL,
    "connections per address with a request in progress")
CONF_V("busy-poll", CT_UINT, 0, 0, 1000, "50", busy_poll_us, NULL,
    "microseconds to poll before sleeping while busy; 0: off")
CONF_V("cache-max-size", CT_SIZE, 0, 0, 1099511627776.0, "256M",
    cache_max_size, NULL, "cache database size limit")
CONF_V("cache-max-object", CT_SIZE, 0, 0, 1073741824.0, "1M",
    cache_max_object, NULL, "largest cached response")
CONF_V("cache-memory", CT_SIZE, 0, 0, 1073741824.0, "8M", cache_memory,
    NULL, "memory holding the most used cache entries")
CONF_V("sign-reuse-share", CT_DOUBLE, 0, 0, 1, "0.5",
    sign_reuse_share, NULL, "signed-URL lifetime share for reuse")
CONF_V("access-log", CT_ENUM, 0, 0, 0, "on", access_log_off, "on|off",
    "one line per request on standard error")
