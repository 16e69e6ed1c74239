/*
 * fuzz_jwk: jwk_set_parse on the input, and jwt_verify of the input as
 * a token against a fixed JWK set (the committed test vectors)
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "jwk.h"
#include "jwt.h"

#include "tests/data/jwks/vectors.h"

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct jwk_set	*fixed;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char		err[256];
	unsigned	line;

	(void)argc;
	(void)argv;
	if (crypto_setup() == -1)
		abort();
	fixed = jwk_set_parse(JWKS, strlen(JWKS), err, sizeof(err), &line);
	if (fixed == NULL || jwk_set_count(fixed) == 0)
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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jwk_set		*set;
	struct jwt_keys		 k;
	struct jwt_claims	 c;
	enum jwt_verdict	 v;
	char			 err[256], *s;
	unsigned		 line = 0;
	size_t			 i, nl = 0;

	if ((s = malloc(size > 0 ? size : 1)) == NULL)
		return 0;
	memcpy(s, data, size);

	/* as a JWK set: an error has a message and a line inside the input */
	err[0] = '\0';
	set = jwk_set_parse(s, size, err, sizeof(err), &line);
	if (set == NULL) {
		for (i = 0; i < size; i++)
			nl += s[i] == '\n';
		if (err[0] == '\0' || line > nl + 1)
			abort();
	} else if (jwk_set_count(set) > JWK_SET_MAX_KEYS)
		abort();

	/* as a token: never valid against a set without keys for it */
	memset(&k, 0, sizeof(k));
	k.sets[0] = fixed;
	k.sets[1] = set;
	memset(&c, 0x5a, sizeof(c));
	v = jwt_verify(s, size, &k, 1764000000, &c);
	if (v != JWT_VALID && v != JWT_INVALID && v != JWT_EXPIRED &&
	    v != JWT_UNKNOWN_KID)
		abort();
	if (v == JWT_VALID || v == JWT_EXPIRED)
		check_claims(&c);
	/* with no key material nothing verifies, alg none included */
	memset(&k, 0, sizeof(k));
	if (jwt_verify(s, size, &k, 1764000000, &c) == JWT_VALID)
		abort();
	jwk_set_free(set);
	free(s);
	return 0;
}
