/*
 * check_storage: Storage through supagate against the loopback stack's
 * Storage emulator (issue 6): 1 GiB up and down with bounded memory, a
 * Range read, If-None-Match, a client that hangs up mid-download; a TUS
 * upload interrupted and resumed through supagate; the signed-URL broker;
 * supabase-js (tests/storage-js.mjs).
 *
 * main() starts one stack (tests/stack/stack-up into a temp dir) and one
 * supagate, runs the suite, then stops both (also on failure and on
 * SIGINT/SIGTERM).  Check forks a child per test; only the parent tears
 * down.  The cases run in order and share the emulator's state.
 *
 * Environment: SUPAGATE_SRCDIR, SUPAGATE_BIN, SUPAGATE_NODE_MODULES (as for
 * check_stack).  H_KEEP=1 keeps the temp dirs.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <cJSON.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define ALICE	"aaaaaaaa-1111-4111-8111-111111111111"
#define BOB	"bbbbbbbb-2222-4222-8222-222222222222"

#define MIB		(1024ULL * 1024)
#define GIB		(1024 * MIB)
#define HWM_SLACK_KB	(16 * 1024)	/* VmHWM growth allowed for 1 GiB */
#define TUS_TOTAL	(100 * MIB)
#define TUS_CHUNK	(5 * MIB)

static char	 service_key[1024], jwt_alice[1024], jwt_bob[1024];

static struct h_proc	gate;

/* ---- helpers --------------------------------------------------------- */

enum who { NOKEY, SERVICE, USER_A, USER_B };

/*
 * One request with a small body.  SERVICE goes straight to the Storage
 * emulator (target without /storage/v1) with the service key; the others
 * go through supagate with a placeholder apikey and, for users, their JWT.
 */
static void
sreq(struct h_resp *r, enum who who, const char *method, const char *target,
    const char *const *extra, const char *body)
{
	const char	*hv[4];
	size_t		 n = 0;
	int		 port = gate.port;

	switch (who) {
	case SERVICE:
		port = h_stack.storage_port;
		hv[n++] = h_fmt("Authorization: Bearer %s", service_key);
		break;
	case USER_A:
		hv[n++] = "apikey: placeholder";
		hv[n++] = h_fmt("Authorization: Bearer %s", jwt_alice);
		break;
	case USER_B:
		hv[n++] = "apikey: placeholder";
		hv[n++] = h_fmt("Authorization: Bearer %s", jwt_bob);
		break;
	case NOKEY:
		break;
	}
	if (body != NULL)
		hv[n++] = "Content-Type: application/json";
	hv[n] = NULL;
	if (h_call(r, port, method, target, hv, extra, body) == -1)
		ck_abort_msg("%s %s: no response: %s", method, target, r->err);
}

/* upload a small text object through supagate as who */
static void
put_text(enum who who, const char *bucket, const char *name,
    const char *text, int upsert)
{
	const char	*ex[] = { "Content-Type: text/plain",
			    upsert ? "x-upsert: true" : NULL, NULL };
	struct h_resp	 r;
	const char	*hv[6];
	struct h_opts	 o;
	size_t		 n = 0;
	int		 port = gate.port;

	memset(&o, 0, sizeof(o));
	if (who == SERVICE) {
		port = h_stack.storage_port;
		hv[n++] = h_fmt("Authorization: Bearer %s", service_key);
	} else {
		hv[n++] = "apikey: placeholder";
		hv[n++] = h_fmt("Authorization: Bearer %s",
		    who == USER_B ? jwt_bob : jwt_alice);
	}
	hv[n++] = ex[0];
	if (ex[1] != NULL)
		hv[n++] = ex[1];
	hv[n] = NULL;
	o.hdrs = hv;
	o.body = text;
	o.body_len = strlen(text);
	o.has_body = 1;
	ck_assert_int_eq(h_req(&r, port, "POST", h_fmt("%s/object/%s/%s",
	    who == SERVICE ? "" : "/storage/v1", bucket, name), &o), 0);
	ck_assert_msg(r.status == 200, "upload %s/%s: %ld %s", bucket, name,
	    r.status, r.body);
	h_resp_free(&r);
}

/* ---- the emulator's request log -------------------------------------- */

static void
emu_clear_log(void)
{
	struct h_resp	r;

	ck_assert_int_eq(h_req(&r, h_stack.storage_port, "DELETE",
	    "/_emu/requests", NULL), 0);
	ck_assert_int_eq(r.status, 200);
	h_resp_free(&r);
}

/* how many logged requests have method and a service_path starting with pfx */
static int
emu_count(const char *method, const char *pfx)
{
	struct h_resp	 r;
	cJSON		*a, *e, *m, *p;
	int		 n = 0;

	ck_assert_int_eq(h_get(&r, h_stack.storage_port, "/_emu/requests"), 0);
	ck_assert_msg(r.status == 200 && r.body_total == r.body_len,
	    "request log: %ld, %llu bytes", r.status,
	    (unsigned long long)r.body_total);
	a = cJSON_Parse(r.body);
	ck_assert_msg(cJSON_IsArray(a), "request log is not an array");
	cJSON_ArrayForEach(e, a) {
		m = cJSON_GetObjectItemCaseSensitive(e, "method");
		p = cJSON_GetObjectItemCaseSensitive(e, "service_path");
		if (cJSON_IsString(m) && cJSON_IsString(p) &&
		    strcmp(m->valuestring, method) == 0 &&
		    strncmp(p->valuestring, pfx, strlen(pfx)) == 0)
			n++;
	}
	cJSON_Delete(a);
	h_resp_free(&r);
	return n;
}

/* POST /object/sign/ calls that reached the emulator */
static int
upstream_signs(void)
{
	return emu_count("POST", "/object/sign/");
}

/* ---- streaming transfers with libcurl -------------------------------- */

