/* check_conf: configuration parser, environment and credentials */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "conf.h"
#include "crypto.h"
#include "jwk.h"
#include "ck_run.h"

#define BASE	"upstream http://127.0.0.1:1\nanon-key-file anon\n"
#define PUB	"sb_publishable_test0123456789"
#define SEC	"sb_secret_test0123456789"

static char	tmpdir[PATH_MAX];
static char	errs[1 << 16];
static char	out[1 << 16];
static char	jwt_anon[512], jwt_service[512], jwt_other[512];

static void
write_file(const char *path, const char *data, size_t len, mode_t mode)
{
	int	fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void
write_str(const char *path, const char *data, mode_t mode)
{
	write_file(path, data, strlen(data), mode);
}

static void
mkjwt(char *buf, size_t len, const char *role)
{
	const char	*hdr = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	char		 payload[128];
	unsigned char	 mac[32];
	long		 n, m;

	snprintf(payload, sizeof(payload),
	    "{\"iss\":\"supabase-demo\",\"role\":\"%s\",\"exp\":1983812996}",
	    role);
	n = crypto_b64url_encode(hdr, strlen(hdr), buf, len);
	ck_assert_int_gt(n, 0);
	buf[n++] = '.';
	m = crypto_b64url_encode(payload, strlen(payload), buf + n,
	    len - (size_t)n);
	ck_assert_int_gt(m, 0);
	n += m;
	crypto_hmac_sha256("secret", 6, buf, (size_t)n, mac);
	buf[n++] = '.';
	ck_assert_int_gt(crypto_b64url_encode(mac, 32, buf + n,
	    len - (size_t)n), 0);
}

static void
setup(void)
{
	ck_assert_int_eq(crypto_setup(), 0);
	strcpy(tmpdir, "/tmp/check_conf.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	ck_assert_int_eq(chdir(tmpdir), 0);
	unsetenv("SUPABASE_URL");
	unsetenv("SUPABASE_KEY");
	unsetenv("CREDENTIALS_DIRECTORY");
	write_str("anon", PUB "\n", 0600);
	mkjwt(jwt_anon, sizeof(jwt_anon), "anon");
	mkjwt(jwt_service, sizeof(jwt_service), "service_role");
	mkjwt(jwt_other, sizeof(jwt_other), "authenticated");
}

static void
teardown(void)
{
	char	cmd[PATH_MAX + 16];

	if (chdir("/") == 0 && strncmp(tmpdir, "/tmp/check_conf.", 16) == 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmpdir);
	}
}

/* conf_load with stderr captured in errs */
static struct conf *
load_file(const char *path)
{
	struct conf	*c;
	FILE		*tf = tmpfile();
	size_t		 n;
	int		 saved;

	ck_assert_ptr_nonnull(tf);
	fflush(stderr);
	saved = dup(2);
	dup2(fileno(tf), 2);
	c = conf_load(path);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tf);
	n = fread(errs, 1, sizeof(errs) - 1, tf);
	errs[n] = '\0';
	fclose(tf);
	return c;
}

static struct conf *
load(const char *text)
{
	write_str("t.conf", text, 0644);
	return load_file("t.conf");
}

static struct conf *
loadb(const char *extra)
{
	char	buf[8192];

	snprintf(buf, sizeof(buf), "%s%s", BASE, extra);
	return load(buf);
}

static void
dump(const struct conf *c)
{
	FILE	*fp = tmpfile();
	size_t	 n;

	ck_assert_ptr_nonnull(fp);
	conf_dump(c, fp);
	rewind(fp);
	n = fread(out, 1, sizeof(out) - 1, fp);
	out[n] = '\0';
	fclose(fp);
}

#define HAS(s, sub)	ck_assert_msg(strstr((s), (sub)) != NULL,	\
			    "expected \"%s\" in:\n%s", (sub), (s))
#define HASNT(s, sub)	ck_assert_msg(strstr((s), (sub)) == NULL,	\
			    "unexpected \"%s\" in:\n%s", (sub), (s))
#define FAILS(c)	ck_assert_msg((c) == NULL, "loaded, expected errors")
#define OK(c)		ck_assert_msg((c) != NULL, "errors:\n%s", errs)

/*
 * units
 */

START_TEST(durations)
{
	static const struct {
		const char	*s;
		uint64_t	 ms;
	} good[] = {
		{ "0", 0 }, { "30", 30000 }, { "250ms", 250 }, { "30s", 30000 },
		{ "5m", 300000 }, { "1h", 3600000 }, { "1d", 86400000 },
		{ "18446744073709551615ms", UINT64_MAX },
	};
	static const char *const bad[] = {
		"", "s", "-1", "+1", " 1s", "1s ", "1.5s", "1x", "1ss", "1S",
		"10msx", "18446744073709551616ms", "18446744073709552s",
		"99999999999999999999", "1 s", "0x10",
	};
	uint64_t	v;
	size_t		i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ck_assert_msg(conf_parse_duration_ms(good[i].s, &v) == 0,
		    "%s", good[i].s);
		ck_assert_msg(v == good[i].ms, "%s", good[i].s);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(conf_parse_duration_ms(bad[i], &v) == -1, "%s",
		    bad[i]);
}
END_TEST

START_TEST(sizes)
{
	static const struct {
		const char	*s;
		uint64_t	 v;
	} good[] = {
		{ "0", 0 }, { "512", 512 }, { "64k", 65536 }, { "64K", 65536 },
		{ "100M", 104857600 }, { "1G", 1073741824 },
		{ "5g", 5368709120ULL }, { "16777215T", 16777215ULL << 40 },
	};
	static const char *const bad[] = {
		"", "k", "-1", "1.5M", "1KB", "1 k", "10x", "16777216T",
		"18446744073709551616", "1k ", "+5",
	};
	uint64_t	v;
	size_t		i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ck_assert_msg(conf_parse_size(good[i].s, &v) == 0, "%s",
		    good[i].s);
		ck_assert_msg(v == good[i].v, "%s", good[i].s);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(conf_parse_size(bad[i], &v) == -1, "%s", bad[i]);
}
END_TEST

/*
 * keywords
 */

