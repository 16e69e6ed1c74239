/* cache: pure cache policy: keys, tags, freshness (no I/O; time passed in) */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cache.h"
#include "crypto.h"
#include "util.h"

#define QUERY_MAX	16384	/* bytes of a raw query string */
#define PARAMS_MAX	256	/* parameters in one query string */
#define SELECT_MAX	16384	/* bytes of a decoded select= value */
#define DEPTH_MAX	16	/* select embedding depth */
#define PREFER_MAX	FIELD_MAX	/* Prefer normalised token by token */
#define PREFER_TOKS	32
#define FIELD_MAX	4096	/* Accept, Range... normalised in place */
#define AGE_MAX		INT64_C(2147483648)	/* RFC 9111 5.1 */
#define DELTA_MAX	UINT64_C(2147483648)	/* RFC 9111 1.2.2 */
#define KEY_VERSION	2	/* bump when the key layout changes */

static const char	 rest_prefix[] = "/rest/v1/";
static const char	 hexdig[] = "0123456789ABCDEF";

/* write-only Prefer tokens that never change what a read returns */
static const char *const prefer_drop[] = {
	"return", "handling", "tx", "missing", "resolution", "max-affected",
};

static int
is_ows(int c)
{
	return c == ' ' || c == '\t';
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}


static int
is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~';
}

/* trim OWS from both ends of [*p, *p + *n) */
static void
trim(const char **p, size_t *n)
{
	while (*n > 0 && is_ows((unsigned char)**p)) {
		(*p)++;
		(*n)--;
	}
	while (*n > 0 && is_ows((unsigned char)(*p)[*n - 1]))
		(*n)--;
}

/* ASCII case-insensitive equality of a counted string with a literal */
static int
tok_eq(const char *p, size_t n, const char *lit)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (lit[i] == '\0' || lower((unsigned char)p[i]) != lit[i])
			return 0;
	return lit[n] == '\0';
}

/*
 * Percent-decode n bytes of in into out (room for n bytes); plus != 0
 * turns '+' into a space.  Returns the decoded length or -1.
 */
