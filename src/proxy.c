/* proxy: the per-request state machine between a client and upstream */
#include "config.h"

#include <sys/socket.h>

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "crypto.h"
#include "evloop.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "proxy.h"
#include "proxy_broker.h"
#include "proxy_cache.h"
#include "server.h"
#include "session.h"
#include "upstream.h"

#define PROXY_RING_SIZE		(256 * 1024)
#define PROXY_RING_MIN		4096
#define PROXY_HEAD_MAX		(64 * 1024)
#define PROXY_LOCAL_MAX		(1024 * 1024)
#define PROXY_URL_MAX		16384
#define PROXY_SWEEP_MS		250
#define PROXY_REPLAY_MAX	(64 * 1024)
#define PROXY_USER_AGENT	PACKAGE_NAME "/" PACKAGE_VERSION

static struct conf		*cur_conf;
static struct request		*active;
static size_t			 nactive;
static uint64_t			 next_id = 1;
static struct evloop_timer	 sweep_timer;

static void	sweep_cb(void *);
static enum proxy_next dispatch(struct request *);
static enum proxy_next start_upstream(struct request *);
static enum proxy_next with_authz(struct request *,
		    enum proxy_next (*)(struct request *));

int
proxy_setup(void)
{
	sweep_timer.due_ms = -1;
	evloop_timer_arm(&sweep_timer, PROXY_SWEEP_MS, sweep_cb, NULL);
	return 0;
}

void
proxy_teardown(void)
{
	evloop_timer_disarm(&sweep_timer);
	conf_unref(cur_conf);
	cur_conf = NULL;
}

void
proxy_client_gone(struct request *r)
{
	assert(r->magic == REQUEST_MAGIC);
	r->client_gone = 1;
	if (r->xfer != NULL) {
		upstream_abort(r->xfer);
		r->xfer = NULL;
		r->up_over = 1;
		r->up_result = UPSTREAM_ERR_ABORTED;
	}
	/* an answer nobody reads; it lets the server close the connection */
	if (!r->head_ready && !r->is_error)
		proxy_error(r, 503, "client_gone", "the client hung up");
}

void
proxy_abort_all(void)
{
	struct request	*r, *next;

	for (r = active; r != NULL; r = next) {
		next = r->next;
		if (r->detached) {
			proxy_cache_done(r, UPSTREAM_ERR_ABORTED);
			proxy_free(r);
			continue;
		}
		if (r->xfer != NULL) {
			upstream_abort(r->xfer);
			r->xfer = NULL;
			r->up_over = 1;
			r->up_result = UPSTREAM_ERR_ABORTED;
			if (!r->head_ready && !r->is_error)
				proxy_error(r, 503, "overloaded",
				    "supagate is shutting down");
		}
		server_wake(r);
	}
}

void
proxy_set_conf(struct conf *c)
{
	struct conf	*old = cur_conf;

	cur_conf = conf_ref(c);
	conf_unref(old);
}

struct conf *
proxy_conf(void)
{
	return cur_conf;
}

size_t
proxy_inflight(void)
{
	return nactive;
}

struct request *
proxy_new(const char *target)
{
	struct request	*r;
	char		*q;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->magic = REQUEST_MAGIC;
	r->id = next_id++;
	r->start_ms = evloop_now_ms();
	r->route = POLICY_ROUTE_NONE;
	r->body_fd = -1;
	r->conf = conf_ref(cur_conf);
	sbuf_init(&r->head, PROXY_HEAD_MAX);
	sbuf_init(&r->errbody, PROXY_LOCAL_MAX);
	sbuf_init(&r->replay, PROXY_REPLAY_MAX);
	if ((r->target = strdup(target)) == NULL ||
	    (r->path = strdup(target)) == NULL) {
		free(r->target);
		conf_unref(r->conf);
		free(r);
		return NULL;
	}
	if ((q = strchr(r->path, '?')) != NULL) {
		*q = '\0';
		r->query = r->target + (q - r->path) + 1;
	} else
		r->query = "";
	r->next = active;
	if (active != NULL)
		active->prev = r;
	active = r;
	nactive++;
	metrics.inflight = (int64_t)nactive;
	return r;
}

/*
 * The query for the access log: values of credential-like parameters
 * are replaced by [redacted].
 */
static void
redact_query(const char *q, struct sbuf *out)
{
	static const char *secret_names[] = {
		"apikey", "token", "access_token", "refresh_token",
		"password", "token_hash", "code", "signature", NULL
	};
	const char	*p = q, *amp, *eq;
	size_t		 nlen, i;
	int		 hide;

	while (*p != '\0') {
		amp = strchr(p, '&');
		if (amp == NULL)
			amp = p + strlen(p);
		eq = memchr(p, '=', amp - p);
		nlen = (eq != NULL ? eq : amp) - p;
		hide = 0;
		for (i = 0; secret_names[i] != NULL; i++)
			if (strlen(secret_names[i]) == nlen &&
			    strncasecmp(p, secret_names[i], nlen) == 0)
				hide = 1;
		if (out->len > 0)
			sbuf_add(out, "&", 1);
		if (hide && eq != NULL) {
			sbuf_add(out, p, nlen);
			sbuf_add(out, "=[redacted]", 11);
		} else
			sbuf_add(out, p, amp - p);
		p = *amp == '&' ? amp + 1 : amp;
	}
}

/* printable form of the path for logs: control bytes escaped */
static void
log_safe(const char *s, struct sbuf *out)
{
	char	esc[5];

	for (; *s != '\0'; s++) {
		unsigned char c = *s;

		if (c < 0x20 || c >= 0x7f || c == '"') {
			snprintf(esc, sizeof(esc), "\\x%02x", c);
			sbuf_add(out, esc, 4);
		} else
			sbuf_add(out, (const char *)&c, 1);
	}
}

