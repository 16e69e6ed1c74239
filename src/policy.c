/* policy: pure request policy (routes, paths, headers, credentials, access) */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "crypto.h"
#include "jwt.h"
#include "policy.h"
#include "util.h"

/*
 * Everything here is a pure function of its arguments: no I/O, no
 * mutable state.  The only data are the const tables below.
 */

static const struct route {
	const char		*prefix;
	enum policy_route	 route;
	const char		*name;
} routes[] = {
	{ "/rest/v1",		POLICY_ROUTE_REST,	"rest" },
	{ "/auth/v1",		POLICY_ROUTE_AUTH,	"auth" },
	{ "/storage/v1",	POLICY_ROUTE_STORAGE,	"storage" },
	{ "/functions/v1",	POLICY_ROUTE_FUNCTIONS,	"functions" },
	{ "/graphql/v1",	POLICY_ROUTE_GRAPHQL,	"graphql" },
	{ "/_supagate",		POLICY_ROUTE_ADMIN,	"admin" },
};
#define NROUTES		(sizeof(routes) / sizeof(routes[0]))

/* a REST override serves GraphQL here, as the Supabase gateway does */
#define GRAPHQL_RPC	"/rpc/graphql"

/* request headers never forwarded: hop-by-hop or set by supagate */
static const char *const drop_request[] = {
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization",
	"TE", "Trailer", "Transfer-Encoding", "Upgrade",
	"Host",			/* curl sets the upstream's */
	"Content-Length",	/* curl sets it from the body it sends */
	"Expect",		/* curl decides on 100-continue itself */
	"apikey",		/* exactly one apikey goes upstream: ours */
	"Authorization",	/* policy_authorization() decides */
	"User-Agent",		/* supagate sends its own */
};

/*
 * Response headers never relayed.  GoTrue's sb-auth-* headers (session
 * id, token prefix) are relayed unchanged for now; the wire contract
 * (section 8.6) suggests stripping them, to be decided with proxy.c.
 */
static const char *const drop_response[] = {
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"TE", "Trailer", "Transfer-Encoding", "Upgrade",
	"Content-Length",	/* the server recomputes it */
};

static const struct method {
	const char	*name;
	unsigned	 bit;
} methods[] = {
	{ "GET",	CONF_M_GET },
	{ "HEAD",	CONF_M_HEAD },
	{ "POST",	CONF_M_POST },
	{ "PUT",	CONF_M_PUT },
	{ "PATCH",	CONF_M_PATCH },
	{ "DELETE",	CONF_M_DELETE },
	{ "OPTIONS",	CONF_M_OPTIONS },
};

static const unsigned char v4mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* ASCII case-insensitive equality of a[0..n) and NUL-terminated b */
static int
ieqn(const char *a, size_t n, const char *b)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (b[i] == '\0' || lower((unsigned char)a[i]) !=
		    lower((unsigned char)b[i]))
			return 0;
	return b[n] == '\0';
}

static int
ieq(const char *a, const char *b)
{
	return ieqn(a, strlen(a), b);
}


/* append s[0..n) at out[*off], keeping room for the NUL; -1 if full */
static int
append(char *out, size_t outlen, size_t *off, const char *s, size_t n)
{
	if (n >= outlen - *off)
		return -1;
	memcpy(out + *off, s, n);
	*off += n;
	out[*off] = '\0';
	return 0;
}

const char *
policy_route_name(enum policy_route r)
{
	size_t	i;

	for (i = 0; i < NROUTES; i++)
		if (routes[i].route == r)
			return routes[i].name;
	return "none";
}

enum policy_route
policy_route_of(const char *path, const char **sub)
{
	size_t	i, n;

	if (sub != NULL)
		*sub = path != NULL ? path : "";
	if (path == NULL)
		return POLICY_ROUTE_NONE;
	for (i = 0; i < NROUTES; i++) {
		n = strlen(routes[i].prefix);
		if (strncmp(path, routes[i].prefix, n) != 0 ||
		    (path[n] != '\0' && path[n] != '/'))
			continue;
		if (sub != NULL)
			*sub = path + n;
		return routes[i].route;
	}
	return POLICY_ROUTE_NONE;
}

/* RFC 3986 pchar without pct-encoded: unreserved, sub-delims, ':', '@' */
static int
is_pchar(int c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("-._~!$&'()*+,;=:@", c) != NULL;
}

