/*
 * json: the one module that includes the JSON library.  A struct json is
 * one value of a parsed or built document; members and elements belong
 * to the document, which json_free() releases as a whole.  Lookups take
 * NULL for an absent value and answer "absent", so they chain.
 */
#ifndef SUPAGATE_JSON_H
#define SUPAGATE_JSON_H

#include <stddef.h>

struct json;

enum json_type {
	JSON_NONE,	/* no value: a NULL pointer */
	JSON_NULL,
	JSON_FALSE,
	JSON_TRUE,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
};

/*
 * Parse the len bytes at s (no NUL needed; what follows the first value
 * is ignored).  NULL if malformed or out of memory; then *errpos, if
 * given, is the offset where parsing stopped, or (size_t)-1.
 */
struct json *json_parse(const char *s, size_t len, size_t *errpos);
/* free a whole document; json_free(NULL) is a no-op */
void json_free(struct json *);

enum json_type json_type(const struct json *);
/* the first member called name (case-sensitive); NULL if none */
struct json *json_get(const struct json *, const char *name);
/* a string's bytes up to its first NUL; NULL if not a string */
const char *json_str(const struct json *);
/* 0 and *d set if a number, else -1 */
int json_num(const struct json *, double *d);
/* elements of an array or members of an object; 0 for others */
size_t json_len(const struct json *);
/* element (or member value) i; NULL past the end */
struct json *json_at(const struct json *, size_t i);
/* overwrite a string's bytes with zeros (secrets); else no-op */
void json_wipe(struct json *);

/* a new empty JSON_OBJECT or JSON_ARRAY, or a JSON_NULL; NULL on ENOMEM */
struct json *json_new(enum json_type);
/* a deep copy; NULL on ENOMEM or if given NULL */
struct json *json_dup(const struct json *);
/* add a member to an object: a copy of the string s, or null */
int json_add_str(struct json *, const char *name, const char *s);
int json_add_null(struct json *, const char *name);
/* append v to an array; takes ownership of v (freed on failure) */
int json_push(struct json *, struct json *v);
/* replace the member name, or element i, with v; takes ownership of v */
int json_replace(struct json *, const char *name, struct json *v);
int json_replace_at(struct json *, size_t i, struct json *v);
/* compact text, malloc'd (the caller frees it); NULL on ENOMEM */
char *json_print(const struct json *);

#endif
