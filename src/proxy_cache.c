/* proxy_cache: the read cache in the request path (uses cache and store) */
#include "config.h"

#include <sys/stat.h>

#include <fcntl.h>

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "cache.h"
#include "conf.h"
#include "crypto.h"
#include "evloop.h"
#include "hot.h"
#include "jwks.h"
#include "jwt.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "proxy.h"
#include "proxy_cache.h"
#include "server.h"
#include "store.h"

#define PC_MAGIC	0x70636163u
#define PC_QUERY_MAX	16384
#define PC_IDENT_MAX	256

struct proxy_cache {
	unsigned		 magic;
	unsigned char		 key[CACHE_KEY_LEN];
	char			 tags[CACHE_TAGS_MAX][CACHE_TAG_MAX];
	size_t			 ntags;
	enum cache_req		 directive;
	int			 bypass;	/* client said no-store */
	int			 lead;		/* others may wait for us */
	int			 store;		/* store what upstream answers */
	int			 storing;	/* collecting the body */
	struct sbuf		 body;
	struct cache_policy	 policy;
	struct store_entry	 stale;		/* for stale-if-error */
	int			 stale_fd;	/* its body file, or -1 */
	int			 have_stale;
	char			 write_tag[CACHE_TAG_MAX];
	int			 write;		/* 1 table write, 2 POST rpc */
	int			 woke;		/* the leader we waited for ended */
	int			 storage;	/* a public Storage object */
	int			 revalidate;	/* asked upstream If-None-Match */
	struct request		*waiting_for;	/* our leader */
	struct request		*followers;	/* waiting for us */
	struct request		*next_follower;
	struct request		*next_leader;
};

static struct store	*st;
static struct request	*leaders;

/* the most used entries, in memory (hot.c); NULL when off */
static struct hot	*hot;

/*
 * Stored responses wait up to FLUSH_DELAY_MS to be written together: one
 * transaction (and one write of each page it touches) for all of them.
 * Reads see them at once; a crash loses at most that much.  While a WAL
 * checkpoint finishes (store_flush_due) they wait longer, trying again
 * every FLUSH_RETRY_MS.
 */
#define FLUSH_DELAY_MS	10
#define FLUSH_RETRY_MS	2
static int64_t		 flush_due = -1;

void
proxy_cache_flush(void)
{
	flush_due = -1;
	if (st == NULL)
		return;
	/*
	 * Always read back (store_bytes() writes what is queued first): a
	 * put that fills the queue writes it at once, and that write's
	 * bytes and evictions count too.
	 */
	metrics.cache_bytes = (int64_t)store_bytes(st);
	metrics.cache_evictions = (int64_t)store_evictions(st);
	metrics.cache_wal_bytes = (int64_t)store_wal_bytes(st);
	metrics.cache_checkpoints = (int64_t)store_checkpoints(st);
}

static int64_t
flush_hook_cb(void *arg)
{
	int64_t	now;

	(void)arg;
	if (st == NULL || store_queued(st) == 0) {
		flush_due = -1;
		return -1;
	}
	now = evloop_now_ms();
	if (flush_due == -1)
		flush_due = now + FLUSH_DELAY_MS;
	if (now < flush_due)
		return flush_due - now;
	/* a checkpoint finishing on its thread asks writes to wait */
	if (store_flush_due(st) == 1) {
		flush_due = now + FLUSH_RETRY_MS;
		return FLUSH_RETRY_MS;
	}
	proxy_cache_flush();
	return -1;
}

int
proxy_cache_setup(const struct conf *c)
{
	char	path[4096];

	if (c->cache_off)
		return 0;
	if (mkdir(c->state_dir, 0700) == -1 && errno != EEXIST)
		log_warn("mkdir %s", c->state_dir);
	if (snprintf(path, sizeof(path), "%s/cache.db", c->state_dir) >=
	    (int)sizeof(path))
		return -1;
	if ((st = store_open(path, c->cache_max_size)) == NULL) {
		log_warnx("cache disabled: cannot open %s", path);
		return -1;
	}
	if (evloop_hook(flush_hook_cb, NULL) != 0) {
		log_warnx("cache disabled: no event-loop hook left");
		store_close(st);
		st = NULL;
		return -1;
	}
	metrics.cache_bytes = (int64_t)store_bytes(st);
	hot = hot_new((size_t)c->cache_memory);
	return 0;
}

/*
 * The identity of supagate's own key, which every request without a
 * user token shares: computed once per configuration (conf serials
 * are never reused, unlike the addresses of freed configurations).
 */
static uint64_t		 own_serial;	/* of that configuration; 0: none */
static char		 own_identity[CACHE_IDENTITY_MIN];