struct xfer {
	/* request */
	const char		*method;
	const char		*target;	/* on supagate */
	const char		*hdrs[8];
	int			 upload;	/* send up_len pattern bytes */
	uint64_t		 up_off;	/* pattern offset of the first */
	uint64_t		 up_len;
	uint64_t		 up_abort;	/* abort after this many (0: no) */
	uint64_t		 down_abort;	/* abort after this many (0: no) */
	/* results */
	uint64_t		 up_sent;
	uint64_t		 down_n;
	struct pattern_sum	 down_sum;
	char			 head[2048];	/* start of the response body */
	char			 hbuf[8192];	/* final response header block */
	size_t			 hlen;
	long			 status;
	CURLcode		 cc;
};

static size_t
x_read(char *buf, size_t size, size_t nmemb, void *cls)
{
	struct xfer	*x = cls;
	uint64_t	 left = x->up_len - x->up_sent;
	size_t		 len = size * nmemb;

	if (x->up_abort != 0 && x->up_sent >= x->up_abort)
		return CURL_READFUNC_ABORT;
	if (x->up_abort != 0 && x->up_abort - x->up_sent < left)
		left = x->up_abort - x->up_sent;
	if (len > left)
		len = (size_t)left;
	pattern_fill((unsigned char *)buf, x->up_off + x->up_sent, len);
	x->up_sent += len;
	return len;
}

static size_t
x_write(char *data, size_t size, size_t nmemb, void *cls)
{
	struct xfer	*x = cls;
	size_t		 len = size * nmemb, keep;

	if (x->down_n < sizeof(x->head) - 1) {
		keep = sizeof(x->head) - 1 - (size_t)x->down_n;
		if (keep > len)
			keep = len;
		memcpy(x->head + x->down_n, data, keep);
		x->head[x->down_n + keep] = '\0';
	}
	pattern_sum_update(&x->down_sum, (unsigned char *)data, len);
	x->down_n += len;
	if (x->down_abort != 0 && x->down_n >= x->down_abort)
		return 0;		/* hang up */
	return len;
}

static size_t
x_header(char *data, size_t size, size_t nmemb, void *cls)
{
	struct xfer	*x = cls;
	size_t		 len = size * nmemb;

	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0)
		x->hlen = 0;		/* a new (final or interim) response */
	if (x->hlen + len < sizeof(x->hbuf)) {
		memcpy(x->hbuf + x->hlen, data, len);
		x->hlen += len;
		x->hbuf[x->hlen] = '\0';
	}
	return len;
}

/* value of header name in x->hbuf into out; NULL if absent */
static const char *
x_hdr(const struct xfer *x, const char *name, char *out, size_t n)
{
	const char	*p = x->hbuf;
	size_t		 nl = strlen(name), l;

	while ((p = strchr(p, '\n')) != NULL) {
		p++;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			p += nl + 1;
			while (*p == ' ' || *p == '\t')
				p++;
			l = strcspn(p, "\r\n");
			if (l >= n)
				l = n - 1;
			memcpy(out, p, l);
			out[l] = '\0';
			return out;
		}
	}
	return NULL;
}

static void
xfer_run(struct xfer *x)
{
	CURL			*c = curl_easy_init();
	struct curl_slist	*sl = NULL;
	size_t			 i;

	x->down_sum = (struct pattern_sum)PATTERN_SUM_INIT;
	curl_easy_setopt(c, CURLOPT_URL, h_fmt("http://127.0.0.1:%d%s",
	    gate.port, x->target));
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, x->method);
	if (strcmp(x->method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	if (x->upload) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
		    (curl_off_t)x->up_len);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, x_read);
		curl_easy_setopt(c, CURLOPT_READDATA, x);
		curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 256L * 1024);
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, x_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, x_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 90000L);
	sl = curl_slist_append(sl, "Expect:");
	for (i = 0; i < 8 && x->hdrs[i] != NULL; i++)
		sl = curl_slist_append(sl, x->hdrs[i]);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, sl);
	x->cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &x->status);
	curl_slist_free_all(sl);
	curl_easy_cleanup(c);
}

static uint32_t
pattern_sum_of(uint64_t off, uint64_t n)
{
	static unsigned char	buf[1 << 20];
	struct pattern_sum	s = PATTERN_SUM_INIT;
	uint64_t		done;
	size_t			len;

	for (done = 0; done < n; done += len) {
		len = n - done < sizeof(buf) ? (size_t)(n - done) : sizeof(buf);
		pattern_fill(buf, off + done, len);
		pattern_sum_update(&s, buf, len);
	}
	return pattern_sum_value(&s);
}

/* ---- 1 GiB up and down ----------------------------------------------- */

static void
big_upload(const char *name, uint64_t n)
{
	struct xfer	x;

	memset(&x, 0, sizeof(x));
	x.method = "POST";
	x.target = h_fmt("/storage/v1/object/big/%s", name);
	x.hdrs[0] = "apikey: placeholder";
	x.hdrs[1] = h_fmt("Authorization: Bearer %s", jwt_alice);
	x.hdrs[2] = "Content-Type: application/octet-stream";
	x.hdrs[3] = "x-upsert: true";
	x.upload = 1;
	x.up_len = n;
	xfer_run(&x);
	ck_assert_msg(x.cc == CURLE_OK && x.status == 200 && x.up_sent == n,
	    "upload %s (%llu bytes): %s, status %ld, sent %llu: %s", name,
	    (unsigned long long)n, curl_easy_strerror(x.cc), x.status,
	    (unsigned long long)x.up_sent, x.head);
	ck_assert_msg(strstr(x.head, h_fmt("\"big/%s\"", name)) != NULL,
	    "upload answer: %s", x.head);
}

/* download through supagate; the ETag into etag */
static void
big_download(const char *name, uint64_t n, char *etag, size_t etaglen)
{
	struct xfer	x;

	memset(&x, 0, sizeof(x));
	x.method = "GET";
	x.target = h_fmt("/storage/v1/object/big/%s", name);
	x.hdrs[0] = "apikey: placeholder";
	x.hdrs[1] = h_fmt("Authorization: Bearer %s", jwt_alice);
	xfer_run(&x);
	ck_assert_msg(x.cc == CURLE_OK && x.status == 200,
	    "download %s: %s, status %ld: %s", name,
	    curl_easy_strerror(x.cc), x.status, x.head);
	ck_assert_msg(x.down_n == n, "download %s: %llu bytes, want %llu",
	    name, (unsigned long long)x.down_n, (unsigned long long)n);
	ck_assert_msg(pattern_sum_value(&x.down_sum) == pattern_sum_of(0, n),
	    "download %s: checksum differs", name);
	if (etag != NULL)
		ck_assert_msg(x_hdr(&x, "ETag", etag, etaglen) != NULL,
		    "download %s: no ETag", name);
}

