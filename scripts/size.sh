#!/usr/bin/env bash
# Prints the release bundle's sizes: raw, gzip -9, and what the relay ships
# (the .gz and .br files scripts/precompress.sh makes at build time). The
# first-load budget is wasm + js as shipped gzip (what a browser without
# brotli downloads); browsers with brotli download the .br column.
set -euo pipefail
cd "$(dirname "$0")/.."
printf '%-40s %9s %9s %9s %9s\n' file raw gzip-9 .gz .br
sum() { [ -f "$1" ] && stat -c%s "$1" || echo 0; }
t_raw=0; t_gz9=0; t_gz=0; t_br=0; b_gz=0; b_br=0
for f in dist/*.wasm dist/*.js dist/*.css; do
  raw=$(stat -c%s "$f"); gz9=$(gzip -9c "$f" | wc -c); gz=$(sum "$f.gz"); br=$(sum "$f.br")
  printf '%-40s %9s %9s %9s %9s\n' "$(basename "$f")" "$raw" "$gz9" "$gz" "$br"
  t_raw=$((t_raw + raw)); t_gz9=$((t_gz9 + gz9)); t_gz=$((t_gz + gz)); t_br=$((t_br + br))
  case "$f" in *.css) ;; *) b_gz=$((b_gz + gz)); b_br=$((b_br + br)) ;; esac
done
printf '%-40s %9s %9s %9s %9s\n' total "$t_raw" "$t_gz9" "$t_gz" "$t_br"
[ "$b_gz" -gt 0 ] || { echo "no .gz files in dist/: build with trunk build --release (scripts/precompress.sh)" >&2; exit 1; }
echo "first load (wasm + js): $b_gz B shipped gzip (budget 200000), $b_br B brotli"