START_TEST(defaults)
{
	struct conf	*c;
	size_t		 i;

	c = loadb("");
	OK(c);
	ck_assert_str_eq(errs, "");
	ck_assert_uint_eq(c->refcnt, 1);
	ck_assert_str_eq(c->file, "t.conf");
	ck_assert_uint_eq(c->nlisten, 1);
	ck_assert_str_eq(c->listen[0].host, "127.0.0.1");
	ck_assert_int_eq(c->listen[0].port, 8787);
	ck_assert_str_eq(c->upstream, "http://127.0.0.1:1");
	for (i = 0; i < CONF_SVC__N; i++)
		ck_assert_ptr_null(c->svc_upstream[i]);
	ck_assert_int_eq(c->auth_mode, CONF_AUTH_ANON);
	ck_assert_int_eq(c->client_auth, CONF_CLIENT_AUTH_PASS);
	ck_assert_str_eq(c->anon_key_file, "anon");
	ck_assert_ptr_null(c->service_key_file);
	ck_assert_ptr_null(c->jwt_secret_file);
	ck_assert_ptr_null(c->jwt_secret);
	ck_assert_ptr_null(c->ca_file);
	ck_assert_str_eq(c->state_dir, LOCALSTATEDIR "/lib/supagate");
	ck_assert_ptr_nonnull(c->apikey);
	ck_assert_str_eq(c->apikey->buf, PUB);
	ck_assert_int_eq(c->apikey_is_jwt, 0);
	ck_assert_uint_eq(c->nexpose, 0);
	ck_assert_uint_eq(c->nallow_from, 0);
	ck_assert_uint_eq(c->nallow_origin, 0);
	ck_assert_uint_eq(c->nallow_host, 0);
	ck_assert(c->cache_ttl_s == 60);
	ck_assert_uint_eq(c->ncache_ttl_status, 0);	/* no error cached */
	ck_assert(c->upstream_timeout_ms == 60000);
	ck_assert(c->functions_timeout_ms == 150000);
	ck_assert(c->connect_timeout_ms == 10000);
	ck_assert(c->max_header_size == 16384);
	ck_assert(c->max_body_size == 10485760);
	ck_assert(c->storage_max_body_size == 5368709120ULL);
	ck_assert(c->max_connections == 1024);
	ck_assert(c->max_connections_per_peer == 256);
	ck_assert(c->busy_poll_us == 50);
	ck_assert(c->cache_max_size == 268435456);
	ck_assert(c->cache_max_object == 1048576);
	ck_assert(c->sign_reuse_share == 0.5);
	ck_assert_ptr_eq(conf_ref(c), c);
	ck_assert_uint_eq(c->refcnt, 2);
	conf_unref(c);
	ck_assert_uint_eq(c->refcnt, 1);
	conf_unref(c);
	conf_unref(NULL);
}
END_TEST

START_TEST(good_values)
{
	struct conf	*c;

	write_str("ca.pem", "x", 0644);
	write_str("jwts", "jwt-secret-for-tests\n", 0600);
	c = load(
	    "listen 127.0.0.1:0\n"
	    "listen [::1]:8788\n"
	    "listen 192.168.1.5:80\n"
	    "listen \"unix:/run/supa gate/http.sock\"\n"
	    "upstream \"https://abc.supabase.co///\"\n"
	    "rest-upstream http://127.0.0.1:3000/\n"
	    "auth-upstream http://127.0.0.1:9999\n"
	    "storage-upstream http://127.0.0.1:5000/storage\n"
	    "functions-upstream http://[::1]:8000\n"
	    "graphql-upstream http://127.0.0.1:3000/rpc/graphql\n"
	    "auth-mode service\n"
	    "client-auth replace\n"
	    "anon-key-file anon\n"
	    "service-key-file sec\n"
	    "jwt-secret-file jwts\n"
	    "session-email user@example.com\n"
	    "session-password-file pw\n"
	    "session-refresh-token-file rt\n"
	    "state-dir /var/tmp/sg\n"
	    "ca-file ca.pem\n"
	    "cache-ttl 5m\n"
	    "cache-ttl-for /rest/v1/countries 1h\n"
	    "cache-ttl-status 404 1m\n"
	    "cache-ttl-status 400 30\n"
	    "cache-ttl-status 501 1d\n"
	    "cache-rpc hello\n"
	    "cache-storage-public on\n"
	    "expose GET,HEAD /rest/v1/\n"
	    "expose * /functions/v1/hello\n"
	    "expose post,Patch,DELETE,PUT,OPTIONS /rest/v1/todos\n"
	    "allow-from 192.168.1.77/24\n"
	    "allow-from fd00::1/8\n"
	    "allow-from 10.1.2.3\n"
	    "allow-origin http://LocalHost:3000\n"
	    "allow-origin https://app.example.com\n"
	    "allow-origin http://[::1]:5173\n"
	    "allow-host Supagate.LAN\n"
	    "allow-host 192.168.1.5\n"
	    "upstream-timeout 250ms\n"
	    "functions-timeout 1h\n"
	    "connect-timeout 30\n"
	    "max-header-size 1k\n"
	    "max-body-size 100M\n"
	    "storage-max-body-size 1G\n"
	    "max-connections 10\n"
	    "max-connections-per-peer 2\n"
	    "busy-poll 0\n"
	    "cache-max-size 1G\n"
	    "cache-max-object 64k\n"
	    "sign-reuse-share 1\n");
	FAILS(c);	/* sec does not exist yet */
	HAS(errs, "t.conf: service-key-file sec: No such file");
	write_str("sec", SEC, 0600);
	c = load_file("t.conf");
	OK(c);
	ck_assert_uint_eq(c->nlisten, 4);
	ck_assert_int_eq(c->listen[0].port, 0);
	ck_assert_str_eq(c->listen[1].host, "::1");
	ck_assert_int_eq(c->listen[1].port, 8788);
	ck_assert_str_eq(c->listen[1].path, "");
	ck_assert_str_eq(c->listen[3].path, "/run/supa gate/http.sock");
	ck_assert_str_eq(c->upstream, "https://abc.supabase.co");
	ck_assert_str_eq(c->svc_upstream[CONF_SVC_REST],
	    "http://127.0.0.1:3000");
	ck_assert_str_eq(c->svc_upstream[CONF_SVC_STORAGE],
	    "http://127.0.0.1:5000/storage");
	ck_assert_str_eq(c->svc_upstream[CONF_SVC_FUNCTIONS],
	    "http://[::1]:8000");
	ck_assert_int_eq(c->auth_mode, CONF_AUTH_SERVICE);
	ck_assert_int_eq(c->client_auth, CONF_CLIENT_AUTH_REPLACE);
	ck_assert_str_eq(c->apikey->buf, SEC);
	ck_assert_str_eq(c->jwt_secret->buf, "jwt-secret-for-tests");
	ck_assert_str_eq(c->session_email, "user@example.com");
	ck_assert_str_eq(c->session_password_file, "pw");
	ck_assert_str_eq(c->state_dir, "/var/tmp/sg");
	ck_assert_str_eq(c->ca_file, "ca.pem");
	ck_assert(c->cache_ttl_s == 300);
	ck_assert_uint_eq(c->ncache_ttl_status, 3);
	ck_assert_int_eq(c->cache_ttl_status[0].status, 404);
	ck_assert(c->cache_ttl_status[0].ttl_s == 60);
	ck_assert_int_eq(c->cache_ttl_status[1].status, 400);
	ck_assert(c->cache_ttl_status[1].ttl_s == 30);
	ck_assert_int_eq(c->cache_ttl_status[2].status, 501);
	ck_assert(c->cache_ttl_status[2].ttl_s == 86400);
	ck_assert_uint_eq(c->nexpose, 3);
	ck_assert_uint_eq(c->expose[0].methods, CONF_M_GET | CONF_M_HEAD);
	ck_assert_str_eq(c->expose[0].prefix, "/rest/v1/");
	ck_assert_uint_eq(c->expose[1].methods, CONF_M_ALL);
	ck_assert_uint_eq(c->expose[2].methods, CONF_M_ALL &
	    ~(CONF_M_GET | CONF_M_HEAD));
	ck_assert_uint_eq(c->nallow_from, 3);
	ck_assert_int_eq(c->allow_from[0].prefix, 24);
	ck_assert_int_eq(c->allow_from[0].addr[3], 0);	/* masked */
	ck_assert_int_eq(c->allow_from[0].addr[2], 1);
	ck_assert_int_eq(c->allow_from[1].prefix, 8);
	ck_assert_int_eq(c->allow_from[1].addr[15], 0);
	ck_assert_int_eq(c->allow_from[1].addr[0], 0xfd);
	ck_assert_int_eq(c->allow_from[2].prefix, 32);
	ck_assert_uint_eq(c->nallow_origin, 3);
	ck_assert_str_eq(c->allow_origin[0], "http://localhost:3000");
	ck_assert_str_eq(c->allow_host[0], "supagate.lan");
	ck_assert(c->upstream_timeout_ms == 250);
	ck_assert(c->functions_timeout_ms == 3600000);
	ck_assert(c->connect_timeout_ms == 30000);
	ck_assert(c->max_header_size == 1024);
	ck_assert(c->max_body_size == 100 << 20);
	ck_assert(c->max_connections == 10);
	ck_assert(c->max_connections_per_peer == 2);
	ck_assert(c->busy_poll_us == 0);
	ck_assert(c->cache_max_object == 65536);
	ck_assert(c->sign_reuse_share == 1.0);
	dump(c);
	HAS(out, "listen [::1]:8788\n");
	HAS(out, "listen \"unix:/run/supa gate/http.sock\"\n");
	HAS(out, "expose * /functions/v1/hello\n");
	HAS(out, "expose GET,HEAD /rest/v1/\n");
	HAS(out, "allow-from 192.168.1.0/24\n");
	HAS(out, "upstream-timeout 250ms\n");
	HAS(out, "cache-ttl 5m\n");
	HAS(out, "cache-ttl-for /rest/v1/countries 3600s\n");
	HAS(out, "cache-ttl-status 404 60s\n");
	HAS(out, "cache-ttl-status 400 30s\n");
	HAS(out, "cache-ttl-status 501 86400s\n");
	HAS(out, "cache-rpc hello\n");
	HAS(out, "cache-storage-public on\n");
	HAS(out, "max-body-size 100M\n");
	HAS(out, "service-key-file sec\n");
	HASNT(out, SEC);
	HASNT(out, "jwt-secret-for-tests");
	HASNT(out, PUB);
	conf_unref(c);
}
END_TEST