START_TEST(gib_roundtrip)
{
	long	base, hwm, rss;

	/* warm-up: buffers, curl handles and connections exist */
	big_upload("warm", 16 * MIB);
	big_download("warm", 16 * MIB, NULL, 0);
	base = h_vm_kb(gate.pid, "VmHWM");
	ck_assert_int_gt(base, 0);

	big_upload("gib", GIB);
	hwm = h_vm_kb(gate.pid, "VmHWM");
	ck_assert_msg(hwm - base < HWM_SLACK_KB, "1 GiB upload: VmHWM %ld kB "
	    "-> %ld kB", base, hwm);

	big_download("gib", GIB, NULL, 0);
	hwm = h_vm_kb(gate.pid, "VmHWM");
	rss = h_vm_kb(gate.pid, "VmRSS");
	ck_assert_msg(hwm - base < HWM_SLACK_KB, "1 GiB download: VmHWM %ld "
	    "kB -> %ld kB (RSS %ld kB)", base, hwm, rss);
}
END_TEST

START_TEST(gib_range_and_etag)
{
	struct h_resp	 r;
	char		 etag[256];
	const char	*ex[3] = { NULL, NULL, NULL };
	struct pattern_sum want = PATTERN_SUM_INIT;
	static unsigned char buf[1 << 20];

	/* the info call gives the ETag without reading 1 GiB again */
	sreq(&r, USER_A, "GET", "/storage/v1/object/info/big/gib", NULL, NULL);
	ck_assert_msg(r.status == 200, "info: %ld %s", r.status, r.body);
	snprintf(etag, sizeof(etag), "%s", h_hdr(&r, "ETag"));
	ck_assert_msg(etag[0] == '"', "info ETag: %s", etag);
	h_resp_free(&r);

	ex[0] = "Range: bytes=-1048576";
	sreq(&r, USER_A, "GET", "/storage/v1/object/big/gib", ex, NULL);
	ck_assert_msg(r.status == 206, "range: %ld %s", r.status, r.body);
	ck_assert_str_eq(h_hdr(&r, "Content-Range"),
	    h_fmt("bytes %llu-%llu/%llu", GIB - MIB, GIB - 1, GIB));
	ck_assert_uint_eq(r.body_total, MIB);
	pattern_fill(buf, GIB - MIB, MIB);
	pattern_sum_update(&want, buf, MIB);
	ck_assert_msg(pattern_sum_value(&r.sum) == pattern_sum_value(&want),
	    "the last MiB differs");
	ck_assert_str_eq(h_hdr(&r, "ETag"), etag);
	h_resp_free(&r);

	ex[0] = h_fmt("If-None-Match: %s", etag);
	sreq(&r, USER_A, "GET", "/storage/v1/object/big/gib", ex, NULL);
	ck_assert_msg(r.status == 304, "If-None-Match: %ld %s", r.status,
	    r.body);
	ck_assert_uint_eq(r.body_total, 0);
	h_resp_free(&r);
}
END_TEST

/* supagate_inflight_requests (as the metrics request sees it) and
 * upstream_transfers from /_supagate/health */
static void
gate_load(double *inflight, double *transfers)
{
	struct h_resp	r;

	*inflight = *transfers = -1;
	if (h_metric(gate.port, "supagate_inflight_requests", NULL, inflight)
	    == -1)
		*inflight = -1;
	if (h_get(&r, gate.port, "/_supagate/health") == 0 &&
	    h_json_num(r.body, "upstream_transfers", transfers) == -1)
		*transfers = -1;
	h_resp_free(&r);
}

START_TEST(gib_client_hangs_up)
{
	struct xfer	x;
	double		inflight = -1, transfers = -1;
	int64_t		deadline;
	int		idle = 0;

	memset(&x, 0, sizeof(x));
	x.method = "GET";
	x.target = "/storage/v1/object/big/gib";
	x.hdrs[0] = "apikey: placeholder";
	x.hdrs[1] = h_fmt("Authorization: Bearer %s", jwt_alice);
	x.down_abort = GIB / 2;
	xfer_run(&x);
	ck_assert_msg(x.cc == CURLE_WRITE_ERROR && x.status == 200,
	    "half download: %s, status %ld", curl_easy_strerror(x.cc),
	    x.status);
	ck_assert_uint_ge(x.down_n, GIB / 2);
	ck_assert_uint_lt(x.down_n, GIB);

	deadline = h_now_ms() + 10000;
	while (!idle && h_now_ms() < deadline) {
		gate_load(&inflight, &transfers);
		if (inflight == 1 && transfers == 0)
			idle = 1;
		else
			h_sleep_ms(50);
	}
	ck_assert_msg(idle, "10 s after the client hung up: "
	    "supagate_inflight_requests %g (1 = only the metrics request), "
	    "upstream_transfers %g", inflight, transfers);
}
END_TEST

/* ---- TUS through supagate -------------------------------------------- */

static char *
b64(const char *s)
{
	static const char	t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
				    "opqrstuvwxyz0123456789+/";
	static char		ring[4][256];
	static int		k;
	char			*o = ring[k++ % 4], *p = o;
	size_t			n = strlen(s), i;
	unsigned		v;

	for (i = 0; i + 2 < n; i += 3) {
		v = (unsigned char)s[i] << 16 | (unsigned char)s[i + 1] << 8 |
		    (unsigned char)s[i + 2];
		*p++ = t[v >> 18 & 63]; *p++ = t[v >> 12 & 63];
		*p++ = t[v >> 6 & 63]; *p++ = t[v & 63];
	}
	if (n - i == 1) {
		v = (unsigned char)s[i] << 16;
		*p++ = t[v >> 18 & 63]; *p++ = t[v >> 12 & 63];
		*p++ = '='; *p++ = '=';
	} else if (n - i == 2) {
		v = (unsigned char)s[i] << 16 | (unsigned char)s[i + 1] << 8;
		*p++ = t[v >> 18 & 63]; *p++ = t[v >> 12 & 63];
		*p++ = t[v >> 6 & 63]; *p++ = '=';
	}
	*p = '\0';
	return o;
}

