#!/usr/bin/env bash
# Writes NAME.br (brotli -q 11) and NAME.gz (zopfli, or gzip -9 without it)
# next to every asset of a release build, once, so the relay serves them as
# they are instead of compressing per request (relay/src/lib.rs).
#   scripts/precompress.sh DIR     (Trunk runs it as a post_build hook)
set -euo pipefail
dir=${1:-${TRUNK_STAGING_DIR:-}}
[ -n "$dir" ] || { echo "usage: $0 DIR" >&2; exit 2; }
# Only release builds: `trunk serve` stays fast.
[ -n "${TRUNK_PROFILE:-}" ] && [ "$TRUNK_PROFILE" != release ] && exit 0
warn() { printf 'precompress: %s\n' "$*" >&2; }
command -v brotli >/dev/null || warn "no brotli (scripts/setup.sh installs it): no .br files"
command -v zopfli >/dev/null || warn "no zopfli (scripts/setup.sh installs it): .gz files from gzip -9"
shopt -s nullglob
for f in "$dir"/*.wasm "$dir"/*.js "$dir"/*.css "$dir"/*.html; do
  if command -v brotli >/dev/null; then brotli -f -q 11 -o "$f.br" "$f"; fi
  if command -v zopfli >/dev/null; then zopfli -c "$f" >"$f.gz"; else gzip -9 -n -c "$f" >"$f.gz"; fi
done
