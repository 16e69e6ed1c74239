# tests/cache.mk: unit tests for src/cache.c (included by Makefile.am)
if HAVE_CHECK
check_PROGRAMS += tests/check_cache
TESTS += tests/check_cache
tests_check_cache_SOURCES = tests/check_cache.c
tests_check_cache_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_cache_LDADD = $(SUPAGATE_LIBS) $(CHECK_LIBS)
endif

# the in-memory set of hot entries (src/hot.c)
if HAVE_CHECK
check_PROGRAMS += tests/check_hot
TESTS += tests/check_hot
tests_check_hot_SOURCES = tests/check_hot.c
tests_check_hot_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_hot_LDADD = $(SUPAGATE_LIBS) $(CHECK_LIBS)
endif
