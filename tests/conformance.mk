# tests/conformance.mk: the supabase-js conformance suite (tests/conformance/),
# included by Makefile.am. run.sh starts the loopback stack and supagate
# ($SUPAGATE_BIN, exported by tests/harness.mk) itself, runs run.mjs with
# supabase-js from the source tree's node_modules, and stops both; it skips
# (77) when node or the npm packages are missing. The report lands in
# tests/conformance/report.txt of the build tree.

AM_TESTS_ENVIRONMENT += \
	CONFORMANCE_REPORT=$(abs_top_builddir)/tests/conformance/report.txt; \
	export CONFORMANCE_REPORT;

TESTS += tests/conformance/run.sh
dist_check_SCRIPTS += tests/conformance/run.sh

EXTRA_DIST += \
	tests/conformance/run.mjs \
	tests/conformance/lib.mjs \
	tests/conformance/ops-rest.mjs \
	tests/conformance/ops-auth.mjs \
	tests/conformance/ops-functions.mjs \
	tests/conformance/ops-storage.mjs

CLEANFILES += tests/conformance/report.txt
