/* conf: configuration file, environment defaults, credentials */
#include "config.h"

#include <sys/stat.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "conf.h"
#include "crypto.h"
#include "jwk.h"
#include "jwt.h"
#include "log.h"
#include "util.h"

#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR	"/var"
#endif
#define CONF_STATEDIR	LOCALSTATEDIR "/lib/supagate"

#define CONF_FILE_MAX		(1024 * 1024)	/* bytes per file */
#define CONF_TOKEN_MAX		4096		/* bytes per word */
#define CONF_ARGS_MAX		8		/* words per statement */
#define CONF_INCLUDE_DEPTH	8
#define CONF_LIST_MAX		1024		/* entries per list */
#define ERRLEN			512

enum conf_type {
	CT_STRING,
	CT_PATH,
	CT_URL,
	CT_DURATION_MS,		/* uint64_t, milliseconds */
	CT_DURATION_S,		/* uint64_t, whole seconds */
	CT_SIZE,		/* uint64_t, bytes */
	CT_UINT,		/* uint64_t */
	CT_ENUM,		/* enum (int) indexed by choices */
	CT_BOOL,		/* int */
	CT_DOUBLE,
	CT_LIST,		/* handler */
};

#define CF_MULTI	0x01
#define CF_SECRET	0x02
#define CF_RESERVED	0x04

_Static_assert(sizeof(enum conf_auth_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_client_auth) == sizeof(int), "enum size");

typedef int	handler_fn(struct conf *, char **, char *, size_t);
typedef void	dump_fn(const struct conf *, FILE *);

struct kw {
	const char	*name;
	enum conf_type	 type;
	unsigned	 flags;
	int		 nargs;
	double		 min, max;
	const char	*def;
	size_t		 off;
	const char	*choices;
	handler_fn	*handler;
	dump_fn		*dump;
	const char	*help;
};

struct pstate {
	struct conf	*c;
	const char	*name;		/* for cross-field messages */
	int		 nerr;
	const char	*seen_file[64];	/* where a keyword was first */
	unsigned	 seen_line[64];
	char		**names;	/* file names kept for seen_file */
	size_t		 nnames;
};

struct lex {
	const char	*file;
	const char	*p, *end;
	unsigned	 line;
};

enum tok { T_WORD, T_EOS, T_EOF, T_ERR };

static void	 dump_str(FILE *, const char *, const char *);
static handler_fn	h_listen, h_expose, h_allow_from, h_allow_origin,
			h_allow_host, h_cache_rpc, h_cache_ttl_for,
			h_cache_ttl_status;
static dump_fn		d_listen, d_expose, d_allow_from, d_allow_origin,
			d_allow_host, d_cache_rpc, d_cache_ttl_for,
			d_cache_ttl_status;

#define CONF_V(n, t, f, mi, ma, d, fld, ch, h)				\
	{ n, t, f, 1, mi, ma, d, offsetof(struct conf, fld), ch, NULL,	\
	    NULL, h },