int
policy_path_ok(const char *path, const char **why)
{
	const char	*p, *reason;
	size_t		 seglen = 0, dots = 0;
	int		 c, hi, lo, sep;

	if (path == NULL || *path == '\0') {
		reason = "empty path";
		goto bad;
	}
	if (*path != '/') {
		reason = "path must start with '/'";
		goto bad;
	}
	/*
	 * Walk the segments as an upstream that decodes once would see
	 * them: "%2e" is '.', and "%2f" / "%5c" separate segments, so
	 * "/a%2f..%2fb" holds a ".." segment too.
	 */
	for (p = path + 1;; p++) {
		c = (unsigned char)*p;
		sep = 0;
		if (c == '\0' || c == '/')
			sep = 1;
		else if (c == '%') {
			if ((hi = util_hexval((unsigned char)p[1])) < 0 ||
			    (lo = util_hexval((unsigned char)p[2])) < 0) {
				reason = "bad percent-escape in path";
				goto bad;
			}
			c = hi << 4 | lo;
			if (c == 0) {
				reason = "encoded NUL in path";
				goto bad;
			}
			p += 2;
			if (c == '/' || c == '\\')
				sep = 1;
		} else if (!is_pchar(c)) {
			reason = "invalid character in path";
			goto bad;
		}
		if (sep) {
			if (seglen > 0 && seglen <= 2 && dots == seglen) {
				reason = "dot segment in path";
				goto bad;
			}
			if (*p == '\0')
				break;
			seglen = dots = 0;
			continue;
		}
		seglen++;
		if (c == '.')
			dots++;
	}
	return 0;
 bad:
	if (why != NULL)
		*why = reason;
	return -1;
}

int
policy_upstream_url(const struct conf *conf, enum policy_route r,
    const char *path, const char *sub, const char *query, char *out,
    size_t outlen)
{
	const char	*root, *rest;
	size_t		 off = 0, rootlen;

	if (out == NULL || outlen == 0)
		return -1;
	out[0] = '\0';
	if (conf == NULL || path == NULL)
		return -1;
	if (sub == NULL && policy_route_of(path, &sub) != r)
		return -1;
	switch (r) {
	case POLICY_ROUTE_REST:
	case POLICY_ROUTE_AUTH:
	case POLICY_ROUTE_STORAGE:
	case POLICY_ROUTE_FUNCTIONS:
	case POLICY_ROUTE_GRAPHQL:
		break;
	default:
		return -1;
	}

	rest = NULL;
	if ((root = conf->svc_upstream[r]) != NULL)
		rest = sub;
	else if (r == POLICY_ROUTE_GRAPHQL &&
	    (root = conf->svc_upstream[CONF_SVC_REST]) != NULL)
		rest = GRAPHQL_RPC;
	else
		root = conf->upstream;
	if (root == NULL || *root == '\0')
		return -1;
	rootlen = strlen(root);
	while (rootlen > 0 && root[rootlen - 1] == '/')
		rootlen--;

	if (append(out, outlen, &off, root, rootlen) == -1)
		goto full;
	if (rest == NULL) {
		if (append(out, outlen, &off, path, strlen(path)) == -1)
			goto full;
	} else {
		if (append(out, outlen, &off, rest, strlen(rest)) == -1)
			goto full;
		/* "/graphql/v1/x" under a REST override: "/rpc/graphql/x" */
		if (rest != sub &&
		    append(out, outlen, &off, sub, strlen(sub)) == -1)
			goto full;
	}
	if (query != NULL && *query != '\0' &&
	    (append(out, outlen, &off, "?", 1) == -1 ||
	    append(out, outlen, &off, query, strlen(query)) == -1))
		goto full;
	return 0;
 full:
	out[0] = '\0';
	return -1;
}

/* 1 if the query parameter name p[0..n), percent-decoded, is "apikey" */
static int
name_is_apikey(const char *p, size_t n)
{
	static const char	 want[] = "apikey";
	size_t			 i, j = 0;
	int			 c, hi, lo;

	for (i = 0; i < n; i++) {
		c = (unsigned char)p[i];
		if (c == '%' && n - i >= 3 &&
		    (hi = util_hexval((unsigned char)p[i + 1])) >= 0 &&
		    (lo = util_hexval((unsigned char)p[i + 2])) >= 0) {
			c = hi << 4 | lo;
			i += 2;
		}
		if (j >= sizeof(want) - 1 || c != want[j])
			return 0;
		j++;
	}
	return j == sizeof(want) - 1;
}

