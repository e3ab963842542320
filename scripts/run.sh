#!/usr/bin/env bash
# Runs meshcast on a fresh machine: installs the build tools if missing,
# builds the app (release), and starts the relay serving it.
#   scripts/run.sh                      -> http://127.0.0.1:3000
#   scripts/run.sh --listen 0.0.0.0:3000 --turn-url ... --turn-secret ...
# Extra arguments go to the relay (see `meshcast-relay --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo fetch --locked
trunk build --release
cargo build --release --locked -p relay
exec target/release/meshcast-relay --dist dist "$@"
