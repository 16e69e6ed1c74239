/* cache: pure cache policy: keys, tags, freshness (no I/O; time passed in) */
#ifndef SUPAGATE_CACHE_H
#define SUPAGATE_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct sbuf;

#define CACHE_KEY_LEN	32	/* BLAKE2b-256 digest */
#define CACHE_TAG_MAX	128	/* "schema.table", NUL included */
#define CACHE_TAGS_MAX	32	/* tags per entry */
#define CACHE_IDENTITY_MIN	72	/* "bearer:" + 64 hex + NUL */
#define CACHE_IDENTITY_MAX	256	/* a good size for cache_identity's out */
#define CACHE_ETAG_LEN	25	/* '"' + 22 + '"' + NUL */

/*
 * Canonical form of a raw query string, appended to out: split on '&',
 * each name and value percent-decoded ('+' is a space) and re-encoded one
 * way (unreserved bytes as they are, everything else %XX uppercase),
 * parameters sorted bytewise by decoded name with a stable sort (repeated
 * names keep their order), parameters named exactly "apikey" (decoded)
 * dropped, empty parameters ("a&&b") dropped.  "a" and "a=" stay
 * different.  NULL is the empty query.  -1 on malformed percent-encoding,
 * a query over 16 KiB or with over 256 parameters, or if out overflows
 * (out is then partly written).
 */
int cache_canon_query(const char *query, struct sbuf *out);

/* what goes into a key, all borrowed; NULL means absent */
struct cache_key_in {
	const char	*method;	/* "GET" or "HEAD" (HEAD keys as GET) */
	const char	*path;		/* "/rest/v1/todos" */
	const char	*canon_query;	/* from cache_canon_query */
	const char	*accept;
	const char	*accept_profile;	/* NULL: "public" */
	const char	*prefer;	/* only read-relevant tokens are used */
	const char	*range;
	const char	*range_unit;
	const char	*identity;	/* from cache_identity */
};

/*
 * The key digest.  Prefer is split on ',', trimmed, lowercased, stripped
 * of the tokens that never change a read (return=, handling=, tx=,
 * missing=, resolution=, max-affected=; everything else, count= and
 * timezone= included, is kept), then sorted by token name with a stable
 * sort (repeated names keep their order) and exact duplicates dropped; no
 * token left is the same as no Prefer.  Accept and Range-Unit are trimmed
 * and lowercased, Range and Accept-Profile trimmed; an empty one is
 * absent.  Method, path, query and identity are used as they are.  A
 * field over 4 KiB is used raw (never equal to a normalised one).  Each
 * field is digested on its own with a presence tag, so no two different
 * inputs collide by concatenation.
 */
void cache_key(const struct cache_key_in *, unsigned char out[CACHE_KEY_LEN]);

/*
 * The identity a response was produced for, as a printable string into
 * out: "jwt:<role>:<sub>" when verified (verified != 0; NULL role or sub
 * print empty; ':', '%', spaces, controls and non-ASCII bytes in them as
 * %XX, so the split is unambiguous), or "jwth:<hex BLAKE2b>" of role and
 * sub when that does not fit in out; else "bearer:<hex BLAKE2b of the
 * whole Authorization value>", or "none" when there is no Authorization.
 * Never truncated: an outlen below CACHE_IDENTITY_MIN gets "", which the
 * caller must not cache under.
 */
void cache_identity(const char *authorization, int verified,
    const char *role, const char *sub, char *out, size_t outlen);

/*
 * Tags of a REST read: "<schema>.<table>" of the path's first segment
 * after /rest/v1/ (percent-decoded; none for "rpc/<fn>", though a bare
 * "/rest/v1/rpc" is the table rpc), and of every embedded resource in the
 * select= value (decoded), e.g. "*,cities(name,countries(id))" tags
 * cities and countries too; "alias:table(...)", "table!hint(...)",
 * "...table(...)" and "\"quoted name\"(...)" forms are understood, and
 * aggregates ("count()", "col.sum()") are not embeds.  A NULL or empty
 * schema is "public".  Writes n tags (deduplicated) to tags and returns
 * n, or -1 if the select is malformed (unbalanced parentheses or quotes,
 * an embed without a name, nesting over 16, over 16 KiB), the path's
 * encoding is malformed, a tag would not fit CACHE_TAG_MAX, or there
 * would be more than maxtags (or CACHE_TAGS_MAX) tags: an entry whose
 * tags are not all known must not be stored.
 */
int cache_tags(const char *schema, const char *path, const char *select,
    char tags[][CACHE_TAG_MAX], size_t maxtags);

/*
 * The "<schema>.<table>" a write to path invalidates (named as by
 * cache_tags), or -1 (rpc, no table, malformed, does not fit taglen).
 */