void
proxy_cache_teardown(void)
{
	store_close(st);
	st = NULL;
	flush_due = -1;
	own_serial = 0;
	hot_free(hot);
	hot = NULL;
}

/* the value of parameter name in a raw query, decoded; -1 if absent */
static int
query_param(const char *q, const char *name, char *out, size_t outlen)
{
	size_t		 nlen = strlen(name), o = 0;
	const char	*p = q, *v;
	unsigned	 hi, lo;

	while (*p != '\0') {
		if (strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			for (v = p + nlen + 1; *v != '\0' && *v != '&'; v++) {
				char	ch = *v;

				if (ch == '+')
					ch = ' ';
				else if (ch == '%' && sscanf(v + 1, "%1x%1x",
				    &hi, &lo) == 2) {
					ch = (char)(hi << 4 | lo);
					v += 2;
				}
				if (o + 1 >= outlen)
					return -1;
				out[o++] = ch;
			}
			out[o] = '\0';
			return 0;
		}
		p = strchr(p, '&');
		if (p == NULL)
			break;
		p++;
	}
	return -1;
}

/* /rest/v1/<table> or a configured /rest/v1/rpc/<fn> */
static int
cacheable_path(const struct conf *c, const char *path)
{
	const char	*sub = path + strlen("/rest/v1");
	size_t		 i;

	if (sub[0] != '/' || sub[1] == '\0')
		return 0;
	sub++;
	if (strncmp(sub, "rpc/", 4) == 0) {
		for (i = 0; i < c->ncache_rpc; i++)
			if (strcmp(sub + 4, c->cache_rpc[i]) == 0)
				return 1;
		return 0;
	}
	return strchr(sub, '/') == NULL;
}

/* the lifetime for path: the longest cache-ttl-for prefix, else cache-ttl */
static uint64_t
ttl_for(const struct conf *c, const char *path)
{
	size_t		i, best = 0;
	uint64_t	ttl = c->cache_ttl_s;

	for (i = 0; i < c->ncache_ttl_for; i++) {
		size_t	n = strlen(c->cache_ttl_for[i].prefix);

		if (n > best && strncmp(path, c->cache_ttl_for[i].prefix,
		    n) == 0) {
			best = n;
			ttl = c->cache_ttl_for[i].ttl_s;
		}
	}
	return ttl;
}

/* the cache-ttl-status lifetime of status, 0 if none is configured */
static uint64_t
status_ttl(const struct conf *c, int status)
{
	size_t	i;

	for (i = 0; i < c->ncache_ttl_status; i++)
		if (c->cache_ttl_status[i].status == status)
			return c->cache_ttl_status[i].ttl_s;
	return 0;
}

#define STORAGE_PUBLIC	"/storage/v1/object/public/"

static const char *
schema_of(struct request *r, const char *header)
{
	const char	*s = server_header(r, header);

	return s != NULL && *s != '\0' ? s : "public";
}

struct store *
proxy_cache_store(void)
{
	return st;
}

long
proxy_cache_invalidate_tag(const char *tag)
{
	long	n;

	if (st == NULL)
		return 0;
	n = store_invalidate_tag(st, tag);
	hot_clear(hot);
	if (n > 0)
		metrics.cache_invalidations += n;
	return n;
}

/*
 * Signature checks cost up to a millisecond (ES256, RSA-4096), too much
 * for every cache hit, so the last tokens whose signature held are
 * remembered by digest, with the configuration and fetched key set they
 * were checked under; exp and nbf are checked on every use.
 */
#define VERIFIED_SLOTS	64

static struct verified {
	unsigned char		digest[CACHE_KEY_LEN];
	uint64_t		conf_serial;	/* 0: empty slot */
	uint64_t		jwks_gen;
	struct jwt_claims	cl;
} verified[VERIFIED_SLOTS];

/*
 * 1 if tok verifies (signature, exp, nbf) with jwt-secret-file,
 * jwt-jwks-file or the set fetched by jwt-jwks-fetch
 */
