/*
 * jwk: JSON Web Key sets (RFC 7517, 7518) of ES256 and RS256 public keys
 * and signature checks with them.  Pure, no I/O.
 */
#ifndef SUPAGATE_JWK_H
#define SUPAGATE_JWK_H

#include <stddef.h>

#define JWK_SET_MAX_BYTES	(256 * 1024)	/* largest JWKS document */
#define JWK_SET_MAX_KEYS	32		/* entries in "keys" */
#define JWK_KID_MAX		256		/* longest kid */

struct jwk_set;

enum jwk_result {
	JWK_OK,		/* a key of the set verified the signature */
	JWK_BAD,	/* no usable key verified it */
	JWK_NO_KEY,	/* no key has the token's kid (nor lacks a kid) */
};

/*
 * Parse a JWK set {"keys":[...]} or a single JWK.  Keys of other types,
 * curves or algorithms, and keys whose "use" is not "sig", are skipped;
 * a malformed EC P-256 or RSA key is an error.  On error return NULL
 * with a message in err and, for JSON syntax errors, the 1-based line
 * in *line (else 0).
 */
struct jwk_set *jwk_set_parse(const char *, size_t, char *err,
    size_t errlen, unsigned *line);
/* free; NULL is a no-op */
void jwk_set_free(struct jwk_set *);
/* number of usable keys */
size_t jwk_set_count(const struct jwk_set *);
/*
 * Check sig over msg with the keys that fit alg ("ES256" or "RS256")
 * and kid (NULL: the token has none, try every fitting key).  A key
 * without a kid fits a token whose kid no key has.
 */
enum jwk_result jwk_set_verify(const struct jwk_set *, const char *alg,
    const char *kid, const void *msg, size_t msglen,
    const unsigned char *sig, size_t siglen);

#endif
