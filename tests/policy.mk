# tests/policy.mk: unit tests for src/policy.c (included by Makefile.am)
if HAVE_CHECK
check_PROGRAMS += tests/check_policy
TESTS += tests/check_policy
tests_check_policy_SOURCES = tests/check_policy.c
tests_check_policy_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_policy_LDADD = $(SUPAGATE_LIBS) $(CHECK_LIBS)
endif
