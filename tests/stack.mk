# tests/stack.mk: scenario tests against the real loopback stack
# (PostgreSQL + PostgREST + Deno functions, tests/stack/), included by
# Makefile.am.  tests/check_stack starts the stack itself (stack-up into a
# temp dir) and stops it at the end; it needs node_modules (npm ci) in the
# source tree and fails, rather than skips, without it.

AM_TESTS_ENVIRONMENT += \
	SUPAGATE_SRCDIR=$(abs_top_srcdir); \
	export SUPAGATE_SRCDIR;

if HAVE_CHECK
check_PROGRAMS += tests/check_stack
TESTS += tests/check_stack
endif

tests_check_stack_SOURCES = tests/check_stack.c $(HARNESS_SRC)
tests_check_stack_CPPFLAGS = $(HARNESS_CPPFLAGS)
tests_check_stack_CFLAGS = $(HARNESS_CFLAGS)
tests_check_stack_LDADD = $(SUPAGATE_LIBS) $(CHECK_LIBS) $(CURL_LIBS) \
	$(CJSON_LIBS) $(SODIUM_LIBS)

EXTRA_DIST += \
	tests/stack/stack-up \
	tests/stack/stack-down \
	tests/stack/stack-reset \
	tests/stack/selftest \
	tests/stack/schema.sql \
	tests/stack/freeport.mjs \
	tests/stack/gateway.mjs \
	tests/stack/mkjwt.mjs \
	tests/stack/smoke-js.mjs \
	tests/stack/functions/main.ts \
	tests/stack/functions/binary/index.ts \
	tests/stack/functions/echo/index.ts \
	tests/stack/functions/hello/index.ts \
	tests/stack/functions/public/index.ts \
	tests/stack/functions/sink/index.ts \
	tests/stack/functions/slow/index.ts \
	tests/stack/functions/sse/index.ts \
	tests/stack/functions/status/index.ts \
	tests/stack/functions/text/index.ts