static int
verify_bearer(const struct conf *c, const char *tok, struct jwt_claims *cl)
{
	struct jwt_keys		 k;
	struct verified		*slot;
	unsigned char		 d[CACHE_KEY_LEN];
	enum jwt_verdict	 v;
	int64_t			 now = evloop_wall_s();
	size_t			 len = strlen(tok);

	memset(&k, 0, sizeof(k));
	k.sets[0] = c->jwks;
	k.sets[1] = jwks_current();
	if (c->jwt_secret == NULL && k.sets[0] == NULL && k.sets[1] == NULL)
		return 0;
	crypto_digest(tok, len, d);
	slot = &verified[d[0] % VERIFIED_SLOTS];
	if (slot->conf_serial == c->serial &&
	    slot->jwks_gen == jwks_generation() &&
	    memcmp(slot->digest, d, sizeof(d)) == 0) {
		*cl = slot->cl;
		return jwt_claims_current(cl, now);
	}
	if (c->jwt_secret != NULL) {
		k.secret = c->jwt_secret->buf;
		k.secretlen = c->jwt_secret->len;
	}
	v = jwt_verify(tok, len, &k, now, cl);
	if (v == JWT_VALID || v == JWT_EXPIRED) {
		memcpy(slot->digest, d, sizeof(d));
		slot->conf_serial = c->serial;
		slot->jwks_gen = jwks_generation();
		slot->cl = *cl;
	} else if (v == JWT_UNKNOWN_KID)
		jwks_unknown_kid();	/* keys rotated? */
	return v == JWT_VALID;
}

/* the identity the upstream answer is for, from what is sent upstream */
void
proxy_cache_identity(struct request *r, char *out, size_t outlen)
{
	const struct conf	*c = r->conf;
	struct jwt_claims	 cl;
	const char		*a = r->authz, *tok;

	if (a == NULL || r->authz_own) {
		/*
		 * No Authorization, or supagate's own key as the bearer:
		 * the key alone decides the role (no need to verify it)
		 */
		if (own_serial != c->serial) {
			own_serial = c->serial;
			cache_identity(c->apikey->buf, 0, NULL, NULL,
			    own_identity, sizeof(own_identity));
		}
		if (outlen >= sizeof(own_identity))
			memcpy(out, own_identity, sizeof(own_identity));
		else if (outlen > 0)
			out[0] = '\0';	/* as cache_identity() does */
		return;
	}
	tok = strncasecmp(a, "Bearer ", 7) == 0 ? a + 7 : NULL;
	/* supagate's own session token came from Auth: its claims hold */
	if (tok != NULL && r->authz_session &&
	    jwt_decode(tok, strlen(tok), &cl) == 0) {
		cache_identity(a, 1, cl.role, cl.sub, out, outlen);
		return;
	}
	if (tok != NULL && verify_bearer(c, tok, &cl)) {
		cache_identity(a, 1, cl.role, cl.sub, out, outlen);
		return;
	}
	cache_identity(a, 0, NULL, NULL, out, outlen);
}

static void
follow(struct request *r, struct request *leader)
{
	r->cache->waiting_for = leader;
	r->cache->next_follower = leader->cache->followers;
	leader->cache->followers = r;
}

static struct request *
find_leader(const unsigned char *key)
{
	struct request	*l;

	for (l = leaders; l != NULL; l = l->cache->next_leader)
		if (memcmp(l->cache->key, key, CACHE_KEY_LEN) == 0)
			return l;
	return NULL;
}

static void
release_followers(struct request *r)
{
	struct proxy_cache	*pc = r->cache;
	struct request		**pp, *f;

	if (pc->lead) {
		for (pp = &leaders; *pp != NULL;
		    pp = &(*pp)->cache->next_leader)
			if (*pp == r) {
				*pp = pc->next_leader;
				break;
			}
		pc->lead = 0;
	}
	while ((f = pc->followers) != NULL) {
		pc->followers = f->cache->next_follower;
		f->cache->next_follower = NULL;
		f->cache->waiting_for = NULL;
		f->cache->woke = 1;
		server_wake(f);
	}
}

/*
 * Answer r from entry e: hit, stale or 304.  The body is e's, or, when
 * e's body is NULL, the file fd (hot.c), duplicated for the request.
 */