int
policy_strip_apikey(const char *query, char *out, size_t outlen, char *key,
    size_t keylen)
{
	const char	*p, *end, *eq, *val;
	size_t		 off = 0, n, vlen;
	int		 removed = 0;

	if (out == NULL || outlen == 0)
		return -1;
	out[0] = '\0';
	if (key != NULL && keylen > 0)
		key[0] = '\0';
	if (query == NULL)
		return 0;
	for (p = query;; p = end + 1) {
		if ((end = strchr(p, '&')) == NULL)
			end = p + strlen(p);
		n = end - p;
		eq = memchr(p, '=', n);
		if (name_is_apikey(p, eq != NULL ? (size_t)(eq - p) : n)) {
			if (removed++ == 0 && key != NULL) {
				val = eq != NULL ? eq + 1 : end;
				vlen = end - val;
				if (vlen >= keylen)
					goto full;
				memcpy(key, val, vlen);
				key[vlen] = '\0';
			}
		} else if (n > 0) {
			/* empty parameters are dropped, see below */
			if ((off > 0 && append(out, outlen, &off, "&", 1) ==
			    -1) || append(out, outlen, &off, p, n) == -1)
				goto full;
		}
		if (*end == '\0')
			break;
	}
	/* nothing removed: hand the query on exactly as it came */
	if (removed == 0) {
		off = 0;
		if (append(out, outlen, &off, query, strlen(query)) == -1)
			goto full;
	}
	return removed;
 full:
	out[0] = '\0';
	if (key != NULL && keylen > 0)
		key[0] = '\0';
	return -1;
}

static int
in_list(const char *const *list, size_t n, const char *name)
{
	size_t	i;

	if (name == NULL)
		return 0;
	for (i = 0; i < n; i++)
		if (ieq(name, list[i]))
			return 1;
	return 0;
}

int
policy_drop_request_header(const char *name)
{
	return in_list(drop_request, NELEM(drop_request), name);
}

int
policy_drop_response_header(const char *name)
{
	return in_list(drop_response, NELEM(drop_response), name);
}

int
policy_header_value_bad(const char *value, size_t len)
{
	size_t	i;

	if (value == NULL)
		return len != 0;
	for (i = 0; i < len; i++)
		if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
			return 1;
	return 0;
}

int
policy_connection_lists(const char *value, const char *name)
{
	const char	*p, *end, *e;

	if (value == NULL || name == NULL || *name == '\0')
		return 0;
	for (p = value;; p = end + 1) {
		if ((end = strchr(p, ',')) == NULL)
			end = p + strlen(p);
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		e = end;
		while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > p && ieqn(p, e - p, name))
			return 1;
		if (*end == '\0')
			return 0;
	}
}

/* the token of "Bearer <token>" (scheme case-insensitive), or NULL */
static const char *
bearer_token(const char *authz)
{
	const char	*p;

	if (strlen(authz) < 7 || !ieqn(authz, 6, "bearer") || authz[6] != ' ')
		return NULL;
	for (p = authz + 6; *p == ' '; p++)
		;
	return *p != '\0' ? p : NULL;
}

/*
 * 1 if tok is a user's JWT: not an sb_ key, not the client's apikey, a
 * JWT whose unverified role is not one of the API key roles.
 */
static int
is_client_token(const char *tok, const char *client_key)
{
	struct jwt_claims	c;
	size_t			n = strlen(tok);

	if (n == 0)
		return 0;
	if (n >= 3 && ieqn(tok, 3, "sb_"))
		return 0;
	if (client_key != NULL && strcmp(tok, client_key) == 0)
		return 0;
	/*
	 * A client that sent an apikey and a different bearer token sent
	 * its own credential, even a malformed one: upstream rejects it,
	 * as it would without supagate, rather than supagate quietly
	 * turning it into anonymous access.  Without an apikey, a token
	 * that is not even shaped like a JWT is the placeholder.
	 */
	if (!jwt_looks_like(tok, n))
		return client_key != NULL;
	memset(&c, 0, sizeof(c));
	if (jwt_decode(tok, n, &c) == -1)
		return 1;
	c.role[sizeof(c.role) - 1] = '\0';
	if (strcmp(c.role, "anon") == 0 || strcmp(c.role, "service_role") == 0)
		return 0;
	return 1;
}