/* the request's access log line */
static void
access_line(struct request *r, int status)
{
	struct sbuf	 line, q;
	int64_t		 up_ms;

	sbuf_init(&line, 8192);
	sbuf_init(&q, 8192);
	redact_query(r->query, &q);
	log_safe(r->path, &line);
	if (q.len > 0) {
		sbuf_add(&line, "?", 1);
		log_safe(sbuf_str(&q), &line);
	}
	up_ms = r->up_start_ms != 0 ? evloop_now_ms() - r->up_start_ms : -1;
	log_access("%" PRIu64 " %s %s%s %d cache=%s upstream_ms=%" PRId64
	    " bytes=%" PRIu64, r->id, r->method[0] ? r->method : "-",
	    sbuf_str(&line), line.overflow ? "..." : "", status,
	    r->cache_result != NULL ? r->cache_result : "PASS", up_ms,
	    r->resp_bytes);
	sbuf_fini(&line);
	sbuf_fini(&q);
}

void
proxy_free(struct request *r)
{
	int		 status;

	if (r == NULL)
		return;
	assert(r->magic == REQUEST_MAGIC);
	if (r->xfer != NULL) {
		upstream_abort(r->xfer);
		r->xfer = NULL;
	}
	proxy_cache_free(r);
	proxy_broker_free(r);
	if (r->session_wait)
		session_unwait(r);
	if (r->authz != NULL) {
		explicit_bzero(r->authz, strlen(r->authz));
		free(r->authz);
	}
	status = r->answered && !r->client_gone ? r->status : 499;
	metrics_request(r->route, status);

	if (!r->conf->access_log_off)
		access_line(r, status);

	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		active = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	nactive--;
	metrics.inflight = (int64_t)nactive;

	ring_fini(&r->reqbuf);
	ring_fini(&r->respbuf);
	sbuf_fini(&r->head);
	sbuf_fini(&r->errbody);
	if (r->body_fd != -1)
		close(r->body_fd);
	sbuf_fini(&r->replay);
	conf_unref(r->conf);
	free(r->target);
	free(r->path);
	r->magic = 0;
	free(r);
}

void
proxy_error(struct request *r, int status, const char *code,
    const char *fmt, ...)
{
	char	msg[512];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->status = status;
	r->is_error = 1;
	r->head.len = 0;
	r->errbody.len = 0;
	r->errbody.overflow = 0;
	sbuf_add(&r->head, "Content-Type: application/json\r\n", 32);
	if (status == 503)
		sbuf_add(&r->head, "Retry-After: 1\r\n", 16);
	sbuf_add(&r->errbody, "{\"code\":", 8);
	sbuf_json_str(&r->errbody, code);
	sbuf_add(&r->errbody, ",\"message\":", 11);
	sbuf_json_str(&r->errbody, msg);
	sbuf_add(&r->errbody, "}", 1);
}

void
proxy_local(struct request *r, int status, const char *type)
{
	r->status = status;
	r->is_error = 1;
	sbuf_printf(&r->head, "Content-Type: %s\r\nCache-Control: no-store"
	    "\r\n", type);
}

static const char *
auth_mode_name(enum conf_auth_mode m)
{
	switch (m) {
	case CONF_AUTH_ANON:
		return "anon";
	case CONF_AUTH_SERVICE:
		return "service";
	default:
		return "session";
	}
}

static enum proxy_next
admin(struct request *r, const struct sockaddr *peer)
{
	const char	*sub = r->path + strlen("/_supagate");
	int		 purge = strcmp(sub, "/purge") == 0, ready;
	uint64_t	 caught, empty;

	if (!policy_peer_is_loopback(peer)) {
		proxy_error(r, 403, "forbidden",
		    "admin endpoints answer loopback clients only");
		return PROXY_RESPOND;
	}
	if (strcmp(sub, "/health") != 0 && strcmp(sub, "/metrics") != 0 &&
	    !purge) {
		proxy_error(r, 404, "not_found", "no such admin endpoint");
		return PROXY_RESPOND;
	}
	if (purge ? strcmp(r->method, "POST") != 0 :
	    strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
		proxy_error(r, 405, "method_not_allowed",
		    purge ? "use POST" : "use GET or HEAD");
		if (purge)
			sbuf_add(&r->head, "Allow: POST\r\n", 13);
		else
			sbuf_add(&r->head, "Allow: GET, HEAD\r\n", 18);
		return PROXY_RESPOND;
	}
	if (purge) {
		proxy_cache_purge(r);
		return PROXY_RESPOND;
	}
	if (strcmp(sub, "/health") == 0) {
		/* not ready while session mode has no usable session */
		ready = r->conf->auth_mode != CONF_AUTH_SESSION ||
		    session_usable();
		proxy_local(r, ready ? 200 : 503, "application/json");
		sbuf_printf(&r->errbody, "{\"status\":\"%s\",\"version\":"
		    "\"%s\",\"auth_mode\":\"%s\",\"session\":{",
		    ready ? "ok" : "unavailable", PACKAGE_VERSION,
		    auth_mode_name(r->conf->auth_mode));
		session_health(&r->errbody);
		sbuf_add(&r->errbody, "},", 2);
		proxy_cache_flush();
		proxy_cache_health(&r->errbody);
		sbuf_printf(&r->errbody, ",\"inflight\":%zu,\"connections\":%zu,"
		    "\"upstream_transfers\":%zu}", nactive,
		    server_connections(), upstream_active());
	} else {
		proxy_local(r, 200, "text/plain; version=0.0.4");
		proxy_cache_flush();
		metrics.connections = (int64_t)server_connections();
		evloop_busy_poll_counts(&caught, &empty);
		metrics.busy_poll_catches = (int64_t)caught;
		metrics.busy_poll_empty = (int64_t)empty;
		if (metrics_render(&r->errbody) != 0) {
			proxy_error(r, 500, "internal_error",
			    "metrics output too large");
		}
	}
	return PROXY_RESPOND;
}

static int
method_known(const char *m)
{
	return policy_method_bit(m) != 0;
}

