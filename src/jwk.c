/* jwk: JWK set parsing and ES256/RS256 checks with its keys */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "json.h"
#include "jwk.h"
#include "pk.h"

enum kty { KTY_EC, KTY_RSA };

struct jwk {
	enum kty	 kty;
	char		*kid;		/* NULL if none */
	union {
		struct pk_ec	ec;
		struct pk_rsa	rsa;
	} u;
};

struct jwk_set {
	struct jwk	*keys;
	size_t		 n;
};

enum parsed { KEY_USE, KEY_SKIP, KEY_ERR };

static const char *
str_of(const struct json *o, const char *name)
{
	return json_str(json_get(o, name));
}

/* a base64url member decoded into out; returns its length or -1 */
static long
b64_member(const struct json *o, const char *name, unsigned char *out,
    size_t outlen, char *err, size_t errlen)
{
	const char	*s = str_of(o, name);
	long		 n;

	if (s == NULL) {
		snprintf(err, errlen, "\"%s\" is missing", name);
		return -1;
	}
	if ((n = crypto_b64url_decode(s, strlen(s), out, outlen)) < 0) {
		snprintf(err, errlen, "\"%s\" is not base64url of at most "
		    "%zu bytes", name, outlen);
		return -1;
	}
	return n;
}

/* 1 if "key_ops" is absent or lists "verify" */
static int
ops_allow_verify(const struct json *o)
{
	const struct json	*ops;
	const char		*v;
	size_t			 i, n;

	if ((ops = json_get(o, "key_ops")) == NULL)
		return 1;
	n = json_len(ops);
	for (i = 0; i < n; i++)
		if ((v = json_str(json_at(ops, i))) != NULL &&
		    strcmp(v, "verify") == 0)
			return 1;
	return 0;
}

static enum parsed
parse_ec(const struct json *o, struct jwk *k, char *err, size_t errlen)
{
	const char	*crv = str_of(o, "crv"), *alg = str_of(o, "alg");
	unsigned char	 x[32], y[32];

	if (crv == NULL || strcmp(crv, "P-256") != 0 ||
	    (alg != NULL && strcmp(alg, "ES256") != 0))
		return KEY_SKIP;
	if (b64_member(o, "x", x, sizeof(x), err, errlen) != 32 ||
	    b64_member(o, "y", y, sizeof(y), err, errlen) != 32) {
		if (err[0] == '\0')
			snprintf(err, errlen, "\"x\" and \"y\" must be 32 "
			    "bytes each");
		return KEY_ERR;
	}
	if (pk_ec_init(&k->u.ec, x, y) == -1) {
		snprintf(err, errlen, "(x, y) is not a point of the P-256 "
		    "curve");
		return KEY_ERR;
	}
	k->kty = KTY_EC;
	return KEY_USE;
}

static enum parsed
parse_rsa(const struct json *o, struct jwk *k, char *err, size_t errlen)
{
	const char	*alg = str_of(o, "alg");
	unsigned char	 n[PK_SIG_MAX + 1], e[16];
	long		 nl, el;

	if (alg != NULL && strcmp(alg, "RS256") != 0)
		return KEY_SKIP;
	if ((nl = b64_member(o, "n", n, sizeof(n), err, errlen)) < 0 ||
	    (el = b64_member(o, "e", e, sizeof(e), err, errlen)) < 0)
		return KEY_ERR;
	if (pk_rsa_init(&k->u.rsa, n, (size_t)nl, e, (size_t)el, err,
	    errlen) == -1)
		return KEY_ERR;
	k->kty = KTY_RSA;
	return KEY_USE;
}

