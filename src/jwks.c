/* jwks: fetch the project's JWK set from Auth and keep the last good one */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "evloop.h"
#include "jwk.h"
#include "jwks.h"
#include "log.h"
#include "policy.h"
#include "upstream.h"
#include "util.h"

#define JWKS_PATH	"/auth/v1/.well-known/jwks.json"
#define JWKS_SUB	"/.well-known/jwks.json"
#define JWKS_TMP	"jwks.json.tmp"
#define JWKS_UA		PACKAGE_NAME "/" PACKAGE_VERSION
#define URL_MAX		2048

static struct {
	struct conf		*c;	/* NULL: fetching is off */
	struct jwk_set		*set;	/* last good set or NULL */
	uint64_t		 gen;	/* bumped when set changes */
	char			 url[URL_MAX];
	struct upstream_xfer	*xfer;	/* fetch in flight */
	int			 status;
	char			*body;	/* JWK_SET_MAX_BYTES + 1 */
	size_t			 len;
	int			 over;	/* body larger than the cap */
	int64_t			 kid_fetch_ms; /* last kid-driven one */
	int			 have_kid_fetch;
	struct evloop_timer	 timer;	/* next scheduled fetch */
	struct evloop_timer	 xfer_timer; /* fetch timeout */
} J = { .timer = { .due_ms = -1 }, .xfer_timer = { .due_ms = -1 } };

static void	fetch(void);

const struct jwk_set *
jwks_current(void)
{
	return J.c != NULL ? J.set : NULL;
}

static void
timer_cb(void *arg)
{
	(void)arg;
	fetch();
}

static void
schedule(int64_t ms)
{
	evloop_timer_arm(&J.timer, ms, timer_cb, NULL);
}

/* a directory fd for state-dir, created 0700 when missing; -1 (logged) */
static int
state_dir_fd(void)
{
	const char	*dir = J.c->state_dir;
	int		 fd;

	if (dir == NULL || dir[0] == '\0')
		return -1;
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 &&
	    errno == ENOENT && mkdir(dir, 0700) == 0)
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		log_warn("jwks: state-dir %s", dir);
	return fd;
}

static void
persist(const char *s, size_t len)
{
	int	dfd;

	if ((dfd = state_dir_fd()) == -1)
		return;
	if (util_write_atomic(dfd, JWKS_STATE_FILE, JWKS_TMP, s, len) == -1)
		log_warn("jwks: %s/%s", J.c->state_dir, JWKS_STATE_FILE);
	close(dfd);
}

