/* proxy_broker: Storage in the request path: the signed-URL broker,
 * invalidation by object writes, and Location rewriting for TUS */
#include "config.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "cache.h"
#include "conf.h"
#include "crypto.h"
#include "evloop.h"
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
	cJSON			*merge;		/* batch: cached answers by index,
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
answer_json(struct request *r, cJSON *j)
{
	char	*s = cJSON_PrintUnformatted(j);

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
	cJSON			*req, *v, *paths, *out, *item, *rest;
	char			*url, *obj, *body;
	int			 i, n, hits = 0;

	assert(proxy_broker_holds_body(r));
	req = cJSON_ParseWithLength(sbuf_str(&pb->body), pb->body.len);
	v = req != NULL ? cJSON_GetObjectItemCaseSensitive(req,
	    "expiresIn") : NULL;
	if (v == NULL || !cJSON_IsNumber(v) || v->valuedouble < 1 ||
	    v->valuedouble > 1e9) {
		/* not ours to judge: upstream answers it */
		cJSON_Delete(req);
		pb->kind = BK_NONE;
		return PROXY_CONTINUE;
	}
	pb->expires_in = (long)v->valuedouble;
	if ((v = cJSON_GetObjectItemCaseSensitive(req, "transform")) != NULL)
		pb->transform = cJSON_PrintUnformatted(v);
	proxy_cache_identity(r, pb->ident, sizeof(pb->ident));
	r->cache_result = "MISS";
	if (pb->kind == BK_SIGN) {
		url = sign_lookup(pb, pb->object);
		cJSON_Delete(req);
		if (url == NULL)
			return PROXY_CONTINUE;
		out = cJSON_CreateObject();
		cJSON_AddStringToObject(out, "signedURL", url);
		free(url);
		answer_json(r, out);
		cJSON_Delete(out);
		metrics.signed_urls_cache++;
		return PROXY_RESPOND;
	}
	/*
	 * Batch: cached paths are answered from the cache; the others go
	 * upstream in a smaller batch, and the two are merged in order.
	 */
	paths = cJSON_GetObjectItemCaseSensitive(req, "paths");
	n = cJSON_IsArray(paths) ? cJSON_GetArraySize(paths) : 0;
	if (n == 0 || n > BROKER_PATHS_MAX) {
		cJSON_Delete(req);
		return PROXY_CONTINUE;
	}
	out = cJSON_CreateArray();
	rest = cJSON_CreateArray();
	for (i = 0; i < n; i++) {
		v = cJSON_GetArrayItem(paths, i);
		url = NULL;
		if (cJSON_IsString(v) && asprintf(&obj, "%s/%s", pb->bucket,
		    v->valuestring) != -1) {
			url = sign_lookup(pb, obj);
			free(obj);
		}
		if (url == NULL) {
			cJSON_AddItemToArray(out, cJSON_CreateNull());
			cJSON_AddItemToArray(rest, cJSON_Duplicate(v, 1));
			continue;
		}
		item = cJSON_CreateObject();
		cJSON_AddNullToObject(item, "error");
		cJSON_AddStringToObject(item, "path", v->valuestring);
		cJSON_AddStringToObject(item, "signedURL", url);
		cJSON_AddItemToArray(out, item);
		free(url);
		hits++;
	}
	if (hits == n) {
		cJSON_Delete(req);
		cJSON_Delete(rest);
		answer_json(r, out);
		cJSON_Delete(out);
		metrics.signed_urls_cache += (uint64_t)n;
		return PROXY_RESPOND;
	}
	if (hits == 0) {
		cJSON_Delete(req);
		cJSON_Delete(rest);
		cJSON_Delete(out);
		return PROXY_CONTINUE;
	}
	/* upstream signs only the rest: the held body becomes that batch */
	cJSON_ReplaceItemInObjectCaseSensitive(req, "paths", rest);
	body = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	if (body == NULL) {
		cJSON_Delete(out);
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
	cJSON			*up, *e;
	int			 i, j = 0, ok;

	up = cJSON_ParseWithLength(sbuf_str(&pb->resp), pb->resp.len);
	ok = up != NULL && cJSON_IsArray(up) && r->status == 200;
	r->head.len = 0;
	r->head.overflow = 0;
	if (!ok) {
		/* upstream's own error, as it gave it */
		r->is_error = 1;
		sbuf_add(&r->head, "Content-Type: application/json\r\n", 32);
		sbuf_add(&r->errbody, sbuf_str(&pb->resp), pb->resp.len);
		cJSON_Delete(up);
		return;
	}
	for (i = 0; i < cJSON_GetArraySize(pb->merge); i++) {
		if (!cJSON_IsNull(cJSON_GetArrayItem(pb->merge, i)))
			continue;
		e = cJSON_GetArrayItem(up, j++);
		cJSON_ReplaceItemInArray(pb->merge, i, e != NULL ?
		    cJSON_Duplicate(e, 1) : cJSON_CreateNull());
	}
	cJSON_Delete(up);
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
	cJSON			*j, *v, *b, *a;
	char			*obj;
	const char		*bucket;
	int			 i;

	if (!pb->collecting ||
	    (j = cJSON_ParseWithLength(sbuf_str(&pb->body), pb->body.len)) ==
	    NULL)
		return;
	if (pb->remove) {
		a = cJSON_GetObjectItemCaseSensitive(j, "prefixes");
		for (i = 0; cJSON_IsArray(a) && i < cJSON_GetArraySize(a) &&
		    i < BROKER_PATHS_MAX; i++) {
			v = cJSON_GetArrayItem(a, i);
			if (cJSON_IsString(v) && asprintf(&obj, "%s/%s",
			    pb->bucket, v->valuestring) != -1) {
				invalidate(obj);
				free(obj);
			}
		}
	} else {
		/* move and copy: the destination, and a moved source */
		b = cJSON_GetObjectItemCaseSensitive(j, "bucketId");
		bucket = cJSON_IsString(b) ? b->valuestring : NULL;
		v = cJSON_GetObjectItemCaseSensitive(j, "sourceKey");
		if (bucket != NULL && cJSON_IsString(v) &&
		    strstr(r->path, "/move") != NULL &&
		    asprintf(&obj, "%s/%s", bucket, v->valuestring) != -1) {
			invalidate(obj);
			free(obj);
		}
		b = cJSON_GetObjectItemCaseSensitive(j, "destinationBucket");
		if (cJSON_IsString(b))
			bucket = b->valuestring;
		v = cJSON_GetObjectItemCaseSensitive(j, "destinationKey");
		if (bucket != NULL && cJSON_IsString(v) &&
		    asprintf(&obj, "%s/%s", bucket, v->valuestring) != -1) {
			invalidate(obj);
			free(obj);
		}
	}
	cJSON_Delete(j);
}

