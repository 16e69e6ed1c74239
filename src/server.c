/* server: the libmicrohttpd side: listen sockets, intake, response emit */
#include "config.h"

#include <sys/queue.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <microhttpd.h>

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "evloop.h"
#include "gate.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "proxy.h"
#include "server.h"

#define SREQ_MAGIC		0x73726571u
#define SERVER_BLOCK		(64 * 1024)	/* large or unknown bodies */
#define SERVER_BLOCK_MIN	1024
#define SERVER_CLIENT_TIMEOUT_S	60
#define SERVER_CONN_HEADROOM	64
#define SERVER_DISCARD_MAX	(8 * 1024 * 1024)
#define FRONT_BLOCK		(64 * 1024)	/* streamed body piece */
#define FRONT_KEEP		4096		/* buffer kept when idle */
#define FRONT_IN		(16 * 1024)	/* request body piece */

/* the server's half of a request */
struct sreq {
	unsigned		 magic;
	struct request		*r;
	struct MHD_Connection	*conn;
	struct peer		*peer;
	int			 begun;
	int			 body_ended;
	int			 suspended;
	uint64_t		 discarded;	/* body bytes dropped */
	int			 watch_fd;	/* watched for hang-up */
	const char		*uri_end;	/* where the target ended */
	struct sconn		*sc;		/* its connection */
	/* a request read by supagate itself (see struct front) */
	struct front		*fc;
	struct fhdr		*hdr;		/* its fields, parsed in place */
	size_t			 nhdr;
	int			 http10;
};

/* one field of a request head that supagate parsed itself */
struct fhdr {
	const char	*name;
	const char	*value;
};

/* open connections per client address, for max-connections-per-peer */
struct peer {
	struct sockaddr_storage	 addr;
	size_t			 nconn;
	struct peer		*next;
};

/*
 * A client connection that supagate reads itself.  Every request head is
 * checked by the gate (RFC 9112, strict); a rejected one gets a JSON
 * error and the input is drained briefly before close, so that the
 * client reads the answer rather than a reset.  A request without a body
 * (all reads, cache hits among them) or with a Content-Length body (the
 * writes of the Supabase clients) is answered here, and the connection
 * is kept alive for the next one; the first chunked request hands the
 * connection, with that request still unread, to libmicrohttpd for good.
 */
struct front {
	int			 fd;
	size_t			 listen_idx;
	struct sockaddr_storage	 addr;
	socklen_t		 addrlen;
	struct peer		*peer;
	int64_t			 deadline_ms;
	int			 closing;	/* rejected: lingering */
	size_t			 drained;
	int			 hup;		/* the client closed its side */
	int			 more;		/* bytes after the last head */
	int			 resumed;	/* input event since */
	uint64_t		 nreq;		/* requests answered */

	/* the request being answered */
	struct sreq		*s;
	int			 close_after;	/* close once it is out */
	int			 stream;	/* body from proxy_read() */
	int			 chunked;
	uint64_t		 left;		/* Content-Length still due */
	int			 want_out;	/* waiting to write */

	/* its Content-Length body: in[in_off, in_len) read, not yet taken */
	int			 body_in;	/* still reading it */
	uint64_t		 body_left;	/* not yet read */
	uint64_t		 discarded;	/* dropped: answer settled */
	char			*in;
	size_t			 in_off, in_len;

	/*
	 * To send: out[off, len), then zbody[0, zlen) (not copied), then
	 * file_left bytes of the file file_fd from file_off (sendfile).
	 */
	char			*out;
	size_t			 off, len, cap;
	const char		*zbody;
	size_t			 zlen;
	int			 file_fd;	/* the request's; -1: none */
	off_t			 file_off;
	uint64_t		 file_left;

	int			 woken;
	struct front		*next, *prev;	/* every front connection */
	TAILQ_ENTRY(front)	 wentry;	/* woken, to resume */
};

#define GATE_SWEEP_MS		1000
#define GATE_LINGER_MS		2000
#define GATE_LINGER_BYTES	(256 * 1024)
#define GATE_LINGER_MAX		256		/* lingering sockets */
#define ACCEPT_BURST		64

static struct MHD_Daemon	*daemons[CONF_LISTEN_MAX];
static int			 listen_fds[CONF_LISTEN_MAX];
static size_t			 ndaemons;
static size_t			 nconns;
static struct peer		*peers;
static struct front		*fronts;
static size_t			 nfront;	/* not yet rejected */
static size_t			 nclosing;	/* rejected, lingering */
static int			 quiescing;
static TAILQ_HEAD(, front)	 wokenq = TAILQ_HEAD_INITIALIZER(wokenq);
static size_t			 nwoken;
static char			*peekbuf;
static size_t			 peekmax;
static struct evloop_timer	 gate_timer;

static int
addr_same(const struct sockaddr *a, const struct sockaddr_storage *b)
{
	if (a->sa_family != b->ss_family)
		return 0;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		    ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		    &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
	return 0;
}

static struct peer *
peer_get(const struct sockaddr *sa)
{
	struct peer	*p;

	for (p = peers; p != NULL; p = p->next)
		if (addr_same(sa, &p->addr))
			return p;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	memcpy(&p->addr, sa, sa->sa_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	p->next = peers;
	peers = p;
	return p;
}

static void
peer_put(struct peer *p)
{
	struct peer	**pp;

	if (p == NULL || --p->nconn > 0)
		return;
	for (pp = &peers; *pp != NULL; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			free(p);
			return;
		}
}

static const struct sockaddr *
conn_peer(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo	*ci;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	return ci != NULL ? ci->client_addr : NULL;
}

/* what supagate keeps per client connection */
struct sconn {
	struct peer	*peer;
	struct sreq	*cur;	/* the request being handled, if any */
};

static void	sreq_free(struct sreq *);

static void
conn_notify_cb(void *cls, struct MHD_Connection *c, void **socket_ctx,
    enum MHD_ConnectionNotificationCode code)
{
	const struct sockaddr	*sa;
	struct sconn		*sc;

	(void)cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		nconns++;
		if ((sc = calloc(1, sizeof(*sc))) != NULL &&
		    (sa = conn_peer(c)) != NULL &&
		    (sc->peer = peer_get(sa)) != NULL)
			sc->peer->nconn++;
		*socket_ctx = sc;
	} else {
		nconns--;
		if ((sc = *socket_ctx) != NULL) {
			/*
			 * libmicrohttpd answers some malformed requests
			 * itself and never reports them completed: free
			 * what uri_log_cb allocated here.
			 */
			if (sc->cur != NULL)
				sreq_free(sc->cur);
			peer_put(sc->peer);
			free(sc);
		}
		*socket_ctx = NULL;
	}
	metrics.connections = (int64_t)(nconns + nfront);
}