static int
method_token_ok(const char *m)
{
	const char	*p;

	if (*m == '\0')
		return 0;
	for (p = m; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && strchr("!#$%&'*+-.^_`|~",
		    *p) == NULL)
			return 0;
	return 1;
}

struct hdr_walk {
	struct request	*r;
	const char	*connection;
	char		**lines;
	size_t		 n, cap;
	uint64_t	 bytes;
	int		 bad;
	int		 graphql_profile;
};

static int
add_line(struct hdr_walk *w, const char *name, const char *value)
{
	char	**nl;
	size_t	  len;

	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 32;
		if ((nl = realloc(w->lines, w->cap * sizeof(*nl))) == NULL)
			return -1;
		w->lines = nl;
	}
	len = strlen(name) + strlen(value) + 3;
	if ((w->lines[w->n] = malloc(len)) == NULL)
		return -1;
	/* curl sends "Name;" for a header with an empty value */
	if (*value == '\0')
		snprintf(w->lines[w->n], len, "%s;", name);
	else
		snprintf(w->lines[w->n], len, "%s: %s", name, value);
	w->n++;
	return 0;
}

static int
collect_header_cb(void *arg, const char *name, const char *value)
{
	struct hdr_walk	*w = arg;

	w->bytes += strlen(name) + strlen(value) + 4;
	if (policy_header_value_bad(value, strlen(value))) {
		w->bad = 1;
		return 1;
	}
	if (policy_drop_request_header(name))
		return 0;
	if (w->connection != NULL &&
	    policy_connection_lists(w->connection, name))
		return 0;
	if (w->graphql_profile && strcasecmp(name, "Content-Profile") == 0)
		return 0;
	return add_line(w, name, value) == 0 ? 0 : (w->bad = 2, 1);
}

static void
free_lines(struct hdr_walk *w)
{
	size_t	i;

	for (i = 0; i < w->n; i++) {
		/* lines may hold the key or a user token */
		explicit_bzero(w->lines[i], strlen(w->lines[i]));
		free(w->lines[i]);
	}
	free(w->lines);
	w->lines = NULL;
	w->n = w->cap = 0;
}

static uint64_t
body_limit(const struct conf *c, enum policy_route route)
{
	return route == POLICY_ROUTE_STORAGE ? c->storage_max_body_size :
	    c->max_body_size;
}

/*
 * May a 401 be answered by refreshing the session and sending the
 * request again?  Only once, only with the session's own token, only
 * for idempotent methods whose body supagate still holds, and only when
 * upstream says the token is invalid (PostgREST: WWW-Authenticate
 * invalid_token) or it is the Functions relay.
 */
static int
replayable(struct request *r, const char *hdrs, size_t len)
{
	char	v[512], *block;
	int	hint;

	if (!r->authz_session || r->replayed || r->detached)
		return 0;
	if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0 &&
	    strcmp(r->method, "OPTIONS") != 0 &&
	    strcmp(r->method, "DELETE") != 0 && strcmp(r->method, "PUT") != 0)
		return 0;
	if (r->has_body && r->replay.overflow)
		return 0;
	if (r->route == POLICY_ROUTE_FUNCTIONS)
		return 1;
	if ((block = strndup(hdrs, len)) == NULL)
		return 0;
	hint = policy_head_value(block, "WWW-Authenticate", v, sizeof(v)) ==
	    0 && strstr(v, "invalid_token") != NULL;
	free(block);
	return hint;
}

/* start a replay of r after a 401 (the old transfer is over) */
static void
replay(struct request *r)
{
	enum proxy_next	next;

	r->replay_pending = 0;
	r->replayed = 1;
	metrics.session_replays++;
	session_token_rejected(r->authz + 7);
	r->up_over = 0;
	r->up_result = UPSTREAM_OK;
	r->status = 0;
	r->head.len = 0;
	r->head.overflow = 0;
	r->respbuf.head = r->respbuf.len = 0;
	r->up_read_paused = r->up_write_paused = 0;
	r->replay_pos = 0;
	r->replaying = r->replay.len > 0;
	explicit_bzero(r->authz, strlen(r->authz));
	free(r->authz);
	r->authz = NULL;
	r->authz_session = 0;
	next = with_authz(r, start_upstream);
	if (next == PROXY_RESPOND || r->is_error)
		server_wake(r);
}

/*
 * The response body ring: no bigger than the body when its length is
 * known (curl hands over at most what is left of it), else
 * PROXY_RING_SIZE, which is more than one curl write callback brings.
 */
static size_t
resp_ring_size(struct request *r)
{
	uint64_t	n;

	if (strcmp(r->method, "HEAD") == 0 || r->status == 204 ||
	    r->status == 304)
		return PROXY_RING_MIN;
	/* with Transfer-Encoding too, Content-Length means nothing */
	if (strcasestr(sbuf_str(&r->head), "Transfer-Encoding:") != NULL ||
	    policy_head_length(sbuf_str(&r->head), &n) != 0 ||
	    n >= PROXY_RING_SIZE)
		return PROXY_RING_SIZE;
	return n < PROXY_RING_MIN ? PROXY_RING_MIN : (size_t)n;
}

static int
upstream_head_cb(void *arg, int status, const char *hdrs, size_t len)
{
	struct request	*r = arg;

	assert(r->magic == REQUEST_MAGIC);
	r->progress_ms = evloop_now_ms();
	metrics_upstream_latency(r->progress_ms - r->up_start_ms);
	if (r->is_error)	/* we answered already (413 mid-upload) */
		return -1;
	if (status >= 500 && !proxy_cache_keeps_status(r, status) &&
	    proxy_cache_stale(r, "5xx")) {
		server_wake(r);
		return -1;
	}
	if (status == 401 && replayable(r, hdrs, len)) {
		/*
		 * The session's token expired under us: refresh and send
		 * again, once this transfer is over (no new transfer may
		 * start from inside curl's callback).
		 */
		r->replay_pending = 1;
		return -1;
	}
	r->status = status;
	if (sbuf_add(&r->head, hdrs, len) != 0)
		return -1;
	if (proxy_broker_merging(r))
		return 0;	/* answered when the whole body is in */
	if (proxy_cache_revalidated(r, status)) {
		server_wake(r);
		return -1;	/* the stored object is still current */
	}
	proxy_broker_head(r);
	proxy_cache_head(r);
	/* a replay keeps its buffer */
	if (r->respbuf.data == NULL &&
	    ring_init(&r->respbuf, resp_ring_size(r)) != 0)
		return -1;
	r->head_ready = 1;
	server_wake(r);
	return 0;
}

