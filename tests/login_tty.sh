#!/bin/sh
# login_tty: "supagate login" on a terminal (a pty made by script(1)):
# it prompts, does not echo the password, signs in through the Auth
# emulator and stores the session encrypted; the password is never shown.
set -eu

SRC="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${SUPAGATE_BIN:-$SRC/supagate}"
T="$(mktemp -d "${TMPDIR:-/tmp}/sg-login-tty.XXXXXX")"
EMU=""
cleanup() {
	[ -n "$EMU" ] && kill "$EMU" 2>/dev/null && wait "$EMU" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "login_tty: FAIL: $*" >&2; [ -f "$T/out" ] && cat "$T/out" >&2; exit 1; }

command -v script >/dev/null || fail "script(1) is missing (bsdutils)"
command -v node >/dev/null || fail "node is missing"
umask 077
node "$SRC/tests/stack/mkjwt.mjs" secret > "$T/secret"
node "$SRC/tests/stack/mkjwt.mjs" sign --secret-file "$T/secret" --role anon \
    > "$T/anon"
node "$SRC/tests/emu/auth.mjs" --host 127.0.0.1 --port 0 \
    --port-file "$T/port" --jwt-secret-file "$T/secret" > "$T/emu.log" 2>&1 &
EMU=$!
i=0
while [ ! -s "$T/port" ]; do
	i=$((i + 1))
	[ $i -le 200 ] || fail "the Auth emulator did not start"
	sleep 0.05
done
AUTH="http://127.0.0.1:$(cat "$T/port")"
PW="tty-secret-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
curl -fsS -X POST "$AUTH/_emu/users" -H 'Content-Type: application/json' \
    -d "{\"email\":\"tty@example.com\",\"password\":\"$PW\"}" > /dev/null
cat > "$T/supagate.conf" <<CONF
listen 127.0.0.1:0
auth-upstream $AUTH
rest-upstream $AUTH
anon-key-file $T/anon
auth-mode session
state-dir $T/state
CONF

# the answers arrive on the terminal after the prompts
rc=0
{ sleep 1; printf 'tty@example.com\n'; sleep 1; printf '%s\n' "$PW"; sleep 2; } |
    script -qec "'$BIN' login -f '$T/supagate.conf'" /dev/null > "$T/out" 2>&1 ||
    rc=$?
[ "$rc" -eq 0 ] || fail "login exited $rc"
grep -q 'Email' "$T/out" || fail "no email prompt"
grep -q 'Password:' "$T/out" || fail "no password prompt"
if grep -q "$PW" "$T/out"; then fail "the password was echoed"; fi
grep -q 'signed in' "$T/out" || fail "not signed in"
[ -s "$T/state/session" ] || fail "no stored session"
if grep -q "$PW" "$T/state/session"; then fail "the password is stored"; fi
logins=$(curl -fsS "$AUTH/_emu/state" | node -e \
    'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{console.log(JSON.parse(s).password_grants)})')
[ "$logins" = 1 ] || fail "$logins password sign-ins, want 1"
echo "login_tty: ok"