#define CONF_H(n, f, na, d, hd, h)					\
	{ n, CT_LIST, f, na, 0, 0, d, 0, NULL, h_##hd, d_##hd, h },
static const struct kw	kwtab[] = {
#include "conf_tbl.h"
};
#undef CONF_V
#undef CONF_H
#define NKW	(sizeof(kwtab) / sizeof(kwtab[0]))

static const struct {
	const char	*name;
	unsigned	 bit;
} methods[] = {
	{ "GET", CONF_M_GET },
	{ "HEAD", CONF_M_HEAD },
	{ "POST", CONF_M_POST },
	{ "PUT", CONF_M_PUT },
	{ "PATCH", CONF_M_PATCH },
	{ "DELETE", CONF_M_DELETE },
	{ "OPTIONS", CONF_M_OPTIONS },
};

enum key_kind {
	KEY_UNKNOWN,
	KEY_PUBLISHABLE,	/* sb_publishable_... */
	KEY_SECRET,		/* sb_secret_... */
	KEY_JWT_ANON,		/* legacy JWT, role anon */
	KEY_JWT_SERVICE,	/* legacy JWT, role service_role */
	KEY_JWT_OTHER,
};

static void	parse_file(struct pstate *, const char *, int, const char *,
		    unsigned);

static void
perr(struct pstate *ps, const char *file, unsigned line, const char *fmt, ...)
{
	va_list	ap;

	if (line > 0)
		fprintf(stderr, "%s:%u: ", file, line);
	else
		fprintf(stderr, "%s: ", file);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	ps->nerr++;
}

static void *
field(struct conf *c, const struct kw *k)
{
	return (char *)c + k->off;
}

static const void *
cfield(const struct conf *c, const struct kw *k)
{
	return (const char *)c + k->off;
}

static const struct kw *
kw_find(const char *name)
{
	size_t	i;

	for (i = 0; i < NKW; i++)
		if (strcmp(kwtab[i].name, name) == 0)
			return &kwtab[i];
	return NULL;
}

/*
 * Number parsers
 */

static int
parse_digits(const char **pp, uint64_t *out)
{
	const char	*p = *pp;
	uint64_t	 v = 0;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned	d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*pp = p;
	*out = v;
	return 0;
}

int
conf_parse_duration_ms(const char *s, uint64_t *out)
{
	uint64_t	v, mul;
	const char	*p = s;

	if (s == NULL || parse_digits(&p, &v) == -1)
		return -1;
	if (*p == '\0' || strcmp(p, "s") == 0)
		mul = 1000;
	else if (strcmp(p, "ms") == 0)
		mul = 1;
	else if (strcmp(p, "m") == 0)
		mul = 60 * 1000;
	else if (strcmp(p, "h") == 0)
		mul = 3600 * 1000;
	else if (strcmp(p, "d") == 0)
		mul = 86400 * 1000;
	else
		return -1;
	if (v > UINT64_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}

int
conf_parse_size(const char *s, uint64_t *out)
{
	uint64_t	v, mul;
	const char	*p = s;

	if (s == NULL || parse_digits(&p, &v) == -1)
		return -1;
	switch (*p) {
	case '\0':
		mul = 1;
		break;
	case 'k': case 'K':
		mul = 1ULL << 10;
		break;
	case 'm': case 'M':
		mul = 1ULL << 20;
		break;
	case 'g': case 'G':
		mul = 1ULL << 30;
		break;
	case 't': case 'T':
		mul = 1ULL << 40;
		break;
	default:
		return -1;
	}
	if (*p != '\0' && p[1] != '\0')
		return -1;
	if (v > UINT64_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}

static void
fmt_duration(uint64_t ms, char *buf, size_t len)
{
	if (ms != 0 && ms % 86400000 == 0)
		snprintf(buf, len, "%llud",
		    (unsigned long long)(ms / 86400000));
	else if (ms != 0 && ms % 3600000 == 0)
		snprintf(buf, len, "%lluh", (unsigned long long)(ms / 3600000));
	else if (ms != 0 && ms % 60000 == 0)
		snprintf(buf, len, "%llum", (unsigned long long)(ms / 60000));
	else if (ms % 1000 == 0)
		snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, len, "%llums", (unsigned long long)ms);
}

static void
fmt_size(uint64_t v, char *buf, size_t len)
{
	static const char	units[] = "TGMk";
	int			i;

	for (i = 0; i < 4; i++) {
		uint64_t	m = 1ULL << (10 * (4 - i));

		if (v != 0 && v % m == 0) {
			snprintf(buf, len, "%llu%c",
			    (unsigned long long)(v / m), units[i]);
			return;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)v);
}

static void
fmt_number(enum conf_type t, double v, char *buf, size_t len)
{
	switch (t) {
	case CT_DURATION_MS:
	case CT_DURATION_S:
		fmt_duration((uint64_t)v, buf, len);
		break;
	case CT_SIZE:
		fmt_size((uint64_t)v, buf, len);
		break;
	default:
		snprintf(buf, len, "%g", v);
		break;
	}
}

/*
 * Value validators
 */

static int
url_normalise(const char *v, char **out, char *err, size_t errlen)
{
	const char	*h, *p;
	size_t		 n;

	if (strncmp(v, "http://", 7) == 0)
		h = v + 7;
	else if (strncmp(v, "https://", 8) == 0)
		h = v + 8;
	else {
		snprintf(err, errlen, "\"%.100s\" must start with http:// or "
		    "https://", v);
		return -1;
	}
	if (*h == '\0' || *h == '/' || *h == ':') {
		snprintf(err, errlen, "\"%.100s\" has no host", v);
		return -1;
	}
	for (p = v; *p != '\0'; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '?' ||
		    *p == '#' || *p == '"' || *p == '\\') {
			snprintf(err, errlen, "\"%.100s\": a base URL has no "
			    "spaces, query or fragment", v);
			return -1;
		}
	}
	n = strcspn(h, "/");
	if (memchr(h, '@', n) != NULL) {
		snprintf(err, errlen, "\"%.100s\": no user:password@ in URLs; "
		    "keys go in key files", v);
		return -1;
	}
	n = strlen(v);
	while (n > (size_t)(h - v) && v[n - 1] == '/')
		n--;
	free(*out);
	*out = xcalloc(1, n + 1);
	memcpy(*out, v, n);
	return 0;
}

static int
set_value(struct conf *c, const struct kw *k, const char *v, char *err,
    size_t errlen)
{
	void		*f = field(c, k);
	uint64_t	 u = 0;
	double		 d = 0;
	char		 lo[32], hi[32];
	const char	*hint = "";
	int		 i;

	switch (k->type) {
	case CT_STRING:
	case CT_PATH:
		if (*v == '\0') {
			snprintf(err, errlen, "empty value");
			return -1;
		}
		free(*(char **)f);
		*(char **)f = xstrdup(v);
		return 0;
	case CT_URL:
		return url_normalise(v, (char **)f, err, errlen);
	case CT_ENUM: {
		const char	*p = k->choices;
		size_t		 n, vl = strlen(v);

		for (i = 0; *p != '\0'; i++) {
			n = strcspn(p, "|");
			if (n == vl && strncmp(p, v, n) == 0) {
				*(int *)f = i;
				return 0;
			}
			p += n;
			if (*p == '|')
				p++;
		}
		snprintf(err, errlen, "\"%.100s\" is not one of %s", v,
		    k->choices);
		return -1;
	}
	case CT_BOOL:
		if (!strcmp(v, "yes") || !strcmp(v, "on") ||
		    !strcmp(v, "true"))
			*(int *)f = 1;
		else if (!strcmp(v, "no") || !strcmp(v, "off") ||
		    !strcmp(v, "false"))
			*(int *)f = 0;
		else {
			snprintf(err, errlen, "\"%.100s\" is not yes or no", v);
			return -1;
		}
		return 0;
	case CT_DURATION_MS:
	case CT_DURATION_S:
		hint = " (use e.g. 250ms, 30s, 5m, 1h, 1d)";
		if (conf_parse_duration_ms(v, &u) == -1)
			goto bad;
		if (k->type == CT_DURATION_S && u % 1000 != 0) {
			snprintf(err, errlen, "\"%.100s\" is not a whole "
			    "number of seconds", v);
			return -1;
		}
		d = (double)u;
		break;
	case CT_SIZE:
		hint = " (use e.g. 512, 64k, 100M, 1G)";
		if (conf_parse_size(v, &u) == -1)
			goto bad;
		d = (double)u;
		break;
	case CT_UINT: {
		const char	*p = v;

		if (parse_digits(&p, &u) == -1 || *p != '\0')
			goto bad;
		d = (double)u;
		break;
	}
	case CT_DOUBLE: {
		char	*end;

		if (*v == '\0' || strspn(v, "0123456789.eE+-") != strlen(v))
			goto bad;
		errno = 0;
		d = strtod(v, &end);
		if (*end != '\0' || errno != 0 || !isfinite(d))
			goto bad;
		break;
	}
	case CT_LIST:
	default:
		snprintf(err, errlen, "internal error");
		return -1;
	}
	if (d < k->min || (k->max > 0 && d > k->max)) {
		fmt_number(k->type, k->min, lo, sizeof(lo));
		fmt_number(k->type, k->max, hi, sizeof(hi));
		snprintf(err, errlen, "\"%.100s\" is out of range (%s..%s)",
		    v, lo, hi);
		return -1;
	}
	if (k->type == CT_DOUBLE)
		*(double *)f = d;
	else if (k->type == CT_DURATION_S)
		*(uint64_t *)f = u / 1000;
	else
		*(uint64_t *)f = u;
	return 0;
 bad:
	snprintf(err, errlen, "bad value \"%.100s\"%s", v, hint);
	return -1;
}

/*
 * List keywords
 */

static int
parse_port(const char *p, int *port)
{
	uint64_t	v;

	if (strlen(p) > 5 || parse_digits(&p, &v) == -1 || *p != '\0' ||
	    v > 65535)
		return -1;
	*port = (int)v;
	return 0;
}

static int
listen_parse(const char *v, struct conf_listen *l, char *err, size_t errlen)
{
	unsigned char	 a[16];
	char		 host[64];
	const char	*portp, *e;
	size_t		 n;
	int		 af;

	if (strncmp(v, "unix:", 5) == 0) {
		if (v[5] != '/' || strlen(v + 5) >= sizeof(l->path)) {
			snprintf(err, errlen, "unix:PATH wants an absolute path "
			    "of fewer than %zu bytes", sizeof(l->path));
			return -1;
		}
		snprintf(l->path, sizeof(l->path), "%s", v + 5);
		return 0;
	}
	if (v[0] == '[') {
		if ((e = strchr(v, ']')) == NULL || e[1] != ':')
			goto bad;
		n = (size_t)(e - v - 1);
		portp = e + 2;
		af = AF_INET6;
		v++;
	} else {
		if ((e = strrchr(v, ':')) == NULL)
			goto bad;
		n = (size_t)(e - v);
		portp = e + 1;
		af = AF_INET;
	}
	if (n == 0 || n >= sizeof(host))
		goto bad;
	memcpy(host, v, n);
	host[n] = '\0';
	if (inet_pton(af, host, a) != 1) {
		snprintf(err, errlen, "\"%.100s\" is not a numeric %s address",
		    host, af == AF_INET ? "IPv4" : "IPv6");
		return -1;
	}
	if (parse_port(portp, &l->port) == -1) {
		snprintf(err, errlen, "bad port \"%.20s\" (0..65535)", portp);
		return -1;
	}
	inet_ntop(af, a, l->host, sizeof(l->host));
	return 0;
 bad:
	snprintf(err, errlen, "\"%.100s\": expected ADDRESS:PORT or "
	    "unix:PATH, e.g. 127.0.0.1:8787, [::1]:8787 or "
	    "unix:/run/supagate/http.sock", v);
	return -1;
}

static int
h_listen(struct conf *c, char **argv, char *err, size_t errlen)
{
	struct conf_listen	l;

	memset(&l, 0, sizeof(l));
	if (c->nlisten >= CONF_LISTEN_MAX) {
		snprintf(err, errlen, "too many listen lines (at most %d)",
		    CONF_LISTEN_MAX);
		return -1;
	}
	if (listen_parse(argv[0], &l, err, errlen) == -1)
		return -1;
	c->listen[c->nlisten++] = l;
	return 0;
}

static void
d_listen(const struct conf *c, FILE *fp)
{
	char	u[5 + CONF_UNIX_PATH_MAX];
	size_t	i;

	for (i = 0; i < c->nlisten; i++)
		if (c->listen[i].path[0] != '\0') {
			snprintf(u, sizeof(u), "unix:%s", c->listen[i].path);
			dump_str(fp, "listen", u);
		} else if (strchr(c->listen[i].host, ':') != NULL)
			fprintf(fp, "listen [%s]:%d\n", c->listen[i].host,
			    c->listen[i].port);
		else
			fprintf(fp, "listen %s:%d\n", c->listen[i].host,
			    c->listen[i].port);
}

static int
list_full(size_t n, char *err, size_t errlen)
{
	if (n < CONF_LIST_MAX)
		return 0;
	snprintf(err, errlen, "too many entries (at most %d)", CONF_LIST_MAX);
	return 1;
}

static int
h_expose(struct conf *c, char **argv, char *err, size_t errlen)
{
	const char	*p = argv[0], *pre = argv[1];
	unsigned	 bits = 0;
	size_t		 i, n;
	char		 m[16];

	if (list_full(c->nexpose, err, errlen))
		return -1;
	if (strcmp(p, "*") == 0)
		bits = CONF_M_ALL;
	else
		for (;;) {
			n = strcspn(p, ",");
			if (n == 0 || n >= sizeof(m))
				goto badm;
			memcpy(m, p, n);
			m[n] = '\0';
			for (i = 0; i < sizeof(methods) / sizeof(methods[0]);
			    i++)
				if (util_strcaseeq(m, methods[i].name))
					break;
			if (i == sizeof(methods) / sizeof(methods[0]))
				goto badm;
			bits |= methods[i].bit;
			if (p[n] == '\0')
				break;
			p += n + 1;
		}
	if (pre[0] != '/' || strpbrk(pre, " \t?#") != NULL ||
	    strstr(pre, "/../") != NULL || strstr(pre, "/./") != NULL ||
	    (strlen(pre) >= 3 && strcmp(pre + strlen(pre) - 3, "/..") == 0) ||
	    (strlen(pre) >= 2 && strcmp(pre + strlen(pre) - 2, "/.") == 0)) {
		snprintf(err, errlen, "bad path prefix \"%.100s\" (must start "
		    "with '/', no spaces, query or dot segments)", pre);
		return -1;
	}
	c->expose = xreallocarray(c->expose, c->nexpose + 1,
	    sizeof(*c->expose));
	c->expose[c->nexpose].methods = bits;
	c->expose[c->nexpose].prefix = xstrdup(pre);
	c->nexpose++;
	return 0;
 badm:
	snprintf(err, errlen, "bad methods \"%.100s\" (comma-separated GET, "
	    "HEAD, POST, PUT, PATCH, DELETE, OPTIONS, or *)", argv[0]);
	return -1;
}

static void
d_expose(const struct conf *c, FILE *fp)
{
	size_t	i, j;
	int	first;

	if (c->nexpose == 0)
		fprintf(fp, "# expose (none)\n");
	for (i = 0; i < c->nexpose; i++) {
		fprintf(fp, "expose ");
		if (c->expose[i].methods == CONF_M_ALL)
			fprintf(fp, "*");
		else
			for (j = 0, first = 1;
			    j < sizeof(methods) / sizeof(methods[0]); j++)
				if (c->expose[i].methods & methods[j].bit) {
					fprintf(fp, "%s%s", first ? "" : ",",
					    methods[j].name);
					first = 0;
				}
		fprintf(fp, " %s\n", c->expose[i].prefix);
	}
}

static int
cidr_parse(const char *v, struct conf_cidr *r, char *err, size_t errlen)
{
	char		 a[64];
	const char	*slash = strchr(v, '/');
	size_t		 n = slash ? (size_t)(slash - v) : strlen(v);
	uint64_t	 pfx;
	int		 max, i;

	memset(r, 0, sizeof(*r));
	if (n == 0 || n >= sizeof(a))
		goto bad;
	memcpy(a, v, n);
	a[n] = '\0';
	if (inet_pton(AF_INET, a, r->addr) == 1) {
		r->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, a, r->addr) == 1) {
		r->family = AF_INET6;
		max = 128;
	} else
		goto bad;
	if (slash != NULL) {
		const char	*p = slash + 1;

		if (strlen(p) > 3 || parse_digits(&p, &pfx) == -1 ||
		    *p != '\0' || pfx > (uint64_t)max)
			goto bad;
		r->prefix = (int)pfx;
	} else
		r->prefix = max;
	for (i = 0; i < max / 8; i++)
		if (i * 8 >= r->prefix)
			r->addr[i] = 0;
		else if (i * 8 + 8 > r->prefix)
			r->addr[i] &= (unsigned char)(0xff << (8 - (r->prefix -
			    i * 8)));
	return 0;
 bad:
	snprintf(err, errlen, "\"%.100s\" is not an address or CIDR block "
	    "(e.g. 192.168.1.0/24, fd00::/8)", v);
	return -1;
}