static size_t
upstream_data_cb(void *arg, const char *p, size_t n)
{
	struct request	*r = arg;

	assert(r->magic == REQUEST_MAGIC);
	if (r->is_error)
		return UPSTREAM_ABORT;
	if (r->detached || proxy_broker_merging(r)) {
		/* a background refresh or a split batch: not for the client */
		r->progress_ms = evloop_now_ms();
		proxy_cache_data(r, p, n);
		proxy_broker_data(r, p, n);
		return n;
	}
	if (ring_space(&r->respbuf) < n) {
		r->up_write_paused = 1;
		return UPSTREAM_PAUSE;
	}
	r->progress_ms = evloop_now_ms();
	ring_put(&r->respbuf, p, n);
	proxy_cache_data(r, p, n);
	proxy_broker_data(r, p, n);
	server_wake(r);
	return n;
}

static size_t
upstream_read_cb(void *arg, char *p, size_t n)
{
	struct request	*r = arg;
	size_t		 got;

	assert(r->magic == REQUEST_MAGIC);
	if (r->is_error)
		return UPSTREAM_ABORT;
	if (r->replaying) {
		got = r->replay.len - r->replay_pos;
		if (got > n)
			got = n;
		memcpy(p, r->replay.s + r->replay_pos, got);
		r->replay_pos += got;
		if (r->replay_pos == r->replay.len)
			r->replaying = 0;
		if (got > 0)
			return got;
	}
	got = ring_get(&r->reqbuf, p, n);
	if (got > 0) {
		r->progress_ms = evloop_now_ms();
		metrics_bytes(METRICS_DIR_UPSTREAM, got);
		/* keep small bodies, so a retry can send them again */
		if (!r->replay.overflow && sbuf_add(&r->replay, p, got) != 0)
			sbuf_fini(&r->replay);
		/* the client may be suspended on a full buffer */
		server_wake(r);
		return got;
	}
	if (r->body_done)
		return 0;
	r->up_read_paused = 1;
	return UPSTREAM_PAUSE;
}

static int
upstream_rewind_cb(void *arg)
{
	struct request	*r = arg;

	assert(r->magic == REQUEST_MAGIC);
	/* sbuf_fini cleared overflow: check the bound as well */
	if (r->replay.overflow || r->replay.len != r->body_seen -
	    r->reqbuf.len)
		return -1;
	r->replay_pos = 0;
	r->replaying = r->replay.len > 0;
	return 0;
}

static void
fail_upstream(struct request *r, enum upstream_result res)
{
	if (res != UPSTREAM_ERR_NOMEM && proxy_cache_stale(r,
	    res == UPSTREAM_ERR_TIMEOUT ? "timeout" : "unavailable"))
		return;
	switch (res) {
	case UPSTREAM_ERR_TIMEOUT:
		metrics_upstream_error(r->route, METRICS_ERR_TIMEOUT);
		proxy_error(r, 504, "upstream_timeout",
		    "the %s upstream did not answer in time",
		    policy_route_name(r->route));
		break;
	case UPSTREAM_ERR_NOMEM:
		proxy_error(r, 503, "overloaded", "out of memory");
		break;
	case UPSTREAM_ERR_CONNECT:
		metrics_upstream_error(r->route, METRICS_ERR_CONNECT);
		proxy_error(r, 502, "upstream_unavailable",
		    "the %s upstream could not be reached",
		    policy_route_name(r->route));
		break;
	default:
		metrics_upstream_error(r->route, METRICS_ERR_PROTOCOL);
		proxy_error(r, 502, "upstream_unavailable",
		    "the %s upstream sent an invalid or incomplete response",
		    policy_route_name(r->route));
		break;
	}
}

static void
upstream_done_cb(void *arg, enum upstream_result res)
{
	struct request	*r = arg;

	assert(r->magic == REQUEST_MAGIC);
	r->xfer = NULL;
	r->up_over = 1;
	r->up_result = res;
	if (r->replay_pending) {
		replay(r);
		return;
	}
	proxy_broker_done(r, res);
	proxy_cache_done(r, res);
	if (r->detached) {
		if (res != UPSTREAM_OK)
			metrics_upstream_error(r->route,
			    res == UPSTREAM_ERR_TIMEOUT ? METRICS_ERR_TIMEOUT :
			    METRICS_ERR_CONNECT);
		r->answered = res == UPSTREAM_OK && r->head_ready;
		proxy_free(r);
		return;
	}
	if (res == UPSTREAM_ERR_ABORTED && r->is_error) {
		/* our own answer (e.g. 413) stands */
	} else if (!r->head_ready && !r->is_error)
		fail_upstream(r, res);
	else if (res != UPSTREAM_OK) {
		metrics_upstream_error(r->route, res == UPSTREAM_ERR_TIMEOUT ?
		    METRICS_ERR_TIMEOUT : METRICS_ERR_PROTOCOL);
		log_warnx("%" PRIu64 " %s upstream failed mid-response",
		    r->id, policy_route_name(r->route));
	}
	server_wake(r);
}

static const struct upstream_cbs proxy_upstream_cbs = {
	upstream_head_cb, upstream_data_cb, upstream_read_cb,
	upstream_rewind_cb, upstream_done_cb
};

static void
sweep_cb(void *arg)
{
	(void)arg;
	proxy_sweep(evloop_now_ms());
	evloop_timer_arm(&sweep_timer, PROXY_SWEEP_MS, sweep_cb, NULL);
}

