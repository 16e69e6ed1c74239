/* jwt: decode and verify HS256, ES256 and RS256 JWTs (pure, no I/O) */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "crypto.h"
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
static cJSON *
decode_json(const char *p, size_t len)
{
	char	*buf;
	long	 n;
	cJSON	*j;

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
	j = cJSON_ParseWithLength(buf, (size_t)n);
	free(buf);
	if (j != NULL && !cJSON_IsObject(j)) {
		cJSON_Delete(j);
		return NULL;
	}
	return j;
}

static void
copy_str(const cJSON *o, const char *name, char *out, size_t outlen)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(o, name);
	size_t		 n;

	out[0] = '\0';
	if (!cJSON_IsString(v) || v->valuestring == NULL)
		return;
	n = strlen(v->valuestring);
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, v->valuestring, n);
	out[n] = '\0';
}

static int64_t
get_time(const cJSON *o, const char *name)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(o, name);
	double		 d;

	if (!cJSON_IsNumber(v))
		return 0;
	d = floor(v->valuedouble);
	if (!isfinite(d) || d < -9.0e15 || d > 9.0e15)
		return 0;
	return (int64_t)d;
}

static int
claims_of(const struct parts *pt, struct jwt_claims *c)
{
	cJSON	*j;

	if ((j = decode_json(pt->p[1], pt->len[1])) == NULL)
		return -1;
	memset(c, 0, sizeof(*c));
	copy_str(j, "role", c->role, sizeof(c->role));
	copy_str(j, "sub", c->sub, sizeof(c->sub));
	c->exp = get_time(j, "exp");
	c->iat = get_time(j, "iat");
	c->nbf = get_time(j, "nbf");
	cJSON_Delete(j);
	return 0;
}

int
jwt_decode(const char *s, size_t len, struct jwt_claims *c)
{
	struct parts	 pt;
	cJSON		*h;

	if (split(s, len, &pt) == -1)
		return -1;
	if ((h = decode_json(pt.p[0], pt.len[0])) == NULL)
		return -1;
	cJSON_Delete(h);
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
	const cJSON	*alg;
	cJSON		*h;
	int		 ok;

	if (split(s, len, &pt) == -1 || secret == NULL)
		return -1;
	if ((h = decode_json(pt.p[0], pt.len[0])) == NULL)
		return -1;
	alg = cJSON_GetObjectItemCaseSensitive(h, "alg");
	ok = cJSON_IsString(alg) && alg->valuestring != NULL &&
	    strcmp(alg->valuestring, "HS256") == 0;
	cJSON_Delete(h);
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
	const cJSON		*alg, *kid;
	cJSON			*h;
	enum jwt_verdict	 v = JWT_INVALID;

	if (k == NULL || split(s, len, &pt) == -1 || pt.len[2] == 0)
		return JWT_INVALID;
	if ((h = decode_json(pt.p[0], pt.len[0])) == NULL)
		return JWT_INVALID;
	alg = cJSON_GetObjectItemCaseSensitive(h, "alg");
	kid = cJSON_GetObjectItemCaseSensitive(h, "kid");
	/* no extension is understood, so "crit" fails (RFC 7515 4.1.11) */
	if (!cJSON_IsString(alg) || alg->valuestring == NULL ||
	    (kid != NULL && !cJSON_IsString(kid)) ||
	    cJSON_GetObjectItemCaseSensitive(h, "crit") != NULL)
		goto out;
	if (strcmp(alg->valuestring, "HS256") == 0) {
		if (k->secret != NULL &&
		    hs256_ok(s, &pt, k->secret, k->secretlen))
			v = JWT_VALID;
	} else if (strcmp(alg->valuestring, "ES256") == 0 ||
	    strcmp(alg->valuestring, "RS256") == 0)
		v = asym_check(s, &pt, alg->valuestring,
		    kid != NULL ? kid->valuestring : NULL, k);
	if (v == JWT_VALID) {
		if (claims_of(&pt, c) == -1)
			v = JWT_INVALID;
		else if (!jwt_claims_current(c, now))
			v = JWT_EXPIRED;
	}
 out:
	cJSON_Delete(h);
	return v;
}