/* HEAD the upload through supagate: Upload-Offset, -1 on error */
static long long
tus_offset(const char *path)
{
	struct xfer	x;
	char		v[64];

	memset(&x, 0, sizeof(x));
	x.method = "HEAD";
	x.target = path;
	x.hdrs[0] = "apikey: placeholder";
	x.hdrs[1] = h_fmt("Authorization: Bearer %s", jwt_alice);
	x.hdrs[2] = "Tus-Resumable: 1.0.0";
	xfer_run(&x);
	if (x.cc != CURLE_OK || x.status != 200 ||
	    x_hdr(&x, "Upload-Offset", v, sizeof(v)) == NULL)
		return -1;
	if (x_hdr(&x, "Cache-Control", v + 32, 32) == NULL ||
	    strcmp(v + 32, "no-store") != 0)
		return -2;
	x_hdr(&x, "Upload-Offset", v, sizeof(v));
	return atoll(v);
}

/* PATCH [off, off+len) of the pattern; abort after `abort` bytes if set */
static void
tus_patch(struct xfer *x, const char *path, uint64_t off, uint64_t len,
    uint64_t abort_after)
{
	memset(x, 0, sizeof(*x));
	x->method = "PATCH";
	x->target = path;
	x->hdrs[0] = "apikey: placeholder";
	x->hdrs[1] = h_fmt("Authorization: Bearer %s", jwt_alice);
	x->hdrs[2] = "Tus-Resumable: 1.0.0";
	x->hdrs[3] = "Content-Type: application/offset+octet-stream";
	x->hdrs[4] = h_fmt("Upload-Offset: %llu", (unsigned long long)off);
	x->upload = 1;
	x->up_off = off;
	x->up_len = len;
	x->up_abort = abort_after;
	xfer_run(x);
}

START_TEST(tus_interrupted_and_resumed)
{
	struct xfer	 x;
	char		 loc[1024], want[256], path[1024], v[64];
	const char	*id;
	uint64_t	 off = 0, n;
	long long	 o, prev;
	int		 loc_ok, i, stable;

	/* create through supagate */
	memset(&x, 0, sizeof(x));
	x.method = "POST";
	x.target = "/storage/v1/upload/resumable";
	x.hdrs[0] = "apikey: placeholder";
	x.hdrs[1] = h_fmt("Authorization: Bearer %s", jwt_alice);
	x.hdrs[2] = "Tus-Resumable: 1.0.0";
	x.hdrs[3] = h_fmt("Upload-Length: %llu", TUS_TOTAL);
	x.hdrs[4] = h_fmt("Upload-Metadata: bucketName %s,objectName %s,"
	    "contentType %s,cacheControl %s", b64("priv"),
	    b64("tus/100m.bin"), b64("application/octet-stream"), b64("60"));
	x.hdrs[5] = "x-upsert: true";
	xfer_run(&x);
	ck_assert_msg(x.cc == CURLE_OK && x.status == 201,
	    "TUS create: %s, status %ld: %s", curl_easy_strerror(x.cc),
	    x.status, x.head);
	ck_assert_msg(x_hdr(&x, "Location", loc, sizeof(loc)) != NULL,
	    "TUS create: no Location");
	ck_assert_msg((id = strrchr(loc, '/')) != NULL && id[1] != '\0',
	    "Location %s", loc);
	/*
	 * The client must be sent back to supagate.  Checked at the end, so
	 * that the resume below is exercised even when this is wrong; the
	 * upload continues through supagate at its own path for the id.
	 */
	snprintf(want, sizeof(want), "http://127.0.0.1:%d/storage/v1/upload/"
	    "resumable/", gate.port);
	loc_ok = strncmp(loc, want, strlen(want)) == 0 &&
	    strchr(loc + strlen(want), '/') == NULL;
	snprintf(path, sizeof(path), "/storage/v1/upload/resumable%s", id);

	ck_assert_int_eq(tus_offset(path), 0);
	/* 7 chunks, then the 8th hangs up halfway */
	for (i = 0; i < 7; i++) {
		tus_patch(&x, path, off, TUS_CHUNK, 0);
		ck_assert_msg(x.cc == CURLE_OK && x.status == 204,
		    "PATCH at %llu: %s, status %ld: %s",
		    (unsigned long long)off, curl_easy_strerror(x.cc),
		    x.status, x.head);
		off += TUS_CHUNK;
		ck_assert_msg(x_hdr(&x, "Upload-Offset", v, sizeof(v)) != NULL
		    && strtoull(v, NULL, 10) == off, "PATCH: Upload-Offset %s",
		    x_hdr(&x, "Upload-Offset", v, sizeof(v)) ? v : "(none)");
	}
	tus_patch(&x, path, off, TUS_CHUNK, TUS_CHUNK / 2);
	ck_assert_msg(x.cc == CURLE_ABORTED_BY_CALLBACK ||
	    x.cc == CURLE_READ_ERROR, "interrupted PATCH: %s, status %ld",
	    curl_easy_strerror(x.cc), x.status);

	/* the offset settles (bounded wait) somewhere in the broken chunk */
	prev = -1;
	stable = 0;
	for (i = 0; i < 200 && stable < 3; i++) {
		o = tus_offset(path);
		ck_assert_msg(o >= 0, "HEAD after the hang-up: %lld", o);
		stable = o == prev ? stable + 1 : 0;
		prev = o;
		h_sleep_ms(25);
	}
	ck_assert_msg(prev >= (long long)off &&
	    prev <= (long long)(off + TUS_CHUNK / 2),
	    "offset after the hang-up %lld, chunk started at %llu", prev,
	    (unsigned long long)off);
	fprintf(stderr, "check_storage: TUS chunk at %llu broken after %llu "
	    "bytes sent; the upload resumes at %lld\n",
	    (unsigned long long)off, (unsigned long long)x.up_sent, prev);
	off = (uint64_t)prev;

	/* resume; a 409 means the broken PATCH still holds the upload */
	for (i = 0; i < 100 && off < TUS_TOTAL; i++) {
		n = TUS_TOTAL - off < TUS_CHUNK ? TUS_TOTAL - off : TUS_CHUNK;
		tus_patch(&x, path, off, n, 0);
		if (x.status == 409) {
			h_sleep_ms(50);
			ck_assert_int_ge(o = tus_offset(path), 0);
			off = (uint64_t)o;
			continue;
		}
		ck_assert_msg(x.cc == CURLE_OK && x.status == 204,
		    "resume PATCH at %llu: %s, status %ld: %s",
		    (unsigned long long)off, curl_easy_strerror(x.cc),
		    x.status, x.head);
		ck_assert(x_hdr(&x, "Upload-Offset", v, sizeof(v)) != NULL);
		off = strtoull(v, NULL, 10);
	}
	ck_assert_uint_eq(off, TUS_TOTAL);

	/* the object: same bytes */
	memset(&x, 0, sizeof(x));
	x.method = "GET";
	x.target = "/storage/v1/object/priv/tus/100m.bin";
	x.hdrs[0] = "apikey: placeholder";
	x.hdrs[1] = h_fmt("Authorization: Bearer %s", jwt_alice);
	xfer_run(&x);
	ck_assert_msg(x.cc == CURLE_OK && x.status == 200, "download: %ld %s",
	    x.status, x.head);
	ck_assert_uint_eq(x.down_n, TUS_TOTAL);
	ck_assert_msg(pattern_sum_value(&x.down_sum) ==
	    pattern_sum_of(0, TUS_TOTAL), "the resumed object differs");

	ck_assert_msg(loc_ok, "TUS Location points elsewhere: got %s, want "
	    "%s<id> (supagate must rewrite the upstream's absolute Location "
	    "to its own address)", loc, want);
}
END_TEST

