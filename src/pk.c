/* pk: ES256 and RS256 signature verification over bn */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "bn.h"
#include "pk.h"

#define FE	8	/* limbs of a P-256 field or scalar element */

/* P-256 domain parameters (FIPS 186-4, D.1.2.3), big-endian */
static const unsigned char p256_p[32] = {
	0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
};
static const unsigned char p256_n[32] = {
	0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84,
	0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
};
static const unsigned char p256_b[32] = {
	0x5a, 0xc6, 0x35, 0xd8, 0xaa, 0x3a, 0x93, 0xe7,
	0xb3, 0xeb, 0xbd, 0x55, 0x76, 0x98, 0x86, 0xbc,
	0x65, 0x1d, 0x06, 0xb0, 0xcc, 0x53, 0xb0, 0xf6,
	0x3b, 0xce, 0x3c, 0x3e, 0x27, 0xd2, 0x60, 0x4b,
};
static const unsigned char p256_gx[32] = {
	0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47,
	0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40, 0xf2,
	0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0,
	0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96,
};
static const unsigned char p256_gy[32] = {
	0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b,
	0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e, 0x16,
	0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce,
	0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5,
};

/* DER prefix of DigestInfo for SHA-256 (RFC 8017, section 9.2 note 1) */
static const unsigned char sha256_prefix[19] = {
	0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
	0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
};

/*
 * RSA
 */

int
pk_rsa_init(struct pk_rsa *k, const unsigned char *n, size_t nlen,
    const unsigned char *e, size_t elen, char *err, size_t errlen)
{
	uint32_t	m[BN_MAX_LIMBS];
	size_t		bits;

	while (nlen > 0 && n[0] == 0) {
		n++;
		nlen--;
	}
	while (elen > 0 && e[0] == 0) {
		e++;
		elen--;
	}
	memset(k, 0, sizeof(*k));
	if (nlen > PK_RSA_MAX_BITS / 8 ||
	    bn_from_bytes(m, BN_MAX_LIMBS, n, nlen) == -1 ||
	    (bits = bn_bits(m, BN_MAX_LIMBS)) < PK_RSA_MIN_BITS ||
	    bits > PK_RSA_MAX_BITS) {
		snprintf(err, errlen, "modulus must have %d to %d bits",
		    PK_RSA_MIN_BITS, PK_RSA_MAX_BITS);
		return -1;
	}
	if (bn_mont_init(&k->mod, m, (bits + 31) / 32) == -1) {
		snprintf(err, errlen, "modulus is even");
		return -1;
	}
	k->k = (bits + 7) / 8;
	if (elen == 0 || elen > sizeof(k->e) || (e[elen - 1] & 1) == 0 ||
	    (elen == 1 && e[0] < 3)) {
		snprintf(err, errlen, "exponent must be odd, at least 3 and "
		    "below 2^32");
		return -1;
	}
	memcpy(k->e + sizeof(k->e) - elen, e, elen);
	return 0;
}

int
pk_rsa_verify(const struct pk_rsa *k, const unsigned char hash[32],
    const unsigned char *sig, size_t siglen)
{
	const struct bn_mont	*mo = &k->mod;
	uint32_t		 s[BN_MAX_LIMBS];
	unsigned char		 em[PK_SIG_MAX], want[PK_SIG_MAX];
	size_t			 tlen = sizeof(sha256_prefix) + 32, ps;

	/* RFC 8017, 8.2.2: the signature is exactly as long as n */
	if (siglen != k->k || k->k > sizeof(em) || k->k < tlen + 11)
		return -1;
	if (bn_from_bytes(s, mo->n, sig, siglen) == -1 ||
	    bn_cmp(s, mo->m, mo->n) >= 0)
		return -1;
	bn_mont_to(mo, s, s);
	bn_mont_pow(mo, s, s, k->e, sizeof(k->e));
	bn_mont_from(mo, s, s);
	if (bn_to_bytes(s, mo->n, em, k->k) == -1)
		return -1;
	/* EMSA-PKCS1-v1_5: 00 01 FF..FF 00 DigestInfo(hash) */
	ps = k->k - tlen - 3;
	want[0] = 0x00;
	want[1] = 0x01;
	memset(want + 2, 0xff, ps);
	want[2 + ps] = 0x00;
	memcpy(want + 3 + ps, sha256_prefix, sizeof(sha256_prefix));
	memcpy(want + 3 + ps + sizeof(sha256_prefix), hash, 32);
	return memcmp(em, want, k->k) == 0 ? 0 : -1;
}

/*
 * P-256: field elements in the Montgomery domain modulo p, points in
 * Jacobian coordinates (x = X/Z^2, y = Y/Z^3), Z = 0 the point at
 * infinity.  The curve has a = -3.
 */

struct curve {
	struct bn_mont	fp;		/* modulo p */
	struct bn_mont	fn;		/* modulo n (group order) */
	uint32_t	b[FE];		/* Montgomery domain */
};

struct jpoint {
	uint32_t	x[FE], y[FE], z[FE];
};