static int
h_allow_from(struct conf *c, char **argv, char *err, size_t errlen)
{
	struct conf_cidr	r;

	if (list_full(c->nallow_from, err, errlen) ||
	    cidr_parse(argv[0], &r, err, errlen) == -1)
		return -1;
	c->allow_from = xreallocarray(c->allow_from, c->nallow_from + 1,
	    sizeof(*c->allow_from));
	c->allow_from[c->nallow_from++] = r;
	return 0;
}

static void
d_allow_from(const struct conf *c, FILE *fp)
{
	char	a[INET6_ADDRSTRLEN];
	size_t	i;

	if (c->nallow_from == 0)
		fprintf(fp, "# allow-from (none)\n");
	for (i = 0; i < c->nallow_from; i++) {
		inet_ntop(c->allow_from[i].family, c->allow_from[i].addr, a,
		    sizeof(a));
		fprintf(fp, "allow-from %s/%d\n", a, c->allow_from[i].prefix);
	}
}

static int
is_hostch(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_';
}

/* host or [v6]; returns its length or 0 */
static size_t
host_span(const char *p)
{
	unsigned char	a[16];
	char		b[64];
	const char	*e;
	size_t		n;

	if (*p == '[') {
		if ((e = strchr(p, ']')) == NULL ||
		    (n = (size_t)(e - p - 1)) == 0 || n >= sizeof(b))
			return 0;
		memcpy(b, p + 1, n);
		b[n] = '\0';
		return inet_pton(AF_INET6, b, a) == 1 ? n + 2 : 0;
	}
	for (n = 0; is_hostch((unsigned char)p[n]); n++)
		;
	return n;
}