/* ---- signed-URL broker ----------------------------------------------- */

/* signedURL of a sign call through supagate as who; "" if none */
static void
sign_one(enum who who, const char *obj, int expires, char *out, size_t n,
    struct h_resp *keep)
{
	struct h_resp	r;

	sreq(&r, who, "POST", h_fmt("/storage/v1/object/sign/priv/%s", obj),
	    NULL, h_fmt("{\"expiresIn\":%d}", expires));
	out[0] = '\0';
	if (r.status == 200)
		h_json_str(r.body, "signedURL", out, n);
	if (keep != NULL)
		*keep = r;
	else
		h_resp_free(&r);
}

static double
metric_or(const char *labels)
{
	double	v;

	return h_metric(gate.port, "supagate_signed_urls_total", labels, &v)
	    == 0 ? v : -1;
}

/* GET the signed URL through supagate with no key: its body */
static void
fetch_signed(const char *signed_url, const char *want)
{
	struct h_resp	r;

	ck_assert_msg(strncmp(signed_url, "/object/sign/", 13) == 0,
	    "signedURL %s", signed_url);
	sreq(&r, NOKEY, "GET", h_fmt("/storage/v1%s", signed_url), NULL,
	    NULL);
	ck_assert_msg(r.status == 200 && strcmp(r.body, want) == 0,
	    "GET %s with no key: %ld %s", signed_url, r.status, r.body);
	ck_assert_str_ne(h_hdr(&r, "Expires"), "(none)");
	h_resp_free(&r);
}

START_TEST(broker_reuses)
{
	char	first[2048], u[2048];
	double	c0, u0, c1, u1;
	int	i, same = 1;

	put_text(USER_A, "priv", "sign/reuse.txt", "reuse me", 1);
	emu_clear_log();
	c0 = metric_or("source=cache");
	u0 = metric_or("source=upstream");
	sign_one(USER_A, "sign/reuse.txt", 3600, first, sizeof(first), NULL);
	ck_assert_msg(first[0] != '\0', "first sign gave no signedURL");
	for (i = 2; i <= 100; i++) {
		sign_one(USER_A, "sign/reuse.txt", 3600, u, sizeof(u), NULL);
		if (strcmp(u, first) != 0 && same) {
			same = 0;
			ck_abort_msg("sign call %d: %s, first %s", i, u, first);
		}
	}
	fetch_signed(first, "reuse me");
	ck_assert_msg(upstream_signs() == 1, "100 sign calls: %d reached "
	    "Storage, want 1", upstream_signs());
	c1 = metric_or("source=cache");
	u1 = metric_or("source=upstream");
	ck_assert_msg(c0 >= 0 && c1 >= 0 && u0 >= 0 && u1 >= 0,
	    "supagate_signed_urls_total{source=cache|upstream} missing");
	ck_assert_msg(c1 - c0 == 99 && u1 - u0 == 1, "signed_urls_total: "
	    "cache +%g (want 99), upstream +%g (want 1)", c1 - c0, u1 - u0);
}
END_TEST

START_TEST(broker_share_threshold)
{
	char	a[2048], b[2048], c[2048];

	put_text(USER_A, "priv", "sign/short.txt", "short lived", 1);
	emu_clear_log();
	sign_one(USER_A, "sign/short.txt", 4, a, sizeof(a), NULL);
	sign_one(USER_A, "sign/short.txt", 4, b, sizeof(b), NULL);
	ck_assert_msg(a[0] != '\0', "no signedURL");
	ck_assert_msg(strcmp(a, b) == 0 && upstream_signs() == 1,
	    "fresh short-lived URL not reused: %s / %s, %d upstream", a, b,
	    upstream_signs());
	/* half of 4 s has passed: the cached URL is below the share */
	h_sleep_ms(2600);
	sign_one(USER_A, "sign/short.txt", 4, c, sizeof(c), NULL);
	ck_assert_msg(c[0] != '\0' && strcmp(c, a) != 0, "after the share "
	    "passed: %s, before %s", c, a);
	ck_assert_int_eq(upstream_signs(), 2);
	fetch_signed(c, "short lived");
}
END_TEST