void
proxy_sweep(int64_t now)
{
	struct request	*r, *next;

	for (r = active; r != NULL; r = next) {
		next = r->next;
		if (r->xfer == NULL || r->timeout_ms <= 0)
			continue;
		/* waiting on the client is not upstream's fault */
		if (r->up_write_paused || (r->up_read_paused && !r->body_done))
			continue;
		if (now - r->progress_ms < r->timeout_ms)
			continue;
		upstream_abort(r->xfer);
		r->xfer = NULL;
		r->up_over = 1;
		r->up_result = UPSTREAM_ERR_TIMEOUT;
		if (r->detached) {
			metrics_upstream_error(r->route, METRICS_ERR_TIMEOUT);
			proxy_cache_done(r, UPSTREAM_ERR_TIMEOUT);
			proxy_free(r);
			continue;
		}
		if (!r->head_ready && !r->is_error)
			fail_upstream(r, UPSTREAM_ERR_TIMEOUT);
		else
			metrics_upstream_error(r->route, METRICS_ERR_TIMEOUT);
		server_wake(r);
	}
}

static enum proxy_next
start_upstream(struct request *r)
{
	const struct conf	*c = r->conf;
	struct hdr_walk		 w;
	struct upstream_req	 rq;
	char			*url = NULL, *query = NULL;
	const char		*sub;
	int			 nkeys;
	enum proxy_next		 next = PROXY_RESPOND;

	memset(&w, 0, sizeof(w));
	w.r = r;
	w.connection = server_header(r, "Connection");
	w.graphql_profile = r->route == POLICY_ROUTE_GRAPHQL &&
	    c->svc_upstream[CONF_SVC_REST] != NULL &&
	    c->svc_upstream[CONF_SVC_GRAPHQL] == NULL;

	if ((query = malloc(strlen(r->query) + 1)) == NULL ||
	    (url = malloc(PROXY_URL_MAX)) == NULL)
		goto nomem;
	nkeys = policy_strip_apikey(r->query, query, strlen(r->query) + 1,
	    NULL, 0);
	if (nkeys < 0) {
		proxy_error(r, 400, "bad_request", "malformed query string");
		goto out;
	}
	policy_route_of(r->path, &sub);
	if (policy_upstream_url(c, r->route, r->path, sub, query, url,
	    PROXY_URL_MAX) != 0) {
		metrics_upstream_error(r->route, METRICS_ERR_CONNECT);
		proxy_error(r, 502, "upstream_unavailable",
		    "no upstream is configured for %s",
		    policy_route_name(r->route));
		goto out;
	}

	if (server_header_each(r, collect_header_cb, &w) != 0 || w.bad) {
		if (w.bad == 2)
			goto nomem;
		proxy_error(r, 400, "bad_request",
		    "invalid character in a header value");
		goto out;
	}
	if (w.bytes > c->max_header_size) {
		proxy_error(r, 431, "headers_too_large",
		    "request headers exceed %" PRIu64 " bytes",
		    c->max_header_size);
		goto out;
	}
	if (add_line(&w, "apikey", c->apikey->buf) != 0 ||
	    (r->authz != NULL && add_line(&w, "Authorization", r->authz) != 0))
		goto nomem;
	if (w.graphql_profile &&
	    add_line(&w, "Content-Profile", "graphql_public") != 0)
		goto nomem;
	if (proxy_cache_if_none_match(r) != NULL &&
	    add_line(&w, "If-None-Match", proxy_cache_if_none_match(r)) != 0)
		goto nomem;

	memset(&rq, 0, sizeof(rq));
	rq.method = r->method;
	rq.url = url;
	rq.headers = (const char *const *)w.lines;
	rq.nheaders = w.n;
	rq.has_body = r->has_body;
	rq.body_len = r->body_len;
	rq.connect_timeout_ms = (int64_t)c->connect_timeout_ms;
	rq.ca_file = c->ca_file;
	rq.user_agent = PROXY_USER_AGENT;
	/* a replay keeps its buffers (and the body bytes not yet sent) */
	if (r->has_body && r->reqbuf.data == NULL &&
	    ring_init(&r->reqbuf, PROXY_RING_SIZE) != 0)
		goto nomem;
	r->up_start_ms = r->progress_ms = evloop_now_ms();
	r->timeout_ms = (int64_t)(r->route == POLICY_ROUTE_FUNCTIONS ?
	    c->functions_timeout_ms : c->upstream_timeout_ms);
	if ((r->xfer = upstream_start(&rq, &proxy_upstream_cbs, r)) == NULL)
		goto nomem;
	next = r->has_body ? PROXY_CONTINUE : PROXY_WAIT;
	goto out;
 nomem:
	proxy_error(r, 503, "overloaded", "out of memory");
 out:
	free_lines(&w);
	free(url);
	free(query);
	return next;
}

static void
session_wake_cb(void *arg)
{
	struct request	*r = arg;

	assert(r->magic == REQUEST_MAGIC);
	r->session_ready = 1;
	server_wake(r);
}

/*
 * The first ?apikey= value of r's query (still percent-encoded) into
 * key[len]; how many there were, -1 on ENOMEM or one too long.
 */
static int
query_apikey(const struct request *r, char *key, size_t len)
{
	char	*q;
	int	 n;

	if ((q = malloc(strlen(r->query) + 1)) == NULL)
		return -1;
	n = policy_strip_apikey(r->query, q, strlen(r->query) + 1, key, len);
	free(q);
	return n;
}

/*
 * The Authorization that goes upstream (r->authz, NULL for none): the
 * client's own token, or supagate's (its key, or in session mode the
 * session's access token), as policy_authorization decides.  Returns
 * 0, -1 on ENOMEM, AUTHZ_WAIT while a sign-in or refresh is under way
 * (session_wake_cb wakes the request), AUTHZ_LOST without a session.
 */
