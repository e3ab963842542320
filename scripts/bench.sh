#!/usr/bin/env bash
# Every benchmark, one after the other, each printing its table (see
# BENCHMARKS.md). Not part of the tests or CI.
#
#   scripts/bench.sh                  all of it (~25 min on 2 cores; wants an idle machine)
#   scripts/bench.sh --quick          small sizes, one run of each (~3 min)
#   scripts/bench.sh --only relay     one part: relay | size | browser
#   scripts/bench.sh -- --help        flags after `--` go to meshcast-bench
#
# 1. relay: the relay against the PeerJS server on 127.0.0.1 (bench/,
#    meshcast-bench). Builds both in release mode, installs the pinned PeerJS
#    server (bench/peerjs, npm ci), raises the open-files limit, and pins the
#    servers to CPU 0 and the generator to CPU 1 when there are two CPUs;
#    then what TLS costs the relay per connection (tls-cost).
# 2. size: the release bundle (trunk build --release), raw, gzip and brotli.
# 3. browser: call set-up in Chromium inside a network namespace
#    (end2end/bench/, via scripts/e2e.sh; needs root): page load to
#    interactive and to the first decoded frame over 20 viewer joins, each
#    step's p50/p95, and a 4-way mesh from cold.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

parts=(relay size browser)
quick=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=(--quick); shift ;;
    --only) parts=("$2"); shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) break ;;
  esac
done

echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(uname -sr)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min, before the run)"
echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
echo "tools:   $(rustc --version), node $(node --version)"

relay_bench() {
  echo; echo "# 1. Relay against the PeerJS server"
  cargo build --release --locked -p relay -p bench
  if [ ! -f bench/peerjs/node_modules/.package-lock.json ] ||
    [ bench/peerjs/package-lock.json -nt bench/peerjs/node_modules/.package-lock.json ]; then
    (cd bench/peerjs && npm ci --no-audit --no-fund)
  fi
  # 10k idle connections need as many descriptors in the server and in the
  # generator (separate processes, each under this limit).
  local want=20000 hard
  hard=$(ulimit -Hn)
  if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then want=$hard; fi
  ulimit -n "$want"
  local pin=() server_cpus=()
  if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    pin=(taskset -c 1)
    server_cpus=(--server-cpus 0)
  fi
  echo "pinning: ${pin[*]:-none} (generator), ${server_cpus[*]:-none} (servers)"
  "${pin[@]}" target/release/meshcast-bench "${server_cpus[@]}" "${quick[@]}" "$@"
  echo; echo "# 1b. What HTTPS costs the relay per connection (ws:// against wss://)"
  if [ "${#quick[@]}" -gt 0 ]; then
    "${pin[@]}" target/release/tls-cost --conns 500 --runs 1
  else
    "${pin[@]}" target/release/tls-cost --conns 2000 --runs 3
  fi
}

size_bench() {
  echo; echo "# 2. First load: the release bundle"
  command -v brotli >/dev/null || scripts/setup.sh --test
  trunk build --release >/dev/null
  scripts/size.sh
}

browser_bench() {
  echo; echo "# 3. Call set-up in the browser"
  scripts/setup.sh --test
  [ -f dist/index.html ] || trunk build --release >/dev/null
  cargo build --release --locked -p relay
  local runs=20
  [ "${#quick[@]}" = 0 ] || runs=5
  MESHCAST_BENCH_RUNS=$runs scripts/e2e.sh --config playwright.bench.config.ts
}

for part in "${parts[@]}"; do
  case "$part" in
    relay) relay_bench "$@" ;;
    size) size_bench ;;
    browser) browser_bench ;;
    *) echo "unknown part: $part (relay | size | browser)" >&2; exit 2 ;;
  esac
done
