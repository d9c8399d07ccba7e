#!/usr/bin/env bash
# Browser end-to-end test: builds the page (web/build.sh), installs playwright-core (npm ci, no
# browser download: Debian's /usr/bin/chromium is used) and runs e2e.mjs against ../shared/data.
#   bash tests/e2e/run.sh            (MRISR_WASM_ENV: a file of setup-wasm.sh export lines)
#   MRISR_E2E_SKIP_BUILD=1 ...       reuse www/pkg as it is
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if [ -n "${MRISR_WASM_ENV:-}" ]; then . "$MRISR_WASM_ENV"; fi
if [ -z "${MRISR_E2E_SKIP_BUILD:-}" ]; then bash "$root/web/build.sh"; fi
cd "$here"
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund --silent
node e2e.mjs "$@"