static enum parsed
parse_key(const struct json *o, struct jwk *k, char *err, size_t errlen)
{
	const char	*kty, *use, *kid;
	enum parsed	 r;

	err[0] = '\0';
	if (json_type(o) != JSON_OBJECT) {
		snprintf(err, errlen, "not a JSON object");
		return KEY_ERR;
	}
	if ((kty = str_of(o, "kty")) == NULL) {
		snprintf(err, errlen, "\"kty\" is missing");
		return KEY_ERR;
	}
	use = str_of(o, "use");
	if ((use != NULL && strcmp(use, "sig") != 0) || !ops_allow_verify(o))
		return KEY_SKIP;
	if (strcmp(kty, "EC") == 0)
		r = parse_ec(o, k, err, errlen);
	else if (strcmp(kty, "RSA") == 0)
		r = parse_rsa(o, k, err, errlen);
	else
		return KEY_SKIP;	/* oct, OKP, ...: not ours */
	if (r != KEY_USE)
		return r;
	if (json_get(o, "d") != NULL) {
		snprintf(err, errlen, "holds a private key (\"d\"); give "
		    "only the public key");
		return KEY_ERR;
	}
	k->kid = NULL;
	if ((kid = str_of(o, "kid")) != NULL) {
		if (strlen(kid) >= JWK_KID_MAX) {
			snprintf(err, errlen, "\"kid\" is longer than %d "
			    "characters", JWK_KID_MAX - 1);
			return KEY_ERR;
		}
		if ((k->kid = strdup(kid)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return KEY_ERR;
		}
	}
	return KEY_USE;
}

static unsigned
line_at(const char *s, const char *end)
{
	unsigned	line = 1;

	for (; s < end; s++)
		if (*s == '\n')
			line++;
	return line;
}

struct jwk_set *
jwk_set_parse(const char *s, size_t len, char *err, size_t errlen,
    unsigned *line)
{
	struct jwk_set		*set = NULL;
	const struct json	*keys;
	struct json		*j;
	char			 kerr[160];
	size_t			 i, nkeys, end;

	*line = 0;
	if (len > JWK_SET_MAX_BYTES) {
		snprintf(err, errlen, "larger than %d bytes",
		    JWK_SET_MAX_BYTES);
		return NULL;
	}
	if ((j = json_parse(s, len, &end)) == NULL) {
		if (end <= len)
			*line = line_at(s, s + end);
		snprintf(err, errlen, "not valid JSON");
		return NULL;
	}
	if (json_type(j) != JSON_OBJECT) {
		snprintf(err, errlen, "not a JSON object");
		goto fail;
	}
	keys = json_get(j, "keys");
	if (keys != NULL && json_type(keys) != JSON_ARRAY) {
		snprintf(err, errlen, "\"keys\" is not an array");
		goto fail;
	}
	if (keys == NULL && json_get(j, "kty") == NULL) {
		snprintf(err, errlen, "neither a JWK set (\"keys\") nor a "
		    "JWK (\"kty\")");
		goto fail;
	}
	nkeys = keys != NULL ? json_len(keys) : 1;
	if (nkeys > JWK_SET_MAX_KEYS) {
		snprintf(err, errlen, "more than %d keys", JWK_SET_MAX_KEYS);
		goto fail;
	}
	if ((set = calloc(1, sizeof(*set))) == NULL ||
	    (nkeys > 0 &&
	    (set->keys = calloc(nkeys, sizeof(*set->keys))) == NULL)) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (i = 0; i < nkeys; i++) {
		switch (parse_key(keys != NULL ? json_at(keys, i) : j,
		    &set->keys[set->n], kerr, sizeof(kerr))) {
		case KEY_USE:
			set->n++;
			break;
		case KEY_SKIP:
			break;
		case KEY_ERR:
			if (keys != NULL)
				snprintf(err, errlen, "keys[%zu]: %s", i,
				    kerr);
			else
				snprintf(err, errlen, "%s", kerr);
			goto fail;
		}
	}
	json_free(j);
	return set;
 fail:
	jwk_set_free(set);
	json_free(j);
	return NULL;
}

void
jwk_set_free(struct jwk_set *set)
{
	size_t	i;

	if (set == NULL)
		return;
	for (i = 0; i < set->n; i++)
		free(set->keys[i].kid);
	free(set->keys);
	free(set);
}

size_t
jwk_set_count(const struct jwk_set *set)
{
	return set != NULL ? set->n : 0;
}

static int
key_verify(const struct jwk *k, const unsigned char hash[32],
    const unsigned char *sig, size_t siglen)
{
	return k->kty == KTY_EC ? pk_ec_verify(&k->u.ec, hash, sig, siglen) :
	    pk_rsa_verify(&k->u.rsa, hash, sig, siglen);
}

enum jwk_result
jwk_set_verify(const struct jwk_set *set, const char *alg, const char *kid,
    const void *msg, size_t msglen, const unsigned char *sig,
    size_t siglen)
{
	unsigned char	 hash[32];
	enum kty	 want;
	size_t		 i;
	int		 named = 0, pass;

	if (set == NULL || alg == NULL)
		return JWK_BAD;
	if (strcmp(alg, "ES256") == 0)
		want = KTY_EC;
	else if (strcmp(alg, "RS256") == 0)
		want = KTY_RSA;
	else
		return JWK_BAD;
	crypto_sha256(msg, msglen, hash);
	/* pass 0: keys named by kid; pass 1: keys without a kid */
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < set->n; i++) {
			const struct jwk	*k = &set->keys[i];

			if (k->kty != want)
				continue;
			if (pass == 0 && kid != NULL &&
			    (k->kid == NULL || strcmp(k->kid, kid) != 0))
				continue;
			if (pass == 1 && k->kid != NULL)
				continue;
			named = 1;
			if (key_verify(k, hash, sig, siglen) == 0)
				return JWK_OK;
		}
		if (kid == NULL || named)
			break;
	}
	return named || kid == NULL ? JWK_BAD : JWK_NO_KEY;
}