static struct sconn *
conn_ctx(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci != NULL ? ci->socket_context : NULL;
}

size_t
server_connections(void)
{
	return nconns + nfront;
}

size_t
server_peer_connections(struct request *r)
{
	struct sreq	*s = r->conn;
	struct sconn	*sc;

	if (s->fc != NULL)
		return s->fc->peer != NULL ? s->fc->peer->nconn : 0;
	sc = conn_ctx(s->conn);
	return sc != NULL && sc->peer != NULL ? sc->peer->nconn : 0;
}

static void *
uri_log_cb(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct sreq	*s;

	(void)cls;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if ((s->r = proxy_new(uri)) == NULL) {
		free(s);
		return NULL;
	}
	s->magic = SREQ_MAGIC;
	s->conn = c;
	s->watch_fd = -1;
	s->uri_end = uri + strlen(uri);
	s->r->conn = s;
	if ((s->sc = conn_ctx(c)) != NULL) {
		if (s->sc->cur != NULL)		/* never reported completed */
			sreq_free(s->sc->cur);
		s->sc->cur = s;
	}
	return s;
}

static void	unwatch(struct sreq *);

static void
sreq_free(struct sreq *s)
{
	assert(s->magic == SREQ_MAGIC);
	unwatch(s);
	if (s->sc != NULL && s->sc->cur == s)
		s->sc->cur = NULL;
	proxy_free(s->r);
	s->magic = 0;
	free(s);
}

static void
completed_cb(void *cls, struct MHD_Connection *c, void **req_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct sreq	*s = *req_cls;

	(void)cls;
	(void)c;
	if (s == NULL)
		return;
	assert(s->magic == SREQ_MAGIC);
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && s->r->answered &&
	    s->r->status < 400)
		log_debug("%s: request %llu ended early (%d)", __func__,
		    (unsigned long long)s->r->id, (int)toe);
	sreq_free(s);
	*req_cls = NULL;
}

static void	front_wake(struct front *);

void
server_wake(struct request *r)
{
	struct sreq	*s = r->conn;

	if (s != NULL && s->fc != NULL) {
		front_wake(s->fc);
		return;
	}
	if (s == NULL || !s->suspended)
		return;
	s->suspended = 0;
	MHD_resume_connection(s->conn);
}

static void
unwatch(struct sreq *s)
{
	if (s->watch_fd != -1) {
		evloop_unwatch(s->watch_fd);
		s->watch_fd = -1;
	}
}

/*
 * A client that hangs up must not hold an upstream transfer until it
 * times out, but libmicrohttpd does not notice while the connection is
 * suspended, nor (0.9.75, epoll) when the FIN came with the last body
 * bytes.  So the client socket is watched for hang-ups for the whole
 * request; on one, the transfer stops and a suspend/resume pair makes
 * libmicrohttpd look at the socket again (resumed connections are
 * marked ready), find the EOF and close.
 */
static void
client_hup_cb(int fd, unsigned events, void *arg)
{
	struct sreq	*s = arg;

	(void)fd;
	(void)events;
	assert(s->magic == SREQ_MAGIC);
	log_debug("%s: request %llu: client hung up", __func__,
	    (unsigned long long)s->r->id);
	unwatch(s);
	proxy_client_gone(s->r);
	if (!s->suspended)
		MHD_suspend_connection(s->conn);
	s->suspended = 0;
	MHD_resume_connection(s->conn);
}

static void
watch(struct sreq *s)
{
	const union MHD_ConnectionInfo	*ci;

	ci = MHD_get_connection_info(s->conn,
	    MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci != NULL && evloop_watch(ci->connect_fd, EVLOOP_HUP,
	    client_hup_cb, s) == 0)
		s->watch_fd = ci->connect_fd;
}

static void
suspend(struct sreq *s)
{
	if (s->suspended)
		return;
	s->suspended = 1;
	MHD_suspend_connection(s->conn);
}

const char *
server_header(struct request *r, const char *name)
{
	struct sreq	*s = r->conn;
	size_t		 i;

	if (s->fc != NULL) {
		for (i = 0; i < s->nhdr; i++)
			if (strcasecmp(s->hdr[i].name, name) == 0)
				return s->hdr[i].value;
		return NULL;
	}
	return MHD_lookup_connection_value(s->conn, MHD_HEADER_KIND, name);
}

struct count_arg {
	const char	*name;
	int		 n;
};

static enum MHD_Result
count_cb(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	struct count_arg	*a = cls;

	(void)kind;
	(void)value;
	if (key != NULL && strcasecmp(key, a->name) == 0)
		a->n++;
	return MHD_YES;
}

int
server_header_count(struct request *r, const char *name)
{
	struct sreq		*s = r->conn;
	struct count_arg	 a = { name, 0 };
	size_t			 i;

	if (s->fc != NULL) {
		for (i = 0; i < s->nhdr; i++)
			if (strcasecmp(s->hdr[i].name, name) == 0)
				a.n++;
		return a.n;
	}
	MHD_get_connection_values(s->conn, MHD_HEADER_KIND, count_cb, &a);
	return a.n;
}

struct each_arg {
	int	(*cb)(void *, const char *, const char *);
	void	*arg;
	int	 stopped;
	int	 nul;
};

static enum MHD_Result
each_cb(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
    const char *value, size_t value_size)
{
	struct each_arg	*a = cls;

	(void)kind;
	if (key == NULL)
		return MHD_YES;
	/* a NUL inside a name or value would silently cut it */
	if (strlen(key) != key_size ||
	    (value != NULL && strlen(value) != value_size)) {
		a->nul = 1;
		return MHD_NO;
	}
	if (a->cb != NULL && a->cb(a->arg, key, value != NULL ? value : "")) {
		a->stopped = 1;
		return MHD_NO;
	}
	return MHD_YES;
}

int
server_header_each(struct request *r,
    int (*cb)(void *, const char *, const char *), void *arg)
{
	struct sreq	*s = r->conn;
	struct each_arg	 a = { cb, arg, 0, 0 };
	size_t		 i;

	if (s->fc != NULL) {
		/* the gate let no NUL byte through */
		for (i = 0; cb != NULL && i < s->nhdr; i++)
			if (cb(arg, s->hdr[i].name, s->hdr[i].value))
				return -1;
		return 0;
	}
	MHD_get_connection_values_n(s->conn, MHD_HEADER_KIND, each_cb, &a);
	return a.nul ? -2 : a.stopped ? -1 : 0;
}

