#!/usr/bin/env bash
# Shrinks the page's module in place with binaryen's wasm-opt (called by web/build.sh).
#
#   bash web/wasm-opt.sh www/pkg/mrisr_web_bg.wasm
#
# Which wasm-opt: $WASM_OPT if set, else `wasm-opt` on PATH if it is binaryen 116 or newer, else
# binaryen from npm (web/package.json, installed into web/node_modules with `npm ci`).
# Older binaryen breaks the page: 108 (Debian 12's) has no externref, and writes the export of
# wasm-bindgen's externref table as the function table, which the page fails on at start.
# Without a usable wasm-opt the module is left as it is, with a note; WASM_OPT_REQUIRED=1 (the
# Pages workflow) makes that an error.
#
# -O1: most of the size (about -22 % raw, -3 % gzip) for a fraction of -O3's or -Oz's time, which
# shrink the raw module more but not the gzip-compressed one (BENCHMARKS.md, "The page's weight").
set -euo pipefail
web="$(cd "$(dirname "$0")" && pwd)"
wasm="$1"
min_version=116

skip() {
  if [ -n "${WASM_OPT_REQUIRED:-}" ]; then echo "web/wasm-opt.sh: $1" >&2; exit 1; fi
  echo "web/wasm-opt.sh: NOTE: $1; the module is left unoptimised (larger, works the same)" >&2
  exit 0
}
version() { "$@" --version 2>/dev/null | sed -n 's/^wasm-opt version \([0-9]*\).*/\1/p'; }

opt=()
if [ -n "${WASM_OPT:-}" ]; then
  opt=("$WASM_OPT")
elif [ "$(version wasm-opt)" -ge "$min_version" ] 2>/dev/null; then
  opt=(wasm-opt)
else
  npm_opt="$web/node_modules/.bin/wasm-opt"
  if [ ! -x "$npm_opt" ]; then
    command -v npm >/dev/null || skip "no binaryen $min_version+ wasm-opt on PATH and no npm to install it"
    (cd "$web" && npm ci --no-audit --no-fund --silent) || skip "'npm ci' in web/ (binaryen) failed"
  fi
  opt=("$npm_opt")
fi
have="$(version "${opt[@]}")"
[ "${have:-0}" -ge "$min_version" ] 2>/dev/null || skip "${opt[*]} is binaryen '${have:-?}', $min_version or newer is needed"

# The features rustc's wasm32 target emits (with +simd128 from .cargo/config.toml). Named so that
# no binaryen version assumes fewer (and rejects the module) or more (and emits what browsers lack).
features=(--enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext
  --enable-multivalue --enable-reference-types --enable-mutable-globals)
before=$(stat -c %s "$wasm")
t0=$(date +%s)
"${opt[@]}" -O1 "${features[@]}" --strip-producers "$wasm" -o "$wasm.opt"
mv "$wasm.opt" "$wasm"
echo "== wasm-opt -O1 (binaryen $have, $(( $(date +%s) - t0 )) s): $before -> $(stat -c %s "$wasm") bytes" >&2