static void
answer_from(struct request *r, const struct store_entry *e, int fd,
    const char *detail, int64_t now)
{
	const char	*inm = server_header(r, "If-None-Match");
	int64_t		 age = cache_age(e->stored_at, now);
	int64_t		 ttl = e->stored_at + (int64_t)e->ttl_s - now;
	int		 notmod;

	notmod = inm != NULL && e->etag[0] != '\0' &&
	    cache_etag_match(inm, e->etag);
	r->status = notmod ? 304 : e->status;
	r->is_error = 1;	/* a local answer; head keeps CORS lines */
	r->errbody.len = 0;
	r->errbody.overflow = 0;
	if (!notmod)
		sbuf_add(&r->head, e->headers, e->headers_len);
	if (e->etag[0] != '\0')
		sbuf_printf(&r->head, "ETag: %s\r\n", e->etag);
	sbuf_printf(&r->head, "Age: %" PRId64 "\r\n", age);
	if (detail == NULL)
		sbuf_printf(&r->head, "Cache-Status: supagate; hit; ttl=%"
		    PRId64 "%s\r\n", ttl, r->cache->woke ? "; collapsed" : "");
	else
		sbuf_printf(&r->head, "Cache-Status: supagate; %s; ttl=%"
		    PRId64 "; detail=%s\r\n", strcmp(detail,
		    "stale-while-revalidate") == 0 ? "hit" : "fwd=stale", ttl,
		    detail);
	if (!notmod && e->body_len > 0 && e->body == NULL) {
		if (r->body_fd != -1)
			close(r->body_fd);
		r->body_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		r->body_fd_len = e->body_len;
		if (r->body_fd == -1) {
			proxy_error(r, 503, "overloaded", "out of file "
			    "descriptors");
			return;
		}
	} else if (!notmod && e->body_len > 0) {
		if (e->body_len > r->errbody.max)
			r->errbody.max = e->body_len;
		sbuf_add(&r->errbody, (const char *)e->body, e->body_len);
	}
	r->cache_result = detail == NULL ? "HIT" : "STALE";
}

/*
 * answer_from() an entry of store_get_fd(): a body in memory moves to the
 * answer; a body file (fd) is duplicated as answer_from() does.
 */
static void
answer_take(struct request *r, struct store_entry *e, int fd,
    const char *detail, int64_t now)
{
	unsigned char	*body = e->body;
	size_t		 len = e->body_len;

	if (body == NULL) {
		answer_from(r, e, fd, detail, now);
		return;
	}
	e->body = NULL;
	e->body_len = 0;
	answer_from(r, e, -1, detail, now);
	if (body == NULL || len == 0 || r->status == 304) {
		free(body);
		return;
	}
	/* store_get() leaves a NUL after the body, as an sbuf has */
	free(r->errbody.s);
	r->errbody.s = (char *)body;
	r->errbody.len = len;
	r->errbody.cap = len + 1;
	if (r->errbody.max < len)
		r->errbody.max = len;
}

/* the freshness rules of a stored entry */
static const struct cache_policy *
entry_policy(const struct store_entry *e, struct cache_policy *pol)
{
	memset(pol, 0, sizeof(*pol));
	pol->storable = 1;
	pol->ttl_s = e->ttl_s;
	pol->swr_s = e->swr_s;
	pol->sie_s = e->sie_s;
	return pol;
}

/* let go of the entry kept for stale-if-error */
static void
stale_drop(struct proxy_cache *pc)
{
	store_entry_fini(&pc->stale);
	if (pc->stale_fd != -1)
		close(pc->stale_fd);
	pc->stale_fd = -1;
	pc->have_stale = 0;
}

static enum pc_next
lookup(struct request *r)
{
	struct proxy_cache	*pc = r->cache;
	struct store_entry	 e;
	struct store_entry	*he;
	int			 hfd, bfd = -1;
	struct cache_policy	 pol;
	struct request		*leader;
	int64_t			 now = evloop_wall_s();
	int			 rc;

	if (pc->directive == CACHE_REQ_NORMAL &&
	    (he = hot_get(hot, pc->key, &hfd)) != NULL &&
	    cache_freshness(he->stored_at, entry_policy(he, &pol), now) ==
	    CACHE_FRESH) {
		/* the store's LRU must see it: it is the entry kept longest */
		store_touch(st, he);
		answer_from(r, he, hfd, NULL, now);
		metrics.cache_hits++;
		return PC_ANSWERED;
	}
	if (pc->directive == CACHE_REQ_NORMAL) {
		memset(&e, 0, sizeof(e));
		rc = store_get_fd(st, pc->key, &e, &bfd);
		if (rc == 1) {
			switch (cache_freshness(e.stored_at,
			    entry_policy(&e, &pol), now)) {
			case CACHE_FRESH:
				/* served from the set when it took the entry */
				hot_put_fd(hot, pc->key, &e, bfd);
				if ((he = hot_get(hot, pc->key, &hfd)) != NULL)
					answer_from(r, he, hfd, NULL, now);
				else
					answer_take(r, &e, bfd, NULL, now);
				if (bfd != -1)
					close(bfd);
				store_entry_fini(&e);
				metrics.cache_hits++;
				return PC_ANSWERED;
			case CACHE_STALE_SWR:
				/* served stale, refreshed in the background */
				answer_take(r, &e, bfd,
				    "stale-while-revalidate", now);
				if (bfd != -1)
					close(bfd);
				store_entry_fini(&e);
				metrics_cache_stale(METRICS_STALE_SWR);
				if (find_leader(pc->key) == NULL &&
				    proxy_refresh(r) != 0)
					log_debug("%s: no background refresh",
					    __func__);
				return PC_ANSWERED;
			case CACHE_STALE_SIE:
			case CACHE_EXPIRED:
				/*
				 * Kept for stale-if-error, and for Storage
				 * objects to revalidate with their ETag.
				 */
				/*
				 * A body file is kept open, not read: it is
				 * never rewritten while someone holds it.
				 */
				stale_drop(pc);
				pc->stale = e;
				pc->stale_fd = bfd;
				pc->have_stale = 1;
				pc->revalidate = pc->storage &&
				    e.etag[0] != '\0' &&
				    server_header(r, "If-None-Match") == NULL;
				if (cache_freshness(e.stored_at, &pol, now) ==
				    CACHE_EXPIRED && !pc->revalidate)
					stale_drop(pc);
				break;
			}
		}
	}
	if ((leader = find_leader(pc->key)) != NULL && leader != r) {
		follow(r, leader);
		metrics.cache_collapsed++;
		return PC_WAIT;
	}
	if (strcmp(r->method, "GET") == 0) {
		pc->store = 1;
		pc->lead = 1;
		pc->next_leader = leaders;
		leaders = r;
	}
	metrics.cache_misses++;
	r->cache_result = "MISS";
	return PC_UPSTREAM;
}

