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
/* the same digest over pieces: init, any number of updates, final */
struct crypto_digest_ctx {
	_Alignas(64) unsigned char	opaque[384];
};
void crypto_digest_init(struct crypto_digest_ctx *);
void crypto_digest_update(struct crypto_digest_ctx *, const void *, size_t);
void crypto_digest_final(struct crypto_digest_ctx *, unsigned char out[32]);
/* SHA-256 of msg into out[32] (for JWS signature checks) */
void crypto_sha256(const void *, size_t, unsigned char out[32]);
/* base64url without padding; returns length written or -1 */
long crypto_b64url_encode(const void *, size_t, char *, size_t);
long crypto_b64url_decode(const char *, size_t, void *, size_t);
/* hex of n bytes into out (2n+1) */
void crypto_hex(const unsigned char *, size_t, char *);
/* n bytes from the system CSPRNG */
void crypto_random(void *, size_t);
/* zero memory in a way the compiler keeps */
void crypto_wipe(void *, size_t);

/*
 * Authenticated encryption (XSalsa20-Poly1305 secretbox) under a 32-byte
 * key.  crypto_seal writes a fresh random nonce, the tag and the
 * ciphertext to out, len + CRYPTO_SEAL_OVERHEAD bytes.  crypto_open
 * reverses it into out (inlen - CRYPTO_SEAL_OVERHEAD bytes); -1 if the
 * input is short, forged or sealed under another key.
 */
#define CRYPTO_SEAL_KEYBYTES	32
#define CRYPTO_SEAL_OVERHEAD	(24 + 16)	/* nonce + tag */
void crypto_seal(const unsigned char key[CRYPTO_SEAL_KEYBYTES],
    const void *, size_t len, unsigned char *out);
int crypto_open(const unsigned char key[CRYPTO_SEAL_KEYBYTES],
    const unsigned char *in, size_t inlen, void *out);

#endif
