/* proxy_broker: Storage in the request path: the signed-URL broker,
 * invalidation by object writes, and Location rewriting for TUS */
#include "config.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "cache.h"
#include "conf.h"
#include "crypto.h"
#include "evloop.h"
#include "json.h"
#include "jwt.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "proxy.h"
#include "proxy_broker.h"
#include "proxy_cache.h"
#include "server.h"
#include "store.h"

#define BROKER_BODY_MAX		(1024 * 1024)	/* sign and write JSON */
#define BROKER_RESP_MAX		(1024 * 1024)	/* sign answers kept */
#define BROKER_PATHS_MAX	1000
#define BROKER_IDENT_MAX	256

enum broker_kind {
	BK_NONE,
	BK_SIGN,	/* POST /object/sign/<bucket>/<path> */
	BK_SIGN_BATCH,	/* POST /object/sign/<bucket> */
	BK_WRITE,	/* upload, update, delete of one object */
	BK_WRITE_JSON,	/* move, copy, remove: objects named in the body */
};

struct proxy_broker {
	enum broker_kind	 kind;
	char			*object;	/* "<bucket>/<path>" (BK_WRITE) */
	char			*bucket;	/* BK_SIGN_BATCH, BK_WRITE_JSON */
	int			 remove;	/* DELETE /object/<bucket> */
	struct sbuf		 body;		/* the request body we hold */
	struct sbuf		 resp;		/* the sign answer */
	int			 collecting;
	char			 ident[BROKER_IDENT_MAX];
	long			 expires_in;
	char			*transform;	/* canonical JSON or NULL */
	struct json		*merge;		/* batch: cached answers by index,
						 * null where upstream answers */
};

/* "a%2Fb" style escapes are kept: keys compare what clients send */
static char *
dup_until(const char *s, const char *stop)
{
	size_t	n = stop != NULL ? (size_t)(stop - s) : strlen(s);

	return strndup(s, n);
}

static struct proxy_broker *
pb_new(struct request *r, enum broker_kind kind)
{
	struct proxy_broker	*pb;

	if ((pb = calloc(1, sizeof(*pb))) == NULL)
		return NULL;
	pb->kind = kind;
	sbuf_init(&pb->body, BROKER_BODY_MAX);
	sbuf_init(&pb->resp, BROKER_RESP_MAX);
	r->broker = pb;
	return pb;
}

int
proxy_broker_begin(struct request *r)
{
	const char	*sub, *rest, *slash;
	int		 post = strcmp(r->method, "POST") == 0;
	int		 put = strcmp(r->method, "PUT") == 0;
	int		 del = strcmp(r->method, "DELETE") == 0;
	struct proxy_broker *pb;

	if (r->route != POLICY_ROUTE_STORAGE)
		return 0;
	policy_route_of(r->path, &sub);
	if (post && strncmp(sub, "/object/sign/", 13) == 0) {
		if (proxy_cache_store() == NULL)
			return 0;
		rest = sub + 13;
		slash = strchr(rest, '/');
		if (*rest == '\0' || (slash != NULL && slash[1] == '\0'))
			return 0;
		if ((pb = pb_new(r, slash == NULL ? BK_SIGN_BATCH :
		    BK_SIGN)) == NULL)
			return -1;
		pb->object = strdup(rest);
		pb->bucket = dup_until(rest, slash);
		pb->collecting = 1;
		return pb->object != NULL && pb->bucket != NULL ? 1 : -1;
	}
	if (post && (strcmp(sub, "/object/move") == 0 ||
	    strcmp(sub, "/object/copy") == 0)) {
		if ((pb = pb_new(r, BK_WRITE_JSON)) == NULL)
			return -1;
		pb->collecting = 1;
		return 0;
	}
	if ((post || put || del) && strncmp(sub, "/object/", 8) == 0) {
		rest = sub + 8;
		if (strncmp(rest, "upload/sign/", 12) == 0 && put)
			rest += 12;
		else if (strncmp(rest, "sign/", 5) == 0 ||
		    strncmp(rest, "list/", 5) == 0 ||
		    strncmp(rest, "public/", 7) == 0 ||
		    strncmp(rest, "info/", 5) == 0 ||
		    strncmp(rest, "upload/", 7) == 0 ||
		    strncmp(rest, "authenticated/", 14) == 0)
			return 0;
		if (*rest == '\0')
			return 0;
		slash = strchr(rest, '/');
		if (slash == NULL && del) {
			/* DELETE /object/<bucket> {"prefixes":[...]} */
			if ((pb = pb_new(r, BK_WRITE_JSON)) == NULL)
				return -1;
			pb->bucket = strdup(rest);
			pb->remove = 1;
			pb->collecting = 1;
			return pb->bucket != NULL ? 0 : -1;
		}
		if (slash == NULL || slash[1] == '\0')
			return 0;
		if ((pb = pb_new(r, BK_WRITE)) == NULL)
			return -1;
		pb->object = strdup(rest);
		return pb->object != NULL ? 0 : -1;
	}
	return 0;
}

