/* check_json: the json module, the one owner of cJSON */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "json.h"
#include "ck_run.h"

static struct json *
parse(const char *s)
{
	return json_parse(s, strlen(s), NULL);
}

START_TEST(malformed)
{
	static const char *const	bad[] = {
		"", " ", "{", "}", "[1,", "{\"a\":}", "{\"a\" 1}", "{a:1}",
		"'x'", "[1,]", "{\"a\":1,}", "nul", "tru", "\"abc",
		"\"\\x\"", "-", "{\"a\":\"\\u12\"}",
	};
	size_t				 i, pos;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pos = 12345;
		ck_assert_msg(json_parse(bad[i], strlen(bad[i]), &pos) ==
		    NULL, "accepted %s", bad[i]);
		ck_assert_msg(pos <= strlen(bad[i]) || pos == SIZE_MAX,
		    "%s: errpos %zu", bad[i], pos);
	}
	/* the offset of the error, for line numbers */
	ck_assert_ptr_null(json_parse("{\n\"a\": x}", 9, &pos));
	ck_assert_uint_eq(pos, 7);
	/* the length bounds the text: a cut value is malformed */
	ck_assert_ptr_null(json_parse("{\"a\":1}", 6, NULL));
	ck_assert_ptr_null(json_parse(NULL, 0, &pos));
	ck_assert_uint_eq(pos, SIZE_MAX);
}
END_TEST

START_TEST(trailing_and_length)
{
	struct json	*j;
	char		*buf;
	double		 d;

	/* what follows the first value is ignored */
	j = json_parse("{\"a\":1} trailing", 16, NULL);
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(json_num(json_get(j, "a"), &d), 0);
	ck_assert(d == 1);
	json_free(j);
	/* no NUL needed after the bytes */
	buf = malloc(7);
	ck_assert_ptr_nonnull(buf);
	memcpy(buf, "[1,2,3]", 7);
	j = json_parse(buf, 7, NULL);
	free(buf);
	ck_assert_ptr_nonnull(j);
	ck_assert_uint_eq(json_len(j), 3);
	json_free(j);
}
END_TEST

START_TEST(non_object)
{
	static const struct {
		const char	*in;
		enum json_type	 t;
	} v[] = {
		{ "null", JSON_NULL }, { "false", JSON_FALSE },
		{ "true", JSON_TRUE }, { "-1.5e3", JSON_NUMBER },
		{ "\"s\"", JSON_STRING }, { "[]", JSON_ARRAY },
		{ "{}", JSON_OBJECT },
	};
	struct json	*j;
	size_t		 i;
	double		 d;

	ck_assert_int_eq(json_type(NULL), JSON_NONE);
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		ck_assert_ptr_nonnull(j = parse(v[i].in));
		ck_assert_int_eq(json_type(j), v[i].t);
		/* lookups on a non-object find nothing */
		ck_assert_ptr_null(json_get(j, "a"));
		ck_assert_int_eq(json_num(j, &d), v[i].t == JSON_NUMBER ?
		    0 : -1);
		ck_assert(v[i].t == JSON_STRING ? json_str(j) != NULL :
		    json_str(j) == NULL);
		json_free(j);
	}
	/* an array's elements are not members */
	ck_assert_ptr_nonnull(j = parse("[\"a\",{\"a\":1}]"));
	ck_assert_ptr_null(json_get(j, "a"));
	ck_assert_uint_eq(json_len(j), 2);
	ck_assert_str_eq(json_str(json_at(j, 0)), "a");
	ck_assert_ptr_null(json_at(j, 2));
	ck_assert_ptr_null(json_at(j, SIZE_MAX));
	json_free(j);
	/* absent values chain */
	ck_assert_ptr_null(json_get(NULL, "a"));
	ck_assert_ptr_null(json_str(NULL));
	ck_assert_int_eq(json_num(NULL, &d), -1);
	ck_assert_uint_eq(json_len(NULL), 0);
	ck_assert_ptr_null(json_at(NULL, 0));
	json_wipe(NULL);
	json_free(NULL);
}
END_TEST

START_TEST(nested)
{
	struct json	*j, *o;
	char		*deep;
	double		 d;
	size_t		 i;

	j = parse("{\"user\":{\"id\":\"u1\",\"tags\":[[1],{\"k\":[true]}]},"
	    "\"a\":1,\"a\":2,\"A\":3}");
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(json_str(json_get(json_get(j, "user"), "id")), "u1");
	o = json_get(json_get(j, "user"), "tags");
	ck_assert_int_eq(json_type(o), JSON_ARRAY);
	ck_assert_uint_eq(json_len(json_at(o, 0)), 1);
	ck_assert_int_eq(json_type(json_at(json_get(json_at(o, 1), "k"), 0)),
	    JSON_TRUE);
	/* the first of duplicate names; names are case-sensitive */
	ck_assert_int_eq(json_num(json_get(j, "a"), &d), 0);
	ck_assert(d == 1);
	ck_assert_int_eq(json_num(json_get(j, "A"), &d), 0);
	ck_assert(d == 3);
	/* an object's length and elements are its members */
	ck_assert_uint_eq(json_len(j), 4);
	ck_assert_int_eq(json_num(json_at(j, 3), &d), 0);
	ck_assert(d == 3);
	json_free(j);
	/* cJSON's nesting limit (1000) holds */
	deep = malloc(2 * 2000 + 1);
	ck_assert_ptr_nonnull(deep);
	for (i = 0; i < 2000; i++) {
		deep[i] = '[';
		deep[2000 + i] = ']';
	}
	deep[4000] = '\0';
	ck_assert_ptr_null(parse(deep));
	memset(deep + 999, ']', 999);
	ck_assert_ptr_nonnull(j = json_parse(deep, 1998, NULL));
	json_free(j);
	free(deep);
}
END_TEST