static const struct {
	const char	*line;
	const char	*err;
} bad_lines[] = {
	{ "listen 127.0.0.1", "listen: \"127.0.0.1\": expected" },
	{ "listen localhost:80", "not a numeric IPv4" },
	{ "listen ::1:80", "not a numeric IPv4" },
	{ "listen [::1]80", "expected ADDRESS:PORT" },
	{ "listen unix:run/http.sock", "unix:PATH wants an absolute path" },
	{ "listen unix:", "unix:PATH wants an absolute path" },
	{ "listen unix:/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    "unix:PATH wants an absolute path of fewer than 108 bytes" },
	{ "listen [127.0.0.1]:80", "not a numeric IPv6" },
	{ "listen 127.0.0.1:65536", "bad port" },
	{ "listen 127.0.0.1:-1", "bad port" },
	{ "listen 127.0.0.1:", "bad port" },
	{ "listen", "listen: missing value" },
	{ "listen 127.0.0.1:1 127.0.0.1:2", "listen: too many values" },
	{ "rest-upstream ftp://x", "must start with http" },
	{ "rest-upstream http://", "has no host" },
	{ "rest-upstream https:///x", "has no host" },
	{ "rest-upstream http://x/?a=1", "no spaces, query" },
	{ "rest-upstream \"http://x y\"", "no spaces, query" },
	{ "rest-upstream http://u:p@x", "user:password@" },
	{ "upstream http://other",
	    "upstream: given twice (first at t.conf:1)" },
	{ "auth-mode root", "auth-mode: \"root\" is not one of" },
	{ "auth-mode ANON", "is not one of" },
	{ "client-auth keep", "client-auth: \"keep\" is not one of" },
	{ "state-dir \"\"", "state-dir: empty value" },
	{ "session-email \"\"", "empty value" },
	{ "cache-ttl 250ms", "not a whole number of seconds" },
	{ "cache-ttl -5s", "cache-ttl: bad value \"-5s\"" },
	{ "cache-ttl 400d", "out of range" },
	{ "cache-ttl-for rest 1h", "bad path prefix" },
	{ "cache-ttl-for /rest/v1/x 5q", "bad duration" },
	{ "cache-ttl-for /rest/v1/x 250ms", "bad duration" },
	{ "cache-ttl-status 401 1m", "cache-ttl-status: status 401 may not "
	    "be cached (allowed: 203 300 301 308 400 404 405 410 414 501)" },
	{ "cache-ttl-status 403 1m", "status 403 may not be cached" },
	{ "cache-ttl-status 429 1m", "status 429 may not be cached" },
	{ "cache-ttl-status 500 1m", "status 500 may not be cached" },
	{ "cache-ttl-status 502 1m", "status 502 may not be cached" },
	{ "cache-ttl-status 503 1m", "status 503 may not be cached" },
	{ "cache-ttl-status 406 1m", "status 406 may not be cached" },
	{ "cache-ttl-status 302 1m", "status 302 may not be cached" },
	{ "cache-ttl-status 200 1m", "status 200 is always cached" },
	{ "cache-ttl-status 206 1m", "status 206 is always cached" },
	{ "cache-ttl-status 4O4 1m", "\"4O4\" is not an HTTP status" },
	{ "cache-ttl-status 0404 1m", "is not an HTTP status" },
	{ "cache-ttl-status 604 1m", "is not an HTTP status" },
	{ "cache-ttl-status -404 1m", "is not an HTTP status" },
	{ "cache-ttl-status 404", "cache-ttl-status: missing value" },
	{ "cache-ttl-status 404 1m 2m", "cache-ttl-status: too many values" },
	{ "cache-ttl-status 404 soon", "bad duration \"soon\"" },
	{ "cache-ttl-status 404 250ms", "bad duration" },
	{ "cache-ttl-status 404 1500ms", "bad duration" },
	{ "cache-ttl-status 404 0s", "bad duration" },
	{ "cache-ttl-status 404 -1m", "bad duration" },
	{ "cache-ttl-status 404 366d", "bad duration" },
	{ "cache-ttl-status 404 1h1m", "bad duration" },
	{ "cache-ttl-status 404 \"\"", "bad duration" },
	{ "cache-rpc \"a b\"", "is not a function name" },
	{ "cache-storage-public maybe", "is not one of" },
	{ "upstream-timeout 10", "" },	/* placeholder: fine, see below */
	{ "upstream-timeout 50ms", "out of range" },
	{ "upstream-timeout 2d", "out of range" },
	{ "functions-timeout soon", "bad value" },
	{ "connect-timeout 1h1m", "bad value" },
	{ "max-header-size 512", "max-header-size: \"512\" is out of range "
	    "(1k..1M)" },
	{ "max-header-size 2M", "out of range" },
	{ "max-header-size 1.5k", "bad value" },
	{ "max-body-size 2T", "out of range" },
	{ "max-body-size 99999999999999999999", "bad value" },
	{ "storage-max-body-size 5GB", "bad value" },
	{ "max-connections 0", "out of range" },
	{ "max-connections 1k", "bad value" },
	{ "max-connections-per-peer -1", "bad value" },
	{ "busy-poll 1001", "out of range" },
	{ "busy-poll 50us", "bad value" },
	{ "busy-poll -5", "bad value" },
	{ "cache-max-size lots", "bad value" },
	{ "cache-max-object 2G", "out of range" },
	{ "sign-reuse-share 1.5", "out of range" },
	{ "sign-reuse-share -0.1", "out of range" },
	{ "sign-reuse-share nan", "bad value" },
	{ "sign-reuse-share 0x1p-1", "bad value" },
	{ "sign-reuse-share 0.5x", "bad value" },
	{ "expose GET", "expose: missing value" },
	{ "expose FETCH /rest/v1/", "bad methods" },
	{ "expose GET,,HEAD /rest/v1/", "bad methods" },
	{ "expose GET, /rest/v1/", "bad methods" },
	{ "expose GET rest/v1/", "bad path prefix" },
	{ "expose GET /rest/v1/../auth", "bad path prefix" },
	{ "expose GET \"/rest/v1/a b\"", "bad path prefix" },
	{ "expose GET /rest/v1/?x", "bad path prefix" },
	{ "allow-from 10.0.0.0/33", "not an address or CIDR" },
	{ "allow-from ::/129", "not an address or CIDR" },
	{ "allow-from example.com", "not an address or CIDR" },
	{ "allow-from 10.0.0.0/", "not an address or CIDR" },
	{ "allow-from /8", "not an address or CIDR" },
	{ "allow-origin localhost:3000", "not an origin" },
	{ "allow-origin http://localhost:3000/", "must not have a path" },
	{ "allow-origin http://localhost/app", "must not have a path" },
	{ "allow-origin http://localhost:0", "not an origin" },
	{ "allow-origin http://", "not an origin" },
	{ "allow-origin *", "not an origin" },
	{ "allow-host supagate.lan:8787", "not a host name" },
	{ "allow-host \"a b\"", "not a host name" },
	{ "allow-host [zz]", "not a host name" },
	{ "frobnicate yes", "unknown keyword \"frobnicate\"" },
	{ "Listen 127.0.0.1:1", "unknown keyword" },
	{ "include", "include: expected one file name" },
	{ "include nosuch.conf", "include \"nosuch.conf\": No such file" },
};

START_TEST(bad_value)
{
	struct conf	*c;
	if (bad_lines[_i].err[0] == '\0')
		return;
	c = loadb(bad_lines[_i].line);
	ck_assert_msg(c == NULL, "accepted: %s", bad_lines[_i].line);
	ck_assert_msg(strncmp(errs, "t.conf:3: ", 10) == 0, "%s", errs);
	HAS(errs, bad_lines[_i].err);
	/* one line, one error, and nothing from the cross-field pass */
	ck_assert_ptr_null(strchr(strchr(errs, '\n') + 1, '\n'));
}
END_TEST

START_TEST(error_lines)
{
	struct conf	*c;

	c = load("# comment\n"
	    "upstream http://127.0.0.1:1\n"
	    "\n"
	    "max-body-size 1x   # first bad line\n"
	    "anon-key-file anon\n"
	    "   \t\n"
	    "connect-timeout forever\n"
	    "listen 127.0.0.1:1; bogus 1; cache-ttl 5\n");
	FAILS(c);
	HAS(errs, "t.conf:4: max-body-size: bad value \"1x\"");
	HAS(errs, "t.conf:7: connect-timeout: bad value \"forever\"");
	HAS(errs, "t.conf:8: unknown keyword \"bogus\"");
}
END_TEST

/* every bad cache-ttl-status line is reported, each at its own line */
START_TEST(status_ttl_errors)
{
	struct conf	*c;

	c = loadb("cache-ttl-status 404 1m\n"
	    "cache-ttl-status 401 1m\n"
	    "cache-ttl-status 404 5m\n"
	    "cache-ttl-status 400 1x\n"
	    "cache-ttl-status 400 10s\n");
	FAILS(c);
	HAS(errs, "t.conf:4: cache-ttl-status: status 401 may not be cached");
	HAS(errs, "t.conf:5: cache-ttl-status: status 404 given twice");
	HAS(errs, "t.conf:6: cache-ttl-status: bad duration \"1x\"");
	HASNT(errs, "t.conf:3:");
	HASNT(errs, "t.conf:7:");
}
END_TEST

START_TEST(lexer)
{
	struct conf	*c;

	c = load("upstream \"http://127.0.0.1:1\"; anon-key-file \"anon\"\n"
	    "# a comment line\n"
	    "   # an indented comment\n"
	    "session-email \"a \\\"quoted\\\" \\\\ name#x;y\"  # trailing\n"
	    "allow-host x.lan;allow-host y.lan;\r\n"
	    ";;\n"
	    "state-dir /var/lib/a#b\n"
	    "ca-file \"\\\\srv\"\n");
	OK(c);
	ck_assert_str_eq(c->session_email, "a \"quoted\" \\ name#x;y");
	ck_assert_uint_eq(c->nallow_host, 2);
	ck_assert_str_eq(c->state_dir, "/var/lib/a#b");
	dump(c);
	HAS(out, "session-email \"a \\\"quoted\\\" \\\\ name#x;y\"\n");
	conf_unref(c);

	c = loadb("session-email \"bad \\n escape\"\n");
	FAILS(c);
	HAS(errs, "t.conf:3: bad escape");
	c = loadb("session-email \"abc\"def\n");
	FAILS(c);
	HAS(errs, "t.conf:3: missing space after quoted string");
	c = loadb("session-email ab\"c\"\n");
	FAILS(c);
	HAS(errs, "t.conf:3: unexpected '\"'");
	c = loadb("session-email \"multi\nline\"\n");
	FAILS(c);
	HAS(errs, "t.conf:3: unterminated quoted string");
	HAS(errs, "t.conf:4: unexpected '\"'");
	c = loadb("session-email a\001b\n");
	FAILS(c);
	HAS(errs, "t.conf:3: control character");
}
END_TEST

START_TEST(hostile)
{
	struct conf	*c;
	char		*big;
	size_t		 n = 200000;

	/* unterminated quote at EOF, no final newline */
	c = loadb("session-email \"abc");
	FAILS(c);
	HAS(errs, "t.conf:3: unterminated quoted string");
	c = loadb("session-email \"abc\\");
	FAILS(c);
	HAS(errs, "t.conf:3: bad escape");

	/* NUL bytes */
	write_file("t.conf", BASE "cache-ttl 5\0s\nbogus\n",
	    sizeof(BASE "cache-ttl 5\0s\nbogus\n") - 1, 0644);
	FAILS(c = load_file("t.conf"));
	HAS(errs, "t.conf:3: NUL byte");
	HAS(errs, "t.conf:4: unknown keyword");
	write_file("t.conf", BASE "session-email \"a\0b\"\n",
	    sizeof(BASE "session-email \"a\0b\"\n") - 1, 0644);
	FAILS(c = load_file("t.conf"));
	HAS(errs, "t.conf:3: NUL byte");

	/* one huge line */
	big = malloc(n + 256);
	ck_assert_ptr_nonnull(big);
	memcpy(big, BASE "session-email ", sizeof(BASE "session-email ") - 1);
	memset(big + sizeof(BASE "session-email ") - 1, 'a', n);
	strcpy(big + sizeof(BASE "session-email ") - 1 + n, "\nbogus\n");
	FAILS(c = load(big));
	HAS(errs, "t.conf:3: word too long");
	HAS(errs, "t.conf:4: unknown keyword");
	big[sizeof(BASE "session-email ") - 1] = '"';
	FAILS(c = load(big));
	HAS(errs, "t.conf:3: string too long");

	/* a file over the size limit */
	big = realloc(big, (2 << 20) + 1);
	memset(big, '#', 2 << 20);
	big[2 << 20] = '\0';
	FAILS(c = load(big));
	HAS(errs, "t.conf: file is larger than");
	free(big);

	/* too many words, many errors */
	FAILS(c = loadb("expose a b c d e f g h i j k l m n o p\n"));
	HAS(errs, "t.conf:3: expose: too many values");

	/* not a file */
	FAILS(c = load_file("."));
	HAS(errs, ".: is a directory");
	FAILS(c = load_file("nosuch.conf"));
	HAS(errs, "nosuch.conf: No such file");
}
END_TEST

START_TEST(includes)
{
	struct conf	*c;

	ck_assert_int_eq(mkdir("sub", 0700), 0);
	write_str("sub/a.conf", "include \"b.conf\"\nallow-host a.lan\n", 0644);
	write_str("sub/b.conf", "allow-host b.lan\nmax-body-size 1x\n", 0644);
	c = loadb("include sub/a.conf\nallow-host c.lan\n");
	FAILS(c);
	HAS(errs, "sub/b.conf:2: max-body-size: bad value");
	write_str("sub/b.conf", "allow-host b.lan\n", 0644);
	c = loadb("include sub/a.conf\nallow-host c.lan\n");
	OK(c);
	ck_assert_uint_eq(c->nallow_host, 3);
	ck_assert_str_eq(c->allow_host[0], "b.lan");
	ck_assert_str_eq(c->allow_host[2], "c.lan");
	conf_unref(c);

	/* duplicates across files name the first place */
	write_str("sub/b.conf", "cache-ttl 1\n", 0644);
	c = loadb("include sub/a.conf\ncache-ttl 2\n");
	FAILS(c);
	HAS(errs, "t.conf:4: cache-ttl: given twice (first at "
	    "sub/b.conf:1)");

	/* a loop stops at the depth limit */
	write_str("loop.conf", "include \"loop.conf\"\n", 0644);
	c = loadb("include loop.conf\n");
	FAILS(c);
	HAS(errs, "include: nested too deeply");
	HASNT(strstr(errs, "\n") + 1, "nested");	/* reported once */
}
END_TEST

/*
 * cross-field checks
 */

START_TEST(cross_field)
{
	struct conf	*c;

	FAILS(c = load("anon-key-file anon\n"));
	HAS(errs, "t.conf: no upstream");
	OK(c = load("rest-upstream http://127.0.0.1:3000\n"
	    "anon-key-file anon\n"));
	ck_assert_ptr_null(c->upstream);
	conf_unref(c);

	FAILS(c = load("upstream http://127.0.0.1:1\n"));
	HAS(errs, "t.conf: auth-mode anon requires anon-key-file");

	/* session: the anon key, and email with password (or neither) */
	OK(c = loadb("auth-mode session\n"));
	ck_assert_int_eq(c->auth_mode, CONF_AUTH_SESSION);
	ck_assert_ptr_nonnull(c->apikey);
	conf_unref(c);
	FAILS(c = loadb("auth-mode session\nsession-email a@example.com\n"));
	HAS(errs, "t.conf: session-email and session-password-file go "
	    "together");
	FAILS(c = loadb("auth-mode session\nsession-email a@example.com\n"
	    "session-password-file nonexistent-pw\n"));
	HAS(errs, "session-password-file");
	FAILS(c = load("upstream http://127.0.0.1:1\nauth-mode session\n"));
	HAS(errs, "t.conf: auth-mode session requires anon-key-file");

	write_str("sec", SEC "\n", 0600);
	FAILS(c = loadb("auth-mode service\nservice-key-file sec\n"));
	HAS(errs, "t.conf: auth-mode service requires at least one expose");
	FAILS(c = load("upstream http://x\nauth-mode service\n"
	    "expose * /\n"));
	HAS(errs, "requires service-key-file");

	FAILS(c = loadb("listen 0.0.0.0:8787\n"));
	HAS(errs, "t.conf: listen 0.0.0.0: not a loopback address");
	FAILS(c = loadb("listen 127.0.0.1:1\nlisten [::]:1\n"));
	HAS(errs, "listen ::: not a loopback");
	OK(c = loadb("listen 0.0.0.0:8787\nallow-from 10.0.0.0/8\n"));
	conf_unref(c);
	OK(c = loadb("listen 127.0.0.2:1\nlisten [::1]:1\n"
	    "listen [::ffff:127.0.0.1]:2\n"));
	conf_unref(c);

	FAILS(c = loadb("cache-max-size 1M\ncache-max-object 2M\n"));
	HAS(errs, "cache-max-object is larger than cache-max-size");

	/* a service key in anon mode and the reverse */
	write_str("anon", SEC, 0600);
	FAILS(c = loadb(""));
	HAS(errs, "t.conf: anon: this is a service key");
	write_str("anon", jwt_service, 0600);
	FAILS(c = loadb(""));
	HAS(errs, "this is a service key");
	write_str("sec", jwt_anon, 0600);
	FAILS(c = loadb("auth-mode service\nservice-key-file sec\n"
	    "expose GET /rest/v1/\n"));
	HAS(errs, "sec: this is an anon key");
	write_str("sec", PUB, 0600);
	FAILS(c = loadb("auth-mode service\nservice-key-file sec\n"
	    "expose GET /rest/v1/\n"));
	HAS(errs, "this is an anon key");
	HASNT(errs, PUB);

	/* a legacy anon JWT in a file */
	write_str("anon", jwt_anon, 0600);
	OK(c = loadb(""));
	ck_assert_int_eq(c->apikey_is_jwt, 1);
	ck_assert_str_eq(c->apikey->buf, jwt_anon);
	conf_unref(c);

	/* parse errors suppress the cross-field pass */
	FAILS(c = load("bogus\n"));
	HASNT(errs, "no upstream");
}
END_TEST

START_TEST(secret_files)
{
	struct conf	*c;
	char		 err[256];
	struct secret	*s;

	write_str("anon", PUB "\n", 0640);
	FAILS(c = loadb(""));
	HAS(errs, "t.conf: anon-key-file anon: file is readable by group "
	    "or others; chmod 600");
	write_str("anon", PUB "\n", 0604);
	FAILS(c = loadb(""));
	HAS(errs, "chmod 600");
	write_str("anon", PUB "\r\n", 0400);
	OK(c = loadb(""));
	ck_assert_str_eq(c->apikey->buf, PUB);
	ck_assert_uint_eq(c->apikey->len, strlen(PUB));
	conf_unref(c);
	write_str("anon", "", 0600);
	FAILS(c = loadb(""));
	HAS(errs, "file is empty");
	write_str("jwts", "s\n", 0644);
	FAILS(c = loadb("jwt-secret-file jwts\n"));
	HAS(errs, "jwt-secret-file jwts: file is readable by group");

	write_str("k", "a\n\n", 0600);
	s = secret_load("k", err, sizeof(err));
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s->buf, "a\n");
	secret_free(s);
	ck_assert_ptr_null(secret_load(".", err, sizeof(err)));
	ck_assert_str_eq(err, "not a regular file");
}
END_TEST