int
policy_client_token_ok(const struct conf *conf, const char *apikey,
    const char *query_key, const char *authz)
{
	const char	*tok = apikey;
	unsigned char	 d[32];
	size_t		 i;
	int		 ok = 0;

	if (conf == NULL || conf->ntokens == 0)
		return 1;
	if (tok == NULL)
		tok = query_key;
	if (tok == NULL && authz != NULL)
		tok = bearer_token(authz);
	if (tok == NULL || tok[0] == '\0')
		return 0;
	crypto_digest(tok, strlen(tok), d);
	for (i = 0; i < conf->ntokens; i++)
		ok |= crypto_memeq(d, conf->tokens[i].digest, sizeof(d));
	crypto_wipe(d, sizeof(d));
	return ok;
}

int
policy_authorization(const struct conf *conf, const char *authz,
    const char *client_key, char *buf, size_t buflen, const char **out)
{
	const char	*tok;
	size_t		 off = 0;

	if (out != NULL)
		*out = NULL;
	if (conf == NULL)
		return 0;
	if (authz != NULL && conf->client_auth == CONF_CLIENT_AUTH_PASS &&
	    !policy_header_value_bad(authz, strlen(authz)) &&
	    (tok = bearer_token(authz)) != NULL &&
	    is_client_token(tok, client_key)) {
		if (out != NULL)
			*out = authz;
		return 1;
	}
	if (!conf->apikey_is_jwt || conf->apikey == NULL ||
	    conf->apikey->buf == NULL || conf->apikey->len == 0)
		return 0;
	if (buf == NULL || buflen == 0 ||
	    append(buf, buflen, &off, "Bearer ", 7) == -1 ||
	    append(buf, buflen, &off, conf->apikey->buf,
	    conf->apikey->len) == -1) {
		if (buf != NULL && buflen > 0)
			buf[0] = '\0';
		return -1;
	}
	if (out != NULL)
		*out = buf;
	return 1;
}

/* 1 if the first bits of a equal those of net */
static int
prefix_match(const unsigned char *a, const unsigned char *net, int bits)
{
	int	full = bits / 8, rem = bits % 8;
	int	mask;

	if (memcmp(a, net, full) != 0)
		return 0;
	if (rem == 0)
		return 1;
	mask = (0xff << (8 - rem)) & 0xff;
	return (a[full] & mask) == (net[full] & mask);
}

/*
 * The peer as IPv4 (when it is one, or v4-mapped) and as IPv6 (v4
 * peers as ::ffff:a.b.c.d).  -1 for other families.
 */
static int
peer_addrs(const struct sockaddr *sa, unsigned char v4[4], int *has4,
    unsigned char v6[16])
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;

	*has4 = 0;
	switch (sa->sa_family) {
	case AF_INET:
		sin = (const struct sockaddr_in *)(const void *)sa;
		memcpy(v4, &sin->sin_addr, 4);
		memcpy(v6, v4mapped, 12);
		memcpy(v6 + 12, v4, 4);
		*has4 = 1;
		return 0;
	case AF_INET6:
		sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		memcpy(v6, &sin6->sin6_addr, 16);
		if (memcmp(v6, v4mapped, 12) == 0) {
			memcpy(v4, v6 + 12, 4);
			*has4 = 1;
		}
		return 0;
	}
	return -1;
}

int
policy_peer_is_loopback(const struct sockaddr *sa)
{
	static const unsigned char	 lo6[16] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1
	};
	unsigned char			 v4[4], v6[16];
	int				 has4;

	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_UNIX)
		return 1;
	if (peer_addrs(sa, v4, &has4, v6) == -1)
		return 0;
	if (has4)
		return v4[0] == 127;
	return memcmp(v6, lo6, 16) == 0;
}