static ssize_t
body_reader_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sreq	*s = cls;
	long		 n;

	(void)pos;
	assert(s->magic == SREQ_MAGIC);
	n = proxy_read(s->r, buf, max);
	if (n > 0)
		return n;
	if (n == PROXY_BODY_END)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (n == PROXY_BODY_ERR)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	suspend(s);
	return 0;
}

/* Content-Length of the upstream head, or MHD_SIZE_UNKNOWN */
static uint64_t
head_length(const char *p)
{
	uint64_t	n;

	return policy_head_length(p, &n) == 0 ? n : MHD_SIZE_UNKNOWN;
}

/*
 * Walk the response head r->head for the lines relayed to the client:
 * hop-by-hop ones (and those the upstream's Connection header names) are
 * skipped.  name is a NUL-terminated copy; 1 for a line, 0 at the end.
 */
struct relay_walk {
	const char	*p;
	char		 connection[1024];
	int		 has_conn;
	char		 name[256];
};

static void
relay_begin(struct relay_walk *w, const char *head)
{
	w->p = head;
	w->has_conn = policy_head_value(head, "Connection", w->connection,
	    sizeof(w->connection)) == 0;
}

static int
relay_next(struct relay_walk *w, struct head_line *l)
{
	while (policy_head_next(&w->p, l)) {
		if (l->nlen >= sizeof(w->name))
			continue;
		memcpy(w->name, l->name, l->nlen);
		w->name[l->nlen] = '\0';
		if (policy_drop_response_header(w->name) || (w->has_conn &&
		    policy_connection_lists(w->connection, w->name)))
			continue;
		return 1;
	}
	return 0;
}

/* copy the relayed header lines onto a libmicrohttpd response */
static int
add_head(struct MHD_Response *resp, const char *p)
{
	struct relay_walk	 w;
	struct head_line	 l;
	char			*value;

	relay_begin(&w, p);
	while (relay_next(&w, &l)) {
		if ((value = strndup(l.value, l.vlen)) == NULL)
			return -1;
		if (MHD_add_response_header(resp, w.name, value) != MHD_YES)
			log_debug("%s: header %s refused", __func__, w.name);
		free(value);
	}
	return 0;
}

static enum MHD_Result
respond(struct sreq *s)
{
	struct request		*r = s->r;
	struct MHD_Response	*resp;
	enum MHD_Result		 ret;
	uint64_t		 size;

	if (r->is_error && r->body_fd != -1) {
		/* the file moves to libmicrohttpd, which closes it */
		resp = MHD_create_response_from_fd(r->body_fd_len, r->body_fd);
		if (resp != NULL) {
			r->resp_bytes = r->body_fd_len;
			r->body_fd = -1;
		}
	} else if (r->is_error && r->errbody.s != NULL) {
		/* the body buffer moves to libmicrohttpd, which frees it */
		resp = MHD_create_response_from_buffer(r->errbody.len,
		    r->errbody.s, MHD_RESPMEM_MUST_FREE);
		if (resp != NULL) {
			r->resp_bytes = r->errbody.len;
			r->errbody.s = NULL;
			r->errbody.len = r->errbody.cap = 0;
		}
	} else if (r->is_error || (strcmp(r->method, "HEAD") == 0 &&
	    head_length(sbuf_str(&r->head)) == MHD_SIZE_UNKNOWN)) {
		/*
		 * No body.  (A HEAD answer of unknown length would make
		 * libmicrohttpd 0.9.75 send the chunked terminator.)
		 */
		resp = MHD_create_response_from_buffer(0, (void *)"",
		    MHD_RESPMEM_PERSISTENT);
	} else {
		size = head_length(sbuf_str(&r->head));
		if (r->status == 204 || r->status == 304 ||
		    (r->status >= 100 && r->status < 200))
			size = 0;
		/* libmicrohttpd zeroes the block for every response */
		resp = MHD_create_response_from_callback(size,
		    size != MHD_SIZE_UNKNOWN && size < SERVER_BLOCK ?
		    (size < SERVER_BLOCK_MIN ? SERVER_BLOCK_MIN : (size_t)size) :
		    SERVER_BLOCK,
		    body_reader_cb, s, NULL);
	}
	if (resp == NULL)
		return MHD_NO;
	if (add_head(resp, sbuf_str(&r->head)) != 0) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	if (r->is_error && r->status >= 400 && !s->body_ended &&
	    (server_header(r, "Content-Length") != NULL ||
	    server_header(r, "Transfer-Encoding") != NULL))
		/* the rest of the body is not read: close afterwards */
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION,
		    "close");
	r->answered = 1;
	ret = MHD_queue_response(s->conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result
access_cb(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **req_cls)
{
	struct sreq	*s = *req_cls;
	enum proxy_next	 next;
	size_t		 n;

	(void)cls;
	(void)url;
	(void)version;
	if (s == NULL)
		return MHD_NO;
	assert(s->magic == SREQ_MAGIC);
	s->conn = c;
	if (s->r->answered) {
		/* discard body bytes that follow an early answer */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (!s->begun) {
		s->begun = 1;
		/*
		 * The target and the version are parsed in place in one
		 * buffer, one space apart: anything between the end of the
		 * target string and the version is a NUL that cut it short.
		 */
		if (version != NULL && s->uri_end + 1 != version) {
			proxy_error(s->r, 400, "bad_request",
			    "NUL byte in the request target");
			return respond(s);
		}
		next = proxy_begin(s->r, method, version, conn_peer(c));
		/*
		 * A bodyless request answered at once (cache hits, most
		 * errors) is answered on the next call: libmicrohttpd
		 * closes the connection after a response queued on the
		 * first one.
		 */
		if (next == PROXY_RESPOND && (server_header(s->r,
		    "Content-Length") != NULL ||
		    server_header(s->r, "Transfer-Encoding") != NULL))
			return respond(s);
		if (next == PROXY_RESPOND)
			return MHD_YES;
		/* answered at once (cache hits, errors): no watch needed */
		watch(s);
		return MHD_YES;
	}
	if (*upload_data_size > 0 && s->r->is_error) {
		/*
		 * The answer is settled (413 mid-upload, upstream gone):
		 * read and drop the rest so the client sees the answer, up
		 * to a bound, then answer and close (nginx's lingering close).
		 */
		s->discarded += *upload_data_size;
		*upload_data_size = 0;
		if (s->discarded > SERVER_DISCARD_MAX)
			return respond(s);
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		n = *upload_data_size;
		next = proxy_body(s->r, upload_data, &n);
		*upload_data_size -= n;
		if (next == PROXY_WAIT)
			suspend(s);
		return MHD_YES;
	}
	if (!s->body_ended) {
		s->body_ended = 1;
		next = proxy_body_end(s->r);
	} else
		next = proxy_poll(s->r);
	if (next == PROXY_RESPOND)
		return respond(s);
	suspend(s);
	return MHD_YES;
}

static void
mhd_log_cb(void *cls, const char *fmt, va_list ap)
{
	char	msg[512];
	size_t	len;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	len = strlen(msg);
	while (len > 0 && msg[len - 1] == '\n')
		msg[--len] = '\0';
	log_debug("mhd: %s", msg);
}

static void
mhd_ready_cb(int fd, unsigned events, void *arg)
{
	(void)fd;
	(void)events;
	MHD_run(arg);
}

static void	front_resume(struct front *);
static void	front_cb(int, unsigned, void *);

static int64_t
mhd_hook_cb(void *arg)
{
	MHD_UNSIGNED_LONG_LONG	to;
	struct front		*fc;
	size_t			i, n;
	int64_t			wait = -1;

	(void)arg;
	/* front connections woken since the last turn; later wakes wait */
	for (n = nwoken; n > 0 && (fc = TAILQ_FIRST(&wokenq)) != NULL; n--) {
		TAILQ_REMOVE(&wokenq, fc, wentry);
		fc->woken = 0;
		nwoken--;
		front_resume(fc);
	}
	for (i = 0; i < ndaemons && nconns > 0; i++) {
		/* resumed connections are processed by the next run */
		MHD_run(daemons[i]);
		if (MHD_get_timeout(daemons[i], &to) == MHD_YES &&
		    (wait < 0 || (int64_t)to < wait))
			wait = (int64_t)to;
	}
	return nwoken > 0 ? 0 : wait;
}

static void
conns_changed(void)
{
	metrics.connections = (int64_t)(nconns + nfront);
}

/* release fc; the socket too unless it moved on (fd -1) */
static void
front_close(struct front *fc)
{
	if (fc->prev != NULL)
		fc->prev->next = fc->next;
	else
		fronts = fc->next;
	if (fc->next != NULL)
		fc->next->prev = fc->prev;
	if (fc->woken) {
		TAILQ_REMOVE(&wokenq, fc, wentry);
		nwoken--;
	}
	if (fc->closing)
		nclosing--;
	else
		nfront--;
	if (fc->s != NULL) {
		fc->s->fc = NULL;	/* no more wake-ups */
		sreq_free(fc->s);
	}
	if (fc->fd != -1) {
		evloop_unwatch(fc->fd);
		close(fc->fd);
	}
	peer_put(fc->peer);
	free(fc->out);
	free(fc->in);
	free(fc);
	conns_changed();
}

/* the request in progress cannot be completed: close at once */
static void
front_abort(struct front *fc, int client_gone)
{
	if (fc->s != NULL && client_gone)
		proxy_client_gone(fc->s->r);
	front_close(fc);
}

static void
front_wake(struct front *fc)
{
	if (fc->woken || fc->closing)
		return;
	fc->woken = 1;
	TAILQ_INSERT_TAIL(&wokenq, fc, wentry);
	nwoken++;
}

static int
front_watch(struct front *fc, int out)
{
	if (evloop_watch(fc->fd, EVLOOP_IN | EVLOOP_HUP | EVLOOP_EDGE |
	    (out ? EVLOOP_OUT : 0), front_cb, fc) != 0)
		return -1;
	fc->want_out = out;
	return 0;
}

static const char *
status_reason(int status)
{
	switch (status) {
	case 400:
		return "Bad Request";
	case 408:
		return "Request Timeout";
	case 414:
		return "URI Too Long";
	case 431:
		return "Request Header Fields Too Large";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Error";
	}
}

static void
front_drain(struct front *fc)
{
	char	buf[16384];
	ssize_t	n;

	while ((n = recv(fc->fd, buf, sizeof(buf), 0)) > 0) {
		fc->drained += (size_t)n;
		if (fc->drained > GATE_LINGER_BYTES)
			break;
	}
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR) ||
	    fc->drained > GATE_LINGER_BYTES)
		front_close(fc);
}