static struct proxy_cache *
pc_new(struct request *r)
{
	struct proxy_cache	*pc;

	if ((pc = calloc(1, sizeof(*pc))) == NULL)
		return NULL;
	pc->magic = PC_MAGIC;
	pc->stale_fd = -1;
	r->cache = pc;
	return pc;
}

/*
 * GET and HEAD of public Storage objects (cache-storage-public on): one
 * entry for everyone, revalidated with the object's ETag once stale.
 * Ranged requests pass.
 */
static enum pc_next
storage_begin(struct request *r)
{
	const struct conf	*c = r->conf;
	struct proxy_cache	*pc;
	struct cache_key_in	 in;
	struct sbuf		 canon;

	if (c->cache_storage_public != 0 ||
	    (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) ||
	    strncmp(r->path, STORAGE_PUBLIC, strlen(STORAGE_PUBLIC)) != 0 ||
	    r->path[strlen(STORAGE_PUBLIC)] == '\0' ||
	    server_header(r, "Range") != NULL)
		return PC_UPSTREAM;
	if ((pc = pc_new(r)) == NULL)
		return PC_UPSTREAM;
	pc->storage = 1;
	r->cache_result = "PASS";
	pc->directive = cache_request_directive(server_header(r,
	    "Cache-Control"), server_header(r, "Pragma"));
	if (pc->directive == CACHE_REQ_NO_STORE) {
		pc->bypass = 1;
		return PC_UPSTREAM;
	}
	snprintf(pc->tags[0], sizeof(pc->tags[0]), "storage:%s",
	    r->path + strlen(STORAGE_PUBLIC));
	pc->ntags = 1;
	sbuf_init(&canon, PC_QUERY_MAX);
	if (cache_canon_query(r->query, &canon) != 0) {
		sbuf_fini(&canon);
		pc->bypass = 1;
		return PC_UPSTREAM;
	}
	memset(&in, 0, sizeof(in));
	in.method = r->method;
	in.path = r->path;
	in.canon_query = sbuf_str(&canon);
	in.accept = server_header(r, "Accept");
	in.identity = "public";
	cache_key(&in, pc->key);
	sbuf_fini(&canon);
	return lookup(r);
}

const char *
proxy_cache_if_none_match(struct request *r)
{
	struct proxy_cache	*pc = r->cache;

	return pc != NULL && pc->revalidate ? pc->stale.etag : NULL;
}

int
proxy_cache_revalidated(struct request *r, int status)
{
	struct proxy_cache	*pc = r->cache;
	struct store_entry	*e;
	char			 cc[1024];
	int64_t			 now = evloop_wall_s();

	if (pc == NULL || !pc->revalidate || status != 304)
		return 0;
	/* still current: serve what we hold, fresh again for its ttl */
	e = &pc->stale;
	if (policy_head_value(sbuf_str(&r->head), "Cache-Control", cc,
	    sizeof(cc)) == 0 && strstr(cc, "max-age=") != NULL)
		e->ttl_s = strtoull(strstr(cc, "max-age=") + 8, NULL, 10);
	e->stored_at = now;
	/* stored again with its body read from the file kept open */
	if (pc->stale_fd == -1 || store_entry_load(e, pc->stale_fd) == 0)
		(void)store_put(st, pc->key, r->path, e, pc->tags,
		    pc->ntags);
	hot_drop(hot, pc->key);
	r->head.len = 0;
	answer_from(r, e, pc->stale_fd, NULL, now);
	r->cache_result = "HIT";
	/* replace the hit's Cache-Status: this one was checked upstream */
	{
		char	*at = strstr(r->head.s, "Cache-Status: ");

		if (at != NULL) {
			r->head.len = (size_t)(at - r->head.s);
			r->head.s[r->head.len] = '\0';
		}
	}
	sbuf_printf(&r->head, "Cache-Status: supagate; fwd=stale; "
	    "fwd-status=304; stored\r\n");
	metrics.cache_hits++;
	release_followers(r);
	return 1;
}