#define DIG1	"0000000000000000000000000000000000000000000000000000000000000000"
#define DIG2	"ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB"

/* client-tokens-file: NAME DIGEST lines, errors by file and line */
START_TEST(tokens_file)
{
	struct conf	*c;

	write_str("tokens", "# local apps\n\napp1 " DIG1 "\n"
	    "  app.2_x-y\t" DIG2 "  # the second\n", 0600);
	OK(c = loadb("client-tokens-file tokens\n"));
	ck_assert_uint_eq(c->ntokens, 2);
	ck_assert_str_eq(c->tokens[0].name, "app1");
	ck_assert_str_eq(c->tokens[1].name, "app.2_x-y");
	ck_assert_int_eq(c->tokens[0].digest[31], 0x00);
	ck_assert_int_eq(c->tokens[1].digest[0], 0xab);
	dump(c);
	HAS(out, "client-tokens-file tokens\n");
	conf_unref(c);
	/* none configured: none needed */
	OK(c = loadb(""));
	ck_assert_uint_eq(c->ntokens, 0);
	conf_unref(c);

	write_str("tokens", "app1 " DIG1 "\nbad name " DIG1 "\n"
	    "app3\napp4 " DIG1 "ff\napp5 " DIG1 " extra\napp1 " DIG1 "\n"
	    "app6 g" DIG1 "\n", 0600);
	FAILS(c = loadb("client-tokens-file tokens\n"));
	HAS(errs, "tokens:2: client-tokens-file: want NAME DIGEST");
	HAS(errs, "tokens:3: client-tokens-file: want NAME DIGEST");
	HAS(errs, "tokens:4: client-tokens-file: the digest is 64 hex digits");
	HAS(errs, "tokens:5: client-tokens-file: want NAME DIGEST");
	HAS(errs, "tokens:6: client-tokens-file: app1 is there twice");
	HAS(errs, "tokens:7: client-tokens-file: the digest is 64 hex digits");
	write_str("tokens", "# nobody yet\n", 0600);
	FAILS(c = loadb("client-tokens-file tokens\n"));
	HAS(errs, "tokens: client-tokens-file: no token");
	write_file("tokens", "app1 " DIG1 "\0\n", 71, 0600);
	FAILS(c = loadb("client-tokens-file tokens\n"));
	HAS(errs, "tokens: client-tokens-file: NUL byte");
	FAILS(c = loadb("client-tokens-file missing\n"));
	HAS(errs, "client-tokens-file missing: No such file");
	ck_assert(conf_token_name_ok("a"));
	ck_assert(!conf_token_name_ok(""));
	ck_assert(!conf_token_name_ok("a b"));
	ck_assert(!conf_token_name_ok("x\xc3\xa9"));
	ck_assert(conf_token_name_ok("0123456789012345678901234567890123456789"
	    "012345678901234567890123"));
	ck_assert(!conf_token_name_ok("0123456789012345678901234567890123456789"
	    "0123456789012345678901234"));
}
END_TEST

