/*
 * server: the libmicrohttpd side: listen sockets, the libmicrohttpd
 * daemons and the connections handed to them (intake, suspend/resume,
 * response emit), per-peer connection counts and the server_* API.
 * supagate's own HTTP/1.1 side, which accepts every connection first,
 * is in front.c; front.h is the interface between the two.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <microhttpd.h>

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf.h"
#include "evloop.h"
#include "front.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "proxy.h"
#include "server.h"

#define SERVER_BLOCK		(64 * 1024)	/* large or unknown bodies */
#define SERVER_BLOCK_MIN	1024
#define SERVER_CONN_HEADROOM	64

static struct MHD_Daemon	*daemons[CONF_LISTEN_MAX];
static int			 listen_fds[CONF_LISTEN_MAX];
/* unix:PATH listeners: the socket file to remove; "" for TCP */
static char			 listen_paths[CONF_LISTEN_MAX][CONF_UNIX_PATH_MAX];
static size_t			 ndaemons;
static size_t			 nconns;
static struct peer		*peers;

static int
addr_same(const struct sockaddr *a, const struct sockaddr_storage *b)
{
	if (a->sa_family != b->ss_family)
		return 0;
	if (a->sa_family == AF_UNIX)
		return 1;	/* every local-socket client is one peer */
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		    ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		    &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
	return 0;
}

struct peer *
server_peer_get(const struct sockaddr *sa)
{
	struct peer	*p;

	for (p = peers; p != NULL; p = p->next)
		if (addr_same(sa, &p->addr))
			return p;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	/* only what the family has: a unix peer's may be 2 bytes long */
	memcpy(&p->addr, sa, sa->sa_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sa->sa_family == AF_INET ?
	    sizeof(struct sockaddr_in) : sizeof(sa->sa_family));
	p->next = peers;
	peers = p;
	return p;
}

void
server_peer_put(struct peer *p)
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
		    (sc->peer = server_peer_get(sa)) != NULL)
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
				server_sreq_free(sc->cur);
			server_peer_put(sc->peer);
			free(sc);
		}
		*socket_ctx = NULL;
	}
	metrics.connections = (int64_t)server_connections();
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
	return nconns + front_connections();
}

size_t
server_peer_connections(struct request *r)
{
	struct sreq	*s = r->conn;
	struct sconn	*sc;

	if (s->fc != NULL)
		return front_peer_connections(s->fc);
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
			server_sreq_free(s->sc->cur);
		s->sc->cur = s;
	}
	return s;
}

static void	unwatch(struct sreq *);

void
server_sreq_free(struct sreq *s)
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
	server_sreq_free(s);
	*req_cls = NULL;
}

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

void
server_relay_begin(struct relay_walk *w, const char *head)
{
	w->p = head;
	w->has_conn = policy_head_value(head, "Connection", w->connection,
	    sizeof(w->connection)) == 0;
}

int
server_relay_next(struct relay_walk *w, struct head_line *l)
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

	server_relay_begin(&w, p);
	while (server_relay_next(&w, &l)) {
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
	/*
	 * Always close afterwards: libmicrohttpd only gets connections whose
	 * request has a chunked body (front.c), and the client's next
	 * connection comes back to supagate's own side (the strict gate,
	 * JSON errors, the fast hit path).  That also covers a body left
	 * unread by an early answer.
	 */
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
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

static int64_t
mhd_hook_cb(void *arg)
{
	MHD_UNSIGNED_LONG_LONG	to;
	size_t			i;
	int64_t			wait = -1;

	(void)arg;
	/* front connections woken since the last turn; later wakes wait */
	front_resume_woken();
	for (i = 0; i < ndaemons && nconns > 0; i++) {
		/* resumed connections are processed by the next run */
		MHD_run(daemons[i]);
		if (MHD_get_timeout(daemons[i], &to) == MHD_YES &&
		    (wait < 0 || (int64_t)to < wait))
			wait = (int64_t)to;
	}
	return front_has_woken() ? 0 : wait;
}

const char *
server_reason(int status)
{
	return MHD_get_reason_phrase_for((unsigned)status);
}

void
server_handoff(size_t listen_idx, int fd, const struct sockaddr *sa,
    socklen_t salen)
{
	/* libmicrohttpd owns the socket now, and closes it on failure */
	if (MHD_add_connection(daemons[listen_idx], fd, sa, salen) != MHD_YES)
		log_warn("cannot hand a connection to the HTTP server");
}

/*
 * A unix:PATH listener, mode 0660 (the file's group decides who else may
 * connect).  A socket file left by a daemon that is gone (nobody
 * accepts on it) is replaced; one in use, or any other file, is not.
 */
static int
bind_unix(const char *path)
{
	struct sockaddr_un	 sun;
	struct stat		 sb;
	mode_t			 old;
	int			 fd, probe, rc, gone;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_warnx("listen unix:%s: path too long", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (lstat(path, &sb) == 0) {
		if (!S_ISSOCK(sb.st_mode)) {
			log_warnx("listen unix:%s: exists and is not a socket",
			    path);
			return -1;
		}
		if ((probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
		    0)) == -1) {
			log_warn("socket");
			return -1;
		}
		gone = connect(probe, (struct sockaddr *)&sun,
		    sizeof(sun)) == -1 && errno == ECONNREFUSED;
		close(probe);
		if (!gone) {
			log_warnx("listen unix:%s: in use by another process",
			    path);
			return -1;
		}
		if (unlink(path) == -1) {
			log_warn("listen unix:%s: unlink", path);
			return -1;
		}
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1) {
		log_warn("socket");
		return -1;
	}
	old = umask(0117);
	rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (rc == -1 || listen(fd, 511) == -1) {
		log_warn("listen unix:%s", path);
		close(fd);
		return -1;
	}
	log_info("listening on unix:%s", path);
	return fd;
}

static int
bind_listen(const struct conf_listen *l)
{
	struct sockaddr_storage	ss;
	socklen_t		len;
	char			host[64];
	int			fd, one = 1, port;

	if (l->path[0] != '\0')
		return bind_unix(l->path);
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
		if (evloop_watch(fd, EVLOOP_IN, front_listen_ready_cb,
		    (void *)(uintptr_t)ndaemons) != 0) {
			MHD_stop_daemon(d);
			close(fd);
			return -1;
		}
		listen_fds[ndaemons] = fd;
		snprintf(listen_paths[ndaemons], sizeof(listen_paths[0]), "%s",
		    c->listen[i].path);
		daemons[ndaemons++] = d;
	}
	if (front_setup(c) != 0)
		return -1;
	return evloop_hook(mhd_hook_cb, NULL);
}

void
server_quiesce(void)
{
	size_t	i;

	front_quiesce();
	for (i = 0; i < ndaemons; i++)
		if (listen_fds[i] != -1) {
			evloop_unwatch(listen_fds[i]);
			close(listen_fds[i]);
			listen_fds[i] = -1;
			/* ours: nobody else gets a path that is in use */
			if (listen_paths[i][0] != '\0' &&
			    unlink(listen_paths[i]) == -1 && errno != ENOENT)
				log_warn("unlink %s", listen_paths[i]);
		}
}

void
server_teardown(void)
{
	const union MHD_DaemonInfo	*di;
	size_t				 i;

	front_teardown();
	server_quiesce();
	for (i = 0; i < ndaemons; i++) {
		di = MHD_get_daemon_info(daemons[i], MHD_DAEMON_INFO_EPOLL_FD);
		if (di != NULL)
			evloop_unwatch(di->epoll_fd);
		MHD_stop_daemon(daemons[i]);
	}
	ndaemons = 0;
}
