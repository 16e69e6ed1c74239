/*
 * bn: fixed-size multiprecision and Montgomery arithmetic (public data
 * only, so not constant time)
 */
#include "config.h"

#include <string.h>

#include "bn.h"

int
bn_from_bytes(uint32_t *a, size_t n, const unsigned char *b, size_t len)
{
	size_t	i;

	/* leading zero bytes carry nothing */
	while (len > 0 && b[0] == 0) {
		b++;
		len--;
	}
	if (len > 4 * n)
		return -1;
	memset(a, 0, n * sizeof(*a));
	for (i = 0; i < len; i++)
		a[i / 4] |= (uint32_t)b[len - 1 - i] << (8 * (i % 4));
	return 0;
}

int
bn_to_bytes(const uint32_t *a, size_t n, unsigned char *b, size_t len)
{
	size_t	i;

	if (bn_bits(a, n) > 8 * len)
		return -1;
	for (i = 0; i < len; i++)
		b[len - 1 - i] = i / 4 < n ?
		    (unsigned char)(a[i / 4] >> (8 * (i % 4))) : 0;
	return 0;
}

int
bn_cmp(const uint32_t *a, const uint32_t *b, size_t n)
{
	while (n-- > 0)
		if (a[n] != b[n])
			return a[n] < b[n] ? -1 : 1;
	return 0;
}

int
bn_is_zero(const uint32_t *a, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (a[i] != 0)
			return 0;
	return 1;
}

size_t
bn_bits(const uint32_t *a, size_t n)
{
	uint32_t	w;
	size_t		b;

	while (n > 0 && a[n - 1] == 0)
		n--;
	if (n == 0)
		return 0;
	for (w = a[n - 1], b = 0; w != 0; w >>= 1)
		b++;
	return 32 * (n - 1) + b;
}

static uint32_t
add(uint32_t *r, const uint32_t *a, const uint32_t *b, size_t n)
{
	uint64_t	c = 0;
	size_t		i;

	for (i = 0; i < n; i++) {
		c += (uint64_t)a[i] + b[i];
		r[i] = (uint32_t)c;
		c >>= 32;
	}
	return (uint32_t)c;
}

uint32_t
bn_sub(uint32_t *r, const uint32_t *a, const uint32_t *b, size_t n)
{
	uint64_t	d;
	uint32_t	borrow = 0;
	size_t		i;

	for (i = 0; i < n; i++) {
		d = (uint64_t)a[i] - b[i] - borrow;
		r[i] = (uint32_t)d;
		borrow = (uint32_t)(d >> 63);
	}
	return borrow;
}

void
bn_mod_add(const struct bn_mont *mo, uint32_t *r, const uint32_t *a,
    const uint32_t *b)
{
	/* a + b < 2m, so one subtraction reduces it */
	if (add(r, a, b, mo->n) || bn_cmp(r, mo->m, mo->n) >= 0)
		bn_sub(r, r, mo->m, mo->n);
}

void
bn_mod_sub(const struct bn_mont *mo, uint32_t *r, const uint32_t *a,
    const uint32_t *b)
{
	if (bn_sub(r, a, b, mo->n))
		add(r, r, mo->m, mo->n);
}

int
bn_mont_init(struct bn_mont *mo, const uint32_t *m, size_t n)
{
	uint32_t	x;
	size_t		i;
	int		k;

	if (n == 0 || n > BN_MAX_LIMBS || (m[0] & 1) == 0 ||
	    bn_bits(m, n) < 2)
		return -1;
	memset(mo, 0, sizeof(*mo));
	mo->n = n;
	memcpy(mo->m, m, n * sizeof(*m));
	/* Newton's iteration doubles the correct low bits of 1/m0 */
	x = m[0];
	for (k = 0; k < 5; k++)
		x *= 2 - m[0] * x;
	mo->minv = (uint32_t)0 - x;
	/* R mod m and R^2 mod m by doubling 1 (1 < m) */
	mo->one[0] = 1;
	for (i = 0; i < 32 * n; i++)
		bn_mod_add(mo, mo->one, mo->one, mo->one);
	memcpy(mo->rr, mo->one, n * sizeof(*m));
	for (i = 0; i < 32 * n; i++)
		bn_mod_add(mo, mo->rr, mo->rr, mo->rr);
	return 0;
}

/* coarsely integrated operand scanning: a, b < m gives a result < m */
void
bn_mont_mul(const struct bn_mont *mo, uint32_t *r, const uint32_t *a,
    const uint32_t *b)
{
	uint32_t	t[BN_MAX_LIMBS + 2], q;
	uint64_t	c;
	size_t		i, j, n = mo->n;

	memset(t, 0, (n + 2) * sizeof(*t));
	for (i = 0; i < n; i++) {
		c = 0;
		for (j = 0; j < n; j++) {
			c += (uint64_t)a[j] * b[i] + t[j];
			t[j] = (uint32_t)c;
			c >>= 32;
		}
		c += t[n];
		t[n] = (uint32_t)c;
		t[n + 1] = (uint32_t)(c >> 32);

		q = t[0] * mo->minv;
		c = ((uint64_t)q * mo->m[0] + t[0]) >> 32;
		for (j = 1; j < n; j++) {
			c += (uint64_t)q * mo->m[j] + t[j];
			t[j - 1] = (uint32_t)c;
			c >>= 32;
		}
		c += t[n];
		t[n - 1] = (uint32_t)c;
		t[n] = t[n + 1] + (uint32_t)(c >> 32);
	}
	/* t < 2m */
	if (t[n] != 0 || bn_cmp(t, mo->m, n) >= 0)
		bn_sub(t, t, mo->m, n);
	memcpy(r, t, n * sizeof(*r));
}

void
bn_mont_to(const struct bn_mont *mo, uint32_t *r, const uint32_t *a)
{
	bn_mont_mul(mo, r, a, mo->rr);
}

void
bn_mont_from(const struct bn_mont *mo, uint32_t *r, const uint32_t *a)
{
	uint32_t	one[BN_MAX_LIMBS];

	memset(one, 0, mo->n * sizeof(*one));
	one[0] = 1;
	bn_mont_mul(mo, r, a, one);
}

void
bn_mont_pow(const struct bn_mont *mo, uint32_t *r, const uint32_t *a,
    const unsigned char *e, size_t elen)
{
	uint32_t	base[BN_MAX_LIMBS], acc[BN_MAX_LIMBS];
	size_t		i;
	int		bit;

	memcpy(base, a, mo->n * sizeof(*a));
	memcpy(acc, mo->one, mo->n * sizeof(*a));
	for (i = 0; i < elen; i++)
		for (bit = 7; bit >= 0; bit--) {
			bn_mont_mul(mo, acc, acc, acc);
			if ((e[i] >> bit) & 1)
				bn_mont_mul(mo, acc, acc, base);
		}
	memcpy(r, acc, mo->n * sizeof(*r));
}
