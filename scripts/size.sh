#!/usr/bin/env bash
# Prints the release bundle's sizes (raw, gzip -9, brotli -q 11 if installed).
set -euo pipefail
cd "$(dirname "$0")/.."
total_raw=0; total_gz=0; total_br=0
printf '%-42s %10s %10s %10s\n' file raw gzip brotli
for f in dist/*.wasm dist/*.js dist/*.css; do
  raw=$(stat -c%s "$f"); gz=$(gzip -9c "$f" | wc -c)
  if command -v brotli >/dev/null; then
    br=$(brotli -c -q 11 "$f" | wc -c); total_br=$((total_br + br))
  else
    br=-; total_br=-
  fi
  printf '%-42s %10s %10s %10s\n' "$(basename "$f")" "$raw" "$gz" "$br"
  total_raw=$((total_raw + raw)); total_gz=$((total_gz + gz))
done
printf '%-42s %10s %10s %10s\n' total "$total_raw" "$total_gz" "$total_br"
