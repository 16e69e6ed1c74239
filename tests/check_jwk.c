/*
 * check_jwk: bignum and Montgomery arithmetic, ES256/RS256 checks, JWK
 * set parsing and jwt_verify, with vectors made by Node's crypto module
 * (tests/data/jwks/gen-jwks.mjs)
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "bn.h"
#include "crypto.h"
#include "jwk.h"
#include "jwt.h"
#include "pk.h"

#include "data/jwks/vectors.h"
#include "ck_run.h"

#define NOW	1764000100

static size_t
unhex(const char *h, unsigned char *out, size_t outlen)
{
	size_t	i, n = strlen(h) / 2;

	ck_assert_uint_le(n, outlen);
	for (i = 0; i < n; i++) {
		unsigned	v;

		ck_assert_int_eq(sscanf(h + 2 * i, "%2x", &v), 1);
		out[i] = (unsigned char)v;
	}
	return n;
}

/*
 * bn
 */

START_TEST(bn_bytes_roundtrip)
{
	unsigned char	in[5] = { 0, 0x01, 0x02, 0x03, 0x04 }, out[6];
	uint32_t	a[2];

	ck_assert_int_eq(bn_from_bytes(a, 2, in, sizeof(in)), 0);
	ck_assert_uint_eq(a[0], 0x01020304);
	ck_assert_uint_eq(a[1], 0);
	ck_assert_uint_eq(bn_bits(a, 2), 25);
	ck_assert_int_eq(bn_to_bytes(a, 2, out, sizeof(out)), 0);
	ck_assert_mem_eq(out, "\0\0\x01\x02\x03\x04", 6);
	ck_assert_int_eq(bn_to_bytes(a, 2, out, 3), -1);
	/* nine significant bytes do not fit two limbs */
	ck_assert_int_eq(bn_from_bytes(a, 2,
	    (const unsigned char *)"\x01\x02\x03\x04\x05\x06\x07\x08\x09",
	    9), -1);
}
END_TEST

START_TEST(bn_mont_rejects)
{
	struct bn_mont	mo;
	uint32_t	m[2] = { 10, 0 }, one[1] = { 1 };

	ck_assert_int_eq(bn_mont_init(&mo, m, 2), -1);		/* even */
	ck_assert_int_eq(bn_mont_init(&mo, one, 1), -1);	/* 1 */
	ck_assert_int_eq(bn_mont_init(&mo, m, BN_MAX_LIMBS + 1), -1);
}
END_TEST

/* a^e mod m against BigInt results, moduli of 64 to 4096 bits */
START_TEST(bn_pow_vectors)
{
	static struct bn_mont	mo;
	unsigned char		b[512], e[512];
	uint32_t		m[BN_MAX_LIMBS], a[BN_MAX_LIMBS];
	uint32_t		want[BN_MAX_LIMBS];
	size_t			n, el;

	n = unhex(POW[_i][0], b, sizeof(b));
	ck_assert_int_eq(bn_from_bytes(m, n / 4, b, n), 0);
	ck_assert_int_eq(bn_mont_init(&mo, m, n / 4), 0);
	unhex(POW[_i][1], b, sizeof(b));
	bn_from_bytes(a, n / 4, b, n);
	el = unhex(POW[_i][2], e, sizeof(e));
	unhex(POW[_i][3], b, sizeof(b));
	bn_from_bytes(want, n / 4, b, n);
	bn_mont_to(&mo, a, a);
	bn_mont_pow(&mo, a, a, e, el);
	bn_mont_from(&mo, a, a);
	ck_assert_int_eq(bn_cmp(a, want, n / 4), 0);
}
END_TEST

START_TEST(bn_mod_add_sub)
{
	struct bn_mont	mo;
	uint32_t	m[1] = { 101 }, a[1] = { 60 }, b[1] = { 70 }, r[1];

	ck_assert_int_eq(bn_mont_init(&mo, m, 1), 0);
	bn_mod_add(&mo, r, a, b);
	ck_assert_uint_eq(r[0], 29);
	bn_mod_sub(&mo, r, a, b);
	ck_assert_uint_eq(r[0], 91);
	bn_mod_sub(&mo, r, b, a);
	ck_assert_uint_eq(r[0], 10);
}
END_TEST

