/* server: the libmicrohttpd side: listen sockets, intake, response emit */
#include "config.h"

#include <sys/socket.h>
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
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "proxy.h"
#include "server.h"

#define SREQ_MAGIC		0x73726571u
#define SERVER_BLOCK		(64 * 1024)
#define SERVER_CLIENT_TIMEOUT_S	60
#define SERVER_CONN_HEADROOM	64
#define SERVER_DISCARD_MAX	(8 * 1024 * 1024)

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
};

/* open connections per client address, for max-connections-per-peer */
struct peer {
	struct sockaddr_storage	 addr;
	size_t			 nconn;
	struct peer		*next;
};

static struct MHD_Daemon	*daemons[CONF_LISTEN_MAX];
static int			 listen_fds[CONF_LISTEN_MAX];
static size_t			 ndaemons;
static size_t			 nconns;
static struct peer		*peers;

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

static void
conn_notify_cb(void *cls, struct MHD_Connection *c, void **socket_ctx,
    enum MHD_ConnectionNotificationCode code)
{
	const struct sockaddr	*sa;
	struct peer		*p;

	(void)cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		nconns++;
		p = NULL;
		if ((sa = conn_peer(c)) != NULL && (p = peer_get(sa)) != NULL)
			p->nconn++;
		*socket_ctx = p;
	} else {
		nconns--;
		peer_put(*socket_ctx);
		*socket_ctx = NULL;
	}
	metrics.connections = (int64_t)nconns;
}

size_t
server_connections(void)
{
	return nconns;
}

size_t
server_peer_connections(struct request *r)
{
	struct sreq		*s = r->conn;
	const union MHD_ConnectionInfo *ci;
	struct peer		*p;

	ci = MHD_get_connection_info(s->conn,
	    MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci == NULL || (p = ci->socket_context) == NULL)
		return 0;
	return p->nconn;
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
	s->r->conn = s;
	return s;
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
	proxy_free(s->r);
	s->magic = 0;
	free(s);
	*req_cls = NULL;
}

void
server_wake(struct request *r)
{
	struct sreq	*s = r->conn;

	if (s == NULL || !s->suspended)
		return;
	s->suspended = 0;
	MHD_resume_connection(s->conn);
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

	MHD_get_connection_values(s->conn, MHD_HEADER_KIND, count_cb, &a);
	return a.n;
}

struct each_arg {
	int	(*cb)(void *, const char *, const char *);
	void	*arg;
	int	 stopped;
};

