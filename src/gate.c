/* gate: strict check of a request head before the HTTP library sees it */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "gate.h"

#define MAX_LEADING_CRLF	4
#define MAX_LENGTH_DIGITS	19

static int
is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z') || (c != '\0' &&
	    strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* request-target: visible ASCII only (no spaces, controls, NUL, 8-bit) */
static int
is_target_char(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e;
}

/* field-value bytes: VCHAR, obs-text, SP, HTAB */
static int
is_field_char(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static enum gate_result
reject(struct gate_verdict *v, int status, const char *code, const char *msg)
{
	v->status = status;
	v->code = code;
	v->message = msg;
	return GATE_REJECT;
}

/* "HTTP/d.d\r\n", checked as far as the bytes go */
static int
version_prefix_ok(const char *p, size_t n)
{
	static const char	tmpl[] = "HTTP/0.0\r\n";
	size_t			i;

	for (i = 0; i < n && i < sizeof(tmpl) - 1; i++) {
		if (tmpl[i] == '0') {
			if (p[i] < '0' || p[i] > '9')
				return 0;
		} else if (p[i] != tmpl[i])
			return 0;
	}
	return 1;
}

static int
name_is(const char *name, size_t len, const char *want)
{
	return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

enum gate_result
gate_check(const char *buf, size_t len, size_t max_head,
    struct gate_verdict *v)
{
	const char	*p = buf, *end, *m, *name, *val, *vend;
	const char	*cl = NULL;
	size_t		 namelen, cllen = 0, i;
	int		 http11, nfields = 0, nhost = 0, te = 0;

	memset(v, 0, sizeof(*v));
	end = buf + (len < max_head ? len : max_head);

	for (i = 0; i < MAX_LEADING_CRLF && end - p >= 2 && p[0] == '\r' &&
	    p[1] == '\n'; i++)
		p += 2;
	/* a leading CRLF cut in the middle: wait for the rest */
	if (i < MAX_LEADING_CRLF && end - p == 1 && p[0] == '\r')
		goto more_line;

	/* method SP request-target SP HTTP-version CRLF */
	for (m = p; p < end && is_tchar(*p); p++)
		;
	if (p == end)
		goto more_line;
	if (p == m || *p != ' ')
		return reject(v, 400, "bad_request", "malformed request line");
	for (m = ++p; p < end && is_target_char(*p); p++)
		;
	if (p == end)
		goto more_line;
	if (p == m || *p != ' ')
		return reject(v, 400, "bad_request",
		    "malformed request target");
	p++;
	if (!version_prefix_ok(p, (size_t)(end - p)))
		return reject(v, 400, "bad_request", "malformed HTTP version");
	if (end - p < 10)
		goto more_line;
	if (p[5] != '1' || p[7] > '1')
		return reject(v, 505, "http_version_not_supported",
		    "only HTTP/1.0 and HTTP/1.1 are spoken here");
	http11 = p[7] == '1';
	p += 10;

	/* field-name ":" OWS field-value OWS CRLF, then an empty line */
	for (;;) {
		if (end - p < 2)
			goto more_fields;
		if (p[0] == '\r') {
			if (p[1] != '\n')
				return reject(v, 400, "bad_request",
				    "bare CR in the request head");
			p += 2;
			break;
		}
		if (p[0] == ' ' || p[0] == '\t')
			return reject(v, 400, "bad_request",
			    "obsolete line folding in a header");
		for (name = p; p < end && is_tchar(*p); p++)
			;
		if (p == end)
			goto more_fields;
		if (p == name || *p != ':')
			return reject(v, 400, "bad_request",
			    "malformed header field name");
		namelen = p - name;
		for (p++; p < end && (*p == ' ' || *p == '\t'); p++)
			;
		for (val = p; p < end && is_field_char(*p); p++)
			;
		if (p == end || p + 1 == end)
			goto more_fields;
		if (p[0] != '\r' || p[1] != '\n')
			return reject(v, 400, "bad_request",
			    "invalid byte in a header field");
		for (vend = p; vend > val && (vend[-1] == ' ' ||
		    vend[-1] == '\t'); vend--)
			;
		p += 2;
		if (++nfields > GATE_MAX_FIELDS)
			return reject(v, 431, "headers_too_large",
			    "too many header fields");
		if (name_is(name, namelen, "host"))
			nhost++;
		else if (name_is(name, namelen, "content-length")) {
			if (vend == val || vend - val > MAX_LENGTH_DIGITS)
				return reject(v, 400, "bad_request",
				    "invalid Content-Length");
			for (m = val; m < vend; m++)
				if (*m < '0' || *m > '9')
					return reject(v, 400, "bad_request",
					    "invalid Content-Length");
			if (cl != NULL && ((size_t)(vend - val) != cllen ||
			    memcmp(cl, val, cllen) != 0))
				return reject(v, 400, "bad_request",
				    "conflicting Content-Length headers");
			cl = val;
			cllen = vend - val;
		} else if (name_is(name, namelen, "transfer-encoding")) {
			if (te || !name_is(val, vend - val, "chunked"))
				return reject(v, 400, "bad_request",
				    "only Transfer-Encoding: chunked is "
				    "supported");
			te = 1;
		}
	}
	if (nhost > 1)
		return reject(v, 400, "bad_request",
		    "more than one Host header");
	if (http11 && nhost == 0)
		return reject(v, 400, "bad_request", "missing Host header");
	if (te && cl != NULL)
		return reject(v, 400, "bad_request",
		    "both Content-Length and Transfer-Encoding");
	if (te && !http11)
		return reject(v, 400, "bad_request",
		    "Transfer-Encoding in an HTTP/1.0 request");
	v->head_len = p - buf;
	return GATE_OK;

 more_line:
	if (len >= max_head)
		return reject(v, 414, "uri_too_long",
		    "the request line is too long");
	return GATE_MORE;
 more_fields:
	if (len >= max_head)
		return reject(v, 431, "headers_too_large",
		    "the request head is too large");
	return GATE_MORE;
}