enum pc_next
proxy_cache_begin(struct request *r)
{
	const struct conf	*c = r->conf;
	struct proxy_cache	*pc;
	struct cache_key_in	 in;
	struct sbuf		 canon;
	char			 ident[PC_IDENT_MAX], *select;
	int			 n;

	if (st == NULL)
		return PC_UPSTREAM;
	if (r->route == POLICY_ROUTE_STORAGE)
		return storage_begin(r);
	if (r->route != POLICY_ROUTE_REST)
		return PC_UPSTREAM;
	if (strcmp(r->method, "POST") == 0 || strcmp(r->method, "PATCH") == 0 ||
	    strcmp(r->method, "PUT") == 0 || strcmp(r->method, "DELETE") == 0) {
		if ((pc = pc_new(r)) == NULL)
			return PC_UPSTREAM;
		if (strncmp(r->path, "/rest/v1/rpc/", 13) == 0)
			pc->write = strcmp(r->method, "POST") == 0 &&
			    !c->cache_rpc_keep ? 2 : 0;
		else if (cache_write_tag(schema_of(r, "Content-Profile"),
		    r->path, pc->write_tag, sizeof(pc->write_tag)) == 0)
			pc->write = 1;
		return PC_UPSTREAM;
	}
	if ((strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) ||
	    !cacheable_path(c, r->path))
		return PC_UPSTREAM;
	if ((pc = pc_new(r)) == NULL)
		return PC_UPSTREAM;
	pc->directive = cache_request_directive(server_header(r,
	    "Cache-Control"), server_header(r, "Pragma"));
	r->cache_result = "PASS";
	if (pc->directive == CACHE_REQ_NO_STORE) {
		pc->bypass = 1;
		return PC_UPSTREAM;
	}
	if ((select = malloc(PC_QUERY_MAX)) == NULL)
		return PC_UPSTREAM;
	if (query_param(r->query, "select", select, PC_QUERY_MAX) != 0)
		snprintf(select, PC_QUERY_MAX, "*");
	n = cache_tags(schema_of(r, "Accept-Profile"), r->path, select,
	    pc->tags, CACHE_TAGS_MAX);
	free(select);
	sbuf_init(&canon, PC_QUERY_MAX);
	if (n < 0 || cache_canon_query(r->query, &canon) != 0) {
		sbuf_fini(&canon);
		pc->bypass = 1;		/* malformed: let upstream judge */
		return PC_UPSTREAM;
	}
	pc->ntags = (size_t)n;
	proxy_cache_identity(r, ident, sizeof(ident));
	memset(&in, 0, sizeof(in));
	in.method = r->method;
	in.path = r->path;
	in.canon_query = sbuf_str(&canon);
	in.accept = server_header(r, "Accept");
	in.accept_profile = server_header(r, "Accept-Profile");
	in.prefer = server_header(r, "Prefer");
	in.range = server_header(r, "Range");
	in.range_unit = server_header(r, "Range-Unit");
	in.identity = ident;
	cache_key(&in, pc->key);
	sbuf_fini(&canon);
	explicit_bzero(ident, sizeof(ident));
	return lookup(r);
}

int
proxy_cache_adopt(struct request *d, struct request *src)
{
	struct proxy_cache	*pc, *spc = src->cache;

	if (spc == NULL || (pc = pc_new(d)) == NULL)
		return -1;
	memcpy(pc->key, spc->key, sizeof(pc->key));
	memcpy(pc->tags, spc->tags, sizeof(pc->tags));
	pc->ntags = spc->ntags;
	pc->store = 1;
	pc->lead = 1;
	pc->next_leader = leaders;
	leaders = d;
	return 0;
}

enum pc_next
proxy_cache_retry(struct request *r)
{
	struct proxy_cache	*pc = r->cache;

	assert(pc != NULL && pc->magic == PC_MAGIC);
	if (pc->waiting_for != NULL)
		return PC_WAIT;
	return lookup(r);
}

