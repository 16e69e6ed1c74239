# tests/storage.mk: Storage through supagate (issue 6), included by
# Makefile.am.  tests/check_storage starts the loopback stack (stack-up into
# a temp dir) and one supagate itself: 1 GiB up and down with bounded
# memory, ranges, a client hanging up, a TUS upload resumed through
# supagate, the signed-URL broker, and supabase-js (tests/storage-js.mjs,
# run by the binary with node and the source tree's node_modules).

if HAVE_CHECK
check_PROGRAMS += tests/check_storage
TESTS += tests/check_storage
endif

tests_check_storage_SOURCES = tests/check_storage.c $(HARNESS_SRC)
tests_check_storage_CPPFLAGS = $(HARNESS_CPPFLAGS)
tests_check_storage_CFLAGS = $(HARNESS_CFLAGS)
tests_check_storage_LDADD = $(HARNESS_LIBS)

EXTRA_DIST += tests/storage-js.mjs