START_TEST(huge_number)
{
	struct json	*j;
	double		 d;

	j = parse("{\"big\":1e400,\"neg\":-1e400,\"long\":"
	    "123456789012345678901234567890,\"tiny\":1e-400,\"i\":"
	    "9007199254740993}");
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(json_num(json_get(j, "big"), &d), 0);
	ck_assert(isinf(d) && d > 0);
	ck_assert_int_eq(json_num(json_get(j, "neg"), &d), 0);
	ck_assert(isinf(d) && d < 0);
	ck_assert_int_eq(json_num(json_get(j, "long"), &d), 0);
	ck_assert(d > 1.2e29 && d < 1.3e29);
	ck_assert_int_eq(json_num(json_get(j, "tiny"), &d), 0);
	ck_assert(d == 0);
	ck_assert_int_eq(json_num(json_get(j, "i"), &d), 0);
	ck_assert(d == 9007199254740992.0);	/* rounded to a double */
	json_free(j);
}
END_TEST

START_TEST(strings)
{
	struct json	*j, *s;
	const char	*p;

	j = parse("{\"t\":\"secret\",\"u\":\"\\u00e9\\n\","
	    "\"z\":\"a\\u0000b\"}");
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(json_str(json_get(j, "u")), "\xc3\xa9\n");
	/* a string ends at its first NUL */
	ck_assert_str_eq(json_str(json_get(j, "z")), "a");
	s = json_get(j, "t");
	p = json_str(s);
	json_wipe(s);
	ck_assert_uint_eq(p[0], 0);
	ck_assert_mem_eq(p, "\0\0\0\0\0\0", 6);
	json_wipe(json_get(j, "nothing"));
	json_free(j);
}
END_TEST

START_TEST(build)
{
	struct json	*o, *a, *r;
	char		*s;

	o = json_new(JSON_OBJECT);
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(json_add_null(o, "error"), 0);
	ck_assert_int_eq(json_add_str(o, "path", "a/\"b\""), 0);
	a = json_new(JSON_ARRAY);
	ck_assert_int_eq(json_push(a, json_new(JSON_NULL)), 0);
	ck_assert_int_eq(json_push(a, json_dup(o)), 0);
	ck_assert_int_eq(json_push(a, NULL), -1);
	ck_assert_ptr_null(json_dup(NULL));
	ck_assert_ptr_null(json_new(JSON_STRING));
	s = json_print(a);
	ck_assert_str_eq(s, "[null,{\"error\":null,\"path\":\"a/\\\"b\\\"\"}]");
	free(s);
	/* replace an element, then a member */
	ck_assert_int_eq(json_replace_at(a, 0, json_dup(o)), 0);
	ck_assert_int_eq(json_replace_at(a, 5, json_new(JSON_NULL)), -1);
	ck_assert_int_eq(json_replace(o, "path", a), 0);
	ck_assert_int_eq(json_replace(o, "nope", json_new(JSON_NULL)), -1);
	s = json_print(o);
	ck_assert_str_eq(s, "{\"error\":null,\"path\":[{\"error\":null,"
	    "\"path\":\"a/\\\"b\\\"\"},{\"error\":null,\"path\":"
	    "\"a/\\\"b\\\"\"}]}");
	free(s);
	json_free(o);
	/* a parsed document rewritten and printed back */
	r = parse("{ \"expiresIn\" : 60, \"paths\": [\"x\", 1, \"y\"] }");
	ck_assert_ptr_nonnull(r);
	a = json_new(JSON_ARRAY);
	ck_assert_int_eq(json_push(a, json_dup(json_at(json_get(r, "paths"),
	    1))), 0);
	ck_assert_int_eq(json_replace(r, "paths", a), 0);
	s = json_print(r);
	ck_assert_str_eq(s, "{\"expiresIn\":60,\"paths\":[1]}");
	free(s);
	json_free(r);
}
END_TEST

static Suite *
json_suite(void)
{
	Suite	*s = suite_create("json");
	TCase	*tc = tcase_create("json");

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, malformed);
	tcase_add_test(tc, trailing_and_length);
	tcase_add_test(tc, non_object);
	tcase_add_test(tc, nested);
	tcase_add_test(tc, huge_number);
	tcase_add_test(tc, strings);
	tcase_add_test(tc, build);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return ck_run(json_suite());
}
