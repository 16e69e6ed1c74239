# tests/session_e2e.mk: session mode through the whole daemon (issue 5):
# supagate processes in front of the Auth emulator and fakeup, a 401
# responder, or the real stack (supabase-js: tests/conformance/session.mjs,
# run by the case supabase_js).  Needs node and node_modules (npm ci), as
# tests/check_stack does.
if HAVE_CHECK
check_PROGRAMS += tests/check_session_e2e
TESTS += tests/check_session_e2e
endif
tests_check_session_e2e_SOURCES = tests/check_session_e2e.c $(HARNESS_SRC)
tests_check_session_e2e_CPPFLAGS = $(HARNESS_CPPFLAGS)
tests_check_session_e2e_CFLAGS = $(HARNESS_CFLAGS)
tests_check_session_e2e_LDADD = $(HARNESS_LIBS)

EXTRA_DIST += tests/conformance/session.mjs