#define AUTHZ_WAIT	1
#define AUTHZ_LOST	2
static int
decide_authz(struct request *r)
{
	const struct conf	*c = r->conf;
	const char		*client_key, *authz, *client_authz, *tok;
	char			 keybuf[512], *buf;
	size_t			 len = c->apikey->len + 16;
	int			 ret = -1, nkeys, wait, pol;

	nkeys = query_apikey(r, keybuf, sizeof(keybuf));
	client_key = server_header(r, "apikey");
	if (client_key == NULL && nkeys > 0)
		client_key = keybuf;
	client_authz = server_header(r, "Authorization");
	if ((buf = malloc(len)) == NULL)
		goto out;
	pol = policy_authorization(c, client_authz, client_key, buf, len,
	    &authz);
	if (pol == -1)
		goto out;
	if (c->auth_mode == CONF_AUTH_SESSION &&
	    !(pol == 1 && authz == client_authz)) {
		/* supagate's credential: the session's access token */
		if ((tok = session_token(session_wake_cb, r, &wait)) == NULL) {
			r->session_wait = wait;
			ret = wait ? AUTHZ_WAIT : AUTHZ_LOST;
			goto out;
		}
		if ((r->authz = malloc(strlen(tok) + 8)) == NULL)
			goto out;
		snprintf(r->authz, strlen(tok) + 8, "Bearer %s", tok);
		r->authz_session = 1;
	} else if (pol == 1) {
		if ((r->authz = strdup(authz)) == NULL)
			goto out;
		r->authz_own = authz != client_authz;
	}
	ret = 0;
 out:
	if (buf != NULL) {
		explicit_bzero(buf, len);
		free(buf);
	}
	explicit_bzero(keybuf, sizeof(keybuf));
	return ret;
}

/* client-tokens-file: did the client present one of the tokens? */
static int
client_token_ok(struct request *r)
{
	char	 keybuf[512];
	int	 ok;

	ok = policy_client_token_ok(r->conf, server_header(r, "apikey"),
	    query_apikey(r, keybuf, sizeof(keybuf)) > 0 ? keybuf : NULL,
	    server_header(r, "Authorization"));
	explicit_bzero(keybuf, sizeof(keybuf));
	return ok;
}

/* the credential is settled or not: answer, wait, or go on with next */
static enum proxy_next
with_authz(struct request *r, enum proxy_next (*next)(struct request *))
{
	switch (decide_authz(r)) {
	case 0:
		return next(r);
	case AUTHZ_WAIT:
		return PROXY_WAIT;
	case AUTHZ_LOST:
		if (session_state() == SESSION_FAILED)
			proxy_error(r, 503, "session_lost", "supagate has no "
			    "valid session; sign in again with supagate login");
		else
			proxy_error(r, 503, "session_lost", "no valid session "
			    "token right now (Auth refuses or cannot be "
			    "reached); supagate keeps trying, retry later");
		return PROXY_RESPOND;
	default:
		proxy_error(r, 503, "overloaded", "out of memory");
		return PROXY_RESPOND;
	}
}

int
proxy_refresh(struct request *src)
{
	struct request	*d;
	enum proxy_next	 next;

	if ((d = proxy_new(src->target)) == NULL)
		return -1;
	snprintf(d->method, sizeof(d->method), "GET");
	d->route = src->route;
	d->detached = 1;
	d->body_done = 1;
	d->cache_result = "REFRESH";
	if ((src->authz != NULL && (d->authz = strdup(src->authz)) == NULL) ||
	    proxy_cache_adopt(d, src) != 0) {
		proxy_free(d);
		return -1;
	}
	/* the client's headers are read now, while its request lives */
	d->conn = src->conn;
	next = start_upstream(d);
	d->conn = NULL;
	if (next == PROXY_RESPOND) {
		proxy_free(d);
		return -1;
	}
	return 0;
}

/* after the checks: the cache, or upstream */
static enum proxy_next
dispatch(struct request *r)
{
	switch (proxy_broker_begin(r)) {
	case 1:
		/* a sign request: its small body decides, hold it first */
		r->broker_held = 1;
		return r->body_done ? proxy_body_end(r) : PROXY_CONTINUE;
	case -1:
		proxy_error(r, 503, "overloaded", "out of memory");
		return PROXY_RESPOND;
	}
	switch (proxy_cache_begin(r)) {
	case PC_ANSWERED:
		return PROXY_RESPOND;
	case PC_WAIT:
		r->cache_wait = 1;
		return PROXY_WAIT;
	case PC_UPSTREAM:
		break;
	}
	return start_upstream(r);
}

static int
parse_length(const char *s, int64_t *out)
{
	uint64_t	v = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v > INT64_MAX)
		return -1;
	*out = (int64_t)v;
	return 0;
}

static void
cors_headers(struct request *r, const char *origin)
{
	sbuf_add(&r->head, "Access-Control-Allow-Origin: ", 29);
	sbuf_add(&r->head, origin, strlen(origin));
	sbuf_add(&r->head, "\r\nVary: Origin\r\n", 16);
}

static int
cors_preflight(struct request *r, const char *origin)
{
	const char	*m = server_header(r, "Access-Control-Request-Method");
	const char	*h = server_header(r, "Access-Control-Request-Headers");

	if (origin == NULL || m == NULL || strcmp(r->method, "OPTIONS") != 0)
		return 0;
	proxy_local(r, 204, "text/plain");
	cors_headers(r, origin);
	sbuf_add(&r->head, "Access-Control-Allow-Methods: GET, HEAD, POST, "
	    "PUT, PATCH, DELETE, OPTIONS\r\nAccess-Control-Max-Age: 600\r\n",
	    105);
	if (h != NULL && !policy_header_value_bad(h, strlen(h)))
		sbuf_printf(&r->head, "Access-Control-Allow-Headers: %s\r\n",
		    h);
	return 1;
}

/*
 * An absolute-form target ("http://host:port/path") names its authority
 * in place of Host: check it, then continue with the origin form.
 */
