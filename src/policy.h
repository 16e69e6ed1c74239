/* policy: pure request policy (routes, paths, headers, credentials, access) */
#ifndef SUPAGATE_POLICY_H
#define SUPAGATE_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"

struct sockaddr;

enum policy_route {
	POLICY_ROUTE_REST = CONF_SVC_REST,
	POLICY_ROUTE_AUTH = CONF_SVC_AUTH,
	POLICY_ROUTE_STORAGE = CONF_SVC_STORAGE,
	POLICY_ROUTE_FUNCTIONS = CONF_SVC_FUNCTIONS,
	POLICY_ROUTE_GRAPHQL = CONF_SVC_GRAPHQL,
	POLICY_ROUTE_ADMIN,	/* /_supagate/... */
	POLICY_ROUTE_NONE,	/* no such route: 404 */
	POLICY_ROUTE__N
};

/* route names for metrics and logs: "rest", "auth", ..., "admin", "none" */
const char *policy_route_name(enum policy_route);

/*
 * Classify a raw request path (no query).  "/rest/v1" and "/rest/v1/..."
 * are REST; "/rest/v10" is not.  *sub points into path at the part after
 * the service prefix ("" or "/..."); for NONE, at path itself.
 */
enum policy_route policy_route_of(const char *path, const char **sub);

/*
 * Validate a raw request target path: starts with '/', no control
 * characters or spaces, valid %XX escapes, no "." or ".." segments
 * (also when percent-encoded, and with %2F or %5C as the separator).
 * Only RFC 3986 pchar, '/' and %XX (not %00) may appear.  0 if fine,
 * -1 with a reason in *why (why may be NULL).
 */
int policy_path_ok(const char *path, const char **why);

/*
 * Build the upstream URL for route r: with a per-service override, the
 * override root + sub (GRAPHQL with a REST override: rest root +
 * "/rpc/graphql"); otherwise conf->upstream + the original path.  query
 * (may be NULL or "") is appended after '?'.  -1 if it does not fit or
 * no upstream is configured for r.
 */
int policy_upstream_url(const struct conf *, enum policy_route r,
    const char *path, const char *sub, const char *query, char *out,
    size_t outlen);

/*
 * Copy the raw query string to out without any "apikey" parameter.
 * Returns the number of apikey parameters removed, or -1 if out is too
 * small.  The first removed value (still percent-encoded) goes to
 * key/keylen when key is not NULL.  A parameter is an apikey when its
 * name, percent-decoded, is exactly "apikey" ("api%6Bey" is one).  A
 * key value that does not fit in key is -1 too (never truncated).
 * With nothing removed the query is copied unchanged; otherwise the
 * kept parameters are joined by single '&' (empty ones are dropped).
 */
int policy_strip_apikey(const char *query, char *out, size_t outlen,
    char *key, size_t keylen);

/* 1 for hop-by-hop and proxy-owned request headers not to forward */
int policy_drop_request_header(const char *name);
/* 1 for hop-by-hop response headers not to relay to the client */
int policy_drop_response_header(const char *name);
/* one field line of a "Name: value\r\n" block; not NUL-terminated */
struct head_line {
	const char	*name;
	size_t		 nlen;
	const char	*value;		/* surrounding whitespace trimmed */
	size_t		 vlen;
};
/*
 * The next field line of the block at *p, which moves past it: 1, or 0
 * at the end.  Blank lines, obs-fold continuations and lines without a
 * name and ':' are skipped.
 */
int policy_head_next(const char **p, struct head_line *);
/*
 * The value of the first header name in a block of "Name: value\r\n"
 * lines (case-insensitive name, surrounding whitespace trimmed) into
 * out; 0, or -1 if absent or longer than outlen allows.
 */
int policy_head_value(const char *block, const char *name, char *out,
    size_t outlen);
/*
 * The Content-Length of a block of header lines into *len: 0, or -1 if
 * there is none or it is not a plain decimal number
 */
int policy_head_length(const char *block, uint64_t *len);
/* 1 if a header value holds CR, LF or NUL */
int policy_header_value_bad(const char *value, size_t len);
/*
 * 1 if name appears as a token in a Connection header value (comma
 * separated, case-insensitive): such headers are hop-by-hop too.
 */
int policy_connection_lists(const char *connection_value, const char *name);

/*
 * Decide the Authorization to send upstream.  authz is the client's
 * Authorization value or NULL, client_key its apikey (header or query)
 * or NULL.  The client's own bearer token is kept when
 * conf->client_auth is PASS: a JWT whose unverified role is neither
 * "anon" nor "service_role", or, when the client sent an apikey, any
 * other token that differs from it (upstream judges it).  Replaced are:
 * no Authorization, an empty or non-Bearer one, the placeholder (equal
 * to client_key, or not JWT-shaped when there is no client_key),
 * "Bearer sb_...", and API-key JWTs: "Bearer <apikey>" when
 * conf->apikey_is_jwt, else no Authorization.  Returns 1 and sets *out
 * to the value to send (authz itself when kept, or a string written
 * into buf), or 0 when no Authorization is to be sent; -1 if the
 * replacement does not fit in buf.
 */
/*
 * With client-tokens-file: 1 if the client presented one of its tokens,
 * as apikey, else as ?apikey= (query_key), else as "Bearer <token>";
 * the digest is compared with every line in constant time.  1 without
 * the file (no token needed), 0 otherwise.  The token never goes
 * upstream: apikey is always supagate's, and a bearer token equal to
 * apikey or not shaped like a JWT is replaced (policy_authorization).
 */
int policy_client_token_ok(const struct conf *, const char *apikey,
    const char *query_key, const char *authz);

int policy_authorization(const struct conf *, const char *authz,
    const char *client_key, char *buf, size_t buflen, const char **out);

/*
 * 1 if the peer address may use supagate: loopback always may, others
 * must match an allow-from CIDR (v4-mapped IPv6 peers match v4 CIDRs).
 */
int policy_peer_ok(const struct conf *, const struct sockaddr *);
/* 1 if the peer is loopback or AF_UNIX (admin endpoints) */
int policy_peer_is_loopback(const struct sockaddr *);
/*
 * 1 if the Host header names supagate: localhost, 127.0.0.1, [::1],
 * a listen address, or an allow-host name, with or without a port.
 * A missing Host is refused (HTTP/1.1 requires it).
 */
int policy_host_ok(const struct conf *, const char *host);
/* 1 if the request may proceed given its Origin (NULL: no Origin) */
int policy_origin_ok(const struct conf *, const char *origin);
/*
 * 1 if method/path is allowed by the expose lines.  With no expose
 * lines everything is allowed, except in service mode where nothing is.
 */
int policy_expose_ok(const struct conf *, const char *method,
    const char *path);
/* CONF_M_* bit for a method name, 0 if unknown */
unsigned policy_method_bit(const char *);

#endif
