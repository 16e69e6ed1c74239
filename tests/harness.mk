# tests/harness.mk: the fake upstream, the test harness and the proxy
# scenario tests (Check + libcurl against a real supagate process).
#
# AM_TESTS_ENVIRONMENT is defined here, once; other fragments append to
# it with "+=" (keep every piece ending in ';').
AM_TESTS_ENVIRONMENT = \
	SUPAGATE_BIN=$(abs_top_builddir)/supagate; \
	FAKEUP_BIN=$(abs_top_builddir)/tests/harness/fakeup; \
	SUPAGATE_NODE_MODULES=`$(abs_top_srcdir)/tests/find-node-modules`; \
	export SUPAGATE_BIN FAKEUP_BIN SUPAGATE_NODE_MODULES;

EXTRA_DIST += tests/find-node-modules

HARNESS_SRC = tests/harness/harness.c tests/harness/harness.h \
	tests/harness/pattern.h
HARNESS_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/harness
HARNESS_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
HARNESS_LIBS = $(SUPAGATE_LIBS) $(CHECK_LIBS) $(CURL_LIBS) $(CJSON_LIBS) \
	$(SODIUM_LIBS)

if HAVE_CHECK
check_PROGRAMS += tests/harness/fakeup tests/check_harness \
	tests/check_proxy tests/check_stream tests/check_badinput
TESTS += tests/check_harness tests/check_proxy tests/check_stream \
	tests/check_badinput
endif

tests_harness_fakeup_SOURCES = tests/harness/fakeup.c tests/harness/pattern.h
tests_harness_fakeup_CPPFLAGS = $(HARNESS_CPPFLAGS)
tests_harness_fakeup_LDADD = $(MHD_LIBS) $(CJSON_LIBS)

tests_check_harness_SOURCES = tests/check_harness.c $(HARNESS_SRC)
tests_check_harness_CPPFLAGS = $(HARNESS_CPPFLAGS)
tests_check_harness_CFLAGS = $(HARNESS_CFLAGS)
tests_check_harness_LDADD = $(HARNESS_LIBS)

tests_check_proxy_SOURCES = tests/check_proxy.c $(HARNESS_SRC)
tests_check_proxy_CPPFLAGS = $(HARNESS_CPPFLAGS)
tests_check_proxy_CFLAGS = $(HARNESS_CFLAGS)
tests_check_proxy_LDADD = $(HARNESS_LIBS)

tests_check_stream_SOURCES = tests/check_stream.c $(HARNESS_SRC)
tests_check_stream_CPPFLAGS = $(HARNESS_CPPFLAGS)
tests_check_stream_CFLAGS = $(HARNESS_CFLAGS)
tests_check_stream_LDADD = $(HARNESS_LIBS)

tests_check_badinput_SOURCES = tests/check_badinput.c $(HARNESS_SRC)
tests_check_badinput_CPPFLAGS = $(HARNESS_CPPFLAGS)
tests_check_badinput_CFLAGS = $(HARNESS_CFLAGS)
tests_check_badinput_LDADD = $(HARNESS_LIBS)

if HAVE_CHECK
check_PROGRAMS += tests/check_daemon
TESTS += tests/check_daemon
endif
tests_check_daemon_SOURCES = tests/check_daemon.c $(HARNESS_SRC)
tests_check_daemon_CPPFLAGS = $(HARNESS_CPPFLAGS)
tests_check_daemon_CFLAGS = $(HARNESS_CFLAGS)
tests_check_daemon_LDADD = $(HARNESS_LIBS)