static void
curve_init(struct curve *cv)
{
	uint32_t	v[FE];

	bn_from_bytes(v, FE, p256_p, 32);
	bn_mont_init(&cv->fp, v, FE);
	bn_from_bytes(v, FE, p256_n, 32);
	bn_mont_init(&cv->fn, v, FE);
	bn_from_bytes(v, FE, p256_b, 32);
	bn_mont_to(&cv->fp, cv->b, v);
}

/* y^2 == x^3 - 3x + b for affine x, y < p in the Montgomery domain */
static int
on_curve(const struct curve *cv, const uint32_t *x, const uint32_t *y)
{
	const struct bn_mont	*f = &cv->fp;
	uint32_t		 l[FE], r[FE], t[FE];

	bn_mont_mul(f, l, y, y);
	bn_mont_mul(f, r, x, x);
	bn_mont_mul(f, r, r, x);
	bn_mod_add(f, t, x, x);
	bn_mod_add(f, t, t, x);
	bn_mod_sub(f, r, r, t);
	bn_mod_add(f, r, r, cv->b);
	return bn_cmp(l, r, FE) == 0;
}

/* big-endian x and y into Montgomery form; -1 if >= p or off the curve */
static int
affine_in(const struct curve *cv, const unsigned char bx[32],
    const unsigned char by[32], uint32_t *x, uint32_t *y)
{
	bn_from_bytes(x, FE, bx, 32);
	bn_from_bytes(y, FE, by, 32);
	if (bn_cmp(x, cv->fp.m, FE) >= 0 || bn_cmp(y, cv->fp.m, FE) >= 0)
		return -1;
	bn_mont_to(&cv->fp, x, x);
	bn_mont_to(&cv->fp, y, y);
	return on_curve(cv, x, y) ? 0 : -1;
}

static void
point_double(const struct curve *cv, struct jpoint *r, const struct jpoint *a)
{
	const struct bn_mont	*f = &cv->fp;
	uint32_t		 delta[FE], gamma[FE], beta[FE], alpha[FE];
	uint32_t		 t[FE], u[FE];

	if (bn_is_zero(a->z, FE) || bn_is_zero(a->y, FE)) {
		memset(r, 0, sizeof(*r));
		return;
	}
	/* a = -3: alpha = 3 (X - Z^2)(X + Z^2) */
	bn_mont_mul(f, delta, a->z, a->z);
	bn_mont_mul(f, gamma, a->y, a->y);
	bn_mont_mul(f, beta, a->x, gamma);
	bn_mod_sub(f, t, a->x, delta);
	bn_mod_add(f, u, a->x, delta);
	bn_mont_mul(f, alpha, t, u);
	bn_mod_add(f, t, alpha, alpha);
	bn_mod_add(f, alpha, t, alpha);
	/* Z3 = (Y + Z)^2 - gamma - delta */
	bn_mod_add(f, t, a->y, a->z);
	bn_mont_mul(f, t, t, t);
	bn_mod_sub(f, t, t, gamma);
	bn_mod_sub(f, r->z, t, delta);
	/* X3 = alpha^2 - 8 beta */
	bn_mod_add(f, beta, beta, beta);
	bn_mod_add(f, beta, beta, beta);		/* 4 beta */
	bn_mod_add(f, u, beta, beta);			/* 8 beta */
	bn_mont_mul(f, t, alpha, alpha);
	bn_mod_sub(f, r->x, t, u);
	/* Y3 = alpha (4 beta - X3) - 8 gamma^2 */
	bn_mod_sub(f, t, beta, r->x);
	bn_mont_mul(f, t, alpha, t);
	bn_mont_mul(f, u, gamma, gamma);
	bn_mod_add(f, u, u, u);
	bn_mod_add(f, u, u, u);
	bn_mod_add(f, u, u, u);
	bn_mod_sub(f, r->y, t, u);
}

static void
point_add(const struct curve *cv, struct jpoint *r, const struct jpoint *a,
    const struct jpoint *b)
{
	const struct bn_mont	*f = &cv->fp;
	uint32_t		 u1[FE], u2[FE], s1[FE], s2[FE], h[FE], rr[FE];
	uint32_t		 z1z1[FE], z2z2[FE], hh[FE], hhh[FE], t[FE];

	if (bn_is_zero(a->z, FE)) {
		*r = *b;
		return;
	}
	if (bn_is_zero(b->z, FE)) {
		*r = *a;
		return;
	}
	bn_mont_mul(f, z1z1, a->z, a->z);
	bn_mont_mul(f, z2z2, b->z, b->z);
	bn_mont_mul(f, u1, a->x, z2z2);
	bn_mont_mul(f, u2, b->x, z1z1);
	bn_mont_mul(f, s1, a->y, z2z2);
	bn_mont_mul(f, s1, s1, b->z);
	bn_mont_mul(f, s2, b->y, z1z1);
	bn_mont_mul(f, s2, s2, a->z);
	if (bn_cmp(u1, u2, FE) == 0) {
		if (bn_cmp(s1, s2, FE) == 0)
			point_double(cv, r, a);
		else
			memset(r, 0, sizeof(*r));	/* a == -b */
		return;
	}
	bn_mod_sub(f, h, u2, u1);
	bn_mod_sub(f, rr, s2, s1);
	bn_mont_mul(f, hh, h, h);
	bn_mont_mul(f, hhh, hh, h);
	bn_mont_mul(f, u1, u1, hh);			/* U1 H^2 */
	/* Z3 = H Z1 Z2 */
	bn_mont_mul(f, t, a->z, b->z);
	bn_mont_mul(f, r->z, t, h);
	/* X3 = r^2 - H^3 - 2 U1 H^2 */
	bn_mont_mul(f, t, rr, rr);
	bn_mod_sub(f, t, t, hhh);
	bn_mod_sub(f, t, t, u1);
	bn_mod_sub(f, r->x, t, u1);
	/* Y3 = r (U1 H^2 - X3) - S1 H^3 */
	bn_mod_sub(f, t, u1, r->x);
	bn_mont_mul(f, t, rr, t);
	bn_mont_mul(f, s1, s1, hhh);
	bn_mod_sub(f, r->y, t, s1);
}