/* the set stored by an earlier run, if any */
static void
load_stored(void)
{
	struct jwk_set	*set;
	char		 err[256];
	ssize_t		 n;
	size_t		 len = 0;
	unsigned	 line;
	int		 dfd, fd;

	if ((dfd = state_dir_fd()) == -1)
		return;
	fd = openat(dfd, JWKS_STATE_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	close(dfd);
	if (fd == -1) {
		if (errno != ENOENT)
			log_warn("jwks: %s/%s", J.c->state_dir,
			    JWKS_STATE_FILE);
		return;
	}
	while (len <= JWK_SET_MAX_BYTES) {
		n = read(fd, J.body + len, JWK_SET_MAX_BYTES + 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if ((set = jwk_set_parse(J.body, len, err, sizeof(err), &line)) ==
	    NULL) {
		log_warnx("jwks: %s/%s: %s; ignored", J.c->state_dir,
		    JWKS_STATE_FILE, err);
		return;
	}
	jwk_set_free(J.set);
	J.set = set;
	J.gen++;
	log_info("jwks: %zu signing keys from %s/%s", jwk_set_count(set),
	    J.c->state_dir, JWKS_STATE_FILE);
}

static int
on_head(void *arg, int status, const char *hdrs, size_t len)
{
	(void)arg;
	(void)hdrs;
	(void)len;
	J.status = status;
	return 0;
}

static size_t
on_data(void *arg, const char *p, size_t n)
{
	(void)arg;
	if (n > JWK_SET_MAX_BYTES - J.len) {
		J.over = 1;
		return UPSTREAM_ABORT;
	}
	memcpy(J.body + J.len, p, n);
	J.len += n;
	return n;
}

/* take the fetched body if it is a good set; schedule the next fetch */
static void
finish(enum upstream_result res)
{
	struct jwk_set	*set;
	char		 err[256];
	unsigned	 line;

	evloop_timer_disarm(&J.xfer_timer);
	if (res != UPSTREAM_OK || J.status != 200) {
		if (J.over)
			log_warnx("jwks: %s: larger than %d bytes; keeping "
			    "the keys in use", J.url, JWK_SET_MAX_BYTES);
		else if (res == UPSTREAM_OK)
			log_warnx("jwks: %s: status %d; keeping the keys in "
			    "use", J.url, J.status);
		else
			log_warnx("jwks: %s: fetch failed; keeping the keys "
			    "in use", J.url);
		schedule(JWKS_RETRY_MS);
		return;
	}
	if ((set = jwk_set_parse(J.body, J.len, err, sizeof(err), &line)) ==
	    NULL) {
		log_warnx("jwks: %s: %s; keeping the keys in use", J.url,
		    err);
		schedule(JWKS_RETRY_MS);
		return;
	}
	jwk_set_free(J.set);
	J.set = set;
	J.gen++;
	log_info("jwks: %zu signing keys from %s", jwk_set_count(set),
	    J.url);
	persist(J.body, J.len);
	schedule(JWKS_REFRESH_MS);
}

static void
on_done(void *arg, enum upstream_result res)
{
	(void)arg;
	J.xfer = NULL;		/* freed by upstream right after */
	finish(res);
}

static void
xfer_timeout_cb(void *arg)
{
	(void)arg;
	if (J.xfer == NULL)
		return;
	upstream_abort(J.xfer);
	J.xfer = NULL;
	finish(UPSTREAM_ERR_TIMEOUT);
}

static const struct upstream_cbs cbs = {
	.on_head = on_head,
	.on_data = on_data,
	.on_done = on_done,
};

static void
fetch(void)
{
	static const char *const hdrs[] = { "Accept: application/json" };
	struct upstream_req	 rq;

	if (J.c == NULL || J.xfer != NULL)
		return;
	evloop_timer_disarm(&J.timer);
	J.status = 0;
	J.len = 0;
	J.over = 0;
	memset(&rq, 0, sizeof(rq));
	rq.method = "GET";
	rq.url = J.url;
	rq.headers = hdrs;
	rq.nheaders = 1;
	rq.connect_timeout_ms = (int64_t)J.c->connect_timeout_ms;
	rq.ca_file = J.c->ca_file;
	rq.user_agent = JWKS_UA;
	log_debug("%s: %s", __func__, J.url);
	if ((J.xfer = upstream_start(&rq, &cbs, NULL)) == NULL) {
		log_warnx("jwks: cannot start fetching %s", J.url);
		schedule(JWKS_RETRY_MS);
		return;
	}
	evloop_timer_arm(&J.xfer_timer, (int64_t)J.c->upstream_timeout_ms,
	    xfer_timeout_cb, NULL);
}

uint64_t
jwks_generation(void)
{
	return J.gen;
}

void
jwks_unknown_kid(void)
{
	int64_t	now = evloop_now_ms();

	if (J.c == NULL || J.xfer != NULL || (J.have_kid_fetch &&
	    now - J.kid_fetch_ms < JWKS_KID_MIN_MS))
		return;
	J.kid_fetch_ms = now;
	J.have_kid_fetch = 1;
	log_debug("%s: a token names an unknown kid; fetching", __func__);
	fetch();
}

/* stop fetching; keep nothing */
static void
stop(void)
{
	if (J.xfer != NULL) {
		upstream_abort(J.xfer);
		J.xfer = NULL;
	}
	evloop_timer_disarm(&J.timer);
	evloop_timer_disarm(&J.xfer_timer);
	conf_unref(J.c);
	J.c = NULL;
}

int
jwks_setup(const struct conf *c)
{
	stop();
	if (!c->jwt_jwks_fetch) {
		jwk_set_free(J.set);
		J.set = NULL;
		J.gen++;
		return 0;
	}
	if (policy_upstream_url(c, POLICY_ROUTE_AUTH, JWKS_PATH, JWKS_SUB,
	    NULL, J.url, sizeof(J.url)) == -1) {
		log_warnx("jwks: jwt-jwks-fetch on, but no Auth upstream "
		    "(auth-upstream or upstream)");
		jwk_set_free(J.set);
		J.set = NULL;
		J.gen++;
		return -1;
	}
	if (J.body == NULL)
		J.body = xcalloc(1, JWK_SET_MAX_BYTES + 1);
	J.c = conf_ref((struct conf *)c);
	if (J.set == NULL)
		load_stored();
	fetch();
	return 0;
}

void
jwks_teardown(void)
{
	stop();
	jwk_set_free(J.set);
	J.set = NULL;
	J.gen++;
	free(J.body);
	J.body = NULL;
	J.have_kid_fetch = 0;
}
