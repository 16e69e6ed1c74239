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
/* ASCII case-insensitive equality of two NUL-terminated strings */
int util_strcaseeq(const char *, const char *);

#endif