/*
 * Stop sending, read and drop what the client still sends for a short
 * while, then close: closing with unread input would reset the
 * connection and could destroy the answer in flight.
 */
static void
front_linger(struct front *fc)
{
	shutdown(fc->fd, SHUT_WR);
	/* lingering sockets do not count against the connection limits */
	fc->closing = 1;
	nfront--;
	nclosing++;
	peer_put(fc->peer);
	fc->peer = NULL;
	if (fc->want_out)
		front_watch(fc, 0);
	fc->deadline_ms = evloop_now_ms() + GATE_LINGER_MS;
	conns_changed();
	if (nclosing > GATE_LINGER_MAX)
		front_close(fc);
	else
		front_drain(fc);
}

/* answer a request head the gate refused, then close */
static void
front_reject(struct front *fc, int status, const char *code,
    const char *message)
{
	char	body[256], resp[512];
	int	blen, rlen;

	blen = snprintf(body, sizeof(body), "{\"code\":\"%s\",\"message\":"
	    "\"%s\"}", code, message);
	rlen = snprintf(resp, sizeof(resp), "HTTP/1.1 %d %s\r\n"
	    "Content-Type: application/json\r\nContent-Length: %d\r\n"
	    "Connection: close\r\n%s\r\n%s", status, status_reason(status),
	    blen, status == 503 ? "Retry-After: 1\r\n" : "", body);
	/* small enough for an empty socket buffer; best effort */
	if (send(fc->fd, resp, (size_t)rlen, MSG_NOSIGNAL) == -1)
		log_debug("%s: send: %s", __func__, strerror(errno));
	metrics_request(POLICY_ROUTE_NONE, status);
	log_access("- - - %d gate=%s", status, code);
	front_linger(fc);
}

/* room for n more bytes at out + len; -1 on ENOMEM */
static int
out_reserve(struct front *fc, size_t n)
{
	size_t	cap;
	char	*p;

	if (fc->cap - fc->len >= n)
		return 0;
	for (cap = fc->cap < 1024 ? 1024 : fc->cap; cap - fc->len < n;
	    cap *= 2)
		;
	if ((p = realloc(fc->out, cap)) == NULL)
		return -1;
	fc->out = p;
	fc->cap = cap;
	return 0;
}

static void
out_add(struct front *fc, const char *p, size_t n)
{
	if (out_reserve(fc, n) == 0) {
		memcpy(fc->out + fc->len, p, n);
		fc->len += n;
	}
}

/* the Date field value, formatted once per second */
static const char *
http_date(void)
{
	static char	buf[64];
	static time_t	last = -1;
	time_t		now = (time_t)evloop_wall_s();
	struct tm	tm;

	if (now != last && gmtime_r(&now, &tm) != NULL) {
		strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		last = now;
	}
	return buf;
}

