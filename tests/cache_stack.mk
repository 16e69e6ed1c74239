# tests/cache_stack.mk: scenario tests of the read cache against the real
# loopback stack (PostgreSQL with RLS + PostgREST + the Auth emulator),
# included by Makefile.am.  tests/check_cache_stack starts its own stack
# (stack-up into a temp dir) and a counting relay in front of PostgREST,
# and stops them at the end; like check_stack it needs node_modules
# (npm ci) and fails, rather than skips, without it.  SUPAGATE_SRCDIR
# comes from tests/stack.mk.

if HAVE_CHECK
check_PROGRAMS += tests/check_cache_stack
TESTS += tests/check_cache_stack
endif

tests_check_cache_stack_SOURCES = tests/check_cache_stack.c $(HARNESS_SRC)
tests_check_cache_stack_CPPFLAGS = $(HARNESS_CPPFLAGS)
tests_check_cache_stack_CFLAGS = $(HARNESS_CFLAGS)
tests_check_cache_stack_LDADD = $(HARNESS_LIBS)