/*
 * pk and jwk: helpers
 */

static struct jwk_set *
parse(const char *s)
{
	struct jwk_set	*set;
	char		 err[256];
	unsigned	 line;

	set = jwk_set_parse(s, strlen(s), err, sizeof(err), &line);
	if (set == NULL)
		ck_abort_msg("jwk_set_parse: %s", err);
	return set;
}

/* the parse error of s, "" if it parsed */
static const char *
parse_err(const char *s, unsigned *line)
{
	static char	 err[256];
	struct jwk_set	*set;
	unsigned	 l;

	err[0] = '\0';
	set = jwk_set_parse(s, strlen(s), err, sizeof(err),
	    line != NULL ? line : &l);
	if (set != NULL) {
		jwk_set_free(set);
		return "";
	}
	ck_assert(err[0] != '\0');
	return err;
}

static enum jwt_verdict
verify(const struct jwk_set *set, const char *tok, struct jwt_claims *c)
{
	struct jwt_keys		k;
	struct jwt_claims	dummy;

	memset(&k, 0, sizeof(k));
	k.sets[0] = set;
	return jwt_verify(tok, strlen(tok), &k, NOW, c != NULL ? c : &dummy);
}

/* tok with its signature replaced by the base64url of sig */
static char *
with_sig(const char *tok, const unsigned char *sig, size_t siglen)
{
	static char	out[4096];
	const char	*dot = strrchr(tok, '.');
	size_t		n = (size_t)(dot - tok) + 1;

	memcpy(out, tok, n);
	ck_assert_int_ge(crypto_b64url_encode(sig, siglen, out + n,
	    sizeof(out) - n), 0);
	return out;
}

static size_t
sig_of(const char *tok, unsigned char *sig, size_t siglen)
{
	const char	*dot = strrchr(tok, '.') + 1;
	long		 n;

	n = crypto_b64url_decode(dot, strlen(dot), sig, siglen);
	ck_assert_int_gt(n, 0);
	return (size_t)n;
}

/*
 * jwk set parsing
 */

START_TEST(jwks_parse_skips_unsupported)
{
	struct jwk_set	*set = parse(JWKS);

	/* ec-1, ec-2, rsa-1, rsa-3, rsa-4; not oct, OKP, P-384, enc, PS256 */
	ck_assert_uint_eq(jwk_set_count(set), 5);
	jwk_set_free(set);
	set = parse(EC1_JWK);		/* a single JWK */
	ck_assert_uint_eq(jwk_set_count(set), 1);
	jwk_set_free(set);
	set = parse("{\"keys\":[]}");
	ck_assert_uint_eq(jwk_set_count(set), 0);
	jwk_set_free(set);
	set = parse("{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"}]}");
	ck_assert_uint_eq(jwk_set_count(set), 0);
	jwk_set_free(set);
}
END_TEST

