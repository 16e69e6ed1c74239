/* conf: configuration file, environment defaults, credentials */
#ifndef SUPAGATE_CONF_H
#define SUPAGATE_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct jwk_set;
struct secret;

#define CONF_LISTEN_MAX	8

enum conf_auth_mode {
	CONF_AUTH_ANON,
	CONF_AUTH_SERVICE,
	CONF_AUTH_SESSION,
};

enum conf_client_auth {
	CONF_CLIENT_AUTH_PASS,
	CONF_CLIENT_AUTH_REPLACE,
};

/* the services supagate forwards; index into conf->svc_upstream */
enum conf_svc {
	CONF_SVC_REST,		/* /rest/v1 */
	CONF_SVC_AUTH,		/* /auth/v1 */
	CONF_SVC_STORAGE,	/* /storage/v1 */
	CONF_SVC_FUNCTIONS,	/* /functions/v1 */
	CONF_SVC_GRAPHQL,	/* /graphql/v1 (rest override: /rpc/graphql) */
	CONF_SVC__N
};

/* HTTP method bits for expose lines */
#define CONF_M_GET	0x001
#define CONF_M_HEAD	0x002
#define CONF_M_POST	0x004
#define CONF_M_PUT	0x008
#define CONF_M_PATCH	0x010
#define CONF_M_DELETE	0x020
#define CONF_M_OPTIONS	0x040
#define CONF_M_ALL	0x07f

#define CONF_UNIX_PATH_MAX	108	/* sizeof(sun_path) on Linux */
struct conf_listen {
	char	host[64];	/* numeric IPv4 or IPv6 address */
	int	port;		/* 0: ephemeral */
	char	path[CONF_UNIX_PATH_MAX];	/* unix:PATH; "" for TCP */
};

/* a line of client-tokens-file: NAME HEX (BLAKE2b-256 of the token) */
#define CONF_TOKEN_NAME_MAX	64
#define CONF_TOKENS_MAX		4096
struct conf_token {
	char		name[CONF_TOKEN_NAME_MAX + 1];
	unsigned char	digest[32];
};

struct conf_cidr {
	int		family;		/* AF_INET or AF_INET6 */
	unsigned char	addr[16];	/* network byte order, masked */
	int		prefix;
};

/* cache-ttl-for PREFIX DURATION */
struct conf_ttl {
	char		*prefix;
	uint64_t	 ttl_s;
};

/* cache-ttl-status STATUS DURATION */
struct conf_status_ttl {
	int		 status;
	uint64_t	 ttl_s;
};

struct conf_expose {
	unsigned	methods;	/* CONF_M_* bits */
	char		*prefix;	/* path prefix, starts with '/' */
};

struct conf {
	unsigned		refcnt;
	uint64_t		serial;		/* unique per conf_load */
	char			*file;		/* NULL: environment only */

	struct conf_listen	listen[CONF_LISTEN_MAX];
	size_t			nlisten;	/* default: 127.0.0.1:8787 */

	char			*upstream;	/* base URL, no trailing '/' */
	char			*svc_upstream[CONF_SVC__N]; /* root or NULL */

	enum conf_auth_mode	auth_mode;
	enum conf_client_auth	client_auth;
	char			*anon_key_file;
	char			*service_key_file;
	char			*jwt_secret_file;
	char			*jwt_jwks_file;
	int			 jwt_jwks_fetch; /* 1: from Auth */
	char			*client_tokens_file;
	char			*session_email;
	char			*session_password_file;
	char			*session_refresh_token_file;
	char			*state_dir;
	char			*ca_file;

	/* effective credentials, loaded by conf_load */
	struct secret		*apikey;	/* what goes upstream */
	int			 apikey_is_jwt;	/* legacy JWT: also Bearer */
	struct secret		*jwt_secret;	/* NULL if none */
	struct jwk_set		*jwks;		/* jwt-jwks-file or NULL */
	struct conf_token	*tokens;	/* client-tokens-file */
	size_t			 ntokens;	/* 0: no token needed */

	struct conf_expose	*expose;
	size_t			nexpose;
	struct conf_cidr	*allow_from;
	size_t			nallow_from;
	char			**allow_origin;
	size_t			nallow_origin;
	char			**allow_host;	/* extra Host names */
	size_t			nallow_host;

	uint64_t		cache_ttl_s;
	uint64_t		upstream_timeout_ms;	/* default 60 s */
	uint64_t		functions_timeout_ms;	/* default 150 s */
	uint64_t		connect_timeout_ms;	/* default 10 s */
	uint64_t		max_header_size;	/* default 32k */
	uint64_t		max_body_size;		/* default 10M */
	uint64_t		storage_max_body_size;	/* default 5G */
	uint64_t		max_connections;	/* default 1024 */
	uint64_t		max_connections_per_peer; /* default 256 */
	uint64_t		busy_poll_us;	/* default 50 */
	int			cache_off;	/* "cache off" */
	int			access_log_off;	/* "access-log off" */
	uint64_t		cache_max_size;
	uint64_t		cache_max_object;
	uint64_t		cache_memory;
	uint64_t		cache_swr_s;	/* stale-while-revalidate */
	uint64_t		cache_sie_s;	/* stale-if-error */
	char			**cache_rpc;	/* GET RPCs that may be cached */
	size_t			ncache_rpc;
	int			cache_rpc_keep;	/* POST RPC invalidates none */
	struct conf_ttl		*cache_ttl_for;	/* per-path lifetimes */
	size_t			ncache_ttl_for;
	struct conf_status_ttl	*cache_ttl_status; /* other statuses kept */
	size_t			ncache_ttl_status;
	int			cache_storage_public; /* 0 on, 1 off */
	double			sign_reuse_share;
};

/*
 * Parse file (or, if file is NULL, only the environment), apply the
 * environment fallbacks SUPABASE_URL and SUPABASE_KEY, run the
 * cross-field checks and load the credential files.  Every error is
 * printed to stderr as "file:line: message"; returns NULL if there was
 * any.  The result has refcnt 1.
 */
struct conf *conf_load(const char *file);
/* take a reference */
struct conf *conf_ref(struct conf *);
/* drop a reference; frees on the last one; NULL is a no-op */
void conf_unref(struct conf *);
/* 1 if s may name a client token: 1-64 of [A-Za-z0-9._-] */
int conf_token_name_ok(const char *);
/* print the effective configuration (secrets as [redacted]) */
void conf_dump(const struct conf *, FILE *);
/* parse "30s", "5m", "1h", "250ms", plain seconds; -1 on error */
int conf_parse_duration_ms(const char *, uint64_t *);
/* parse "64k", "100M", "1G", plain bytes; -1 on error */
int conf_parse_size(const char *, uint64_t *);

#endif
