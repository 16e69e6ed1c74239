/* jwt: decode and verify HS256, ES256 and RS256 JWTs (pure, no I/O) */
#ifndef SUPAGATE_JWT_H
#define SUPAGATE_JWT_H

#include <stddef.h>
#include <stdint.h>

#define JWT_ROLE_MAX	64
#define JWT_SUB_MAX	128

struct jwt_claims {
	char	role[JWT_ROLE_MAX];	/* "" if absent */
	char	sub[JWT_SUB_MAX];	/* "" if absent */
	int64_t	exp;			/* 0 if absent */
	int64_t	iat;
	int64_t	nbf;			/* 0 if absent */
};

struct jwk_set;

/* what a token may be verified with */
struct jwt_keys {
	const void		*secret;	/* HS256 secret or NULL */
	size_t			 secretlen;
	const struct jwk_set	*sets[2];	/* ES256/RS256 keys or NULL */
};

enum jwt_verdict {
	JWT_VALID,	/* signature good and exp/nbf hold at now */
	JWT_INVALID,	/* malformed, unsupported alg or bad signature */
	JWT_EXPIRED,	/* signature good but expired or not yet valid */
	JWT_UNKNOWN_KID, /* ES256/RS256 with a kid no key set has */
};

/* 1 if the string has the shape of a JWT (three base64url parts) */
int jwt_looks_like(const char *, size_t);
/* decode the payload without verifying the signature; -1 if malformed */
int jwt_decode(const char *, size_t, struct jwt_claims *);
/*
 * Verify an HS256 signature with secret and decode; -1 if malformed,
 * not HS256 or the signature does not match (expiry is not checked).
 */
int jwt_verify_hs256(const char *, size_t, const void *secret,
    size_t secretlen, struct jwt_claims *);
/*
 * Verify a token with the keys that fit its header's alg: HS256 only
 * with keys->secret, ES256 and RS256 only with keys->sets (never a
 * public key as an HMAC secret; never alg "none").  On JWT_VALID and
 * JWT_EXPIRED the claims are decoded into c.  A token is expired when
 * its exp is at or before now, not yet valid when its nbf is after now.
 */
enum jwt_verdict jwt_verify(const char *, size_t, const struct jwt_keys *,
    int64_t now, struct jwt_claims *c);
/* 1 if the claims' exp and nbf hold at now (as jwt_verify checks them) */
int jwt_claims_current(const struct jwt_claims *, int64_t now);

#endif