START_TEST(broker_invalidation)
{
	char		a[2048], u[2048];
	struct h_resp	r;
	int		n;

	put_text(USER_A, "priv", "sign/inv.txt", "v1", 1);
	put_text(USER_A, "priv", "sign/src.txt", "moved here", 1);
	emu_clear_log();
	sign_one(USER_A, "sign/inv.txt", 3600, a, sizeof(a), NULL);
	sign_one(USER_A, "sign/inv.txt", 3600, u, sizeof(u), NULL);
	ck_assert_msg(a[0] != '\0' && upstream_signs() == 1,
	    "setup: %d upstream signs", upstream_signs());

	/* upload with upsert through supagate */
	put_text(USER_A, "priv", "sign/inv.txt", "v2", 1);
	sign_one(USER_A, "sign/inv.txt", 3600, u, sizeof(u), NULL);
	ck_assert_msg((n = upstream_signs()) == 2, "after an upsert: %d "
	    "upstream signs, want 2", n);
	fetch_signed(u, "v2");

	/* remove with prefixes through supagate */
	sreq(&r, USER_A, "DELETE", "/storage/v1/object/priv", NULL,
	    "{\"prefixes\":[\"sign/inv.txt\"]}");
	ck_assert_msg(r.status == 200 && strstr(r.body, "sign/inv.txt"),
	    "remove: %ld %s", r.status, r.body);
	h_resp_free(&r);
	sign_one(USER_A, "sign/inv.txt", 3600, u, sizeof(u), &r);
	ck_assert_msg((n = upstream_signs()) == 3, "after a remove: %d "
	    "upstream signs, want 3 (answer %ld %s)", n, r.status, r.body);
	ck_assert_msg(u[0] == '\0', "a removed object was signed: %s", u);
	h_resp_free(&r);

	/* a move onto the path through supagate */
	sreq(&r, USER_A, "POST", "/storage/v1/object/move", NULL,
	    "{\"bucketId\":\"priv\",\"sourceKey\":\"sign/src.txt\","
	    "\"destinationKey\":\"sign/inv.txt\"}");
	ck_assert_msg(r.status == 200, "move: %ld %s", r.status, r.body);
	h_resp_free(&r);
	sign_one(USER_A, "sign/inv.txt", 3600, u, sizeof(u), NULL);
	ck_assert_msg((n = upstream_signs()) == 4, "after a move onto it: %d "
	    "upstream signs, want 4", n);
	fetch_signed(u, "moved here");
	/* and that one is cached again */
	sign_one(USER_A, "sign/inv.txt", 3600, a, sizeof(a), NULL);
	ck_assert_msg(strcmp(a, u) == 0 && upstream_signs() == 4,
	    "not cached after the move: %s / %s", a, u);
}
END_TEST

START_TEST(broker_per_user)
{
	char		a[2048], b[2048], tok[2048];
	struct h_resp	r;
	const char	*t;

	put_text(USER_A, "priv", "sign/alice-only.txt", "alice's", 1);
	emu_clear_log();
	sign_one(USER_A, "sign/alice-only.txt", 3600, a, sizeof(a), NULL);
	sign_one(USER_A, "sign/alice-only.txt", 3600, b, sizeof(b), NULL);
	ck_assert_msg(a[0] != '\0' && strcmp(a, b) == 0, "alice: %s / %s", a,
	    b);
	t = strstr(a, "token=");
	ck_assert(t != NULL);
	snprintf(tok, sizeof(tok), "%s", t + 6);

	sign_one(USER_B, "sign/alice-only.txt", 3600, b, sizeof(b), &r);
	ck_assert_msg(strstr(r.body, tok) == NULL && strcmp(a, b) != 0,
	    "bob received alice's URL: %ld %s", r.status, r.body);
	/* the emulator hides alice's private object from bob */
	ck_assert_msg(r.status == 400 && strstr(r.body, "\"404\"") != NULL,
	    "bob: %ld %s", r.status, r.body);
	h_resp_free(&r);
	ck_assert_int_eq(upstream_signs(), 2);
	/* the batch form neither */
	sreq(&r, USER_B, "POST", "/storage/v1/object/sign/priv", NULL,
	    "{\"expiresIn\":3600,\"paths\":[\"sign/alice-only.txt\"]}");
	ck_assert_msg(strstr(r.body, tok) == NULL, "bob's batch received "
	    "alice's URL: %s", r.body);
	h_resp_free(&r);
	/* and with no user at all (placeholder key: anon) */
	sign_one(NOKEY, "sign/alice-only.txt", 3600, b, sizeof(b), &r);
	ck_assert_msg(strstr(r.body, tok) == NULL, "anon received alice's "
	    "URL: %s", r.body);
	h_resp_free(&r);
}
END_TEST

static int
json_len(const char *json)
{
	cJSON	*a = cJSON_Parse(json);
	int	 n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : -1;

	cJSON_Delete(a);
	return n;
}

/* signedURL of path in a batch answer; "" if none */
static void
batch_url(const char *json, const char *path, char *out, size_t n)
{
	cJSON	*a = cJSON_Parse(json), *e, *p, *u;

	out[0] = '\0';
	cJSON_ArrayForEach(e, a) {
		p = cJSON_GetObjectItemCaseSensitive(e, "path");
		u = cJSON_GetObjectItemCaseSensitive(e, "signedURL");
		if (cJSON_IsString(p) && strcmp(p->valuestring, path) == 0 &&
		    cJSON_IsString(u))
			snprintf(out, n, "%s", u->valuestring);
	}
	cJSON_Delete(a);
}

/*
 * Batch of paths that all get cached: the second batch is answered with
 * no upstream call, and a single sign of one of them reuses the batch's URL.
 * The emulator's tokens carry iat in seconds: a new signature a second
 * later differs, so equal URLs after the sleeps below mean reuse.
 */
