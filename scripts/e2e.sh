#!/usr/bin/env bash
# End-to-end tests: the relay serving the built app, and Playwright driving
# Debian's Chromium (fake camera and mic) against it, all inside a network
# namespace of their own that has only `lo`, so no test traffic can reach a
# non-loopback address. Needs root (ip netns), the built app in dist/
# (`trunk build --release`) and `scripts/setup.sh --test`.
#
#   scripts/e2e.sh                      every test
#   scripts/e2e.sh -g "late joiner"     arguments go to `playwright test`
#
# Environment:
#   MESHCAST_E2E_RELAY_ARGS   extra relay flags, e.g. "--max-room-peers 4"
#   MESHCAST_RELAY_BIN        relay binary (default target/release/meshcast-relay,
#                             built with `cargo build --release -p relay` if missing)
#   MESHCAST_DIST             the built app (default dist)
#   CHROMIUM                  browser binary (default /usr/lib/chromium/chromium)
# The relay's log goes to end2end/artifacts/relay.log; screenshots land there too.
# Exit code: Playwright's.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

log() { printf '\033[1me2e:\033[0m %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }

[ "$(id -u)" = 0 ] || die "needs root (it creates a network namespace)"
command -v ip >/dev/null || die "ip (iproute2) missing: scripts/setup.sh --test"
command -v curl >/dev/null || die "curl missing"
[ -x "${CHROMIUM:-/usr/lib/chromium/chromium}" ] || die "no Chromium at ${CHROMIUM:-/usr/lib/chromium/chromium}: scripts/setup.sh --test"

relay_bin=${MESHCAST_RELAY_BIN:-target/release/meshcast-relay}
dist=${MESHCAST_DIST:-dist}
[ -f "$dist/index.html" ] || die "no $dist/index.html: build the app first (trunk build --release)"
if [ ! -x "$relay_bin" ]; then
  [ -z "${MESHCAST_RELAY_BIN:-}" ] || die "MESHCAST_RELAY_BIN=$relay_bin is not an executable"
  log "building the relay (cargo build --release -p relay)"
  cargo build --release -p relay
fi
if [ ! -d end2end/node_modules/@playwright/test ]; then
  log "installing Playwright (npm ci; no browser download)"
  (cd end2end && npm ci --no-audit --no-fund)
fi
read -r -a relay_extra <<<"${MESHCAST_E2E_RELAY_ARGS:-}"

ns="meshcast-e2e-$$"
relay_pid=""
pw_pid=""
ns_made=0

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$pw_pid" ] && kill -0 "$pw_pid" 2>/dev/null; then
    log "stopping Playwright (pid $pw_pid)"
    kill -TERM "$pw_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pw_pid" 2>/dev/null || break; sleep 0.1; done
  fi
  if [ -n "$relay_pid" ] && kill -0 "$relay_pid" 2>/dev/null; then
    kill -TERM "$relay_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$relay_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$relay_pid" 2>/dev/null || true
    wait "$relay_pid" 2>/dev/null || true
  fi
  # Namespaces a test made inside this run's (named "$ns-<label>", see
  # end2end/tests/netns.ts) and left behind: their processes are this run's.
  local child left
  for child in $(ip netns list 2>/dev/null | awk -v p="$ns-" 'index($1, p) == 1 {print $1}'); do
    left=$(ip netns pids "$child" 2>/dev/null || true)
    if [ -n "$left" ]; then
      log "stopping leftover processes in $child: $(echo $left)"
      kill -KILL $left 2>/dev/null || true
    fi
    ip netns del "$child" 2>/dev/null || log "could not delete namespace $child"
    rm -rf "/etc/netns/$child"
  done
  if [ "$ns_made" = 1 ]; then
    # Whatever this run started in its namespace and is still there (a
    # browser Playwright could not close, say): only this run's processes
    # live in it.
    local left
    left=$(ip netns pids "$ns" 2>/dev/null || true)
    if [ -n "$left" ]; then
      log "stopping leftover processes in $ns: $(echo $left)"
      kill -KILL $left 2>/dev/null || true
    fi
    ip netns del "$ns" 2>/dev/null || log "could not delete namespace $ns"
  fi
  rm -rf "/etc/netns/$ns"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Namespaces left by earlier runs that were killed outright (SIGKILL skips
# the trap): delete those whose script is gone and that hold no process.
for old in $(ip netns list 2>/dev/null | awk '/^meshcast-e2e-[0-9]+/{print $1}'); do
  pid=${old#meshcast-e2e-}
  pid=${pid%%-*} # a test's own namespace: meshcast-e2e-PID-label
  if ! kill -0 "$pid" 2>/dev/null && [ -z "$(ip netns pids "$old" 2>/dev/null)" ]; then
    log "deleting stale namespace $old"
    ip netns del "$old" 2>/dev/null || true
    rm -rf "/etc/netns/$old"
  fi
done

log "namespace $ns (only lo)"
ip netns add "$ns"
ns_made=1
ip netns exec "$ns" ip link set lo up
mkdir -p "/etc/netns/$ns"
echo 'nameserver 127.0.0.1' >"/etc/netns/$ns/resolv.conf"
in_ns() { ip netns exec "$ns" "$@"; }

mkdir -p end2end/artifacts
relay_log=$root/end2end/artifacts/relay.log
log "relay: $relay_bin --listen 127.0.0.1:3000 --dist $dist --stun none ${relay_extra[*]:-} (log: end2end/artifacts/relay.log)"
# Not through in_ns: a backgrounded function would be a subshell, and $! its
# PID. `ip netns exec` execs the command, so $! is the relay itself.
ip netns exec "$ns" "$relay_bin" --listen 127.0.0.1:3000 --dist "$dist" --stun none "${relay_extra[@]}" >"$relay_log" 2>&1 &
relay_pid=$!

for i in $(seq 100); do
  if in_ns curl -sf --max-time 1 -o /dev/null http://127.0.0.1:3000/healthz; then break; fi
  if ! kill -0 "$relay_pid" 2>/dev/null; then
    tail -n 30 "$relay_log" >&2 || true
    die "the relay exited before answering /healthz"
  fi
  [ "$i" -lt 100 ] || { tail -n 30 "$relay_log" >&2 || true; die "the relay did not answer /healthz within 20 s"; }
  sleep 0.2
done
log "relay is up; running playwright test $*"

# In the background and waited for, so that a signal to this script runs the
# cleanup at once instead of after the whole run (bash defers traps while a
# foreground child runs). Its PID is Playwright's own node process.
# MESHCAST_E2E_NS tells tests the namespace's name: a test that needs a
# network of its own makes namespaces named "$ns-<label>" (cleaned up above).
(cd end2end && exec ip netns exec "$ns" env MESHCAST_URL=http://127.0.0.1:3000 MESHCAST_E2E_NS="$ns" node_modules/.bin/playwright test "$@") &
pw_pid=$!
set +e
wait "$pw_pid"
rc=$?
set -e
pw_pid=""
log "playwright exited with $rc"
# One plain closing line, "e2e: N passed, N failed", for CI's log reader.
results=end2end/test-results/results.json
if [ -f "$results" ] && [ "$results" -nt "$relay_log" ]; then
  node -e '
    const s = require(process.argv[1]).stats;
    const failed = s.unexpected + s.flaky;
    console.log(`e2e: ${s.expected} passed, ${failed} failed` + (s.skipped ? `, ${s.skipped} skipped` : ""));
  ' "$root/$results" || true
fi
exit "$rc"
