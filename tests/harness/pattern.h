/* pattern: the deterministic body bytes and checksum shared by fakeup and tests */
#ifndef SUPAGATE_TESTS_PATTERN_H
#define SUPAGATE_TESTS_PATTERN_H

#include <stddef.h>
#include <stdint.h>

/*
 * Byte at offset off of every generated body: off mod 251.  251 is prime,
 * so the pattern never lines up with power-of-two buffer sizes and a lost,
 * repeated or reordered block changes the checksum.
 */
static inline void
pattern_fill(unsigned char *p, uint64_t off, size_t len)
{
	unsigned	v = (unsigned)(off % 251);
	size_t		i;

	for (i = 0; i < len; i++) {
		p[i] = (unsigned char)v;
		if (++v == 251)
			v = 0;
	}
}

/* Adler-32: order sensitive, fits a JSON number exactly */
struct pattern_sum {
	uint32_t	a, b;
};

#define PATTERN_SUM_INIT	{ 1, 0 }

static inline void
pattern_sum_update(struct pattern_sum *s, const unsigned char *p, size_t len)
{
	uint32_t	a = s->a, b = s->b;
	size_t		n;

	while (len > 0) {
		n = len < 5552 ? len : 5552;
		len -= n;
		while (n-- > 0) {
			a += *p++;
			b += a;
		}
		a %= 65521;
		b %= 65521;
	}
	s->a = a;
	s->b = b;
}

static inline uint32_t
pattern_sum_value(const struct pattern_sum *s)
{
	return (s->b << 16) | s->a;
}

#endif
