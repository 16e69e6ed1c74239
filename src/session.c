/* session: supagate's own sign-in and refresh (auth-mode session) */
#include "config.h"

#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "crypto.h"
#include "evloop.h"
#include "json.h"
#include "jwt.h"
#include "log.h"
#include "metrics.h"
#include "session.h"
#include "upstream.h"
#include "util.h"

#define SESSION_UA	PACKAGE_NAME "/" PACKAGE_VERSION
#define API_VERSION	"X-Supabase-Api-Version: 2024-01-01"
#define RESP_MAX	(256 * 1024)	/* a /token answer, user object included */
#define BODY_MAX	(20 * 1024)	/* a /token request body */
#define TOKEN_MAX	(8 * 1024)	/* either token */
#define INPUT_MAX	4096		/* a line of "supagate login" */
#define STATE_MAX	(64 * 1024)
#define WAITERS_MAX	16384
#define XFER_TIMEOUT_MS	30000		/* at most, for one /token call */
#define HOLD_MS		2000		/* then waiters take the old token */
#define SKEW_MS		1000		/* a token this close to exp is spent */
#define WAIT_RETRY_MS	5000		/* wait for a retry due this soon */
#define REJECT_MIN_MS	10000		/* 401s ignored this soon after */
#define BACKOFF_MIN_MS	500
#define BACKOFF_MAX_MS	60000
#define BREAKER_MIN_MS	5000
#define BREAKER_MAX_MS	300000		/* five minutes, as users learnt */
#define RETRY_AFTER_MAX	3600
#define STATE_FILE	"session"
#define STATE_TMP	"session.tmp"
#define KEY_FILE	"session.key"
#define LOCK_FILE	"session.lock"
#define CRED_KEY	"session-key"
#define STATE_MAGIC	"SGSESS1\n"
#define STATE_MAGIC_LEN	8

enum op {
	OP_NONE,
	OP_PASSWORD,
	OP_REFRESH,
};

struct waiter {
	session_ready_cb	*cb;
	void			*arg;
};

static struct {
	int			 active;
	int			 login_mode;	/* "supagate login": stop when done */
	int			 login_ok;
	struct conf		*c;
	char			*url_password;
	char			*url_refresh;
	struct secret		*hdr_apikey;	/* "apikey: ..." */
	struct secret		*hdr_auth;	/* "Authorization: Bearer ..." */
	struct secret		*password;	/* NULL: no password sign-in */
	char			*email;
	int			 dirfd;
	int			 lockfd;
	struct secret		*key;		/* CRYPTO_SEAL_KEYBYTES */

	enum session_state	 state;
	struct secret		*access;
	struct secret		*refresh;
	int64_t			 expires_ms;	/* local wall clock */
	int64_t			 lifetime_s;
	int64_t			 refreshed_mono; /* last success */
	char			 user_id[64];
	char			 rt_hash[65];	/* handed-over token consumed */
	char			 email_hash[65]; /* signed in with this email */
	int			 bad;		/* access token rejected */
	int			 persisted;

	/* the one /token call in flight */
	struct upstream_xfer	*xfer;
	enum op			 op;
	char			 body[BODY_MAX];
	size_t			 body_len;
	size_t			 body_off;
	char			 resp[RESP_MAX];
	size_t			 resp_len;
	int			 resp_over;
	int			 status;
	char			 hdr_code[64];
	int64_t			 retry_after_s;
	int			 conflict_retried;
	int			 serve_old;

	struct evloop_timer	 refresh_timer;
	struct evloop_timer	 retry_timer;
	struct evloop_timer	 xfer_timer;
	struct evloop_timer	 hold_timer;
	int			 retry_pending;
	enum op			 retry_op;
	int64_t			 retry_due;	/* monotonic */
	int64_t			 backoff_ms;
	int64_t			 breaker_ms;
	int64_t			 breaker_until;	/* monotonic; 0: closed */
	char			 last_error[64];

	struct waiter		*w;
	size_t			 nw;
	size_t			 wcap;
	struct waiter		*rel;		/* being released */
	size_t			 nrel;
	size_t			 irel;
} S = { .dirfd = -1, .lockfd = -1 };

static void start_call(enum op);
static void arm_refresh(void);

static int64_t
wall_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *
session_state_name(enum session_state s)
{
	switch (s) {
	case SESSION_NONE:
		return "none";
	case SESSION_VALID:
		return "valid";
	case SESSION_REFRESHING:
		return "refreshing";
	case SESSION_FAILED:
		return "failed";
	}
	return "unknown";
}

enum session_state
session_state(void)
{
	return S.active ? S.state : SESSION_NONE;
}

int64_t
session_expires_at(void)
{
	return S.active && S.access != NULL ? S.expires_ms / 1000 : 0;
}

const char *
session_user_id(void)
{
	return S.active && S.user_id[0] != '\0' ? S.user_id : NULL;
}

/* the access token can be sent now */
static int
usable(void)
{
	int64_t	skew = S.lifetime_s * 100;	/* 10%, short test tokens */

	if (skew > SKEW_MS)
		skew = SKEW_MS;
	return S.access != NULL && !S.bad && wall_ms() < S.expires_ms - skew;
}

int
session_usable(void)
{
	return S.active && S.state != SESSION_FAILED && usable();
}

/* the state to report: a call in flight, or no token while one is due */
static void
set_state(void)
{
	if (S.state == SESSION_FAILED)
		return;
	if (S.xfer != NULL || (S.retry_pending && !usable()))
		S.state = S.access != NULL || S.refresh != NULL ||
		    S.refreshed_mono != 0 ? SESSION_REFRESHING : SESSION_NONE;
	else if (usable())
		S.state = SESSION_VALID;
	else
		S.state = S.access != NULL ? SESSION_REFRESHING : SESSION_NONE;
}

/*
 * waiters
 */

static void
release_waiters(void)
{
	struct waiter	*list;
	size_t		 n, i;

	if (S.nw == 0)
		return;
	/* callbacks may wait again (a new list) or unwait others (rel) */
	list = S.w;
	n = S.nw;
	S.w = NULL;
	S.nw = S.wcap = 0;
	S.rel = list;
	S.nrel = n;
	for (i = 0; i < n; i++) {
		S.irel = i + 1;
		if (list[i].cb != NULL)
			list[i].cb(list[i].arg);
	}
	S.rel = NULL;
	S.nrel = S.irel = 0;
	free(list);
}

