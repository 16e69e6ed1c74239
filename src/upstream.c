/* upstream: HTTP transfers on the curl multi-socket API in the evloop */
#include "config.h"

#include <curl/curl.h>

#include <sys/socket.h>

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "evloop.h"
#include "log.h"
#include "upstream.h"

#define XFER_MAGIC		0x75707866u
#define UPSTREAM_HEAD_MAX	(64 * 1024)
#define UPSTREAM_POOL		32	/* idle transfers kept for reuse */

/* per-fd state of the sockets curl opened (socks[]) */
#define SOCK_OURS	0x10	/* opened by opensocket_cb */
#define SOCK_WATCHED	0x20	/* registered with the evloop */
#define SOCK_PARKED	0x40	/* curl is done with it (pooled) */
#define SOCK_EVENTS	(EVLOOP_IN | EVLOOP_OUT)

struct upstream_xfer {
	unsigned		 magic;
	CURL			*easy;
	struct curl_slist	*hdrs;
	const struct upstream_cbs *cbs;
	void			*arg;
	struct sbuf		 head;
	int			 status;
	int			 head_done;
	int			 cb_failed;	/* a callback asked to abort */
	char			 errbuf[CURL_ERROR_SIZE];
	struct upstream_xfer	*next_free;
};

static CURLM			*multi;
static struct evloop_timer	 curl_timer;
static size_t			 nactive;
static struct upstream_xfer	*free_xfers;	/* with their easy handles */
static size_t			 nfree;
static unsigned char		*socks;
static size_t			 nsocks;
static int			 no_proxy_env;	/* no *_proxy variable set */

static void check_done(void);

static unsigned char *
sock_state(curl_socket_t s)
{
	unsigned char	*n;
	size_t		 want;

	if (s < 0)
		return NULL;
	if ((size_t)s >= nsocks) {
		want = (size_t)s + 64;
		if ((n = realloc(socks, want)) == NULL)
			return NULL;
		memset(n + nsocks, 0, want - nsocks);
		socks = n;
		nsocks = want;
	}
	return &socks[s];
}

static void
socket_ready_cb(int fd, unsigned events, void *arg)
{
	unsigned char	*ss = sock_state(fd);
	int		 flags = 0, running;

	(void)arg;
	if (ss != NULL && (*ss & SOCK_PARKED)) {
		/*
		 * An idle pooled connection became readable: the peer
		 * closed it (or sent junk).  Stop watching; curl finds out
		 * when it next checks the connection.
		 */
		evloop_unwatch(fd);
		*ss &= SOCK_OURS;
		return;
	}
	if (events & EVLOOP_IN)
		flags |= CURL_CSELECT_IN;
	if (events & EVLOOP_OUT)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(multi, fd, flags, &running);
	check_done();
}

/*
 * curl's wishes for socket s.  The epoll registration changes only when
 * the wanted events do: a connection that goes back to curl's pool
 * (CURL_POLL_REMOVE) stays registered for reading, parked, so that its
 * next transfer (which waits for reading again) costs no epoll_ctl.  A
 * parked socket is unregistered when it becomes readable while idle or
 * when curl closes it (closesocket_cb).  Sockets curl did not open
 * through opensocket_cb (e.g. a resolver's) are never parked: they may
 * be closed without a word to us.
 */
static int
socket_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	unsigned char	*ss = sock_state(s);
	unsigned	 ev = 0;

	(void)e;
	(void)userp;
	(void)socketp;
	if (what == CURL_POLL_REMOVE) {
		if (ss != NULL && (*ss & SOCK_OURS) && (*ss & SOCK_WATCHED) &&
		    (*ss & SOCK_EVENTS) == EVLOOP_IN) {
			*ss |= SOCK_PARKED;
			return 0;
		}
		evloop_unwatch(s);
		if (ss != NULL)
			*ss &= SOCK_OURS;
		return 0;
	}
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		ev |= EVLOOP_IN;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		ev |= EVLOOP_OUT;
	if (ss != NULL && (*ss & SOCK_WATCHED) && (*ss & SOCK_EVENTS) == ev) {
		*ss &= ~SOCK_PARKED;
		return 0;
	}
	if (evloop_watch(s, ev, socket_ready_cb, NULL) != 0)
		return -1;
	if (ss != NULL)
		*ss = (unsigned char)((*ss & SOCK_OURS) | SOCK_WATCHED | ev);
	return 0;
}