int
proxy_broker_holds_body(const struct request *r)
{
	return r->broker != NULL && (r->broker->kind == BK_SIGN ||
	    r->broker->kind == BK_SIGN_BATCH);
}

int
proxy_broker_body(struct request *r, const char *p, size_t n)
{
	struct proxy_broker	*pb = r->broker;

	if (pb == NULL || !pb->collecting)
		return 0;
	if (sbuf_add(&pb->body, p, n) != 0) {
		if (proxy_broker_holds_body(r))
			return -1;
		/* a side copy for invalidation only: give up on it */
		pb->collecting = 0;
		sbuf_fini(&pb->body);
	}
	return 0;
}

/* the store key of one signed URL */
static void
sign_key(const struct proxy_broker *pb, const char *object,
    unsigned char out[CACHE_KEY_LEN])
{
	struct sbuf	b;

	sbuf_init(&b, 64 * 1024);
	sbuf_printf(&b, "sign\n%s\n%s\n%ld\n%s", pb->ident, object,
	    pb->expires_in, pb->transform != NULL ? pb->transform : "");
	crypto_digest(sbuf_str(&b), b.len, out);
	sbuf_fini(&b);
}

static void
object_tag(const char *object, char *tag, size_t len)
{
	snprintf(tag, len, "storage:%s", object);
}

/* a cached signedURL for object, or NULL (malloc'd) */
static char *
sign_lookup(const struct proxy_broker *pb, const char *object)
{
	struct store		*st = proxy_cache_store();
	struct store_entry	 e;
	unsigned char		 key[CACHE_KEY_LEN];
	char			*url = NULL;

	sign_key(pb, object, key);
	memset(&e, 0, sizeof(e));
	if (store_get(st, key, &e) == 1) {
		if (evloop_wall_s() < e.stored_at + (int64_t)e.ttl_s)
			url = strndup((const char *)e.body, e.body_len);
		store_entry_fini(&e);
	}
	return url;
}

/* remember a signed URL while it has share of expires_in left */
static void
sign_store(struct request *r, const char *object, const char *url)
{
	struct proxy_broker	*pb = r->broker;
	struct store		*st = proxy_cache_store();
	struct store_entry	 e;
	struct jwt_claims	 cl;
	unsigned char		 key[CACHE_KEY_LEN];
	char			 tags[1][CACHE_TAG_MAX];
	const char		*tok;
	int64_t			 now = evloop_wall_s(), until;

	if ((tok = strstr(url, "token=")) == NULL)
		return;
	tok += 6;
	memset(&cl, 0, sizeof(cl));
	if (jwt_decode(tok, strcspn(tok, "&"), &cl) != 0 || cl.exp <= now)
		return;
	until = cl.exp - (int64_t)(r->conf->sign_reuse_share *
	    (double)pb->expires_in + 0.999);
	if (until <= now)
		return;
	memset(&e, 0, sizeof(e));
	e.status = 200;
	e.headers = "";
	e.body = (unsigned char *)url;
	e.body_len = strlen(url);
	e.stored_at = now;
	e.ttl_s = (uint64_t)(until - now);
	object_tag(object, tags[0], sizeof(tags[0]));
	sign_key(pb, object, key);
	(void)store_put(st, key, r->path, &e, tags, 1);
}