int
policy_peer_ok(const struct conf *conf, const struct sockaddr *sa)
{
	const struct conf_cidr	*c;
	unsigned char		 v4[4], v6[16];
	size_t			 i;
	int			 has4;

	if (sa == NULL)
		return 0;
	if (policy_peer_is_loopback(sa))
		return 1;
	if (conf == NULL || conf->allow_from == NULL ||
	    peer_addrs(sa, v4, &has4, v6) == -1)
		return 0;
	for (i = 0; i < conf->nallow_from; i++) {
		c = &conf->allow_from[i];
		if (c->family == AF_INET && has4 &&
		    c->prefix >= 0 && c->prefix <= 32 &&
		    prefix_match(v4, c->addr, c->prefix))
			return 1;
		if (c->family == AF_INET6 &&
		    c->prefix >= 0 && c->prefix <= 128 &&
		    prefix_match(v6, c->addr, c->prefix))
			return 1;
	}
	return 0;
}

/* port after ':' in a Host header: 1 to 5 digits, 1..65535 */
static int
port_ok(const char *p)
{
	long	v = 0;
	int	n = 0;

	for (; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || ++n > 5)
			return 0;
		v = v * 10 + (*p - '0');
	}
	return n > 0 && v > 0 && v <= 65535;
}

/* a listen address that is a wildcard names nothing */
static int
is_unspecified(const char *host)
{
	struct in6_addr	a6;

	if (strcmp(host, "0.0.0.0") == 0)
		return 1;
	return inet_pton(AF_INET6, host, &a6) == 1 &&
	    IN6_IS_ADDR_UNSPECIFIED(&a6);
}

/* a6 against an address string, bracketed or not; 1 if the same */
static int
v6_eq(const struct in6_addr *a6, const char *s)
{
	struct in6_addr	b6;
	char		tmp[64];
	size_t		n = strlen(s);

	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		if (n - 2 >= sizeof(tmp))
			return 0;
		memcpy(tmp, s + 1, n - 2);
		tmp[n - 2] = '\0';
		s = tmp;
	}
	return inet_pton(AF_INET6, s, &b6) == 1 &&
	    memcmp(a6, &b6, sizeof(b6)) == 0;
}

static int
host_v6_ok(const struct conf *conf, const char *name)
{
	struct in6_addr	a6;
	size_t		i;

	if (inet_pton(AF_INET6, name, &a6) != 1)
		return 0;
	if (IN6_IS_ADDR_LOOPBACK(&a6))
		return 1;
	if (IN6_IS_ADDR_UNSPECIFIED(&a6) || conf == NULL)
		return 0;
	for (i = 0; i < conf->nlisten && i < CONF_LISTEN_MAX; i++)
		if (v6_eq(&a6, conf->listen[i].host))
			return 1;
	for (i = 0; conf->allow_host != NULL && i < conf->nallow_host; i++)
		if (conf->allow_host[i] != NULL &&
		    v6_eq(&a6, conf->allow_host[i]))
			return 1;
	return 0;
}

static int
host_name_ok(const struct conf *conf, const char *name)
{
	const char	*p;
	size_t		 i;

	for (p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' ||
		    *p == '_'))
			return 0;
	if (ieq(name, "localhost") || strcmp(name, "127.0.0.1") == 0)
		return 1;
	if (conf == NULL)
		return 0;
	for (i = 0; i < conf->nlisten && i < CONF_LISTEN_MAX; i++)
		if (!is_unspecified(conf->listen[i].host) &&
		    ieq(name, conf->listen[i].host))
			return 1;
	for (i = 0; conf->allow_host != NULL && i < conf->nallow_host; i++)
		if (conf->allow_host[i] != NULL &&
		    ieq(name, conf->allow_host[i]))
			return 1;
	return 0;
}

int
policy_host_ok(const struct conf *conf, const char *host)
{
	const char	*rest;
	char		 name[256];
	size_t		 n;
	int		 v6 = 0;

	if (host == NULL || *host == '\0')
		return 0;
	if (host[0] == '[') {
		if ((rest = strchr(host, ']')) == NULL)
			return 0;
		n = rest - (host + 1);
		if (n == 0 || n >= 64)
			return 0;
		memcpy(name, host + 1, n);
		rest++;
		v6 = 1;
	} else {
		if ((rest = strchr(host, ':')) == NULL)
			rest = host + strlen(host);
		n = rest - host;
		if (n == 0 || n >= sizeof(name))
			return 0;
		memcpy(name, host, n);
	}
	name[n] = '\0';
	if (*rest == ':') {
		if (!port_ok(rest + 1))
			return 0;
	} else if (*rest != '\0')
		return 0;
	return v6 ? host_v6_ok(conf, name) : host_name_ok(conf, name);
}