static char *
lowercase(const char *s)
{
	char	*r = xstrdup(s), *p;

	for (p = r; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p += 'a' - 'A';
	return r;
}

static int
push_str(char ***arr, size_t *n, const char *v, char *err, size_t errlen)
{
	if (list_full(*n, err, errlen))
		return -1;
	*arr = xreallocarray(*arr, *n + 1, sizeof(**arr));
	(*arr)[(*n)++] = lowercase(v);
	return 0;
}

static int
h_allow_origin(struct conf *c, char **argv, char *err, size_t errlen)
{
	const char	*v = argv[0], *p = v;
	size_t		 n;
	int		 port;

	if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
		goto bad;
	while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
	    (*p >= '0' && *p <= '9') || *p == '+' || *p == '-' || *p == '.')
		p++;
	if (strncmp(p, "://", 3) != 0)
		goto bad;
	p += 3;
	if ((n = host_span(p)) == 0)
		goto bad;
	p += n;
	if (*p == ':') {
		char	pb[8];

		n = strspn(p + 1, "0123456789");
		if (n == 0 || n >= sizeof(pb))
			goto bad;
		memcpy(pb, p + 1, n);
		pb[n] = '\0';
		if (parse_port(pb, &port) == -1 || port == 0)
			goto bad;
		p += 1 + n;
	}
	if (*p == '/') {
		snprintf(err, errlen, "origin \"%.100s\" must not have a path "
		    "(scheme://host[:port])", v);
		return -1;
	}
	if (*p != '\0')
		goto bad;
	return push_str(&c->allow_origin, &c->nallow_origin, v, err, errlen);
 bad:
	snprintf(err, errlen, "\"%.100s\" is not an origin "
	    "(scheme://host[:port], e.g. http://localhost:3000)", v);
	return -1;
}

static void
d_strlist(const char *kw, char **arr, size_t n, FILE *fp)
{
	size_t	i;

	if (n == 0)
		fprintf(fp, "# %s (none)\n", kw);
	for (i = 0; i < n; i++)
		fprintf(fp, "%s %s\n", kw, arr[i]);
}

static void
d_allow_origin(const struct conf *c, FILE *fp)
{
	d_strlist("allow-origin", c->allow_origin, c->nallow_origin, fp);
}

/* a PostgREST function name: letters, digits, '_' (schema-qualified ok) */
static int
h_cache_rpc(struct conf *c, char **argv, char *err, size_t errlen)
{
	const char	*v = argv[0];

	if (*v == '\0' || strlen(v) > 128 || strspn(v, "abcdefghijklmnopqrstu"
	    "vwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.") != strlen(v)) {
		snprintf(err, errlen, "\"%.100s\" is not a function name", v);
		return -1;
	}
	if (list_full(c->ncache_rpc, err, errlen))
		return -1;
	c->cache_rpc = xreallocarray(c->cache_rpc, c->ncache_rpc + 1,
	    sizeof(*c->cache_rpc));
	c->cache_rpc[c->ncache_rpc++] = xstrdup(v);
	return 0;
}

static int
h_cache_ttl_for(struct conf *c, char **argv, char *err, size_t errlen)
{
	const char	*pre = argv[0];
	uint64_t	 ms;

	if (pre[0] != '/' || strpbrk(pre, " \t?#") != NULL) {
		snprintf(err, errlen, "bad path prefix \"%.100s\" (must start "
		    "with '/', no spaces or query)", pre);
		return -1;
	}
	if (conf_parse_duration_ms(argv[1], &ms) != 0 || ms % 1000 != 0) {
		snprintf(err, errlen, "bad duration \"%.100s\" (whole seconds, "
		    "e.g. 30s, 5m, 1h)", argv[1]);
		return -1;
	}
	if (list_full(c->ncache_ttl_for, err, errlen))
		return -1;
	c->cache_ttl_for = xreallocarray(c->cache_ttl_for,
	    c->ncache_ttl_for + 1, sizeof(*c->cache_ttl_for));
	c->cache_ttl_for[c->ncache_ttl_for].prefix = xstrdup(pre);
	c->cache_ttl_for[c->ncache_ttl_for].ttl_s = ms / 1000;
	c->ncache_ttl_for++;
	return 0;
}

static void
d_cache_ttl_for(const struct conf *c, FILE *fp)
{
	size_t	i;

	if (c->ncache_ttl_for == 0)
		fprintf(fp, "# cache-ttl-for (none)\n");
	for (i = 0; i < c->ncache_ttl_for; i++)
		fprintf(fp, "cache-ttl-for %s %llus\n",
		    c->cache_ttl_for[i].prefix,
		    (unsigned long long)c->cache_ttl_for[i].ttl_s);
}

/* STATUS DURATION: a status cache.c allows, a whole number of seconds */
static int
h_cache_ttl_status(struct conf *c, char **argv, char *err, size_t errlen)
{
	const char	*v = argv[0];
	char		 allowed[128];
	uint64_t	 ms;
	size_t		 i, o = 0;
	int		 status, st;

	if (strlen(v) != 3 || strspn(v, "0123456789") != 3 || v[0] < '1' ||
	    v[0] > '5') {
		snprintf(err, errlen, "\"%.100s\" is not an HTTP status", v);
		return -1;
	}
	status = atoi(v);
	if (!cache_status_configurable(status)) {
		for (st = 100; st < 600; st++)
			if (cache_status_configurable(st) && o < sizeof(allowed))
				o += snprintf(allowed + o, sizeof(allowed) - o,
				    "%s%d", o > 0 ? " " : "", st);
		if (status == 200 || status == 204 || status == 206)
			snprintf(err, errlen, "status %d is always cached "
			    "(see cache-ttl)", status);
		else
			snprintf(err, errlen, "status %d may not be cached "
			    "(allowed: %s)", status, allowed);
		return -1;
	}
	for (i = 0; i < c->ncache_ttl_status; i++)
		if (c->cache_ttl_status[i].status == status) {
			snprintf(err, errlen, "status %d given twice", status);
			return -1;
		}
	if (conf_parse_duration_ms(argv[1], &ms) != 0 || ms % 1000 != 0 ||
	    ms == 0 || ms > UINT64_C(31536000000)) {
		snprintf(err, errlen, "bad duration \"%.100s\" (whole seconds "
		    "from 1s to 365d, e.g. 30s, 5m, 1h)", argv[1]);
		return -1;
	}
	if (list_full(c->ncache_ttl_status, err, errlen))
		return -1;
	c->cache_ttl_status = xreallocarray(c->cache_ttl_status,
	    c->ncache_ttl_status + 1, sizeof(*c->cache_ttl_status));
	c->cache_ttl_status[c->ncache_ttl_status].status = status;
	c->cache_ttl_status[c->ncache_ttl_status].ttl_s = ms / 1000;
	c->ncache_ttl_status++;
	return 0;
}

