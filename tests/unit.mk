# tests/unit.mk: unit tests for conf, evloop, json, jwt and jwk, and the
# doc-drift test
if HAVE_CHECK
check_PROGRAMS += tests/check_conf tests/check_evloop tests/check_json \
	tests/check_jwt tests/check_jwk
TESTS += tests/check_conf tests/check_evloop tests/check_json \
	tests/check_jwt tests/check_jwk

tests_check_conf_SOURCES = tests/check_conf.c
tests_check_conf_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_conf_LDADD = $(SUPAGATE_LIBS) $(CHECK_LIBS)

tests_check_evloop_SOURCES = tests/check_evloop.c
tests_check_evloop_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_evloop_LDADD = $(SUPAGATE_LIBS) $(CHECK_LIBS)

tests_check_json_SOURCES = tests/check_json.c
tests_check_json_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_json_LDADD = $(SUPAGATE_LIBS) $(CHECK_LIBS)

tests_check_jwt_SOURCES = tests/check_jwt.c
tests_check_jwt_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_jwt_LDADD = $(SUPAGATE_LIBS) $(CHECK_LIBS)

tests_check_jwk_SOURCES = tests/check_jwk.c tests/data/jwks/vectors.h
tests_check_jwk_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_jwk_LDADD = $(SUPAGATE_LIBS) $(CHECK_LIBS)
endif

EXTRA_DIST += tests/ck_run.h

dist_check_SCRIPTS += tests/check_docs.sh
TESTS += tests/check_docs.sh
EXTRA_DIST += tests/data/jwks/gen-jwks.mjs \
	tests/data/conf/good-minimal.conf \
	tests/data/conf/good-full.conf \
	tests/data/conf/good-overrides.conf \
	tests/data/conf/bad-unknown.conf \
	tests/data/conf/bad-duplicate.conf \
	tests/data/conf/bad-quote.conf \
	tests/data/conf/bad-listen.conf \
	tests/data/conf/bad-session.conf \
	tests/data/conf/bad-size.conf
