# tests/session.mk: the session module against the Auth emulator (in
# process), and "supagate login" plus the daemon (processes)
if HAVE_CHECK
check_PROGRAMS += tests/check_session
TESTS += tests/check_session
endif
tests_check_session_SOURCES = tests/check_session.c $(HARNESS_SRC)
tests_check_session_CPPFLAGS = $(HARNESS_CPPFLAGS)
tests_check_session_CFLAGS = $(HARNESS_CFLAGS)
tests_check_session_LDADD = $(HARNESS_LIBS)

# "supagate login" on a terminal (script(1) makes the pty)
TESTS += tests/login_tty.sh
dist_check_SCRIPTS += tests/login_tty.sh
