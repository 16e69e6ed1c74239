/* check_jwt: JWT decode and HS256 verification */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "crypto.h"
#include "jwt.h"
#include "ck_run.h"

static const char	secret[] =
    "super-secret-jwt-token-with-at-least-32-chars";

/* header.payload.signature from two JSON strings */
static char *
mk(const char *hdr, const char *payload, const char *key)
{
	static char	out[65536];
	unsigned char	mac[32];
	long		n, m;

	n = crypto_b64url_encode(hdr, strlen(hdr), out, sizeof(out));
	ck_assert_int_gt(n, 0);
	out[n++] = '.';
	m = crypto_b64url_encode(payload, strlen(payload), out + n,
	    sizeof(out) - (size_t)n);
	ck_assert_int_gt(m, 0);
	n += m;
	crypto_hmac_sha256(key, strlen(key), out, (size_t)n, mac);
	out[n++] = '.';
	m = crypto_b64url_encode(mac, sizeof(mac), out + n,
	    sizeof(out) - (size_t)n);
	ck_assert_int_gt(m, 0);
	return out;
}

#define HS	"{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

START_TEST(decode_good)
{
	struct jwt_claims	c;
	char			*t = mk(HS, "{\"role\":\"authenticated\","
				    "\"sub\":\"u-1\",\"exp\":1700000000,"
				    "\"iat\":1600000000}", secret);

	ck_assert(jwt_looks_like(t, strlen(t)));
	ck_assert_int_eq(jwt_decode(t, strlen(t), &c), 0);
	ck_assert_str_eq(c.role, "authenticated");
	ck_assert_str_eq(c.sub, "u-1");
	ck_assert(c.exp == 1700000000);
	ck_assert(c.iat == 1600000000);
}
END_TEST

START_TEST(decode_absent)
{
	struct jwt_claims	c;
	char			*t;

	t = mk(HS, "{\"role\":42,\"sub\":null}", secret);

	ck_assert_int_eq(jwt_decode(t, strlen(t), &c), 0);
	ck_assert_str_eq(c.role, "");
	ck_assert_str_eq(c.sub, "");
	ck_assert(c.exp == 0 && c.iat == 0);
}
END_TEST

START_TEST(decode_truncates)
{
	struct jwt_claims	c;
	char			p[1024], *t;

	memset(&c, 'x', sizeof(c));
	snprintf(p, sizeof(p), "{\"role\":\"%0300d\",\"sub\":\"%0300d\"}",
	    1, 2);
	t = mk(HS, p, secret);
	ck_assert_int_eq(jwt_decode(t, strlen(t), &c), 0);
	ck_assert_uint_eq(strlen(c.role), JWT_ROLE_MAX - 1);
	ck_assert_uint_eq(strlen(c.sub), JWT_SUB_MAX - 1);
}
END_TEST

START_TEST(verify_good)
{
	struct jwt_claims	c;
	char			*t;

	t = mk(HS, "{\"role\":\"anon\",\"sub\":\"s\"}", secret);

	ck_assert_int_eq(jwt_verify_hs256(t, strlen(t), secret,
	    strlen(secret), &c), 0);
	ck_assert_str_eq(c.role, "anon");
	ck_assert_str_eq(c.sub, "s");
}
END_TEST

START_TEST(verify_wrong_key)
{
	struct jwt_claims	c;
	char			*t = mk(HS, "{\"role\":\"anon\"}", "other");

	ck_assert_int_eq(jwt_verify_hs256(t, strlen(t), secret,
	    strlen(secret), &c), -1);
}
END_TEST

START_TEST(verify_tampered)
{
	struct jwt_claims	c;
	char			good[4096], evil[4096], *t;

	/* a service_role payload under the signature of an anon token */
	strcpy(good, mk(HS, "{\"role\":\"anon\"}", secret));
	strcpy(evil, mk(HS, "{\"role\":\"service_role\"}", "x"));
	strcpy(strrchr(evil, '.'), strrchr(good, '.'));
	ck_assert_int_eq(jwt_verify_hs256(evil, strlen(evil), secret,
	    strlen(secret), &c), -1);
	ck_assert_int_eq(jwt_verify_hs256(good, strlen(good), secret,
	    strlen(secret), &c), 0);
	/* flip one signature character */
	t = mk(HS, "{\"role\":\"anon\"}", secret);
	t[strlen(t) - 2] = t[strlen(t) - 2] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(jwt_verify_hs256(t, strlen(t), secret,
	    strlen(secret), &c), -1);
}
END_TEST