static int
absolute_form(struct request *r, const struct conf *c)
{
	const char	*p = r->path, *auth, *slash;
	char		 host[256];
	size_t		 len, n;

	if (strncasecmp(p, "http://", 7) == 0)
		auth = p + 7;
	else if (strncasecmp(p, "https://", 8) == 0)
		auth = p + 8;
	else
		return 0;
	slash = strchr(auth, '/');
	len = slash != NULL ? (size_t)(slash - auth) : strlen(auth);
	if (len == 0 || len >= sizeof(host))
		return -1;
	memcpy(host, auth, len);
	host[len] = '\0';
	if (!policy_host_ok(c, host))
		return -1;
	/* shift path and target to the origin form */
	n = auth + len - p;
	if (slash == NULL) {
		r->path[0] = '/';
		r->path[1] = '\0';
	} else
		memmove(r->path, slash, strlen(slash) + 1);
	memmove(r->target, r->target + n, strlen(r->target + n) + 1);
	if (r->target[0] != '/') {
		/* "http://host?q": keep the query, give it a root path */
		memmove(r->target + 1, r->target, strlen(r->target) + 1);
		r->target[0] = '/';
	}
	r->query = strchr(r->target, '?') != NULL ?
	    strchr(r->target, '?') + 1 : "";
	return 1;
}

enum proxy_next
proxy_begin(struct request *r, const char *method, const char *version,
    const struct sockaddr *peer)
{
	const struct conf	*c = r->conf;
	const char		*why, *origin, *cl, *te, *host;
	int			 nhost, absolute;

	assert(r->magic == REQUEST_MAGIC);
	snprintf(r->method, sizeof(r->method), "%s", method);
	if (!method_token_ok(method) || strlen(method) >= sizeof(r->method)) {
		proxy_error(r, 400, "bad_request", "malformed method");
		return PROXY_RESPOND;
	}
	if (!policy_peer_ok(c, peer)) {
		proxy_error(r, 403, "forbidden", "this address may not use "
		    "supagate (see allow-from)");
		return PROXY_RESPOND;
	}
	if (server_header_each(r, NULL, NULL) == -2) {
		proxy_error(r, 400, "bad_request", "NUL byte in a header");
		return PROXY_RESPOND;
	}
	nhost = server_header_count(r, "Host");
	host = server_header(r, "Host");
	if (nhost > 1) {
		proxy_error(r, 400, "bad_request", "more than one Host header");
		return PROXY_RESPOND;
	}
	if (nhost == 0 && version != NULL &&
	    strcmp(version, "HTTP/1.0") != 0) {
		proxy_error(r, 400, "bad_request", "missing Host header");
		return PROXY_RESPOND;
	}
	/* HTTP/1.0 without Host: nothing names supagate, so it is refused */
	if ((absolute = absolute_form(r, c)) == -1 ||
	    (!absolute && !policy_host_ok(c, host))) {
		proxy_error(r, 403, "forbidden_host",
		    "the Host header does not name supagate");
		return PROXY_RESPOND;
	}
	origin = server_header(r, "Origin");
	if (!policy_origin_ok(c, origin)) {
		proxy_error(r, 403, "forbidden_origin",
		    "requests from this Origin are refused");
		return PROXY_RESPOND;
	}
	if (strcmp(method, "CONNECT") == 0 || strcmp(method, "TRACE") == 0) {
		proxy_error(r, 405, "method_not_allowed",
		    "method %s is not allowed", r->method);
		sbuf_add(&r->head, "Allow: GET, HEAD, POST, PUT, PATCH, "
		    "DELETE, OPTIONS\r\n", 52);
		return PROXY_RESPOND;
	}
	if (!method_known(method)) {
		proxy_error(r, 501, "not_implemented",
		    "method %s is not implemented", r->method);
		return PROXY_RESPOND;
	}
	if (policy_path_ok(r->path, &why) != 0) {
		proxy_error(r, 400, "bad_request", "invalid path: %s", why);
		return PROXY_RESPOND;
	}
	r->route = policy_route_of(r->path, NULL);
	if (r->route == POLICY_ROUTE_ADMIN)
		return admin(r, peer);
	if (r->route == POLICY_ROUTE_NONE) {
		proxy_error(r, 404, "not_found", "no route for this path");
		return PROXY_RESPOND;
	}
	if (cors_preflight(r, origin))
		return PROXY_RESPOND;
	if (c->ntokens > 0 && !client_token_ok(r)) {
		proxy_error(r, 401, "invalid_client_token", "this supagate "
		    "wants one of its client tokens as apikey (or as "
		    "Authorization: Bearer)");
		return PROXY_RESPOND;
	}
	if (!policy_expose_ok(c, r->method, r->path)) {
		proxy_error(r, 403, "forbidden",
		    "%s %s is not exposed by this supagate", r->method,
		    policy_route_name(r->route));
		return PROXY_RESPOND;
	}
	if (server_connections() > c->max_connections ||
	    server_peer_connections(r) > c->max_connections_per_peer) {
		metrics.rejected_overload++;
		proxy_error(r, 503, "overloaded",
		    "too many connections; retry later");
		return PROXY_RESPOND;
	}

	r->body_max = body_limit(c, r->route);
	cl = server_header(r, "Content-Length");
	te = server_header(r, "Transfer-Encoding");
	r->body_len = 0;
	if (te != NULL) {
		if (strcasecmp(te, "chunked") != 0 ||
		    server_header_count(r, "Transfer-Encoding") > 1) {
			proxy_error(r, 400, "bad_request",
			    "only Transfer-Encoding: chunked is supported");
			return PROXY_RESPOND;
		}
		r->has_body = 1;
		r->body_len = -1;
	} else if (cl != NULL) {
		if (server_header_count(r, "Content-Length") > 1 ||
		    parse_length(cl, &r->body_len) != 0) {
			proxy_error(r, 400, "bad_request",
			    "invalid Content-Length");
			return PROXY_RESPOND;
		}
		if ((uint64_t)r->body_len > r->body_max) {
			proxy_error(r, 413, "payload_too_large",
			    "the request body exceeds %" PRIu64 " bytes",
			    r->body_max);
			return PROXY_RESPOND;
		}
		r->has_body = r->body_len > 0 ||
		    (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
		    strcmp(method, "OPTIONS") != 0 &&
		    strcmp(method, "DELETE") != 0);
	}
	if (!r->has_body)
		r->body_done = 1;
	if (origin != NULL)
		cors_headers(r, origin);
	return with_authz(r, dispatch);
}