/* the P-256 generator as a public key: a valid JWK */
#define GX	"axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY"
#define GY	"T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"

START_TEST(jwks_file)
{
	struct conf	*c;

	write_str("jwks.json", "{\"keys\":[{\"kty\":\"EC\",\"crv\":"
	    "\"P-256\",\"kid\":\"k1\",\"x\":\"" GX "\",\"y\":\"" GY
	    "\"},{\"kty\":\"oct\",\"k\":\"AAAA\"}]}\n", 0644);
	OK(c = loadb("jwt-jwks-file jwks.json\n"));
	ck_assert_uint_eq(jwk_set_count(c->jwks), 1);
	dump(c);
	HAS(out, "jwt-jwks-file jwks.json\n");
	conf_unref(c);

	write_str("jwks.json", "{\n \"keys\": [\n  {\"kty\": \"EC\",}\n"
	    "]}\n", 0644);
	FAILS(c = loadb("jwt-jwks-file jwks.json\n"));
	HAS(errs, "jwks.json:3: jwt-jwks-file: not valid JSON");
	write_str("jwks.json", "{\"keys\":[{\"kty\":\"oct\"},{\"kty\":"
	    "\"EC\",\"crv\":\"P-256\",\"x\":\"" GX "\",\"y\":\"" GX
	    "\"}]}", 0644);
	FAILS(c = loadb("jwt-jwks-file jwks.json\n"));
	HAS(errs, "jwks.json: jwt-jwks-file: keys[1]: (x, y) is not a point "
	    "of the P-256 curve");
	write_str("jwks.json", "{\"keys\":[{\"kty\":\"OKP\"}]}", 0644);
	FAILS(c = loadb("jwt-jwks-file jwks.json\n"));
	HAS(errs, "jwks.json: jwt-jwks-file: no usable key");
	FAILS(c = loadb("jwt-jwks-file missing.json\n"));
	HAS(errs, "t.conf: jwt-jwks-file missing.json: No such file");

	/* fetching needs an Auth upstream */
	OK(c = loadb("jwt-jwks-fetch on\n"));
	ck_assert_int_eq(c->jwt_jwks_fetch, 1);
	conf_unref(c);
	FAILS(c = load("rest-upstream http://127.0.0.1:3000\n"
	    "anon-key-file anon\njwt-jwks-fetch on\n"));
	HAS(errs, "jwt-jwks-fetch on needs the Auth upstream");
	FAILS(c = loadb("jwt-jwks-fetch maybe\n"));
}
END_TEST

