#!/usr/bin/env bash
# Builds the container image `meshcast-relay` (podman, or buildah): a
# statically linked relay (glibc's static libc, `+crt-static`) and the app
# from dist/ (run `trunk build --release` first) on `FROM scratch`.
#   deploy/container/build.sh [TAG]
set -euo pipefail
cd "$(dirname "$0")/../.."
tag=${1:-meshcast-relay}
[ -f dist/index.html ] || { echo "no dist/index.html: run trunk build --release first" >&2; exit 2; }
target=x86_64-unknown-linux-gnu
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$target" -p relay
bin=target/$target/release/meshcast-relay
# Static: no interpreter, no shared libraries.
if ldd "$bin" 2>/dev/null | grep -q '=>'; then
  echo "$bin is not static" >&2
  exit 1
fi
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$bin" "$ctx/meshcast-relay"
strip "$ctx/meshcast-relay"
cp -r dist "$ctx/dist"
# /state, owned by the image's user, so a volume mounted there is writable.
mkdir "$ctx/state"
if command -v podman >/dev/null; then
  podman build --quiet -t "$tag" -f deploy/container/Containerfile "$ctx"
else
  buildah bud --quiet -t "$tag" -f deploy/container/Containerfile "$ctx"
fi