static int
add_waiter(session_ready_cb *cb, void *arg)
{
	if (cb == NULL || S.nw >= WAITERS_MAX)
		return -1;
	if (S.nw == S.wcap) {
		S.wcap = S.wcap ? S.wcap * 2 : 64;
		S.w = xreallocarray(S.w, S.wcap, sizeof(*S.w));
	}
	S.w[S.nw].cb = cb;
	S.w[S.nw].arg = arg;
	S.nw++;
	return 0;
}

void
session_unwait(void *arg)
{
	size_t	i, j;

	for (i = j = 0; i < S.nw; i++)
		if (S.w[i].arg != arg)
			S.w[j++] = S.w[i];
	S.nw = j;
	for (i = S.irel; i < S.nrel; i++)
		if (S.rel[i].arg == arg)
			S.rel[i].cb = NULL;
}

/*
 * tokens and the state file
 */

/* printable ASCII without '"' and '\\': safe in JSON and headers */
static int
token_ok(const char *s, size_t len)
{
	size_t	i;

	if (len == 0 || len > TOKEN_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '"' ||
		    s[i] == '\\')
			return 0;
	return 1;
}

static void
hash_hex(const char *s, size_t len, char out[65])
{
	unsigned char	d[32];

	crypto_digest(s, len, d);
	crypto_hex(d, sizeof(d), out);
}

static void
drop_tokens(void)
{
	secret_free(S.access);
	secret_free(S.refresh);
	S.access = S.refresh = NULL;
	S.expires_ms = 0;
	S.bad = 0;
}

/* store the session, encrypted; 0 or -1 (logged) */
static int
persist(void)
{
	char		*pt;
	unsigned char	*ct;
	size_t		 cap, len;
	int		 n, rc;

	if (S.access == NULL || S.refresh == NULL)
		return -1;
	cap = S.access->len + S.refresh->len + 512;
	pt = xcalloc(1, cap);
	n = snprintf(pt, cap, "{\"v\":1,\"refresh_token\":\"%s\","
	    "\"access_token\":\"%s\",\"expires_at_ms\":%lld,"
	    "\"lifetime\":%lld,\"user_id\":\"%s\",\"rt_hash\":\"%s\","
	    "\"email_hash\":\"%s\"}", S.refresh->buf, S.access->buf,
	    (long long)S.expires_ms, (long long)S.lifetime_s, S.user_id,
	    S.rt_hash, S.email_hash);
	if (n < 0 || (size_t)n >= cap) {
		crypto_wipe(pt, cap);
		free(pt);
		log_warnx("session: state too large to store");
		return -1;
	}
	len = (size_t)n;
	ct = xcalloc(1, STATE_MAGIC_LEN + len + CRYPTO_SEAL_OVERHEAD);
	memcpy(ct, STATE_MAGIC, STATE_MAGIC_LEN);
	crypto_seal((const unsigned char *)S.key->buf, pt, len,
	    ct + STATE_MAGIC_LEN);
	crypto_wipe(pt, cap);
	free(pt);
	rc = util_write_atomic(S.dirfd, STATE_FILE, STATE_TMP, ct,
	    STATE_MAGIC_LEN + len + CRYPTO_SEAL_OVERHEAD);
	free(ct);
	if (rc == -1)
		log_warn("session: cannot store the session in %s/%s",
		    S.c->state_dir, STATE_FILE);
	S.persisted = rc == 0;
	return rc;
}

static void
copy_hex(char dst[65], const struct json *item)
{
	const char	*s = json_str(item);

	dst[0] = '\0';
	if (s != NULL && strlen(s) == 64 &&
	    strspn(s, "0123456789abcdef") == 64)
		memcpy(dst, s, 65);
}