static void
d_cache_ttl_status(const struct conf *c, FILE *fp)
{
	size_t	i;

	if (c->ncache_ttl_status == 0)
		fprintf(fp, "# cache-ttl-status (none)\n");
	for (i = 0; i < c->ncache_ttl_status; i++)
		fprintf(fp, "cache-ttl-status %d %llus\n",
		    c->cache_ttl_status[i].status,
		    (unsigned long long)c->cache_ttl_status[i].ttl_s);
}

static void
d_cache_rpc(const struct conf *c, FILE *fp)
{
	d_strlist("cache-rpc", c->cache_rpc, c->ncache_rpc, fp);
}

static int
h_allow_host(struct conf *c, char **argv, char *err, size_t errlen)
{
	const char	*v = argv[0];
	size_t		 n = host_span(v);

	if (n == 0 || v[n] != '\0') {
		snprintf(err, errlen, "\"%.100s\" is not a host name (no port, "
		    "e.g. supagate.lan)", v);
		return -1;
	}
	return push_str(&c->allow_host, &c->nallow_host, v, err, errlen);
}

static void
d_allow_host(const struct conf *c, FILE *fp)
{
	d_strlist("allow-host", c->allow_host, c->nallow_host, fp);
}

/*
 * Lexer
 */

static void
skip_line(struct lex *lx)
{
	while (lx->p < lx->end && *lx->p != '\n')
		lx->p++;
}

static int
is_space(int ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' ||
	    ch == '\v';
}

static int
is_ctl(int ch)
{
	return (ch >= 0 && ch < 0x20 && ch != '\t') || ch == 0x7f;
}

static enum tok
lex_err(struct pstate *ps, struct lex *lx, unsigned line, const char *msg)
{
	perr(ps, lx->file, line, "%s", msg);
	skip_line(lx);
	return T_ERR;
}

static enum tok
lex_next(struct pstate *ps, struct lex *lx, char *tok, size_t toksz)
{
	size_t		n = 0;
	unsigned	start;
	int		ch;

	for (;;) {
		while (lx->p < lx->end && is_space((unsigned char)*lx->p))
			lx->p++;
		if (lx->p >= lx->end)
			return T_EOF;
		if (*lx->p != '#')
			break;
		skip_line(lx);
	}
	ch = (unsigned char)*lx->p;
	if (ch == '\n') {
		lx->p++;
		lx->line++;
		return T_EOS;
	}
	if (ch == ';') {
		lx->p++;
		return T_EOS;
	}
	if (ch == '"') {
		start = lx->line;
		lx->p++;
		for (;;) {
			if (lx->p >= lx->end || *lx->p == '\n')
				return lex_err(ps, lx, start,
				    "unterminated quoted string");
			ch = (unsigned char)*lx->p;
			if (ch == '"')
				break;
			if (ch == '\\') {
				if (lx->p + 1 >= lx->end || (lx->p[1] != '"' &&
				    lx->p[1] != '\\'))
					return lex_err(ps, lx, start,
					    "bad escape in quoted string "
					    "(only \\\" and \\\\)");
				ch = (unsigned char)*++lx->p;
			} else if (ch == '\0')
				return lex_err(ps, lx, start, "NUL byte");
			else if (is_ctl(ch))
				return lex_err(ps, lx, start,
				    "control character in quoted string");
			if (n + 1 >= toksz)
				return lex_err(ps, lx, start,
				    "string too long");
			tok[n++] = (char)ch;
			lx->p++;
		}
		lx->p++;
		if (lx->p < lx->end && !is_space((unsigned char)*lx->p) &&
		    *lx->p != '\n' && *lx->p != ';' && *lx->p != '#')
			return lex_err(ps, lx, start,
			    "missing space after quoted string");
		tok[n] = '\0';
		return T_WORD;
	}
	while (lx->p < lx->end) {
		ch = (unsigned char)*lx->p;
		if (is_space(ch) || ch == '\n' || ch == ';')
			break;
		if (ch == '"')
			return lex_err(ps, lx, lx->line,
			    "unexpected '\"' inside a word");
		if (ch == '\0')
			return lex_err(ps, lx, lx->line, "NUL byte");
		if (is_ctl(ch))
			return lex_err(ps, lx, lx->line, "control character");
		if (n + 1 >= toksz)
			return lex_err(ps, lx, lx->line, "word too long");
		tok[n++] = (char)ch;
		lx->p++;
	}
	tok[n] = '\0';
	return T_WORD;
}

/*
 * Parser
 */

static char *
path_join(const char *dir, const char *rel)
{
	size_t	 n = strlen(dir) + strlen(rel) + 2;
	char	*r = xcalloc(1, n);

	snprintf(r, n, "%s%s%s", dir,
	    dir[0] != '\0' && dir[strlen(dir) - 1] == '/' ? "" : "/", rel);
	return r;
}

/* directory part of a path, "." if none */
static char *
dir_of(const char *path)
{
	const char	*s = strrchr(path, '/');
	char		*r;

	if (s == NULL)
		return xstrdup(".");
	if (s == path)
		return xstrdup("/");
	r = xcalloc(1, (size_t)(s - path) + 1);
	memcpy(r, path, (size_t)(s - path));
	return r;
}

static const char *
keep_name(struct pstate *ps, const char *name)
{
	ps->names = xreallocarray(ps->names, ps->nnames + 1,
	    sizeof(*ps->names));
	return ps->names[ps->nnames++] = xstrdup(name);
}

static void
statement(struct pstate *ps, const char *file, unsigned line, int depth,
    int argc, char **argv)
{
	const struct kw	*k;
	char		 err[ERRLEN];
	size_t		 i;

	if (strcmp(argv[0], "include") == 0) {
		char	*dir, *path;

		if (argc != 2) {
			perr(ps, file, line, "include: expected one file name");
			return;
		}
		if (depth >= CONF_INCLUDE_DEPTH) {
			perr(ps, file, line, "include: nested too deeply "
			    "(at most %d levels)", CONF_INCLUDE_DEPTH);
			return;
		}
		dir = dir_of(file);
		if (argv[1][0] == '/' || strcmp(dir, ".") == 0)
			path = xstrdup(argv[1]);
		else {
			path = path_join(dir, argv[1]);
		}
		free(dir);
		parse_file(ps, path, depth + 1, file, line);
		free(path);
		return;
	}
	if ((k = kw_find(argv[0])) == NULL) {
		perr(ps, file, line, "unknown keyword \"%.64s\"", argv[0]);
		return;
	}
	i = (size_t)(k - kwtab);
	if (argc - 1 < k->nargs) {
		perr(ps, file, line, "%s: missing value", k->name);
		return;
	}
	if (argc - 1 > k->nargs) {
		perr(ps, file, line, "%s: too many values (expected %d)",
		    k->name, k->nargs);
		return;
	}
	if (!(k->flags & CF_MULTI) && ps->seen_line[i] != 0) {
		perr(ps, file, line, "%s: given twice (first at %s:%u)",
		    k->name, ps->seen_file[i], ps->seen_line[i]);
		return;
	}
	if (ps->seen_line[i] == 0) {
		ps->seen_file[i] = keep_name(ps, file);
		ps->seen_line[i] = line;
	}
	if ((k->handler != NULL ? k->handler(ps->c, argv + 1, err,
	    sizeof(err)) : set_value(ps->c, k, argv[1], err,
	    sizeof(err))) == -1)
		perr(ps, file, line, "%s: %s", k->name, err);
}

