/*
 * check_cache_stack: scenario tests of supagate's read cache against the
 * real loopback stack (PostgreSQL with RLS + PostgREST + the Auth
 * emulator), issue 4's test list.
 *
 * main() starts one stack (tests/stack/stack-up into a temp dir), a
 * counting relay and the supagates the cases share, runs the suite, then
 * stops all of it (also on failure and on SIGINT/SIGTERM).  Check forks a
 * child per test; only the parent tears down.  Cases that restart or
 * kill supagate start their own, in the test's child (Check kills the
 * child's process group when a test ends, so none is left behind).
 *
 * Counting upstream requests: supagate talks to PostgREST through a relay
 * of our own, a separate process (forked before the suite) that accepts on
 * 127.0.0.1:0 and copies bytes both ways.  It parses the client-to-
 * upstream byte stream as HTTP/1.1 requests (request line, headers,
 * Content-Length or chunked body) and counts every request head; the count
 * and the request lines live in shared memory that every test child reads.
 * That is exact (one count per request PostgREST receives, nothing
 * depends on log timing), and it lets a test stop the "uplink" (refuse:
 * the listener is closed, or hang: accept and never forward) and hold a
 * request until the test releases it, without touching the shared
 * PostgREST.  Two relays: 0 for the shared supagates, 1 for the one whose
 * uplink the failure cases break.
 *
 * Environment: SUPAGATE_SRCDIR, SUPAGATE_NODE_MODULES, SUPAGATE_BIN (as
 * for check_stack).  H_KEEP=1 keeps the temp dirs.
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <netinet/in.h>
#include <arpa/inet.h>

#include <check.h>
#include <cJSON.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "harness.h"

#define ALICE	"11111111-1111-1111-1111-111111111111"
#define BOB	"22222222-2222-2222-2222-222222222222"

static pid_t	 parent_pid;

static char	 anon_key[1024], alice_jwt[1024], alice2_jwt[1024],
		 bob_jwt[1024];

/* the shared supagates */
static struct h_proc	g_v;	/* verified identities (jwt-secret-file) */
static struct h_proc	g_b;	/* bearer-hash identities */
static struct h_proc	g_sie;	/* relay 1, ttl 1s, stale-if-error 1h */
static struct h_proc	*const gates[] = { &g_v, &g_b, &g_sie };
#define NGATES	(sizeof(gates) / sizeof(gates[0]))

/* ---- the counting relay ---------------------------------------------- */

#define NRELAY		2
#define RLOG		256
#define RLOG_LEN	200
#define RCONN_MAX	600
#define RBUF		(64 * 1024)

enum relay_mode { R_UP, R_DOWN, R_HANG };

struct relay_ctl {
	int		port[NRELAY];
	int		mode[NRELAY];		/* wanted, set by tests */
	int		applied[NRELAY];	/* what the relay did */
	int		hold[NRELAY];		/* hold the next request */
	int		release[NRELAY];	/* let held requests go */
	int		held[NRELAY];		/* requests held now */
	unsigned long	nreq[NRELAY];
	unsigned long	nlog;
	char		log[RLOG][RLOG_LEN];
};

static struct relay_ctl	*rc;
static pid_t		 relay_pid = -1;

#define LOAD(x)		__atomic_load_n(&(x), __ATOMIC_SEQ_CST)
#define STORE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_SEQ_CST)

enum pstate { P_HEAD, P_BODY, P_CSIZE, P_CDATA, P_CCRLF, P_TRAILER };

struct rconn {
	int		 cfd, ufd;	/* -1: unused */
	int		 relay;
	int		 held;
	int		 u_eof;
	char		*c2u, *u2c;
	size_t		 c2u_len, u2c_len;
	/* request parser */
	enum pstate	 ps;
	char		 line[16384];
	size_t		 line_len;
	uint64_t	 left;
	int		 chunked;
};

static struct rconn	*conns;
static int		 lfd[NRELAY] = { -1, -1 };