START_TEST(verify_alg)
{
	static const char *const hdrs[] = {
		"{\"alg\":\"none\"}", "{\"alg\":\"RS256\"}",
		"{\"alg\":\"hs256\"}", "{\"typ\":\"JWT\"}", "{\"alg\":256}",
		"{\"alg\":\"HS256 \"}",
	};
	struct jwt_claims	c;
	char			*t, buf[1024];
	size_t			i;

	for (i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
		t = mk(hdrs[i], "{\"role\":\"anon\"}", secret);
		ck_assert_int_eq(jwt_verify_hs256(t, strlen(t), secret,
		    strlen(secret), &c), -1);
	}
	/* alg none with an empty signature */
	t = mk("{\"alg\":\"none\"}", "{\"role\":\"service_role\"}", secret);
	strcpy(buf, t);
	strrchr(buf, '.')[1] = '\0';
	ck_assert_int_eq(jwt_verify_hs256(buf, strlen(buf), secret,
	    strlen(secret), &c), -1);
	ck_assert(!jwt_looks_like(buf, strlen(buf)));
}
END_TEST

START_TEST(malformed)
{
	static const char *const bad[] = {
		"", "abc", "a.b", "a.b.c.d", ".b.c", "a..c",
		"eyJhbGciOiJIUzI1NiJ9.!!!.abc",
		"eyJhbGciOiJIUzI1NiJ9.eyJ.abc",		/* bad base64 */
		"eyJhbGciOiJIUzI1NiJ9.WzFd.abc",	/* [1] */
		"eyJhbGciOiJIUzI1NiJ9.IngiIA.abc",	/* "x" */
		"bm90anNvbg.e30.abc",		/* header not JSON */
		"eyJhbGciOiJIUzI1NiJ9.e30 .abc",
	};
	struct jwt_claims	c;
	size_t			i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(jwt_decode(bad[i], strlen(bad[i]), &c) == -1,
		    "%s", bad[i]);
		ck_assert_int_eq(jwt_verify_hs256(bad[i], strlen(bad[i]),
		    secret, strlen(secret), &c), -1);
	}
	ck_assert_int_eq(jwt_decode(NULL, 0, &c), -1);
}
END_TEST

START_TEST(huge)
{
	struct jwt_claims	c;
	char			*p = malloc(20000), *t;

	memset(p, 'a', 19999);
	p[0] = '{';
	memcpy(p + 1, "\"x\":\"", 5);
	strcpy(p + 19990, "\"}");
	t = mk(HS, p, secret);
	ck_assert_uint_gt(strlen(t), 16384);
	ck_assert_int_eq(jwt_decode(t, strlen(t), &c), -1);
	ck_assert(!jwt_looks_like(t, strlen(t)));
	ck_assert_int_eq(jwt_verify_hs256(t, strlen(t), secret,
	    strlen(secret), &c), -1);
	free(p);
}
END_TEST

START_TEST(nul_in_payload)
{
	struct jwt_claims	c;
	char			enc[64], t[256];
	long			n;

	n = crypto_b64url_encode("{\"role\":\"a\"}\0x", 15, enc, sizeof(enc));
	ck_assert_int_gt(n, 0);
	snprintf(t, sizeof(t), "eyJhbGciOiJIUzI1NiJ9.%s.abc", enc);
	ck_assert_int_eq(jwt_decode(t, strlen(t), &c), -1);
	/* the length is honoured: a NUL after it is not read */
	ck_assert_int_eq(jwt_decode("a.b\0.c", 6, &c), -1);
}
END_TEST

START_TEST(b64url)
{
	char		out[64];
	unsigned char	bin[64];

	ck_assert_int_eq(crypto_b64url_encode("\xfb\xff", 2, out,
	    sizeof(out)), 3);
	ck_assert_str_eq(out, "-_8");
	ck_assert_int_eq(crypto_b64url_decode("-_8", 3, bin, sizeof(bin)), 2);
	ck_assert_int_eq(crypto_b64url_decode("-_8=", 4, bin, sizeof(bin)),
	    -1);
	ck_assert_int_eq(crypto_b64url_decode("+/8", 3, bin, sizeof(bin)),
	    -1);
	ck_assert_int_eq(crypto_b64url_encode("abc", 3, out, 4), -1);
}
END_TEST

START_TEST(secret_cmp)
{
	struct secret	*s = secret_new("abc", 3);

	ck_assert_ptr_nonnull(s);
	ck_assert(secret_eq(s, "abc", 3));
	ck_assert(!secret_eq(s, "abd", 3));
	ck_assert(!secret_eq(s, "ab", 2));
	ck_assert_str_eq(s->buf, "abc");
	secret_free(s);
	secret_free(NULL);
}
END_TEST

static Suite *
jwt_suite(void)
{
	Suite	*s = suite_create("jwt");
	TCase	*tc = tcase_create("jwt");

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, decode_good);
	tcase_add_test(tc, decode_absent);
	tcase_add_test(tc, decode_truncates);
	tcase_add_test(tc, verify_good);
	tcase_add_test(tc, verify_wrong_key);
	tcase_add_test(tc, verify_tampered);
	tcase_add_test(tc, verify_alg);
	tcase_add_test(tc, malformed);
	tcase_add_test(tc, huge);
	tcase_add_test(tc, nul_in_payload);
	tcase_add_test(tc, b64url);
	tcase_add_test(tc, secret_cmp);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	if (crypto_setup() == -1)
		return 1;
	return ck_run(jwt_suite());
}