static curl_socket_t
opensocket_cb(void *clientp, curlsocktype purpose,
    struct curl_sockaddr *addr)
{
	unsigned char	*ss;
	curl_socket_t	 s;

	(void)clientp;
	(void)purpose;
	s = socket(addr->family, addr->socktype | SOCK_CLOEXEC,
	    addr->protocol);
	if (s == -1)
		return CURL_SOCKET_BAD;
	if ((ss = sock_state(s)) != NULL)
		*ss = SOCK_OURS;
	return s;
}

static int
closesocket_cb(void *clientp, curl_socket_t s)
{
	unsigned char	*ss = sock_state(s);

	(void)clientp;
	if (ss != NULL) {
		if (*ss & SOCK_WATCHED)
			evloop_unwatch(s);
		*ss = 0;
	}
	return close(s);
}

static void
timer_fire_cb(void *arg)
{
	int	running;

	(void)arg;
	curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done();
}

static int
timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	(void)m;
	(void)userp;
	if (timeout_ms < 0)
		evloop_timer_disarm(&curl_timer);
	else
		evloop_timer_arm(&curl_timer, timeout_ms, timer_fire_cb, NULL);
	return 0;
}

int
upstream_setup(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_warnx("curl_global_init failed");
		return -1;
	}
	if ((multi = curl_multi_init()) == NULL) {
		log_warnx("curl_multi_init failed");
		return -1;
	}
	curl_timer.due_ms = -1;
	/* the environment of a daemon does not change: look once */
	no_proxy_env = getenv("http_proxy") == NULL &&
	    getenv("https_proxy") == NULL && getenv("HTTPS_PROXY") == NULL &&
	    getenv("all_proxy") == NULL && getenv("ALL_PROXY") == NULL;
	curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 256L);
	return 0;
}

void
upstream_teardown(void)
{
	struct upstream_xfer	*x;

	evloop_timer_disarm(&curl_timer);
	while ((x = free_xfers) != NULL) {
		free_xfers = x->next_free;
		curl_easy_cleanup(x->easy);
		sbuf_fini(&x->head);
		free(x);
	}
	nfree = 0;
	if (multi != NULL)
		curl_multi_cleanup(multi);
	multi = NULL;
	curl_global_cleanup();
	free(socks);
	socks = NULL;
	nsocks = 0;
}

size_t
upstream_active(void)
{
	return nactive;
}

/*
 * Done with x: its easy handle (options reset, connections and DNS
 * cache kept by the multi handle) and header buffer go back to a small
 * free list for the next transfer.
 */
static void
xfer_free(struct upstream_xfer *x)
{
	curl_multi_remove_handle(multi, x->easy);
	curl_slist_free_all(x->hdrs);
	x->hdrs = NULL;
	x->magic = 0;
	nactive--;
	if (nfree < UPSTREAM_POOL) {
		curl_easy_reset(x->easy);
		x->head.len = 0;
		x->head.overflow = 0;
		x->next_free = free_xfers;
		free_xfers = x;
		nfree++;
		return;
	}
	curl_easy_cleanup(x->easy);
	sbuf_fini(&x->head);
	free(x);
}

/* a zeroed transfer with an easy handle, from the free list if it can */
static struct upstream_xfer *
xfer_new(void)
{
	struct upstream_xfer	*x;
	struct sbuf		 head;
	CURL			*easy;

	if ((x = free_xfers) != NULL) {
		free_xfers = x->next_free;
		nfree--;
		easy = x->easy;
		head = x->head;
		memset(x, 0, offsetof(struct upstream_xfer, errbuf));
		x->errbuf[0] = '\0';
		x->next_free = NULL;
		x->easy = easy;
		x->head = head;
		return x;
	}
	if ((x = calloc(1, sizeof(*x))) == NULL)
		return NULL;
	sbuf_init(&x->head, UPSTREAM_HEAD_MAX);
	if ((x->easy = curl_easy_init()) == NULL) {
		free(x);
		return NULL;
	}
	return x;
}