/*
 * The response of the request in progress is ready: queue its head,
 * and its body when it is one buffer (local answers, cache hits), or
 * set up streaming it from proxy_read().
 */
static void
front_respond(struct front *fc)
{
	struct request		*r = fc->s->r;
	struct relay_walk	 w;
	struct head_line	 l;
	char			 line[128];
	uint64_t		 size;
	int			 n, head_only, no_body, has_date = 0;

	r->answered = 1;
	head_only = strcmp(r->method, "HEAD") == 0;
	no_body = r->status == 204 || r->status == 304 ||
	    (r->status >= 100 && r->status < 200);
	if (r->is_error && r->status >= 500)
		fc->close_after = 1;
	if (quiescing)
		fc->close_after = 1;
	fc->stream = fc->chunked = 0;
	fc->zbody = NULL;
	fc->zlen = 0;
	fc->file_fd = -1;
	fc->file_left = 0;
	fc->left = UINT64_MAX;
	/* out may hold a 100 Continue still on its way: append */
	if (fc->body_in) {
		/*
		 * Answered before the body was all read (refused, upstream
		 * failed): the rest of it is not a request; drop it while
		 * closing.
		 */
		fc->body_in = 0;
		fc->close_after = 1;
	}

	n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", r->status,
	    MHD_get_reason_phrase_for((unsigned)r->status));
	out_add(fc, line, (size_t)n);
	relay_begin(&w, sbuf_str(&r->head));
	while (relay_next(&w, &l)) {
		if (l.nlen == 4 && strncasecmp(l.name, "Date", 4) == 0)
			has_date = 1;
		if (out_reserve(fc, l.nlen + l.vlen + 4) != 0)
			break;
		memcpy(fc->out + fc->len, l.name, l.nlen);
		fc->len += l.nlen;
		memcpy(fc->out + fc->len, ": ", 2);
		memcpy(fc->out + fc->len + 2, l.value, l.vlen);
		memcpy(fc->out + fc->len + 2 + l.vlen, "\r\n", 2);
		fc->len += l.vlen + 4;
	}
	if (!has_date) {
		n = snprintf(line, sizeof(line), "Date: %s\r\n", http_date());
		out_add(fc, line, (size_t)n);
	}
	/* the body and its framing: size is MHD_SIZE_UNKNOWN when not known */
	size = r->is_error && r->body_fd != -1 ? r->body_fd_len :
	    r->is_error ? (r->errbody.s != NULL ? r->errbody.len : 0) :
	    head_length(sbuf_str(&r->head));
	if (no_body)
		;
	else if (size != MHD_SIZE_UNKNOWN) {
		n = snprintf(line, sizeof(line), "Content-Length: %" PRIu64
		    "\r\n", size);
		out_add(fc, line, (size_t)n);
		if (head_only)
			;
		else if (r->is_error && r->body_fd != -1) {
			fc->file_fd = r->body_fd;
			fc->file_off = 0;
			fc->file_left = size;
			r->resp_bytes = size;
		} else if (r->is_error && size > 0) {
			fc->zbody = r->errbody.s;
			fc->zlen = (size_t)size;
			r->resp_bytes = size;
		} else if (!r->is_error) {
			fc->stream = 1;
			fc->left = size;
		}
	} else if (!head_only) {
		fc->stream = 1;
		if (fc->s->http10)
			fc->close_after = 1;	/* the close ends the body */
		else {
			fc->chunked = 1;
			out_add(fc, "Transfer-Encoding: chunked\r\n", 28);
		}
	}
	if (fc->close_after)
		out_add(fc, "Connection: close\r\n", 19);
	out_add(fc, "\r\n", 2);
}

/* write what is queued: 0 all out, 1 the socket is full, -1 error */
static int
front_send(struct front *fc)
{
	struct iovec	iov[2];
	struct msghdr	m;
	ssize_t		n;
	size_t		k, d;

	while (fc->off < fc->len || fc->zlen > 0) {
		memset(&m, 0, sizeof(m));
		m.msg_iov = iov;
		if (fc->off < fc->len) {
			iov[m.msg_iovlen].iov_base = fc->out + fc->off;
			iov[m.msg_iovlen++].iov_len = fc->len - fc->off;
		}
		if (fc->zlen > 0) {
			iov[m.msg_iovlen].iov_base = (void *)fc->zbody;
			iov[m.msg_iovlen++].iov_len = fc->zlen;
		}
		/* the file's bytes follow in the same segments */
		if ((n = sendmsg(fc->fd, &m, MSG_NOSIGNAL |
		    (fc->file_left > 0 ? MSG_MORE : 0))) == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			return -1;
		}
		k = (size_t)n;
		d = fc->len - fc->off < k ? fc->len - fc->off : k;
		fc->off += d;
		k -= d;
		fc->zbody += k;
		fc->zlen -= k;
	}
	fc->off = fc->len = 0;
	while (fc->file_left > 0) {
		n = sendfile(fc->fd, fc->file_fd, &fc->file_off,
		    fc->file_left > (1u << 30) ? (1u << 30) :
		    (size_t)fc->file_left);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 1;
		if (n <= 0)
			return -1;	/* an error, or the file shrank */
		fc->file_left -= (uint64_t)n;
	}
	return 0;
}

/*
 * Append the next piece of a streamed body: 1 queued (or the body is
 * complete), 0 nothing yet (a wake-up follows), -1 the body cannot be
 * completed (upstream failed, or sent other than it announced).
 */
static int
front_fill(struct front *fc)
{
	struct request	*r = fc->s->r;
	char		 hex[16];
	size_t		 max, base, pre = fc->chunked ? 10 : 0;
	long		 n;
	int		 hl;

	/* at most what is still due: a small body takes a small buffer */
	max = FRONT_BLOCK;
	if (fc->left != UINT64_MAX && fc->left < max)
		max = fc->left > 0 ? (size_t)fc->left : 16;
	if (out_reserve(fc, pre + max + 8) != 0)
		return -1;
	base = fc->len;
	n = proxy_read(r, fc->out + base + pre, max);
	if (n == PROXY_BODY_WAIT)
		return 0;
	if (n == PROXY_BODY_ERR)
		return -1;
	if (n == PROXY_BODY_END) {
		if (fc->left != UINT64_MAX && fc->left > 0)
			return -1;	/* shorter than announced */
		fc->stream = 0;
		if (fc->chunked)
			out_add(fc, "0\r\n\r\n", 5);
		return 1;
	}
	if (fc->left != UINT64_MAX) {
		if ((uint64_t)n > fc->left)
			return -1;	/* longer than announced */
		fc->left -= (uint64_t)n;
	}
	if (!fc->chunked) {
		fc->len = base + (size_t)n;
		return 1;
	}
	hl = snprintf(hex, sizeof(hex), "%lx\r\n", n);
	memmove(fc->out + base + hl, fc->out + base + pre, (size_t)n);
	memcpy(fc->out + base, hex, (size_t)hl);
	memcpy(fc->out + base + (size_t)hl + (size_t)n, "\r\n", 2);
	fc->len = base + (size_t)hl + (size_t)n + 2;
	return 1;
}

