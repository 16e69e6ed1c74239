/* cache: pure cache policy: keys, tags, freshness (no I/O; time passed in) */
#ifndef SUPAGATE_CACHE_H
#define SUPAGATE_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct sbuf;

#define CACHE_KEY_LEN	32	/* BLAKE2b-256 digest */
#define CACHE_TAG_MAX	128	/* "schema.table", NUL included */
#define CACHE_TAGS_MAX	32	/* tags per entry */

/*
 * Canonical form of a raw query string: split on '&', each name and value
 * percent-decoded ('+' is a space) and re-encoded one way (unreserved
 * bytes as they are, everything else %XX uppercase), parameters sorted by
 * name with a stable sort (repeated names keep their order), "apikey"
 * parameters dropped, empty parameters dropped.  -1 on malformed
 * percent-encoding or if out overflows.
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
 * The key digest.  Prefer is split on ',', trimmed, lowercased, filtered
 * to count=, timezone=, and any token that changes the representation
 * (not return=, handling=, tx=, missing=, resolution=), then sorted.
 * Accept is trimmed and lowercased.  Fields are length-prefixed, so no
 * two different inputs collide by concatenation.
 */
void cache_key(const struct cache_key_in *, unsigned char out[CACHE_KEY_LEN]);

/*
 * The identity a response was produced for, as a printable string into
 * out: "jwt:<role>:<sub>" when verified (verified != 0), else
 * "bearer:<hex BLAKE2b of the whole Authorization value>", or "none".
 */
void cache_identity(const char *authorization, int verified,
    const char *role, const char *sub, char *out, size_t outlen);

/*
 * Tags of a REST read: "<schema>.<table>" of the path's first segment
 * after /rest/v1/ (not "rpc"), and of every embedded resource in the
 * select= value (decoded), e.g. "*,cities(name,countries(id))" tags
 * cities and countries too; "alias:table(...)" and "table!hint(...)" and
 * "...table(...)" forms are understood.  Writes n tags (deduplicated) to
 * tags and returns n, or -1 if the select is malformed (unbalanced
 * parentheses or quotes).
 */
int cache_tags(const char *schema, const char *path, const char *select,
    char tags[][CACHE_TAG_MAX], size_t maxtags);

/* the "<schema>.<table>" a write to path invalidates, or -1 (rpc, none) */
int cache_write_tag(const char *schema, const char *path, char *tag,
    size_t taglen);

/* request side: what the client's Cache-Control asks */
enum cache_req {
	CACHE_REQ_NORMAL,
	CACHE_REQ_NO_CACHE,	/* revalidate: go upstream, store the answer */
	CACHE_REQ_NO_STORE,	/* bypass: neither read nor store */
};
enum cache_req cache_request_directive(const char *cache_control,
    const char *pragma);

/* response side: may it be stored, and for how long */
struct cache_resp_in {
	int		 status;
	const char	*cache_control;	/* upstream's, or NULL */
	int		 has_set_cookie;
	int		 has_vary_star;
	uint64_t	 default_ttl_s;	/* from config */
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
 * Storable: status 200, 204 or 206; no Set-Cookie, no "Vary: *", no
 * no-store, private or no-cache from upstream; ttl is s-maxage, else
 * max-age, else default_ttl_s; a ttl of 0 is not storable.  Upstream
 * stale-while-revalidate= and stale-if-error= override swr_s and sie_s.
 */
void cache_response_policy(const struct cache_resp_in *,
    struct cache_policy *);

enum cache_fresh {
	CACHE_FRESH,		/* serve it */
	CACHE_STALE_SWR,	/* serve it and refresh in the background */
	CACHE_STALE_SIE,	/* serve it only if upstream fails */
	CACHE_EXPIRED,		/* do not serve */
};
/* where an entry stored at stored_at (wall seconds) stands at now */
enum cache_fresh cache_freshness(int64_t stored_at, const struct
    cache_policy *, int64_t now);
/* the Age header value */
int64_t cache_age(int64_t stored_at, int64_t now);
/* a strong ETag for a body: "\"<22 chars base64url of BLAKE2b>\"" */
void cache_etag(const void *body, size_t len, char *out, size_t outlen);
/* 1 if an If-None-Match value matches etag (lists, W/ and * handled) */
int cache_etag_match(const char *if_none_match, const char *etag);

#endif