static size_t
header_cb(char *p, size_t size, size_t nmemb, void *userp)
{
	struct upstream_xfer	*x = userp;
	size_t			 n = size * nmemb;
	int			 major, minor, status;

	assert(x->magic == XFER_MAGIC);
	if (x->head_done)		/* trailers: ignored */
		return n;
	if (n >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		/* a new status line: an earlier 1xx head is discarded */
		if (sscanf(p, "HTTP/%d.%d %d", &major, &minor, &status) != 3 &&
		    sscanf(p, "HTTP/%d %d", &major, &status) != 2)
			return 0;
		x->status = status;
		x->head.len = 0;
		return n;
	}
	if ((n == 2 && p[0] == '\r' && p[1] == '\n') ||
	    (n == 1 && p[0] == '\n')) {
		if (x->status >= 100 && x->status < 200)
			return n;
		x->head_done = 1;
		if (x->cbs->on_head(x->arg, x->status, sbuf_str(&x->head),
		    x->head.len) != 0) {
			x->cb_failed = 1;
			return 0;
		}
		return n;
	}
	if (sbuf_add(&x->head, p, n) != 0)
		return 0;
	return n;
}

static size_t
write_cb(char *p, size_t size, size_t nmemb, void *userp)
{
	struct upstream_xfer	*x = userp;
	size_t			 n = size * nmemb, r;

	assert(x->magic == XFER_MAGIC);
	r = x->cbs->on_data(x->arg, p, n);
	if (r == UPSTREAM_PAUSE)
		return CURL_WRITEFUNC_PAUSE;
	if (r == UPSTREAM_ABORT) {
		x->cb_failed = 1;
		return 0;
	}
	return r;
}

static size_t
read_cb(char *p, size_t size, size_t nmemb, void *userp)
{
	struct upstream_xfer	*x = userp;
	size_t			 r;

	assert(x->magic == XFER_MAGIC);
	r = x->cbs->on_read(x->arg, p, size * nmemb);
	if (r == UPSTREAM_PAUSE)
		return CURL_READFUNC_PAUSE;
	if (r == UPSTREAM_ABORT) {
		x->cb_failed = 1;
		return CURL_READFUNC_ABORT;
	}
	return r;
}

static int
seek_cb(void *userp, curl_off_t offset, int origin)
{
	struct upstream_xfer	*x = userp;

	assert(x->magic == XFER_MAGIC);
	if (offset != 0 || origin != SEEK_SET || x->cbs->on_rewind == NULL ||
	    x->cbs->on_rewind(x->arg) != 0)
		return CURL_SEEKFUNC_CANTSEEK;
	return CURL_SEEKFUNC_OK;
}

