/* util: small shared helpers (allocation that cannot fail, bounded copy) */
#ifndef SUPAGATE_UTIL_H
#define SUPAGATE_UTIL_H

#include <stddef.h>

/* strdup/calloc/reallocarray that call fatal() when out of memory */
char *xstrdup(const char *);
void *xcalloc(size_t, size_t);
void *xreallocarray(void *, size_t, size_t);
/* strlcpy: copy at most size-1 bytes, always NUL-terminate; strlen(src) */
size_t util_strlcpy(char *, const char *, size_t);
/* write all len bytes to fd, retrying on EINTR; 0 or -1 (errno set) */
int util_write_all(int fd, const void *, size_t len);
/*
 * Replace file name in directory dirfd (mode 0600): write tmp, fsync,
 * rename, fsync the directory, so a crash leaves the old file or the new
 * one.  0 or -1 (errno set; tmp removed).
 */
int util_write_atomic(int dirfd, const char *name, const char *tmp,
    const void *, size_t len);
/* ASCII case-insensitive equality of two NUL-terminated strings */
int util_strcaseeq(const char *, const char *);
/* the value of hex digit c (either case), or -1 */
int util_hexval(int c);

#endif
