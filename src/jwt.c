/* jwt: decode and verify HS256, ES256 and RS256 JWTs (pure, no I/O) */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "json.h"
#include "jwk.h"
#include "jwt.h"
#include "pk.h"

#define JWT_MAX		(16 * 1024)

struct parts {
	const char	*p[3];
	size_t		 len[3];
};

static int
is_b64url(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* split into three base64url parts; the signature may be empty */
static int
split(const char *s, size_t len, struct parts *pt)
{
	size_t	i, n = 0, start = 0;

	if (s == NULL || len == 0 || len > JWT_MAX)
		return -1;
	for (i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			if (n == 3)
				return -1;
			pt->p[n] = s + start;
			pt->len[n] = i - start;
			n++;
			start = i + 1;
		} else if (!is_b64url((unsigned char)s[i]))
			return -1;
	}
	if (n != 3 || pt->len[0] == 0 || pt->len[1] == 0)
		return -1;
	return 0;
}

int
jwt_looks_like(const char *s, size_t len)
{
	struct parts	pt;

	return split(s, len, &pt) == 0 && pt.len[2] > 0;
}

/* decode one base64url part holding a JSON object */
static struct json *
decode_json(const char *p, size_t len)
{
	struct json	*j;
	char		*buf;
	long		 n;

	if ((buf = malloc(len + 1)) == NULL)
		return NULL;
	if ((n = crypto_b64url_decode(p, len, buf, len)) < 0) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	if ((size_t)n != strlen(buf)) {	/* embedded NUL */
		free(buf);
		return NULL;
	}
	j = json_parse(buf, (size_t)n, NULL);
	free(buf);
	if (j != NULL && json_type(j) != JSON_OBJECT) {
		json_free(j);
		return NULL;
	}
	return j;
}

static void
copy_str(const struct json *o, const char *name, char *out, size_t outlen)
{
	const char	*v = json_str(json_get(o, name));
	size_t		 n;

	out[0] = '\0';
	if (v == NULL)
		return;
	n = strlen(v);
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, v, n);
	out[n] = '\0';
}

static int64_t
get_time(const struct json *o, const char *name)
{
	double	d;

	if (json_num(json_get(o, name), &d) == -1)
		return 0;
	d = floor(d);
	if (!isfinite(d) || d < -9.0e15 || d > 9.0e15)
		return 0;
	return (int64_t)d;
}

static int
claims_of(const struct parts *pt, struct jwt_claims *c)
{
	struct json	*j;

	if ((j = decode_json(pt->p[1], pt->len[1])) == NULL)
		return -1;
	memset(c, 0, sizeof(*c));
	copy_str(j, "role", c->role, sizeof(c->role));
	copy_str(j, "sub", c->sub, sizeof(c->sub));
	c->exp = get_time(j, "exp");
	c->iat = get_time(j, "iat");
	c->nbf = get_time(j, "nbf");
	json_free(j);
	return 0;
}

int
jwt_decode(const char *s, size_t len, struct jwt_claims *c)
{
	struct parts	 pt;
	struct json	*h;

	if (split(s, len, &pt) == -1)
		return -1;
	if ((h = decode_json(pt.p[0], pt.len[0])) == NULL)
		return -1;
	json_free(h);
	return claims_of(&pt, c);
}

/* the HS256 check of a split token whose alg is HS256 */
static int
hs256_ok(const char *s, const struct parts *pt, const void *secret,
    size_t secretlen)
{
	unsigned char	mac[32], sig[33];

	/* 32 bytes are 43 base64url characters */
	if (pt->len[2] != 43 ||
	    crypto_b64url_decode(pt->p[2], pt->len[2], sig, sizeof(sig)) != 32)
		return 0;
	crypto_hmac_sha256(secret, secretlen, s,
	    pt->len[0] + 1 + pt->len[1], mac);
	return crypto_memeq(mac, sig, sizeof(mac));
}

int
jwt_verify_hs256(const char *s, size_t len, const void *secret,
    size_t secretlen, struct jwt_claims *c)
{
	struct parts	 pt;
	const char	*alg;
	struct json	*h;
	int		 ok;

	if (split(s, len, &pt) == -1 || secret == NULL)
		return -1;
	if ((h = decode_json(pt.p[0], pt.len[0])) == NULL)
		return -1;
	alg = json_str(json_get(h, "alg"));
	ok = alg != NULL && strcmp(alg, "HS256") == 0;
	json_free(h);
	if (!ok || !hs256_ok(s, &pt, secret, secretlen))
		return -1;
	return claims_of(&pt, c);
}

/* the ES256/RS256 check of a split token with the key sets */
static enum jwt_verdict
asym_check(const char *s, const struct parts *pt, const char *alg,
    const char *kid, const struct jwt_keys *k)
{
	unsigned char	sig[PK_SIG_MAX + 1];
	long		n;
	size_t		i;
	int		nokey = 0, bad = 0;

	if (pt->len[2] > (PK_SIG_MAX * 4 + 2) / 3 ||
	    (n = crypto_b64url_decode(pt->p[2], pt->len[2], sig,
	    sizeof(sig))) <= 0)
		return JWT_INVALID;
	for (i = 0; i < sizeof(k->sets) / sizeof(k->sets[0]); i++) {
		if (k->sets[i] == NULL)
			continue;
		switch (jwk_set_verify(k->sets[i], alg, kid, s,
		    pt->len[0] + 1 + pt->len[1], sig, (size_t)n)) {
		case JWK_OK:
			return JWT_VALID;
		case JWK_NO_KEY:
			nokey = 1;
			break;
		case JWK_BAD:
			bad = 1;
			break;
		}
	}
	/* unknown only if no set had a key to try */
	return nokey && !bad ? JWT_UNKNOWN_KID : JWT_INVALID;
}

int
jwt_claims_current(const struct jwt_claims *c, int64_t now)
{
	return !(c->exp != 0 && c->exp <= now) &&
	    !(c->nbf != 0 && c->nbf > now);
}

enum jwt_verdict
jwt_verify(const char *s, size_t len, const struct jwt_keys *k, int64_t now,
    struct jwt_claims *c)
{
	struct parts		 pt;
	const struct json	*kidv;
	const char		*alg, *kid;
	struct json		*h;
	enum jwt_verdict	 v = JWT_INVALID;

	if (k == NULL || split(s, len, &pt) == -1 || pt.len[2] == 0)
		return JWT_INVALID;
	if ((h = decode_json(pt.p[0], pt.len[0])) == NULL)
		return JWT_INVALID;
	alg = json_str(json_get(h, "alg"));
	kidv = json_get(h, "kid");
	kid = json_str(kidv);
	/* no extension is understood, so "crit" fails (RFC 7515 4.1.11) */
	if (alg == NULL || (kidv != NULL && kid == NULL) ||
	    json_get(h, "crit") != NULL)
		goto out;
	if (strcmp(alg, "HS256") == 0) {
		if (k->secret != NULL &&
		    hs256_ok(s, &pt, k->secret, k->secretlen))
			v = JWT_VALID;
	} else if (strcmp(alg, "ES256") == 0 || strcmp(alg, "RS256") == 0)
		v = asym_check(s, &pt, alg, kid, k);
	if (v == JWT_VALID) {
		if (claims_of(&pt, c) == -1)
			v = JWT_INVALID;
		else if (!jwt_claims_current(c, now))
			v = JWT_EXPIRED;
	}
 out:
	json_free(h);
	return v;
}