START_TEST(credentials_directory)
{
	struct conf	*c;
	char		 cred[PATH_MAX + 8], want[2 * PATH_MAX];

	ck_assert_int_eq(mkdir("creds", 0700), 0);
	ck_assert_int_eq(mkdir("etc", 0700), 0);
	write_str("creds/anon", jwt_anon, 0600);
	write_str("etc/anon", PUB, 0600);
	write_str("etc/s.conf", BASE "state-dir state\n", 0644);
	snprintf(cred, sizeof(cred), "%s/creds", tmpdir);
	OK(c = load_file("etc/s.conf"));
	ck_assert_str_eq(c->anon_key_file, "etc/anon");
	ck_assert_str_eq(c->apikey->buf, PUB);
	ck_assert_str_eq(c->state_dir, "etc/state");
	conf_unref(c);
	setenv("CREDENTIALS_DIRECTORY", cred, 1);
	OK(c = load_file("etc/s.conf"));
	snprintf(want, sizeof(want), "%s/anon", cred);
	ck_assert_str_eq(c->anon_key_file, want);
	ck_assert_str_eq(c->apikey->buf, jwt_anon);
	ck_assert_str_eq(c->state_dir, "etc/state");	/* not a secret */
	conf_unref(c);
	/* absolute paths stay */
	snprintf(want, sizeof(want), "upstream http://x\n"
	    "anon-key-file \"%s/etc/anon\"\n", tmpdir);
	write_str("etc/s.conf", want, 0644);
	OK(c = load_file("etc/s.conf"));
	ck_assert_str_eq(c->apikey->buf, PUB);
	conf_unref(c);
}
END_TEST

