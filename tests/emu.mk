# tests/emu.mk: the Auth and Storage emulators and their contract tests
TESTS += tests/emu/run-tests
EXTRA_DIST += tests/emu/run-tests \
	tests/emu/README.md \
	tests/emu/auth.mjs \
	tests/emu/lib/common.mjs \
	tests/emu/lib/multipart.mjs \
	tests/emu/lib/testutil.mjs \
	tests/emu/lib/totp.mjs \
	tests/emu/storage.mjs \
	tests/emu/test/auth.test.mjs \
	tests/emu/test/multipart.test.mjs \
	tests/emu/test/storage.test.mjs \
	tests/emu/test/supabase-js.test.mjs \
	tests/emu/test/tus.test.mjs