START_TEST(broker_batch_cached)
{
	static const char *const body =
	    "{\"expiresIn\":3600,\"paths\":[\"sign/c1.txt\",\"sign/c2.txt\"]}";
	struct h_resp	r;
	char		c1[2048], c2[2048], u[2048];
	int		before;

	put_text(USER_A, "priv", "sign/c1.txt", "c one", 1);
	put_text(USER_A, "priv", "sign/c2.txt", "c two", 1);
	emu_clear_log();
	sreq(&r, USER_A, "POST", "/storage/v1/object/sign/priv", NULL, body);
	ck_assert_msg(r.status == 200 && json_len(r.body) == 2, "batch: %ld "
	    "%s", r.status, r.body);
	batch_url(r.body, "sign/c1.txt", c1, sizeof(c1));
	batch_url(r.body, "sign/c2.txt", c2, sizeof(c2));
	h_resp_free(&r);
	fetch_signed(c1, "c one");
	fetch_signed(c2, "c two");
	ck_assert_int_eq(upstream_signs(), 1);

	h_sleep_ms(1100);
	before = upstream_signs();
	sreq(&r, USER_A, "POST", "/storage/v1/object/sign/priv", NULL, body);
	ck_assert_int_eq(r.status, 200);
	batch_url(r.body, "sign/c1.txt", u, sizeof(u));
	ck_assert_msg(strcmp(u, c1) == 0, "batch c1 not reused: %s / %s", u,
	    c1);
	batch_url(r.body, "sign/c2.txt", u, sizeof(u));
	ck_assert_msg(strcmp(u, c2) == 0, "batch c2 not reused: %s / %s", u,
	    c2);
	ck_assert_msg(upstream_signs() == before, "a batch of cached paths "
	    "made %d upstream sign calls", upstream_signs() - before);
	h_resp_free(&r);

	sign_one(USER_A, "sign/c2.txt", 3600, u, sizeof(u), NULL);
	ck_assert_msg(strcmp(u, c2) == 0 && upstream_signs() == before,
	    "a single sign did not reuse the batch's URL: %s / %s", u, c2);
}
END_TEST

/*
 * A batch where only some paths are cached (one signed alone before, one
 * new, one missing): the cached path keeps its URL.
 */
START_TEST(broker_batch_mixed)
{
	static const char *const body =
	    "{\"expiresIn\":3600,\"paths\":[\"sign/b1.txt\",\"sign/b2.txt\","
	    "\"sign/none.txt\"]}";
	struct h_resp	r;
	char		single[2048], u[2048];

	put_text(USER_A, "priv", "sign/b1.txt", "b one", 1);
	put_text(USER_A, "priv", "sign/b2.txt", "b two", 1);
	emu_clear_log();
	sign_one(USER_A, "sign/b1.txt", 3600, single, sizeof(single), NULL);
	ck_assert(single[0] != '\0');
	h_sleep_ms(1100);
	sreq(&r, USER_A, "POST", "/storage/v1/object/sign/priv", NULL, body);
	ck_assert_msg(r.status == 200 && json_len(r.body) == 3, "batch: %ld "
	    "%s", r.status, r.body);
	batch_url(r.body, "sign/none.txt", u, sizeof(u));
	ck_assert_msg(u[0] == '\0' && strstr(r.body, "Either the object "
	    "does not exist") != NULL, "missing path: %s", r.body);
	batch_url(r.body, "sign/b2.txt", u, sizeof(u));
	fetch_signed(u, "b two");
	batch_url(r.body, "sign/b1.txt", u, sizeof(u));
	fetch_signed(u, "b one");
	ck_assert_msg(strcmp(u, single) == 0, "a batch with uncached paths "
	    "did not reuse the cached URL of b1: got %s, cached %s", u, single);
	h_resp_free(&r);
	/* and the cached URL is still the one a single sign gets */
	sign_one(USER_A, "sign/b1.txt", 3600, u, sizeof(u), NULL);
	ck_assert_msg(strcmp(u, single) == 0, "b1 after the batch: %s, "
	    "before %s", u, single);
}
END_TEST

/* ---- supabase-js ----------------------------------------------------- */

/*
 * cache-storage-public on: a public object is stored with its ETag.
 * With max-age it is a plain hit; with no-cache every read asks
 * upstream If-None-Match and a 304 is answered from the store; a write
 * through supagate changes what is served.
 */
START_TEST(public_objects_cached)
{
	const char	*ma = "/storage/v1/object/public/pubc/ma.txt";
	const char	*nc = "/storage/v1/object/public/pubc/nc.txt";
	struct h_resp	 r;
	int		 i;

	put_text(SERVICE, "pubc", "nc.txt", "no-cache v1", 1);
	{
		struct h_opts	 o;
		const char	*hv[] = { h_fmt("Authorization: Bearer %s",
				    service_key), "Content-Type: text/plain",
				    "Cache-Control: max-age=3600",
				    "x-upsert: true", NULL };

		memset(&o, 0, sizeof(o));
		o.hdrs = hv;
		o.body = "max-age v1";
		o.body_len = 10;
		o.has_body = 1;
		ck_assert_int_eq(h_req(&r, h_stack.storage_port, "POST",
		    "/object/pubc/ma.txt", &o), 0);
		ck_assert_int_eq(r.status, 200);
		h_resp_free(&r);
	}
	emu_clear_log();
	for (i = 0; i < 3; i++) {
		sreq(&r, NOKEY, "GET", ma, NULL, NULL);
		ck_assert_int_eq(r.status, 200);
		ck_assert_str_eq(r.body, "max-age v1");
		ck_assert_msg(strstr(h_hdr(&r, "Cache-Status"), i == 0 ?
		    "fwd=miss" : "supagate; hit") != NULL, "read %d: %s", i,
		    h_hdr(&r, "Cache-Status"));
		h_resp_free(&r);
	}
	ck_assert_int_eq(emu_count("GET", "/object/public/pubc/ma.txt"), 1);
	for (i = 0; i < 3; i++) {
		sreq(&r, NOKEY, "GET", nc, NULL, NULL);
		ck_assert_int_eq(r.status, 200);
		ck_assert_str_eq(r.body, "no-cache v1");
		ck_assert_msg(strstr(h_hdr(&r, "Cache-Status"), i == 0 ?
		    "fwd=miss" : "fwd-status=304") != NULL, "read %d: %s", i,
		    h_hdr(&r, "Cache-Status"));
		h_resp_free(&r);
	}
	/* every no-cache read asked upstream, the later ones conditionally */
	ck_assert_int_eq(emu_count("GET", "/object/public/pubc/nc.txt"), 3);
	/* a new version written through supagate is what is served */
	put_text(USER_A, "pubc", "nc.txt", "no-cache v2", 1);
	sreq(&r, NOKEY, "GET", nc, NULL, NULL);
	ck_assert_str_eq(r.body, "no-cache v2");
	h_resp_free(&r);
	/* ranged reads pass through */
	{
		const char	*rg[] = { "Range: bytes=0-1", NULL };

		sreq(&r, NOKEY, "GET", ma, rg, NULL);
		ck_assert_int_eq(r.status, 206);
		ck_assert_str_eq(r.body, "ma");
		h_resp_free(&r);
	}
}
END_TEST

