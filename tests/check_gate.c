/* check_gate: table-driven unit tests for the request head gate */
#include "config.h"

#include <sys/mman.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "gate.h"
#include "ck_run.h"

#define TIMEOUT_S	30
#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define MAXH		8192

/* a string literal and its length (literals may hold NUL bytes) */
#define S(lit)		lit, sizeof(lit) - 1

/* expected verdicts: GATE_OK with n bytes after the head, or a reject */
#define OK_TAIL(n)	GATE_OK, 0, NULL, (n), 0
#define OK		OK_TAIL(0)
#define MORE		GATE_MORE, 0, NULL, 0, 0
#define BAD		GATE_REJECT, 400, "bad_request", 0, 0
#define TOO_LARGE	GATE_REJECT, 431, "headers_too_large", 0, 0
#define V505		GATE_REJECT, 505, "http_version_not_supported", 0, 0

struct gcase {
	const char		*name;
	const char		*in;
	size_t			 len;
	enum gate_result	 want;
	int			 status;
	const char		*code;
	size_t			 tail;	/* GATE_OK: bytes after the head */
	int			 flags;
};

#define H11	"GET / HTTP/1.1\r\n"
#define HOST	"Host: a\r\n"
#define REQ11	H11 HOST	/* a request line and Host; add fields */