struct upstream_xfer *
upstream_start(const struct upstream_req *rq, const struct upstream_cbs *cbs,
    void *arg)
{
	struct upstream_xfer	*x;
	struct curl_slist	*l;
	size_t			 i;

	if ((x = xfer_new()) == NULL)
		return NULL;
	x->magic = XFER_MAGIC;
	x->cbs = cbs;
	x->arg = arg;
	nactive++;
	for (i = 0; i < rq->nheaders; i++) {
		if ((l = curl_slist_append(x->hdrs, rq->headers[i])) == NULL)
			goto fail;
		x->hdrs = l;
	}
	/* curl's own defaults that would change the request */
	if ((l = curl_slist_append(x->hdrs, "Expect:")) == NULL)
		goto fail;
	x->hdrs = l;
	if (!rq->has_body || rq->body_len >= 0) {
		if ((l = curl_slist_append(x->hdrs,
		    "Transfer-Encoding:")) == NULL)
			goto fail;
		x->hdrs = l;
	}

	curl_easy_setopt(x->easy, CURLOPT_URL, rq->url);
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
	curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(x->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(x->easy, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(x->easy, CURLOPT_HTTP_VERSION,
	    (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(x->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(x->easy, CURLOPT_BUFFERSIZE, 65536L);
	curl_easy_setopt(x->easy, CURLOPT_UPLOAD_BUFFERSIZE, 65536L);
	curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)rq->connect_timeout_ms);
	curl_easy_setopt(x->easy, CURLOPT_DNS_CACHE_TIMEOUT, 60L);
	curl_easy_setopt(x->easy, CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
	curl_easy_setopt(x->easy, CURLOPT_CLOSESOCKETFUNCTION, closesocket_cb);
	if (no_proxy_env) {
		/* saves curl's getenv() of every proxy variable per transfer */
		curl_easy_setopt(x->easy, CURLOPT_PROXY, "");
		curl_easy_setopt(x->easy, CURLOPT_NOPROXY, "");
	}
	if (rq->ca_file != NULL)
		curl_easy_setopt(x->easy, CURLOPT_CAINFO, rq->ca_file);
	curl_easy_setopt(x->easy, CURLOPT_USERAGENT, rq->user_agent);
	curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->hdrs);
	curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
	/* bodies pass through as they are: no Accept-Encoding of our own */
	curl_easy_setopt(x->easy, CURLOPT_HTTP_CONTENT_DECODING, 0L);
	curl_easy_setopt(x->easy, CURLOPT_HTTP_TRANSFER_DECODING, 1L);

	if (strcmp(rq->method, "HEAD") == 0)
		curl_easy_setopt(x->easy, CURLOPT_NOBODY, 1L);
	else if (rq->has_body) {
		curl_easy_setopt(x->easy, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(x->easy, CURLOPT_READFUNCTION, read_cb);
		curl_easy_setopt(x->easy, CURLOPT_READDATA, x);
		curl_easy_setopt(x->easy, CURLOPT_SEEKFUNCTION, seek_cb);
		curl_easy_setopt(x->easy, CURLOPT_SEEKDATA, x);
		curl_easy_setopt(x->easy, CURLOPT_INFILESIZE_LARGE,
		    (curl_off_t)rq->body_len);
		curl_easy_setopt(x->easy, CURLOPT_CUSTOMREQUEST, rq->method);
	} else if (strcmp(rq->method, "GET") != 0)
		curl_easy_setopt(x->easy, CURLOPT_CUSTOMREQUEST, rq->method);

	if (curl_multi_add_handle(multi, x->easy) != CURLM_OK)
		goto fail;
	return x;
 fail:
	xfer_free(x);
	return NULL;
}

void
upstream_unpause(struct upstream_xfer *x)
{
	assert(x->magic == XFER_MAGIC);
	curl_easy_pause(x->easy, CURLPAUSE_CONT);
}

void
upstream_abort(struct upstream_xfer *x)
{
	if (x == NULL)
		return;
	assert(x->magic == XFER_MAGIC);
	xfer_free(x);
}

const char *
upstream_strerror(const struct upstream_xfer *x)
{
	return x->errbuf;
}

static enum upstream_result
map_result(struct upstream_xfer *x, CURLcode rc)
{
	if (rc == CURLE_OK)
		return UPSTREAM_OK;
	if (x->cb_failed)
		return UPSTREAM_ERR_ABORTED;
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return UPSTREAM_ERR_CONNECT;
	case CURLE_OPERATION_TIMEDOUT:
		return UPSTREAM_ERR_TIMEOUT;
	case CURLE_OUT_OF_MEMORY:
		return UPSTREAM_ERR_NOMEM;
	default:
		/* a connection that died before any response head */
		return x->head_done ? UPSTREAM_ERR_PROTOCOL :
		    (rc == CURLE_GOT_NOTHING || rc == CURLE_RECV_ERROR ||
		    rc == CURLE_SEND_ERROR) ? UPSTREAM_ERR_CONNECT :
		    UPSTREAM_ERR_PROTOCOL;
	}
}

static void
check_done(void)
{
	struct upstream_xfer	*x;
	CURLMsg			*m;
	int			 left;
	enum upstream_result	 res;

	while ((m = curl_multi_info_read(multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		assert(x->magic == XFER_MAGIC);
		res = map_result(x, m->data.result);
		if (res != UPSTREAM_OK && res != UPSTREAM_ERR_ABORTED)
			log_warnx("upstream: %s", x->errbuf[0] != '\0' ?
			    x->errbuf : curl_easy_strerror(m->data.result));
		curl_multi_remove_handle(multi, x->easy);
		x->cbs->on_done(x->arg, res);
		xfer_free(x);
	}
}
