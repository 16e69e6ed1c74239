/*
 * fakeup: a fake Supabase upstream for the proxy scenario tests.
 *
 * Test infrastructure, not the daemon: libmicrohttpd with a thread per
 * connection, so handlers may block (delay, hang, drip).  The handler is
 * chosen by the last path segment, so "/rest/v1/echo" and "/echo" are the
 * same; an unknown segment echoes.
 *
 *   fakeup --port-file F	bind 127.0.0.1:0, write the port to F
 *
 * "jwks.json" answers the body last POSTed to /_fake/jwks (503 while that
 * is empty), for supagate's jwt-jwks-fetch.
 * "gen" counts its calls ({"n":k}; max-age 1 s the first time, 1 h later).
 * "status?code=N" answers N; with "&then=M", M to every later request
 * with the same path and query (as logged since the last reset).
 * "bytes?n=N" answers N bytes of the pattern; "&then=M" as for status
 * (the later answers are do_status()'s M).
 * "drop-on-reuse" echoes on a connection's first request and closes the
 * connection unanswered on any later one (a kept-alive connection that
 * the upstream dropped just as it was reused).
 */
#include "config.h"

#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <cJSON.h>

#include "pattern.h"

#define ECHO_BODY_MAX	(64 * 1024)
#define LOG_MAX		20000
#define HANG_MAX_MS	120000
#define DELAY_MAX_MS	120000
#define FREQ_MAGIC	0x46524551u

static atomic_int	 stopping;
static pthread_mutex_t	 log_mtx = PTHREAD_MUTEX_INITIALIZER;
static cJSON		*log_arr;	/* guarded by log_mtx */
static char		*jwks_body;	/* guarded by log_mtx */
static size_t		 jwks_len;	/* guarded by log_mtx */
static long		 log_dropped;	/* guarded by log_mtx */

/* one request, from the URI log callback to the completion callback */
struct freq {
	unsigned		magic;
	char			*uri;		/* raw request target */
	int			 started;
	char			*body;		/* first ECHO_BODY_MAX bytes */
	size_t			 body_len;
	uint64_t		 total;
	struct pattern_sum	 sum;
};

