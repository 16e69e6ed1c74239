# tests/gate.mk: unit tests for src/gate.c (included by Makefile.am);
# the fuzz drivers in tests/fuzz are built by tests/fuzz/run, not by make
if HAVE_CHECK
check_PROGRAMS += tests/check_gate
TESTS += tests/check_gate
tests_check_gate_SOURCES = tests/check_gate.c
tests_check_gate_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_gate_LDADD = $(SUPAGATE_LIBS) $(CHECK_LIBS)
endif