/* 0 loaded, 1 nothing stored (or unusable: warned), -1 fatal */
static int
load_state(void)
{
	char		*buf, *pt;
	struct json	*j, *rt, *at;
	const char	*rts, *ats, *uid;
	double		 exp, life;
	ssize_t		 n;
	size_t		 len = 0;
	int		 fd, rc = 1;

	if ((fd = openat(S.dirfd, STATE_FILE, O_RDONLY | O_CLOEXEC |
	    O_NOFOLLOW)) == -1) {
		if (errno == ENOENT)
			return 1;
		log_warn("session: %s/%s", S.c->state_dir, STATE_FILE);
		return -1;
	}
	buf = xcalloc(1, STATE_MAX + 1);
	while (len < STATE_MAX + 1) {
		if ((n = read(fd, buf + len, STATE_MAX + 1 - len)) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (len > STATE_MAX || len < STATE_MAGIC_LEN + CRYPTO_SEAL_OVERHEAD ||
	    memcmp(buf, STATE_MAGIC, STATE_MAGIC_LEN) != 0) {
		log_warnx("session: %s/%s is not a session file; ignored",
		    S.c->state_dir, STATE_FILE);
		free(buf);
		return 1;
	}
	pt = xcalloc(1, len);
	if (crypto_open((const unsigned char *)S.key->buf,
	    (unsigned char *)buf + STATE_MAGIC_LEN, len - STATE_MAGIC_LEN,
	    pt) == -1) {
		log_warnx("session: %s/%s does not decrypt with the session "
		    "key (was the key replaced?); ignored", S.c->state_dir,
		    STATE_FILE);
		free(buf);
		free(pt);
		return 1;
	}
	free(buf);
	len = len - STATE_MAGIC_LEN - CRYPTO_SEAL_OVERHEAD;
	j = json_parse(pt, len, NULL);
	crypto_wipe(pt, len);
	free(pt);
	rt = json_get(j, "refresh_token");
	at = json_get(j, "access_token");
	rts = json_str(rt);
	ats = json_str(at);
	uid = json_str(json_get(j, "user_id"));
	if (rts != NULL && ats != NULL &&
	    json_num(json_get(j, "expires_at_ms"), &exp) == 0 &&
	    json_num(json_get(j, "lifetime"), &life) == 0 && uid != NULL &&
	    token_ok(rts, strlen(rts)) && token_ok(ats, strlen(ats)) &&
	    strlen(uid) < sizeof(S.user_id)) {
		drop_tokens();
		S.refresh = secret_new(rts, strlen(rts));
		S.access = secret_new(ats, strlen(ats));
		if (S.refresh == NULL || S.access == NULL)
			fatalx("%s: out of memory", __func__);
		S.expires_ms = (int64_t)exp;
		S.lifetime_s = (int64_t)life;
		if (S.lifetime_s <= 0)
			S.lifetime_s = 3600;
		util_strlcpy(S.user_id, uid, sizeof(S.user_id));
		copy_hex(S.rt_hash, json_get(j, "rt_hash"));
		copy_hex(S.email_hash, json_get(j, "email_hash"));
		S.persisted = 1;
		rc = 0;
	} else
		log_warnx("session: %s/%s is incomplete; ignored",
		    S.c->state_dir, STATE_FILE);
	json_wipe(rt);
	json_wipe(at);
	json_free(j);
	return rc;
}

/*
 * The key: $CREDENTIALS_DIRECTORY/session-key (LoadCredential; 32 raw
 * bytes, or any longer secret, hashed), else state-dir/session.key,
 * created 0600 with 32 random bytes on first start.
 */
static int
load_key(void)
{
	const char	*cd = getenv("CREDENTIALS_DIRECTORY");
	struct secret	*s;
	struct stat	 st;
	unsigned char	 k[CRYPTO_SEAL_KEYBYTES];
	char		 path[4096], err[256];
	ssize_t		 n;
	int		 fd;

	if (cd != NULL && cd[0] != '\0' && (size_t)snprintf(path,
	    sizeof(path), "%s/%s", cd, CRED_KEY) < sizeof(path) &&
	    access(path, F_OK) == 0) {
		if ((s = secret_load(path, err, sizeof(err))) == NULL) {
			log_warnx("session: %s: %s", path, err);
			return -1;
		}
		if (s->len < 16) {
			log_warnx("session: %s: shorter than 16 bytes", path);
			secret_free(s);
			return -1;
		}
		if (s->len == CRYPTO_SEAL_KEYBYTES)
			memcpy(k, s->buf, sizeof(k));
		else
			crypto_digest(s->buf, s->len, k);
		secret_free(s);
		goto done;
	}
	for (;;) {
		fd = openat(S.dirfd, KEY_FILE, O_RDONLY | O_CLOEXEC |
		    O_NOFOLLOW);
		if (fd != -1 || errno != ENOENT)
			break;
		/* first start: make one */
		fd = openat(S.dirfd, KEY_FILE, O_WRONLY | O_CREAT | O_EXCL |
		    O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd == -1 && errno == EEXIST)
			continue;
		if (fd == -1) {
			log_warn("session: cannot create %s/%s",
			    S.c->state_dir, KEY_FILE);
			return -1;
		}
		crypto_random(k, sizeof(k));
		if (util_write_all(fd, k, sizeof(k)) == -1 || fsync(fd) == -1 ||
		    close(fd) == -1 || fsync(S.dirfd) == -1) {
			log_warn("session: cannot write %s/%s",
			    S.c->state_dir, KEY_FILE);
			unlinkat(S.dirfd, KEY_FILE, 0);
			crypto_wipe(k, sizeof(k));
			return -1;
		}
		log_info("session: created the session key %s/%s",
		    S.c->state_dir, KEY_FILE);
		goto done;
	}
	if (fd == -1) {
		log_warn("session: %s/%s", S.c->state_dir, KEY_FILE);
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    (st.st_mode & 077) != 0 || st.st_size != CRYPTO_SEAL_KEYBYTES ||
	    (n = read(fd, k, sizeof(k))) != (ssize_t)sizeof(k)) {
		log_warnx("session: %s/%s: not a %d-byte file readable by its "
		    "owner only", S.c->state_dir, KEY_FILE,
		    CRYPTO_SEAL_KEYBYTES);
		close(fd);
		crypto_wipe(k, sizeof(k));
		return -1;
	}
	close(fd);
 done:
	S.key = secret_new((const char *)k, sizeof(k));
	crypto_wipe(k, sizeof(k));
	if (S.key == NULL)
		fatalx("%s: out of memory", __func__);
	return 0;
}

/* open (or make, 0700) state-dir, lock it, load the key */
static int
open_state_dir(void)
{
	const char	*dir = S.c->state_dir;

	if (dir == NULL || dir[0] == '\0') {
		log_warnx("session: no state-dir");
		return -1;
	}
	if ((S.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 &&
	    errno == ENOENT && mkdir(dir, 0700) == 0)
		S.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (S.dirfd == -1) {
		log_warn("session: state-dir %s", dir);
		return -1;
	}
	if ((S.lockfd = openat(S.dirfd, LOCK_FILE, O_RDWR | O_CREAT |
	    O_CLOEXEC | O_NOFOLLOW, 0600)) == -1) {
		log_warn("session: %s/%s", dir, LOCK_FILE);
		return -1;
	}
	if (flock(S.lockfd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK)
			log_warnx("session: state-dir %s is in use by another "
			    "supagate (stop it first)", dir);
		else
			log_warn("session: lock %s/%s", dir, LOCK_FILE);
		return -1;
	}
	return load_key();
}

/*
 * the /token call
 */

static int
on_head(void *arg, int status, const char *hdrs, size_t len)
{
	const char	*p = hdrs, *end = hdrs + len, *eol, *v;
	size_t		 n;

	(void)arg;
	S.status = status;
	S.hdr_code[0] = '\0';
	S.retry_after_s = -1;
	for (; p < end; p = eol + 1) {
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			eol = end;
		n = (size_t)(eol - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if ((v = memchr(p, ':', n)) == NULL)
			continue;
		if ((size_t)(v - p) == 15 &&
		    strncasecmp(p, "x-sb-error-code", 15) == 0) {
			v++;
			while (v < p + n && (*v == ' ' || *v == '\t'))
				v++;
			if ((size_t)(p + n - v) < sizeof(S.hdr_code)) {
				memcpy(S.hdr_code, v, (size_t)(p + n - v));
				S.hdr_code[p + n - v] = '\0';
			}
		} else if ((size_t)(v - p) == 11 &&
		    strncasecmp(p, "retry-after", 11) == 0) {
			char	tmp[32], *e;
			long	ra;
			size_t	vl;

			v++;
			while (v < p + n && (*v == ' ' || *v == '\t'))
				v++;
			vl = (size_t)(p + n - v);
			if (vl > 0 && vl < sizeof(tmp)) {
				memcpy(tmp, v, vl);
				tmp[vl] = '\0';
				ra = strtol(tmp, &e, 10);
				if (*e == '\0' && ra >= 0)
					S.retry_after_s = ra > RETRY_AFTER_MAX ?
					    RETRY_AFTER_MAX : ra;
			}
		}
		if (eol == end)
			break;
	}
	return 0;
}

static size_t
on_data(void *arg, const char *p, size_t n)
{
	(void)arg;
	if (n > sizeof(S.resp) - S.resp_len) {
		S.resp_over = 1;
		return UPSTREAM_ABORT;
	}
	memcpy(S.resp + S.resp_len, p, n);
	S.resp_len += n;
	return n;
}

static size_t
on_read(void *arg, char *p, size_t n)
{
	(void)arg;
	if (n > S.body_len - S.body_off)
		n = S.body_len - S.body_off;
	memcpy(p, S.body + S.body_off, n);
	S.body_off += n;
	return n;
}

static int
on_rewind(void *arg)
{
	(void)arg;
	S.body_off = 0;
	return 0;
}

static void on_done(void *, enum upstream_result);

static const struct upstream_cbs token_cbs = {
	.on_head = on_head,
	.on_data = on_data,
	.on_read = on_read,
	.on_rewind = on_rewind,
	.on_done = on_done,
};

/* append s as JSON string contents; -1 if it does not fit */
static int
json_esc(char *dst, size_t cap, size_t *len, const char *s, size_t slen)
{
	static const char	hex[] = "0123456789abcdef";
	size_t			i;
	unsigned char		ch;

	for (i = 0; i < slen; i++) {
		ch = (unsigned char)s[i];
		if (cap - *len < 8)
			return -1;
		if (ch == '"' || ch == '\\') {
			dst[(*len)++] = '\\';
			dst[(*len)++] = (char)ch;
		} else if (ch < 0x20) {
			dst[(*len)++] = '\\';
			dst[(*len)++] = 'u';
			dst[(*len)++] = '0';
			dst[(*len)++] = '0';
			dst[(*len)++] = hex[ch >> 4];
			dst[(*len)++] = hex[ch & 0xf];
		} else
			dst[(*len)++] = (char)ch;
	}
	return 0;
}

static int
json_lit(char *dst, size_t cap, size_t *len, const char *s)
{
	size_t	n = strlen(s);

	if (cap - *len <= n)
		return -1;
	memcpy(dst + *len, s, n);
	*len += n;
	return 0;
}

static void
retry_cb(void *arg)
{
	(void)arg;
	S.retry_pending = 0;
	if (S.xfer == NULL && S.state != SESSION_FAILED)
		start_call(S.retry_op);
}

static void
arm_retry(enum op op, int64_t ms)
{
	S.retry_pending = 1;
	S.retry_op = op;
	S.retry_due = evloop_now_ms() + ms;
	evloop_timer_arm(&S.retry_timer, ms, retry_cb, NULL);
}

static void
xfer_timeout_cb(void *arg)
{
	(void)arg;
	if (S.xfer == NULL)
		return;
	upstream_abort(S.xfer);
	S.xfer = NULL;
	log_warnx("session: %s timed out", S.op == OP_PASSWORD ?
	    "sign-in" : "refresh");
	on_done(NULL, UPSTREAM_ERR_TIMEOUT);
}

static void
hold_cb(void *arg)
{
	(void)arg;
	/* the refresh is slow: let waiters go with the still-valid token */
	if (S.xfer != NULL && usable()) {
		S.serve_old = 1;
		release_waiters();
	}
}

/* start the one /token call now (or when the circuit breaker closes) */
static void
start_call(enum op op)
{
	struct upstream_req	 rq;
	const char		*hdrs[5];
	size_t			 nh = 0, len = 0;
	int64_t			 now = evloop_now_ms();

	if (S.xfer != NULL || S.state == SESSION_FAILED)
		return;
	evloop_timer_disarm(&S.refresh_timer);
	if (S.breaker_until > now) {
		arm_retry(op, S.breaker_until - now);
		set_state();
		return;
	}
	evloop_timer_disarm(&S.retry_timer);
	S.retry_pending = 0;
	if (op == OP_REFRESH && S.refresh == NULL)
		op = OP_PASSWORD;
	if (op == OP_PASSWORD && (S.password == NULL || S.email == NULL)) {
		log_warnx("session: lost, and no session-email and "
		    "session-password-file to sign in again");
		S.state = SESSION_FAILED;
		release_waiters();
		return;
	}
	crypto_wipe(S.body, sizeof(S.body));
	if (op == OP_PASSWORD) {
		if (json_lit(S.body, sizeof(S.body), &len,
		    "{\"email\":\"") == -1 ||
		    json_esc(S.body, sizeof(S.body), &len, S.email,
		    strlen(S.email)) == -1 ||
		    json_lit(S.body, sizeof(S.body), &len,
		    "\",\"password\":\"") == -1 ||
		    json_esc(S.body, sizeof(S.body), &len, S.password->buf,
		    S.password->len) == -1 ||
		    json_lit(S.body, sizeof(S.body), &len, "\"}") == -1) {
			log_warnx("session: email or password too long");
			S.state = SESSION_FAILED;
			release_waiters();
			return;
		}
	} else {
		if (json_lit(S.body, sizeof(S.body), &len,
		    "{\"refresh_token\":\"") == -1 ||
		    json_esc(S.body, sizeof(S.body), &len, S.refresh->buf,
		    S.refresh->len) == -1 ||
		    json_lit(S.body, sizeof(S.body), &len, "\"}") == -1) {
			log_warnx("session: refresh token too long");
			S.state = SESSION_FAILED;
			release_waiters();
			return;
		}
	}
	S.body_len = len;
	S.body_off = 0;
	S.resp_len = 0;
	S.resp_over = 0;
	S.status = 0;
	S.hdr_code[0] = '\0';
	S.retry_after_s = -1;
	S.serve_old = 0;
	S.op = op;

	hdrs[nh++] = "Content-Type: application/json;charset=UTF-8";
	hdrs[nh++] = "Accept: application/json";
	hdrs[nh++] = API_VERSION;
	hdrs[nh++] = S.hdr_apikey->buf;
	if (S.hdr_auth != NULL)
		hdrs[nh++] = S.hdr_auth->buf;
	memset(&rq, 0, sizeof(rq));
	rq.method = "POST";
	rq.url = op == OP_PASSWORD ? S.url_password : S.url_refresh;
	rq.headers = hdrs;
	rq.nheaders = nh;
	rq.has_body = 1;
	rq.body_len = (int64_t)len;
	rq.connect_timeout_ms = (int64_t)S.c->connect_timeout_ms;
	rq.ca_file = S.c->ca_file;
	rq.user_agent = SESSION_UA;
	log_debug("session: %s", op == OP_PASSWORD ? "signing in" :
	    "refreshing");
	if ((S.xfer = upstream_start(&rq, &token_cbs, NULL)) == NULL) {
		log_warnx("session: cannot start the /token call");
		on_done(NULL, UPSTREAM_ERR_NOMEM);
		return;
	}
	evloop_timer_arm(&S.xfer_timer, S.c->upstream_timeout_ms <
	    XFER_TIMEOUT_MS ? (int64_t)S.c->upstream_timeout_ms :
	    XFER_TIMEOUT_MS, xfer_timeout_cb, NULL);
	if (usable())
		evloop_timer_arm(&S.hold_timer, HOLD_MS, hold_cb, NULL);
	set_state();
}

/* when to refresh a token of lifetime L: 80%, and >= 60 s before exp */
static int64_t
refresh_delay_ms(int64_t life_s)
{
	int64_t	d = life_s * 800;

	if (life_s >= 120 && d > (life_s - 60) * 1000)
		d = (life_s - 60) * 1000;
	return d;
}

static void
refresh_timer_cb(void *arg)
{
	(void)arg;
	if (S.xfer == NULL && !S.retry_pending)
		start_call(OP_REFRESH);
}

static void
arm_refresh(void)
{
	int64_t	at, now = wall_ms();

	if (S.access == NULL)
		return;
	at = S.expires_ms - S.lifetime_s * 1000 + refresh_delay_ms(S.lifetime_s);
	evloop_timer_arm(&S.refresh_timer, at > now ? at - now : 0,
	    refresh_timer_cb, NULL);
}

/* take a 200 session answer; -1 if it is not one */
static int
take_session(void)
{
	struct json	*j, *at, *rt;
	struct secret	*na, *nr;
	const char	*ats, *rts, *uid;
	double		 ein, eat;
	int64_t		 now = wall_ms(), life;
	int		 rc = -1;

	j = json_parse(S.resp, S.resp_len, NULL);
	at = json_get(j, "access_token");
	rt = json_get(j, "refresh_token");
	ats = json_str(at);
	rts = json_str(rt);
	uid = json_str(json_get(json_get(j, "user"), "id"));
	if (ats == NULL || rts == NULL || !token_ok(ats, strlen(ats)) ||
	    !token_ok(rts, strlen(rts)))
		goto out;
	if (json_num(json_get(j, "expires_in"), &ein) == 0 && ein > 0 &&
	    ein < 1e9)
		life = (int64_t)ein;
	else if (json_num(json_get(j, "expires_at"), &eat) == 0 &&
	    eat * 1000 > now && eat < 1e12)
		life = (int64_t)eat - now / 1000;
	else
		life = 3600;
	if (life < 1)
		life = 1;
	na = secret_new(ats, strlen(ats));
	nr = secret_new(rts, strlen(rts));
	if (na == NULL || nr == NULL)
		fatalx("%s: out of memory", __func__);
	drop_tokens();
	S.access = na;
	S.refresh = nr;
	S.lifetime_s = life;
	S.expires_ms = now + life * 1000;
	/*
	 * expires_in counts from when Auth answered, in whole seconds: the
	 * token's own exp can be up to a second earlier, and is what
	 * upstream checks.
	 */
	{
		struct jwt_claims	cl;

		memset(&cl, 0, sizeof(cl));
		if (jwt_decode(ats, strlen(ats), &cl) == 0 && cl.exp > 0 &&
		    cl.exp * 1000 < S.expires_ms)
			S.expires_ms = cl.exp * 1000;
	}
	if (uid != NULL && strlen(uid) < sizeof(S.user_id) &&
	    token_ok(uid, strlen(uid)))
		util_strlcpy(S.user_id, uid, sizeof(S.user_id));
	rc = 0;
 out:
	json_wipe(at);
	json_wipe(rt);
	json_free(j);
	return rc;
}

/* the error code of a failed /token answer */
static void
error_code(char *out, size_t n)
{
	struct json	*j;
	const char	*v;

	util_strlcpy(out, S.hdr_code, n);
	if ((j = json_parse(S.resp, S.resp_len, NULL)) == NULL)
		return;
	if ((v = json_str(json_get(j, "code"))) != NULL ||
	    (v = json_str(json_get(j, "error_code"))) != NULL ||
	    (out[0] == '\0' && (v = json_str(json_get(j, "error"))) != NULL))
		util_strlcpy(out, v, n);
	json_free(j);
}

static int
terminal_code(const char *code)
{
	static const char *const	codes[] = {
		"refresh_token_not_found", "refresh_token_already_used",
		"session_not_found", "session_expired", "user_banned",
		"validation_failed", "invalid_request", "invalid_grant",
	};
	size_t				i;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strcmp(code, codes[i]) == 0)
			return 1;
	return 0;
}

static void
finish_login(int ok)
{
	if (!S.login_mode)
		return;
	S.login_ok = ok;
	evloop_stop();
}

static void
lost(const char *why)
{
	log_warnx("session: lost (%s); %s", why, S.login_mode ? "not stored" :
	    "requests get 503 session_lost until a new sign-in (supagate "
	    "login, then restart)");
	drop_tokens();
	evloop_timer_disarm(&S.refresh_timer);
	evloop_timer_disarm(&S.retry_timer);
	S.retry_pending = 0;
	S.state = SESSION_FAILED;
	if (!S.login_mode && S.dirfd != -1 && unlinkat(S.dirfd, STATE_FILE,
	    0) == -1 && errno != ENOENT)
		log_warn("session: cannot remove %s/%s", S.c->state_dir,
		    STATE_FILE);
	release_waiters();
	finish_login(0);
}

/* a transient failure: back off, keep the current token while it lasts */
static void
transient(enum op op, const char *why)
{
	int64_t		ms;
	uint32_t	r;

	if (S.login_mode) {
		log_warnx("session: %s failed: %s", op == OP_PASSWORD ?
		    "sign-in" : "refresh", why);
		S.state = SESSION_FAILED;
		finish_login(0);
		return;
	}
	S.backoff_ms = S.backoff_ms == 0 ? BACKOFF_MIN_MS :
	    S.backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
	    S.backoff_ms * 2;
	/* up to 25% jitter so many boxes do not retry in step */
	crypto_random(&r, sizeof(r));
	ms = S.backoff_ms + (int64_t)(r % (uint32_t)(S.backoff_ms / 4 + 1));
	log_warnx("session: %s failed (%s); retrying in %lld ms%s",
	    op == OP_PASSWORD ? "sign-in" : "refresh", why, (long long)ms,
	    usable() ? " with the current token still in use" : "");
	arm_retry(op, ms);
	set_state();
	release_waiters();
}

static void
breaker(enum op op)
{
	int64_t	ms;

	S.breaker_ms = S.breaker_ms == 0 ? BREAKER_MIN_MS :
	    S.breaker_ms * 2 > BREAKER_MAX_MS ? BREAKER_MAX_MS :
	    S.breaker_ms * 2;
	ms = S.breaker_ms;
	if (S.retry_after_s * 1000 > ms)
		ms = S.retry_after_s * 1000;
	S.breaker_until = evloop_now_ms() + ms;
	if (S.login_mode) {
		log_warnx("session: the auth upstream is rate limiting "
		    "(429); try again in %lld s", (long long)(ms / 1000));
		S.state = SESSION_FAILED;
		finish_login(0);
		return;
	}
	log_warnx("session: the auth upstream is rate limiting (429); no "
	    "/token call for %lld s", (long long)(ms / 1000));
	arm_retry(op, ms);
	set_state();
	release_waiters();
}

static void
on_done(void *arg, enum upstream_result res)
{
	enum op	op = S.op;
	char	code[64], why[128];
	int	rc;

	(void)arg;
	S.xfer = NULL;
	evloop_timer_disarm(&S.xfer_timer);
	evloop_timer_disarm(&S.hold_timer);
	crypto_wipe(S.body, sizeof(S.body));
	S.body_len = 0;
	if (res != UPSTREAM_OK) {
		crypto_wipe(S.resp, S.resp_len);
		S.resp_len = 0;
		if (op == OP_REFRESH)
			metrics.session_refresh_failures++;
		util_strlcpy(S.last_error, res == UPSTREAM_ERR_TIMEOUT ?
		    "timeout" : "unreachable", sizeof(S.last_error));
		transient(op, res == UPSTREAM_ERR_TIMEOUT ? "timeout" :
		    S.resp_over ? "answer too large" :
		    "the auth upstream cannot be reached");
		return;
	}
	if (S.status == 200) {
		rc = take_session();
		crypto_wipe(S.resp, S.resp_len);
		S.resp_len = 0;
		if (rc == -1) {
			if (op == OP_REFRESH)
				metrics.session_refresh_failures++;
			util_strlcpy(S.last_error, "bad_answer",
			    sizeof(S.last_error));
			transient(op, "the answer is not a session");
			return;
		}
		S.bad = 0;
		S.backoff_ms = S.breaker_ms = S.breaker_until = 0;
		S.conflict_retried = 0;
		S.refreshed_mono = evloop_now_ms();
		S.last_error[0] = '\0';
		if (op == OP_PASSWORD) {
			metrics.session_logins++;
			hash_hex(S.email, strlen(S.email), S.email_hash);
			log_info("session: signed in (user %s), token valid for "
			    "%lld s", S.user_id, (long long)S.lifetime_s);
		} else {
			metrics.session_refreshes++;
			log_debug("session: refreshed, token valid for %lld s",
			    (long long)S.lifetime_s);
		}
		/* durable before anything uses the new token */
		persist();
		S.state = SESSION_VALID;
		if (!S.login_mode)
			arm_refresh();
		release_waiters();
		finish_login(S.persisted);
		return;
	}

	error_code(code, sizeof(code));
	crypto_wipe(S.resp, S.resp_len);
	S.resp_len = 0;
	snprintf(why, sizeof(why), "HTTP %d %s", S.status,
	    code[0] != '\0' ? code : "(no error code)");
	util_strlcpy(S.last_error, code[0] != '\0' ? code : "http_error",
	    sizeof(S.last_error));
	if (op == OP_REFRESH)
		metrics.session_refresh_failures++;
	if (S.status == 429) {
		breaker(op);
		return;
	}
	if (S.status == 409 && !S.conflict_retried) {
		/* lock contention on the auth side: once more */
		S.conflict_retried = 1;
		log_info("session: %s: retrying once", why);
		start_call(op);
		return;
	}
	S.conflict_retried = 0;
	if (op == OP_REFRESH && S.status >= 400 && S.status < 500 &&
	    (S.status == 400 || terminal_code(code))) {
		log_warnx("session: refresh refused: %s", why);
		drop_tokens();
		if (S.password != NULL && !S.login_mode) {
			log_info("session: signing in again with the password");
			start_call(OP_PASSWORD);
			return;
		}
		lost(why);
		return;
	}
	if (op == OP_PASSWORD && (S.status == 400 || S.status == 422)) {
		log_warnx("session: sign-in refused: %s", why);
		lost(why);
		return;
	}
	transient(op, why);
}

/*
 * the interface
 */

static int64_t
refresh_at_ms(void)
{
	return S.expires_ms - S.lifetime_s * 1000 +
	    refresh_delay_ms(S.lifetime_s);
}

const char *
session_token(session_ready_cb *cb, void *arg, int *wait)
{
	int	dummy;

	if (wait == NULL)
		wait = &dummy;
	*wait = 0;
	if (!S.active || S.state == SESSION_FAILED)
		return NULL;
	if (usable()) {
		/* the timer may have slept through a suspend or a clock jump */
		if (S.xfer == NULL && !S.retry_pending &&
		    wall_ms() >= refresh_at_ms())
			start_call(OP_REFRESH);
		if (S.xfer == NULL || S.serve_old)
			return S.access->buf;
	} else if (S.xfer == NULL && !S.retry_pending)
		start_call(S.refresh != NULL ? OP_REFRESH : OP_PASSWORD);
	if (S.state == SESSION_FAILED)
		return NULL;
	if (S.xfer != NULL || (S.retry_pending &&
	    S.retry_due - evloop_now_ms() <= WAIT_RETRY_MS)) {
		if (add_waiter(cb, arg) == 0) {
			*wait = 1;
			return NULL;
		}
		if (usable())
			return S.access->buf;
	}
	return NULL;
}

void
session_token_rejected(const char *token)
{
	if (!S.active || S.access == NULL || token == NULL ||
	    S.state == SESSION_FAILED)
		return;
	if (!secret_eq(S.access, token, strlen(token)))
		return;		/* a newer one is already there */
	if (S.refreshed_mono != 0 &&
	    evloop_now_ms() - S.refreshed_mono < REJECT_MIN_MS) {
		log_debug("session: a token refreshed moments ago was "
		    "rejected; not refreshing again so soon");
		return;
	}
	S.bad = 1;
	if (S.xfer == NULL && !S.retry_pending)
		start_call(OP_REFRESH);
	set_state();
}

void
session_health(struct sbuf *sb)
{
	int64_t	now = evloop_now_ms();

	sbuf_printf(sb, "\"state\":\"%s\"",
	    session_state_name(session_state()));
	if (!S.active)
		return;
	if (S.access != NULL)
		sbuf_printf(sb, ",\"expires_at\":%lld",
		    (long long)(S.expires_ms / 1000));
	if (S.last_error[0] != '\0') {
		sbuf_add(sb, ",\"last_error\":", 14);
		sbuf_json_str(sb, S.last_error);
	}
	if (S.breaker_until > now)
		sbuf_printf(sb, ",\"retry_in\":%lld",
		    (long long)((S.breaker_until - now + 999) / 1000));
	if (S.access != NULL && !S.persisted)
		sbuf_printf(sb, ",\"stored\":false");
}

static struct secret *
header_secret(const char *name, const struct secret *v)
{
	struct secret	*s;
	size_t		 n = strlen(name);
	char		*tmp;

	tmp = xcalloc(1, n + v->len + 1);
	memcpy(tmp, name, n);
	memcpy(tmp + n, v->buf, v->len);
	s = secret_new(tmp, n + v->len);
	crypto_wipe(tmp, n + v->len);
	free(tmp);
	if (s == NULL)
		fatalx("%s: out of memory", __func__);
	return s;
}

static char *
join(const char *a, const char *b)
{
	size_t	n = strlen(a) + strlen(b) + 1;
	char	*s = xcalloc(1, n);

	snprintf(s, n, "%s%s", a, b);
	return s;
}

/* what setup and login share: conf, URLs, headers, state-dir, key */
static int
common_init(const struct conf *c)
{
	const char	*root;
	char		*base = NULL;

	S.dirfd = S.lockfd = -1;
	S.refresh_timer.due_ms = S.retry_timer.due_ms = -1;
	S.xfer_timer.due_ms = S.hold_timer.due_ms = -1;
	S.c = conf_ref((struct conf *)c);
	if (c->apikey == NULL) {
		log_warnx("session: no anon key (anon-key-file or "
		    "SUPABASE_KEY)");
		return -1;
	}
	if ((root = c->svc_upstream[CONF_SVC_AUTH]) == NULL) {
		if (c->upstream == NULL) {
			log_warnx("session: no auth upstream (auth-upstream or "
			    "upstream)");
			return -1;
		}
		root = base = join(c->upstream, "/auth/v1");
	}
	S.url_password = join(root, "/token?grant_type=password");
	S.url_refresh = join(root, "/token?grant_type=refresh_token");
	free(base);
	S.hdr_apikey = header_secret("apikey: ", c->apikey);
	if (c->apikey_is_jwt)
		S.hdr_auth = header_secret("Authorization: Bearer ",
		    c->apikey);
	return open_state_dir();
}

int
session_setup(const struct conf *c)
{
	struct secret	*rt = NULL;
	char		 err[256], h[65];
	int		 stored, use;

	if (c->auth_mode != CONF_AUTH_SESSION)
		return 0;
	if (S.active)
		session_teardown();
	if (common_init(c) == -1)
		goto fail;
	if (c->session_password_file != NULL) {
		if ((S.password = secret_load(c->session_password_file, err,
		    sizeof(err))) == NULL) {
			log_warnx("session: session-password-file %s: %s",
			    c->session_password_file, err);
			goto fail;
		}
	}
	if (c->session_email != NULL)
		S.email = xstrdup(c->session_email);
	if ((stored = load_state()) == -1)
		goto fail;
	use = stored == 0;
	if (c->session_refresh_token_file != NULL) {
		rt = secret_load(c->session_refresh_token_file, err,
		    sizeof(err));
		if (rt == NULL && !use) {
			log_warnx("session: session-refresh-token-file %s: %s",
			    c->session_refresh_token_file, err);
			goto fail;
		}
		if (rt != NULL && !token_ok(rt->buf, rt->len)) {
			log_warnx("session: session-refresh-token-file %s: "
			    "not a refresh token", c->session_refresh_token_file);
			goto fail;
		}
		if (rt != NULL) {
			hash_hex(rt->buf, rt->len, h);
			if (use && strcmp(h, S.rt_hash) == 0) {
				/* consumed already: its child is stored */
				secret_free(rt);
				rt = NULL;
			} else if (use)
				log_info("session: a new refresh token was "
				    "handed over in %s; using it",
				    c->session_refresh_token_file);
		}
	}
	if (use && rt == NULL && S.email != NULL && S.password != NULL &&
	    S.email_hash[0] != '\0') {
		hash_hex(S.email, strlen(S.email), h);
		if (strcmp(h, S.email_hash) != 0) {
			log_info("session: session-email changed; signing in "
			    "again");
			use = 0;
		}
	}
	S.active = 1;
	if (use && rt == NULL) {
		log_info("session: resuming the stored session (user %s)",
		    S.user_id);
		if (usable()) {
			S.state = SESSION_VALID;
			arm_refresh();
		} else
			start_call(OP_REFRESH);
		return 0;
	}
	drop_tokens();
	S.user_id[0] = S.email_hash[0] = '\0';
	if (rt != NULL) {
		hash_hex(rt->buf, rt->len, S.rt_hash);
		S.refresh = rt;
		rt = NULL;
		log_info("session: starting from the handed-over refresh "
		    "token");
		start_call(OP_REFRESH);
		return 0;
	}
	if (S.password != NULL && S.email != NULL) {
		start_call(OP_PASSWORD);
		return 0;
	}
	log_warnx("auth-mode session: no stored session in %s and neither "
	    "session-email with session-password-file nor "
	    "session-refresh-token-file; run \"supagate login -f FILE\" "
	    "first", c->state_dir);
 fail:
	secret_free(rt);
	session_teardown();
	return -1;
}

void
session_teardown(void)
{
	if (S.xfer != NULL)
		upstream_abort(S.xfer);
	S.xfer = NULL;
	evloop_timer_disarm(&S.refresh_timer);
	evloop_timer_disarm(&S.retry_timer);
	evloop_timer_disarm(&S.xfer_timer);
	evloop_timer_disarm(&S.hold_timer);
	free(S.w);
	drop_tokens();
	secret_free(S.password);
	secret_free(S.key);
	secret_free(S.hdr_apikey);
	secret_free(S.hdr_auth);
	free(S.email);
	free(S.url_password);
	free(S.url_refresh);
	if (S.lockfd != -1)
		close(S.lockfd);
	if (S.dirfd != -1)
		close(S.dirfd);
	conf_unref(S.c);
	crypto_wipe(&S, sizeof(S));
	S.dirfd = S.lockfd = -1;
}

/*
 * supagate login
 */

/* one line from stdin (a prompt and no echo on a terminal); 0 or -1 */
static int
read_line(const char *prompt, char *buf, size_t n, int tty, int echo)
{
	struct termios	 old, t;
	int		 restore = 0;
	size_t		 len;

	if (tty) {
		fputs(prompt, stderr);
		fflush(stderr);
		if (!echo && tcgetattr(STDIN_FILENO, &old) == 0) {
			t = old;
			t.c_lflag &= ~(tcflag_t)ECHO;
			t.c_lflag |= ECHONL;
			restore = tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) == 0;
		}
	}
	if (fgets(buf, (int)n, stdin) == NULL)
		buf[0] = '\0';
	if (restore)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	len = strlen(buf);
	if (len > 0 && buf[len - 1] != '\n' && !feof(stdin)) {
		fprintf(stderr, "supagate login: line too long\n");
		return -1;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	return len > 0 ? 0 : -1;
}

int
session_login_main(const struct conf *c)
{
	char		 l1[INPUT_MAX], l2[INPUT_MAX], err[256];
	struct secret	*rt;
	int		 tty = isatty(STDIN_FILENO), is_email, ok = 0;

	if (c->auth_mode != CONF_AUTH_SESSION) {
		fprintf(stderr, "supagate login: the configuration does not "
		    "set auth-mode session\n");
		return 1;
	}
	l2[0] = '\0';
	if (read_line("Email (or a refresh token): ", l1, sizeof(l1), tty,
	    1) == -1) {
		fprintf(stderr, "supagate login: no email or refresh token "
		    "given\n");
		return 1;
	}
	is_email = strchr(l1, '@') != NULL;
	if (is_email && read_line("Password: ", l2, sizeof(l2), tty,
	    0) == -1) {
		fprintf(stderr, "supagate login: no password given\n");
		crypto_wipe(l1, sizeof(l1));
		return 1;
	}
	if (!is_email && !token_ok(l1, strlen(l1))) {
		fprintf(stderr, "supagate login: that is neither an email "
		    "address nor a refresh token\n");
		crypto_wipe(l1, sizeof(l1));
		return 1;
	}
	if (evloop_setup() != 0 || upstream_setup() != 0) {
		crypto_wipe(l1, sizeof(l1));
		crypto_wipe(l2, sizeof(l2));
		return 1;
	}
	S.login_mode = 1;
	if (common_init(c) == 0) {
		/* a handed-over token file is older than this session */
		if (c->session_refresh_token_file != NULL &&
		    (rt = secret_load(c->session_refresh_token_file, err,
		    sizeof(err))) != NULL) {
			hash_hex(rt->buf, rt->len, S.rt_hash);
			secret_free(rt);
		}
		if (is_email) {
			S.email = xstrdup(l1);
			S.password = secret_new(l2, strlen(l2));
		} else
			S.refresh = secret_new(l1, strlen(l1));
		S.active = 1;
		start_call(is_email ? OP_PASSWORD : OP_REFRESH);
		if (S.state != SESSION_FAILED)
			evloop_run();
		ok = S.login_ok;
	}
	crypto_wipe(l1, sizeof(l1));
	crypto_wipe(l2, sizeof(l2));
	if (ok)
		fprintf(stderr, "supagate: signed in; the session is stored "
		    "in %s/%s\n", c->state_dir, STATE_FILE);
	else
		fprintf(stderr, "supagate login: failed\n");
	session_teardown();
	upstream_teardown();
	evloop_teardown();
	return ok ? 0 : 1;
}
