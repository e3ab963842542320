#!/usr/bin/env bash
# Runs every check and test on a fresh machine (this is what CI runs):
# set-up, formatting, clippy (host and wasm32), unit and integration tests,
# the release build, the deploy recipes, and the browser end-to-end suite in
# a network namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
export PATH="$HOME/.cargo/bin:$PATH"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "cargo fetch"
cargo fetch --locked
step "format"
cargo fmt --all --check
step "clippy (host)"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "clippy (wasm32)"
cargo clippy -p frontend -p protocol --target wasm32-unknown-unknown --all-targets --locked -- -D warnings
step "unit and integration tests"
cargo test --workspace --locked
step "release build (app and relay)"
trunk build --release
cargo build --release --locked -p relay
step "deploy recipes (systemd unit, container image)"
deploy/test.sh
step "bundle size"
scripts/size.sh
step "browser end-to-end tests"
scripts/e2e.sh