static char *
read_file(const char *path, size_t *lenp, char *err, size_t errlen)
{
	struct stat	 st;
	char		*buf = NULL;
	size_t		 len = 0;
	ssize_t		 n;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		snprintf(err, errlen, "%s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s", strerror(errno));
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "is a directory");
		goto fail;
	}
	buf = xcalloc(1, CONF_FILE_MAX + 1);
	for (;;) {
		n = read(fd, buf + len, CONF_FILE_MAX + 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(err, errlen, "%s", strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > CONF_FILE_MAX) {
			snprintf(err, errlen, "file is larger than %d bytes",
			    CONF_FILE_MAX);
			goto fail;
		}
	}
	close(fd);
	*lenp = len;
	return buf;
 fail:
	free(buf);
	close(fd);
	return NULL;
}

static void
parse_file(struct pstate *ps, const char *path, int depth, const char *from,
    unsigned fromline)
{
	struct lex	 lx;
	char		 err[ERRLEN], *buf, *argv[CONF_ARGS_MAX];
	char		*tok = NULL;
	size_t		 len = 0;
	unsigned	 stline = 0;
	enum tok	 t;
	int		 argc, bad, i;

	if ((buf = read_file(path, &len, err, sizeof(err))) == NULL) {
		if (from != NULL)
			perr(ps, from, fromline, "include \"%s\": %s", path,
			    err);
		else
			perr(ps, path, 0, "%s", err);
		return;
	}
	tok = xcalloc(1, CONF_TOKEN_MAX);
	lx.file = path;
	lx.p = buf;
	lx.end = buf + len;
	lx.line = 1;
	do {
		argc = 0;
		bad = 0;
		for (;;) {
			unsigned	l = lx.line;

			t = lex_next(ps, &lx, tok, CONF_TOKEN_MAX);
			if (t == T_ERR) {
				bad = 1;
				continue;
			}
			if (t != T_WORD)
				break;
			if (argc == 0)
				stline = l;
			if (argc == CONF_ARGS_MAX) {
				if (!bad)
					perr(ps, path, stline, "%s: too many "
					    "values", argv[0]);
				bad = 1;
				continue;
			}
			argv[argc++] = xstrdup(tok);
		}
		if (argc > 0 && !bad)
			statement(ps, path, stline, depth, argc, argv);
		for (i = 0; i < argc; i++)
			free(argv[i]);
	} while (t != T_EOF);
	free(tok);
	free(buf);
}

/*
 * Credentials and cross-field checks
 */

static enum key_kind
key_kind(const struct secret *s)
{
	struct jwt_claims	cl;

	if (s->len >= 15 && strncmp(s->buf, "sb_publishable_", 15) == 0)
		return KEY_PUBLISHABLE;
	if (s->len >= 10 && strncmp(s->buf, "sb_secret_", 10) == 0)
		return KEY_SECRET;
	if (!jwt_looks_like(s->buf, s->len) ||
	    jwt_decode(s->buf, s->len, &cl) == -1)
		return KEY_UNKNOWN;
	if (strcmp(cl.role, "anon") == 0)
		return KEY_JWT_ANON;
	if (strcmp(cl.role, "service_role") == 0)
		return KEY_JWT_SERVICE;
	return KEY_JWT_OTHER;
}

static void
resolve_paths(struct pstate *ps)
{
	struct conf	*c = ps->c;
	const char	*creds = getenv("CREDENTIALS_DIRECTORY");
	char		*dir = NULL, **f, *p;
	size_t		 i;

	if (creds != NULL && creds[0] == '\0')
		creds = NULL;
	if (c->file != NULL)
		dir = dir_of(c->file);
	for (i = 0; i < NKW; i++) {
		if (kwtab[i].type != CT_PATH)
			continue;
		f = field(c, &kwtab[i]);
		if (*f == NULL || (*f)[0] == '/')
			continue;
		if ((kwtab[i].flags & CF_SECRET) && creds != NULL)
			p = path_join(creds, *f);
		else if (dir != NULL && strcmp(dir, ".") != 0)
			p = path_join(dir, *f);
		else
			continue;
		free(*f);
		*f = p;
	}
	free(dir);
}

static struct secret *
load_secret(struct pstate *ps, const char *kw, const char *path)
{
	struct secret	*s;
	char		 err[ERRLEN];

	if ((s = secret_load(path, err, sizeof(err))) == NULL)
		perr(ps, ps->name, 0, "%s %s: %s", kw, path, err);
	return s;
}

/* 1 if s is a token name: 1 to 64 of [A-Za-z0-9._-] */
int
conf_token_name_ok(const char *s)
{
	size_t	n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuv"
	    "wxyz0123456789._-");

	return n > 0 && n <= CONF_TOKEN_NAME_MAX && s[n] == '\0';
}