int
policy_origin_ok(const struct conf *conf, const char *origin)
{
	const char	*e;
	size_t		 i, n;

	if (origin == NULL)
		return 1;
	if (*origin == '\0' || conf == NULL || conf->allow_origin == NULL ||
	    policy_header_value_bad(origin, strlen(origin)))
		return 0;
	/*
	 * An origin is scheme://host[:port]: only scheme and host are
	 * case-insensitive, digits compare the same either way.  "null"
	 * (sandboxed frames, file: pages) passes only when listed.
	 */
	for (i = 0; i < conf->nallow_origin; i++) {
		if ((e = conf->allow_origin[i]) == NULL)
			continue;
		n = strlen(e);
		if (n > 0 && e[n - 1] == '/')
			n--;
		if (n > 0 && ieqn(e, n, origin))
			return 1;
	}
	return 0;
}

/* prefix match on segment boundaries unless the prefix ends in '/' */
static int
expose_match(const char *prefix, const char *path)
{
	size_t	n = strlen(prefix);

	if (n == 0 || strncmp(path, prefix, n) != 0)
		return 0;
	return prefix[n - 1] == '/' || path[n] == '\0' || path[n] == '/';
}

int
policy_expose_ok(const struct conf *conf, const char *method,
    const char *path)
{
	const struct conf_expose	*x;
	unsigned			 bit;
	size_t				 i;

	if (conf == NULL || path == NULL)
		return 0;
	if (conf->nexpose == 0 || conf->expose == NULL)
		return conf->auth_mode != CONF_AUTH_SERVICE;
	if ((bit = policy_method_bit(method)) == 0)
		return 0;
	for (i = 0; i < conf->nexpose; i++) {
		x = &conf->expose[i];
		if ((x->methods & bit) && x->prefix != NULL &&
		    expose_match(x->prefix, path))
			return 1;
	}
	return 0;
}

unsigned
policy_method_bit(const char *name)
{
	size_t	i;

	if (name == NULL)
		return 0;
	for (i = 0; i < NELEM(methods); i++)
		if (strcmp(name, methods[i].name) == 0)
			return methods[i].bit;
	return 0;
}

int
policy_head_next(const char **pp, struct head_line *l)
{
	const char	*p = *pp, *eol, *colon, *v;
	size_t		 llen;

	for (; *p != '\0'; p = eol + (*eol != '\0')) {
		if ((eol = strchr(p, '\n')) == NULL)
			eol = p + strlen(p);
		llen = eol - p;
		if (llen > 0 && p[llen - 1] == '\r')
			llen--;
		if (llen == 0 || *p == ' ' || *p == '\t')
			continue;	/* blank or obsolete line folding */
		if ((colon = memchr(p, ':', llen)) == NULL || colon == p)
			continue;
		l->name = p;
		l->nlen = colon - p;
		for (v = colon + 1; v < p + llen && (*v == ' ' || *v == '\t');
		    v++)
			;
		l->value = v;
		for (l->vlen = p + llen - v; l->vlen > 0 &&
		    (v[l->vlen - 1] == ' ' || v[l->vlen - 1] == '\t');
		    l->vlen--)
			;
		*pp = eol + (*eol != '\0');
		return 1;
	}
	*pp = p;
	return 0;
}

int
policy_head_length(const char *block, uint64_t *len)
{
	char			 v[32], *end;
	unsigned long long	 n;

	if (policy_head_value(block, "Content-Length", v, sizeof(v)) != 0)
		return -1;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0')
		return -1;
	*len = n;
	return 0;
}

int
policy_head_value(const char *p, const char *name, char *out, size_t outlen)
{
	struct head_line	l;
	size_t			n = strlen(name);

	while (policy_head_next(&p, &l))
		if (l.nlen == n && strncasecmp(l.name, name, n) == 0) {
			if (l.vlen >= outlen)
				return -1;
			memcpy(out, l.value, l.vlen);
			out[l.vlen] = '\0';
			return 0;
		}
	return -1;
}