static int
relay_listen(int port)
{
	struct sockaddr_in	sa;
	socklen_t		len = sizeof(sa);
	int			fd, one = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons(port);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    listen(fd, 1024) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) == -1) {
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static void
rconn_close(struct rconn *c)
{
	if (c->cfd != -1)
		close(c->cfd);
	if (c->ufd != -1)
		close(c->ufd);
	if (c->held)
		__atomic_sub_fetch(&rc->held[c->relay], 1, __ATOMIC_SEQ_CST);
	free(c->c2u);
	free(c->u2c);
	memset(c, 0, sizeof(*c));
	c->cfd = c->ufd = -1;
}

/* a request head is complete in c->line: count and log it */
static void
relay_request(struct rconn *c)
{
	unsigned long	 n;
	char		*eol, *p, *v;
	size_t		 i;

	c->line[c->line_len] = '\0';
	eol = strstr(c->line, "\r\n");
	n = __atomic_fetch_add(&rc->nlog, 1, __ATOMIC_SEQ_CST);
	snprintf(rc->log[n % RLOG], RLOG_LEN, "%d %.*s", c->relay,
	    eol != NULL ? (int)(eol - c->line) : 0, c->line);
	__atomic_add_fetch(&rc->nreq[c->relay], 1, __ATOMIC_SEQ_CST);
	if (LOAD(rc->hold[c->relay]) && !c->held) {
		STORE(rc->hold[c->relay], 0);
		c->held = 1;
		__atomic_add_fetch(&rc->held[c->relay], 1, __ATOMIC_SEQ_CST);
	}
	c->left = 0;
	c->chunked = 0;
	for (p = eol; p != NULL; p = strstr(p, "\r\n")) {
		p += 2;
		if (*p == '\r' || *p == '\0')
			break;
		if (strncasecmp(p, "Content-Length:", 15) == 0)
			c->left = strtoull(p + 15, NULL, 10);
		else if (strncasecmp(p, "Transfer-Encoding:", 18) == 0) {
			v = p + 18;
			for (i = 0; v[i] != '\0' && v[i] != '\r'; i++)
				if (strncasecmp(v + i, "chunked", 7) == 0)
					c->chunked = 1;
		}
	}
	c->ps = c->chunked ? P_CSIZE : c->left > 0 ? P_BODY : P_HEAD;
	c->line_len = 0;
}

/* feed client bytes to the parser */
static void
relay_parse(struct rconn *c, const char *p, size_t n)
{
	size_t	i;
	char	ch;

	for (i = 0; i < n; i++) {
		ch = p[i];
		switch (c->ps) {
		case P_HEAD:
			if (c->line_len == 0 && (ch == '\r' || ch == '\n'))
				break;		/* CRLF between requests */
			if (c->line_len < sizeof(c->line) - 1)
				c->line[c->line_len++] = ch;
			if (c->line_len >= 4 && memcmp(c->line + c->line_len -
			    4, "\r\n\r\n", 4) == 0)
				relay_request(c);
			break;
		case P_BODY:
			if (--c->left == 0)
				c->ps = P_HEAD;
			break;
		case P_CSIZE:
		case P_TRAILER:
			if (c->line_len < sizeof(c->line) - 1)
				c->line[c->line_len++] = ch;
			if (ch != '\n')
				break;
			c->line[c->line_len] = '\0';
			if (c->ps == P_TRAILER) {
				if (c->line_len <= 2)
					c->ps = P_HEAD;
			} else if ((c->left = strtoull(c->line, NULL, 16))
			    == 0)
				c->ps = P_TRAILER;
			else
				c->ps = P_CDATA;
			c->line_len = 0;
			break;
		case P_CDATA:
			if (--c->left == 0) {
				c->ps = P_CCRLF;
				c->left = 2;
			}
			break;
		case P_CCRLF:
			if (--c->left == 0)
				c->ps = P_CSIZE;
			break;
		}
	}
}

static void
relay_apply(int i)
{
	int	want = LOAD(rc->mode[i]), k;

	if (want == LOAD(rc->applied[i]))
		return;
	/* every change drops the connections there are */
	for (k = 0; k < RCONN_MAX; k++)
		if (conns[k].cfd != -1 && conns[k].relay == i)
			rconn_close(&conns[k]);
	if (want == R_DOWN && lfd[i] != -1) {
		close(lfd[i]);
		lfd[i] = -1;
	} else if (want != R_DOWN && lfd[i] == -1) {
		if ((lfd[i] = relay_listen(rc->port[i])) == -1)
			return;		/* try again on the next round */
	}
	STORE(rc->applied[i], want);
}

static int
connect_up(void)
{
	struct sockaddr_in	sa;
	int			fd;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons(h_stack.rest_port);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static void
relay_accept(int i)
{
	struct rconn	*c = NULL;
	int		 fd, k;

	while ((fd = accept(lfd[i], NULL, NULL)) != -1) {
		for (k = 0; k < RCONN_MAX && c == NULL; k++)
			if (conns[k].cfd == -1)
				c = &conns[k];
		if (c == NULL) {
			close(fd);
			continue;
		}
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		c->cfd = fd;
		c->relay = i;
		c->ufd = LOAD(rc->applied[i]) == R_HANG ? -1 : connect_up();
		c->c2u = malloc(RBUF);
		c->u2c = malloc(RBUF);
		if ((c->ufd == -1 && LOAD(rc->applied[i]) != R_HANG) ||
		    c->c2u == NULL || c->u2c == NULL)
			rconn_close(c);
		c = NULL;
	}
}

static void
relay_main(void)
{
	struct pollfd	 pfd[NRELAY + 2 * RCONN_MAX];
	int		 map[NRELAY + 2 * RCONN_MAX];
	int		 i, k, np;
	ssize_t		 n;
	struct rconn	*c;

#ifdef __linux__
	prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	if ((conns = calloc(RCONN_MAX, sizeof(*conns))) == NULL)
		_exit(1);
	for (k = 0; k < RCONN_MAX; k++)
		conns[k].cfd = conns[k].ufd = -1;
	for (i = 0; i < NRELAY; i++) {
		if ((lfd[i] = relay_listen(0)) == -1)
			_exit(1);
		{
			struct sockaddr_in	sa;
			socklen_t		len = sizeof(sa);

			getsockname(lfd[i], (struct sockaddr *)&sa, &len);
			STORE(rc->port[i], ntohs(sa.sin_port));
		}
	}
	for (;;) {
		if (getppid() != parent_pid)
			_exit(0);
		for (i = 0; i < NRELAY; i++) {
			relay_apply(i);
			if (LOAD(rc->release[i])) {
				for (k = 0; k < RCONN_MAX; k++)
					if (conns[k].cfd != -1 &&
					    conns[k].relay == i &&
					    conns[k].held) {
						conns[k].held = 0;
						__atomic_sub_fetch(&rc->held[i],
						    1, __ATOMIC_SEQ_CST);
					}
				STORE(rc->release[i], 0);
			}
		}
		np = 0;
		for (i = 0; i < NRELAY; i++)
			if (lfd[i] != -1) {
				pfd[np].fd = lfd[i];
				pfd[np].events = POLLIN;
				map[np++] = -1 - i;
			}
		for (k = 0; k < RCONN_MAX; k++) {
			c = &conns[k];
			if (c->cfd == -1)
				continue;
			pfd[np].fd = c->cfd;
			pfd[np].events = (c->c2u_len < RBUF ? POLLIN : 0) |
			    (c->u2c_len > 0 ? POLLOUT : 0);
			map[np++] = 2 * k;
			if (c->ufd != -1) {
				pfd[np].fd = c->ufd;
				pfd[np].events = (!c->u_eof && c->u2c_len <
				    RBUF ? POLLIN : 0) | (c->c2u_len > 0 &&
				    !c->held ? POLLOUT : 0);
				map[np++] = 2 * k + 1;
			}
		}
		if (poll(pfd, np, 10) <= 0)
			continue;
		for (i = 0; i < np; i++) {
			if (pfd[i].revents == 0)
				continue;
			if (map[i] < 0) {
				relay_accept(-1 - map[i]);
				continue;
			}
			c = &conns[map[i] / 2];
			if (c->cfd == -1)
				continue;
			if (map[i] % 2 == 0) {		/* client side */
				if (pfd[i].revents & (POLLIN | POLLHUP |
				    POLLERR)) {
					n = read(c->cfd, c->c2u + c->c2u_len,
					    RBUF - c->c2u_len);
					if (n == 0 || (n < 0 && errno !=
					    EAGAIN && errno != EINTR)) {
						rconn_close(c);
						continue;
					}
					if (n > 0) {
						relay_parse(c, c->c2u +
						    c->c2u_len, (size_t)n);
						c->c2u_len += (size_t)n;
						if (c->ufd == -1)  /* hang */
							c->c2u_len = 0;
					}
				}
				if ((pfd[i].revents & POLLOUT) &&
				    c->u2c_len > 0) {
					n = write(c->cfd, c->u2c, c->u2c_len);
					if (n < 0 && errno != EAGAIN &&
					    errno != EINTR) {
						rconn_close(c);
						continue;
					}
					if (n > 0) {
						memmove(c->u2c, c->u2c + n,
						    c->u2c_len - (size_t)n);
						c->u2c_len -= (size_t)n;
					}
				}
				if (c->u_eof && c->u2c_len == 0)
					rconn_close(c);
			} else {			/* upstream side */
				if (pfd[i].revents & (POLLIN | POLLHUP |
				    POLLERR)) {
					n = read(c->ufd, c->u2c + c->u2c_len,
					    RBUF - c->u2c_len);
					if (n == 0 || (n < 0 && errno !=
					    EAGAIN && errno != EINTR))
						c->u_eof = 1;
					else if (n > 0)
						c->u2c_len += (size_t)n;
				}
				if ((pfd[i].revents & POLLOUT) &&
				    c->c2u_len > 0 && !c->held) {
					n = write(c->ufd, c->c2u, c->c2u_len);
					if (n < 0 && errno != EAGAIN &&
					    errno != EINTR) {
						rconn_close(c);
						continue;
					}
					if (n > 0) {
						memmove(c->c2u, c->c2u + n,
						    c->c2u_len - (size_t)n);
						c->c2u_len -= (size_t)n;
					}
				}
				if (c->u_eof && c->u2c_len == 0)
					rconn_close(c);
			}
		}
	}
}

static int
relay_start(void)
{
	int64_t	deadline;

	rc = mmap(NULL, sizeof(*rc), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (rc == MAP_FAILED)
		return -1;
	memset(rc, 0, sizeof(*rc));
	fflush(NULL);
	if ((relay_pid = fork()) == -1)
		return -1;
	if (relay_pid == 0)
		relay_main();
	deadline = h_now_ms() + 5000;
	while (h_now_ms() < deadline) {
		if (LOAD(rc->port[NRELAY - 1]) > 0)
			return 0;
		h_sleep_ms(5);
	}
	return -1;
}

/* set relay i's mode and wait until the relay applied it */
static void
relay_mode(int i, enum relay_mode m)
{
	int64_t	deadline = h_now_ms() + 5000;

	STORE(rc->mode[i], (int)m);
	while (LOAD(rc->applied[i]) != (int)m && h_now_ms() < deadline)
		h_sleep_ms(5);
	ck_assert_msg(LOAD(rc->applied[i]) == (int)m,
	    "relay %d did not switch to mode %d", i, (int)m);
}

static unsigned long
nreq(int i)
{
	return LOAD(rc->nreq[i]);
}

/* the last k request lines the relays saw, for failure messages */
static const char *
relay_tail(int k)
{
	static char	buf[4096];
	unsigned long	n = LOAD(rc->nlog), j;
	size_t		off = 0;

	buf[0] = '\0';
	for (j = n > (unsigned long)k ? n - k : 0; j < n && off <
	    sizeof(buf) - 1; j++)
		off += snprintf(buf + off, sizeof(buf) - off, "\n    %s",
		    rc->log[j % RLOG]);
	return buf;
}

/* a checked fixture: every test starts with both relays up, none held */
static void
relays_up(void)
{
	int64_t	deadline;
	int	i;

	for (i = 0; i < NRELAY; i++) {
		STORE(rc->hold[i], 0);
		STORE(rc->release[i], 1);
		relay_mode(i, R_UP);
	}
	deadline = h_now_ms() + 5000;
	for (i = 0; i < NRELAY; i++)
		while (LOAD(rc->release[i]) && h_now_ms() < deadline)
			h_sleep_ms(2);
}

/* ---- small helpers --------------------------------------------------- */

/* who sends a request */
#define KEYLESS	NULL

/*
 * One request through supagate at port (or, with port 0, to PostgREST
 * itself with the real anon key; path then still starts with /rest/v1).
 * auth: a bearer token (sent with a placeholder apikey), or KEYLESS.
 */
static void
call(struct h_resp *r, int port, const char *auth, const char *method,
    const char *path, const char *const *extra, const char *body)
{
	const char	*hv[3];
	size_t		 n = 0;

	if (port == 0) {
		port = h_stack.rest_port;
		if (strncmp(path, "/rest/v1", 8) == 0)
			path += 8;
		hv[n++] = h_fmt("apikey: %s", anon_key);
		hv[n++] = h_fmt("Authorization: Bearer %s",
		    auth != NULL ? auth : anon_key);
	} else if (auth != NULL) {
		hv[n++] = "apikey: placeholder";
		hv[n++] = h_fmt("Authorization: Bearer %s", auth);
	}
	hv[n] = NULL;
	if (h_call(r, port, method, path, hv, extra, body) == -1)
		ck_abort_msg("%s %s: no response: %s", method, path, r->err);
}

static void
purge_all(struct h_proc *g)
{
	struct h_resp	r;

	call(&r, g->port, KEYLESS, "POST", "/_supagate/purge?all=1", NULL,
	    NULL);
	ck_assert_msg(r.status == 200 && strstr(r.body, "\"purged\":") != NULL,
	    "purge all: %ld %s", r.status, r.body);
	h_resp_free(&r);
}

/* how many entries a purge removed; asserts the answer's shape */
static long
purge(struct h_proc *g, const char *query)
{
	struct h_resp	r;
	double		v = -1;

	call(&r, g->port, KEYLESS, "POST", h_fmt("/_supagate/purge?%s",
	    query), NULL, NULL);
	ck_assert_msg(r.status == 200 && h_json_num(r.body, "purged", &v) == 0,
	    "purge %s: %ld %s", query, r.status, r.body);
	h_resp_free(&r);
	return (long)v;
}

static double
metric(struct h_proc *g, const char *name, const char *labels)
{
	double	v = -1;

	ck_assert_msg(h_metric(g->port, name, labels, &v) == 0,
	    "metric %s{%s} missing", name, labels);
	return v;
}

static int
starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int
is_hit(const struct h_resp *r)
{
	return starts(h_hdr(r, "Cache-Status"), "supagate; hit");
}

static int
is_stored_miss(const struct h_resp *r)
{
	const char	*cs = h_hdr(r, "Cache-Status");

	return starts(cs, "supagate; fwd=miss") && strstr(cs, "stored");
}

/*
 * GET path through gate g (relay ri behind it) and check: status, body
 * equal to PostgREST's own answer, hit or stored miss, and how many
 * requests reached PostgREST.
 */
enum expect { HIT, MISS, ANY };	/* ANY: a hit or a stored miss */

/* upstream requests since n0 on relay ri (ri < 0: not counted, 0 or 1) */
static unsigned long
since(int ri, unsigned long n0)
{
	return ri < 0 ? 0 : nreq(ri) - n0;
}

static void
get_expect(struct h_resp *r, struct h_proc *g, int ri, const char *auth,
    const char *path, const char *const *extra, enum expect want,
    const char *what)
{
	unsigned long	n0 = ri < 0 ? 0 : nreq(ri);
	struct h_resp	d;
	char		age[64];

	call(r, g->port, auth, "GET", path, extra, NULL);
	ck_assert_msg(r->status / 100 == 2, "%s: GET %s: %ld %s", what, path,
	    r->status, r->body);
	if (want == ANY)
		want = is_hit(r) ? HIT : MISS;
	if (want == HIT) {
		ck_assert_msg(is_hit(r) && since(ri, n0) == 0,
		    "%s: GET %s: want a hit with no upstream request; "
		    "Cache-Status %s, upstream +%lu%s", what, path,
		    h_hdr(r, "Cache-Status"), since(ri, n0), relay_tail(3));
		ck_assert_msg(h_resp_header(r, "Age", age, sizeof(age)) !=
		    NULL && age[0] >= '0' && age[0] <= '9' &&
		    strtol(age, NULL, 10) >= 0, "%s: hit without Age", what);
		ck_assert_msg(h_hdr(r, "ETag")[0] == '"', "%s: hit ETag %s",
		    what, h_hdr(r, "ETag"));
	} else
		ck_assert_msg(is_stored_miss(r) && (ri < 0 ||
		    since(ri, n0) == 1),
		    "%s: GET %s: want a stored miss and one upstream "
		    "request; Cache-Status %s, upstream +%lu%s", what, path,
		    h_hdr(r, "Cache-Status"), since(ri, n0), relay_tail(3));
	/* the body is PostgREST's answer now */
	call(&d, 0, auth, "GET", path, extra, NULL);
	ck_assert_msg(d.status == r->status && d.body_len == r->body_len &&
	    memcmp(d.body, r->body, d.body_len) == 0,
	    "%s: GET %s\n  got    %ld %s\n  direct %ld %s", what, path,
	    r->status, r->body, d.status, d.body);
	h_resp_free(&d);
}

static void
get_hit(struct h_proc *g, const char *auth, const char *path,
    const char *what)
{
	struct h_resp	r;

	get_expect(&r, g, 0, auth, path, NULL, HIT, what);
	h_resp_free(&r);
}

static void
get_miss(struct h_proc *g, const char *auth, const char *path,
    const char *what)
{
	struct h_resp	r;

	get_expect(&r, g, 0, auth, path, NULL, MISS, what);
	h_resp_free(&r);
}

/* a write through supagate (anon); its status */
static long
write_via(struct h_proc *g, const char *method, const char *path,
    const char *body)
{
	static const char *const js[] = {
		"Content-Type: application/json", "Prefer: return=minimal",
		NULL
	};
	struct h_resp	r;
	long		st;

	call(&r, g->port, KEYLESS, method, path, js, body);
	st = r.status;
	ck_assert_msg(st / 100 == 2, "%s %s: %ld %s", method, path, st,
	    r.body);
	h_resp_free(&r);
	return st;
}

/* a write straight to PostgREST (supagate does not see it) */
static void
write_direct(const char *method, const char *path, const char *body)
{
	static const char *const js[] = {
		"Content-Type: application/json", "Prefer: return=minimal",
		NULL
	};
	struct h_resp	r;

	call(&r, 0, NULL, method, path, js, body);
	ck_assert_msg(r.status / 100 == 2, "direct %s %s: %ld %s", method,
	    path, r.status, r.body);
	h_resp_free(&r);
}

/* ---- 1. miss then hit ------------------------------------------------ */

START_TEST(miss_then_hit)
{
	const char	*p = "/rest/v1/countries?select=id,name&order=id";
	struct h_resp	 m, h;
	double		 hits0, miss0;
	char		 age[32];

	purge_all(&g_v);
	hits0 = metric(&g_v, "supagate_cache_hits_total", "");
	miss0 = metric(&g_v, "supagate_cache_misses_total", "");
	get_expect(&m, &g_v, 0, KEYLESS, p, NULL, MISS, "first");
	ck_assert_msg(starts(h_hdr(&m, "Cache-Status"),
	    "supagate; fwd=miss; fwd-status=200"), "miss: %s",
	    h_hdr(&m, "Cache-Status"));
	get_expect(&h, &g_v, 0, KEYLESS, p, NULL, HIT, "second");
	ck_assert_str_eq(h.body, m.body);
	ck_assert_str_eq(h_hdr(&h, "Content-Type"), h_hdr(&m, "Content-Type"));
	h_resp_header(&h, "Age", age, sizeof(age));
	ck_assert_msg(strtol(age, NULL, 10) <= 60, "Age %s", age);
	ck_assert_msg(h_resp_header_count(&h, "Cache-Status") == 1 &&
	    h_resp_header_count(&h, "ETag") == 1 &&
	    h_resp_header_count(&h, "Age") == 1,
	    "hit repeats Cache-Status, ETag or Age:\n%s", h.hdrs);
	ck_assert_msg(metric(&g_v, "supagate_cache_hits_total", "") ==
	    hits0 + 1, "hits did not move by 1");
	ck_assert_msg(metric(&g_v, "supagate_cache_misses_total", "") ==
	    miss0 + 1, "misses did not move by 1");
	/* a third read is a hit too, same ETag */
	{
		struct h_resp	h2;

		get_expect(&h2, &g_v, 0, KEYLESS, p, NULL, HIT, "third");
		ck_assert_str_eq(h_hdr(&h2, "ETag"), h_hdr(&h, "ETag"));
		h_resp_free(&h2);
	}
	h_resp_free(&m);
	h_resp_free(&h);
}
END_TEST

/* ---- 2. equivalent queries share an entry ---------------------------- */

START_TEST(equivalent_queries)
{
	purge_all(&g_v);
	get_miss(&g_v, KEYLESS,
	    "/rest/v1/cities?select=name,countries(name)&id=in.(1,2,3)"
	    "&order=id", "raw");
	get_hit(&g_v, KEYLESS,
	    "/rest/v1/cities?select=name%2Ccountries%28name%29"
	    "&id=in.%281%2C2%2C3%29&order=id", "percent-encoded");
	get_hit(&g_v, KEYLESS,
	    "/rest/v1/cities?order=id&id=in.(1,2,3)"
	    "&select=name,countries(name)", "parameters swapped");
	get_hit(&g_v, KEYLESS,
	    "/rest/v1/cities?order=id&id=in.%281,2,3%29"
	    "&select=name,countries%28name)", "mixed encoding, swapped");
	/* different ones do not */
	get_miss(&g_v, KEYLESS,
	    "/rest/v1/cities?select=name,countries(name)&id=in.(1,2)"
	    "&order=id", "other filter");
	get_miss(&g_v, KEYLESS,
	    "/rest/v1/cities?select=name,countries(name)&id=in.(1,2,3)"
	    "&order=id.desc", "other order");
	get_miss(&g_v, KEYLESS,
	    "/rest/v1/cities?select=name&id=in.(1,2,3)&order=id",
	    "other select");
	{
		static const char *const csv[] = { "Accept: text/csv", NULL };
		struct h_resp	r;

		get_expect(&r, &g_v, 0, KEYLESS,
		    "/rest/v1/cities?select=name,countries(name)"
		    "&id=in.(1,2,3)&order=id", csv, MISS, "Accept csv");
		ck_assert_msg(starts(h_hdr(&r, "Content-Type"), "text/csv"),
		    "csv: %s", h_hdr(&r, "Content-Type"));
		h_resp_free(&r);
		get_expect(&r, &g_v, 0, KEYLESS,
		    "/rest/v1/cities?select=name,countries(name)"
		    "&id=in.(1,2,3)&order=id", csv, HIT, "Accept csv again");
		ck_assert_msg(starts(h_hdr(&r, "Content-Type"), "text/csv"),
		    "csv hit: %s", h_hdr(&r, "Content-Type"));
		h_resp_free(&r);
	}
	/* and the first is still there */
	get_hit(&g_v, KEYLESS,
	    "/rest/v1/cities?select=name,countries(name)&id=in.(1,2,3)"
	    "&order=id", "raw again");
}
END_TEST

/* ---- 3. write-through invalidation ----------------------------------- */

START_TEST(write_through)
{
	const char	*emb = "/rest/v1/cities?select=name,countries(name)"
			    "&id=in.(4,5)&order=id";
	const char	*fr = "/rest/v1/cities?select=id,name&country_id=eq.4"
			    "&order=id";
	const char	*cty = "/rest/v1/countries?select=id,code&order=id";
	const char	*msg = "/rest/v1/messages?select=id,body&order=id";
	struct h_resp	 r;

	purge_all(&g_v);
	get_miss(&g_v, KEYLESS, emb, "embed");
	get_hit(&g_v, KEYLESS, emb, "embed");

	/* PATCH the embedded table: the cities entry is refetched */
	write_via(&g_v, "PATCH", "/rest/v1/countries?id=eq.4",
	    "{\"name\":\"Frankreich\"}");
	get_expect(&r, &g_v, 0, KEYLESS, emb, NULL, MISS, "after PATCH");
	ck_assert_msg(strstr(r.body, "Frankreich") != NULL &&
	    strstr(r.body, "France") == NULL, "after PATCH: %s", r.body);
	h_resp_free(&r);
	get_hit(&g_v, KEYLESS, emb, "embed after PATCH");

	/* a write to an unrelated table leaves it */
	write_via(&g_v, "PATCH", "/rest/v1/products?id=eq.-1",
	    "{\"price\":1}");
	get_hit(&g_v, KEYLESS, emb, "after unrelated write");

	/* POST and DELETE on the table itself */
	get_miss(&g_v, KEYLESS, fr, "French cities");
	write_via(&g_v, "POST", "/rest/v1/cities",
	    "{\"id\":50,\"name\":\"Nice\",\"country_id\":4,"
	    "\"population\":342669}");
	get_expect(&r, &g_v, 0, KEYLESS, fr, NULL, MISS, "after POST");
	ck_assert_msg(strstr(r.body, "Nice") != NULL, "after POST: %s",
	    r.body);
	h_resp_free(&r);
	get_miss(&g_v, KEYLESS, emb, "embed after POST cities");
	write_via(&g_v, "DELETE", "/rest/v1/cities?id=eq.50", NULL);
	get_expect(&r, &g_v, 0, KEYLESS, fr, NULL, MISS, "after DELETE");
	ck_assert_msg(strstr(r.body, "Nice") == NULL, "after DELETE: %s",
	    r.body);
	h_resp_free(&r);
	get_miss(&g_v, KEYLESS, emb, "embed after DELETE cities");

	/* DELETE on the embedded table (nothing matches, still a write) */
	get_hit(&g_v, KEYLESS, emb, "embed before DELETE countries");
	write_via(&g_v, "DELETE", "/rest/v1/countries?id=eq.-1", NULL);
	get_miss(&g_v, KEYLESS, emb, "embed after DELETE countries");

	/* a failed write invalidates nothing */
	{
		static const char *const js[] = {
			"Content-Type: application/json", NULL
		};

		call(&r, g_v.port, KEYLESS, "PATCH",
		    "/rest/v1/cities?id=eq.4", js, "{\"nope\":1}");
		ck_assert_msg(r.status == 400, "bad PATCH: %ld %s",
		    r.status, r.body);
		h_resp_free(&r);
	}
	get_hit(&g_v, KEYLESS, emb, "after failed PATCH");

	/* POST rpc invalidates every REST entry (the default) */
	get_miss(&g_v, KEYLESS, cty, "countries");
	get_miss(&g_v, KEYLESS, msg, "messages");
	write_via(&g_v, "POST", "/rest/v1/rpc/noop", "{}");
	get_miss(&g_v, KEYLESS, emb, "embed after rpc");
	get_miss(&g_v, KEYLESS, cty, "countries after rpc");
	get_miss(&g_v, KEYLESS, msg, "messages after rpc");

	/* purges: by tag (embedded tags count), prefix, all */
	ck_assert_int_eq(purge(&g_v, "tag=public.cities"), 1);
	get_miss(&g_v, KEYLESS, emb, "embed after tag purge");
	get_hit(&g_v, KEYLESS, cty, "countries after cities purge");
	get_hit(&g_v, KEYLESS, msg, "messages after cities purge");
	/* countries: the embed and the countries entry */
	ck_assert_int_eq(purge(&g_v, "tag=public.countries"), 2);
	get_miss(&g_v, KEYLESS, emb, "embed after countries purge");
	get_miss(&g_v, KEYLESS, cty, "countries after countries purge");
	ck_assert_int_eq(purge(&g_v, "prefix=/rest/v1/countries"), 1);
	get_miss(&g_v, KEYLESS, cty, "countries after prefix purge");
	get_hit(&g_v, KEYLESS, emb, "embed after countries prefix purge");
	get_hit(&g_v, KEYLESS, msg, "messages after prefix purge");
	ck_assert_int_eq(purge(&g_v, "all=1"), 3);
	get_miss(&g_v, KEYLESS, emb, "embed after purge all");
	get_miss(&g_v, KEYLESS, cty, "countries after purge all");
	get_miss(&g_v, KEYLESS, msg, "messages after purge all");
	ck_assert_int_eq(purge(&g_v, "all=1"), 3);
	ck_assert_int_eq(purge(&g_v, "all=1"), 0);

	write_direct("PATCH", "/rest/v1/countries?id=eq.4",
	    "{\"name\":\"France\"}");
}
END_TEST

/* ---- 4. user A / user B ---------------------------------------------- */

/* the ids of a JSON array of objects, "1,2" */
static const char *
ids(const char *json)
{
	static char	buf[256];
	cJSON		*o = cJSON_Parse(json), *e, *f;
	size_t		 off = 0;

	buf[0] = '\0';
	if (!cJSON_IsArray(o)) {
		cJSON_Delete(o);
		return "(not an array)";
	}
	cJSON_ArrayForEach(e, o) {
		f = cJSON_GetObjectItemCaseSensitive(e, "id");
		if (cJSON_IsNumber(f) && off < sizeof(buf) - 16)
			off += snprintf(buf + off, sizeof(buf) - off, "%s%d",
			    off ? "," : "", f->valueint);
	}
	cJSON_Delete(o);
	return buf;
}

static void
todos(struct h_proc *g, const char *who, const char *tok, enum expect e,
    const char *want_ids)
{
	struct h_resp	r;

	get_expect(&r, g, 0, tok, "/rest/v1/todos?select=id,task&order=id",
	    NULL, e, who);
	ck_assert_msg(strcmp(ids(r.body), want_ids) == 0,
	    "%s on port %d sees todos [%s], want [%s]", who, g->port,
	    ids(r.body), want_ids);
	h_resp_free(&r);
}

/*
 * A user of the Auth emulator signs in through supagate (never cached)
 * and gets a real access token; her rows are hers alone.
 */
static void
signed_in_user(struct h_proc *g, int id)
{
	static const char *const js[] = {
		"Content-Type: application/json", "Prefer: return=minimal",
		NULL
	};
	const char	*email = h_fmt("carol%d@example.com", id);
	const char	*cred = h_fmt("{\"email\":\"%s\",\"password\":"
			    "\"carol-password-1\"}", email);
	struct h_resp	 r;
	struct h_opts	 o;
	char		 tok[2048], want[16];
	const char	*hv[2] = { "Content-Type: application/json", NULL };
	int		 i;

	memset(&o, 0, sizeof(o));
	o.hdrs = hv;
	o.body = cred;
	o.body_len = strlen(cred);
	o.has_body = 1;
	ck_assert_msg(h_req(&r, h_stack.auth_port, "POST", "/_emu/users",
	    &o) == 0 && r.status / 100 == 2, "emulator user: %ld %s",
	    r.status, r.body);
	h_resp_free(&r);
	for (i = 0; i < 2; i++) {
		call(&r, g->port, KEYLESS, "POST",
		    "/auth/v1/token?grant_type=password", hv, cred);
		ck_assert_msg(r.status == 200 && h_json_str(r.body,
		    "access_token", tok, sizeof(tok)) == 0, "sign-in %d: %ld "
		    "%s", i, r.status, r.body);
		ck_assert_msg(!is_hit(&r), "sign-in %d: %s", i,
		    h_hdr(&r, "Cache-Status"));
		h_resp_free(&r);
	}
	call(&r, g->port, tok, "POST", "/rest/v1/todos", js,
	    h_fmt("{\"id\":%d,\"task\":\"carol: plant trees\"}", id));
	ck_assert_msg(r.status == 201, "carol insert: %ld %s", r.status,
	    r.body);
	h_resp_free(&r);
	snprintf(want, sizeof(want), "%d", id);
	todos(g, "carol", tok, MISS, want);
	todos(g, "carol again", tok, HIT, want);
	todos(g, "alice after carol", alice_jwt, MISS, "1,2");
	todos(g, "anon after carol", KEYLESS, MISS, "");
	todos(g, "carol once more", tok, HIT, want);
	call(&r, g->port, tok, "DELETE", h_fmt("/rest/v1/todos?id=eq.%d", id),
	    js, NULL);
	ck_assert_msg(r.status == 204, "carol delete: %ld %s", r.status,
	    r.body);
	h_resp_free(&r);
	todos(g, "carol after delete", tok, MISS, "");
}

START_TEST(user_isolation)
{
	struct h_proc	*g = _i == 0 ? &g_v : &g_b;

	purge_all(g);
	todos(g, "alice", alice_jwt, MISS, "1,2");
	todos(g, "bob", bob_jwt, MISS, "3");
	todos(g, "anon", KEYLESS, MISS, "");
	todos(g, "alice again", alice_jwt, HIT, "1,2");
	todos(g, "bob again", bob_jwt, HIT, "3");
	todos(g, "anon again", KEYLESS, HIT, "");
	/*
	 * another token of Alice's: with verified identities the same
	 * entry (role and sub match), with bearer hashes another one
	 */
	todos(g, "alice, second token", alice2_jwt, g == &g_v ? HIT : MISS,
	    "1,2");
	/* the anon key as a bearer is anon, never a user */
	todos(g, "anon key as bearer", anon_key, ANY, "");
	/* a user's write invalidates for everyone: bob's list changes */
	{
		static const char *const js[] = {
			"Content-Type: application/json",
			"Prefer: return=minimal", NULL
		};
		struct h_resp	r;

		call(&r, g->port, bob_jwt, "POST", "/rest/v1/todos", js,
		    "{\"id\":200,\"task\":\"bob: new\"}");
		ck_assert_msg(r.status == 201, "bob insert: %ld %s", r.status,
		    r.body);
		h_resp_free(&r);
		todos(g, "bob after insert", bob_jwt, MISS, "3,200");
		todos(g, "alice after bob's insert", alice_jwt, MISS, "1,2");
		call(&r, g->port, bob_jwt, "DELETE",
		    "/rest/v1/todos?id=eq.200", js, NULL);
		ck_assert_msg(r.status == 204, "bob delete: %ld %s", r.status,
		    r.body);
		h_resp_free(&r);
		todos(g, "bob after delete", bob_jwt, MISS, "3");
	}
	signed_in_user(g, 300 + _i);
}
END_TEST

/* ---- 5. restart keeps entries ---------------------------------------- */

static char	own_state[H_PATH_MAX];

static void
own_state_dir(void)
{
	const char	*tmp = getenv("TMPDIR");

	snprintf(own_state, sizeof(own_state), "%s/sg-cstate.XXXXXX",
	    tmp && *tmp ? tmp : "/tmp");
	ck_assert_msg(mkdtemp(own_state) != NULL, "mkdtemp: %s",
	    strerror(errno));
}

static char *
own_conf(const char *rest, const char *extra)
{
	/* a copy: h_gate_start() reuses the h_fmt() buffers */
	return strdup(h_fmt("listen 127.0.0.1:0\n"
	    "state-dir %s\n"
	    "rest-upstream %s\n"
	    "anon-key-file %s\n"
	    "jwt-secret-file %s\n"
	    "%s", own_state, rest, h_stack.anon_key_file,
	    h_stack.jwt_secret_file, extra));
}

static void
own_start(struct h_proc *p, const char *conf)
{
	ck_assert_msg(h_gate_start(p, conf, 0, NULL) == 0,
	    "supagate did not start with state-dir %s", own_state);
}

/* stop it and remove its state; frees conf */
static void
own_stop(struct h_proc *p, char *conf)
{
	int	killed;

	h_stop(p, 5000, &killed);
	free(conf);
	h_run(h_fmt("rm -rf '%s'", own_state));
}

START_TEST(restart_keeps_entries)
{
	const char	*p = "/rest/v1/countries?select=code,name&id=lt.6"
			    "&order=code";
	char		*conf;
	struct h_proc	 g;
	struct h_resp	 a, b;
	int		 st, killed;

	own_state_dir();
	conf = own_conf(h_fmt("http://127.0.0.1:%d", rc->port[0]), "");
	own_start(&g, conf);
	get_expect(&a, &g, 0, KEYLESS, p, NULL, MISS, "before restart");
	h_resp_free(&a);
	get_expect(&a, &g, 0, KEYLESS, p, NULL, HIT, "before restart");
	st = h_stop(&g, 5000, &killed);
	ck_assert_msg(!killed && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "SIGTERM: status 0x%x%s", st, killed ? ", killed" : "");
	own_start(&g, conf);
	get_expect(&b, &g, 0, KEYLESS, p, NULL, HIT, "after restart");
	ck_assert_str_eq(b.body, a.body);
	ck_assert_str_eq(h_hdr(&b, "ETag"), h_hdr(&a, "ETag"));
	ck_assert_str_eq(h_hdr(&b, "Content-Type"), h_hdr(&a, "Content-Type"));
	h_resp_free(&a);
	h_resp_free(&b);
	own_stop(&g, conf);
}
END_TEST

/* ---- 6. upstream down: stale-if-error -------------------------------- */

START_TEST(upstream_down_stale)
{
	const char	*s = "/rest/v1/countries?select=name&id=lte.3&order=id";
	const char	*u = "/rest/v1/countries?select=code&id=eq.1";
	struct h_resp	 m, r;
	double		 sie0;
	char		 age[32];

	purge_all(&g_sie);
	get_expect(&m, &g_sie, 1, KEYLESS, s, NULL, MISS, "before down");
	/* cache-ttl is 1s: once a wall second has passed it is stale */
	h_sleep_ms(1100);
	sie0 = metric(&g_sie, "supagate_cache_stale_total",
	    "reason=stale-if-error");

	relay_mode(1, R_DOWN);
	call(&r, g_sie.port, KEYLESS, "GET", s, NULL, NULL);
	ck_assert_msg(r.status == 200 && strcmp(r.body, m.body) == 0,
	    "stale while refused: %ld %s", r.status, r.body);
	ck_assert_msg(starts(h_hdr(&r, "Cache-Status"), "supagate; fwd=stale")
	    && strstr(h_hdr(&r, "Cache-Status"), "stale-if-error") != NULL,
	    "stale while refused: Cache-Status %s", h_hdr(&r, "Cache-Status"));
	ck_assert_msg(h_resp_header(&r, "Age", age, sizeof(age)) != NULL &&
	    strtol(age, NULL, 10) >= 1, "stale Age %s", age);
	ck_assert_msg(h_hdr(&r, "ETag")[0] == '"', "stale ETag %s",
	    h_hdr(&r, "ETag"));
	h_resp_free(&r);
	call(&r, g_sie.port, KEYLESS, "GET", u, NULL, NULL);
	ck_assert_msg(h_is_error(&r, 502, "upstream_unavailable") == 0,
	    "uncached while refused: %ld %s", r.status, r.body);
	h_resp_free(&r);
	ck_assert_msg(metric(&g_sie, "supagate_cache_stale_total",
	    "reason=stale-if-error") == sie0 + 1, "stale-if-error metric");

	/* upstream accepts and never answers: upstream-timeout is 1s */
	relay_mode(1, R_HANG);
	call(&r, g_sie.port, KEYLESS, "GET", s, NULL, NULL);
	ck_assert_msg(r.status == 200 && strcmp(r.body, m.body) == 0 &&
	    starts(h_hdr(&r, "Cache-Status"), "supagate; fwd=stale") &&
	    strstr(h_hdr(&r, "Cache-Status"), "stale-if-error") != NULL,
	    "stale while hanging: %ld %s %s", r.status,
	    h_hdr(&r, "Cache-Status"), r.body);
	h_resp_free(&r);
	call(&r, g_sie.port, KEYLESS, "GET", u, NULL, NULL);
	ck_assert_msg(h_is_error(&r, 504, "upstream_timeout") == 0,
	    "uncached while hanging: %ld %s", r.status, r.body);
	h_resp_free(&r);

	/* back up: the stale entry is fetched again and stored */
	relay_mode(1, R_UP);
	get_expect(&r, &g_sie, 1, KEYLESS, s, NULL, MISS, "after up");
	ck_assert_str_eq(r.body, m.body);
	h_resp_free(&r);
	get_expect(&r, &g_sie, 1, KEYLESS, u, NULL, MISS, "uncached, up");
	h_resp_free(&r);
	h_resp_free(&m);
}
END_TEST

/* ---- 7. collapsed misses --------------------------------------------- */

#define NCOLL	100

struct xfer {
	CURL		*h;
	char		*body;
	size_t		 len;
	char		 cs[256];	/* Cache-Status */
	long		 status;
	int		 done;
	struct curl_slist *hl;
};

static size_t
xfer_body(char *p, size_t sz, size_t n, void *arg)
{
	struct xfer	*x = arg;
	char		*nb;

	if ((nb = realloc(x->body, x->len + sz * n + 1)) == NULL)
		return 0;
	x->body = nb;
	memcpy(x->body + x->len, p, sz * n);
	x->len += sz * n;
	x->body[x->len] = '\0';
	return sz * n;
}

static size_t
xfer_hdr(char *p, size_t sz, size_t n, void *arg)
{
	struct xfer	*x = arg;
	size_t		 len = sz * n, k;

	if (len > 14 && strncasecmp(p, "Cache-Status:", 13) == 0) {
		k = len - 14 < sizeof(x->cs) - 1 ? len - 14 : sizeof(x->cs) - 1;
		memcpy(x->cs, p + 14, k);
		x->cs[k] = '\0';
		x->cs[strcspn(x->cs, "\r\n")] = '\0';
	}
	return len;
}

static void
xfer_init(struct xfer *x, int port, const char *method, const char *path,
    const char *body)
{
	memset(x, 0, sizeof(*x));
	x->h = curl_easy_init();
	ck_assert_ptr_nonnull(x->h);
	curl_easy_setopt(x->h, CURLOPT_URL, h_fmt("http://127.0.0.1:%d%s",
	    port, path));
	curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, xfer_body);
	curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->h, CURLOPT_HEADERFUNCTION, xfer_hdr);
	curl_easy_setopt(x->h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(x->h, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(x->h, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(x->h, CURLOPT_PRIVATE, x);
	if (body != NULL) {
		x->hl = curl_slist_append(NULL,
		    "Content-Type: application/json");
		x->hl = curl_slist_append(x->hl, "Prefer: return=minimal");
		curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, x->hl);
		curl_easy_setopt(x->h, CURLOPT_CUSTOMREQUEST, method);
		curl_easy_setopt(x->h, CURLOPT_COPYPOSTFIELDS, body);
	}
}

static void
xfer_fini(struct xfer *x)
{
	if (x->h != NULL)
		curl_easy_cleanup(x->h);
	curl_slist_free_all(x->hl);
	free(x->body);
	memset(x, 0, sizeof(*x));
}

/* drive m one step; returns how many transfers finished in it */
static int
multi_step(CURLM *m, int *running)
{
	CURLMsg		*msg;
	struct xfer	*x;
	int		 left, n = 0;

	curl_multi_perform(m, running);
	while ((msg = curl_multi_info_read(m, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
		    (char **)&x);
		curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE,
		    &x->status);
		x->done = 1;
		n++;
	}
	curl_multi_poll(m, NULL, 0, 20, NULL);
	return n;
}

START_TEST(collapsed_misses)
{
	const char	*p = "/rest/v1/cities?select=id,name,population"
			    "&order=population.desc&limit=7";
	static struct xfer x[NCOLL];
	struct h_resp	 d;
	CURLM		*m;
	unsigned long	 n0;
	double		 col0, col = 0;
	int64_t		 deadline;
	int		 i, running = 1, released = 0, misses = 0, hits = 0;

	purge_all(&g_v);
	col0 = metric(&g_v, "supagate_cache_collapsed_total", "");
	n0 = nreq(0);
	STORE(rc->hold[0], 1);		/* the first request waits for us */
	m = curl_multi_init();
	for (i = 0; i < NCOLL; i++) {
		xfer_init(&x[i], g_v.port, "GET", p, NULL);
		curl_multi_add_handle(m, x[i].h);
	}
	/*
	 * Release the held upstream request only once supagate has made
	 * the 99 others wait for it (collapsed_total), so that every one of
	 * the 100 misses is in flight at the same time.
	 */
	deadline = h_now_ms() + 20000;
	while (running && h_now_ms() < deadline) {
		multi_step(m, &running);
		if (!released) {
			h_metric(g_v.port, "supagate_cache_collapsed_total", "",
			    &col);
			if ((col - col0 >= NCOLL - 1 && LOAD(rc->held[0]) >= 1)
			    || h_now_ms() > deadline - 10000) {
				STORE(rc->release[0], 1);
				released = 1;
			}
		}
	}
	STORE(rc->release[0], 1);
	for (i = 0; i < NCOLL; i++)
		curl_multi_remove_handle(m, x[i].h);
	curl_multi_cleanup(m);
	ck_assert_msg(nreq(0) - n0 == 1, "%d identical misses made %lu "
	    "upstream requests (collapsed_total +%g)%s", NCOLL, nreq(0) - n0,
	    col - col0, relay_tail(5));
	call(&d, 0, NULL, "GET", p, NULL, NULL);
	for (i = 0; i < NCOLL; i++) {
		ck_assert_msg(x[i].done && x[i].status == 200,
		    "transfer %d: done %d status %ld", i, x[i].done,
		    x[i].status);
		ck_assert_msg(x[i].len == d.body_len && memcmp(x[i].body,
		    d.body, d.body_len) == 0, "transfer %d body %s, direct %s",
		    i, x[i].body ? x[i].body : "", d.body);
		if (starts(x[i].cs, "supagate; fwd=miss"))
			misses++;
		else if (starts(x[i].cs, "supagate; hit"))
			hits++;
	}
	ck_assert_msg(misses == 1 && hits == NCOLL - 1,
	    "Cache-Status: %d misses, %d hits", misses, hits);
	ck_assert_msg(metric(&g_v, "supagate_cache_collapsed_total", "") -
	    col0 == NCOLL - 1, "collapsed_total moved by %g",
	    metric(&g_v, "supagate_cache_collapsed_total", "") - col0);
	for (i = 0; i < NCOLL; i++)
		xfer_fini(&x[i]);
	h_resp_free(&d);
	/* and it is stored */
	get_hit(&g_v, KEYLESS, p, "after the collapsed misses");
}
END_TEST

/* ---- 8. If-None-Match ------------------------------------------------ */

START_TEST(if_none_match)
{
	const char	*p = "/rest/v1/countries?select=id,code&id=gt.5";
	struct h_resp	 h, r;
	char		 etag[128];
	const char	*hv[2];
	unsigned long	 n0;

	purge_all(&g_v);
	get_miss(&g_v, KEYLESS, p, "first");
	get_expect(&h, &g_v, 0, KEYLESS, p, NULL, HIT, "second");
	snprintf(etag, sizeof(etag), "%s", h_hdr(&h, "ETag"));
	ck_assert_msg(etag[0] == '"' && etag[strlen(etag) - 1] == '"',
	    "ETag %s", etag);

	n0 = nreq(0);
	hv[0] = h_fmt("If-None-Match: %s", etag);
	hv[1] = NULL;
	call(&r, g_v.port, KEYLESS, "GET", p, hv, NULL);
	ck_assert_msg(r.status == 304 && r.body_total == 0,
	    "If-None-Match %s: %ld (%llu body bytes) %s", etag, r.status,
	    (unsigned long long)r.body_total, r.body);
	ck_assert_str_eq(h_hdr(&r, "ETag"), etag);
	ck_assert_msg(nreq(0) == n0, "304 went upstream");
	h_resp_free(&r);

	/* in a list, and weak: If-None-Match compares weakly */
	hv[0] = h_fmt("If-None-Match: \"x\", W/%s", etag);
	call(&r, g_v.port, KEYLESS, "GET", p, hv, NULL);
	ck_assert_msg(r.status == 304 && r.body_total == 0,
	    "If-None-Match list: %ld", r.status);
	h_resp_free(&r);

	hv[0] = "If-None-Match: \"AAAAAAAAAAAAAAAAAAAAAA\"";
	call(&r, g_v.port, KEYLESS, "GET", p, hv, NULL);
	ck_assert_msg(r.status == 200 && strcmp(r.body, h.body) == 0,
	    "other ETag: %ld %s", r.status, r.body);
	ck_assert_str_eq(h_hdr(&r, "ETag"), etag);
	ck_assert_msg(is_hit(&r) && nreq(0) == n0, "other ETag: %s",
	    h_hdr(&r, "Cache-Status"));
	h_resp_free(&r);
	h_resp_free(&h);
}
END_TEST

/* ---- 9. count=exact and head:true ------------------------------------ */

static void
head_replays(const char *path, const char *const *hv, long want_status,
    const char *want_range)
{
	struct h_resp	 g, h;
	struct h_raw_resp *raw;
	unsigned long	 n0;
	const char	*req, *eoh;
	size_t		 i;
	char		 extra[512];

	get_expect(&g, &g_v, 0, KEYLESS, path, hv, MISS, path);
	ck_assert_msg(g.status == want_status, "GET %s: %ld", path, g.status);
	ck_assert_str_eq(h_hdr(&g, "Content-Range"), want_range);
	n0 = nreq(0);
	call(&h, g_v.port, KEYLESS, "HEAD", path, hv, NULL);
	ck_assert_msg(h.status == want_status && is_hit(&h) && nreq(0) == n0,
	    "HEAD %s: %ld, Cache-Status %s, upstream +%lu", path, h.status,
	    h_hdr(&h, "Cache-Status"), nreq(0) - n0);
	ck_assert_str_eq(h_hdr(&h, "Content-Range"), want_range);
	ck_assert_str_eq(h_hdr(&h, "Content-Type"), h_hdr(&g, "Content-Type"));
	ck_assert_msg(h.body_total == 0, "HEAD body");
	h_resp_free(&g);
	h_resp_free(&h);

	/* on the wire: no body bytes after a cached HEAD's headers */
	extra[0] = '\0';
	for (i = 0; hv != NULL && hv[i] != NULL; i++)
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra),
		    "%s\r\n", hv[i]);
	/* with curl's Accept: the same entry */
	req = h_fmt("HEAD %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n"
	    "%sConnection: close\r\n\r\n", path, extra);
	raw = calloc(1, sizeof(*raw));
	ck_assert_ptr_nonnull(raw);
	h_raw(g_v.port, req, strlen(req), H_RAW_HEAD | H_RAW_CLOSE, 10000,
	    raw);
	ck_assert_msg(raw->status == want_status && strstr(raw->buf,
	    "Cache-Status: supagate; hit") != NULL, "raw HEAD: %d\n%s",
	    raw->status, raw->buf);
	eoh = strstr(raw->buf, "\r\n\r\n");
	ck_assert_msg(eoh != NULL && (size_t)(eoh + 4 - raw->buf) == raw->len,
	    "raw HEAD %s: %zu bytes after the headers:\n%s", path,
	    eoh ? raw->len - (size_t)(eoh + 4 - raw->buf) : 0, raw->buf);
	free(raw);
}

START_TEST(count_and_head)
{
	static const char *const cnt[] = { "Prefer: count=exact", NULL };
	static const char *const rng[] = { "Prefer: count=exact",
	    "Range-Unit: items", "Range: 0-2", NULL };
	static const char *const rng2[] = { "Prefer: count=exact",
	    "Range-Unit: items", "Range: 3-5", NULL };
	struct h_resp	 r;
	unsigned long	 n0;

	purge_all(&g_v);
	head_replays("/rest/v1/cities?select=id", cnt, 200, "0-10/11");
	head_replays("/rest/v1/cities?select=id,name&order=id", rng, 206,
	    "0-2/11");
	head_replays("/rest/v1/cities?select=id&limit=3&offset=1", cnt, 206,
	    "1-3/11");
	/* another range is another entry */
	get_expect(&r, &g_v, 0, KEYLESS, "/rest/v1/cities?select=id,name"
	    "&order=id", rng2, MISS, "other range");
	ck_assert_str_eq(h_hdr(&r, "Content-Range"), "3-5/11");
	h_resp_free(&r);
	/* without count=exact: no count in the entry */
	get_expect(&r, &g_v, 0, KEYLESS, "/rest/v1/cities?select=id", NULL,
	    MISS, "no count");
	ck_assert_str_eq(h_hdr(&r, "Content-Range"), "0-10/*");
	h_resp_free(&r);
	/* a HEAD miss goes upstream and still answers right */
	n0 = nreq(0);
	call(&r, g_v.port, KEYLESS, "HEAD", "/rest/v1/countries?select=id",
	    cnt, NULL);
	ck_assert_msg(r.status == 200 && nreq(0) == n0 + 1 &&
	    strcmp(h_hdr(&r, "Content-Range"), "0-7/8") == 0,
	    "HEAD miss: %ld %s upstream +%lu", r.status,
	    h_hdr(&r, "Content-Range"), nreq(0) - n0);
	h_resp_free(&r);
}
END_TEST

/*
 * A HEAD that is not answered from the cache goes to PostgREST, which
 * answers with headers only; supagate must not add body bytes (a stray
 * chunked terminator would be read as the start of the next response on
 * a kept-alive connection).
 */
START_TEST(head_miss_no_body)
{
	const char	*req;
	struct h_raw_resp *raw;
	const char	*eoh;
	int		 i;

	raw = calloc(1, sizeof(*raw));
	ck_assert_ptr_nonnull(raw);
	for (i = 0; i < 2; i++) {
		/* i == 0: PostgREST itself; i == 1: a miss through supagate */
		req = i == 0 ? h_fmt("HEAD /countries?select=id HTTP/1.1\r\n"
		    "Host: 127.0.0.1\r\napikey: %s\r\nAuthorization: Bearer "
		    "%s\r\nPrefer: count=exact\r\nConnection: close\r\n\r\n",
		    anon_key, anon_key) :
		    "HEAD /rest/v1/countries?select=id,code HTTP/1.1\r\n"
		    "Host: 127.0.0.1\r\nPrefer: count=exact\r\n"
		    "Connection: close\r\n\r\n";
		memset(raw, 0, sizeof(*raw));
		h_raw(i == 0 ? h_stack.rest_port : g_v.port, req, strlen(req),
		    H_RAW_HEAD | H_RAW_CLOSE, 10000, raw);
		ck_assert_msg(raw->status == 200, "HEAD %d: %d", i,
		    raw->status);
		eoh = strstr(raw->buf, "\r\n\r\n");
		ck_assert_msg(eoh != NULL && (size_t)(eoh + 4 - raw->buf) ==
		    raw->len, "HEAD %s: %zu bytes after the headers:\n%s",
		    i == 0 ? "to PostgREST" : "through supagate (a miss)",
		    eoh ? raw->len - (size_t)(eoh + 4 - raw->buf) : 0,
		    raw->buf);
	}
	free(raw);
}
END_TEST

/* ---- 10. client Cache-Control ---------------------------------------- */

START_TEST(client_cache_control)
{
	static const char *const nc[] = { "Cache-Control: no-cache", NULL };
	static const char *const ns[] = { "Cache-Control: no-store", NULL };
	static const char *const pr[] = { "Pragma: no-cache", NULL };
	const char	*p = "/rest/v1/countries?select=id,name&id=eq.7";
	const char	*q = "/rest/v1/countries?select=id,name&id=eq.8";
	struct h_resp	 r;
	unsigned long	 n0;

	purge_all(&g_v);
	get_miss(&g_v, KEYLESS, p, "first");
	write_direct("PATCH", "/rest/v1/countries?id=eq.7",
	    "{\"name\":\"Kenia\"}");
	/* still the cached copy: the write did not pass supagate */
	call(&r, g_v.port, KEYLESS, "GET", p, NULL, NULL);
	ck_assert_msg(is_hit(&r) && strstr(r.body, "Kenya") != NULL,
	    "cached copy: %s %s", h_hdr(&r, "Cache-Status"), r.body);
	h_resp_free(&r);

	/* no-cache: upstream, and the answer replaces the entry */
	n0 = nreq(0);
	call(&r, g_v.port, KEYLESS, "GET", p, nc, NULL);
	ck_assert_msg(r.status == 200 && strstr(r.body, "Kenia") != NULL &&
	    nreq(0) == n0 + 1, "no-cache: %ld %s upstream +%lu", r.status,
	    r.body, nreq(0) - n0);
	ck_assert_msg(starts(h_hdr(&r, "Cache-Status"), "supagate; fwd=request")
	    && strstr(h_hdr(&r, "Cache-Status"), "stored") != NULL,
	    "no-cache Cache-Status %s", h_hdr(&r, "Cache-Status"));
	h_resp_free(&r);
	get_expect(&r, &g_v, 0, KEYLESS, p, NULL, HIT, "after no-cache");
	ck_assert_msg(strstr(r.body, "Kenia") != NULL, "%s", r.body);
	h_resp_free(&r);

	/* no-store: upstream, nothing stored or replaced */
	write_direct("PATCH", "/rest/v1/countries?id=eq.7",
	    "{\"name\":\"Kenya\"}");
	n0 = nreq(0);
	call(&r, g_v.port, KEYLESS, "GET", p, ns, NULL);
	ck_assert_msg(r.status == 200 && strstr(r.body, "Kenya") != NULL &&
	    nreq(0) == n0 + 1, "no-store: %ld %s upstream +%lu", r.status,
	    r.body, nreq(0) - n0);
	ck_assert_msg(starts(h_hdr(&r, "Cache-Status"), "supagate; fwd=request")
	    && strstr(h_hdr(&r, "Cache-Status"), "stored") == NULL,
	    "no-store Cache-Status %s", h_hdr(&r, "Cache-Status"));
	h_resp_free(&r);
	call(&r, g_v.port, KEYLESS, "GET", p, NULL, NULL);
	ck_assert_msg(is_hit(&r) && nreq(0) == n0 + 1 &&
	    strstr(r.body, "Kenia") != NULL,
	    "no-store replaced the entry: %s %s", h_hdr(&r, "Cache-Status"),
	    r.body);
	h_resp_free(&r);

	/* no-store on an uncached URL stores nothing */
	n0 = nreq(0);
	call(&r, g_v.port, KEYLESS, "GET", q, ns, NULL);
	ck_assert_msg(r.status == 200 && nreq(0) == n0 + 1,
	    "no-store uncached: %ld", r.status);
	h_resp_free(&r);
	get_miss(&g_v, KEYLESS, q, "after no-store");

	/* Pragma: no-cache without Cache-Control revalidates too */
	n0 = nreq(0);
	call(&r, g_v.port, KEYLESS, "GET", q, pr, NULL);
	ck_assert_msg(r.status == 200 && nreq(0) == n0 + 1,
	    "Pragma no-cache: %ld upstream +%lu", r.status, nreq(0) - n0);
	h_resp_free(&r);
	purge(&g_v, "tag=public.countries");
}
END_TEST

/* ---- 11. never cached ------------------------------------------------ */

static int
auth_requests(const char *path_part)
{
	struct h_resp	 r;
	cJSON		*o, *e, *p;
	int		 n = 0;

	ck_assert_msg(h_get(&r, h_stack.auth_port, "/_emu/requests") == 0 &&
	    r.status == 200, "emulator log: %ld", r.status);
	o = cJSON_Parse(r.body);
	cJSON_ArrayForEach(e, o) {
		p = cJSON_GetObjectItemCaseSensitive(e, "path");
		if (cJSON_IsString(p) && strstr(p->valuestring, path_part))
			n++;
	}
	cJSON_Delete(o);
	h_resp_free(&r);
	return n;
}

/* create rpc set_cookie() (Set-Cookie from upstream) and wait for it */
static void
make_set_cookie(void)
{
	struct h_resp	r;
	int64_t		deadline;
	int		before = h_stack_schema_loads(), ok = 0;

	ck_assert_msg(h_run(h_fmt("'%s/psql' -X -q -h '%s' -p %d -U postgres "
	    "-d postgres -v ON_ERROR_STOP=1 -c \"create or replace function "
	    "public.set_cookie() returns text language plpgsql stable as "
	    "\\$\\$ begin perform set_config('response.headers', "
	    "'[{\\\"Set-Cookie\\\": \\\"sid=1; Path=/\\\"}]', true); "
	    "return 'cookie'; end \\$\\$; grant execute on function "
	    "public.set_cookie() to anon; notify pgrst, 'reload schema';\" "
	    ">>'%s/psql.out' 2>&1", getenv("PGBIN") ? getenv("PGBIN") :
	    "/usr/lib/postgresql/15/bin", h_stack.pghost, h_stack.pgport,
	    h_stack.dir)) == 0, "psql failed (see %s/psql.out)", h_stack.dir);
	deadline = h_now_ms() + 10000;
	while (!ok && h_now_ms() < deadline) {
		if (h_stack_schema_loads() > before) {
			call(&r, 0, NULL, "GET", "/rest/v1/rpc/set_cookie",
			    NULL, NULL);
			ok = r.status == 200;
			h_resp_free(&r);
		}
		if (!ok)
			h_sleep_ms(50);
	}
	ck_assert_msg(ok, "rpc set_cookie did not appear");
}

START_TEST(never_cached)
{
	struct h_resp	r;
	unsigned long	n0;
	int		a0, i;
	char		ttl[32];
	const char	*t;

	purge_all(&g_v);
	/* /auth/v1: through auth-upstream, twice to the emulator */
	a0 = auth_requests("/settings");
	for (i = 0; i < 2; i++) {
		call(&r, g_v.port, KEYLESS, "GET", "/auth/v1/settings", NULL,
		    NULL);
		ck_assert_msg(r.status == 200, "settings: %ld %s", r.status,
		    r.body);
		ck_assert_msg(!is_hit(&r), "settings %d: %s", i,
		    h_hdr(&r, "Cache-Status"));
		h_resp_free(&r);
	}
	ck_assert_int_eq(auth_requests("/settings") - a0, 2);

	/* upstream Cache-Control: no-store (a cache-rpc function) */
	for (i = 0; i < 2; i++) {
		n0 = nreq(0);
		call(&r, g_v.port, KEYLESS, "GET", "/rest/v1/rpc/no_store",
		    NULL, NULL);
		ck_assert_msg(r.status == 200 && strstr(r.body,
		    "never cache me") != NULL && nreq(0) == n0 + 1,
		    "no_store %d: %ld %s upstream +%lu", i, r.status, r.body,
		    nreq(0) - n0);
		ck_assert_msg(strstr(h_hdr(&r, "Cache-Status"), "stored") ==
		    NULL && !is_hit(&r), "no_store %d: %s", i,
		    h_hdr(&r, "Cache-Status"));
		h_resp_free(&r);
	}

	/* upstream max-age=60 wins over cache-ttl 300s */
	get_miss(&g_v, KEYLESS, "/rest/v1/rpc/cached_hello", "cached_hello");
	get_expect(&r, &g_v, 0, KEYLESS, "/rest/v1/rpc/cached_hello", NULL,
	    HIT, "cached_hello");
	t = strstr(h_hdr(&r, "Cache-Status"), "ttl=");
	ck_assert_msg(t != NULL, "no ttl in %s", h_hdr(&r, "Cache-Status"));
	snprintf(ttl, sizeof(ttl), "%s", t + 4);
	ck_assert_msg(strtol(ttl, NULL, 10) <= 60 && strtol(ttl, NULL, 10) > 0,
	    "cached_hello ttl %s (max-age=60, cache-ttl 300s)", ttl);
	h_resp_free(&r);

	/* an rpc not listed in cache-rpc */
	for (i = 0; i < 2; i++) {
		n0 = nreq(0);
		call(&r, g_v.port, KEYLESS, "GET", "/rest/v1/rpc/add?a=2&b=3",
		    NULL, NULL);
		ck_assert_msg(r.status == 200 && strcmp(r.body, "5") == 0 &&
		    nreq(0) == n0 + 1 && !is_hit(&r),
		    "rpc add %d: %ld %s %s upstream +%lu", i, r.status, r.body,
		    h_hdr(&r, "Cache-Status"), nreq(0) - n0);
		h_resp_free(&r);
	}

	/* an error status */
	for (i = 0; i < 2; i++) {
		n0 = nreq(0);
		call(&r, g_v.port, KEYLESS, "GET", "/rest/v1/countries?id=gt.6",
		    (const char *const[]){
		    "Accept: application/vnd.pgrst.object+json", NULL }, NULL);
		ck_assert_msg(r.status == 406 && nreq(0) == n0 + 1 &&
		    !is_hit(&r), "406 %d: %ld %s upstream +%lu", i, r.status,
		    h_hdr(&r, "Cache-Status"), nreq(0) - n0);
		h_resp_free(&r);
	}

	/* upstream Set-Cookie */
	make_set_cookie();
	for (i = 0; i < 2; i++) {
		n0 = nreq(0);
		call(&r, g_v.port, KEYLESS, "GET", "/rest/v1/rpc/set_cookie",
		    NULL, NULL);
		ck_assert_msg(r.status == 200 && nreq(0) == n0 + 1 &&
		    !is_hit(&r) && strstr(h_hdr(&r, "Cache-Status"), "stored")
		    == NULL, "set_cookie %d: %ld %s upstream +%lu", i,
		    r.status, h_hdr(&r, "Cache-Status"), nreq(0) - n0);
		h_resp_free(&r);
	}
}
END_TEST

/* ---- 12. crash safety ------------------------------------------------ */

static void
integrity(const char *db, const char *when)
{
	sqlite3		*s = NULL;
	sqlite3_stmt	*q = NULL;
	char		 res[256] = "";
	int		 rc2;

	rc2 = sqlite3_open_v2(db, &s, SQLITE_OPEN_READWRITE, NULL);
	ck_assert_msg(rc2 == SQLITE_OK, "%s: open %s: %s", when, db,
	    s ? sqlite3_errmsg(s) : "?");
	sqlite3_busy_timeout(s, 5000);
	rc2 = sqlite3_prepare_v2(s, "PRAGMA integrity_check", -1, &q, NULL);
	if (rc2 == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
		snprintf(res, sizeof(res), "%s",
		    (const char *)sqlite3_column_text(q, 0));
	else
		snprintf(res, sizeof(res), "error: %s", sqlite3_errmsg(s));
	sqlite3_finalize(q);
	sqlite3_close(s);
	ck_assert_msg(strcmp(res, "ok") == 0, "%s: integrity_check: %s", when,
	    res);
}

/* 1 if state-dir holds a cache.db.corrupt-* (the store was set aside) */
static int
set_aside(void)
{
	DIR		*d = opendir(own_state);
	struct dirent	*e;
	int		 found = 0;

	while (d != NULL && (e = readdir(d)) != NULL)
		if (strncmp(e->d_name, "cache.db.corrupt", 16) == 0)
			found = 1;
	if (d != NULL)
		closedir(d);
	return found;
}

#define CRASH_ROUNDS	5
#define CRASH_XFERS	60

START_TEST(crash_safety)
{
	const char	*keep = "/rest/v1/countries?select=name&order=id";
	char		*db, *conf;
	static struct xfer x[CRASH_XFERS];
	struct h_proc	 g;
	struct h_resp	 r;
	CURLM		*m;
	int		 round, i, running, done, st, killed;
	int64_t		 deadline;

	own_state_dir();
	db = strdup(h_fmt("%s/cache.db", own_state));
	/* straight to PostgREST: nothing here counts requests */
	conf = own_conf(h_stack.rest_url, "cache-ttl 1h\n");
	own_start(&g, conf);
	get_expect(&r, &g, -1, KEYLESS, keep, NULL, MISS,
	    "before the crashes");
	h_resp_free(&r);
	/*
	 * Stored responses are written within 10 ms (supagate(8), CACHE);
	 * the health answer writes them at once.
	 */
	ck_assert_msg(h_get(&r, g.port, "/_supagate/health") == 0 &&
	    r.status == 200, "health before the crashes: %ld", r.status);
	h_resp_free(&r);

	for (round = 0; round < CRASH_ROUNDS; round++) {
		m = curl_multi_init();
		curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, 16L);
		for (i = 0; i < CRASH_XFERS; i++) {
			if (i % 5 == 4)		/* a write: invalidates cities */
				xfer_init(&x[i], g.port, "PATCH",
				    h_fmt("/rest/v1/cities?id=lt.%d", -i),
				    "{\"population\":1}");
			else
				xfer_init(&x[i], g.port, "GET",
				    h_fmt("/rest/v1/cities?select=id,name"
				    "&id=gte.%d&limit=%d", i % 11,
				    round * CRASH_XFERS + i + 1), NULL);
			curl_multi_add_handle(m, x[i].h);
		}
		/* kill -9 after a number of answers that differs by round */
		done = 0;
		running = 1;
		deadline = h_now_ms() + 15000;
		while (running && done < 3 + round * 11 &&
		    h_now_ms() < deadline)
			done += multi_step(m, &running);
		ck_assert_msg(h_alive(&g), "round %d: supagate died", round);
		kill(g.pid, SIGKILL);
		ck_assert_msg(waitpid(g.pid, &st, 0) == g.pid &&
		    WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
		    "round %d: supagate was not killed: 0x%x", round, st);
		g.pid = -1;
		/* its private dir (config, log): the next start makes another */
		h_run(h_fmt("rm -rf '%s'", g.dir));
		for (i = 0; i < CRASH_XFERS; i++) {
			curl_multi_remove_handle(m, x[i].h);
			xfer_fini(&x[i]);
		}
		curl_multi_cleanup(m);

		integrity(db, h_fmt("after kill -9 in round %d (%d answers)",
		    round, done));
		own_start(&g, conf);
		ck_assert_msg(!set_aside(), "round %d: the store was set aside "
		    "as corrupt after the restart", round);
	}

	/* serves correctly: the entry stored before the crashes is a hit */
	get_expect(&r, &g, -1, KEYLESS, keep, NULL, HIT,
	    "after the crashes");
	h_resp_free(&r);
	get_expect(&r, &g, -1, KEYLESS, "/rest/v1/cities?select=id,name"
	    "&order=id", NULL, MISS, "new read after the crashes");
	h_resp_free(&r);
	write_via(&g, "PATCH", "/rest/v1/cities?id=lt.0",
	    "{\"population\":1}");
	get_expect(&r, &g, -1, KEYLESS, "/rest/v1/cities?select=id,name"
	    "&order=id", NULL, MISS, "after a write");
	h_resp_free(&r);
	st = h_stop(&g, 5000, &killed);
	ck_assert_msg(!killed && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "SIGTERM after the crashes: 0x%x", st);
	integrity(db, "after a clean stop");
	ck_assert_msg(!set_aside(), "the store was set aside");
	h_run(h_fmt("rm -rf '%s'", own_state));
	free(conf);
	free(db);
}
END_TEST

/* ---- 13. configured error statuses (cache-ttl-status) --------------- */

#define NOTABLE		"/rest/v1/no_such_table?select=id"
#define BADFILTER	"/rest/v1/countries?select=id&id=xx.1"

/*
 * GET (or HEAD) path through gate g: want the status and exactly up
 * requests reaching PostgREST on relay ri
 */
static void
get_status(struct h_resp *r, struct h_proc *g, int ri, const char *method,
    const char *auth, const char *path, const char *const *extra,
    long want, unsigned long up, const char *what)
{
	unsigned long	n0 = nreq(ri);

	call(r, g->port, auth, method, path, extra, NULL);
	ck_assert_msg(r->status == want && since(ri, n0) == up,
	    "%s: %s %s: %ld (want %ld), upstream +%lu (want %lu), "
	    "Cache-Status %s: %s%s", what, method, path, r->status, want,
	    since(ri, n0), up, h_hdr(r, "Cache-Status"), r->body,
	    relay_tail(3));
}

/* r is PostgREST's own answer: status, body and Content-Type */
static void
same_as_direct(const struct h_resp *r, const char *auth, const char *path,
    const char *what)
{
	struct h_resp	d;

	call(&d, 0, auth, "GET", path, NULL, NULL);
	ck_assert_msg(d.status == r->status && d.body_len == r->body_len &&
	    memcmp(d.body, r->body, d.body_len) == 0 &&
	    strcmp(h_hdr(&d, "Content-Type"), h_hdr(r, "Content-Type")) == 0,
	    "%s: GET %s\n  got    %ld %s %s\n  direct %ld %s %s", what, path,
	    r->status, h_hdr(r, "Content-Type"), r->body, d.status,
	    h_hdr(&d, "Content-Type"), d.body);
	h_resp_free(&d);
}

/* a cached error: a hit with Age, no ETag, the stored body and type */
static void
error_hit(struct h_proc *g, const char *auth, const char *path, long want,
    const struct h_resp *m, const char *what)
{
	struct h_resp	h;
	char		age[32];

	get_status(&h, g, 0, "GET", auth, path, NULL, want, 0, what);
	ck_assert_msg(is_hit(&h), "%s: Cache-Status %s", what,
	    h_hdr(&h, "Cache-Status"));
	ck_assert_msg(h_resp_header(&h, "Age", age, sizeof(age)) != NULL &&
	    age[0] >= '0' && age[0] <= '9', "%s: hit without Age", what);
	ck_assert_msg(h_resp_header_count(&h, "ETag") == 0 &&
	    h_resp_header_count(&h, "Cache-Status") == 1 &&
	    h_resp_header_count(&h, "Age") == 1, "%s: headers\n%s", what,
	    h.hdrs);
	ck_assert_msg(h.body_len == m->body_len && memcmp(h.body, m->body,
	    h.body_len) == 0, "%s: body %s, stored %s", what, h.body,
	    m->body);
	ck_assert_str_eq(h_hdr(&h, "Content-Type"), h_hdr(m, "Content-Type"));
	h_resp_free(&h);
}

/* a miss that stored the error, equal to PostgREST's own answer */
static void
error_stored(struct h_resp *m, struct h_proc *g, int ri, const char *auth,
    const char *path, long want, const char *what)
{
	get_status(m, g, ri, "GET", auth, path, NULL, want, 1, what);
	ck_assert_msg(is_stored_miss(m) && strstr(h_hdr(m, "Cache-Status"),
	    h_fmt("fwd-status=%ld", want)) != NULL, "%s: Cache-Status %s",
	    what, h_hdr(m, "Cache-Status"));
	same_as_direct(m, auth, path, what);
}

/* twice upstream, never stored */
static void
error_passes(struct h_proc *g, const char *path, const char *const *extra,
    long want, const char *what)
{
	struct h_resp	r;
	int		i;

	for (i = 0; i < 2; i++) {
		get_status(&r, g, 0, "GET", KEYLESS, path, extra, want, 1,
		    what);
		ck_assert_msg(!is_hit(&r) && strstr(h_hdr(&r, "Cache-Status"),
		    "stored") == NULL, "%s %d: Cache-Status %s", what, i,
		    h_hdr(&r, "Cache-Status"));
		h_resp_free(&r);
	}
}

static char *
status_conf(int relay, const char *extra)
{
	return own_conf(h_fmt("http://127.0.0.1:%d", rc->port[relay]), extra);
}

START_TEST(error_status_stored)
{
	static const char *const obj[] = {
		"Accept: application/vnd.pgrst.object+json", NULL
	};
	struct h_proc	 g;
	struct h_resp	 m, a, r;
	double		 hits0, miss0;
	char		*conf;

	own_state_dir();
	conf = status_conf(0, "cache-ttl-status 404 300s\n"
	    "cache-ttl-status 400 300s\n");
	own_start(&g, conf);

	/* a missing table: 404 stored, then a hit that upstream never sees */
	hits0 = metric(&g, "supagate_cache_hits_total", "");
	miss0 = metric(&g, "supagate_cache_misses_total", "");
	error_stored(&m, &g, 0, KEYLESS, NOTABLE, 404, "missing table");
	error_hit(&g, KEYLESS, NOTABLE, 404, &m, "missing table again");
	ck_assert_msg(metric(&g, "supagate_cache_hits_total", "") ==
	    hits0 + 1 && metric(&g, "supagate_cache_misses_total", "") ==
	    miss0 + 1, "hit/miss counters did not move by 1");
	/* no validator for an error: If-None-Match gets the 404 again */
	get_status(&r, &g, 0, "GET", KEYLESS, NOTABLE,
	    (const char *const[]){ "If-None-Match: *", NULL }, 404, 0,
	    "If-None-Match *");
	ck_assert_msg(is_hit(&r) && r.body_len == m.body_len,
	    "If-None-Match *: %s %s", h_hdr(&r, "Cache-Status"), r.body);
	h_resp_free(&r);
	/* HEAD is answered from the stored GET */
	get_status(&r, &g, 0, "HEAD", KEYLESS, NOTABLE, NULL, 404, 0,
	    "HEAD missing table");
	ck_assert_msg(is_hit(&r) && r.body_total == 0, "HEAD: %s, %llu bytes",
	    h_hdr(&r, "Cache-Status"), (unsigned long long)r.body_total);
	h_resp_free(&r);
	/* another identity has its own entry */
	error_stored(&a, &g, 0, alice_jwt, NOTABLE, 404, "alice's 404");
	error_hit(&g, alice_jwt, NOTABLE, 404, &a, "alice's 404 again");
	error_hit(&g, KEYLESS, NOTABLE, 404, &m, "anon's 404 still");
	h_resp_free(&a);
	/* a client's no-store still bypasses */
	get_status(&r, &g, 0, "GET", KEYLESS, NOTABLE,
	    (const char *const[]){ "Cache-Control: no-store", NULL }, 404, 1,
	    "no-store");
	h_resp_free(&r);
	/* a purge of the table's tag drops both */
	ck_assert_int_eq(purge(&g, "tag=public.no_such_table"), 2);
	get_status(&r, &g, 0, "GET", KEYLESS, NOTABLE, NULL, 404, 1,
	    "after purge");
	ck_assert_msg(is_stored_miss(&r), "after purge: %s",
	    h_hdr(&r, "Cache-Status"));
	h_resp_free(&r);
	h_resp_free(&m);

	/* a malformed filter: PostgREST's 400, likewise */
	error_stored(&m, &g, 0, KEYLESS, BADFILTER, 400, "bad filter");
	ck_assert_msg(strstr(m.body, "\"code\"") != NULL, "400 body %s",
	    m.body);
	error_hit(&g, KEYLESS, BADFILTER, 400, &m, "bad filter again");
	/* a successful write to the table drops it like any entry */
	write_via(&g, "PATCH", "/rest/v1/countries?id=eq.-1",
	    "{\"name\":\"x\"}");
	get_status(&r, &g, 0, "GET", KEYLESS, BADFILTER, NULL, 400, 1,
	    "bad filter after write");
	ck_assert_msg(is_stored_miss(&r), "after write: %s",
	    h_hdr(&r, "Cache-Status"));
	h_resp_free(&r);
	h_resp_free(&m);

	/* a status that is not configured is never stored */
	error_passes(&g, "/rest/v1/countries?id=gt.6", obj, 406, "406");

	own_stop(&g, conf);
}
END_TEST

/* the default: neither the 404 nor the 400 is stored */
START_TEST(error_status_default)
{
	error_passes(&g_v, NOTABLE, NULL, 404, "404, verified gate");
	error_passes(&g_b, NOTABLE, NULL, 404, "404, bearer-hash gate");
	error_passes(&g_v, BADFILTER, NULL, 400, "400, verified gate");
}
END_TEST

/* run SQL as postgres; then wait until PostgREST answers probe with want */
static void
ddl(const char *sql, const char *probe, long want)
{
	struct h_resp	r;
	int64_t		deadline;
	int		before = h_stack_schema_loads(), ok = 0;

	ck_assert_msg(h_run(h_fmt("'%s/psql' -X -q -h '%s' -p %d -U postgres "
	    "-d postgres -v ON_ERROR_STOP=1 -c \"%s notify pgrst, "
	    "'reload schema';\" >>'%s/psql.out' 2>&1", getenv("PGBIN") ?
	    getenv("PGBIN") : "/usr/lib/postgresql/15/bin", h_stack.pghost,
	    h_stack.pgport, sql, h_stack.dir)) == 0,
	    "psql failed (see %s/psql.out)", h_stack.dir);
	deadline = h_now_ms() + 10000;
	while (!ok && h_now_ms() < deadline) {
		if (h_stack_schema_loads() > before) {
			call(&r, 0, NULL, "GET", probe, NULL, NULL);
			ok = r.status == want;
			h_resp_free(&r);
		}
		if (!ok)
			h_sleep_ms(50);
	}
	ck_assert_msg(ok, "PostgREST did not answer %s with %ld after: %s",
	    probe, want, sql);
}

/* a cached 404 for a table that gets created is dropped by a write */
START_TEST(error_status_table_created)
{
	const char	*p = "/rest/v1/errcache_new?select=id&order=id";
	struct h_proc	 g;
	struct h_resp	 m, r;
	char		*conf;

	ddl("drop table if exists public.errcache_new;", p, 404);
	own_state_dir();
	conf = status_conf(0, "cache-ttl-status 404 300s\n");
	own_start(&g, conf);
	error_stored(&m, &g, 0, KEYLESS, p, 404, "before create");

	ddl("create table public.errcache_new (id int primary key); "
	    "grant select, insert on public.errcache_new to anon;", p, 200);
	/* supagate did not see that: the 404 stands for its lifetime */
	error_hit(&g, KEYLESS, p, 404, &m, "created elsewhere");
	/* a write through supagate invalidates the table's entries */
	ck_assert_int_eq(write_via(&g, "POST", "/rest/v1/errcache_new",
	    "{\"id\":1}"), 201);
	get_status(&r, &g, 0, "GET", KEYLESS, p, NULL, 200, 1,
	    "after POST");
	ck_assert_msg(is_stored_miss(&r) && strcmp(r.body, "[{\"id\":1}]") ==
	    0, "after POST: %s %s", h_hdr(&r, "Cache-Status"), r.body);
	h_resp_free(&r);
	get_hit(&g, KEYLESS, p, "created table");
	h_resp_free(&m);

	own_stop(&g, conf);
}
END_TEST

/*
 * A stored error is served only while fresh: never stale while
 * revalidating, and never in place of an upstream failure (relay 1).
 */
START_TEST(error_status_never_stale)
{
	const char	*pa = "/rest/v1/no_such_table?select=a";
	const char	*pb = "/rest/v1/no_such_table?select=b";
	const char	*ok = "/rest/v1/countries?select=name&id=eq.2";
	struct h_proc	 g;
	struct h_resp	 m, r;
	char		*conf;

	own_state_dir();
	conf = status_conf(1, "cache-ttl 1s\n"
	    "cache-stale-while-revalidate 1h\n"
	    "cache-stale-if-error 1h\n"
	    "cache-ttl-status 404 1s\n"
	    "upstream-timeout 1s\n");
	own_start(&g, conf);
	get_status(&m, &g, 1, "GET", KEYLESS, pa, NULL, 404, 1, "a");
	ck_assert_msg(is_stored_miss(&m), "a: %s", h_hdr(&m, "Cache-Status"));
	h_resp_free(&m);
	get_status(&m, &g, 1, "GET", KEYLESS, pb, NULL, 404, 1, "b");
	ck_assert_msg(is_stored_miss(&m), "b: %s", h_hdr(&m, "Cache-Status"));
	get_status(&r, &g, 1, "GET", KEYLESS, ok, NULL, 200, 1, "200");
	ck_assert_msg(is_stored_miss(&r), "200: %s", h_hdr(&r, "Cache-Status"));
	h_resp_free(&r);
	/* both lifetimes are 1s: once a wall second has passed, expired */
	h_sleep_ms(1100);

	/* not served stale while revalidating: fetched again */
	get_status(&r, &g, 1, "GET", KEYLESS, pa, NULL, 404, 1, "a expired");
	ck_assert_msg(starts(h_hdr(&r, "Cache-Status"), "supagate; fwd=miss") &&
	    strstr(h_hdr(&r, "Cache-Status"), "stale") == NULL,
	    "a expired: %s", h_hdr(&r, "Cache-Status"));
	h_resp_free(&r);

	/* upstream refuses: the expired 404 does not stand in for it */
	relay_mode(1, R_DOWN);
	call(&r, g.port, KEYLESS, "GET", pb, NULL, NULL);
	ck_assert_msg(h_is_error(&r, 502, "upstream_unavailable") == 0 &&
	    strstr(r.body, "no_such_table") == NULL,
	    "b while refused: %ld %s %s", r.status, h_hdr(&r, "Cache-Status"),
	    r.body);
	h_resp_free(&r);
	/* upstream hangs: the same, as a timeout */
	relay_mode(1, R_HANG);
	call(&r, g.port, KEYLESS, "GET", pb, NULL, NULL);
	ck_assert_msg(h_is_error(&r, 504, "upstream_timeout") == 0,
	    "b while hanging: %ld %s %s", r.status, h_hdr(&r, "Cache-Status"),
	    r.body);
	h_resp_free(&r);

	/* back up: fetched and stored again, PostgREST's answer */
	relay_mode(1, R_UP);
	get_status(&r, &g, 1, "GET", KEYLESS, pb, NULL, 404, 1, "b up");
	ck_assert_msg(is_stored_miss(&r) && r.body_len == m.body_len &&
	    memcmp(r.body, m.body, m.body_len) == 0, "b up: %s %s",
	    h_hdr(&r, "Cache-Status"), r.body);
	h_resp_free(&r);
	h_resp_free(&m);
	/* while the 200, just as old, is served stale by the same rules */
	call(&r, g.port, KEYLESS, "GET", ok, NULL, NULL);
	ck_assert_msg(r.status == 200 && strstr(h_hdr(&r, "Cache-Status"),
	    "stale-while-revalidate") != NULL, "200 expired: %ld %s",
	    r.status, h_hdr(&r, "Cache-Status"));
	h_resp_free(&r);

	own_stop(&g, conf);
}
END_TEST

/* ---- set-up and tear-down -------------------------------------------- */

/* before stack-down (h_stack_up) */
static void
stop_gates(void)
{
	size_t	g;
	int	killed;

	for (g = 0; g < NGATES; g++)
		h_stack_gate_stop(gates[g], 3000, &killed);
	if (relay_pid > 0) {
		kill(relay_pid, SIGKILL);
		waitpid(relay_pid, NULL, 0);
		relay_pid = -1;
	}
}

static void
read_keys(void)
{
	if (h_stack.rest_port <= 0 || h_stack.auth_port <= 0 ||
	    h_stack.pgport <= 0 || h_stack.anon_key_file[0] == '\0')
		h_die("stack.env lacks REST_URL, AUTH_URL, PGPORT or key "
		    "files");
	if (h_read_secret(h_stack.anon_key_file, anon_key,
	    sizeof(anon_key)) == -1)
		h_die("cannot read the anon key");
}

static void
mint(char *out, size_t n, const char *sub, const char *email, int ttl)
{
	if (h_stack_jwt(out, n, sub, email, ttl) == -1)
		h_die(h_fmt("cannot mint a JWT for %s", email));
}

static const char *
gate_conf(int relay, int verified, const char *extra)
{
	return h_fmt(
	    "listen 127.0.0.1:0\n"
	    "state-dir @DIR@/state\n"
	    "rest-upstream http://127.0.0.1:%d\n"
	    "auth-upstream %s\n"
	    "anon-key-file %s\n"
	    "%s%s%s"
	    "%s",
	    rc->port[relay], h_stack.auth_url, h_stack.anon_key_file,
	    verified ? "jwt-secret-file " : "",
	    verified ? h_stack.jwt_secret_file : "", verified ? "\n" : "",
	    extra);
}

static void
setup(void)
{
	static const char rpcs[] =
	    "cache-ttl 300s\n"
	    "cache-rpc cached_hello\n"
	    "cache-rpc no_store\n"
	    "cache-rpc set_cookie\n";
	const char	*why;

	parent_pid = getpid();
	h_init();
	if ((why = h_stack_up("sg-cstack", stop_gates)) != NULL)
		h_die(why);
	read_keys();
	mint(alice_jwt, sizeof(alice_jwt), ALICE, "alice@example.com", 3600);
	mint(alice2_jwt, sizeof(alice2_jwt), ALICE, "alice@example.com",
	    7200);
	mint(bob_jwt, sizeof(bob_jwt), BOB, "bob@example.com", 3600);
	if (strcmp(alice_jwt, alice2_jwt) == 0)
		h_die("the two tokens of alice are the same");
	if (relay_start() == -1)
		h_die("the relay did not start");

	h_stack_gate_start(&g_v, "verified", gate_conf(0, 1, rpcs));
	h_stack_gate_start(&g_b, "bearer hash", gate_conf(0, 0, rpcs));
	h_stack_gate_start(&g_sie, "stale-if-error", gate_conf(1, 1,
	    "cache-ttl 1s\n"
	    "cache-stale-if-error 1h\n"
	    "upstream-timeout 1s\n"));
}

static TCase *
tcase(Suite *s, const char *name, int timeout)
{
	TCase	*tc = tcase_create(name);

	tcase_set_timeout(tc, timeout);
	tcase_add_checked_fixture(tc, relays_up, NULL);
	suite_add_tcase(s, tc);
	return tc;
}

static Suite *
cache_stack_suite(void)
{
	Suite	*s = suite_create("cache_stack");

	tcase_add_test(tcase(s, "miss_then_hit", 30), miss_then_hit);
	tcase_add_test(tcase(s, "equivalent_queries", 30),
	    equivalent_queries);
	tcase_add_test(tcase(s, "write_through", 30), write_through);
	tcase_add_loop_test(tcase(s, "user_isolation", 30), user_isolation,
	    0, 2);
	tcase_add_test(tcase(s, "restart", 30), restart_keeps_entries);
	tcase_add_test(tcase(s, "upstream_down", 30), upstream_down_stale);
	tcase_add_test(tcase(s, "collapsed_misses", 40), collapsed_misses);
	tcase_add_test(tcase(s, "if_none_match", 30), if_none_match);
	tcase_add_test(tcase(s, "count_and_head", 30), count_and_head);
	tcase_add_test(tcase(s, "head_miss_no_body", 30), head_miss_no_body);
	tcase_add_test(tcase(s, "client_cache_control", 30),
	    client_cache_control);
	tcase_add_test(tcase(s, "never_cached", 40), never_cached);
	tcase_add_test(tcase(s, "crash_safety", 60), crash_safety);
	tcase_add_test(tcase(s, "error_status_stored", 40),
	    error_status_stored);
	tcase_add_test(tcase(s, "error_status_default", 30),
	    error_status_default);
	tcase_add_test(tcase(s, "error_status_table_created", 40),
	    error_status_table_created);
	tcase_add_test(tcase(s, "error_status_never_stale", 30),
	    error_status_never_stale);
	return s;
}

int
main(void)
{
	return h_stack_main(setup, cache_stack_suite);
}