int cache_write_tag(const char *schema, const char *path, char *tag,
    size_t taglen);

/* request side: what the client's Cache-Control asks */
enum cache_req {
	CACHE_REQ_NORMAL,
	CACHE_REQ_NO_CACHE,	/* revalidate: go upstream, store the answer */
	CACHE_REQ_NO_STORE,	/* bypass: neither read nor store */
};
/*
 * no-store wins over everything; no-cache, max-age=0 or an invalid max-age
 * revalidate; other directives are ignored.  Names are case-insensitive.
 * "Pragma: no-cache" counts only when there is no Cache-Control (NULL or
 * empty), as in RFC 9111 5.4.  Both may be NULL.
 */
enum cache_req cache_request_directive(const char *cache_control,
    const char *pragma);

/* response side: may it be stored, and for how long */
struct cache_resp_in {
	int		 status;
	const char	*cache_control;	/* upstream's, or NULL */
	int		 has_set_cookie;
	int		 has_vary_star;
	uint64_t	 default_ttl_s;	/* from config */
	uint64_t	 status_ttl_s;	/* cache-ttl-status for status, or 0 */
	uint64_t	 swr_s;		/* stale-while-revalidate window */
	uint64_t	 sie_s;		/* stale-if-error window */
};
struct cache_policy {
	int		 storable;
	uint64_t	 ttl_s;		/* max-age (s-maxage wins) or default */
	uint64_t	 swr_s;		/* upstream's directive wins if given */
	uint64_t	 sie_s;
};
/*
 * 1 if status may be given a lifetime with cache-ttl-status: those RFC
 * 9110 15.1 calls heuristically cacheable (203, 300, 301, 308, 404, 405,
 * 410, 414, 501) and 400, PostgREST's answer to a malformed filter, which
 * retrying does not change.  0 for any other status (200, 204 and 206
 * included: they are always storable).
 */
int cache_status_configurable(int status);
/*
 * Storable: status 200, 204 or 206, or a configurable status (above)
 * with a status_ttl_s; no Set-Cookie, no "Vary: *", no no-store, private
 * or no-cache (bare or with field names) from upstream; ttl is s-maxage,
 * else max-age, else default_ttl_s (status_ttl_s for a configurable
 * status); a ttl of 0 is not storable.  Upstream stale-while-revalidate=
 * and stale-if-error= override swr_s and sie_s; must-revalidate and
 * proxy-revalidate zero the configured windows (not explicit upstream
 * ones).  A configurable status gets no windows at all, so it is never
 * served stale (nor as a stale-if-error fallback).  Directive names are
 * case-insensitive, values may be quoted, the first occurrence of each
 * wins, an invalid value (empty, negative, not digits) counts as 0, and
 * values saturate at 2^31 (RFC 9111 1.2.2).  Not storable: every field 0.
 */
void cache_response_policy(const struct cache_resp_in *,
    struct cache_policy *);

enum cache_fresh {
	CACHE_FRESH,		/* serve it */
	CACHE_STALE_SWR,	/* serve it and refresh in the background */
	CACHE_STALE_SIE,	/* serve it only if upstream fails */
	CACHE_EXPIRED,		/* do not serve */
};
/*
 * Where an entry stored at stored_at (wall seconds) stands at now, with
 * age = now - stored_at: FRESH while age < ttl; else STALE_SWR while
 * age < ttl + swr; else STALE_SIE while age < ttl + sie (so SIE may last
 * beyond SWR, and SWR wins where both apply); else EXPIRED.  A clock that
 * went backwards (now < stored_at) is FRESH; a NULL or unstorable policy
 * is EXPIRED.  Sums saturate.
 */
enum cache_fresh cache_freshness(int64_t stored_at, const struct
    cache_policy *, int64_t now);
/* the Age header value: now - stored_at, 0 if negative, at most 2^31 */
int64_t cache_age(int64_t stored_at, int64_t now);
/*
 * A strong ETag for a body: "\"<22 chars base64url of the first 16 bytes
 * of BLAKE2b-256>\"" into out (CACHE_ETAG_LEN bytes; a smaller out gets
 * "").  body may be NULL when len is 0.
 */
void cache_etag(const void *body, size_t len, char *out, size_t outlen);
/*
 * 1 if an If-None-Match value matches etag: "*", or a list of
 * entity-tags compared weakly (RFC 9110 8.8.3.2: W/ ignored on both
 * sides; OWS and empty elements allowed).  A malformed value (unquoted
 * tags, "*" in a list, junk) matches nothing; so do NULLs.
 */
int cache_etag_match(const char *if_none_match, const char *etag);

#endif
