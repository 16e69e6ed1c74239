/* crypto: secrets in guarded memory and the primitives around them */
#ifndef SUPAGATE_CRYPTO_H
#define SUPAGATE_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

struct secret {
	size_t	len;
	char	*buf;		/* sodium_malloc'd, NUL-terminated */
};

/* once, before anything else; -1 if libsodium fails */
int crypto_setup(void);
/* copy len bytes into a new secret */
struct secret *secret_new(const char *, size_t);
/*
 * Read a secret file: refuse group/world-readable files, strip one
 * trailing newline (and CR).  On error fill err (a message without the
 * path) and return NULL.
 */
struct secret *secret_load(const char *path, char *err, size_t errlen);
/* wipe and free; NULL is a no-op */
void secret_free(struct secret *);
/* constant-time equality with a plain string */
int secret_eq(const struct secret *, const char *, size_t);
/* constant-time memory comparison; 1 if equal */
int crypto_memeq(const void *, const void *, size_t);
/* HMAC-SHA256 of msg under key into out[32] */
void crypto_hmac_sha256(const void *key, size_t keylen, const void *msg,
    size_t msglen, unsigned char out[32]);
/*
 * BLAKE2b-256.  (Not crypto_hash: libsodium already exports that name
 * for SHA-512, and the two would clash at compile and link time.)
 */
void crypto_digest(const void *, size_t, unsigned char out[32]);
/* base64url without padding; returns length written or -1 */
long crypto_b64url_encode(const void *, size_t, char *, size_t);
long crypto_b64url_decode(const char *, size_t, void *, size_t);
/* hex of n bytes into out (2n+1) */
void crypto_hex(const unsigned char *, size_t, char *);

#endif
