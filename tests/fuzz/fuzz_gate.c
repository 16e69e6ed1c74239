/* fuzz_gate: gate_check on the input and on every prefix of it */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gate.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_verdict(enum gate_result r, const struct gate_verdict *v,
    size_t len, size_t max_head, const char *buf)
{
	switch (r) {
	case GATE_MORE:
		break;
	case GATE_OK:
		if (v->head_len > len || v->head_len > max_head ||
		    v->head_len < 16)	/* "M / HTTP/1.0\r\n\r\n" */
			abort();
		if (memcmp(buf + v->head_len - 4, "\r\n\r\n", 4) != 0)
			abort();
		break;
	case GATE_REJECT:
		if (v->code == NULL || v->message == NULL ||
		    v->message[0] == '\0')
			abort();
		if (!(v->status == 400 && strcmp(v->code, "bad_request") ==
		    0) && !(v->status == 414 && strcmp(v->code,
		    "uri_too_long") == 0) && !(v->status == 431 &&
		    strcmp(v->code, "headers_too_large") == 0) &&
		    !(v->status == 505 && strcmp(v->code,
		    "http_version_not_supported") == 0))
			abort();
		break;
	default:
		abort();
	}
}


/*
 * The first byte picks max_head (small limits reach 414 and 431), the
 * rest is the request.  Invariants: a prefix of a rejected input is
 * MORE or the same reject (never OK); a prefix of an accepted input is
 * MORE (or OK with the same head_len once the head is complete), never
 * a reject; a prefix of an input needing MORE is MORE too; the head
 * alone gives OK again with the same head_len.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gate_verdict	 full, v, again;
	enum gate_result	 fr, r;
	size_t			 max_head, len, n;
	char			*buf;

	if (size < 1)
		return 0;
	max_head = data[0] < 0xf0 ? (size_t)data[0] + 1 : 8192;
	len = size - 1;
	/* an exact-size copy so that ASan sees reads past len */
	if ((buf = malloc(len > 0 ? len : 1)) == NULL)
		return 0;
	memcpy(buf, data + 1, len);

	fr = gate_check(buf, len, max_head, &full);
	check_verdict(fr, &full, len, max_head, buf);
	if (fr == GATE_OK) {
		r = gate_check(buf, full.head_len, max_head, &again);
		if (r != GATE_OK || again.head_len != full.head_len)
			abort();
	}
	for (n = 0; n < len; n++) {
		r = gate_check(buf, n, max_head, &v);
		check_verdict(r, &v, n, max_head, buf);
		switch (fr) {
		case GATE_REJECT:
			if (r == GATE_OK)
				abort();
			if (r == GATE_REJECT && (v.status != full.status ||
			    strcmp(v.code, full.code) != 0))
				abort();
			break;
		case GATE_OK:
			if (r == GATE_REJECT)
				abort();
			if (r == GATE_OK && v.head_len != full.head_len)
				abort();
			if (r == GATE_MORE && n >= full.head_len)
				abort();
			break;
		case GATE_MORE:
			if (r != GATE_MORE)
				abort();
			break;
		}
	}
	free(buf);
	return 0;
}