/*
 * environment
 */

START_TEST(env_modes)
{
	struct conf	*c;

	FAILS(c = load_file(NULL));
	HAS(errs, "environment: no upstream");

	setenv("SUPABASE_URL", "http://127.0.0.1:54321/", 1);
	setenv("SUPABASE_KEY", PUB, 1);
	OK(c = load_file(NULL));
	ck_assert_ptr_null(c->file);
	ck_assert_str_eq(c->upstream, "http://127.0.0.1:54321");
	ck_assert_int_eq(c->auth_mode, CONF_AUTH_ANON);
	ck_assert_str_eq(c->apikey->buf, PUB);
	ck_assert_int_eq(c->apikey_is_jwt, 0);
	ck_assert_uint_eq(c->nexpose, 0);
	conf_unref(c);

	setenv("SUPABASE_KEY", jwt_anon, 1);
	OK(c = load_file(NULL));
	ck_assert_int_eq(c->auth_mode, CONF_AUTH_ANON);
	ck_assert_int_eq(c->apikey_is_jwt, 1);
	conf_unref(c);

	setenv("SUPABASE_KEY", SEC, 1);
	OK(c = load_file(NULL));
	ck_assert_int_eq(c->auth_mode, CONF_AUTH_SERVICE);
	ck_assert_int_eq(c->apikey_is_jwt, 0);
	ck_assert_uint_eq(c->nexpose, 1);
	ck_assert_uint_eq(c->expose[0].methods, CONF_M_GET | CONF_M_HEAD);
	ck_assert_str_eq(c->expose[0].prefix, "/rest/v1/");
	HAS(errs, "only GET,HEAD /rest/v1/ (read-only) is exposed");
	HASNT(errs, SEC);
	conf_unref(c);

	setenv("SUPABASE_KEY", jwt_service, 1);
	OK(c = load_file(NULL));
	ck_assert_int_eq(c->auth_mode, CONF_AUTH_SERVICE);
	ck_assert_int_eq(c->apikey_is_jwt, 1);
	ck_assert_uint_eq(c->nexpose, 1);
	dump(c);
	HASNT(out, jwt_service);
	HASNT(out, strchr(jwt_service, '.') + 1);
	HAS(out, "[redacted]");
	HAS(out, "auth-mode service\n");
	HAS(out, "upstream http://127.0.0.1:54321\n");
	conf_unref(c);

	setenv("SUPABASE_KEY", jwt_other, 1);
	FAILS(c = load_file(NULL));
	HAS(errs, "environment: SUPABASE_KEY: cannot tell the auth-mode");
	setenv("SUPABASE_KEY", "plainkey", 1);
	FAILS(c = load_file(NULL));
	HAS(errs, "cannot tell the auth-mode");
	HASNT(errs, "plainkey");

	setenv("SUPABASE_URL", "localhost:54321", 1);
	setenv("SUPABASE_KEY", PUB, 1);
	FAILS(c = load_file(NULL));
	HAS(errs, "environment: SUPABASE_URL:");
}
END_TEST

