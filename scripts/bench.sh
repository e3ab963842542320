#!/usr/bin/env bash
# Benchmarks the relay against the PeerJS server, both on 127.0.0.1, and
# prints one table (see BENCHMARKS.md). Not part of the tests or CI.
#
#   scripts/bench.sh              # the full run (~12 min on 2 cores)
#   scripts/bench.sh --quick      # small sizes, one run (~1 min)
#   scripts/bench.sh --help       # every knob (runs, rates, sizes, servers)
#
# Builds the relay and the generator in release mode, installs the pinned
# PeerJS server (bench/peerjs, npm ci), raises the open-files limit, and pins
# the servers to CPU 0 and the generator to CPU 1 when there are two CPUs.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

cargo build --release --locked -p relay -p bench
if [ ! -f bench/peerjs/node_modules/.package-lock.json ] ||
  [ bench/peerjs/package-lock.json -nt bench/peerjs/node_modules/.package-lock.json ]; then
  (cd bench/peerjs && npm ci --no-audit --no-fund)
fi

# 10k idle connections need as many descriptors in the server and in the
# generator (separate processes, each under this limit).
want=20000
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then want=$hard; fi
ulimit -n "$want"

pin=()
server_cpus=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  pin=(taskset -c 1)
  server_cpus=(--server-cpus 0)
fi

echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(uname -sr)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min, before the run)"
echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
echo "tools:   $(rustc --version), node $(node --version)"
echo "pinning: ${pin[*]:-none} (generator), ${server_cpus[*]:-none} (servers)"
exec "${pin[@]}" target/release/meshcast-bench "${server_cpus[@]}" "$@"
