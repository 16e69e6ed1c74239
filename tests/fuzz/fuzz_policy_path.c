/* fuzz_policy_path: policy_path_ok and policy_strip_apikey */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Reference check of an accepted path: starts with '/', only visible
 * ASCII, and decoded once (%XX) no segment split on '/' or '\' is "."
 * or "..", and no %00.
 */
static void
check_accepted(const char *path)
{
	const unsigned char	*p = (const unsigned char *)path;
	size_t			 seg = 0, dots = 0;
	int			 c, hi, lo;

	if (p[0] != '/')
		abort();
	for (p++;; p++) {
		c = *p;
		if (c != '\0' && (c < 0x21 || c > 0x7e))
			abort();
		if (c == '%') {
			if ((hi = hexval(p[1])) < 0 || (lo = hexval(p[2])) < 0)
				abort();
			c = hi << 4 | lo;
			if (c == 0)
				abort();
			p += 2;
			if (c == '\\')
				c = '/';
		} else if (c == '\\' || c == '"' || c == '<' || c == '>' ||
		    c == '^' || c == '`' || c == '{' || c == '|' ||
		    c == '}' || c == '[' || c == ']' || c == '#' || c == '?')
			abort();
		if (c == '\0' || c == '/') {
			if (seg > 0 && seg == dots && seg <= 2)
				abort();
			if (c == '\0')
				break;
			seg = dots = 0;
			continue;
		}
		seg++;
		if (c == '.')
			dots++;
	}
}

/* 1 if a query parameter name, percent-decoded once, is "apikey" */
static int
has_apikey(const char *q)
{
	const char	*p = q, *end;
	char		 name[8];
	size_t		 n, i, j;
	int		 hi, lo;

	for (;; p = end + 1) {
		end = p + strcspn(p, "&");
		n = strcspn(p, "=&");
		for (i = j = 0; i < n && j < sizeof(name); j++) {
			if (p[i] == '%' && n - i >= 3 &&
			    (hi = hexval((unsigned char)p[i + 1])) >= 0 &&
			    (lo = hexval((unsigned char)p[i + 2])) >= 0) {
				name[j] = (char)(hi << 4 | lo);
				i += 3;
			} else
				name[j] = p[i++];
		}
		if (i == n && j == 6 && memcmp(name, "apikey", 6) == 0)
			return 1;
		if (*end == '\0')
			return 0;
	}
}

static void
strip(const char *q, size_t qlen)
{
	static const size_t	 small[] = { 1, 2, 7, 16 };
	char			*big, *out, *again, key[64], *bigkey;
	size_t			 i, biglen = qlen + 1;
	int			 r, rb, ra;

	big = malloc(biglen);
	bigkey = malloc(biglen);
	again = malloc(biglen);
	if (big == NULL || bigkey == NULL || again == NULL)
		abort();

	/* big enough for everything: never -1 */
	rb = policy_strip_apikey(q, big, biglen, bigkey, biglen);
	if (rb < 0 || strlen(big) > qlen || strlen(bigkey) > qlen)
		abort();
	if (rb == 0 && (strcmp(big, q) != 0 || bigkey[0] != '\0'))
		abort();
	/* nothing left to strip; stripping again changes nothing */
	if (rb > 0 && has_apikey(big))
		abort();
	if (rb > 0) {
		ra = policy_strip_apikey(big, again, biglen, NULL, 0);
		if (ra != 0 || strcmp(again, big) != 0)
			abort();
	}
	if (rb == 0 && has_apikey(q))
		abort();
	if (policy_strip_apikey(q, again, biglen, NULL, 0) != rb ||
	    strcmp(again, big) != 0)
		abort();

	/* small buffers: either -1 with empty outputs, or the same */
	for (i = 0; i < sizeof(small) / sizeof(small[0]); i++) {
		if ((out = malloc(small[i])) == NULL)
			abort();
		r = policy_strip_apikey(q, out, small[i], key, small[i]);
		if (r == -1) {
			if (out[0] != '\0' || key[0] != '\0')
				abort();
			if (strlen(big) < small[i] && strlen(bigkey) <
			    small[i])
				abort();
		} else if (r != rb || strcmp(out, big) != 0 ||
		    strcmp(key, bigkey) != 0)
			abort();
		r = policy_strip_apikey(q, out, small[i], NULL, 0);
		if (r == -1 ? strlen(big) < small[i] : r != rb ||
		    strcmp(out, big) != 0)
			abort();
		free(out);
	}
	/* no room for the key at all */
	r = policy_strip_apikey(q, big, biglen, key, 0);
	if (r != (rb > 0 ? -1 : 0))
		abort();
	free(again);
	free(bigkey);
	free(big);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*why;
	char		*s;
	int		 r;

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	why = NULL;
	r = policy_path_ok(s, &why);
	if (r == 0)
		check_accepted(s);
	else if (r != -1 || why == NULL || why[0] == '\0')
		abort();
	if (policy_path_ok(s, NULL) != r)
		abort();
	strip(s, strlen(s));
	free(s);
	return 0;
}