static int	front_next(struct front *);

/* the response is out: 0 ready for the next request, -1 fc is gone */
static int
front_finish(struct front *fc)
{
	struct sreq	*s = fc->s;

	fc->s = NULL;
	s->fc = NULL;
	sreq_free(s);
	peer_put(fc->peer);
	fc->peer = NULL;
	fc->nreq++;
	fc->stream = fc->chunked = 0;
	fc->file_fd = -1;
	fc->body_in = 0;
	fc->body_left = fc->discarded = 0;
	fc->in_off = fc->in_len = 0;
	free(fc->in);
	fc->in = NULL;
	if (fc->cap > FRONT_KEEP) {
		/* an idle connection keeps a small buffer only */
		free(fc->out);
		fc->out = NULL;
		fc->cap = 0;
	}
	if (fc->close_after || quiescing) {
		front_linger(fc);
		return -1;
	}
	fc->deadline_ms = evloop_now_ms() + SERVER_CLIENT_TIMEOUT_S * 1000;
	return 0;
}

/*
 * Feed the request body to the proxy as it arrives: 1 it is all in (or
 * the request was answered early), 0 waiting for input or for the
 * proxy to take more (a wake-up follows), -1 fc is gone.
 */
static int
front_body(struct front *fc)
{
	struct request	*r = fc->s->r;
	enum proxy_next	 next;
	size_t		 n, want;
	ssize_t		 got;

	while (fc->body_in) {
		if (fc->in_off == fc->in_len) {
			if (fc->body_left == 0)
				break;
			if (fc->in == NULL &&
			    (fc->in = malloc(FRONT_IN)) == NULL) {
				front_abort(fc, 0);
				return -1;
			}
			want = fc->body_left < FRONT_IN ?
			    (size_t)fc->body_left : FRONT_IN;
			got = recv(fc->fd, fc->in, want, 0);
			if (got == -1 && (errno == EAGAIN ||
			    errno == EWOULDBLOCK || errno == EINTR)) {
				fc->deadline_ms = evloop_now_ms() +
				    SERVER_CLIENT_TIMEOUT_S * 1000;
				return 0;
			}
			if (got <= 0) {
				front_abort(fc, 1);	/* body cut short */
				return -1;
			}
			fc->deadline_ms = INT64_MAX;
			fc->in_off = 0;
			fc->in_len = (size_t)got;
			fc->body_left -= (uint64_t)got;
		}
		n = fc->in_len - fc->in_off;
		if (r->is_error) {
			/*
			 * Settled (413 past max-body-size, upstream gone):
			 * drop the rest up to a bound, as libmicrohttpd's
			 * side does, then answer.
			 */
			fc->discarded += n;
			fc->in_off = fc->in_len;
			if (fc->discarded > SERVER_DISCARD_MAX) {
				front_respond(fc);
				return 1;
			}
			continue;
		}
		next = proxy_body(r, fc->in + fc->in_off, &n);
		fc->in_off += n;
		if (next == PROXY_RESPOND) {
			front_respond(fc);
			return 1;
		}
		if (next == PROXY_WAIT && fc->in_off < fc->in_len)
			return 0;
	}
	fc->body_in = 0;
	fc->more = 1;		/* look at what follows the body */
	free(fc->in);
	fc->in = NULL;
	if (proxy_body_end(r) == PROXY_RESPOND)
		front_respond(fc);
	return 1;
}

/*
 * Move the connection on as far as it goes without waiting: send what
 * is queued, stream the body, finish the request and start the next.
 * 0 when it waits (input, output or the proxy), -1 when fc is gone.
 */
static int
front_pump(struct front *fc)
{
	int	rc, waiting;

	for (;;) {
		/*
		 * Body bytes already here go out with what is queued (the
		 * head of a miss with its body: one write, not two).
		 */
		waiting = 0;
		if (fc->s != NULL && fc->s->r->answered && fc->stream &&
		    fc->zlen == 0 && fc->file_left == 0 &&
		    fc->len - fc->off < FRONT_BLOCK) {
			if ((rc = front_fill(fc)) == -1) {
				front_abort(fc, 0);
				return -1;
			}
			waiting = rc == 0;
		}
		if ((rc = front_send(fc)) == -1) {
			front_abort(fc, 1);
			return -1;
		}
		if (rc == 1) {
			if (!fc->want_out)
				front_watch(fc, 1);
			fc->deadline_ms = evloop_now_ms() +
			    SERVER_CLIENT_TIMEOUT_S * 1000;
			return 0;
		}
		if (fc->want_out)
			front_watch(fc, 0);
		if (fc->s == NULL) {
			/*
			 * Bytes that came after the last peek raise a new
			 * (edge-triggered) event; look now only if that peek
			 * saw more than the head it took, or for a new one.
			 */
			if (fc->nreq > 0 && !fc->more && !fc->hup &&
			    !fc->resumed)
				return 0;
			fc->resumed = 0;
			if ((rc = front_next(fc)) <= 0)
				return rc;
			continue;
		}
		if (fc->body_in) {
			if ((rc = front_body(fc)) <= 0)
				return rc;
			continue;
		}
		if (!fc->s->r->answered)
			return 0;
		if (fc->stream) {
			if (waiting)
				return 0;
			continue;
		}
		if (front_finish(fc) == -1)
			return -1;
	}
}

static void
front_resume(struct front *fc)
{
	struct request	*r;

	if (fc->s == NULL)
		return;
	r = fc->s->r;
	if (!r->answered && !fc->body_in) {
		if (proxy_poll(r) != PROXY_RESPOND)
			return;
		front_respond(fc);
	}
	(void)front_pump(fc);
}

/* hand the connection, its next request unread, to libmicrohttpd */
static void
front_handoff(struct front *fc)
{
	int	fd = fc->fd;

	evloop_unwatch(fd);
	fc->fd = -1;
	/* libmicrohttpd owns the socket now, and closes it on failure */
	if (MHD_add_connection(daemons[fc->listen_idx], fd,
	    (struct sockaddr *)&fc->addr, fc->addrlen) != MHD_YES)
		log_warn("cannot hand a connection to the HTTP server");
	front_close(fc);
}