START_TEST(supabase_js)
{
	const char	*nm = getenv("SUPAGATE_NODE_MODULES");
	const char	*cmd;

	cmd = h_fmt("GATE_URL=http://127.0.0.1:%d AUTH_URL='%s' BUCKET=priv "
	    "SUPAGATE_NODE_MODULES='%s' timeout 50 node '%s/tests/storage-js.mjs'"
	    " >'%s/storage-js.out' 2>&1", gate.port, h_stack.auth_url,
	    nm && *nm ? nm : h_fmt("%s/node_modules", h_stack.srcdir),
	    h_stack.srcdir, h_stack.dir);
	if (h_run(cmd) != 0) {
		h_run(h_fmt("cat '%s/storage-js.out' >&2", h_stack.dir));
		ck_abort_msg("tests/storage-js.mjs failed (output above)");
	}
}
END_TEST

/* ---- set-up and tear-down -------------------------------------------- */

/* before stack-down (h_stack_up) */
static void
stop_gate(void)
{
	h_stack_gate_stop(&gate, 3000, NULL);
}

static void
read_keys(void)
{
	if (h_stack.storage_port <= 0 || h_stack.auth_url[0] == '\0')
		h_die("stack.env lacks STORAGE_URL or AUTH_URL");
	if (h_read_secret(h_stack.service_key_file, service_key,
	    sizeof(service_key)) == -1)
		h_die("cannot read the service key");
}

static void
mint(const char *sub, char *out, size_t n)
{
	if (h_stack_jwt(out, n, sub, NULL, 3600) == -1)
		h_die(h_fmt("cannot mint a JWT for %s", sub));
}

/* a request straight to the emulator with the service key */
static void
emu_setup(const char *method, const char *target, const char *body)
{
	const char	*hv[3];
	struct h_opts	 o;
	struct h_resp	 r;

	memset(&o, 0, sizeof(o));
	hv[0] = h_fmt("Authorization: Bearer %s", service_key);
	hv[1] = "Content-Type: application/json";
	hv[2] = NULL;
	o.hdrs = hv;
	o.body = body;
	o.body_len = strlen(body);
	o.has_body = 1;
	if (h_req(&r, h_stack.storage_port, method, target, &o) == -1 ||
	    r.status != 200) {
		fprintf(stderr, "%s %s: %ld %s\n", method, target, r.status,
		    r.body != NULL ? r.body : r.err);
		h_die("storage set-up failed");
	}
	h_resp_free(&r);
}

static void
setup(void)
{
	const char	*why;

	h_init();
	h_rss_tests();
	if ((why = h_stack_up("sg-storage", stop_gate)) != NULL)
		h_die(why);
	read_keys();
	mint(ALICE, jwt_alice, sizeof(jwt_alice));
	mint(BOB, jwt_bob, sizeof(jwt_bob));

	/* room for 1 GiB, and the buckets */
	emu_setup("POST", "/_emu/config", "{\"file_size_limit\":3000000000}");
	emu_setup("POST", "/bucket", "{\"id\":\"big\",\"name\":\"big\","
	    "\"public\":false}");
	emu_setup("POST", "/bucket", "{\"id\":\"priv\",\"name\":\"priv\","
	    "\"public\":false}");
	emu_setup("POST", "/bucket", "{\"id\":\"pubc\",\"name\":\"pubc\","
	    "\"public\":true}");

	if (h_gate_start(&gate, h_fmt(
	    "listen 127.0.0.1:0\n"
	    "state-dir @DIR@/state\n"
	    "rest-upstream %s\n"
	    "auth-upstream %s\n"
	    "storage-upstream %s\n"
	    "anon-key-file %s\n"
	    "jwt-secret-file %s\n"
	    "storage-max-body-size 2G\n"
	    "cache-storage-public on\n"
	    "sign-reuse-share 0.5\n",
	    h_stack.rest_url, h_stack.auth_url, h_stack.storage_url,
	    h_stack.anon_key_file, h_stack.jwt_secret_file),
	    0, NULL) == -1)
		h_die("supagate did not start");
}

static Suite *
storage_suite(void)
{
	Suite	*s = suite_create("storage");
	TCase	*tc;

	tc = tcase_create("gib");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, gib_roundtrip);
	tcase_add_test(tc, gib_range_and_etag);
	tcase_add_test(tc, gib_client_hangs_up);
	suite_add_tcase(s, tc);

	tc = tcase_create("tus");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, tus_interrupted_and_resumed);
	suite_add_tcase(s, tc);

	tc = tcase_create("broker");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, broker_reuses);
	tcase_add_test(tc, broker_share_threshold);
	tcase_add_test(tc, broker_invalidation);
	tcase_add_test(tc, broker_per_user);
	tcase_add_test(tc, broker_batch_cached);
	tcase_add_test(tc, broker_batch_mixed);
	suite_add_tcase(s, tc);

	tc = tcase_create("public_objects");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, public_objects_cached);
	suite_add_tcase(s, tc);

	tc = tcase_create("supabase_js");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, supabase_js);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return h_stack_main(setup, storage_suite);
}