static const struct gcase cases[] = {
	/* valid heads */
	{ "get 1.1", S(H11 HOST "\r\n"), OK },
	{ "get 1.0 no host", S("GET / HTTP/1.0\r\n\r\n"), OK },
	{ "get 1.0 host", S("GET / HTTP/1.0\r\nHost: a\r\n\r\n"), OK },
	{ "post 1.1 body", S("POST /rest/v1/t HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 5\r\n\r\nhello"), OK_TAIL(5) },
	{ "post 1.0 body", S("POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\n"
	    "{}"), OK_TAIL(2) },
	{ "head 1.1", S("HEAD /x?y=1&z HTTP/1.1\r\nHost: a\r\n\r\n"), OK },
	{ "head 1.0", S("HEAD / HTTP/1.0\r\n\r\n"), OK },
	{ "pipelined", S(REQ11 "\r\n" REQ11 "\r\n"), OK_TAIL(27) },
	{ "body looks like a head", S("POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 9\r\n\r\n\r\n\r\nx\0\n\rz"), OK_TAIL(9) },
	{ "body after head 8bit", S(REQ11 "\r\n\xff\x00\x7f"), OK_TAIL(3) },
	{ "many fields", S(REQ11 "Accept: */*\r\nUser-Agent: t/1\r\n"
	    "apikey: k\r\nAuthorization: Bearer a.b.c\r\n\r\n"), OK },
	{ "host not first", S(H11 "X: 1\r\n" HOST "\r\n"), OK },

	/* leading CRLFs: up to four are skipped */
	{ "crlf x1", S("\r\n" H11 HOST "\r\n"), OK },
	{ "crlf x2", S("\r\n\r\n" H11 HOST "\r\n"), OK },
	{ "crlf x3", S("\r\n\r\n\r\n" H11 HOST "\r\n"), OK },
	{ "crlf x4", S("\r\n\r\n\r\n\r\n" H11 HOST "\r\n"), OK },
	{ "crlf x5", S("\r\n\r\n\r\n\r\n\r\n" H11 HOST "\r\n"), BAD },
	{ "crlf x6", S("\r\n\r\n\r\n\r\n\r\n\r\n" H11 HOST "\r\n"), BAD },
	{ "leading lf", S("\n" H11 HOST "\r\n"), BAD },
	{ "leading cr", S("\rX" H11 HOST "\r\n"), BAD },
	{ "leading sp", S(" " H11 HOST "\r\n"), BAD },
	{ "leading crlf sp", S("\r\n " H11 HOST "\r\n"), BAD },

	/* method: tchar only, then exactly one SP */
	{ "method tchars", S("!#$%&'*+-.^_`|~09azAZ / HTTP/1.1\r\n"
	    HOST "\r\n"), OK },
	{ "method m-search", S("M-SEARCH * HTTP/1.1\r\n" HOST "\r\n"), OK },
	{ "method lower", S("get / HTTP/1.1\r\n" HOST "\r\n"), OK },
	{ "method empty", S(" / HTTP/1.1\r\n" HOST "\r\n"), BAD },
	{ "method paren", S("GE(T / HTTP/1.1\r\n" HOST "\r\n"), BAD },
	{ "method slash", S("GE/T / HTTP/1.1\r\n" HOST "\r\n"), BAD },
	{ "method colon", S("GE:T / HTTP/1.1\r\n" HOST "\r\n"), BAD },
	{ "method nul", S("GE\0T / HTTP/1.1\r\n" HOST "\r\n"), BAD },
	{ "method del", S("GE\x7fT / HTTP/1.1\r\n" HOST "\r\n"), BAD },
	{ "method 8bit", S("G\xc3\x89T / HTTP/1.1\r\n" HOST "\r\n"), BAD },
	{ "method ctl", S("GE\x01T / HTTP/1.1\r\n" HOST "\r\n"), BAD },
	{ "method tab", S("GET\t/ HTTP/1.1\r\n" HOST "\r\n"), BAD },
	{ "method two sp", S("GET  / HTTP/1.1\r\n" HOST "\r\n"), BAD },
	{ "method only", S("GET\r\n" HOST "\r\n"), BAD },

	/* request-target: visible ASCII only */
	{ "target star", S("OPTIONS * HTTP/1.1\r\n" HOST "\r\n"), OK },
	{ "target absolute", S("GET http://a/b?c HTTP/1.1\r\n" HOST
	    "\r\n"), OK },
	{ "target authority", S("CONNECT a:443 HTTP/1.1\r\n" HOST "\r\n"),
	    OK },
	{ "target visible", S("GET /!\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~"
	    " HTTP/1.1\r\n" HOST "\r\n"), OK },
	{ "target space", S("GET /a b HTTP/1.1\r\n" HOST "\r\n"), BAD },
	{ "target two sp", S("GET /  HTTP/1.1\r\n" HOST "\r\n"), BAD },
	{ "target nul", S("GET /a\0b HTTP/1.1\r\n" HOST "\r\n"), BAD },
	{ "target del", S("GET /a\x7f HTTP/1.1\r\n" HOST "\r\n"), BAD },
	{ "target 0x80", S("GET /a\x80 HTTP/1.1\r\n" HOST "\r\n"), BAD },
	{ "target 0xff", S("GET /\xff HTTP/1.1\r\n" HOST "\r\n"), BAD },
	{ "target utf8", S("GET /caf\xc3\xa9 HTTP/1.1\r\n" HOST "\r\n"),
	    BAD },
	{ "target ctl", S("GET /a\x01 HTTP/1.1\r\n" HOST "\r\n"), BAD },
	{ "target 0x1f", S("GET /a\x1f HTTP/1.1\r\n" HOST "\r\n"), BAD },
	{ "target tab", S("GET /a\tb HTTP/1.1\r\n" HOST "\r\n"), BAD },
	{ "target sep tab", S("GET /a\tHTTP/1.1\r\n" HOST "\r\n"), BAD },
	{ "target empty", S("GET  HTTP/1.1\r\n" HOST "\r\n"), BAD },

	/* HTTP-version: "HTTP/" DIGIT "." DIGIT, 1.0 and 1.1 spoken */
	{ "version 1.2", S("GET / HTTP/1.2\r\n" HOST "\r\n"), V505 },
	{ "version 1.9", S("GET / HTTP/1.9\r\n" HOST "\r\n"), V505 },
	{ "version 2.0", S("GET / HTTP/2.0\r\n" HOST "\r\n"), V505 },
	{ "version 0.9", S("GET / HTTP/0.9\r\n" HOST "\r\n"), V505 },
	{ "version 0.0", S("GET / HTTP/0.0\r\n\r\n"), V505 },
	{ "version 9.9", S("GET / HTTP/9.9\r\n\r\n"), V505 },
	{ "version 3.1", S("GET / HTTP/3.1\r\n\r\n"), V505 },
	{ "version 1.1x", S("GET / HTTP/1.1x\r\n" HOST "\r\n"), BAD },
	{ "version 1.1 sp", S("GET / HTTP/1.1 \r\n" HOST "\r\n"), BAD },
	{ "version 1.10", S("GET / HTTP/1.10\r\n" HOST "\r\n"), BAD },
	{ "version 11.1", S("GET / HTTP/11.1\r\n" HOST "\r\n"), BAD },
	{ "version 1", S("GET / HTTP/1\r\n" HOST "\r\n"), BAD },
	{ "version 1.", S("GET / HTTP/1.\r\n" HOST "\r\n"), BAD },
	{ "version 2", S("GET / HTTP/2\r\n" HOST "\r\n"), BAD },
	{ "version 1,1", S("GET / HTTP/1,1\r\n" HOST "\r\n"), BAD },
	{ "version x.1", S("GET / HTTP/x.1\r\n" HOST "\r\n"), BAD },
	{ "version lower", S("GET / http/1.1\r\n" HOST "\r\n"), BAD },
	{ "version mixed", S("GET / Http/1.1\r\n" HOST "\r\n"), BAD },
	{ "version HTTPS", S("GET / HTTPS/1.1\r\n" HOST "\r\n"), BAD },
	{ "version missing", S("GET /\r\n" HOST "\r\n"), BAD },
	{ "version empty", S("GET / \r\n" HOST "\r\n"), BAD },
	{ "version 0.9 style", S("GET /\r\n\r\n"), BAD },
	{ "version tab", S("GET / HTTP/1.1\t\r\n" HOST "\r\n"), BAD },
	{ "version nul", S("GET / HTTP/1.1\0\r\n" HOST "\r\n"), BAD },
	{ "version 2.0 bad end", S("GET / HTTP/2.0\n" HOST "\r\n"), BAD },

	/* bare LF and bare CR, everywhere */
	{ "lf method", S("GE\nT / HTTP/1.1\r\n" HOST "\r\n"), BAD },
	{ "cr method", S("GE\rT / HTTP/1.1\r\n" HOST "\r\n"), BAD },
	{ "lf target", S("GET /a\nb HTTP/1.1\r\n" HOST "\r\n"), BAD },
	{ "cr target", S("GET /a\rb HTTP/1.1\r\n" HOST "\r\n"), BAD },
	{ "lf after method", S("GET\n/ HTTP/1.1\r\n" HOST "\r\n"), BAD },
	{ "lf after target", S("GET /\nHTTP/1.1\r\n" HOST "\r\n"), BAD },
	{ "lf in version", S("GET / HTTP/1\n1\r\n" HOST "\r\n"), BAD },
	{ "lf line end", S("GET / HTTP/1.1\n" HOST "\r\n"), BAD },
	{ "cr line end", S("GET / HTTP/1.1\rHost: a\r\n\r\n"), BAD },
	{ "cr cr lf line end", S("GET / HTTP/1.1\r\r\n" HOST "\r\n"), BAD },
	{ "lf cr line end", S("GET / HTTP/1.1\n\r" HOST "\r\n"), BAD },
	{ "lf 1.0 all", S("GET / HTTP/1.0\n\n"), BAD },
	{ "lf field end", S(H11 "Host: a\n\r\n"), BAD },
	{ "cr field end", S(H11 "Host: a\rX: b\r\n\r\n"), BAD },
	{ "cr cr lf field end", S(H11 "Host: a\r\r\n\r\n"), BAD },
	{ "lf in value", S(REQ11 "X: a\nb\r\n\r\n"), BAD },
	{ "cr in value", S(REQ11 "X: a\rb\r\n\r\n"), BAD },
	{ "lf in name", S(REQ11 "X\nY: b\r\n\r\n"), BAD },
	{ "cr in name", S(REQ11 "X\rY: b\r\n\r\n"), BAD },
	{ "lf before colon", S(REQ11 "X\n: b\r\n\r\n"), BAD },
	{ "lf after colon", S(REQ11 "X:\nb\r\n\r\n"), BAD },
	{ "cr after colon", S(REQ11 "X:\rb\r\n\r\n"), BAD },
	{ "lf blank line", S(REQ11 "\n\n"), BAD },
	{ "lf lf end", S(H11 "Host: a\n\n"), BAD },
	{ "cr blank line", S(REQ11 "\rX"), BAD },
	{ "cr cr blank line", S(REQ11 "\r\r\n"), BAD },
	{ "lf cr blank line", S(REQ11 "\n\r\n"), BAD },
	{ "lf 1.0 blank line", S("GET / HTTP/1.0\r\n\nX"), BAD },
	{ "cr 1.0 blank line", S("GET / HTTP/1.0\r\n\r\r"), BAD },

	/* field lines */
	{ "obs-fold sp", S(REQ11 "X: a\r\n b\r\n\r\n"), BAD },
	{ "obs-fold tab", S(REQ11 "X: a\r\n\tb\r\n\r\n"), BAD },
	{ "obs-fold first", S(H11 " Host: a\r\n\r\n"), BAD },
	{ "obs-fold empty", S(REQ11 "X:\r\n \r\n\r\n"), BAD },
	{ "sp before colon", S(H11 "Host : a\r\n\r\n"), BAD },
	{ "tab before colon", S(H11 "Host\t: a\r\n\r\n"), BAD },
	{ "sp in name", S(REQ11 "X Y: a\r\n\r\n"), BAD },
	{ "empty name", S(REQ11 ": a\r\n\r\n"), BAD },
	{ "empty name 1.0", S("GET / HTTP/1.0\r\n:\r\n\r\n"), BAD },
	{ "no colon", S(REQ11 "X\r\n\r\n"), BAD },
	{ "name paren", S(REQ11 "X(Y): a\r\n\r\n"), BAD },
	{ "name slash", S(REQ11 "X/Y: a\r\n\r\n"), BAD },
	{ "name nul", S(REQ11 "X\0Y: a\r\n\r\n"), BAD },
	{ "name del", S(REQ11 "X\x7f: a\r\n\r\n"), BAD },
	{ "name 8bit", S(REQ11 "X\xe9: a\r\n\r\n"), BAD },
	{ "name tchars", S(REQ11 "!#$%&'*+-.^_`|~09azAZ: a\r\n\r\n"), OK },
	{ "value empty", S(REQ11 "X:\r\n\r\n"), OK },
	{ "value empty ows", S(REQ11 "X: \t \r\n\r\n"), OK },
	{ "value no ows", S(REQ11 "X:a\r\n\r\n"), OK },
	{ "value tab", S(REQ11 "X: a\tb\r\n\r\n"), OK },
	{ "value leading tab", S(REQ11 "X:\ta\r\n\r\n"), OK },
	{ "value trailing ows", S(REQ11 "X: a \t \r\n\r\n"), OK },
	{ "value inner sp", S(REQ11 "X: a  b\r\n\r\n"), OK },
	{ "value colon", S(REQ11 "X: a:b::\r\n\r\n"), OK },
	{ "value visible", S(REQ11 "X: !\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az"
	    "{|}~\r\n\r\n"), OK },
	{ "value 0x80", S(REQ11 "X: \x80\r\n\r\n"), OK },
	{ "value 0xff", S(REQ11 "X: a\xff" "b\r\n\r\n"), OK },
	{ "value utf8", S(REQ11 "X: caf\xc3\xa9\r\n\r\n"), OK },
	{ "value all obs-text", S(REQ11 "X: \x80\x9f\xa0\xbf\xc0\xdf\xe0\xfe"
	    "\xff\r\n\r\n"), OK },
	{ "value nul", S(REQ11 "X: a\0b\r\n\r\n"), BAD },
	{ "value nul only", S(REQ11 "X:\0\r\n\r\n"), BAD },
	{ "value del", S(REQ11 "X: a\x7f\r\n\r\n"), BAD },
	{ "value 0x01", S(REQ11 "X: \x01\r\n\r\n"), BAD },
	{ "value 0x08", S(REQ11 "X: a\x08\r\n\r\n"), BAD },
	{ "value 0x0b", S(REQ11 "X: a\x0b\r\n\r\n"), BAD },
	{ "value 0x0c", S(REQ11 "X: a\x0c\r\n\r\n"), BAD },
	{ "value 0x1b", S(REQ11 "X: \x1b[0m\r\n\r\n"), BAD },
	{ "value 0x1f", S(REQ11 "X: a\x1f\r\n\r\n"), BAD },
	{ "host value nul", S(H11 "Host: a\0\r\n\r\n"), BAD },

	/* Host: exactly one for 1.1, at most one for 1.0 */
	{ "1.1 no host", S(H11 "\r\n"), BAD },
	{ "1.1 no host fields", S(H11 "X: a\r\nHosts: a\r\n\r\n"), BAD },
	{ "1.1 two hosts", S(H11 HOST HOST "\r\n"), BAD },
	{ "1.1 two hosts differ", S(H11 "Host: a\r\nHost: b\r\n\r\n"), BAD },
	{ "1.1 two hosts case", S(H11 "Host: a\r\nhOsT: a\r\n\r\n"), BAD },
	{ "1.1 three hosts", S(H11 HOST HOST HOST "\r\n"), BAD },
	{ "1.0 two hosts", S("GET / HTTP/1.0\r\n" HOST HOST "\r\n"), BAD },
	{ "1.1 host upper", S(H11 "HOST: a\r\n\r\n"), OK },
	{ "1.1 host lower", S(H11 "host: a\r\n\r\n"), OK },
	{ "1.1 host empty", S(H11 "Host:\r\n\r\n"), OK },
	{ "1.1 host port", S(H11 "Host: [::1]:8787\r\n\r\n"), OK },
	{ "1.1 x-host only", S(H11 "X-Host: a\r\n\r\n"), BAD },

	/* Content-Length: 1*DIGIT, at most 19, all copies equal */
	{ "cl 5", S(REQ11 "Content-Length: 5\r\n\r\nhello"), OK_TAIL(5) },
	{ "cl 0", S(REQ11 "Content-Length: 0\r\n\r\n"), OK },
	{ "cl 00", S(REQ11 "Content-Length: 00\r\n\r\n"), OK },
	{ "cl case", S(REQ11 "content-LENGTH: 0\r\n\r\n"), OK },
	{ "cl ows", S(REQ11 "Content-Length: \t5 \t\r\n\r\n"), OK },
	{ "cl no ows", S(REQ11 "Content-Length:5\r\n\r\n"), OK },
	{ "cl empty", S(REQ11 "Content-Length:\r\n\r\n"), BAD },
	{ "cl ows only", S(REQ11 "Content-Length:  \r\n\r\n"), BAD },
	{ "cl plus", S(REQ11 "Content-Length: +5\r\n\r\n"), BAD },
	{ "cl minus", S(REQ11 "Content-Length: -5\r\n\r\n"), BAD },
	{ "cl 5 5", S(REQ11 "Content-Length: 5 5\r\n\r\n"), BAD },
	{ "cl 1,1", S(REQ11 "Content-Length: 1,1\r\n\r\n"), BAD },
	{ "cl 1, 1", S(REQ11 "Content-Length: 1, 1\r\n\r\n"), BAD },
	{ "cl hex", S(REQ11 "Content-Length: 0x5\r\n\r\n"), BAD },
	{ "cl 5x", S(REQ11 "Content-Length: 5x\r\n\r\n"), BAD },
	{ "cl dot", S(REQ11 "Content-Length: 5.0\r\n\r\n"), BAD },
	{ "cl 8bit digit", S(REQ11 "Content-Length: \xd9\xa5\r\n\r\n"), BAD },
	{ "cl 19 digits", S(REQ11 "Content-Length: 9999999999999999999\r\n"
	    "\r\n"), OK },
	{ "cl 19 digits zeros", S(REQ11 "Content-Length: 0000000000000000005"
	    "\r\n\r\n"), OK },
	{ "cl 20 digits", S(REQ11 "Content-Length: 10000000000000000000\r\n"
	    "\r\n"), BAD },
	{ "cl 20 zeros", S(REQ11 "Content-Length: 00000000000000000005\r\n"
	    "\r\n"), BAD },
	{ "cl two equal", S(REQ11 "Content-Length: 5\r\nContent-Length: 5\r\n"
	    "\r\nhello"), OK_TAIL(5) },
	{ "cl two equal ows", S(REQ11 "Content-Length: 5\r\n"
	    "Content-Length:5 \r\n\r\n"), OK },
	{ "cl two differ", S(REQ11 "Content-Length: 5\r\nContent-Length: 6\r\n"
	    "\r\n"), BAD },
	{ "cl two 5 05", S(REQ11 "Content-Length: 5\r\nContent-Length: 05\r\n"
	    "\r\n"), BAD },
	{ "cl second empty", S(REQ11 "Content-Length: 5\r\nContent-Length:\r\n"
	    "\r\n"), BAD },
	{ "cl three last differs", S(REQ11 "Content-Length: 1\r\n"
	    "Content-Length: 1\r\nContent-Length: 2\r\n\r\n"), BAD },
	{ "cl-ish name", S(REQ11 "Content-Lengths: x\r\n\r\n"), OK },

	/* Transfer-Encoding: only "chunked", once, never with CL */
	{ "te chunked", S(REQ11 "Transfer-Encoding: chunked\r\n\r\n"), OK },
	{ "te in 1.0", S("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n"
	    "\r\n"), BAD },
	{ "te Chunked", S(REQ11 "Transfer-Encoding: Chunked\r\n\r\n"), OK },
	{ "te CHUNKED", S(REQ11 "transfer-encoding: CHUNKED\r\n\r\n"), OK },
	{ "te ows", S(REQ11 "Transfer-Encoding:\tchunked \r\n\r\n"), OK },
	{ "te body", S(REQ11 "Transfer-Encoding: chunked\r\n\r\n"
	    "5\r\nhello\r\n0\r\n\r\n"), OK_TAIL(15) },
	{ "te chunked gzip", S(REQ11 "Transfer-Encoding: chunked, gzip\r\n"
	    "\r\n"), BAD },
	{ "te gzip chunked", S(REQ11 "Transfer-Encoding: gzip, chunked\r\n"
	    "\r\n"), BAD },
	{ "te gzip", S(REQ11 "Transfer-Encoding: gzip\r\n\r\n"), BAD },
	{ "te identity", S(REQ11 "Transfer-Encoding: identity\r\n\r\n"),
	    BAD },
	{ "te empty", S(REQ11 "Transfer-Encoding:\r\n\r\n"), BAD },
	{ "te chunkedx", S(REQ11 "Transfer-Encoding: chunkedx\r\n\r\n"),
	    BAD },
	{ "te chunke", S(REQ11 "Transfer-Encoding: chunke\r\n\r\n"), BAD },
	{ "te inner sp", S(REQ11 "Transfer-Encoding: chun ked\r\n\r\n"),
	    BAD },
	{ "te quoted", S(REQ11 "Transfer-Encoding: \"chunked\"\r\n\r\n"),
	    BAD },
	{ "te two", S(REQ11 "Transfer-Encoding: chunked\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n"), BAD },
	{ "te two second gzip", S(REQ11 "Transfer-Encoding: chunked\r\n"
	    "Transfer-Encoding: gzip\r\n\r\n"), BAD },
	{ "te then cl", S(REQ11 "Transfer-Encoding: chunked\r\n"
	    "Content-Length: 5\r\n\r\n"), BAD },
	{ "cl then te", S(REQ11 "Content-Length: 5\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n"), BAD },
	{ "cl 0 then te", S(REQ11 "Content-Length: 0\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n"), BAD },
	{ "te-ish name", S(REQ11 "Transfer-Encodings: gzip\r\n\r\n"), OK },
	{ "te header TE", S(REQ11 "TE: trailers\r\n\r\n"), OK },

	/* incomplete heads */
	{ "empty", S(""), MORE },
	{ "method part", S("GE"), MORE },
	{ "line no crlf", S("GET / HTTP/1.1"), MORE },
	{ "line cr", S("GET / HTTP/1.1\r"), MORE },
	{ "line only", S("GET / HTTP/1.1\r\n"), MORE },
	{ "fields no blank", S(REQ11), MORE },
	{ "blank cr", S(REQ11 "\r"), MORE },
	{ "value no crlf", S(REQ11 "X: a"), MORE },
	{ "2.0 no lf", S("GET / HTTP/2.0\r"), MORE },
};

