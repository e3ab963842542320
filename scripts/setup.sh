#!/usr/bin/env bash
# Idempotent set-up: installs only what this machine lacks.
#   scripts/setup.sh          build tools (wasm target, trunk, wasm-bindgen-cli, wasm-opt)
#   scripts/setup.sh --test   also the test tools (Chromium, chromedriver, coturn, Playwright)
# Trunk must never download anything itself (see Trunk.toml: offline = true),
# so every tool it uses is installed here at the exact version it expects.
set -euo pipefail
cd "$(dirname "$0")/.."

TRUNK_VERSION=0.22.1
BINARYEN_VERSION=132.0.0
# wasm-bindgen-cli must equal the wasm-bindgen library in Cargo.lock exactly.
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/,""); print; exit}' Cargo.lock)

with_tests=0
[ "${1:-}" = "--test" ] && with_tests=1

log() { printf '\033[1msetup:\033[0m %s\n' "$*"; }
export PATH="$HOME/.cargo/bin:$PATH"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi
for c in rustfmt clippy; do
  rustup component list --installed | grep -q "^$c" || rustup component add "$c"
done

if ! trunk --version 2>/dev/null | grep -q " $TRUNK_VERSION"; then
  log "installing trunk $TRUNK_VERSION (takes ~8 min)"
  # trunk 0.22 declares a newer rust-version than it needs.
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install trunk --version "$TRUNK_VERSION" --locked --ignore-rust-version
fi

if ! wasm-bindgen --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION"; then
  log "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (takes ~3 min)"
  # --locked fails for this version: its lockfile pins a crate the registry lacks.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

if ! wasm-opt --version 2>/dev/null | grep -q "version ${BINARYEN_VERSION%%.*}"; then
  log "installing wasm-opt (binaryen $BINARYEN_VERSION from npm)"
  # Not Debian's binaryen 108: its output breaks at runtime in current Chromium.
  npm install -g "binaryen@$BINARYEN_VERSION"
fi

apt_install() {
  local SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  log "installing $*"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@"
}

# A release build precompresses its assets (scripts/precompress.sh):
# brotli, and zopfli for gzip. Without them it still builds (gzip -9 only).
build_missing=()
command -v brotli >/dev/null || build_missing+=(brotli)
command -v zopfli >/dev/null || build_missing+=(zopfli)
if [ "${#build_missing[@]}" -gt 0 ]; then
  if command -v apt-get >/dev/null; then
    apt_install "${build_missing[@]}"
  else
    log "no apt-get: install ${build_missing[*]} yourself for the smallest precompressed assets"
  fi
fi

if [ "$with_tests" = 1 ]; then
  missing=()
  [ -x /usr/lib/chromium/chromium ] || missing+=(chromium)
  command -v chromedriver >/dev/null || missing+=(chromium-driver)
  command -v turnserver >/dev/null || missing+=(coturn)
  # relay/tests/janus.rs (and the coming --sfu janus): Janus with VideoRoom.
  [ -x /usr/bin/janus ] || missing+=(janus)
  command -v ip >/dev/null || missing+=(iproute2)
  command -v iptables >/dev/null || missing+=(iptables)
  command -v curl >/dev/null || missing+=(curl)
  # deploy/test.sh: the systemd unit and the container image.
  command -v systemd-analyze >/dev/null || missing+=(systemd)
  command -v podman >/dev/null || missing+=(podman)
  [ -x /bin/kill ] || missing+=(procps)
  if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
  fi
  if [ ! -d end2end/node_modules/@playwright/test ]; then
    log "installing Playwright (no browsers: it drives Debian's Chromium)"
    (cd end2end && npm ci --no-audit --no-fund)
  fi
fi
log "ready"
