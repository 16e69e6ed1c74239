/* fuzz_jwt: jwt_looks_like, jwt_decode, jwt_verify_hs256 and jwt_verify */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "jwt.h"

#define SECRET	"super-secret-jwt-token-with-at-least-32-characters"

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (crypto_setup() == -1)
		abort();
	return 0;
}

static void
check_claims(const struct jwt_claims *c)
{
	if (memchr(c->role, '\0', sizeof(c->role)) == NULL ||
	    memchr(c->sub, '\0', sizeof(c->sub)) == NULL)
		abort();
}

/* decode, verify, and the invariants between them */
static void
one(const char *s, size_t len)
{
	struct jwt_claims	dc, vc, uc;
	struct jwt_keys		k;
	enum jwt_verdict	v;
	int			d, vr, looks;

	looks = jwt_looks_like(s, len);
	memset(&dc, 0x5a, sizeof(dc));
	d = jwt_decode(s, len, &dc);
	if (d != 0 && d != -1)
		abort();
	if (d == 0)
		check_claims(&dc);
	memset(&vc, 0x5a, sizeof(vc));
	vr = jwt_verify_hs256(s, len, SECRET, sizeof(SECRET) - 1, &vc);
	if (vr != 0 && vr != -1)
		abort();
	if (vr == 0) {
		/* verified: it has a signature, decodes, to the same */
		if (!looks || d != 0)
			abort();
		check_claims(&vc);
		if (memcmp(&dc, &vc, sizeof(dc)) != 0)
			abort();
	}
	/* jwt_verify with the secret accepts only what HS256 verifies */
	memset(&k, 0, sizeof(k));
	k.secret = SECRET;
	k.secretlen = sizeof(SECRET) - 1;
	memset(&uc, 0x5a, sizeof(uc));
	v = jwt_verify(s, len, &k, 0, &uc);
	if (v == JWT_VALID || v == JWT_EXPIRED) {
		if (vr != 0 || memcmp(&uc, &vc, sizeof(uc)) != 0)
			abort();
	} else if (v != JWT_INVALID)
		abort();	/* no key sets: never an unknown kid */
	/* a wrong secret never verifies */
	if (jwt_verify_hs256(s, len, SECRET, sizeof(SECRET) - 2, &vc) == 0)
		abort();
	k.secretlen--;
	if (jwt_verify(s, len, &k, 0, &uc) != JWT_INVALID)
		abort();
}

/*
 * Input as is; then, when it holds a NUL, as header JSON NUL payload
 * JSON encoded into a token signed with SECRET (to reach the claims
 * past the signature check); and the input's first two parts re-signed.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*in = (const char *)data, *nul, *dot;
	unsigned char	 mac[32];
	char		*tok, *s;
	size_t		 hl, pl, cap, off;
	long		 n;

	if ((s = malloc(size > 0 ? size : 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	one(s, size);
	free(s);

	if (size > 20000)
		return 0;
	cap = size * 2 + 128;
	if ((tok = malloc(cap)) == NULL)
		return 0;
	off = 0;
	if ((nul = memchr(in, '\0', size)) != NULL) {
		hl = (size_t)(nul - in);
		pl = size - hl - 1;
		if ((n = crypto_b64url_encode(in, hl, tok, cap)) < 0)
			goto out;
		off = (size_t)n;
		tok[off++] = '.';
		if ((n = crypto_b64url_encode(nul + 1, pl, tok + off,
		    cap - off)) < 0)
			goto out;
		off += (size_t)n;
	} else if ((dot = memchr(in, '.', size)) != NULL &&
	    (dot = memchr(dot + 1, '.', size - (size_t)(dot + 1 - in))) !=
	    NULL) {
		off = (size_t)(dot - in);
		memcpy(tok, in, off);
	} else
		goto out;
	crypto_hmac_sha256(SECRET, sizeof(SECRET) - 1, tok, off, mac);
	tok[off++] = '.';
	if ((n = crypto_b64url_encode(mac, sizeof(mac), tok + off,
	    cap - off)) != 43)
		abort();
	off += (size_t)n;
	if ((s = malloc(off)) == NULL)
		goto out;
	memcpy(s, tok, off);
	one(s, off);
	free(s);
 out:
	free(tok);
	return 0;
}
