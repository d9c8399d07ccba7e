#!/usr/bin/env bash
# Builds the page's WebAssembly module: web/ (crate mrisr-web) -> www/pkg/ (wasm-bindgen --target web).
#
#   bash web/build.sh            # release build (cargo profile `web`), then wasm-opt (web/wasm-opt.sh)
#
# Toolchain: either a rustup toolchain with the wasm32-unknown-unknown target (GitHub's runners),
# or, where rustup cannot add that target, Debian's rustc-web + build-std set up by
# ../shared/tools/setup-wasm.sh (see ../shared/notes/toolchain.md). This script picks the first
# that works: $WASM_CARGO if set (the setup-wasm.sh environment), else `cargo`.
# Output of cargo goes to $CARGO_TARGET_DIR (default: target/ of the workspace).
# wasm-bindgen-cli must match the wasm-bindgen crate: 0.2.130.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if [ -z "${WASM_CARGO:-}" ]; then
  setup="$root/../shared/tools/setup-wasm.sh"
  if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    WASM_CARGO=cargo
  elif [ -f "$setup" ]; then
    envf="$(mktemp)"
    bash "$setup" --env > "$envf"
    . "$envf"
    rm -f "$envf"
  else
    echo "web/build.sh: no wasm32 toolchain: run 'rustup target add wasm32-unknown-unknown'" >&2
    exit 1
  fi
fi

want="$(sed -n 's/^wasm-bindgen = "=\(.*\)"/\1/p' web/Cargo.toml)"
have="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')"
if [ "$have" != "$want" ]; then
  echo "web/build.sh: wasm-bindgen-cli $want is needed (found '${have:-none}'):" >&2
  echo "  cargo install wasm-bindgen-cli --version $want" >&2
  exit 1
fi

target_dir="${CARGO_TARGET_DIR:-$root/target}"
echo "== cargo build (wasm32, profile web) -> $target_dir" >&2
$WASM_CARGO build --profile web --target wasm32-unknown-unknown -p mrisr-web
rm -rf www/pkg
wasm-bindgen --target web --no-typescript --out-dir www/pkg \
  "$target_dir/wasm32-unknown-unknown/web/mrisr_web.wasm"
bash "$root/web/wasm-opt.sh" www/pkg/mrisr_web_bg.wasm
echo "== www/pkg: $(du -sh www/pkg | cut -f1)" >&2
