#!/usr/bin/env bash
# The project's test command (README "Test"): native tests, the wasm32 build, browser end-to-end.
# Needs ../shared/data beside the clone and, for the wasm part, the toolchain that
# ../shared/tools/setup-wasm.sh installs (.ci/run does both).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(pwd)/target}"
t0=$(date +%s)
stamp() { echo "-- $1 ($(( $(date +%s) - t0 )) s)"; }

stamp "native tests: cargo test (mrisr, trainer; web is wasm-only)"
cargo test --no-fail-fast

stamp "mrisr library for wasm32-unknown-unknown"
env_file="${MRISR_WASM_ENV:-}"
if [[ -z "$env_file" ]]; then env_file=$(mktemp); bash ../shared/tools/setup-wasm.sh --env > "$env_file"; fi
(
  . "$env_file"
  "$WASM_CARGO" build -p mrisr --no-default-features --target wasm32-unknown-unknown
)

if [[ -f tests/e2e/run.sh ]]; then
  stamp "browser end-to-end (headless Chromium, WebGPU on SwiftShader and CPU)"
  MRISR_WASM_ENV="$env_file" bash tests/e2e/run.sh
fi
stamp "all tests done"