/*
 * Run gate_check on a copy of buf that ends at a page boundary with an
 * inaccessible page behind it, so a read past len faults.
 */
static enum gate_result
check_guarded(const char *buf, size_t len, size_t max_head,
    struct gate_verdict *v)
{
	long			 pg = sysconf(_SC_PAGESIZE);
	size_t			 span;
	char			*map, *p;
	enum gate_result	 r;

	ck_assert_int_gt(pg, 0);
	span = (len + (size_t)pg - 1) / (size_t)pg * (size_t)pg;
	map = mmap(NULL, span + (size_t)pg, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(map, MAP_FAILED);
	ck_assert_int_eq(mprotect(map + span, (size_t)pg, PROT_NONE), 0);
	p = map + span - len;
	if (len > 0)
		memcpy(p, buf, len);
	r = gate_check(p, len, max_head, v);
	ck_assert_int_eq(munmap(map, span + (size_t)pg), 0);
	return r;
}

static const char *
result_name(enum gate_result r)
{
	switch (r) {
	case GATE_MORE:
		return "MORE";
	case GATE_OK:
		return "OK";
	case GATE_REJECT:
		return "REJECT";
	}
	return "?";
}

/* assert one verdict matches the case (status and code exact) */
static void
expect(const char *name, size_t len, enum gate_result r,
    const struct gate_verdict *v, enum gate_result want, int status,
    const char *code, size_t head_len)
{
	ck_assert_msg(r == want, "%s (len %zu): got %s, want %s (%d %s)",
	    name, len, result_name(r), result_name(want),
	    r == GATE_REJECT ? v->status : 0,
	    r == GATE_REJECT && v->code ? v->code : "");
	if (want == GATE_OK)
		ck_assert_msg(v->head_len == head_len,
		    "%s: head_len %zu, want %zu", name, v->head_len, head_len);
	if (want == GATE_REJECT) {
		ck_assert_msg(v->status == status, "%s: status %d, want %d",
		    name, v->status, status);
		ck_assert_ptr_nonnull(v->code);
		ck_assert_msg(strcmp(v->code, code) == 0,
		    "%s: code %s, want %s", name, v->code, code);
		ck_assert_ptr_nonnull(v->message);
		ck_assert_msg(v->message[0] != '\0', "%s: empty message",
		    name);
	}
}

static void
run_case(const struct gcase *c, size_t max_head)
{
	struct gate_verdict	v;
	enum gate_result	r;

	r = check_guarded(c->in, c->len, max_head, &v);
	expect(c->name, c->len, r, &v, c->want, c->status, c->code,
	    c->len - c->tail);
}

/*
 * Every prefix: a valid head is MORE until its last byte, then OK with
 * the same head_len whatever follows; an invalid one is MORE or the
 * same reject, never OK.
 */
static void
run_prefixes(const struct gcase *c, size_t max_head)
{
	struct gate_verdict	v;
	enum gate_result	r;
	size_t			n, head_len = c->len - c->tail;

	for (n = 0; n <= c->len; n++) {
		r = check_guarded(c->in, n, max_head, &v);
		switch (c->want) {
		case GATE_OK:
			if (n < head_len)
				expect(c->name, n, r, &v, GATE_MORE, 0, NULL,
				    0);
			else
				expect(c->name, n, r, &v, GATE_OK, 0, NULL,
				    head_len);
			break;
		case GATE_MORE:
			expect(c->name, n, r, &v, GATE_MORE, 0, NULL, 0);
			break;
		case GATE_REJECT:
			if (r != GATE_MORE || n == c->len)
				expect(c->name, n, r, &v, GATE_REJECT,
				    c->status, c->code, 0);
			break;
		}
	}
}

START_TEST(test_table)
{
	run_case(&cases[_i], MAXH);
}
END_TEST

START_TEST(test_table_prefixes)
{
	run_prefixes(&cases[_i], MAXH);
}
END_TEST

/*
 * The same table with max_head exactly the head length (the head still
 * fits) and, for complete valid heads, one less (431: over the limit).
 */
START_TEST(test_table_tight)
{
	const struct gcase	*c = &cases[_i];
	struct gate_verdict	 v;
	enum gate_result	 r;
	size_t			 head_len = c->len - c->tail;

	if (c->want != GATE_OK)
		return;
	r = check_guarded(c->in, c->len, head_len, &v);
	expect(c->name, c->len, r, &v, GATE_OK, 0, NULL, head_len);
	r = check_guarded(c->in, c->len, head_len - 1, &v);
	ck_assert_int_eq(r, GATE_REJECT);
	ck_assert_int_eq(v.status == 414 || v.status == 431, 1);
}
END_TEST


/* build "GET / HTTP/1.x\r\n" + n fields (the first Host for 1.1) */
static char *
many_fields(int http11, int n, size_t *len)
{
	char	*s, *p;
	int	 i;

	s = malloc(32 + (size_t)n * 32);
	ck_assert_ptr_nonnull(s);
	p = s + sprintf(s, "GET / HTTP/1.%d\r\n", http11);
	for (i = 0; i < n; i++) {
		if (i == 0 && http11)
			p += sprintf(p, "Host: a\r\n");
		else
			p += sprintf(p, "X-F%d: %d\r\n", i, i);
	}
	p += sprintf(p, "\r\n");
	*len = (size_t)(p - s);
	return s;
}

START_TEST(test_max_fields)
{
	struct gate_verdict	 v;
	struct gcase		 c;
	char			*s;
	size_t			 len;
	int			 http11 = _i;

	s = many_fields(http11, GATE_MAX_FIELDS, &len);
	c = (struct gcase){ "max fields", s, len, OK };
	run_case(&c, MAXH);
	run_prefixes(&c, MAXH);
	free(s);

	s = many_fields(http11, GATE_MAX_FIELDS + 1, &len);
	c = (struct gcase){ "max fields + 1", s, len, TOO_LARGE };
	run_case(&c, MAXH);
	run_prefixes(&c, MAXH);
	/* rejected as soon as the extra field is complete */
	ck_assert_int_eq(check_guarded(s, len - 2, MAXH, &v), GATE_REJECT);
	ck_assert_int_eq(v.status, 431);
	ck_assert_int_eq(check_guarded(s, len - 3, MAXH, &v), GATE_MORE);
	free(s);

	s = many_fields(http11, GATE_MAX_FIELDS + 50, &len);
	c = (struct gcase){ "max fields + 50", s, len, TOO_LARGE };
	run_case(&c, MAXH);
	free(s);
}
END_TEST

/* a field beyond GATE_MAX_FIELDS is 431 even if it is a second Host */
START_TEST(test_max_fields_order)
{
	struct gate_verdict	 v;
	char			*s, *t;
	size_t			 len;

	s = many_fields(1, GATE_MAX_FIELDS, &len);
	t = malloc(len + 16);
	ck_assert_ptr_nonnull(t);
	memcpy(t, s, len - 2);
	memcpy(t + len - 2, "Host: a\r\n\r\n", 11);
	ck_assert_int_eq(check_guarded(t, len + 9, MAXH, &v), GATE_REJECT);
	ck_assert_int_eq(v.status, 431);
	ck_assert_str_eq(v.code, "headers_too_large");
	free(t);
	free(s);
}
END_TEST

/* "GET /aaa...a HTTP/1.1\r\n" of exactly n bytes */
static char *
line_of(size_t n, const char *rest, size_t *len)
{
	static const char	 pre[] = "GET /", post[] = " HTTP/1.1\r\n";
	size_t			 rl = strlen(rest);
	char			*s;

	ck_assert_uint_ge(n, sizeof(pre) - 1 + sizeof(post) - 1);
	s = malloc(n + rl + 1);
	ck_assert_ptr_nonnull(s);
	memcpy(s, pre, sizeof(pre) - 1);
	memset(s + sizeof(pre) - 1, 'a', n - (sizeof(pre) - 1) -
	    (sizeof(post) - 1));
	memcpy(s + n - (sizeof(post) - 1), post, sizeof(post) - 1);
	memcpy(s + n, rest, rl + 1);
	*len = n + rl;
	return s;
}

static void
verdict(const char *s, size_t len, size_t max, enum gate_result want,
    int status)
{
	struct gate_verdict	v;
	enum gate_result	r;

	r = check_guarded(s, len, max, &v);
	ck_assert_msg(r == want, "len %zu max %zu: got %s, want %s", len, max,
	    result_name(r), result_name(want));
	if (want == GATE_REJECT)
		ck_assert_int_eq(v.status, status);
	if (want == GATE_REJECT && status == 414)
		ck_assert_str_eq(v.code, "uri_too_long");
	if (want == GATE_REJECT && status == 431)
		ck_assert_str_eq(v.code, "headers_too_large");
	if (want == GATE_OK)
		ck_assert_uint_le(v.head_len, max);
}

/* the request line against max_head: MORE below the limit, then 414 */
START_TEST(test_max_head_line)
{
	char	*s;
	size_t	 len, max = 64;

	/* request line of max + 20 bytes: incomplete everywhere */
	s = line_of(max + 20, "Host: a\r\n\r\n", &len);
	verdict(s, max - 1, max, GATE_MORE, 0);
	verdict(s, max, max, GATE_REJECT, 414);
	verdict(s, max + 1, max, GATE_REJECT, 414);
	verdict(s, len, max, GATE_REJECT, 414);
	free(s);

	/* line ends with its CR at the limit, LF just over: 414 */
	s = line_of(max + 1, "Host: a\r\n\r\n", &len);
	verdict(s, max - 1, max, GATE_MORE, 0);
	verdict(s, max, max, GATE_REJECT, 414);
	verdict(s, len, max, GATE_REJECT, 414);
	free(s);

	/* line ends exactly at the limit: it fits, the fields do not */
	s = line_of(max, "Host: a\r\n\r\n", &len);
	verdict(s, max - 1, max, GATE_MORE, 0);
	verdict(s, max, max, GATE_REJECT, 431);
	verdict(s, len, max, GATE_REJECT, 431);
	free(s);

	/* a method running past the limit is 414 too */
	s = malloc(200);
	ck_assert_ptr_nonnull(s);
	memset(s, 'G', 200);
	verdict(s, max - 1, max, GATE_MORE, 0);
	verdict(s, max, max, GATE_REJECT, 414);
	verdict(s, 200, max, GATE_REJECT, 414);
	/* the version running past it */
	memcpy(s, "GET / HTTP/1.1\r\n", 16);
	verdict(s, 16, 8, GATE_REJECT, 414);
	verdict(s, 16, 15, GATE_REJECT, 414);
	verdict(s, 14, 15, GATE_MORE, 0);
	free(s);

	/* an empty buffer is MORE; a bad byte below the limit stays 400 */
	verdict("", 0, max, GATE_MORE, 0);
	verdict("G\x01T / HTTP/1.1\r\n", 16, 4, GATE_REJECT, 400);
}
END_TEST

/* the whole head against max_head: exactly fits, one over is 431 */
START_TEST(test_max_head_fields)
{
	char	*s, *f;
	size_t	 len, max = 256, i;

	/* Host value sized so the head is exactly max bytes */
	f = malloc(max);
	ck_assert_ptr_nonnull(f);
	for (i = 0; i <= 1; i++) {
		size_t	vlen = max - 26 + i;

		memcpy(f, "Host: ", 6);
		memset(f + 6, 'h', vlen);
		memcpy(f + 6 + vlen, "\r\n\r\nBODY", 9);
		s = line_of(16, f, &len);
		if (i == 0) {
			verdict(s, max - 1, max, GATE_MORE, 0);
			verdict(s, max, max, GATE_OK, 0);
			verdict(s, len, max, GATE_OK, 0);
			verdict(s, max, max - 1, GATE_REJECT, 431);
		} else {
			verdict(s, max - 1, max, GATE_MORE, 0);
			verdict(s, max, max, GATE_REJECT, 431);
			verdict(s, max + 1, max, GATE_REJECT, 431);
			verdict(s, len, max, GATE_REJECT, 431);
			verdict(s, len, max + 1, GATE_OK, 0);
		}
		free(s);
	}
	free(f);

	/* a long value running over the limit, many fields over it */
	s = line_of(16, "X: ", &len);
	f = malloc(4096);
	ck_assert_ptr_nonnull(f);
	memcpy(f, s, len);
	memset(f + len, 'v', 4096 - len);
	verdict(f, max - 1, max, GATE_MORE, 0);
	verdict(f, max, max, GATE_REJECT, 431);
	verdict(f, 4096, max, GATE_REJECT, 431);
	free(f);
	free(s);

	/* bytes past max_head are never looked at: a NUL there is 431 */
	verdict(S("GET / HTTP/1.1\r\nX: aaaaaaaa\0\r\n\r\n"), 27,
	    GATE_REJECT, 431);
	verdict(S("GET / HTTP/1.1\r\nX: aaaaaaaa\0\r\n\r\n"), 29,
	    GATE_REJECT, 400);
}
END_TEST

/* len > max_head with a complete head inside: OK, head_len unchanged */
START_TEST(test_max_head_len_over)
{
	struct gate_verdict	 v;
	static const char	 head[] = "POST / HTTP/1.1\r\nHost: a\r\n"
				     "Content-Length: 100\r\n\r\n";
	char			 buf[sizeof(head) - 1 + 100];

	memcpy(buf, head, sizeof(head) - 1);
	memset(buf + sizeof(head) - 1, 0, 100);
	ck_assert_int_eq(check_guarded(buf, sizeof(buf), sizeof(head) - 1,
	    &v), GATE_OK);
	ck_assert_uint_eq(v.head_len, sizeof(head) - 1);
	ck_assert_int_eq(check_guarded(buf, sizeof(buf), 8192, &v), GATE_OK);
	ck_assert_uint_eq(v.head_len, sizeof(head) - 1);
	ck_assert_int_eq(check_guarded(buf, sizeof(buf), sizeof(head) - 2,
	    &v), GATE_REJECT);
	ck_assert_int_eq(v.status, 431);
}
END_TEST

/* incremental feeding of whole sessions of valid heads byte by byte */
START_TEST(test_incremental_valid)
{
	static const char	*heads[] = {
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		("HEAD /x HTTP/1.0\r\nHost: a\r\nAccept: */*\r\n\r\n"),
		("POST /rest/v1/todos?select=id HTTP/1.1\r\n"
		    "Host: 127.0.0.1:8787\r\napikey: sb_publishable_x\r\n"
		    "Content-Type: application/json\r\n"
		    "Content-Length: 11\r\nPrefer:\r\n\r\n"),
		("PATCH /storage/v1/object/b/c HTTP/1.1\r\nhost:a\r\n"
		    "Transfer-Encoding: chunked\r\nX:\t\x80\xff \r\n\r\n"),
	};
	const char		*h = heads[_i];
	struct gate_verdict	 v;
	size_t			 len = strlen(h), n;
	char			*buf;

	buf = malloc(len + 11);
	ck_assert_ptr_nonnull(buf);
	memcpy(buf, h, len);
	memcpy(buf + len, "hello world", 11);
	for (n = 0; n < len; n++)
		ck_assert_msg(check_guarded(buf, n, MAXH, &v) == GATE_MORE,
		    "head %d prefix %zu: not MORE (%d)", _i, n, v.status);
	for (n = len; n <= len + 11; n++) {
		ck_assert_int_eq(check_guarded(buf, n, MAXH, &v), GATE_OK);
		ck_assert_uint_eq(v.head_len, len);
	}
	free(buf);
}
END_TEST

/*
 * Every single-byte change of a valid head must never make a prefix OK
 * where the full input is rejected (and vice versa the verdict of the
 * full input never changes once it is decided).
 */
START_TEST(test_incremental_mutations)
{
	static const char	 base[] = "POST /a?b HTTP/1.1\r\nHost: a\r\n"
				     "Content-Length: 2\r\nX: y\r\n\r\n";
	static const unsigned char bytes[] = { 0, '\t', '\n', '\r', ' ', ':',
					     '0', 'a', 0x7f, 0x80, 0xff };
	struct gate_verdict	 full, v;
	char			 buf[sizeof(base)];
	size_t			 pos, b, n, len = sizeof(base) - 1;
	enum gate_result	 fr, r;

	for (pos = 0; pos < len; pos++) {
		for (b = 0; b < NELEM(bytes); b++) {
			memcpy(buf, base, len);
			buf[pos] = (char)bytes[b];
			fr = check_guarded(buf, len, MAXH, &full);
			for (n = 0; n < len; n++) {
				r = check_guarded(buf, n, MAXH, &v);
				if (fr == GATE_REJECT) {
					ck_assert_msg(r != GATE_OK,
					    "pos %zu byte %02x: prefix %zu "
					    "OK, full rejected", pos,
					    bytes[b], n);
					if (r == GATE_REJECT)
						ck_assert_int_eq(v.status,
						    full.status);
				}
				if (fr != GATE_REJECT)
					ck_assert_msg(r != GATE_REJECT,
					    "pos %zu byte %02x: prefix %zu "
					    "rejected, full not", pos,
					    bytes[b], n);
				if (fr == GATE_OK && r == GATE_OK)
					ck_assert_uint_eq(v.head_len,
					    full.head_len);
			}
		}
	}
}
END_TEST

/* the verdict is filled in whatever it held before */
START_TEST(test_verdict_reset)
{
	struct gate_verdict	v;
	static const char	ok[] = "GET / HTTP/1.0\r\n\r\n";

	memset(&v, 0xa5, sizeof(v));
	ck_assert_int_eq(gate_check(ok, sizeof(ok) - 1, MAXH, &v), GATE_OK);
	ck_assert_uint_eq(v.head_len, sizeof(ok) - 1);
	memset(&v, 0xa5, sizeof(v));
	ck_assert_int_eq(gate_check("GET / HTTP/2.0\r\n", 16, MAXH, &v),
	    GATE_REJECT);
	ck_assert_int_eq(v.status, 505);
	ck_assert_str_eq(v.code, "http_version_not_supported");
}
END_TEST

static void
add(Suite *s, const char *name, const TTest *t, int n)
{
	TCase	*tc;

	tc = tcase_create(name);
	tcase_set_timeout(tc, TIMEOUT_S);
	if (n > 0)
		tcase_add_loop_test(tc, t, 0, n);
	else
		tcase_add_test(tc, t);
	suite_add_tcase(s, tc);
}

static Suite *
gate_suite(void)
{
	Suite	*s;

	s = suite_create("gate");
	add(s, "table", test_table, NELEM(cases));
	add(s, "table_prefixes", test_table_prefixes, NELEM(cases));
	add(s, "table_tight", test_table_tight, NELEM(cases));
	add(s, "max_fields", test_max_fields, 2);
	add(s, "max_fields_order", test_max_fields_order, 0);
	add(s, "max_head_line", test_max_head_line, 0);
	add(s, "max_head_fields", test_max_head_fields, 0);
	add(s, "max_head_len_over", test_max_head_len_over, 0);
	add(s, "incremental_valid", test_incremental_valid, 5);
	add(s, "incremental_mutations", test_incremental_mutations, 0);
	add(s, "verdict_reset", test_verdict_reset, 0);
	return s;
}

int
main(void)
{
	return ck_run(gate_suite());
}