/*
 * Split a head the gate passed (so well formed: one space either side
 * of the target, CRLF line ends, "name:" without whitespace before the
 * colon) in place.  -1 if it is not what the gate promised.
 */
static int
front_parse(struct sreq *s, char *h, size_t maxhdr, const char **method,
    const char **target, const char **version)
{
	char	*p, *eol, *sp, *colon, *v, *e;

	if ((eol = strstr(h, "\r\n")) == NULL)
		return -1;
	*eol = '\0';
	*method = h;
	if ((sp = strchr(h, ' ')) == NULL)
		return -1;
	*sp = '\0';
	*target = sp + 1;
	if ((sp = strchr(sp + 1, ' ')) == NULL)
		return -1;
	*sp = '\0';
	*version = sp + 1;
	for (p = eol + 2; *p != '\0' && *p != '\r'; p = eol + 2) {
		if ((eol = strstr(p, "\r\n")) == NULL ||
		    (colon = memchr(p, ':', (size_t)(eol - p))) == NULL ||
		    s->nhdr == maxhdr)
			return -1;
		*colon = '\0';
		*eol = '\0';
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		for (e = eol; e > v && (e[-1] == ' ' || e[-1] == '\t'); e--)
			;
		*e = '\0';
		s->hdr[s->nhdr].name = p;
		s->hdr[s->nhdr++].value = v;
	}
	return 0;
}

/*
 * Take the request whose head of len bytes is in peekbuf: 1 started, -1
 * fc is gone (handed to libmicrohttpd or closed).
 */
static int
front_start(struct front *fc, size_t len, size_t avail)
{
	struct sreq	*s;
	struct request	*r;
	const char	*method, *target, *version, *conn, *v;
	enum proxy_next	 next;
	size_t		 i, nf = 0;
	ssize_t		 n;
	uint64_t	 clen = 0;
	int		 has_body = 0;
	char		*end;

	for (i = 0; i < len; i++)
		nf += peekbuf[i] == '\n';
	if ((s = malloc(sizeof(*s) + nf * sizeof(struct fhdr) + len + 1)) ==
	    NULL) {
		front_close(fc);
		return -1;
	}
	memset(s, 0, sizeof(*s));
	s->magic = SREQ_MAGIC;
	s->watch_fd = -1;
	s->hdr = (struct fhdr *)(s + 1);
	memcpy(s->hdr + nf, peekbuf, len);
	((char *)(s->hdr + nf))[len] = '\0';
	if (front_parse(s, (char *)(s->hdr + nf), nf, &method, &target,
	    &version) != 0) {
		free(s);
		front_reject(fc, 400, "bad_request", "malformed request head");
		return -1;
	}
	for (i = 0; i < s->nhdr; i++) {
		if (strcasecmp(s->hdr[i].name, "Transfer-Encoding") == 0) {
			/* chunked: libmicrohttpd decodes it */
			free(s);
			front_handoff(fc);
			return -1;
		}
		if (strcasecmp(s->hdr[i].name, "Content-Length") != 0)
			continue;
		/* the gate let only digits through, equal when repeated */
		v = s->hdr[i].value;
		errno = 0;
		clen = strtoull(v, &end, 10);
		if (*v < '0' || *v > '9' || *end != '\0' || errno != 0) {
			free(s);
			front_reject(fc, 400, "bad_request",
			    "invalid Content-Length");
			return -1;
		}
		has_body = 1;
	}
	/* the head is taken off the socket only now */
	fc->more = avail > len;
	n = recv(fc->fd, peekbuf, len, MSG_TRUNC);
	if (n != (ssize_t)len) {
		free(s);
		front_close(fc);
		return -1;
	}
	if ((r = proxy_new(target)) == NULL) {
		free(s);
		front_close(fc);
		return -1;
	}
	s->fc = fc;
	s->r = r;
	r->conn = s;
	fc->s = s;
	/*
	 * As nginx's limit_conn does, a connection counts against
	 * max-connections-per-peer while it has a request in progress.
	 */
	if ((fc->peer = peer_get((struct sockaddr *)&fc->addr)) != NULL)
		fc->peer->nconn++;
	s->http10 = strcmp(version, "HTTP/1.0") == 0;
	conn = server_header(r, "Connection");
	fc->close_after = s->http10 || fc->hup || quiescing ||
	    (conn != NULL && policy_connection_lists(conn, "close"));
	fc->deadline_ms = INT64_MAX;
	next = proxy_begin(r, method, version, (struct sockaddr *)&fc->addr);
	if (next == PROXY_RESPOND) {
		/* refused before its body was read: close after the answer */
		if (has_body && clen > 0)
			fc->close_after = 1;
		front_respond(fc);
		return 1;
	}
	if (!has_body) {
		if (proxy_body_end(r) == PROXY_RESPOND)
			front_respond(fc);
		return 1;
	}
	fc->body_in = 1;
	fc->body_left = clen;
	fc->discarded = 0;
	/* RFC 9110 10.1.1: the client waits for this before the body */
	if (clen > 0 && !s->http10 &&
	    (v = server_header(r, "Expect")) != NULL &&
	    strcasecmp(v, "100-continue") == 0)
		out_add(fc, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	return 1;
}

/*
 * Look at the next request head: 1 a request started, 0 more input is
 * needed, -1 fc is gone.
 */
static int
front_next(struct front *fc)
{
	struct gate_verdict	v;
	ssize_t			n;

	n = recv(fc->fd, peekbuf, peekmax, MSG_PEEK);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		front_close(fc);	/* gone, or closed between requests */
		return -1;
	}
	switch (gate_check(peekbuf, (size_t)n, peekmax, &v)) {
	case GATE_MORE:
		if (fc->hup) {
			front_close(fc);	/* it will never be complete */
			return -1;
		}
		return 0;
	case GATE_REJECT:
		front_reject(fc, v.status, v.code, v.message);
		return -1;
	case GATE_OK:
		break;
	}
	return front_start(fc, v.head_len, (size_t)n);
}

static void
front_cb(int fd, unsigned events, void *arg)
{
	struct front	*fc = arg;

	(void)fd;
	if (fc->closing) {
		front_drain(fc);
		return;
	}
	if (events & EVLOOP_HUP)
		fc->hup = 1;
	if (events & EVLOOP_IN)
		fc->resumed = 1;	/* new bytes: look at them */
	if (fc->hup && fc->s != NULL) {
		log_debug("%s: request %llu: client hung up", __func__,
		    (unsigned long long)fc->s->r->id);
		front_abort(fc, 1);
		return;
	}
	(void)front_pump(fc);
}