START_TEST(env_with_file)
{
	struct conf	*c;

	setenv("SUPABASE_URL", "http://env.invalid", 1);
	setenv("SUPABASE_KEY", SEC, 1);
	/* the file's upstream wins; key files win over SUPABASE_KEY */
	OK(c = loadb(""));
	ck_assert_str_eq(c->upstream, "http://127.0.0.1:1");
	ck_assert_str_eq(c->apikey->buf, PUB);
	conf_unref(c);
	/* SUPABASE_URL fills a missing upstream */
	OK(c = load("anon-key-file anon\n"));
	ck_assert_str_eq(c->upstream, "http://env.invalid");
	conf_unref(c);
	/* mode from the key, with the file's expose lines */
	OK(c = load("expose GET /rest/v1/todos\n"));
	ck_assert_int_eq(c->auth_mode, CONF_AUTH_SERVICE);
	ck_assert_uint_eq(c->nexpose, 1);
	ck_assert_str_eq(c->expose[0].prefix, "/rest/v1/todos");
	conf_unref(c);
	/* an explicit auth-mode that contradicts the key */
	FAILS(c = load("auth-mode anon\n"));
	HAS(errs, "t.conf: SUPABASE_KEY: this is a service key");
	HASNT(errs, SEC);
	setenv("SUPABASE_KEY", PUB, 1);
	FAILS(c = load("auth-mode service\nexpose * /\n"));
	HAS(errs, "SUPABASE_KEY: this is an anon key");
	/* an explicit service mode still needs expose */
	setenv("SUPABASE_KEY", SEC, 1);
	FAILS(c = load("auth-mode service\n"));
	HAS(errs, "requires at least one expose");
}
END_TEST

START_TEST(dump_all_keywords)
{
	static const char *const kws[] = {
		"listen", "upstream", "rest-upstream", "auth-upstream",
		"storage-upstream", "functions-upstream", "graphql-upstream",
		"auth-mode", "client-auth", "anon-key-file", "service-key-file",
		"jwt-secret-file", "jwt-jwks-file", "jwt-jwks-fetch",
		"session-email", "session-password-file",
		"session-refresh-token-file", "state-dir", "ca-file",
		"cache-ttl", "expose", "allow-from", "allow-origin",
		"allow-host", "upstream-timeout", "functions-timeout",
		"connect-timeout", "max-header-size", "max-body-size",
		"storage-max-body-size", "max-connections",
		"max-connections-per-peer", "busy-poll", "cache-max-size",
		"cache-max-object", "sign-reuse-share",
	};
	struct conf	*c;
	char		 want[64];
	size_t		 i;

	OK(c = loadb(""));
	dump(c);
	for (i = 0; i < sizeof(kws) / sizeof(kws[0]); i++) {
		snprintf(want, sizeof(want), "%s ", kws[i]);
		HAS(out, want);
	}
	HASNT(out, PUB);
	conf_unref(c);
	/* the dump parses back to the same dump */
	write_str("t.conf", out, 0644);
	OK(c = load_file("t.conf"));
	{
		char	first[sizeof(out)];

		strcpy(first, out);
		dump(c);
		ck_assert_str_eq(out, first);
	}
	conf_unref(c);
}
END_TEST

/*
 * golden files: tests/data/conf/good-*.conf load, bad-*.conf fail with
 * the error named by their first line "# error: ..."
 */
START_TEST(golden)
{
	const char	*srcdir = getenv("srcdir");
	char		 dir[2 * PATH_MAX], path[3 * PATH_MAX], line[512];
	struct dirent	*de;
	struct conf	*c;
	FILE		*fp;
	DIR		*d;
	int		 n = 0;

	ck_assert_ptr_nonnull(getcwd(dir, sizeof(dir)));
	ck_assert_int_eq(chdir("/"), 0);
	teardown();
	snprintf(dir, sizeof(dir), "%s/tests/data/conf",
	    srcdir != NULL ? srcdir : ".");
	if (dir[0] != '/') {
		char	cwd[4 * PATH_MAX];

		ck_assert_ptr_nonnull(getenv("PWD"));
		snprintf(cwd, sizeof(cwd), "%s/%s", getenv("PWD"), dir);
		ck_assert_uint_lt(strlen(cwd), sizeof(dir));
		memcpy(dir, cwd, strlen(cwd) + 1);
	}
	setenv("SUPABASE_KEY", PUB, 1);
	ck_assert_ptr_nonnull(d = opendir(dir));
	while ((de = readdir(d)) != NULL) {
		size_t	l = strlen(de->d_name);

		if (l < 6 || strcmp(de->d_name + l - 5, ".conf") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		c = load_file(path);
		if (strncmp(de->d_name, "good-", 5) == 0) {
			ck_assert_msg(c != NULL, "%s:\n%s", path, errs);
			conf_unref(c);
			n++;
		} else if (strncmp(de->d_name, "bad-", 4) == 0) {
			ck_assert_msg(c == NULL, "%s loaded", path);
			ck_assert_ptr_nonnull(fp = fopen(path, "r"));
			ck_assert_ptr_nonnull(fgets(line, sizeof(line), fp));
			fclose(fp);
			ck_assert_msg(strncmp(line, "# error: ", 9) == 0,
			    "%s: no \"# error:\" line", path);
			line[strcspn(line, "\n")] = '\0';
			snprintf(path, sizeof(path), "%s%s", de->d_name,
			    line + 9);
			HAS(errs, path);
			n++;
		}
	}
	closedir(d);
	ck_assert_int_gt(n, 3);
}
END_TEST

static Suite *
conf_suite(void)
{
	Suite	*s = suite_create("conf");
	TCase	*tc;

	tc = tcase_create("units");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, durations);
	tcase_add_test(tc, sizes);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse");
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, defaults);
	tcase_add_test(tc, good_values);
	tcase_add_loop_test(tc, bad_value, 0,
	    sizeof(bad_lines) / sizeof(bad_lines[0]));
	tcase_add_test(tc, error_lines);
	tcase_add_test(tc, status_ttl_errors);
	tcase_add_test(tc, lexer);
	tcase_add_test(tc, hostile);
	tcase_add_test(tc, includes);
	tcase_add_test(tc, dump_all_keywords);
	tcase_add_test(tc, golden);
	suite_add_tcase(s, tc);

	tc = tcase_create("checks");
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, cross_field);
	tcase_add_test(tc, secret_files);
	tcase_add_test(tc, jwks_file);
	tcase_add_test(tc, tokens_file);
	tcase_add_test(tc, credentials_directory);
	tcase_add_test(tc, env_modes);
	tcase_add_test(tc, env_with_file);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	if (crypto_setup() == -1)
		return 1;
	return ck_run(conf_suite());
}