START_TEST(jwks_parse_errors)
{
	char		 buf[2048];
	unsigned	 line = 0;
	char		*big;
	size_t		 i;

	ck_assert(strstr(parse_err("{\"keys\":[\n{\"kty\":\"EC\",\n"
	    "\"crv\":\"P-256\",,}]}", &line), "JSON") != NULL);
	ck_assert_uint_eq(line, 3);
	ck_assert_str_ne(parse_err("[]", NULL), "");
	ck_assert_str_ne(parse_err("{\"keys\":{}}", NULL), "");
	ck_assert_str_ne(parse_err("{\"alg\":\"ES256\"}", NULL), "");
	ck_assert_str_ne(parse_err("{\"keys\":[42]}", NULL), "");
	ck_assert_str_ne(parse_err("{\"keys\":[{\"kid\":\"x\"}]}", NULL), "");
	/* EC: x, y of the wrong length, bad base64url, off the curve */
	snprintf(buf, sizeof(buf), "{\"kty\":\"EC\",\"crv\":\"P-256\","
	    "\"x\":\"%s\",\"y\":\"%.42s\"}", EC1_X, EC1_Y);
	ck_assert_str_ne(parse_err(buf, NULL), "");
	snprintf(buf, sizeof(buf), "{\"kty\":\"EC\",\"crv\":\"P-256\","
	    "\"x\":\"%s\",\"y\":\"%sAAAA\"}", EC1_X, EC1_Y);
	ck_assert_str_ne(parse_err(buf, NULL), "");
	snprintf(buf, sizeof(buf), "{\"kty\":\"EC\",\"crv\":\"P-256\","
	    "\"x\":\"%s\",\"y\":\"%.42s=\"}", EC1_X, EC1_Y);
	ck_assert_str_ne(parse_err(buf, NULL), "");
	snprintf(buf, sizeof(buf), "{\"kty\":\"EC\",\"crv\":\"P-256\","
	    "\"x\":\"%s\",\"y\":\"%s\"}", EC1_X, EC1_X);
	ck_assert(strstr(parse_err(buf, NULL), "curve") != NULL);
	/* x = p: not a field element */
	snprintf(buf, sizeof(buf), "{\"kty\":\"EC\",\"crv\":\"P-256\","
	    "\"x\":\"_____wAAAAEAAAAAAAAAAAAAAAD_______________8\","
	    "\"y\":\"%s\"}", EC1_Y);
	ck_assert(strstr(parse_err(buf, NULL), "curve") != NULL);
	/* a private key is refused */
	snprintf(buf, sizeof(buf), "{\"kty\":\"EC\",\"crv\":\"P-256\","
	    "\"x\":\"%s\",\"y\":\"%s\",\"d\":\"AAAA\"}", EC1_X, EC1_Y);
	ck_assert(strstr(parse_err(buf, NULL), "private") != NULL);
	/* RSA: 1024 bits, even or tiny exponents, missing n */
	ck_assert(strstr(parse_err(RSA1K_JWK, NULL), "2048") != NULL);
	ck_assert(strstr(parse_err("{\"kty\":\"RSA\",\"e\":\"AQAB\"}", NULL),
	    "\"n\"") != NULL);
	for (i = 0; i < 3; i++) {
		const char	*e[] = { "AQAA", "AQ", "AQABAQAB" };
		char		 n[400];

		/* n = 2^2048 - 1 */
		memset(n, '_', 341);
		strcpy(n + 341, "w");
		snprintf(buf, sizeof(buf), "{\"kty\":\"RSA\",\"n\":\"%s\","
		    "\"e\":\"%s\"}", n, e[i]);
		ck_assert(strstr(parse_err(buf, NULL), "exponent") != NULL);
		if (i == 0) {
			/* even modulus */
			strcpy(n + 341, "g");
			snprintf(buf, sizeof(buf), "{\"kty\":\"RSA\",\"n\":"
			    "\"%s\",\"e\":\"AQAB\"}", n);
			ck_assert(strstr(parse_err(buf, NULL), "even") !=
			    NULL);
		}
	}
	/* too many keys, too many bytes */
	big = malloc(JWK_SET_MAX_BYTES + 64);
	strcpy(big, "{\"keys\":[");
	for (i = 0; i <= JWK_SET_MAX_KEYS; i++)
		strcat(big, "{\"kty\":\"oct\"},");
	strcpy(big + strlen(big) - 1, "]}");
	ck_assert(strstr(parse_err(big, NULL), "keys") != NULL);
	memset(big, ' ', JWK_SET_MAX_BYTES + 1);
	memcpy(big, "{\"keys\":[]}", 11);
	big[JWK_SET_MAX_BYTES + 1] = '\0';
	ck_assert(strstr(parse_err(big, NULL), "larger") != NULL);
	free(big);
}
END_TEST

/*
 * verification
 */

