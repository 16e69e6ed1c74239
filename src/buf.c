/* buf: bounded byte buffers */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

int
ring_init(struct ring *r, size_t cap)
{
	r->head = r->len = 0;
	r->cap = cap;
	r->data = malloc(cap);
	return r->data == NULL ? -1 : 0;
}

void
ring_fini(struct ring *r)
{
	free(r->data);
	r->data = NULL;
	r->cap = r->head = r->len = 0;
}

size_t
ring_space(const struct ring *r)
{
	return r->cap - r->len;
}

size_t
ring_put(struct ring *r, const void *p, size_t n)
{
	const char	*src = p;
	size_t		 tail, first, done = 0;

	if (n > ring_space(r))
		n = ring_space(r);
	while (done < n) {
		tail = (r->head + r->len) % r->cap;
		first = r->cap - tail;
		if (first > n - done)
			first = n - done;
		memcpy(r->data + tail, src + done, first);
		r->len += first;
		done += first;
	}
	return n;
}

size_t
ring_get(struct ring *r, void *p, size_t n)
{
	char	*dst = p;
	size_t	 first, done = 0;

	if (n > r->len)
		n = r->len;
	while (done < n) {
		first = r->cap - r->head;
		if (first > n - done)
			first = n - done;
		memcpy(dst + done, r->data + r->head, first);
		r->head = (r->head + first) % r->cap;
		r->len -= first;
		done += first;
	}
	if (r->len == 0)
		r->head = 0;
	return n;
}

void
sbuf_init(struct sbuf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void
sbuf_fini(struct sbuf *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}

int
sbuf_add(struct sbuf *b, const char *p, size_t n)
{
	char	*ns;
	size_t	 ncap;

	if (b->overflow || n > b->max - b->len) {
		b->overflow = 1;
		return -1;
	}
	if (b->len + n + 1 > b->cap) {
		ncap = b->cap ? b->cap : 256;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		if ((ns = realloc(b->s, ncap)) == NULL) {
			b->overflow = 1;
			return -1;
		}
		b->s = ns;
		b->cap = ncap;
	}
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
	return 0;
}

int
sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	char	 tmp[512], *big;
	va_list	 ap;
	int	 n, ret;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof(tmp))
		return sbuf_add(b, tmp, n);
	if ((big = malloc(n + 1)) == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(big, n + 1, fmt, ap);
	va_end(ap);
	ret = sbuf_add(b, big, n);
	free(big);
	return ret;
}

int
sbuf_json_str(struct sbuf *b, const char *s)
{
	char	esc[8];
	int	ret = sbuf_add(b, "\"", 1);

	for (; *s != '\0' && ret == 0; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = c;
			ret = sbuf_add(b, esc, 2);
		} else if (c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			ret = sbuf_add(b, esc, 6);
		} else
			ret = sbuf_add(b, (const char *)&c, 1);
	}
	if (ret == 0)
		ret = sbuf_add(b, "\"", 1);
	return ret;
}

const char *
sbuf_str(const struct sbuf *b)
{
	return b->s != NULL ? b->s : "";
}