static enum MHD_Result
each_cb(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct each_arg	*a = cls;

	(void)kind;
	if (key == NULL)
		return MHD_YES;
	if (a->cb(a->arg, key, value != NULL ? value : "") != 0) {
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
	struct each_arg	 a = { cb, arg, 0 };

	MHD_get_connection_values(s->conn, MHD_HEADER_KIND, each_cb, &a);
	return a.stopped ? -1 : 0;
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
	const char	*eol;
	char		*end;
	unsigned long long v;

	for (; *p != '\0'; p = eol + (*eol != '\0')) {
		eol = strchr(p, '\n');
		if (eol == NULL)
			eol = p + strlen(p);
		if (strncasecmp(p, "Content-Length:", 15) == 0) {
			errno = 0;
			v = strtoull(p + 15, &end, 10);
			if (errno == 0 && end != p + 15)
				return v;
		}
	}
	return MHD_SIZE_UNKNOWN;
}

/* the value of header name in a block of "Name: value\r\n" lines */
static char *
head_value(const char *p, const char *name)
{
	const char	*eol, *v;
	size_t		 n = strlen(name), len;

	for (; *p != '\0'; p = eol + (*eol != '\0')) {
		eol = strchr(p, '\n');
		if (eol == NULL)
			eol = p + strlen(p);
		if (strncasecmp(p, name, n) != 0 || p[n] != ':')
			continue;
		for (v = p + n + 1; *v == ' ' || *v == '\t'; v++)
			;
		for (len = eol - v; len > 0 && (v[len - 1] == '\r' ||
		    v[len - 1] == ' '); len--)
			;
		return strndup(v, len);
	}
	return NULL;
}

/* copy "Name: value\r\n" lines onto the response, minus hop-by-hop ones */
static int
add_head(struct MHD_Response *resp, const char *p)
{
	char		 name[256], *value, *line, *connection;
	const char	*eol, *colon;
	size_t		 nlen, llen;

	connection = head_value(p, "Connection");
	for (; *p != '\0'; p = eol + (*eol != '\0')) {
		eol = strchr(p, '\n');
		if (eol == NULL)
			eol = p + strlen(p);
		llen = eol - p;
		if (llen > 0 && p[llen - 1] == '\r')
			llen--;
		if (llen == 0 || *p == ' ' || *p == '\t')
			continue;	/* blank or obsolete line folding */
		if ((colon = memchr(p, ':', llen)) == NULL)
			continue;
		nlen = colon - p;
		if (nlen == 0 || nlen >= sizeof(name))
			continue;
		memcpy(name, p, nlen);
		name[nlen] = '\0';
		if (policy_drop_response_header(name) || (connection != NULL &&
		    policy_connection_lists(connection, name)))
			continue;
		if ((line = strndup(colon + 1, llen - nlen - 1)) == NULL) {
			free(connection);
			return -1;
		}
		for (value = line; *value == ' ' || *value == '\t'; value++)
			;
		if (MHD_add_response_header(resp, name, value) != MHD_YES)
			log_debug("%s: header %s refused", __func__, name);
		free(line);
	}
	free(connection);
	return 0;
}

static enum MHD_Result
respond(struct sreq *s)
{
	struct request		*r = s->r;
	struct MHD_Response	*resp;
	enum MHD_Result		 ret;
	uint64_t		 size;

	if (r->is_error) {
		resp = MHD_create_response_from_buffer(r->errbody.len,
		    (void *)sbuf_str(&r->errbody), MHD_RESPMEM_MUST_COPY);
		if (resp != NULL)
			r->resp_bytes = r->errbody.len;
	} else {
		size = head_length(sbuf_str(&r->head));
		if (r->status == 204 || r->status == 304 ||
		    (r->status >= 100 && r->status < 200))
			size = 0;
		resp = MHD_create_response_from_callback(size, SERVER_BLOCK,
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
		next = proxy_begin(s->r, method, conn_peer(c));
		if (next == PROXY_RESPOND)
			return respond(s);
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
	for (i = 0; i < ndaemons; i++) {
		/* resumed connections are processed by the next run */
		MHD_run(daemons[i]);
		if (MHD_get_timeout(daemons[i], &to) == MHD_YES &&
		    (wait < 0 || (int64_t)to < wait))
			wait = (int64_t)to;
	}
	return wait;
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
		    MHD_USE_ERROR_LOG, 0, NULL, NULL, access_cb, NULL,
		    MHD_OPTION_LISTEN_SOCKET, fd,
		    MHD_OPTION_URI_LOG_CALLBACK, uri_log_cb, NULL,
		    MHD_OPTION_NOTIFY_COMPLETED, completed_cb, NULL,
		    MHD_OPTION_NOTIFY_CONNECTION, conn_notify_cb, NULL,
		    MHD_OPTION_EXTERNAL_LOGGER, mhd_log_cb, NULL,
		    MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		    (size_t)(c->max_header_size + 64 * 1024),
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
		listen_fds[ndaemons] = fd;
		daemons[ndaemons++] = d;
	}
	return evloop_hook(mhd_hook_cb, NULL);
}

void
server_quiesce(void)
{
	size_t	i;
	int	fd;

	for (i = 0; i < ndaemons; i++)
		if ((fd = MHD_quiesce_daemon(daemons[i])) != -1) {
			close(fd);
			listen_fds[i] = -1;
		}
}

void
server_teardown(void)
{
	const union MHD_DaemonInfo	*di;
	size_t				 i;

	for (i = 0; i < ndaemons; i++) {
		di = MHD_get_daemon_info(daemons[i], MHD_DAEMON_INFO_EPOLL_FD);
		if (di != NULL)
			evloop_unwatch(di->epoll_fd);
		MHD_stop_daemon(daemons[i]);
		if (listen_fds[i] != -1)
			close(listen_fds[i]);
	}
	ndaemons = 0;
}