START_TEST(verify_good)
{
	struct jwk_set		*set = parse(JWKS);
	struct jwt_claims	 c;
	struct {
		const char	*tok, *sub, *role;
	} good[] = {
		{ TOK_ES_A, "user-a", "authenticated" },
		{ TOK_ES_A2, "user-a", "authenticated" },
		{ TOK_ES_B, "user-b", "authenticated" },
		{ TOK_ES_NOKID, "user-n", "authenticated" },
		{ TOK_RS_1, "user-r", "service" },
		{ TOK_RS_3, "user-3", "authenticated" },
		{ TOK_RS_4, "user-4", "authenticated" },
	};
	size_t			 i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ck_assert_msg(verify(set, good[i].tok, &c) == JWT_VALID,
		    "token %zu", i);
		ck_assert_str_eq(c.sub, good[i].sub);
		ck_assert_str_eq(c.role, good[i].role);
	}
	jwk_set_free(set);
	/* a key without kid fits a token with a kid */
	set = parse(EC1_NOKID_JWK);
	ck_assert_int_eq(verify(set, TOK_ES_A, NULL), JWT_VALID);
	ck_assert_int_eq(verify(set, TOK_ES_B, NULL), JWT_INVALID);
	jwk_set_free(set);
}
END_TEST

START_TEST(verify_time)
{
	struct jwk_set		*set = parse(JWKS);
	struct jwt_claims	 c;

	ck_assert_int_eq(verify(set, TOK_ES_EXPIRED, &c), JWT_EXPIRED);
	ck_assert_str_eq(c.sub, "user-a");
	ck_assert_int_eq(verify(set, TOK_ES_NBF, &c), JWT_EXPIRED);
	jwk_set_free(set);
}
END_TEST

START_TEST(verify_kid_and_alg)
{
	struct jwk_set	*set = parse(JWKS);

	ck_assert_int_eq(verify(set, TOK_ES_UNKNOWN_KID, NULL),
	    JWT_UNKNOWN_KID);
	ck_assert_int_eq(verify(set, TOK_ES_WRONG_KID, NULL), JWT_INVALID);
	ck_assert_int_eq(verify(set, TOK_RS_WRONG_KEY, NULL), JWT_INVALID);
	/* use "enc" and alg PS256 keys were dropped */
	ck_assert_int_ne(verify(set, TOK_ES_ENC_KID, NULL), JWT_VALID);
	ck_assert_int_ne(verify(set, TOK_RS_PS_KID, NULL), JWT_VALID);
	/* ES256 naming an RSA key */
	ck_assert_int_ne(verify(set, TOK_ES_AS_RSA, NULL), JWT_VALID);
	ck_assert_int_eq(verify(set, TOK_RS_CRIT, NULL), JWT_INVALID);
	ck_assert_int_eq(verify(set, TOK_NONE, NULL), JWT_INVALID);
	ck_assert_int_eq(verify(NULL, TOK_ES_A, NULL), JWT_INVALID);
	jwk_set_free(set);
}
END_TEST

