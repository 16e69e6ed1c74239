/* buf: bounded byte buffers (a ring for streaming, a growable string) */
#ifndef SUPAGATE_BUF_H
#define SUPAGATE_BUF_H

#include <stddef.h>

/* fixed-capacity ring buffer used to stream bodies between the two sides */
struct ring {
	char	*data;
	size_t	 cap;
	size_t	 head;		/* read position */
	size_t	 len;		/* bytes held */
};

/* allocate cap bytes; -1 on ENOMEM */
int ring_init(struct ring *, size_t cap);
void ring_fini(struct ring *);
size_t ring_space(const struct ring *);
/* copy up to n bytes in; returns bytes taken */
size_t ring_put(struct ring *, const void *, size_t n);
/* copy up to n bytes out; returns bytes given */
size_t ring_get(struct ring *, void *, size_t n);

/* growable NUL-terminated string with a hard cap */
struct sbuf {
	char	*s;
	size_t	 len;
	size_t	 cap;		/* allocated */
	size_t	 max;		/* hard limit, excluding the NUL */
	int	 overflow;	/* set once an append did not fit */
};

void sbuf_init(struct sbuf *, size_t max);
void sbuf_fini(struct sbuf *);
/* append; -1 (and overflow set) if max would be exceeded or ENOMEM */
int sbuf_add(struct sbuf *, const char *, size_t);
int sbuf_printf(struct sbuf *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
/* append a JSON string literal (quotes and escapes included) */
int sbuf_json_str(struct sbuf *, const char *);
const char *sbuf_str(const struct sbuf *);

#endif