/* 0 and out[32] from 64 hex digits, else -1 */
static int
hex32(const char *s, unsigned char out[32])
{
	int	 i, hi, lo;

	for (i = 0; i < 32; i++) {
		if ((hi = util_hexval((unsigned char)s[2 * i])) < 0 ||
		    (lo = util_hexval((unsigned char)s[2 * i + 1])) < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return s[64] == '\0' ? 0 : -1;
}

/*
 * client-tokens-file: "NAME DIGEST" lines, DIGEST the 64 hex digits of
 * the token's BLAKE2b-256 (supagate token prints both); blank lines and
 * '#' comments are skipped.  Errors name the file and the line.
 */
static void
load_tokens(struct pstate *ps, struct conf *c, const char *path)
{
	struct conf_token	*t;
	char			 err[ERRLEN], *buf, *line, *next, *name, *hex,
				*end;
	size_t			 len = 0, i;
	unsigned		 ln = 0;

	if ((buf = read_file(path, &len, err, sizeof(err))) == NULL) {
		perr(ps, ps->name, 0, "client-tokens-file %s: %s", path, err);
		return;
	}
	if (memchr(buf, '\0', len) != NULL) {
		perr(ps, path, 0, "client-tokens-file: NUL byte");
		goto out;
	}
	for (line = buf; line != NULL && line < buf + len; line = next) {
		ln++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if ((end = strchr(line, '#')) != NULL)
			*end = '\0';
		name = strtok_r(line, " \t\r", &end);
		if (name == NULL)
			continue;
		hex = strtok_r(NULL, " \t\r", &end);
		if (!conf_token_name_ok(name) || hex == NULL ||
		    strtok_r(NULL, " \t\r", &end) != NULL) {
			perr(ps, path, ln, "client-tokens-file: want NAME "
			    "DIGEST (NAME of 1-64 letters, digits, '.', '_', "
			    "'-')");
			continue;
		}
		if (c->ntokens == CONF_TOKENS_MAX) {
			perr(ps, path, ln, "client-tokens-file: more than %d "
			    "tokens", CONF_TOKENS_MAX);
			break;
		}
		c->tokens = xreallocarray(c->tokens, c->ntokens + 1,
		    sizeof(*c->tokens));
		t = &c->tokens[c->ntokens];
		if (strlen(hex) != 64 || hex32(hex, t->digest) == -1) {
			perr(ps, path, ln, "client-tokens-file: the digest "
			    "is 64 hex digits (BLAKE2b-256 of the token)");
			continue;
		}
		for (i = 0; i < c->ntokens; i++)
			if (strcmp(c->tokens[i].name, name) == 0)
				break;
		if (i < c->ntokens) {
			perr(ps, path, ln, "client-tokens-file: %s is there "
			    "twice", name);
			continue;
		}
		snprintf(t->name, sizeof(t->name), "%s", name);
		c->ntokens++;
	}
	if (c->ntokens == 0 && ps->nerr == 0)
		perr(ps, path, 0, "client-tokens-file: no token (every "
		    "request would be refused)");
 out:
	explicit_bzero(buf, len);
	free(buf);
}

/* the JWK set of jwt-jwks-file; errors name that file and its line */
static struct jwk_set *
load_jwks(struct pstate *ps, const char *path)
{
	struct jwk_set	*set;
	char		 err[ERRLEN], *buf;
	size_t		 len = 0;
	unsigned	 line = 0;

	if ((buf = read_file(path, &len, err, sizeof(err))) == NULL) {
		perr(ps, ps->name, 0, "jwt-jwks-file %s: %s", path, err);
		return NULL;
	}
	set = jwk_set_parse(buf, len, err, sizeof(err), &line);
	free(buf);
	if (set == NULL)
		perr(ps, path, line, "jwt-jwks-file: %s", err);
	else if (jwk_set_count(set) == 0) {
		perr(ps, path, 0, "jwt-jwks-file: no usable key (EC P-256 "
		    "for ES256 or RSA for RS256)");
		jwk_set_free(set);
		set = NULL;
	}
	return set;
}

static int
listen_is_loopback(const struct conf_listen *l)
{
	unsigned char	a[16];

	if (l->path[0] != '\0')
		return 1;	/* unix: file permissions say who */
	if (inet_pton(AF_INET, l->host, a) == 1)
		return a[0] == 127;
	if (inet_pton(AF_INET6, l->host, a) == 1) {
		static const unsigned char	lo[16] = { [15] = 1 };
		static const unsigned char	v4m[12] = { [10] = 0xff,
						    [11] = 0xff };

		return memcmp(a, lo, 16) == 0 ||
		    (memcmp(a, v4m, 12) == 0 && a[12] == 127);
	}
	return 0;
}

static void
finish(struct pstate *ps, int mode_set)
{
	struct conf	*c = ps->c;
	struct secret	*envkey = NULL, *key = NULL;
	const char	*env, *src = NULL;
	enum key_kind	 kind = KEY_UNKNOWN;
	char		 err[ERRLEN];
	int		 mode_from_env = 0;
	size_t		 i;

	if (c->upstream == NULL && (env = getenv("SUPABASE_URL")) != NULL &&
	    env[0] != '\0' &&
	    url_normalise(env, &c->upstream, err, sizeof(err)) == -1)
		perr(ps, ps->name, 0, "SUPABASE_URL: %s", err);

	if (c->anon_key_file == NULL && c->service_key_file == NULL &&
	    (env = getenv("SUPABASE_KEY")) != NULL && env[0] != '\0') {
		size_t	n = strlen(env);

		while (n > 0 && (env[n - 1] == '\n' || env[n - 1] == '\r' ||
		    env[n - 1] == ' '))
			n--;
		if ((envkey = secret_new(env, n)) == NULL)
			fatalx("%s: out of memory", __func__);
		kind = key_kind(envkey);
		if (!mode_set) {
			switch (kind) {
			case KEY_PUBLISHABLE:
			case KEY_JWT_ANON:
				c->auth_mode = CONF_AUTH_ANON;
				break;
			case KEY_SECRET:
			case KEY_JWT_SERVICE:
				c->auth_mode = CONF_AUTH_SERVICE;
				mode_from_env = 1;
				break;
			default:
				perr(ps, ps->name, 0, "SUPABASE_KEY: cannot "
				    "tell the auth-mode from the key (neither "
				    "sb_publishable_/sb_secret_ nor a JWT with "
				    "role anon or service_role); set "
				    "auth-mode");
				break;
			}
		}
	}

	resolve_paths(ps);

	if (c->auth_mode == CONF_AUTH_SESSION) {
		/*
		 * A stored session (supagate login) may be all there is, so
		 * none of the sources is required here; session_setup says
		 * so clearly when nothing is stored either.
		 */
		if ((c->session_email == NULL) !=
		    (c->session_password_file == NULL))
			perr(ps, ps->name, 0, "session-email and "
			    "session-password-file go together");
		else if (c->session_password_file != NULL)
			secret_free(load_secret(ps, "session-password-file",
			    c->session_password_file));
	}

	for (i = 0; i < CONF_SVC__N; i++)
		if (c->svc_upstream[i] != NULL)
			break;
	if (c->upstream == NULL && i == CONF_SVC__N)
		perr(ps, ps->name, 0, "no upstream: set upstream (or "
		    "SUPABASE_URL) or a per-service override such as "
		    "rest-upstream");

	if (c->auth_mode == CONF_AUTH_ANON ||
	    c->auth_mode == CONF_AUTH_SESSION) {
		if (c->anon_key_file != NULL) {
			key = load_secret(ps, "anon-key-file",
			    c->anon_key_file);
			src = c->anon_key_file;
		} else if (envkey != NULL) {
			key = envkey;
			envkey = NULL;
			src = "SUPABASE_KEY";
		} else
			perr(ps, ps->name, 0, "auth-mode %s requires "
			    "anon-key-file (or SUPABASE_KEY)",
			    c->auth_mode == CONF_AUTH_ANON ? "anon" :
			    "session");
		if (key != NULL) {
			kind = key_kind(key);
			if (kind == KEY_SECRET || kind == KEY_JWT_SERVICE)
				perr(ps, ps->name, 0, "%s: this is a service "
				    "key (sb_secret_ or role service_role), "
				    "not an anon key; use auth-mode service "
				    "and service-key-file", src);
		}
	} else if (c->auth_mode == CONF_AUTH_SERVICE) {
		if (c->service_key_file != NULL) {
			key = load_secret(ps, "service-key-file",
			    c->service_key_file);
			src = c->service_key_file;
		} else if (envkey != NULL) {
			key = envkey;
			envkey = NULL;
			src = "SUPABASE_KEY";
		} else
			perr(ps, ps->name, 0, "auth-mode service requires "
			    "service-key-file (or SUPABASE_KEY)");
		if (key != NULL) {
			kind = key_kind(key);
			if (kind == KEY_PUBLISHABLE || kind == KEY_JWT_ANON)
				perr(ps, ps->name, 0, "%s: this is an anon "
				    "key (sb_publishable_ or role anon), not "
				    "a service key; use auth-mode anon", src);
		}
		if (c->nexpose == 0 && mode_from_env) {
			char	m[] = "GET,HEAD", p[] = "/rest/v1/";
			char	*av[2] = { m, p };

			h_expose(c, av, err, sizeof(err));
			log_warnx("SUPABASE_KEY is a service key and no expose "
			    "line is configured: only GET,HEAD /rest/v1/ "
			    "(read-only) is exposed");
		} else if (c->nexpose == 0)
			perr(ps, ps->name, 0, "auth-mode service requires at "
			    "least one expose line (the service key bypasses "
			    "row level security)");
	}
	if (key != NULL) {
		c->apikey = key;
		c->apikey_is_jwt = jwt_looks_like(key->buf, key->len);
	}
	secret_free(envkey);

	if (c->jwt_secret_file != NULL)
		c->jwt_secret = load_secret(ps, "jwt-secret-file",
		    c->jwt_secret_file);
	if (c->jwt_jwks_file != NULL)
		c->jwks = load_jwks(ps, c->jwt_jwks_file);
	if (c->client_tokens_file != NULL)
		load_tokens(ps, c, c->client_tokens_file);
	if (c->jwt_jwks_fetch && c->upstream == NULL &&
	    c->svc_upstream[CONF_SVC_AUTH] == NULL)
		perr(ps, ps->name, 0, "jwt-jwks-fetch on needs the Auth "
		    "upstream: set upstream or auth-upstream");

	for (i = 0; i < c->nlisten; i++)
		if (!listen_is_loopback(&c->listen[i]) &&
		    c->nallow_from == 0) {
			perr(ps, ps->name, 0, "listen %s: not a loopback "
			    "address, so at least one allow-from is required",
			    c->listen[i].host);
			break;
		}
	if (c->cache_max_object > c->cache_max_size)
		perr(ps, ps->name, 0, "cache-max-object is larger than "
		    "cache-max-size");
}

static struct conf *
conf_new(void)
{
	static uint64_t	 serial;
	struct conf	*c = xcalloc(1, sizeof(*c));
	char		 err[ERRLEN];
	size_t		 i;

	c->refcnt = 1;
	c->serial = ++serial;
	for (i = 0; i < NKW; i++)
		if (kwtab[i].def != NULL && kwtab[i].handler == NULL &&
		    set_value(c, &kwtab[i], kwtab[i].def, err,
		    sizeof(err)) == -1)
			fatalx("%s: default of %s: %s", __func__,
			    kwtab[i].name, err);
	return c;
}

struct conf *
conf_load(const char *file)
{
	struct pstate		 ps;
	struct conf		*c;
	const struct kw		*k;
	char			 err[ERRLEN], def[64], *av[1];
	size_t			 i;
	int			 mode_set;

	memset(&ps, 0, sizeof(ps));
	_Static_assert(NKW <= sizeof(ps.seen_line) / sizeof(ps.seen_line[0]),
	    "seen arrays too small");
	c = ps.c = conf_new();
	ps.name = file != NULL ? file : "environment";
	if (file != NULL) {
		c->file = xstrdup(file);
		parse_file(&ps, file, 0, NULL, 0);
	}
	if (c->nlisten == 0) {
		k = kw_find("listen");
		util_strlcpy(def, k->def, sizeof(def));
		av[0] = def;
		if (h_listen(c, av, err, sizeof(err)) == -1)
			fatalx("%s: default listen: %s", __func__, err);
	}
	k = kw_find("auth-mode");
	mode_set = ps.seen_line[k - kwtab] != 0;
	if (ps.nerr == 0)
		finish(&ps, mode_set);
	for (i = 0; i < ps.nnames; i++)
		free(ps.names[i]);
	free(ps.names);
	if (ps.nerr > 0) {
		conf_unref(c);
		return NULL;
	}
	return c;
}

struct conf *
conf_ref(struct conf *c)
{
	if (c != NULL)
		c->refcnt++;
	return c;
}

void
conf_unref(struct conf *c)
{
	size_t	i;

	if (c == NULL || --c->refcnt > 0)
		return;
	for (i = 0; i < NKW; i++)
		if (kwtab[i].type == CT_STRING || kwtab[i].type == CT_PATH ||
		    kwtab[i].type == CT_URL)
			free(*(char **)field(c, &kwtab[i]));
	for (i = 0; i < c->nexpose; i++)
		free(c->expose[i].prefix);
	free(c->expose);
	free(c->allow_from);
	for (i = 0; i < c->nallow_origin; i++)
		free(c->allow_origin[i]);
	free(c->allow_origin);
	for (i = 0; i < c->nallow_host; i++)
		free(c->allow_host[i]);
	free(c->allow_host);
	for (i = 0; i < c->ncache_rpc; i++)
		free(c->cache_rpc[i]);
	free(c->cache_rpc);
	for (i = 0; i < c->ncache_ttl_for; i++)
		free(c->cache_ttl_for[i].prefix);
	free(c->cache_ttl_for);
	free(c->cache_ttl_status);
	secret_free(c->apikey);
	secret_free(c->jwt_secret);
	jwk_set_free(c->jwks);
	free(c->tokens);
	free(c->file);
	free(c);
}

static void
dump_str(FILE *fp, const char *kw, const char *s)
{
	if (s[0] != '\0' && strpbrk(s, " \t#;\"\\") == NULL) {
		fprintf(fp, "%s %s\n", kw, s);
		return;
	}
	fprintf(fp, "%s \"", kw);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', fp);
		fputc(*s, fp);
	}
	fprintf(fp, "\"\n");
}

void
conf_dump(const struct conf *c, FILE *fp)
{
	const struct kw	*k;
	const void	*f;
	const char	*p;
	char		 buf[64];
	size_t		 i, n;
	int		 e;

	for (i = 0; i < NKW; i++) {
		k = &kwtab[i];
		f = cfield(c, k);
		switch (k->type) {
		case CT_LIST:
			k->dump(c, fp);
			break;
		case CT_STRING:
		case CT_PATH:
		case CT_URL:
			if (*(char *const *)f == NULL)
				fprintf(fp, "# %s (not set)\n", k->name);
			else
				dump_str(fp, k->name, *(char *const *)f);
			break;
		case CT_ENUM:
			e = *(const int *)f;
			for (p = k->choices; e > 0 && *p != '\0'; e--)
				p += strcspn(p, "|") + (p[strcspn(p, "|")] ==
				    '|');
			n = strcspn(p, "|");
			fprintf(fp, "%s %.*s\n", k->name, (int)n, p);
			break;
		case CT_BOOL:
			fprintf(fp, "%s %s\n", k->name,
			    *(const int *)f ? "yes" : "no");
			break;
		case CT_DOUBLE:
			fprintf(fp, "%s %g\n", k->name, *(const double *)f);
			break;
		case CT_DURATION_S:
			fmt_duration(*(const uint64_t *)f * 1000, buf,
			    sizeof(buf));
			fprintf(fp, "%s %s\n", k->name, buf);
			break;
		case CT_DURATION_MS:
		case CT_SIZE:
			if (k->type == CT_SIZE)
				fmt_size(*(const uint64_t *)f, buf,
				    sizeof(buf));
			else
				fmt_duration(*(const uint64_t *)f, buf,
				    sizeof(buf));
			fprintf(fp, "%s %s\n", k->name, buf);
			break;
		case CT_UINT:
			fprintf(fp, "%s %llu\n", k->name,
			    (unsigned long long)*(const uint64_t *)f);
			break;
		}
	}
	if (c->apikey != NULL &&
	    ((c->auth_mode == CONF_AUTH_ANON && c->anon_key_file == NULL) ||
	    (c->auth_mode == CONF_AUTH_SERVICE && c->service_key_file == NULL)))
		fprintf(fp, "# apikey from SUPABASE_KEY: [redacted]\n");
}

