#!/usr/bin/env bash
# The browser end-to-end test: builds the package, then trains through the demo page in headless
# Chromium twice, on WebGPU (SwiftShader's adapter where there is no GPU) and on the CPU fallback.
#
#   web/scripts/e2e.sh [webgpu|cpu]...      default: both
#
# Needs Debian's chromium (apt-get install chromium), node + npm, the wasm32 target and the
# wasm-bindgen CLI (see README). Where one is missing it skips with a message, unless
# STEPGRPO_REQUIRE_BROWSER=1 (CI), where it fails. CHROMIUM=/path overrides /usr/bin/chromium.
set -euo pipefail
web="$(cd "$(dirname "$0")/.." && pwd)"
modes=("$@")
[[ ${#modes[@]} -eq 0 ]] && modes=(webgpu cpu)

missing() {
  if [[ "${STEPGRPO_REQUIRE_BROWSER:-0}" == 1 ]]; then
    echo "browser e2e: FAILED: $1 (STEPGRPO_REQUIRE_BROWSER=1)" >&2
    exit 1
  fi
  echo "browser e2e: skipped: $1"
  exit 0
}
[[ -x "${CHROMIUM:-/usr/bin/chromium}" ]] || missing "no chromium at ${CHROMIUM:-/usr/bin/chromium} (apt-get install chromium)"
command -v npm >/dev/null || missing "no npm"
command -v wasm-bindgen >/dev/null || missing "no wasm-bindgen CLI (cargo install wasm-bindgen-cli --version <Cargo.lock's>)"
rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown ||
  missing "no wasm32 target (rustup target add wasm32-unknown-unknown)"

[[ -d "$web/node_modules/playwright-core" && -d "$web/node_modules/binaryen" ]] ||
  (cd "$web" && npm ci --no-audit --no-fund)
SECONDS=0
"$web/scripts/build.sh"
echo "browser e2e: package built in ${SECONDS} s"
for mode in "${modes[@]}"; do
  SECONDS=0
  node "$web/scripts/e2e.mjs" "$mode"
  echo "browser e2e: $mode took ${SECONDS} s"
done
