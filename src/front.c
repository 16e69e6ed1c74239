/*
 * front: supagate's own HTTP/1.1 side of the server.  It accepts every
 * client connection on the sockets server.c listens on, checks each
 * request head with the gate, answers the requests without a body or
 * with a Content-Length one itself (keep-alive, wake-ups from the proxy,
 * lingering close, the sweep of slow clients), and hands a connection to
 * libmicrohttpd (server.c) at its first chunked request.  front.h is the
 * interface between the two.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "evloop.h"
#include "front.h"
#include "gate.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "proxy.h"
#include "server.h"

#define FRONT_BLOCK		(64 * 1024)	/* streamed body piece */
#define FRONT_KEEP		4096		/* buffer kept when idle */
#define FRONT_IN		(16 * 1024)	/* request body piece */

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

static struct front		*fronts;
static size_t			 nfront;	/* not yet rejected */
static size_t			 nclosing;	/* rejected, lingering */
static int			 quiescing;
static TAILQ_HEAD(, front)	 wokenq = TAILQ_HEAD_INITIALIZER(wokenq);
static size_t			 nwoken;
static char			*peekbuf;
static size_t			 peekmax;
static struct evloop_timer	 gate_timer;

static void	front_cb(int, unsigned, void *);

static void
conns_changed(void)
{
	metrics.connections = (int64_t)server_connections();
}

size_t
front_connections(void)
{
	return nfront;
}

size_t
front_peer_connections(const struct front *fc)
{
	return fc->peer != NULL ? fc->peer->nconn : 0;
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
		server_sreq_free(fc->s);
	}
	if (fc->fd != -1) {
		evloop_forget(fc->fd);
		close(fc->fd);
	}
	server_peer_put(fc->peer);
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

void
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
	server_peer_put(fc->peer);
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
	    server_reason(r->status));
	out_add(fc, line, (size_t)n);
	server_relay_begin(&w, sbuf_str(&r->head));
	while (server_relay_next(&w, &l)) {
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
	/* the body and its framing: size is UINT64_MAX when not known */
	if (r->is_error && r->body_fd != -1)
		size = r->body_fd_len;
	else if (r->is_error)
		size = r->errbody.s != NULL ? r->errbody.len : 0;
	else if (policy_head_length(sbuf_str(&r->head), &size) != 0)
		size = UINT64_MAX;
	if (no_body)
		;
	else if (size != UINT64_MAX) {
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
	server_sreq_free(s);
	server_peer_put(fc->peer);
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
			if (got == -1 && errno == EINTR)
				continue;
			if (got == -1 && (errno == EAGAIN ||
			    errno == EWOULDBLOCK)) {
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

void
front_resume_woken(void)
{
	struct front	*fc;
	size_t		 n;

	for (n = nwoken; n > 0 && (fc = TAILQ_FIRST(&wokenq)) != NULL; n--) {
		TAILQ_REMOVE(&wokenq, fc, wentry);
		fc->woken = 0;
		nwoken--;
		front_resume(fc);
	}
}

int
front_has_woken(void)
{
	return nwoken > 0;
}

/* hand the connection, its next request unread, to libmicrohttpd */
static void
front_handoff(struct front *fc)
{
	int	fd = fc->fd;

	evloop_unwatch(fd);
	fc->fd = -1;
	server_handoff(fc->listen_idx, fd, (struct sockaddr *)&fc->addr,
	    fc->addrlen);
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
	if ((fc->peer = server_peer_get((struct sockaddr *)&fc->addr)) != NULL)
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

void
front_listen_ready_cb(int lfd, unsigned events, void *arg)
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
		if (server_connections() > c->max_connections) {
			metrics.rejected_overload++;
			front_reject(fc, 503, "overloaded",
			    "too many connections; retry later");
			continue;
		}
		if (front_watch(fc, 0) != 0)
			front_close(fc);
	}
}

int
front_setup(const struct conf *c)
{
	peekmax = (size_t)c->max_header_size;
	if ((peekbuf = malloc(peekmax)) == NULL)
		return -1;
	quiescing = 0;
	gate_timer.due_ms = -1;
	evloop_timer_arm(&gate_timer, GATE_SWEEP_MS, gate_sweep_cb, NULL);
	return 0;
}

void
front_quiesce(void)
{
	struct front	*fc, *next;

	/* idle kept-alive connections close; busy ones after the answer */
	quiescing = 1;
	for (fc = fronts; fc != NULL; fc = next) {
		next = fc->next;
		if (fc->s == NULL && !fc->closing)
			front_close(fc);
	}
}

void
front_teardown(void)
{
	while (fronts != NULL)
		front_close(fronts);
	evloop_timer_disarm(&gate_timer);
	free(peekbuf);
	peekbuf = NULL;
}
