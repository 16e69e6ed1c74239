/* jwt: decode and verify HS256 JWTs (pure, no I/O) */
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

#endif