static void
gate_sweep_cb(void *arg)
{
	struct front	*fc, *next;
	int64_t		 now = evloop_now_ms();
	char		 c;

	(void)arg;
	for (fc = fronts; fc != NULL; fc = next) {
		next = fc->next;
		if (now < fc->deadline_ms)
			continue;
		if (fc->closing)
			front_close(fc);
		else if (fc->s != NULL)
			front_abort(fc, 1);	/* it stopped reading */
		else if (fc->nreq > 0 && recv(fc->fd, &c, 1, MSG_PEEK) <= 0)
			front_close(fc);	/* idle keep-alive */
		else
			front_reject(fc, 408, "request_timeout",
			    "the request head did not arrive in time");
	}
	evloop_timer_arm(&gate_timer, GATE_SWEEP_MS, gate_sweep_cb, NULL);
}

static void
listen_ready_cb(int lfd, unsigned events, void *arg)
{
	struct front	*fc;
	struct conf	*c = proxy_conf();
	int		 fd, i, one = 1;

	(void)events;
	for (i = 0; i < ACCEPT_BURST; i++) {
		if ((fc = calloc(1, sizeof(*fc))) == NULL)
			return;
		fc->addrlen = sizeof(fc->addr);
		fc->file_fd = -1;
		fd = accept4(lfd, (struct sockaddr *)&fc->addr, &fc->addrlen,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("accept");
			free(fc);
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		fc->fd = fd;
		fc->listen_idx = (size_t)(uintptr_t)arg;
		fc->deadline_ms = evloop_now_ms() +
		    SERVER_CLIENT_TIMEOUT_S * 1000;
		fc->next = fronts;
		if (fronts != NULL)
			fronts->prev = fc;
		fronts = fc;
		nfront++;
		conns_changed();
		if (nconns + nfront > c->max_connections) {
			metrics.rejected_overload++;
			front_reject(fc, 503, "overloaded",
			    "too many connections; retry later");
			continue;
		}
		if (front_watch(fc, 0) != 0)
			front_close(fc);
	}
}

static int
bind_listen(const struct conf_listen *l)
{
	struct sockaddr_storage	ss;
	socklen_t		len;
	char			host[64];
	int			fd, one = 1, port;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, l->host,
	    &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		ss.ss_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons(l->port);
		len = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, l->host,
	    &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		ss.ss_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(l->port);
		len = sizeof(struct sockaddr_in6);
	} else {
		log_warnx("listen %s: not a numeric address", l->host);
		return -1;
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1) {
		log_warn("socket");
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) == -1) {
		log_warn("bind %s:%d", l->host, l->port);
		close(fd);
		return -1;
	}
	if (listen(fd, 511) == -1) {
		log_warn("listen");
		close(fd);
		return -1;
	}
	len = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &len);
	port = ntohs(ss.ss_family == AF_INET ?
	    ((struct sockaddr_in *)&ss)->sin_port :
	    ((struct sockaddr_in6 *)&ss)->sin6_port);
	if (ss.ss_family == AF_INET6)
		snprintf(host, sizeof(host), "[%s]", l->host);
	else
		snprintf(host, sizeof(host), "%s", l->host);
	log_info("listening on %s:%d", host, port);
	return fd;
}

int
server_setup(struct conf *c)
{
	const union MHD_DaemonInfo	*di;
	struct MHD_Daemon		*d;
	size_t				 i;
	int				 fd;

	for (i = 0; i < c->nlisten; i++) {
		if ((fd = bind_listen(&c->listen[i])) == -1)
			return -1;
		d = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
		    MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG, 0, NULL, NULL,
		    access_cb, NULL,
		    MHD_OPTION_EXTERNAL_LOGGER, mhd_log_cb, NULL,
		    MHD_OPTION_URI_LOG_CALLBACK, uri_log_cb, NULL,
		    MHD_OPTION_NOTIFY_COMPLETED, completed_cb, NULL,
		    MHD_OPTION_NOTIFY_CONNECTION, conn_notify_cb, NULL,
		    /*
		     * zeroed for every request, so no bigger than needed:
		     * the head, its parsed query arguments and a read buffer
		     */
		    MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		    (size_t)(2 * c->max_header_size + 16 * 1024),
		    MHD_OPTION_CONNECTION_TIMEOUT,
		    (unsigned)SERVER_CLIENT_TIMEOUT_S,
		    MHD_OPTION_CONNECTION_LIMIT,
		    (unsigned)(c->max_connections + SERVER_CONN_HEADROOM),
		    MHD_OPTION_END);
		if (d == NULL) {
			log_warnx("cannot start the HTTP server on %s:%d",
			    c->listen[i].host, c->listen[i].port);
			close(fd);
			return -1;
		}
		di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
		if (di == NULL || evloop_watch(di->epoll_fd, EVLOOP_IN,
		    mhd_ready_cb, d) != 0) {
			MHD_stop_daemon(d);
			close(fd);
			return -1;
		}
		if (evloop_watch(fd, EVLOOP_IN, listen_ready_cb,
		    (void *)(uintptr_t)ndaemons) != 0) {
			MHD_stop_daemon(d);
			close(fd);
			return -1;
		}
		listen_fds[ndaemons] = fd;
		daemons[ndaemons++] = d;
	}
	peekmax = (size_t)c->max_header_size;
	if ((peekbuf = malloc(peekmax)) == NULL)
		return -1;
	gate_timer.due_ms = -1;
	evloop_timer_arm(&gate_timer, GATE_SWEEP_MS, gate_sweep_cb, NULL);
	return evloop_hook(mhd_hook_cb, NULL);
}

void
server_quiesce(void)
{
	struct front	*fc, *next;
	size_t		 i;

	/* idle kept-alive connections close; busy ones after the answer */
	quiescing = 1;
	for (fc = fronts; fc != NULL; fc = next) {
		next = fc->next;
		if (fc->s == NULL && !fc->closing)
			front_close(fc);
	}

	for (i = 0; i < ndaemons; i++)
		if (listen_fds[i] != -1) {
			evloop_unwatch(listen_fds[i]);
			close(listen_fds[i]);
			listen_fds[i] = -1;
		}
}

void
server_teardown(void)
{
	const union MHD_DaemonInfo	*di;
	size_t				 i;

	while (fronts != NULL)
		front_close(fronts);
	evloop_timer_disarm(&gate_timer);
	free(peekbuf);
	peekbuf = NULL;
	server_quiesce();
	for (i = 0; i < ndaemons; i++) {
		di = MHD_get_daemon_info(daemons[i], MHD_DAEMON_INFO_EPOLL_FD);
		if (di != NULL)
			evloop_unwatch(di->epoll_fd);
		MHD_stop_daemon(daemons[i]);
	}
	ndaemons = 0;
}
