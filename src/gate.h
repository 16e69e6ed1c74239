/* gate: strict check of a request head before the HTTP library sees it */
#ifndef SUPAGATE_GATE_H
#define SUPAGATE_GATE_H

#include <stddef.h>

#define GATE_MAX_FIELDS	100

enum gate_result {
	GATE_MORE,	/* the head is not complete yet */
	GATE_OK,	/* a well-formed head of *head_len bytes */
	GATE_REJECT,	/* answer status/code/message and close */
};

struct gate_verdict {
	size_t		 head_len;	/* GATE_OK: bytes up to the blank line */
	int		 status;	/* GATE_REJECT: 400, 414, 431, 505 */
	const char	*code;		/* "bad_request", "headers_too_large" */
	const char	*message;
};

/*
 * Check the bytes received so far on a new connection (RFC 9112, with
 * no leniency): request line, version 1.0 or 1.1, field syntax (no
 * whitespace before ':', no obs-fold, no NUL or other control bytes, CRLF
 * line ends), at most GATE_MAX_FIELDS fields, one Host (required for
 * 1.1), Content-Length digits only and consistent, Transfer-Encoding
 * only "chunked", not together with Content-Length and not in HTTP/1.0.  max_head bounds
 * the head: a longer request line is 414, longer fields 431.  Pure: no
 * I/O, no allocation.
 */
enum gate_result gate_check(const char *buf, size_t len, size_t max_head,
    struct gate_verdict *);

#endif