/* an HS256 token keyed with the public JWKS text is not accepted */
START_TEST(verify_no_alg_confusion)
{
	struct jwk_set		*set = parse(JWKS);
	struct jwt_keys		 k;
	struct jwt_claims	 c;
	char			 tok[1024];
	unsigned char		 mac[32];
	const char		*hp = "eyJhbGciOiJIUzI1NiIsImtpZCI6ImVjLTEifQ"
				    ".eyJzdWIiOiJldmUiLCJyb2xlIjoiYWRtaW4ifQ";
	size_t			 n;

	n = (size_t)snprintf(tok, sizeof(tok), "%s.", hp);
	crypto_hmac_sha256(JWKS, strlen(JWKS), hp, strlen(hp), mac);
	crypto_b64url_encode(mac, sizeof(mac), tok + n, sizeof(tok) - n);
	ck_assert_int_eq(verify(set, tok, &c), JWT_INVALID);
	crypto_hmac_sha256(EC1_JWK, strlen(EC1_JWK), hp, strlen(hp), mac);
	crypto_b64url_encode(mac, sizeof(mac), tok + n, sizeof(tok) - n);
	ck_assert_int_eq(verify(set, tok, &c), JWT_INVALID);
	/* with a secret, HS256 still verifies, and ES256 still needs a set */
	memset(&k, 0, sizeof(k));
	k.secret = JWKS;
	k.secretlen = strlen(JWKS);
	crypto_hmac_sha256(JWKS, strlen(JWKS), hp, strlen(hp), mac);
	crypto_b64url_encode(mac, sizeof(mac), tok + n, sizeof(tok) - n);
	ck_assert_int_eq(jwt_verify(tok, strlen(tok), &k, NOW, &c),
	    JWT_VALID);
	ck_assert_str_eq(c.sub, "eve");
	ck_assert_int_eq(jwt_verify(TOK_ES_A, strlen(TOK_ES_A), &k, NOW, &c),
	    JWT_INVALID);
	jwk_set_free(set);
}
END_TEST

/* every single-bit flip in header, payload or signature fails */
START_TEST(verify_bit_flips)
{
	struct jwk_set	*set = parse(JWKS);
	const char	*toks[] = { TOK_ES_A, TOK_RS_1 };
	char		 t[4096];
	size_t		 i, j, len;
	int		 bit;

	for (j = 0; j < 2; j++) {
		len = strlen(toks[j]);
		for (i = 0; i < len; i += 3) {
			if (toks[j][i] == '.')
				continue;
			for (bit = 0; bit < 6; bit += 5) {
				memcpy(t, toks[j], len + 1);
				/* a different base64url character */
				t[i] = t[i] == 'A' ? 'B' : 'A';
				if (bit)
					t[i] = t[i] == 'A' ? 'g' : 'Q';
				if (strcmp(t, toks[j]) == 0)
					continue;
				ck_assert_msg(verify(set, t, NULL) !=
				    JWT_VALID, "token %zu char %zu", j, i);
			}
		}
	}
	jwk_set_free(set);
}
END_TEST

START_TEST(verify_es256_bad_signatures)
{
	static const unsigned char	n[32] = {
		0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84,
		0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
	};
	struct jwk_set		*set = parse(JWKS);
	unsigned char		 sig[80], bad[80];

	ck_assert_uint_eq(sig_of(TOK_ES_A, sig, sizeof(sig)), 64);
	ck_assert_int_eq(verify(set, with_sig(TOK_ES_A, sig, 64), NULL),
	    JWT_VALID);
	/* r = 0, s = 0 */
	memcpy(bad, sig, 64);
	memset(bad, 0, 32);
	ck_assert_int_eq(verify(set, with_sig(TOK_ES_A, bad, 64), NULL),
	    JWT_INVALID);
	memcpy(bad, sig, 64);
	memset(bad + 32, 0, 32);
	ck_assert_int_eq(verify(set, with_sig(TOK_ES_A, bad, 64), NULL),
	    JWT_INVALID);
	/* r = n, s = n, r = 2^256 - 1 */
	memcpy(bad, sig, 64);
	memcpy(bad, n, 32);
	ck_assert_int_eq(verify(set, with_sig(TOK_ES_A, bad, 64), NULL),
	    JWT_INVALID);
	memcpy(bad, sig, 64);
	memcpy(bad + 32, n, 32);
	ck_assert_int_eq(verify(set, with_sig(TOK_ES_A, bad, 64), NULL),
	    JWT_INVALID);
	memcpy(bad, sig, 64);
	memset(bad, 0xff, 32);
	ck_assert_int_eq(verify(set, with_sig(TOK_ES_A, bad, 64), NULL),
	    JWT_INVALID);
	/* truncated, oversized, empty */
	ck_assert_int_eq(verify(set, with_sig(TOK_ES_A, sig, 63), NULL),
	    JWT_INVALID);
	memcpy(bad, sig, 64);
	bad[64] = 0;
	ck_assert_int_eq(verify(set, with_sig(TOK_ES_A, bad, 65), NULL),
	    JWT_INVALID);
	memset(bad, 0, 1);
	memcpy(bad + 1, sig, 64);
	ck_assert_int_eq(verify(set, with_sig(TOK_ES_A, bad, 65), NULL),
	    JWT_INVALID);
	ck_assert_int_eq(verify(set, with_sig(TOK_ES_A, sig, 0), NULL),
	    JWT_INVALID);
	jwk_set_free(set);
}
END_TEST

