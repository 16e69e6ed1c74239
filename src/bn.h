/*
 * bn: unsigned multiprecision integers in fixed arrays of 32-bit limbs
 * (least significant first) and Montgomery arithmetic modulo an odd
 * number, for checking public-key signatures.  Inputs are public, so
 * nothing here tries to run in constant time.  Pure, no allocation.
 */
#ifndef SUPAGATE_BN_H
#define SUPAGATE_BN_H

#include <stddef.h>
#include <stdint.h>

#define BN_MAX_BITS	4096
#define BN_MAX_LIMBS	(BN_MAX_BITS / 32)

/* an odd modulus m > 1 of n limbs with its Montgomery constants */
struct bn_mont {
	size_t		n;			/* limbs in use */
	uint32_t	m[BN_MAX_LIMBS];
	uint32_t	rr[BN_MAX_LIMBS];	/* R^2 mod m, R = 2^(32n) */
	uint32_t	one[BN_MAX_LIMBS];	/* R mod m */
	uint32_t	minv;			/* -m^-1 mod 2^32 */
};

/*
 * Big-endian bytes into n limbs; -1 if the value does not fit (leading
 * zero bytes are allowed)
 */
int bn_from_bytes(uint32_t *, size_t n, const unsigned char *, size_t);
/* n limbs into len big-endian bytes; -1 if the value does not fit */
int bn_to_bytes(const uint32_t *, size_t n, unsigned char *, size_t len);
/* -1, 0 or 1 as a < b, a == b, a > b */
int bn_cmp(const uint32_t *a, const uint32_t *b, size_t n);
/* 1 if all n limbs are zero */
int bn_is_zero(const uint32_t *, size_t n);
/* index of the highest set bit plus one; 0 for zero */
size_t bn_bits(const uint32_t *, size_t n);
/* r = a - b over n limbs (r may alias a or b); returns the borrow */
uint32_t bn_sub(uint32_t *r, const uint32_t *a, const uint32_t *b,
    size_t n);

/* set up for modulus m of n limbs; -1 if m is even, 1, or n too big */
int bn_mont_init(struct bn_mont *, const uint32_t *m, size_t n);
/* r = a * b / R mod m, for a, b < m (r may alias a or b) */
void bn_mont_mul(const struct bn_mont *, uint32_t *r, const uint32_t *a,
    const uint32_t *b);
/* into the Montgomery domain: r = a * R mod m, for a < m */
void bn_mont_to(const struct bn_mont *, uint32_t *r, const uint32_t *a);
/* out of the Montgomery domain: r = a / R mod m */
void bn_mont_from(const struct bn_mont *, uint32_t *r, const uint32_t *a);
/* r = a + b mod m and r = a - b mod m, for a, b < m */
void bn_mod_add(const struct bn_mont *, uint32_t *r, const uint32_t *a,
    const uint32_t *b);
void bn_mod_sub(const struct bn_mont *, uint32_t *r, const uint32_t *a,
    const uint32_t *b);
/*
 * r = a^e in the Montgomery domain (a and r in it), e given as elen
 * big-endian bytes; r may alias a
 */
void bn_mont_pow(const struct bn_mont *, uint32_t *r, const uint32_t *a,
    const unsigned char *e, size_t elen);

#endif