static void
answer_json(struct request *r, const struct json *j)
{
	char	*s = json_print(j);

	proxy_local(r, 200, "application/json");
	if (s != NULL) {
		sbuf_add(&r->errbody, s, strlen(s));
		free(s);
	}
	r->cache_result = "HIT";
}

enum proxy_next
proxy_broker_decide(struct request *r)
{
	struct proxy_broker	*pb = r->broker;
	struct json		*req, *v, *paths, *out, *item, *rest;
	const char		*path;
	char			*url, *obj, *body;
	double			 expires_in;
	size_t			 i, n, hits = 0;

	assert(proxy_broker_holds_body(r));
	req = json_parse(sbuf_str(&pb->body), pb->body.len, NULL);
	if (json_num(json_get(req, "expiresIn"), &expires_in) == -1 ||
	    expires_in < 1 || expires_in > 1e9) {
		/* not ours to judge: upstream answers it */
		json_free(req);
		pb->kind = BK_NONE;
		return PROXY_CONTINUE;
	}
	pb->expires_in = (long)expires_in;
	if ((v = json_get(req, "transform")) != NULL)
		pb->transform = json_print(v);
	proxy_cache_identity(r, pb->ident, sizeof(pb->ident));
	r->cache_result = "MISS";
	if (pb->kind == BK_SIGN) {
		url = sign_lookup(pb, pb->object);
		json_free(req);
		if (url == NULL)
			return PROXY_CONTINUE;
		out = json_new(JSON_OBJECT);
		(void)json_add_str(out, "signedURL", url);
		free(url);
		answer_json(r, out);
		json_free(out);
		metrics.signed_urls_cache++;
		return PROXY_RESPOND;
	}
	/*
	 * Batch: cached paths are answered from the cache; the others go
	 * upstream in a smaller batch, and the two are merged in order.
	 */
	paths = json_get(req, "paths");
	n = json_type(paths) == JSON_ARRAY ? json_len(paths) : 0;
	if (n == 0 || n > BROKER_PATHS_MAX) {
		json_free(req);
		return PROXY_CONTINUE;
	}
	out = json_new(JSON_ARRAY);
	rest = json_new(JSON_ARRAY);
	for (i = 0; i < n; i++) {
		v = json_at(paths, i);
		path = json_str(v);
		url = NULL;
		if (path != NULL && asprintf(&obj, "%s/%s", pb->bucket,
		    path) != -1) {
			url = sign_lookup(pb, obj);
			free(obj);
		}
		if (url == NULL) {
			(void)json_push(out, json_new(JSON_NULL));
			(void)json_push(rest, json_dup(v));
			continue;
		}
		item = json_new(JSON_OBJECT);
		(void)json_add_null(item, "error");
		(void)json_add_str(item, "path", path);
		(void)json_add_str(item, "signedURL", url);
		(void)json_push(out, item);
		free(url);
		hits++;
	}
	if (hits == n) {
		json_free(req);
		json_free(rest);
		answer_json(r, out);
		json_free(out);
		metrics.signed_urls_cache += (uint64_t)n;
		return PROXY_RESPOND;
	}
	if (hits == 0) {
		json_free(req);
		json_free(rest);
		json_free(out);
		return PROXY_CONTINUE;
	}
	/* upstream signs only the rest: the held body becomes that batch */
	(void)json_replace(req, "paths", rest);
	body = json_print(req);
	json_free(req);
	if (body == NULL) {
		json_free(out);
		return PROXY_CONTINUE;
	}
	sbuf_fini(&pb->body);
	sbuf_init(&pb->body, BROKER_BODY_MAX);
	sbuf_add(&pb->body, body, strlen(body));
	free(body);
	pb->merge = out;
	metrics.signed_urls_cache += (uint64_t)hits;
	return PROXY_CONTINUE;
}