static void
die(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	fputs("fakeup: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* sleep ms in slices; 1 if told to stop meanwhile */
static int
nap_ms(long ms)
{
	struct timespec	ts;
	long		slice;

	while (ms > 0) {
		if (atomic_load(&stopping))
			return 1;
		slice = ms < 20 ? ms : 20;
		ts.tv_sec = 0;
		ts.tv_nsec = slice * 1000000L;
		nanosleep(&ts, NULL);
		ms -= slice;
	}
	return atomic_load(&stopping);
}

static long
arg_long(struct MHD_Connection *c, const char *name, long def)
{
	const char	*v;
	char		*end;
	long		 n;

	v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
	if (v == NULL || *v == '\0')
		return def;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0')
		return def;
	return n;
}

/* path of the raw target without the query */
static char *
raw_path(const char *uri)
{
	size_t	n = strcspn(uri, "?");
	char	*p = malloc(n + 1);

	if (p == NULL)
		die("out of memory");
	memcpy(p, uri, n);
	p[n] = '\0';
	return p;
}

static const char *
raw_query(const char *uri)
{
	const char	*q = strchr(uri, '?');

	return q == NULL ? "" : q + 1;
}

static enum MHD_Result
add_header_cb(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	cJSON	*arr = cls, *pair;

	(void)kind;
	pair = cJSON_CreateArray();
	cJSON_AddItemToArray(pair, cJSON_CreateString(key));
	cJSON_AddItemToArray(pair, cJSON_CreateString(value ? value : ""));
	cJSON_AddItemToArray(arr, pair);
	return MHD_YES;
}

static cJSON *
request_json(struct MHD_Connection *c, const char *method, const char *uri)
{
	cJSON	*o = cJSON_CreateObject(), *h = cJSON_CreateArray();
	char	*path = raw_path(uri);

	cJSON_AddStringToObject(o, "method", method);
	cJSON_AddStringToObject(o, "path", path);
	cJSON_AddStringToObject(o, "query", raw_query(uri));
	MHD_get_connection_values(c, MHD_HEADER_KIND, add_header_cb, h);
	cJSON_AddItemToObject(o, "headers", h);
	free(path);
	return o;
}

static void
log_request(struct MHD_Connection *c, const char *method, const char *uri)
{
	cJSON	*o = request_json(c, method, uri);

	pthread_mutex_lock(&log_mtx);
	if (cJSON_GetArraySize(log_arr) < LOG_MAX) {
		cJSON_AddItemToArray(log_arr, o);
		o = NULL;
	} else
		log_dropped++;
	pthread_mutex_unlock(&log_mtx);
	cJSON_Delete(o);
}

static enum MHD_Result
reply(struct MHD_Connection *c, unsigned status, const char *ctype,
    const char *body, size_t len)
{
	struct MHD_Response	*r;
	enum MHD_Result		 ret;

	r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body,
	    MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	if (ctype != NULL)
		MHD_add_response_header(r, "Content-Type", ctype);
	MHD_add_response_header(r, "X-Fakeup", "1");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
reply_json(struct MHD_Connection *c, unsigned status, cJSON *o)
{
	char		*s = cJSON_PrintUnformatted(o);
	enum MHD_Result	 ret;

	cJSON_Delete(o);
	if (s == NULL)
		return MHD_NO;
	ret = reply(c, status, "application/json", s, strlen(s));
	free(s);
	return ret;
}

/*
 * /gen: {"n":k} with k counting calls; the first answer may be cached for
 * 1 s, later ones for an hour (a stale entry, then a lasting refresh)
 */
static atomic_int	gen_n;

static enum MHD_Result
do_gen(struct MHD_Connection *c)
{
	struct MHD_Response	*r;
	enum MHD_Result		 ret;
	char			 body[32];
	int			 k = atomic_fetch_add(&gen_n, 1) + 1;

	snprintf(body, sizeof(body), "{\"n\":%d}", k);
	r = MHD_create_response_from_buffer(strlen(body), body,
	    MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "application/json");
	MHD_add_response_header(r, "Cache-Control", k == 1 ? "max-age=1" :
	    "max-age=3600");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* /bytes: n bytes of the pattern (/bytes?cut=M: die after M bytes) */
struct bytes_state {
	uint64_t	n;
	uint64_t	cut;	/* 0: none */
};

static ssize_t
bytes_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct bytes_state	*st = cls;
	size_t			 len;

	if (pos >= st->n)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (st->cut != 0 && pos >= st->cut)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	len = st->n - pos < max ? (size_t)(st->n - pos) : max;
	if (st->cut != 0 && pos + len > st->cut)
		len = (size_t)(st->cut - pos);
	pattern_fill((unsigned char *)buf, pos, len);
	return (ssize_t)len;
}

/* /sse: n events, ms apart */
struct sse_state {
	long	n, ms, i;
};

static ssize_t
sse_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sse_state	*st = cls;
	int			 len;

	(void)pos;
	if (st->i >= st->n)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (st->i > 0 && nap_ms(st->ms))
		return MHD_CONTENT_READER_END_WITH_ERROR;
	len = snprintf(buf, max, "id: %ld\ndata: {\"event\":%ld}\n\n",
	    st->i, st->i);
	if (len < 0 || (size_t)len >= max)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	st->i++;
	return len;
}

/* /slowbody: n bytes of the pattern, one every ms */
struct drip_state {
	long	n, ms;
};

static ssize_t
drip_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct drip_state	*st = cls;

	if ((long)pos >= st->n || max == 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (pos > 0 && nap_ms(st->ms))
		return MHD_CONTENT_READER_END_WITH_ERROR;
	pattern_fill((unsigned char *)buf, pos, 1);
	return 1;
}

static enum MHD_Result do_status(struct MHD_Connection *, const char *);
static int times_seen(const char *);

static enum MHD_Result
do_bytes(struct MHD_Connection *c, const char *uri)
{
	struct bytes_state	*st;
	struct MHD_Response	*r;
	enum MHD_Result		 ret;
	long			 n = arg_long(c, "n", 0);
	int			 chunked = arg_long(c, "chunked", 0) != 0;

	if (arg_long(c, "then", 0) != 0 && times_seen(uri) > 1)
		return do_status(c, uri);
	if (n < 0)
		n = 0;
	if ((st = malloc(sizeof(*st))) == NULL)
		return MHD_NO;
	st->n = (uint64_t)n;
	st->cut = (uint64_t)(arg_long(c, "cut", 0) > 0 ? arg_long(c, "cut", 0) :
	    0);
	r = MHD_create_response_from_callback(chunked ? MHD_SIZE_UNKNOWN :
	    (uint64_t)n, 64 * 1024, bytes_cb, st, free);
	if (r == NULL) {
		free(st);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "application/octet-stream");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
do_sse(struct MHD_Connection *c)
{
	struct sse_state	*st;
	struct MHD_Response	*r;
	enum MHD_Result		 ret;

	if ((st = calloc(1, sizeof(*st))) == NULL)
		return MHD_NO;
	st->n = arg_long(c, "n", 3);
	st->ms = arg_long(c, "ms", 200);
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, sse_cb,
	    st, free);
	if (r == NULL) {
		free(st);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "text/event-stream");
	MHD_add_response_header(r, "Cache-Control", "no-cache");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
do_slowbody(struct MHD_Connection *c)
{
	struct drip_state	*st;
	struct MHD_Response	*r;
	enum MHD_Result		 ret;

	if ((st = calloc(1, sizeof(*st))) == NULL)
		return MHD_NO;
	st->n = arg_long(c, "n", 10);
	st->ms = arg_long(c, "ms", 100);
	if (st->n < 0)
		st->n = 0;
	r = MHD_create_response_from_callback((uint64_t)st->n, 16, drip_cb,
	    st, free);
	if (r == NULL) {
		free(st);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "application/octet-stream");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* how many logged requests had this path and query (this one included) */
static int
times_seen(const char *uri)
{
	cJSON	*e, *p, *q;
	char	*path = raw_path(uri);
	int	 n = 0;

	pthread_mutex_lock(&log_mtx);
	cJSON_ArrayForEach(e, log_arr) {
		p = cJSON_GetObjectItemCaseSensitive(e, "path");
		q = cJSON_GetObjectItemCaseSensitive(e, "query");
		if (cJSON_IsString(p) && cJSON_IsString(q) &&
		    strcmp(p->valuestring, path) == 0 &&
		    strcmp(q->valuestring, raw_query(uri)) == 0)
			n++;
	}
	pthread_mutex_unlock(&log_mtx);
	free(path);
	return n;
}

static enum MHD_Result
do_status(struct MHD_Connection *c, const char *uri)
{
	struct MHD_Response	*r;
	enum MHD_Result		 ret;
	long			 code = arg_long(c, "code", 200);
	char			 body[128];
	int			 len;

	if (arg_long(c, "then", 0) != 0 && times_seen(uri) > 1)
		code = arg_long(c, "then", 0);
	if (code < 100 || code > 599)
		code = 400;
	if (code == 204 || code == 304)
		len = 0;
	else
		len = snprintf(body, sizeof(body),
		    "{\"status\":%ld,\"message\":\"fake status %ld\"}",
		    code, code);
	r = MHD_create_response_from_buffer((size_t)len, body,
	    MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	if (len > 0)
		MHD_add_response_header(r, "Content-Type", "application/json");
	if (code >= 300 && code < 400)
		MHD_add_response_header(r, "Location",
		    "/rest/v1/status?code=200&from=redirect");
	MHD_add_response_header(r, "X-Fakeup", "1");
	ret = MHD_queue_response(c, (unsigned)code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
set_header_cb(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	struct MHD_Response	*r = cls;

	(void)kind;
	if (MHD_add_response_header(r, key, value ? value : "") != MHD_YES)
		fprintf(stderr, "fakeup: cannot set response header %s\n",
		    key);
	return MHD_YES;
}

static enum MHD_Result
do_headers(struct MHD_Connection *c)
{
	struct MHD_Response	*r;
	enum MHD_Result		 ret;
	static const char	 body[] = "{\"headers\":true}";

	r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body,
	    MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "application/json");
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, set_header_cb, r);
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* wait until the client goes away (or we are stopped); then drop it */
static enum MHD_Result
do_hang(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo	*ci;
	struct pollfd			 pfd;
	char				 b;
	long				 waited = 0;
	ssize_t				 n;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci == NULL)
		return MHD_NO;
	while (waited < HANG_MAX_MS && !atomic_load(&stopping)) {
		pfd.fd = ci->connect_fd;
		pfd.events = POLLIN | POLLRDHUP;
		pfd.revents = 0;
		if (poll(&pfd, 1, 50) < 0 && errno != EINTR)
			break;
		waited += 50;
		if (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR))
			break;
		if (pfd.revents & POLLIN) {
			n = recv(pfd.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
			if (n == 0 || (n < 0 && errno != EAGAIN &&
			    errno != EINTR))
				break;
			nap_ms(50);	/* pipelined bytes: keep waiting */
			waited += 50;
		}
	}
	return MHD_NO;
}

static enum MHD_Result
do_echo(struct MHD_Connection *c, const char *method, struct freq *fr)
{
	cJSON	*o = request_json(c, method, fr->uri);

	cJSON_AddNumberToObject(o, "body_len", (double)fr->total);
	cJSON_AddNumberToObject(o, "sum", pattern_sum_value(&fr->sum));
	if (fr->total < ECHO_BODY_MAX && fr->body != NULL &&
	    memchr(fr->body, '\0', fr->body_len) == NULL) {
		fr->body[fr->body_len] = '\0';
		cJSON_AddStringToObject(o, "body", fr->body);
	} else if (fr->total == 0)
		cJSON_AddStringToObject(o, "body", "");
	return reply_json(c, MHD_HTTP_OK, o);
}

static enum MHD_Result
do_jwks(struct MHD_Connection *c)
{
	enum MHD_Result	ret;

	pthread_mutex_lock(&log_mtx);
	if (jwks_len == 0)
		ret = reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, "application/json",
		    "{\"code\":\"no_jwks\"}", 18);
	else
		ret = reply(c, MHD_HTTP_OK, "application/json", jwks_body,
		    jwks_len);
	pthread_mutex_unlock(&log_mtx);
	return ret;
}

static enum MHD_Result
do_fake(struct MHD_Connection *c, const char *what, struct freq *fr)
{
	char		*s;
	enum MHD_Result	 ret;

	if (strcmp(what, "jwks") == 0) {
		pthread_mutex_lock(&log_mtx);
		free(jwks_body);
		jwks_body = NULL;
		jwks_len = 0;
		if (fr->body_len > 0) {
			if ((jwks_body = malloc(fr->body_len)) == NULL)
				die("out of memory");
			memcpy(jwks_body, fr->body, fr->body_len);
			jwks_len = fr->body_len;
		}
		pthread_mutex_unlock(&log_mtx);
		return reply(c, MHD_HTTP_OK, "application/json", "{}", 2);
	}
	if (strcmp(what, "reset") == 0) {
		pthread_mutex_lock(&log_mtx);
		cJSON_Delete(log_arr);
		log_arr = cJSON_CreateArray();
		log_dropped = 0;
		pthread_mutex_unlock(&log_mtx);
		return reply(c, MHD_HTTP_OK, "application/json",
		    "{\"reset\":true}", 14);
	}
	if (strcmp(what, "log") == 0) {
		pthread_mutex_lock(&log_mtx);
		s = cJSON_PrintUnformatted(log_arr);
		pthread_mutex_unlock(&log_mtx);
		if (s == NULL)
			return MHD_NO;
		ret = reply(c, MHD_HTTP_OK, "application/json", s, strlen(s));
		free(s);
		return ret;
	}
	return reply(c, MHD_HTTP_NOT_FOUND, "application/json",
	    "{\"code\":\"fake_not_found\"}", 25);
}

static void *
uri_log_cb(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct freq	*fr;

	(void)cls;
	(void)c;
	if ((fr = calloc(1, sizeof(*fr))) == NULL)
		die("out of memory");
	fr->magic = FREQ_MAGIC;
	fr->sum = (struct pattern_sum)PATTERN_SUM_INIT;
	if ((fr->uri = strdup(uri)) == NULL)
		die("out of memory");
	return fr;
}

static void
completed_cb(void *cls, struct MHD_Connection *c, void **req_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct freq	*fr = *req_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (fr == NULL)
		return;
	if (fr->magic != FREQ_MAGIC)
		die("bad request magic");
	free(fr->uri);
	free(fr->body);
	free(fr);
	*req_cls = NULL;
}

/* requests served on each connection, for "drop-on-reuse" */
static void
conn_cb(void *cls, struct MHD_Connection *c, void **socket_ctx,
    enum MHD_ConnectionNotificationCode code)
{
	(void)cls;
	(void)c;
	if (code == MHD_CONNECTION_NOTIFY_STARTED)
		*socket_ctx = calloc(1, sizeof(unsigned));
	else {
		free(*socket_ctx);
		*socket_ctx = NULL;
	}
}

static unsigned
conn_requests(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo	*ci;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci != NULL && ci->socket_context != NULL ?
	    *(unsigned *)ci->socket_context : 0;
}

static enum MHD_Result
access_cb(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **req_cls)
{
	struct freq	*fr = *req_cls;
	char		*path;
	const char	*seg;
	enum MHD_Result	 ret;
	size_t		 n, room;

	(void)cls;
	(void)url;
	(void)version;
	if (fr == NULL || fr->magic != FREQ_MAGIC)
		return MHD_NO;
	path = raw_path(fr->uri);
	if (!fr->started) {
		const union MHD_ConnectionInfo *ci;

		fr->started = 1;
		ci = MHD_get_connection_info(c,
		    MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		if (ci != NULL && ci->socket_context != NULL)
			(*(unsigned *)ci->socket_context)++;
		if (strstr(path, "/_fake/") == NULL)
			log_request(c, method, fr->uri);
		free(path);
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		n = *upload_data_size;
		fr->total += n;
		pattern_sum_update(&fr->sum, (const unsigned char *)upload_data,
		    n);
		if (fr->body_len < ECHO_BODY_MAX) {
			if (fr->body == NULL &&
			    (fr->body = malloc(ECHO_BODY_MAX + 1)) == NULL)
				die("out of memory");
			room = ECHO_BODY_MAX - fr->body_len;
			if (n > room)
				n = room;
			memcpy(fr->body + fr->body_len, upload_data, n);
			fr->body_len += n;
		}
		*upload_data_size = 0;
		free(path);
		return MHD_YES;
	}

	seg = strrchr(path, '/');
	seg = seg == NULL ? path : seg + 1;
	if (strstr(path, "/_fake/") != NULL)
		ret = do_fake(c, seg, fr);
	else if (strcmp(seg, "sink") == 0) {
		cJSON	*o = cJSON_CreateObject();

		cJSON_AddNumberToObject(o, "bytes", (double)fr->total);
		cJSON_AddNumberToObject(o, "sum", pattern_sum_value(&fr->sum));
		ret = reply_json(c, MHD_HTTP_OK, o);
	} else if (strcmp(seg, "bytes") == 0)
		ret = do_bytes(c, fr->uri);
	else if (strcmp(seg, "delay") == 0) {
		long	ms = arg_long(c, "ms", 1000);

		if (ms > DELAY_MAX_MS)
			ms = DELAY_MAX_MS;
		if (nap_ms(ms))
			ret = MHD_NO;
		else {
			cJSON	*o = cJSON_CreateObject();

			cJSON_AddNumberToObject(o, "delayed_ms", (double)ms);
			ret = reply_json(c, MHD_HTTP_OK, o);
		}
	} else if (strcmp(seg, "hang") == 0)
		ret = do_hang(c);
	else if (strcmp(seg, "status") == 0)
		ret = do_status(c, fr->uri);
	else if (strcmp(seg, "sse") == 0)
		ret = do_sse(c);
	else if (strcmp(seg, "headers") == 0)
		ret = do_headers(c);
	else if (strcmp(seg, "slowbody") == 0)
		ret = do_slowbody(c);
	else if (strcmp(seg, "gen") == 0)
		ret = do_gen(c);
	else if (strcmp(seg, "jwks.json") == 0)
		ret = do_jwks(c);
	else if (strcmp(seg, "drop-on-reuse") == 0 && conn_requests(c) > 1)
		ret = MHD_NO;	/* a kept-alive connection dies unanswered */
	else
		ret = do_echo(c, method, fr);
	free(path);
	return ret;
}

static void
write_port(const char *file, unsigned port)
{
	char	 tmp[4096];
	FILE	*f;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", file) >= (int)sizeof(tmp))
		die("port file name too long");
	if ((f = fopen(tmp, "w")) == NULL)
		die("%s: %s", tmp, strerror(errno));
	fprintf(f, "%u\n", port);
	if (fclose(f) != 0 || rename(tmp, file) != 0)
		die("%s: %s", file, strerror(errno));
}

int
main(int argc, char *argv[])
{
	struct MHD_Daemon		*d;
	const union MHD_DaemonInfo	*di;
	struct sockaddr_in		 sin;
	struct rlimit			 rl;
	const char			*port_file = NULL;
	sigset_t			 set;
	int				 i, sig;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--port-file") == 0 && i + 1 < argc)
			port_file = argv[++i];
		else
			die("usage: fakeup --port-file FILE");
	}
	if (port_file == NULL)
		die("usage: fakeup --port-file FILE");

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);	/* threads inherit it */

	log_arr = cJSON_CreateArray();
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = 0;
	d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION |
	    MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
	    access_cb, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
	    MHD_OPTION_URI_LOG_CALLBACK, uri_log_cb, NULL,
	    MHD_OPTION_NOTIFY_COMPLETED, completed_cb, NULL,
	    MHD_OPTION_NOTIFY_CONNECTION, conn_cb, NULL,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)2000,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300,
	    MHD_OPTION_THREAD_STACK_SIZE, (size_t)(256 * 1024),
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(256 * 1024),
	    MHD_OPTION_END);
	if (d == NULL)
		die("cannot start the HTTP daemon");
	di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	if (di == NULL || di->port == 0)
		die("cannot learn the bound port");
	write_port(port_file, di->port);
	fprintf(stderr, "fakeup: listening on 127.0.0.1:%u\n",
	    (unsigned)di->port);

	for (;;) {
		if (sigwait(&set, &sig) != 0)
			die("sigwait failed");
		if (sig == SIGTERM || sig == SIGINT)
			break;
	}
	atomic_store(&stopping, 1);
	MHD_stop_daemon(d);
	pthread_mutex_lock(&log_mtx);
	cJSON_Delete(log_arr);
	pthread_mutex_unlock(&log_mtx);
	return 0;
}
