/* json: parse, read, build and print JSON; the only user of cJSON */
#include "config.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "crypto.h"
#include "json.h"

/* a struct json is a cJSON item; the type is never completed */
static cJSON *
C(const struct json *j)
{
	return (cJSON *)j;
}

static struct json *
J(const cJSON *c)
{
	return (struct json *)c;
}

struct json *
json_parse(const char *s, size_t len, size_t *errpos)
{
	const char	*end = NULL;
	cJSON		*c;

	c = cJSON_ParseWithLengthOpts(s, len, &end, 0);
	if (c == NULL && errpos != NULL)
		*errpos = end != NULL && end >= s && end <= s + len ?
		    (size_t)(end - s) : SIZE_MAX;
	return J(c);
}

void
json_free(struct json *j)
{
	cJSON_Delete(C(j));
}

enum json_type
json_type(const struct json *j)
{
	static const int	types[] = {
		[JSON_NULL] = cJSON_NULL, [JSON_FALSE] = cJSON_False,
		[JSON_TRUE] = cJSON_True, [JSON_NUMBER] = cJSON_Number,
		[JSON_STRING] = cJSON_String, [JSON_ARRAY] = cJSON_Array,
		[JSON_OBJECT] = cJSON_Object,
	};
	const cJSON		*c = C(j);
	size_t			 t;

	for (t = JSON_NULL; c != NULL && t <= JSON_OBJECT; t++)
		if ((c->type & 0xff) == types[t])
			return (enum json_type)t;
	return JSON_NONE;
}

struct json *
json_get(const struct json *o, const char *name)
{
	return J(cJSON_GetObjectItemCaseSensitive(C(o), name));
}

const char *
json_str(const struct json *j)
{
	const cJSON	*c = C(j);

	return cJSON_IsString(c) ? c->valuestring : NULL;
}

int
json_num(const struct json *j, double *d)
{
	const cJSON	*c = C(j);

	if (!cJSON_IsNumber(c))
		return -1;
	*d = c->valuedouble;
	return 0;
}

size_t
json_len(const struct json *j)
{
	return (size_t)cJSON_GetArraySize(C(j));
}

struct json *
json_at(const struct json *j, size_t i)
{
	return i > INT_MAX ? NULL : J(cJSON_GetArrayItem(C(j), (int)i));
}

void
json_wipe(struct json *j)
{
	cJSON	*c = C(j);

	if (cJSON_IsString(c) && c->valuestring != NULL)
		crypto_wipe(c->valuestring, strlen(c->valuestring));
}

struct json *
json_new(enum json_type t)
{
	switch (t) {
	case JSON_OBJECT:
		return J(cJSON_CreateObject());
	case JSON_ARRAY:
		return J(cJSON_CreateArray());
	case JSON_NULL:
		return J(cJSON_CreateNull());
	default:
		return NULL;
	}
}

struct json *
json_dup(const struct json *j)
{
	return J(cJSON_Duplicate(C(j), 1));
}

int
json_add_str(struct json *o, const char *name, const char *s)
{
	return cJSON_AddStringToObject(C(o), name, s) != NULL ? 0 : -1;
}

int
json_add_null(struct json *o, const char *name)
{
	return cJSON_AddNullToObject(C(o), name) != NULL ? 0 : -1;
}

int
json_push(struct json *a, struct json *v)
{
	if (!cJSON_AddItemToArray(C(a), C(v))) {
		cJSON_Delete(C(v));
		return -1;
	}
	return 0;
}

int
json_replace(struct json *o, const char *name, struct json *v)
{
	if (!cJSON_ReplaceItemInObjectCaseSensitive(C(o), name, C(v))) {
		cJSON_Delete(C(v));
		return -1;
	}
	return 0;
}

int
json_replace_at(struct json *a, size_t i, struct json *v)
{
	if (i > INT_MAX || !cJSON_ReplaceItemInArray(C(a), (int)i, C(v))) {
		cJSON_Delete(C(v));
		return -1;
	}
	return 0;
}

char *
json_print(const struct json *j)
{
	return cJSON_PrintUnformatted(C(j));
}