int
proxy_broker_merging(const struct request *r)
{
	return r->broker != NULL && r->broker->merge != NULL;
}

/* the upstream part of a merged batch is in: answer the whole batch */
static void
merge_answer(struct request *r)
{
	struct proxy_broker	*pb = r->broker;
	struct json		*up, *e;
	size_t			 i, j = 0;
	int			 ok;

	up = json_parse(sbuf_str(&pb->resp), pb->resp.len, NULL);
	ok = json_type(up) == JSON_ARRAY && r->status == 200;
	r->head.len = 0;
	r->head.overflow = 0;
	if (!ok) {
		/* upstream's own error, as it gave it */
		r->is_error = 1;
		sbuf_add(&r->head, "Content-Type: application/json\r\n", 32);
		sbuf_add(&r->errbody, sbuf_str(&pb->resp), pb->resp.len);
		json_free(up);
		return;
	}
	for (i = 0; i < json_len(pb->merge); i++) {
		if (json_type(json_at(pb->merge, i)) != JSON_NULL)
			continue;
		e = json_at(up, j++);
		(void)json_replace_at(pb->merge, i, e != NULL ? json_dup(e) :
		    json_new(JSON_NULL));
	}
	json_free(up);
	answer_json(r, pb->merge);
}

/* the upstream root of the storage route, as supagate reaches it */
static int
storage_root(const struct conf *c, char *out, size_t len)
{
	if (c->svc_upstream[CONF_SVC_STORAGE] != NULL)
		return snprintf(out, len, "%s",
		    c->svc_upstream[CONF_SVC_STORAGE]) < (int)len ? 0 : -1;
	if (c->upstream != NULL)
		return snprintf(out, len, "%s/storage/v1", c->upstream) <
		    (int)len ? 0 : -1;
	return -1;
}

/*
 * An absolute Location pointing at the storage upstream (TUS creates
 * answer with one) is rewritten to supagate's own address, so the
 * client's next PATCH comes through supagate too.
 */
static void
rewrite_location(struct request *r)
{
	char		 loc[4096], root[2048], *host;
	struct sbuf	 nh;
	const char	*p, *eol;
	size_t		 rl;

	if (policy_head_value(sbuf_str(&r->head), "Location", loc,
	    sizeof(loc)) != 0 || storage_root(r->conf, root,
	    sizeof(root)) != 0)
		return;
	rl = strlen(root);
	if (strncmp(loc, root, rl) != 0 || (loc[rl] != '/' && loc[rl] != '\0'))
		return;
	if ((host = (char *)server_header(r, "Host")) == NULL)
		return;
	sbuf_init(&nh, r->head.max);
	for (p = sbuf_str(&r->head); *p != '\0'; p = eol + (*eol != '\0')) {
		eol = strchr(p, '\n');
		if (eol == NULL)
			eol = p + strlen(p);
		if (strncasecmp(p, "Location:", 9) == 0)
			sbuf_printf(&nh, "Location: http://%s/storage/v1%s\r\n",
			    host, loc + rl);
		else {
			sbuf_add(&nh, p, eol - p);
			sbuf_add(&nh, "\n", 1);
		}
	}
	if (!nh.overflow) {
		sbuf_fini(&r->head);
		r->head = nh;
	} else
		sbuf_fini(&nh);
}

void
proxy_broker_head(struct request *r)
{
	if (r->route != POLICY_ROUTE_STORAGE)
		return;
	rewrite_location(r);
}

void
proxy_broker_data(struct request *r, const char *p, size_t n)
{
	struct proxy_broker	*pb = r->broker;

	if (pb == NULL || (pb->kind != BK_SIGN && pb->kind != BK_SIGN_BATCH))
		return;
	if (sbuf_add(&pb->resp, p, n) != 0)
		pb->kind = BK_NONE;	/* too big to be an answer we know */
}

static void
invalidate(const char *object)
{
	char	tag[CACHE_TAG_MAX];

	object_tag(object, tag, sizeof(tag));
	(void)proxy_cache_invalidate_tag(tag);
}