void
proxy_cache_head(struct request *r)
{
	struct proxy_cache	*pc = r->cache;
	const struct conf	*c = r->conf;
	struct cache_resp_in	 in;
	char			 cc[1024], len[256];
	long			 n;

	if (pc == NULL)
		return;
	if (pc->write != 0) {
		if (r->status < 200 || r->status > 299)
			return;
		n = pc->write == 1 ? store_invalidate_tag(st, pc->write_tag) :
		    store_purge_prefix(st, "/rest/v1/");
		hot_clear(hot);
		if (n > 0)
			metrics.cache_invalidations += n;
		metrics.cache_bytes = (int64_t)store_bytes(st);
		return;
	}
	if (pc->bypass) {
		sbuf_printf(&r->head, "Cache-Status: supagate; fwd=request; "
		    "fwd-status=%d\r\n", r->status);
		return;
	}
	memset(&in, 0, sizeof(in));
	in.status = r->status;
	in.cache_control = policy_head_value(sbuf_str(&r->head),
	    "Cache-Control", cc, sizeof(cc)) == 0 ? cc : NULL;
	in.has_set_cookie = policy_head_value(sbuf_str(&r->head),
	    "Set-Cookie", len, sizeof(len)) == 0;
	in.has_vary_star = policy_head_value(sbuf_str(&r->head), "Vary",
	    len, sizeof(len)) == 0 && strchr(len, '*') != NULL;
	in.default_ttl_s = ttl_for(c, r->path);
	in.status_ttl_s = pc->storage ? 0 : status_ttl(c, r->status);
	in.swr_s = c->cache_swr_s;
	in.sie_s = c->cache_sie_s;
	cache_response_policy(&in, &pc->policy);
	if (pc->storage) {
		/*
		 * Objects are kept even when they must be revalidated
		 * every time (no-cache): the ETag makes that cheap.
		 */
		pc->policy.storable = r->status == 200 && !in.has_set_cookie &&
		    (in.cache_control == NULL ||
		    (strstr(in.cache_control, "no-store") == NULL &&
		    strstr(in.cache_control, "private") == NULL)) &&
		    policy_head_value(sbuf_str(&r->head), "ETag", len,
		    sizeof(len)) == 0;
		if (pc->policy.ttl_s == 0 || in.cache_control == NULL ||
		    strstr(in.cache_control, "no-cache") != NULL)
			pc->policy.ttl_s = in.cache_control != NULL &&
			    strstr(in.cache_control, "max-age=") != NULL &&
			    strstr(in.cache_control, "no-cache") == NULL ?
			    strtoull(strstr(in.cache_control, "max-age=") + 8,
			    NULL, 10) : 0;
	}
	if (pc->store && pc->policy.storable &&
	    (policy_head_value(sbuf_str(&r->head), "Content-Length", len,
	    sizeof(len)) != 0 || strtoull(len, NULL, 10) <=
	    c->cache_max_object)) {
		pc->storing = 1;
		sbuf_init(&pc->body, c->cache_max_object);
	}
	sbuf_printf(&r->head, "Cache-Status: supagate; fwd=%s; fwd-status=%d"
	    "%s\r\n", pc->directive == CACHE_REQ_NO_CACHE ? "request" : "miss",
	    r->status, pc->storing ? "; stored" : "");
}

void
proxy_cache_data(struct request *r, const char *p, size_t n)
{
	struct proxy_cache	*pc = r->cache;

	if (pc == NULL || !pc->storing)
		return;
	if (sbuf_add(&pc->body, p, n) != 0) {
		/* bigger than cache-max-object: pass it through unstored */
		pc->storing = 0;
		sbuf_fini(&pc->body);
	}
}

/* the upstream header lines worth replaying from the cache */
static void
replay_headers(const char *p, struct sbuf *out)
{
	static const char *drop[] = {
		"Date", "Age", "Cache-Status", "Set-Cookie", "Content-Length",
		"Transfer-Encoding", "Connection", "Keep-Alive", "ETag",
		"Access-Control-Allow-Origin", "Vary", NULL
	};
	struct head_line	 l;
	size_t			 i;
	int			 skip;

	while (policy_head_next(&p, &l)) {
		skip = 0;
		for (i = 0; drop[i] != NULL; i++)
			if (strlen(drop[i]) == l.nlen &&
			    strncasecmp(l.name, drop[i], l.nlen) == 0)
				skip = 1;
		if (skip)
			continue;
		sbuf_add(out, l.name, l.nlen);
		sbuf_add(out, ": ", 2);
		sbuf_add(out, l.value, l.vlen);
		sbuf_add(out, "\r\n", 2);
	}
}