START_TEST(verify_rs256_bad_signatures)
{
	struct jwk_set		*set = parse(JWKS);
	unsigned char		 sig[600], bad[600];
	size_t			 n;

	n = sig_of(TOK_RS_1, sig, sizeof(sig));
	ck_assert_uint_eq(n, 256);
	ck_assert_int_eq(verify(set, with_sig(TOK_RS_1, sig, n), NULL),
	    JWT_VALID);
	/* one byte short, one leading zero byte more, 513 bytes */
	ck_assert_int_eq(verify(set, with_sig(TOK_RS_1, sig + 1, n - 1),
	    NULL), JWT_INVALID);
	bad[0] = 0;
	memcpy(bad + 1, sig, n);
	ck_assert_int_eq(verify(set, with_sig(TOK_RS_1, bad, n + 1), NULL),
	    JWT_INVALID);
	memset(bad, 1, sizeof(bad));
	ck_assert_int_eq(verify(set, with_sig(TOK_RS_1, bad, 513), NULL),
	    JWT_INVALID);
	/* s >= n */
	memset(bad, 0xff, n);
	ck_assert_int_eq(verify(set, with_sig(TOK_RS_1, bad, n), NULL),
	    JWT_INVALID);
	/* 0 and 1 */
	memset(bad, 0, n);
	ck_assert_int_eq(verify(set, with_sig(TOK_RS_1, bad, n), NULL),
	    JWT_INVALID);
	bad[n - 1] = 1;
	ck_assert_int_eq(verify(set, with_sig(TOK_RS_1, bad, n), NULL),
	    JWT_INVALID);
	jwk_set_free(set);
}
END_TEST

START_TEST(pk_ec_generator_on_curve)
{
	static const unsigned char	gx[32] = {
		0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47,
		0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40, 0xf2,
		0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0,
		0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96,
	}, gy[32] = {
		0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b,
		0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e, 0x16,
		0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce,
		0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5,
	};
	struct pk_ec	k;
	unsigned char	y[32];

	ck_assert_int_eq(pk_ec_init(&k, gx, gy), 0);
	memcpy(y, gy, 32);
	y[31] ^= 1;
	ck_assert_int_eq(pk_ec_init(&k, gx, y), -1);
	memset(y, 0, 32);
	ck_assert_int_eq(pk_ec_init(&k, y, y), -1);
}
END_TEST

static Suite *
jwk_suite(void)
{
	Suite	*s = suite_create("jwk");
	TCase	*tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, bn_bytes_roundtrip);
	tcase_add_test(tc, bn_mont_rejects);
	tcase_add_loop_test(tc, bn_pow_vectors, 0,
	    sizeof(POW) / sizeof(POW[0]));
	tcase_add_test(tc, bn_mod_add_sub);
	tcase_add_test(tc, pk_ec_generator_on_curve);
	tcase_add_test(tc, jwks_parse_skips_unsupported);
	tcase_add_test(tc, jwks_parse_errors);
	tcase_add_test(tc, verify_good);
	tcase_add_test(tc, verify_time);
	tcase_add_test(tc, verify_kid_and_alg);
	tcase_add_test(tc, verify_no_alg_confusion);
	tcase_add_test(tc, verify_bit_flips);
	tcase_add_test(tc, verify_es256_bad_signatures);
	tcase_add_test(tc, verify_rs256_bad_signatures);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return ck_run(jwk_suite());
}
