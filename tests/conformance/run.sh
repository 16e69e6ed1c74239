#!/usr/bin/env bash
# tests/conformance/run.sh: supabase-js conformance through supagate.
#
# Builds nothing. Given a built supagate ($SUPAGATE_BIN, else ./supagate in
# the build directory), it starts the loopback stack in a temp dir, starts
# supagate in front of it (auth-mode anon, per-service upstreams), runs
# tests/conformance/run.mjs (supabase-js via supagate with a placeholder key
# vs. supabase-js on the stack gateway with the real anon key), writes the
# report to tests/conformance/report.txt (or $CONFORMANCE_REPORT), prints it,
# and stops supagate and the stack on exit. Exit status: 0 all pass, 1 any
# failure, 77 (automake SKIP) when node or the npm packages are missing.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRCDIR="$(cd "$HERE/../.." && pwd)"
BUILDDIR="${abs_top_builddir:-$PWD}"
SUPAGATE_BIN="${SUPAGATE_BIN:-$BUILDDIR/supagate}"
REPORT="${CONFORMANCE_REPORT:-$SRCDIR/tests/conformance/report.txt}"
NM="${SUPAGATE_NODE_MODULES:-$SRCDIR/node_modules}"
WAIT_SECONDS=15

skip() { echo "conformance: SKIP: $*" >&2; exit 77; }
die() { echo "conformance: $*" >&2; exit 1; }

[ -x "$SUPAGATE_BIN" ] || die "$SUPAGATE_BIN is missing (build first)"
command -v node >/dev/null || die "node is missing (run scripts/install-deps)"
[ -d "$NM/@supabase/supabase-js" ] && [ -d "$NM/ws" ] \
  || die "supabase-js or ws not installed in $NM (npm ci)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/supagate-conformance.XXXXXX")"
chmod 711 "$WORK"   # the stack runs postgres as its own user: it must reach $WORK/stack
STACK="$WORK/stack"
SG_PID=""

cleanup() {
  local rc=$?
  if [ -n "$SG_PID" ] && kill -0 "$SG_PID" 2>/dev/null; then
    kill -TERM "$SG_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SG_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SG_PID" 2>/dev/null || true
    wait "$SG_PID" 2>/dev/null || true
  fi
  "$SRCDIR/tests/stack/stack-down" "$STACK" >/dev/null 2>&1 || true
  if [ "$rc" -ne 0 ] && [ -f "$WORK/supagate.log" ]; then
    echo "---- last lines of supagate's log ----" >&2
    tail -n 20 "$WORK/supagate.log" >&2 || true
  fi
  if [ -n "${CONFORMANCE_KEEP:-}" ]; then
    echo "conformance: kept $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$SRCDIR/tests/stack/stack-up" "$STACK" >"$WORK/stack-up.log" 2>&1 \
  || { cat "$WORK/stack-up.log" >&2; die "stack-up failed"; }
# shellcheck disable=SC1091
. "$STACK/stack.env"

mkdir -m 700 "$WORK/state"
cat >"$WORK/supagate.conf" <<CONF
# written by tests/conformance/run.sh
listen 127.0.0.1:0
auth-mode anon
anon-key-file $ANON_KEY_FILE
rest-upstream $REST_URL
auth-upstream $AUTH_URL
storage-upstream $STORAGE_URL
functions-upstream $FUNCTIONS_URL
state-dir $WORK/state
CONF

"$SUPAGATE_BIN" -f "$WORK/supagate.conf" </dev/null >"$WORK/supagate.log" 2>&1 &
SG_PID=$!
PORT=""
for _ in $(seq $((WAIT_SECONDS * 10))); do
  PORT=$(sed -n 's/^supagate: listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$WORK/supagate.log" | head -n 1)
  [ -n "$PORT" ] && break
  kill -0 "$SG_PID" 2>/dev/null || { cat "$WORK/supagate.log" >&2; die "supagate exited during start-up"; }
  sleep 0.1
done
[ -n "$PORT" ] || die "supagate did not report its port within ${WAIT_SECONDS}s"

set +e
SUPAGATE_URL="http://127.0.0.1:$PORT" GATEWAY_URL="$GATEWAY_URL" \
  ANON_KEY_FILE="$ANON_KEY_FILE" SERVICE_KEY_FILE="$SERVICE_KEY_FILE" \
  JWT_SECRET_FILE="$JWT_SECRET_FILE" AUTH_URL="$AUTH_URL" STORAGE_URL="$STORAGE_URL" \
  STACK_DIR="$STACK" SUPAGATE_LOG="$WORK/supagate.log" CONFORMANCE_REPORT="$WORK/report.txt" \
  NODE_PATH="$NM" \
  node "$SRCDIR/tests/conformance/run.mjs" >"$WORK/run.out" 2>&1
rc=$?
set -e
if [ -s "$WORK/report.txt" ]; then
  { mkdir -p "$(dirname "$REPORT")" && cp "$WORK/report.txt" "$REPORT"; } 2>/dev/null || echo "conformance: cannot write $REPORT" >&2
  cat "$WORK/report.txt"
  # Anything run.mjs printed besides the report (warnings, stack traces).
  if ! cmp -s "$WORK/run.out" "$WORK/report.txt"; then
    grep -vxF -f "$WORK/report.txt" "$WORK/run.out" >&2 || true
  fi
else
  cat "$WORK/run.out" >&2
  die "run.mjs produced no report (exit $rc)"
fi
exit "$rc"
