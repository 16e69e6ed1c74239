# tests/store.mk: unit tests for src/store.c (included by Makefile.am)
if HAVE_CHECK
check_PROGRAMS += tests/check_store
TESTS += tests/check_store
tests_check_store_SOURCES = tests/check_store.c
tests_check_store_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_store_LDADD = $(SUPAGATE_LIBS) $(CHECK_LIBS)
endif