static long
pct_decode(const char *in, size_t n, char *out, int plus)
{
	size_t	i, o = 0;
	int	hi, lo;

	for (i = 0; i < n; i++) {
		if (in[i] == '%') {
			if (n - i < 3 ||
			    (hi = util_hexval((unsigned char)in[i + 1])) < 0 ||
			    (lo = util_hexval((unsigned char)in[i + 2])) < 0)
				return -1;
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (plus && in[i] == '+')
			out[o++] = ' ';
		else
			out[o++] = in[i];
	}
	return (long)o;
}

static int
pct_encode(struct sbuf *out, const char *p, size_t n)
{
	char		 esc[3];
	size_t		 i, run;

	for (i = 0; i < n; i += run) {
		for (run = 0; i + run < n &&
		    is_unreserved((unsigned char)p[i + run]); run++)
			;
		if (run > 0) {
			if (sbuf_add(out, p + i, run) == -1)
				return -1;
			continue;
		}
		esc[0] = '%';
		esc[1] = hexdig[(unsigned char)p[i] >> 4];
		esc[2] = hexdig[(unsigned char)p[i] & 0xf];
		if (sbuf_add(out, esc, 3) == -1)
			return -1;
		run = 1;
	}
	return 0;
}

/*
 * Query canonicalisation
 */

struct param {
	const char	*name;		/* decoded, in the scratch buffer */
	size_t		 namelen;
	const char	*val;		/* NULL: no '=' at all */
	size_t		 vallen;
	size_t		 idx;		/* arrival order, for a stable sort */
};

static int
param_cmp(const void *a, const void *b)
{
	const struct param	*x = a, *y = b;
	size_t			 n = x->namelen < y->namelen ? x->namelen :
				    y->namelen;
	int			 c;

	if ((c = memcmp(x->name, y->name, n)) != 0)
		return c;
	if (x->namelen != y->namelen)
		return x->namelen < y->namelen ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

int
cache_canon_query(const char *query, struct sbuf *out)
{
	static const size_t	 nscratch = QUERY_MAX;
	struct param		*pv = NULL;
	char			*scratch = NULL, *sp;
	const char		*seg, *end, *eq;
	size_t			 qlen, np = 0, i, seglen;
	long			 n;
	int			 ret = -1;

	if (query == NULL)
		return 0;
	if ((qlen = strlen(query)) > QUERY_MAX)
		return -1;
	if ((pv = calloc(PARAMS_MAX, sizeof(*pv))) == NULL ||
	    (scratch = malloc(nscratch)) == NULL)
		goto out;
	sp = scratch;
	for (seg = query; seg <= query + qlen; seg = end + 1) {
		if ((end = strchr(seg, '&')) == NULL)
			end = query + qlen;
		if ((seglen = end - seg) == 0)
			continue;	/* "a=1&&b=2" */
		if (np == PARAMS_MAX)
			goto out;
		eq = memchr(seg, '=', seglen);
		pv[np].idx = np;
		pv[np].name = sp;
		if ((n = pct_decode(seg, eq ? (size_t)(eq - seg) : seglen,
		    sp, 1)) < 0)
			goto out;
		pv[np].namelen = n;
		sp += n;
		if (eq != NULL) {
			pv[np].val = sp;
			if ((n = pct_decode(eq + 1, end - eq - 1, sp, 1)) < 0)
				goto out;
			pv[np].vallen = n;
			sp += n;
		}
		if (pv[np].namelen == 6 && memcmp(pv[np].name, "apikey", 6) == 0)
			continue;
		np++;
	}
	qsort(pv, np, sizeof(*pv), param_cmp);
	for (i = 0; i < np; i++) {
		if ((i > 0 && sbuf_add(out, "&", 1) == -1) ||
		    pct_encode(out, pv[i].name, pv[i].namelen) == -1)
			goto out;
		if (pv[i].val != NULL && (sbuf_add(out, "=", 1) == -1 ||
		    pct_encode(out, pv[i].val, pv[i].vallen) == -1))
			goto out;
	}
	ret = 0;
 out:
	free(scratch);
	free(pv);
	return ret;
}

/*
 * Keys
 */

enum field_tag {
	F_ABSENT = 0x00,
	F_VALUE = 0x01,
	F_RAW = 0x02,	/* too long to normalise: the raw bytes */
};

/*
 * Add one field to the key digest as tag || 64-bit length || bytes: the
 * length keeps any two different field lists apart.
 */
static void
key_field(struct crypto_digest_ctx *k, enum field_tag tag, const void *p,
    size_t n)
{
	unsigned char	hdr[9];
	uint64_t	len = tag == F_ABSENT ? 0 : (uint64_t)n;
	int		i;

	hdr[0] = (unsigned char)tag;
	for (i = 0; i < 8; i++)
		hdr[1 + i] = (unsigned char)(len >> (8 * i));
	crypto_digest_update(k, hdr, sizeof(hdr));
	if (len > 0)
		crypto_digest_update(k, p, n);
}

/* trimmed, optionally lowercased copy of s; F_RAW if it does not fit */
static enum field_tag
norm_simple(const char *s, int lc, char *buf, size_t *n)
{
	const char	*p = s;
	size_t		 len = strlen(s), i;

	trim(&p, &len);
	if (len > FIELD_MAX) {
		*n = 0;
		return F_RAW;
	}
	for (i = 0; i < len; i++)
		buf[i] = lc ? (char)lower((unsigned char)p[i]) : p[i];
	*n = len;
	return F_VALUE;
}

struct tok {
	const char	*p;
	size_t		 n;
	size_t		 namelen;	/* up to the first '=' */
	size_t		 idx;
};

static int
tok_cmp(const void *a, const void *b)
{
	const struct tok	*x = a, *y = b;
	size_t			 n = x->namelen < y->namelen ? x->namelen :
				    y->namelen;
	int			 c;

	if ((c = memcmp(x->p, y->p, n)) != 0)
		return c;
	if (x->namelen != y->namelen)
		return x->namelen < y->namelen ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * Read-relevant Prefer tokens, lowercased, sorted by name (stable), joined
 * with ','.  F_RAW when the header is too big or has too many tokens.
 */
static enum field_tag
norm_prefer(const char *s, char *buf, size_t *outn)
{
	struct tok	 tv[PREFER_TOKS];
	const char	*p, *end, *q;
	size_t		 len = strlen(s), nt = 0, i, j, n, o = 0;
	int		 drop;

	*outn = 0;
	if (len > PREFER_MAX)
		return F_RAW;
	for (i = 0; i < len; i++)
		buf[i] = (char)lower((unsigned char)s[i]);
	for (p = buf; p <= buf + len; p = end + 1) {
		if ((end = memchr(p, ',', buf + len - p)) == NULL)
			end = buf + len;
		q = p;
		n = end - p;
		trim(&q, &n);
		if (n == 0)
			continue;
		for (i = 0; i < n && q[i] != '='; i++)
			;
		drop = 0;
		for (j = 0; j < sizeof(prefer_drop) / sizeof(prefer_drop[0]);
		    j++)
			if (tok_eq(q, i, prefer_drop[j]))
				drop = 1;
		if (drop)
			continue;
		if (nt == PREFER_TOKS)
			return F_RAW;
		tv[nt].p = q;
		tv[nt].n = n;
		tv[nt].namelen = i;
		tv[nt].idx = nt;
		nt++;
	}
	qsort(tv, nt, sizeof(tv[0]), tok_cmp);
	/* the output is never longer than the input: compact in place */
	for (i = 0; i < nt; i++) {
		if (i > 0 && tv[i].n == tv[i - 1].n &&
		    memcmp(tv[i].p, tv[i - 1].p, tv[i].n) == 0)
			continue;	/* "count=exact, count=exact" */
		if (o > 0)
			buf[len + o++] = ',';
		memcpy(buf + len + o, tv[i].p, tv[i].n);
		o += tv[i].n;
	}
	memmove(buf, buf + len, o);
	*outn = o;
	return F_VALUE;
}

/* key_field() for an optional string normalised by norm_simple() */
static void
key_simple(struct crypto_digest_ctx *k, const char *s, int lc,
    const char *dflt, char *buf)
{
	enum field_tag	 t;
	size_t		 n = 0;

	if (s == NULL) {
		t = F_ABSENT;
	} else if ((t = norm_simple(s, lc, buf, &n)) == F_RAW) {
		key_field(k, F_RAW, s, strlen(s));
		return;
	} else if (n == 0)
		t = F_ABSENT;
	if (t == F_ABSENT && dflt != NULL)
		key_field(k, F_VALUE, dflt, strlen(dflt));
	else
		key_field(k, t, buf, n);
}

void
cache_key(const struct cache_key_in *in, unsigned char out[CACHE_KEY_LEN])
{
	struct crypto_digest_ctx k;
	unsigned char		 v = KEY_VERSION;
	char			 buf[2 * FIELD_MAX + 2];
	const char		*plain[3], *s;
	enum field_tag		 t;
	size_t			 n, i;

	crypto_digest_init(&k);
	crypto_digest_update(&k, &v, 1);

	s = in->method;
	if (s != NULL && strcmp(s, "HEAD") == 0)
		s = "GET";
	key_field(&k, s ? F_VALUE : F_ABSENT, s, s ? strlen(s) : 0);

	plain[0] = in->path;
	plain[1] = in->canon_query;
	plain[2] = in->identity;
	for (i = 0; i < 3; i++)
		key_field(&k, plain[i] ? F_VALUE : F_ABSENT, plain[i],
		    plain[i] ? strlen(plain[i]) : 0);
	key_simple(&k, in->range, 0, NULL, buf);
	key_simple(&k, in->range_unit, 1, NULL, buf);
	key_simple(&k, in->accept, 1, NULL, buf);
	key_simple(&k, in->accept_profile, 0, "public", buf);

	t = F_ABSENT;
	n = 0;
	if ((s = in->prefer) != NULL &&
	    (t = norm_prefer(s, buf, &n)) == F_VALUE && n == 0)
		t = F_ABSENT;
	if (t == F_RAW)
		key_field(&k, F_RAW, s, strlen(s));
	else
		key_field(&k, t, buf, n);

	crypto_digest_final(&k, out);
}

/*
 * Identity
 */

/* append s to out, %XX-escaping ':', '%' and anything not printable */
static size_t
id_escape(char *out, size_t o, size_t cap, const char *s)
{
	const unsigned char	*p = (const unsigned char *)(s ? s : "");

	for (; *p != '\0'; p++) {
		if (*p > 0x20 && *p < 0x7f && *p != ':' && *p != '%') {
			if (o + 1 >= cap)
				return cap;
			out[o++] = (char)*p;
		} else {
			if (o + 3 >= cap)
				return cap;
			out[o++] = '%';
			out[o++] = hexdig[*p >> 4];
			out[o++] = hexdig[*p & 0xf];
		}
	}
	return o;
}

void
cache_identity(const char *authorization, int verified, const char *role,
    const char *sub, char *out, size_t outlen)
{
	unsigned char	 d[CACHE_KEY_LEN], rs[2 * CACHE_KEY_LEN];
	size_t		 o;

	if (out == NULL || outlen == 0)
		return;
	out[0] = '\0';
	if (outlen < CACHE_IDENTITY_MIN)
		return;
	if (verified) {
		memcpy(out, "jwt:", 4);
		o = id_escape(out, 4, outlen, role);
		if (o + 1 < outlen) {
			out[o++] = ':';
			o = id_escape(out, o, outlen, sub);
		} else
			o = outlen;
		if (o < outlen) {
			out[o] = '\0';
			return;
		}
		/* too long to print: a digest of role and sub */
		crypto_digest(role ? role : "", role ? strlen(role) : 0, rs);
		crypto_digest(sub ? sub : "", sub ? strlen(sub) : 0,
		    rs + CACHE_KEY_LEN);
		crypto_digest(rs, sizeof(rs), d);
		memcpy(out, "jwth:", 5);
		crypto_hex(d, sizeof(d), out + 5);
		return;
	}
	if (authorization == NULL) {
		memcpy(out, "none", 5);
		return;
	}
	crypto_digest(authorization, strlen(authorization), d);
	memcpy(out, "bearer:", 7);
	crypto_hex(d, sizeof(d), out + 7);
}

/*
 * Tags
 */

/*
 * The decoded relation of a /rest/v1/ path into name: 1 if there is one,
 * 0 if none (not REST, "rpc/...", empty), -1 if malformed or too long.
 */
static int
path_relation(const char *path, char *name, size_t namemax, size_t *namelen)
{
	const char	*seg;
	size_t		 n;
	long		 dn;

	if (path == NULL ||
	    strncmp(path, rest_prefix, sizeof(rest_prefix) - 1) != 0)
		return 0;
	seg = path + sizeof(rest_prefix) - 1;
	n = strcspn(seg, "/?#");
	if (n == 0)
		return 0;
	/* "/rest/v1/rpc/fn" is a function; "/rest/v1/rpc" a table */
	if (n == 3 && memcmp(seg, "rpc", 3) == 0 && seg[3] == '/')
		return 0;
	if (n > namemax)
		return -1;
	if ((dn = pct_decode(seg, n, name, 0)) <= 0 ||
	    memchr(name, '\0', dn) != NULL)
		return -1;
	*namelen = dn;
	return 1;
}

/* "<schema>.<name>" into tag; -1 if it does not fit */
static int
make_tag(const char *schema, const char *name, size_t namelen, char *tag,
    size_t taglen)
{
	const char	*s = schema;
	size_t		 sn = s ? strlen(s) : 0;

	trim(&s, &sn);
	if (sn == 0) {
		s = "public";
		sn = 6;
	}
	if (taglen == 0 || sn + 1 + namelen >= taglen)
		return -1;
	memcpy(tag, s, sn);
	tag[sn] = '.';
	memcpy(tag + sn + 1, name, namelen);
	tag[sn + 1 + namelen] = '\0';
	return 0;
}

static int
add_tag(char tags[][CACHE_TAG_MAX], size_t *nt, size_t maxtags,
    const char *schema, const char *name, size_t namelen)
{
	char	tag[CACHE_TAG_MAX];
	size_t	i;

	if (make_tag(schema, name, namelen, tag, sizeof(tag)) == -1)
		return -1;
	for (i = 0; i < *nt; i++)
		if (strcmp(tags[i], tag) == 0)
			return 0;
	if (*nt >= maxtags || *nt >= CACHE_TAGS_MAX)
		return -1;
	memcpy(tags[(*nt)++], tag, strlen(tag) + 1);
	return 0;
}

/*
 * The head of a select item before its '(' in [p, end): find the relation
 * it embeds.  1 and name if it is an embed, 0 if an aggregate ("count()",
 * "col.sum()"), -1 if malformed.
 */
static int
embed_name(const char *p, const char *end, int empty, const char **name,
    size_t *namelen)
{
	const char	*q, *close;
	size_t		 n = end - p;
	int		 inq = 0;

	trim(&p, &n);
	if (n >= 3 && memcmp(p, "...", 3) == 0) {
		p += 3;
		n -= 3;
	}
	/* "alias:name", not "name::cast" */
	for (q = p; q < p + n; q++) {
		if (*q == '"')
			inq = !inq;
		else if (!inq && *q == ':' && (q + 1 == p + n || q[1] != ':') &&
		    (q == p || q[-1] != ':')) {
			n -= q + 1 - p;
			p = q + 1;
			break;
		}
	}
	trim(&p, &n);
	if (n > 0 && *p == '"') {
		if ((close = memchr(p + 1, '"', n - 1)) == NULL)
			return -1;
		*name = p + 1;
		*namelen = close - p - 1;
		return *namelen > 0 ? 1 : -1;
	}
	for (q = p; q < p + n && *q != '!'; q++)
		;
	n = q - p;
	trim(&p, &n);
	if (n == 0)
		return -1;
	if (memchr(p, '.', n) != NULL || (empty && n == 5 &&
	    memcmp(p, "count", 5) == 0))
		return 0;
	*name = p;
	*namelen = n;
	return 1;
}

int
cache_tags(const char *schema, const char *path, const char *select,
    char tags[][CACHE_TAG_MAX], size_t maxtags)
{
	char		 rel[CACHE_TAG_MAX];
	const char	*p, *q, *item, *name;
	size_t		 nt = 0, n;
	int		 depth = 0, r, empty;

	if ((r = path_relation(path, rel, sizeof(rel), &n)) == -1 ||
	    (r == 1 && add_tag(tags, &nt, maxtags, schema, rel, n) == -1))
		return -1;
	if (select == NULL)
		return (int)nt;
	if (strlen(select) > SELECT_MAX)
		return -1;
	for (item = p = select; *p != '\0'; p++) {
		switch (*p) {
		case '"':
			if ((q = strchr(p + 1, '"')) == NULL)
				return -1;
			p = q;
			break;
		case ',':
			item = p + 1;
			break;
		case '(':
			if (item == NULL || ++depth > DEPTH_MAX)
				return -1;
			for (q = p + 1; is_ows((unsigned char)*q); q++)
				;
			empty = *q == ')';
			if ((r = embed_name(item, p, empty, &name, &n)) == -1 ||
			    (r == 1 && add_tag(tags, &nt, maxtags, schema, name,
			    n) == -1))
				return -1;
			item = p + 1;
			break;
		case ')':
			if (depth-- == 0)
				return -1;
			item = NULL;	/* "a(b)c(d)" is malformed */
			break;
		}
	}
	return depth == 0 ? (int)nt : -1;
}

int
cache_write_tag(const char *schema, const char *path, char *tag,
    size_t taglen)
{
	char	rel[CACHE_TAG_MAX];
	size_t	n;

	if (path_relation(path, rel, sizeof(rel), &n) != 1)
		return -1;
	return make_tag(schema, rel, n, tag, taglen);
}

/*
 * Cache-Control
 */

struct directive {
	const char	*name;
	size_t		 namelen;
	const char	*val;		/* NULL: no '=' */
	size_t		 vallen;	/* quotes stripped, escapes kept */
};

/* the next directive of a Cache-Control or Pragma list; 0 at the end */
static int
next_directive(const char **cur, struct directive *d)
{
	const char	*p = *cur;

	while (*p == ',' || is_ows((unsigned char)*p))
		p++;
	if (*p == '\0') {
		*cur = p;
		return 0;
	}
	d->name = p;
	while (*p != '\0' && *p != ',' && *p != '=' && !is_ows((unsigned char)*p))
		p++;
	d->namelen = p - d->name;
	d->val = NULL;
	d->vallen = 0;
	while (is_ows((unsigned char)*p))
		p++;
	if (*p == '=') {
		p++;
		while (is_ows((unsigned char)*p))
			p++;
		if (*p == '"') {
			d->val = ++p;
			while (*p != '\0' && *p != '"') {
				if (*p == '\\' && p[1] != '\0')
					p++;
				p++;
			}
			d->vallen = p - d->val;
			if (*p == '"')
				p++;
		} else {
			d->val = p;
			while (*p != '\0' && *p != ',' &&
			    !is_ows((unsigned char)*p))
				p++;
			d->vallen = p - d->val;
		}
	}
	/* skip whatever follows up to the next ',' */
	while (*p != '\0' && *p != ',')
		p++;
	*cur = p;
	return 1;
}

/* delta-seconds (RFC 9111 1.2.2), saturated at 2^31; -1 if invalid */
static int
delta_seconds(const struct directive *d, uint64_t *out)
{
	uint64_t	v = 0;
	size_t		i;

	if (d->val == NULL || d->vallen == 0)
		return -1;
	for (i = 0; i < d->vallen; i++) {
		if (d->val[i] < '0' || d->val[i] > '9')
			return -1;
		if (v < DELTA_MAX)
			v = v * 10 + (uint64_t)(d->val[i] - '0');
	}
	*out = v < DELTA_MAX ? v : DELTA_MAX;
	return 0;
}

enum cache_req
cache_request_directive(const char *cache_control, const char *pragma)
{
	struct directive	 d;
	const char		*cur;
	uint64_t		 age;
	int			 seen = 0, nocache = 0;

	for (cur = cache_control; cur != NULL && next_directive(&cur, &d);) {
		seen = 1;
		if (tok_eq(d.name, d.namelen, "no-store"))
			return CACHE_REQ_NO_STORE;
		if (tok_eq(d.name, d.namelen, "no-cache"))
			nocache = 1;
		else if (tok_eq(d.name, d.namelen, "max-age") &&
		    (delta_seconds(&d, &age) == -1 || age == 0))
			nocache = 1;
	}
	/* RFC 9111 5.4: Pragma only counts without a Cache-Control */
	for (cur = pragma; !seen && cur != NULL && next_directive(&cur, &d);)
		if (tok_eq(d.name, d.namelen, "no-cache"))
			nocache = 1;
	return nocache ? CACHE_REQ_NO_CACHE : CACHE_REQ_NORMAL;
}

/* statuses cache-ttl-status may name (RFC 9110 15.1, and 400) */
static const int	 configurable[] = {
	203, 300, 301, 308, 400, 404, 405, 410, 414, 501,
};

int
cache_status_configurable(int status)
{
	size_t	i;

	for (i = 0; i < sizeof(configurable) / sizeof(configurable[0]); i++)
		if (configurable[i] == status)
			return 1;
	return 0;
}

void
cache_response_policy(const struct cache_resp_in *in, struct cache_policy *pol)
{
	struct directive	 d;
	const char		*cur;
	uint64_t		 v, smax = 0, maxage = 0, swr = 0, sie = 0;
	uint64_t		 dflt = in->default_ttl_s;
	int			 has_smax = 0, has_maxage = 0, has_swr = 0;
	int			 has_sie = 0, revalidate = 0, storable, other;

	/* another status the operator gave a lifetime: fresh only */
	other = in->status_ttl_s > 0 && cache_status_configurable(in->status);
	if (other)
		dflt = in->status_ttl_s;
	storable = (in->status == 200 || in->status == 204 ||
	    in->status == 206 || other) && !in->has_set_cookie &&
	    !in->has_vary_star;
	for (cur = in->cache_control; cur != NULL &&
	    next_directive(&cur, &d);) {
		if (tok_eq(d.name, d.namelen, "no-store") ||
		    tok_eq(d.name, d.namelen, "private") ||
		    tok_eq(d.name, d.namelen, "no-cache"))
			storable = 0;
		else if (tok_eq(d.name, d.namelen, "must-revalidate") ||
		    tok_eq(d.name, d.namelen, "proxy-revalidate"))
			revalidate = 1;
		else if (tok_eq(d.name, d.namelen, "s-maxage") && !has_smax) {
			/* an invalid value makes the response stale */
			has_smax = 1;
			smax = delta_seconds(&d, &v) == 0 ? v : 0;
		} else if (tok_eq(d.name, d.namelen, "max-age") &&
		    !has_maxage) {
			has_maxage = 1;
			maxage = delta_seconds(&d, &v) == 0 ? v : 0;
		} else if (tok_eq(d.name, d.namelen,
		    "stale-while-revalidate") && !has_swr) {
			has_swr = 1;
			swr = delta_seconds(&d, &v) == 0 ? v : 0;
		} else if (tok_eq(d.name, d.namelen, "stale-if-error") &&
		    !has_sie) {
			has_sie = 1;
			sie = delta_seconds(&d, &v) == 0 ? v : 0;
		}
	}
	memset(pol, 0, sizeof(*pol));
	pol->ttl_s = has_smax ? smax : has_maxage ? maxage : dflt;
	if (!storable || pol->ttl_s == 0) {
		pol->ttl_s = 0;
		return;
	}
	pol->storable = 1;
	if (other)
		return;
	pol->swr_s = has_swr ? swr : revalidate ? 0 : in->swr_s;
	pol->sie_s = has_sie ? sie : revalidate ? 0 : in->sie_s;
}

/*
 * Freshness
 */

static uint64_t
sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

enum cache_fresh
cache_freshness(int64_t stored_at, const struct cache_policy *pol,
    int64_t now)
{
	uint64_t	age;

	if (pol == NULL || !pol->storable)
		return CACHE_EXPIRED;
	if (now < stored_at)
		return pol->ttl_s > 0 ? CACHE_FRESH : CACHE_EXPIRED;
	age = (uint64_t)now - (uint64_t)stored_at;
	if (age < pol->ttl_s)
		return CACHE_FRESH;
	if (age < sat_add(pol->ttl_s, pol->swr_s))
		return CACHE_STALE_SWR;
	if (age < sat_add(pol->ttl_s, pol->sie_s))
		return CACHE_STALE_SIE;
	return CACHE_EXPIRED;
}

int64_t
cache_age(int64_t stored_at, int64_t now)
{
	uint64_t	age;

	if (now <= stored_at)
		return 0;
	age = (uint64_t)now - (uint64_t)stored_at;
	return age < (uint64_t)AGE_MAX ? (int64_t)age : AGE_MAX;
}

/*
 * Validators
 */

void
cache_etag(const void *body, size_t len, char *out, size_t outlen)
{
	unsigned char	 d[CACHE_KEY_LEN];
	char		 b64[32];

	if (out == NULL || outlen == 0)
		return;
	out[0] = '\0';
	if (outlen < CACHE_ETAG_LEN || (body == NULL && len > 0))
		return;
	crypto_digest(body != NULL ? body : "", len, d);
	if (crypto_b64url_encode(d, 16, b64, sizeof(b64)) != 22)
		return;
	out[0] = '"';
	memcpy(out + 1, b64, 22);
	out[23] = '"';
	out[24] = '\0';
}

/* the opaque-tag of an entity-tag at p (W/ skipped); -1 if malformed */
static int
parse_etag(const char **cur, const char **tag, size_t *taglen)
{
	const unsigned char	*p = (const unsigned char *)*cur;

	if (p[0] == 'W' && p[1] == '/')
		p += 2;
	if (*p != '"')
		return -1;
	*tag = (const char *)++p;
	/* etagc: %x21 / %x23-7E / obs-text */
	while (*p == 0x21 || (*p >= 0x23 && *p != 0x7f))
		p++;
	if (*p != '"')
		return -1;
	*taglen = (const char *)p - *tag;
	*cur = (const char *)p + 1;
	return 0;
}

int
cache_etag_match(const char *if_none_match, const char *etag)
{
	const char	*cur, *mine, *t;
	size_t		 minelen, tlen, n;
	int		 match = 0;

	if (if_none_match == NULL || etag == NULL)
		return 0;
	cur = etag;
	if (parse_etag(&cur, &mine, &minelen) == -1 || *cur != '\0')
		return 0;
	cur = if_none_match;
	n = strlen(cur);
	trim(&cur, &n);
	if (n == 1 && *cur == '*')
		return 1;
	/* a list of entity-tags, empty elements allowed; any junk: no match */
	for (;;) {
		while (*cur == ',' || is_ows((unsigned char)*cur))
			cur++;
		if (*cur == '\0')
			break;
		if (parse_etag(&cur, &t, &tlen) == -1)
			return 0;
		if (tlen == minelen && memcmp(t, mine, tlen) == 0)
			match = 1;
		while (is_ows((unsigned char)*cur))
			cur++;
		if (*cur != ',' && *cur != '\0')
			return 0;
	}
	return match;
}
