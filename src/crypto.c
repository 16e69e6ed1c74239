/* crypto: secrets in guarded memory and the primitives around them */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto.h"

#define SECRET_FILE_MAX	(64 * 1024)

int
crypto_setup(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

struct secret *
secret_new(const char *data, size_t len)
{
	struct secret	*s;

	if (len >= SECRET_FILE_MAX * 16 || sodium_init() < 0)
		return NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if ((s->buf = sodium_malloc(len + 1)) == NULL) {
		free(s);
		return NULL;
	}
	if (len > 0)
		memcpy(s->buf, data, len);
	s->buf[len] = '\0';
	s->len = len;
	return s;
}

struct secret *
secret_load(const char *path, char *err, size_t errlen)
{
	struct secret	*s = NULL;
	struct stat	 st;
	char		*buf = NULL;
	size_t		 len = 0;
	ssize_t		 n;
	int		 fd = -1;

	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialise");
		return NULL;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		snprintf(err, errlen, "%s", strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "not a regular file");
		goto out;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen,
		    "file is readable by group or others; chmod 600");
		goto out;
	}
	if ((buf = sodium_malloc(SECRET_FILE_MAX + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (;;) {
		n = read(fd, buf + len, SECRET_FILE_MAX + 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(err, errlen, "%s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > SECRET_FILE_MAX) {
			snprintf(err, errlen, "file is larger than %d bytes",
			    SECRET_FILE_MAX);
			goto out;
		}
	}
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	if (len == 0) {
		snprintf(err, errlen, "file is empty");
		goto out;
	}
	if (memchr(buf, '\0', len) != NULL) {
		snprintf(err, errlen, "file contains a NUL byte");
		goto out;
	}
	if ((s = secret_new(buf, len)) == NULL)
		snprintf(err, errlen, "out of memory");
 out:
	if (buf != NULL)
		sodium_free(buf);	/* wipes */
	if (fd != -1)
		close(fd);
	return s;
}

void
secret_free(struct secret *s)
{
	if (s == NULL)
		return;
	sodium_free(s->buf);	/* zeroes before freeing */
	free(s);
}

int
secret_eq(const struct secret *s, const char *p, size_t len)
{
	if (s == NULL || p == NULL || s->len != len)
		return 0;
	return sodium_memcmp(s->buf, p, len) == 0;
}

int
crypto_memeq(const void *a, const void *b, size_t len)
{
	return sodium_memcmp(a, b, len) == 0;
}

void
crypto_hmac_sha256(const void *key, size_t keylen, const void *msg,
    size_t msglen, unsigned char out[32])
{
	crypto_auth_hmacsha256_state	st;

	crypto_auth_hmacsha256_init(&st, key, keylen);
	crypto_auth_hmacsha256_update(&st, msg, msglen);
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}

void
crypto_digest(const void *msg, size_t len, unsigned char out[32])
{
	crypto_generichash(out, 32, msg, len, NULL, 0);
}

_Static_assert(sizeof(crypto_generichash_state) <=
    sizeof(((struct crypto_digest_ctx *)0)->opaque),
    "crypto_digest_ctx too small");

void
crypto_digest_init(struct crypto_digest_ctx *c)
{
	crypto_generichash_init((crypto_generichash_state *)c->opaque, NULL,
	    0, 32);
}

void
crypto_digest_update(struct crypto_digest_ctx *c, const void *p, size_t n)
{
	crypto_generichash_update((crypto_generichash_state *)c->opaque, p, n);
}

void
crypto_digest_final(struct crypto_digest_ctx *c, unsigned char out[32])
{
	crypto_generichash_final((crypto_generichash_state *)c->opaque, out,
	    32);
}

void
crypto_sha256(const void *msg, size_t len, unsigned char out[32])
{
	crypto_hash_sha256(out, msg, len);
}

long
crypto_b64url_encode(const void *in, size_t inlen, char *out, size_t outlen)
{
	const int	v = sodium_base64_VARIANT_URLSAFE_NO_PADDING;

	if (inlen > (size_t)0x3fffffff ||
	    outlen < sodium_base64_ENCODED_LEN(inlen, v))
		return -1;
	sodium_bin2base64(out, outlen, in, inlen, v);
	return (long)strlen(out);
}

long
crypto_b64url_decode(const char *in, size_t inlen, void *out, size_t outlen)
{
	const char	*end = NULL;
	size_t		 binlen = 0;

	if (inlen > (size_t)0x3fffffff)
		return -1;
	if (sodium_base642bin(out, outlen, in, inlen, NULL, &binlen, &end,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		return -1;
	if (end != in + inlen)
		return -1;
	return (long)binlen;
}

void
crypto_hex(const unsigned char *in, size_t n, char *out)
{
	sodium_bin2hex(out, 2 * n + 1, in, n);
}

void
crypto_random(void *buf, size_t n)
{
	randombytes_buf(buf, n);
}

void
crypto_wipe(void *buf, size_t n)
{
	sodium_memzero(buf, n);
}

_Static_assert(CRYPTO_SEAL_KEYBYTES == crypto_secretbox_KEYBYTES,
    "secretbox key size");
_Static_assert(CRYPTO_SEAL_OVERHEAD ==
    crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES,
    "secretbox overhead");

void
crypto_seal(const unsigned char key[CRYPTO_SEAL_KEYBYTES], const void *msg,
    size_t len, unsigned char *out)
{
	randombytes_buf(out, crypto_secretbox_NONCEBYTES);
	crypto_secretbox_easy(out + crypto_secretbox_NONCEBYTES, msg, len, out,
	    key);
}

int
crypto_open(const unsigned char key[CRYPTO_SEAL_KEYBYTES],
    const unsigned char *in, size_t inlen, void *out)
{
	if (inlen < CRYPTO_SEAL_OVERHEAD)
		return -1;
	return crypto_secretbox_open_easy(out, in + crypto_secretbox_NONCEBYTES,
	    inlen - crypto_secretbox_NONCEBYTES, in, key) == 0 ? 0 : -1;
}
