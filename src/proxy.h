/* proxy: the per-request state machine between a client and upstream */
#ifndef SUPAGATE_PROXY_H
#define SUPAGATE_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "policy.h"
#include "upstream.h"

#define REQUEST_MAGIC	0x72657175u

struct conf;
struct sockaddr;

/* what the client side should do next with a request */
enum proxy_next {
	PROXY_WAIT,		/* suspend until server_wake() */
	PROXY_RESPOND,		/* a response (error or upstream head) is ready */
	PROXY_CONTINUE,		/* keep reading the request body */
};

/* the outcome of reading response body bytes */
#define PROXY_BODY_WAIT	((long)0)
#define PROXY_BODY_END	((long)-1)
#define PROXY_BODY_ERR	((long)-2)

struct request {
	unsigned		 magic;
	uint64_t		 id;
	struct conf		*conf;		/* reference held */
	void			*conn;		/* the server's connection */
	char			*target;	/* raw request target */
	char			*path;		/* target up to '?' */
	const char		*query;		/* after '?', or "" */
	char			 method[16];
	enum policy_route	 route;
	int64_t			 start_ms;

	/* request body */
	int			 has_body;
	int64_t			 body_len;	/* -1: chunked */
	uint64_t		 body_seen;
	uint64_t		 body_max;
	int			 body_done;
	struct ring		 reqbuf;
	struct sbuf		 replay;	/* the body sent so far, if small */
	size_t			 replay_pos;	/* resending from replay */
	int			 replaying;

	/* upstream */
	struct upstream_xfer	*xfer;
	int			 up_read_paused;
	int			 up_write_paused;
	int			 up_over;
	enum upstream_result	 up_result;
	int64_t			 up_start_ms;
	int64_t			 progress_ms;	/* last upstream activity */
	int64_t			 timeout_ms;
	struct ring		 respbuf;
	uint64_t		 resp_bytes;

	/* the response */
	int			 status;
	struct sbuf		 head;		/* upstream header lines */
	int			 head_ready;
	int			 is_error;	/* a JSON error of ours */
	struct sbuf		 errbody;
	int			 body_fd;	/* or a body in this file */
	uint64_t		 body_fd_len;
	int			 answered;	/* response handed to server */
	int			 client_gone;	/* the client hung up */
	char			*authz;		/* Authorization sent upstream */
	int			 authz_session;	/* authz holds the session's token */
	int			 authz_own;	/* authz is supagate's own key */
	int			 session_wait;	/* waiting for a sign-in/refresh */
	int			 session_ready;	/* ... which has ended */
	int			 replay_pending; /* 401: send again when over */
	int			 replayed;	/* sent again once already */

	/* the read cache (proxy_cache.c) */
	struct proxy_cache	*cache;		/* NULL: not a cacheable read */
	struct proxy_broker	*broker;	/* storage requests */
	int			 broker_held;	/* body held for the broker */
	const char		*cache_result;	/* HIT MISS STALE PASS */
	int			 cache_wait;	/* waiting for an identical miss */
	int			 detached;	/* a background refresh: no client */

	struct request		*next, *prev;	/* in the active list */
};

int proxy_setup(void);
void proxy_teardown(void);

/* a new request for target; NULL on ENOMEM */
struct request *proxy_new(const char *target);
/* the request is over (sent, failed or abandoned): release everything */
void proxy_free(struct request *);
/*
 * Headers are in: check the request, access policy, route and limits,
 * and start the upstream transfer.  version is "HTTP/1.1" etc., peer
 * the client address.
 */
enum proxy_next proxy_begin(struct request *, const char *method,
    const char *version, const struct sockaddr *peer);
/* request body bytes; *n is set to what was taken (0 means buffer full) */
enum proxy_next proxy_body(struct request *, const char *, size_t *n);
/* the client's body is complete */
enum proxy_next proxy_body_end(struct request *);
/* after a wake-up: is the response ready? */
enum proxy_next proxy_poll(struct request *);
/* response body bytes for the client; see PROXY_BODY_* */
long proxy_read(struct request *, char *, size_t);
/*
 * Make r a local answer (health, metrics, purge, the broker's, a CORS
 * preflight): status and a no-store Content-Type line added to r->head;
 * the body goes to r->errbody
 */
void proxy_local(struct request *, int status, const char *type);
/* set a JSON error response {"code","message"} */
void proxy_error(struct request *, int status, const char *code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* requests in flight */
size_t proxy_inflight(void);
/* enforce upstream idle timeouts; called periodically */
void proxy_sweep(int64_t now_ms);
/*
 * Refetch src's (stale) cache entry in the background: a request with
 * no client whose answer only goes to the cache.  0 if started.
 */
int proxy_refresh(struct request *src);
/* the client closed its connection: stop the upstream transfer */
void proxy_client_gone(struct request *);
/* shutting down: stop every upstream transfer and wake every client */
void proxy_abort_all(void);
/* the effective configuration for new requests */
void proxy_set_conf(struct conf *);
struct conf *proxy_conf(void);

#endif