static void
invalidate_json(struct request *r)
{
	struct proxy_broker	*pb = r->broker;
	struct json		*j, *a;
	char			*obj;
	const char		*bucket, *b, *v;
	size_t			 i;

	if (!pb->collecting ||
	    (j = json_parse(sbuf_str(&pb->body), pb->body.len, NULL)) == NULL)
		return;
	if (pb->remove) {
		a = json_get(j, "prefixes");
		for (i = 0; json_type(a) == JSON_ARRAY && i < json_len(a) &&
		    i < BROKER_PATHS_MAX; i++) {
			v = json_str(json_at(a, i));
			if (v != NULL && asprintf(&obj, "%s/%s", pb->bucket,
			    v) != -1) {
				invalidate(obj);
				free(obj);
			}
		}
	} else {
		/* move and copy: the destination, and a moved source */
		bucket = json_str(json_get(j, "bucketId"));
		v = json_str(json_get(j, "sourceKey"));
		if (bucket != NULL && v != NULL &&
		    strstr(r->path, "/move") != NULL &&
		    asprintf(&obj, "%s/%s", bucket, v) != -1) {
			invalidate(obj);
			free(obj);
		}
		if ((b = json_str(json_get(j, "destinationBucket"))) != NULL)
			bucket = b;
		v = json_str(json_get(j, "destinationKey"));
		if (bucket != NULL && v != NULL &&
		    asprintf(&obj, "%s/%s", bucket, v) != -1) {
			invalidate(obj);
			free(obj);
		}
	}
	json_free(j);
}

static void
store_answer(struct request *r)
{
	struct proxy_broker	*pb = r->broker;
	struct json		*j, *e;
	const char		*v, *p;
	char			*obj;
	size_t			 i;

	if ((j = json_parse(sbuf_str(&pb->resp), pb->resp.len, NULL)) ==
	    NULL)
		return;
	if (pb->kind == BK_SIGN) {
		if ((v = json_str(json_get(j, "signedURL"))) != NULL) {
			sign_store(r, pb->object, v);
			metrics.signed_urls_upstream++;
		}
	} else if (json_type(j) == JSON_ARRAY) {
		for (i = 0; i < json_len(j); i++) {
			e = json_at(j, i);
			v = json_str(json_get(e, "signedURL"));
			p = json_str(json_get(e, "path"));
			if (v == NULL || p == NULL || asprintf(&obj, "%s/%s",
			    pb->bucket, p) == -1)
				continue;
			sign_store(r, obj, v);
			metrics.signed_urls_upstream++;
			free(obj);
		}
	}
	json_free(j);
}

void
proxy_broker_done(struct request *r, enum upstream_result res)
{
	struct proxy_broker	*pb = r->broker;

	if (pb == NULL || res != UPSTREAM_OK)
		return;
	if (pb->merge != NULL) {
		if (r->status >= 200 && r->status <= 299)
			store_answer(r);
		merge_answer(r);
		return;
	}
	if (r->status < 200 || r->status > 299)
		return;
	switch (pb->kind) {
	case BK_SIGN:
	case BK_SIGN_BATCH:
		store_answer(r);
		break;
	case BK_WRITE:
		invalidate(pb->object);
		break;
	case BK_WRITE_JSON:
		invalidate_json(r);
		break;
	case BK_NONE:
		break;
	}
}

struct sbuf *
proxy_broker_held_body(struct request *r)
{
	return r->broker != NULL ? &r->broker->body : NULL;
}

void
proxy_broker_free(struct request *r)
{
	struct proxy_broker	*pb = r->broker;

	if (pb == NULL)
		return;
	sbuf_fini(&pb->body);
	sbuf_fini(&pb->resp);
	free(pb->object);
	free(pb->bucket);
	free(pb->transform);
	json_free(pb->merge);
	explicit_bzero(pb->ident, sizeof(pb->ident));
	free(pb);
	r->broker = NULL;
}