/*
 * A request that waited for the session goes on once it is woken: the
 * first attempt through the cache, a replay straight upstream.  Returns
 * PROXY_WAIT while it still waits.
 */
static enum proxy_next
session_resume(struct request *r)
{
	if (!r->session_ready)
		return PROXY_WAIT;
	r->session_wait = r->session_ready = 0;
	return with_authz(r, r->replayed ? start_upstream : dispatch);
}

enum proxy_next
proxy_body(struct request *r, const char *p, size_t *n)
{
	size_t		took;
	enum proxy_next	next;

	assert(r->magic == REQUEST_MAGIC);
	if (r->session_wait) {
		next = session_resume(r);
		if (next == PROXY_RESPOND)
			return PROXY_RESPOND;
		if (r->session_wait || r->xfer == NULL) {
			*n = 0;
			return PROXY_WAIT;
		}
	}
	if (r->is_error || r->up_over) {
		/* the answer is settled: drain and drop the rest */
		return PROXY_CONTINUE;
	}
	if (r->broker_held) {
		if (proxy_broker_body(r, p, *n) != 0) {
			proxy_error(r, 413, "payload_too_large",
			    "a sign request body this large is refused");
			return PROXY_CONTINUE;
		}
		r->body_seen += *n;
		return PROXY_CONTINUE;
	}
	if (r->body_seen + *n > r->body_max) {
		proxy_error(r, 413, "payload_too_large",
		    "the request body exceeds %" PRIu64 " bytes", r->body_max);
		if (r->xfer != NULL) {
			upstream_abort(r->xfer);
			r->xfer = NULL;
		}
		r->up_over = 1;
		/* the server drains the rest of the body, then answers */
		return PROXY_CONTINUE;
	}
	took = ring_put(&r->reqbuf, p, *n);
	r->body_seen += took;
	*n = took;
	(void)proxy_broker_body(r, p, took);	/* move/copy/remove JSON */
	if (took > 0 && r->up_read_paused && r->xfer != NULL) {
		r->up_read_paused = 0;
		upstream_unpause(r->xfer);
	}
	return took == 0 ? PROXY_WAIT : PROXY_CONTINUE;
}

enum proxy_next
proxy_body_end(struct request *r)
{
	assert(r->magic == REQUEST_MAGIC);
	r->body_done = 1;
	if (r->session_wait)
		return proxy_poll(r);
	if (r->broker_held && !r->is_error) {
		struct sbuf	*held;
		enum proxy_next	 next;

		r->broker_held = 0;
		if (proxy_broker_decide(r) == PROXY_RESPOND)
			return PROXY_RESPOND;
		/* not answered here: the held body goes upstream */
		held = proxy_broker_held_body(r);
		sbuf_fini(&r->replay);
		r->replay = *held;
		sbuf_init(held, 0);
		r->replay.max = r->replay.len;
		r->replay_pos = 0;
		r->replaying = r->replay.len > 0;
		r->body_len = (int64_t)r->replay.len;
		r->has_body = 1;
		next = start_upstream(r);
		if (next == PROXY_RESPOND)
			return PROXY_RESPOND;
		return PROXY_WAIT;
	}
	if (r->up_read_paused && r->xfer != NULL) {
		r->up_read_paused = 0;
		upstream_unpause(r->xfer);
	}
	return proxy_poll(r);
}

enum proxy_next
proxy_poll(struct request *r)
{
	enum proxy_next	next;

	assert(r->magic == REQUEST_MAGIC);
	if (r->session_wait && !r->is_error) {
		next = session_resume(r);
		if (next == PROXY_RESPOND || next == PROXY_WAIT)
			return next;
		/* started upstream (PROXY_CONTINUE): wait for its answer */
		return r->is_error || r->head_ready ? PROXY_RESPOND :
		    PROXY_WAIT;
	}
	if (r->cache_wait && !r->is_error) {
		/* the identical miss we waited for is over: look again */
		switch (proxy_cache_retry(r)) {
		case PC_WAIT:
			return PROXY_WAIT;
		case PC_ANSWERED:
			r->cache_wait = 0;
			return PROXY_RESPOND;
		case PC_UPSTREAM:
			r->cache_wait = 0;
			if (start_upstream(r) == PROXY_RESPOND)
				return PROXY_RESPOND;
			return PROXY_WAIT;
		}
	}
	if (r->is_error || r->head_ready)
		return PROXY_RESPOND;
	return PROXY_WAIT;
}

long
proxy_read(struct request *r, char *p, size_t max)
{
	size_t	n;

	assert(r->magic == REQUEST_MAGIC);
	n = ring_get(&r->respbuf, p, max);
	if (n > 0) {
		r->resp_bytes += n;
		metrics_bytes(METRICS_DIR_CLIENT, n);
		if (r->up_write_paused && r->xfer != NULL) {
			r->up_write_paused = 0;
			upstream_unpause(r->xfer);
		}
		return (long)n;
	}
	if (r->up_write_paused && r->xfer != NULL) {
		r->up_write_paused = 0;
		upstream_unpause(r->xfer);
		n = ring_get(&r->respbuf, p, max);
		if (n > 0) {
			r->resp_bytes += n;
			metrics_bytes(METRICS_DIR_CLIENT, n);
			return (long)n;
		}
	}
	if (!r->up_over)
		return PROXY_BODY_WAIT;
	return r->up_result == UPSTREAM_OK ? PROXY_BODY_END : PROXY_BODY_ERR;
}