static void
store_answer(struct request *r)
{
	struct proxy_broker	*pb = r->broker;
	cJSON			*j, *v, *e, *p;
	char			*obj;
	int			 i;

	if ((j = cJSON_ParseWithLength(sbuf_str(&pb->resp), pb->resp.len)) ==
	    NULL)
		return;
	if (pb->kind == BK_SIGN) {
		v = cJSON_GetObjectItemCaseSensitive(j, "signedURL");
		if (cJSON_IsString(v)) {
			sign_store(r, pb->object, v->valuestring);
			metrics.signed_urls_upstream++;
		}
	} else if (cJSON_IsArray(j)) {
		for (i = 0; i < cJSON_GetArraySize(j); i++) {
			e = cJSON_GetArrayItem(j, i);
			v = cJSON_GetObjectItemCaseSensitive(e, "signedURL");
			p = cJSON_GetObjectItemCaseSensitive(e, "path");
			if (!cJSON_IsString(v) || !cJSON_IsString(p) ||
			    asprintf(&obj, "%s/%s", pb->bucket,
			    p->valuestring) == -1)
				continue;
			sign_store(r, obj, v->valuestring);
			metrics.signed_urls_upstream++;
			free(obj);
		}
	}
	cJSON_Delete(j);
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
	cJSON_Delete(pb->merge);
	explicit_bzero(pb->ident, sizeof(pb->ident));
	free(pb);
	r->broker = NULL;
}