void
proxy_cache_done(struct request *r, enum upstream_result res)
{
	struct proxy_cache	*pc = r->cache;
	struct store_entry	 e;
	struct sbuf		 hdrs;
	char			 etag[64];

	if (pc == NULL)
		return;
	if (pc->storing && res == UPSTREAM_OK) {
		sbuf_init(&hdrs, 64 * 1024);
		replay_headers(sbuf_str(&r->head), &hdrs);
		memset(&e, 0, sizeof(e));
		e.status = r->status;
		e.headers = hdrs.s != NULL ? hdrs.s : "";
		e.headers_len = hdrs.len;
		e.body = (unsigned char *)pc->body.s;
		e.body_len = pc->body.len;
		/* no validator for an error: RFC 9110 13.2.2 (no 304) */
		if (r->status / 100 != 2)
			e.etag[0] = '\0';
		else if (policy_head_value(sbuf_str(&r->head), "ETag", etag,
		    sizeof(etag)) == 0)
			snprintf(e.etag, sizeof(e.etag), "%s", etag);
		else
			cache_etag(e.body, e.body_len, e.etag, sizeof(e.etag));
		e.stored_at = evloop_wall_s();
		e.ttl_s = pc->policy.ttl_s;
		e.swr_s = pc->policy.swr_s;
		e.sie_s = pc->policy.sie_s;
		hot_drop(hot, pc->key);
		/* queued; flush_hook_cb writes it and counts */
		if (!hdrs.overflow)
			(void)store_put(st, pc->key, r->path, &e, pc->tags,
			    pc->ntags);
		sbuf_fini(&hdrs);
	}
	pc->storing = 0;
	sbuf_fini(&pc->body);
	release_followers(r);
}

int
proxy_cache_keeps_status(struct request *r, int status)
{
	struct proxy_cache	*pc = r->cache;

	return pc != NULL && !pc->storage && pc->write == 0 &&
	    status_ttl(r->conf, status) > 0;
}

int
proxy_cache_stale(struct request *r, const char *why)
{
	struct proxy_cache	*pc = r->cache;
	char			 detail[64];

	if (pc == NULL || !pc->have_stale)
		return 0;
	snprintf(detail, sizeof(detail), "stale-if-error; fwd-error=%s",
	    why);
	answer_from(r, &pc->stale, pc->stale_fd, detail, evloop_wall_s());
	metrics_cache_stale(METRICS_STALE_ERROR);
	release_followers(r);
	return 1;
}

void
proxy_cache_free(struct request *r)
{
	struct proxy_cache	*pc = r->cache;
	struct request		**pp;

	if (pc == NULL)
		return;
	assert(pc->magic == PC_MAGIC);
	/* followers of a leader that went away look again (and may lead) */
	release_followers(r);
	if (pc->waiting_for != NULL) {
		for (pp = &pc->waiting_for->cache->followers; *pp != NULL;
		    pp = &(*pp)->cache->next_follower)
			if (*pp == r) {
				*pp = pc->next_follower;
				break;
			}
	}
	stale_drop(pc);
	sbuf_fini(&pc->body);
	pc->magic = 0;
	free(pc);
	r->cache = NULL;
}

void
proxy_cache_purge(struct request *r)
{
	char	v[4096];
	long	n = -1;

	proxy_local(r, 200, "application/json");
	if (st == NULL) {
		proxy_error(r, 409, "cache_off", "the cache is off");
		return;
	}
	if (query_param(r->query, "tag", v, sizeof(v)) == 0)
		n = store_invalidate_tag(st, v);
	else if (query_param(r->query, "prefix", v, sizeof(v)) == 0 &&
	    v[0] == '/')
		n = store_purge_prefix(st, v);
	else if (query_param(r->query, "all", v, sizeof(v)) == 0 &&
	    strcmp(v, "1") == 0)
		n = store_purge_all(st);
	else {
		proxy_error(r, 400, "bad_request", "purge needs tag=schema."
		    "table, prefix=/path or all=1");
		return;
	}
	hot_clear(hot);
	if (n < 0) {
		proxy_error(r, 500, "store_error", "the cache store failed");
		return;
	}
	metrics.cache_invalidations += n;
	metrics.cache_bytes = (int64_t)store_bytes(st);
	sbuf_printf(&r->errbody, "{\"purged\":%ld}", n);
}

void
proxy_cache_health(struct sbuf *b)
{
	if (st == NULL) {
		sbuf_printf(b, "\"cache\":{\"enabled\":false}");
		return;
	}
	sbuf_printf(b, "\"cache\":{\"enabled\":true,\"entries\":%" PRIu64
	    ",\"bytes\":%" PRIu64 "}", store_count(st), store_bytes(st));
}
