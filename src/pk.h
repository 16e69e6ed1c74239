/*
 * pk: public-key signature checks for JWS: ES256 (ECDSA on P-256 with
 * SHA-256, FIPS 186-4 / SEC 1) and RS256 (RSASSA-PKCS1-v1_5 with
 * SHA-256, RFC 8017).  Verification only; pure, no I/O.
 */
#ifndef SUPAGATE_PK_H
#define SUPAGATE_PK_H

#include <stddef.h>
#include <stdint.h>

#include "bn.h"

#define PK_RSA_MIN_BITS	2048
#define PK_RSA_MAX_BITS	4096
#define PK_SIG_MAX	(PK_RSA_MAX_BITS / 8)	/* longest signature */
#define PK_ES256_SIGLEN	64			/* r || s */

struct pk_rsa {
	struct bn_mont	mod;		/* modulus n */
	size_t		k;		/* length of n in bytes */
	unsigned char	e[4];		/* public exponent, big-endian */
};

struct pk_ec {
	uint32_t	x[8], y[8];	/* affine point on P-256 */
};

/*
 * An RSA public key from big-endian n and e: n of 2048 to 4096 bits and
 * odd, e odd, at least 3 and below 2^32.  -1 with a reason in err.
 */
int pk_rsa_init(struct pk_rsa *, const unsigned char *n, size_t nlen,
    const unsigned char *e, size_t elen, char *err, size_t errlen);
/* 0 if sig is a valid RS256 signature of the SHA-256 digest hash */
int pk_rsa_verify(const struct pk_rsa *, const unsigned char hash[32],
    const unsigned char *sig, size_t siglen);
/* a P-256 public key from 32-byte x and y; -1 if not on the curve */
int pk_ec_init(struct pk_ec *, const unsigned char x[32],
    const unsigned char y[32]);
/* 0 if sig (r || s, 64 bytes) is a valid ES256 signature of hash */
int pk_ec_verify(const struct pk_ec *, const unsigned char hash[32],
    const unsigned char *sig, size_t siglen);

#endif