static int
bit_of(const uint32_t *v, size_t i)
{
	return (v[i / 32] >> (i % 32)) & 1;
}

int
pk_ec_init(struct pk_ec *k, const unsigned char x[32],
    const unsigned char y[32])
{
	struct curve	cv;

	curve_init(&cv);
	memset(k, 0, sizeof(*k));
	return affine_in(&cv, x, y, k->x, k->y);
}

int
pk_ec_verify(const struct pk_ec *k, const unsigned char hash[32],
    const unsigned char *sig, size_t siglen)
{
	struct curve		 cv;
	const struct bn_mont	*n;
	struct jpoint		 g, q, gq, acc;
	uint32_t		 r[FE], s[FE], e[FE], w[FE], u1[FE], u2[FE];
	unsigned char		 nm2[32];
	size_t			 i;
	int			 sel;

	if (siglen != PK_ES256_SIGLEN)
		return -1;
	curve_init(&cv);
	n = &cv.fn;
	bn_from_bytes(r, FE, sig, 32);
	bn_from_bytes(s, FE, sig + 32, 32);
	if (bn_is_zero(r, FE) || bn_is_zero(s, FE) ||
	    bn_cmp(r, n->m, FE) >= 0 || bn_cmp(s, n->m, FE) >= 0)
		return -1;
	/* the digest is as long as n: no truncation; e < 2n */
	bn_from_bytes(e, FE, hash, 32);
	if (bn_cmp(e, n->m, FE) >= 0)
		bn_sub(e, e, n->m, FE);
	/* w = s^(n-2) mod n (n is prime) */
	bn_to_bytes(n->m, FE, nm2, sizeof(nm2));
	nm2[31] -= 2;			/* n ends in 0x51: no borrow */
	bn_mont_to(n, w, s);
	bn_mont_pow(n, w, w, nm2, sizeof(nm2));
	bn_mont_to(n, e, e);
	bn_mont_mul(n, u1, e, w);
	bn_mont_from(n, u1, u1);
	bn_mont_to(n, r, r);
	bn_mont_mul(n, u2, r, w);
	bn_mont_from(n, u2, u2);
	bn_mont_from(n, r, r);

	/* u1 G + u2 Q with one shared doubling chain */
	memcpy(g.z, cv.fp.one, sizeof(g.z));
	affine_in(&cv, p256_gx, p256_gy, g.x, g.y);
	memcpy(q.x, k->x, sizeof(q.x));
	memcpy(q.y, k->y, sizeof(q.y));
	memcpy(q.z, cv.fp.one, sizeof(q.z));
	point_add(&cv, &gq, &g, &q);
	memset(&acc, 0, sizeof(acc));
	for (i = 256; i-- > 0;) {
		point_double(&cv, &acc, &acc);
		sel = bit_of(u1, i) | bit_of(u2, i) << 1;
		if (sel == 1)
			point_add(&cv, &acc, &acc, &g);
		else if (sel == 2)
			point_add(&cv, &acc, &acc, &q);
		else if (sel == 3)
			point_add(&cv, &acc, &acc, &gq);
	}
	if (bn_is_zero(acc.z, FE))
		return -1;
	/* affine x = X / Z^2, Z^-1 = Z^(p-2) */
	bn_to_bytes(cv.fp.m, FE, nm2, sizeof(nm2));
	nm2[31] -= 2;			/* p ends in 0xff */
	bn_mont_pow(&cv.fp, w, acc.z, nm2, sizeof(nm2));
	bn_mont_mul(&cv.fp, w, w, w);
	bn_mont_mul(&cv.fp, e, acc.x, w);
	bn_mont_from(&cv.fp, e, e);
	/* x < p < 2n */
	if (bn_cmp(e, n->m, FE) >= 0)
		bn_sub(e, e, n->m, FE);
	return bn_cmp(e, r, FE) == 0 ? 0 : -1;
}
