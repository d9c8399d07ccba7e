#!/usr/bin/env bash
# The project's test command (README "Test"): native tests, the wasm32 build, browser end-to-end.
# Needs ../shared/data beside the clone and, for the wasm part, the toolchain that
# ../shared/tools/setup-wasm.sh installs (.ci/run does both).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(pwd)/target}"
t0=$(date +%s)
stamp() { echo "-- $1 ($(( $(date +%s) - t0 )) s)"; }

stamp "formatting: cargo fmt --check"
cargo fmt --all --check

stamp "native build, linted: clippy -D warnings on our crates (mrisr, kernels, trainer)"
# Clippy compiles our own crates while cargo builds them for the tests (RUSTC_WORKSPACE_WRAPPER
# and CLIPPY_ARGS, what `cargo clippy` does), so the dependencies are built once, not checked a
# second time by `cargo clippy` (its check build took 4 min 50 s of a cold run; linting as we
# build costs about 3 of them back). Every cargo command below keeps the wrapper: without it
# our crates would be built again. `--no-run --all-targets`: the benchmarks are linted too,
# but not run.
# `-D warnings`, in the form clippy-driver reads from CLIPPY_ARGS (as `cargo clippy` writes it).
deny_warnings="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
clippy_driver=$(command -v clippy-driver) || { echo "clippy-driver not found: rustup component add clippy" >&2; exit 1; }
export RUSTC_WORKSPACE_WRAPPER="$clippy_driver" CLIPPY_ARGS="$deny_warnings"
cargo test --no-run --all-targets

stamp "native tests: cargo test (mrisr, trainer; web is wasm-only)"
# MRISR_REQUIRE_WGPU: the wgpu test must find an adapter (lavapipe, from .ci/run).
MRISR_REQUIRE_WGPU=1 cargo test --no-fail-fast
# The CPU engine's kernels pick AVX-512 where the CPU has it (as here); its tests again on the
# AVX2 path, which most desktops take (same build, chosen at run time). `--lib` over the default
# members as above, not `-p mrisr`: mrisr alone unifies its dependencies' features differently
# (no trainer), and cargo then built burn and about 50 other crates a second time.
MRISR_SIMD=v3 cargo test -q --lib engine
# io::zip (the page's download) is behind mrisr's `zip` feature, off in the native build above:
# the zip crate would change memchr's features there and rebuild burn (mrisr/Cargo.toml). Its
# tests (and its lints) in a build without burn (about 4 CPU-minutes cold).
cargo test -q -p mrisr --no-default-features --features zip --lib io::zip
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS

stamp "wasm32: the mrisr library and the page (web/build.sh), clippy -D warnings on our crates"
env_file="${MRISR_WASM_ENV:-}"
if [[ -z "$env_file" ]]; then env_file=$(mktemp); bash ../shared/tools/setup-wasm.sh --env > "$env_file"; fi
(
  . "$env_file"
  # Clippy compiles our own crates while cargo builds them (RUSTC_WORKSPACE_WRAPPER, what
  # `cargo clippy` uses, with its CLIPPY_ARGS), so burn and the other dependencies are built
  # once, for the page, instead of checked a second time by `cargo clippy` (about 20 min cold
  # on a busy 2-vCPU machine). The driver is the one of the wasm toolchain: Debian's
  # rust-web-clippy (from .ci/run) beside /usr/bin/cargo, or rustup's.
  driver="$(dirname "$(command -v "$WASM_CARGO")")/clippy-driver"
  [[ -x "$driver" ]] || driver=$(command -v clippy-driver)
  export RUSTC_WORKSPACE_WRAPPER="$driver" CLIPPY_ARGS="$deny_warnings"
  # mrisr as other crates use it for wasm32 (no burn), in the page's profile: std and the
  # shared dependencies are built once for both.
  "$WASM_CARGO" build --profile web -p mrisr --no-default-features --target wasm32-unknown-unknown
  bash web/build.sh
)

stamp "tiny weights for the browser test (trainer, a few steps on a crop of real data)"
# The weights folder mimics www/weights, so the trainer writes the index.json the page reads.
# The trainer binary `cargo test` built: `cargo run -p trainer` would build mrisr and the trainer
# again (without mrisr's `cli` feature, which only the workspace-wide build switches on).
trainer="$CARGO_TARGET_DIR/debug/trainer"
e2e_dir=$(mktemp -d)
mkdir -p "$e2e_dir/www/weights"
"$trainer" --preset tiny --epochs 1 --steps 20 --batch 4 --block 24 \
  --val-blocks 4 --crop 96 --name tiny-e2e --runs "$e2e_dir/runs" \
  --export "$e2e_dir/www/weights/tiny-e2e.safetensors"
# A second model, so the page's model menu is tested (the first stays the default).
"$trainer" --preset tiny --epochs 1 --steps 5 --batch 2 --block 16 \
  --val-blocks 2 --crop 64 --name tiny-e2e-b --runs "$e2e_dir/runs" \
  --export "$e2e_dir/www/weights/tiny-e2e-b.safetensors"

stamp "browser end-to-end (headless Chromium, WebGPU on SwiftShader and CPU)"
MRISR_WASM_ENV="$env_file" MRISR_E2E_STRICT=1 \
MRISR_E2E_WEIGHTS="$e2e_dir/www/weights" \
MRISR_E2E_WEIGHTS_FILE="$e2e_dir/www/weights/tiny-e2e.safetensors" \
MRISR_UPSCALE_CMD="$CARGO_TARGET_DIR/debug/mrisr upscale {input} {output} --weights {weights}" \
MRISR_E2E_SKIP_BUILD=1 bash tests/e2e/run.sh   # the page was built (and linted) above
stamp "all tests done"
