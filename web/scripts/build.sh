#!/usr/bin/env bash
# Builds the npm package into web/pkg/: the wasm module (release, wasm32-unknown-unknown), its
# JavaScript bindings and TypeScript definitions (wasm-bindgen --target web), the module optimised
# with wasm-opt (npm binaryen; Debian's wasm-opt 108 writes modules Chromium rejects), and the
# hand-written client, worker, package.json and README. `npm publish web/pkg` publishes it as is.
#
#   web/scripts/build.sh [--no-opt]    --no-opt skips wasm-opt (minutes on 2 cores)
#
# STEPGRPO_BUILD_LOCK=/path runs each compile under `flock` on that file (shared build machines).
set -euo pipefail
web="$(cd "$(dirname "$0")/.." && pwd)"
root="$(dirname "$web")"
pkg="$web/pkg"
opt=1
[[ "${1:-}" == "--no-opt" ]] && opt=0

locked() {
  if [[ -n "${STEPGRPO_BUILD_LOCK:-}" ]]; then flock "$STEPGRPO_BUILD_LOCK" "$@"; else "$@"; fi
}

# wasm-bindgen's CLI must be exactly the version of the wasm-bindgen crate in Cargo.lock.
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print }' "$root/Cargo.lock")
have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
if [[ "$have" != "$want" ]]; then
  echo "error: wasm-bindgen CLI ${have:-missing}, Cargo.lock has $want:" >&2
  echo "  cargo install wasm-bindgen-cli --version $want" >&2
  exit 1
fi
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  echo "error: the wasm32 target is missing: rustup target add wasm32-unknown-unknown" >&2
  exit 1
fi

cd "$root"
locked cargo rustc --release --target wasm32-unknown-unknown -p stepgrpo-web --lib --crate-type cdylib
wasm="${CARGO_TARGET_DIR:-$root/target}/wasm32-unknown-unknown/release/stepgrpo_web.wasm"
# The bindings and wasm-opt (minutes) run again only when the compiled module changed: a second
# build of the same sources (CI builds the package ahead of its test) only copies the scripts.
stamp="$(sha256sum "$wasm" | cut -d' ' -f1) wasm-bindgen $want opt $opt"
if [[ -f "$pkg/.stamp" && "$(cat "$pkg/.stamp")" == "$stamp" && -f "$pkg/stepgrpo_web_bg.wasm" ]]; then
  echo "web/pkg: the module is unchanged; bindings and wasm-opt skipped"
else
  rm -rf "$pkg"
  mkdir -p "$pkg"
  locked wasm-bindgen --target web --typescript --out-dir "$pkg" "$wasm"
  if [[ $opt == 1 ]]; then
    wasm_opt="$web/node_modules/.bin/wasm-opt"
    if [[ ! -x "$wasm_opt" ]]; then
      (cd "$web" && npm ci --no-audit --no-fund)
    fi
    # -O1 (1.5 min on 2 cores): 31.5 MB, 6.0 MB gzipped; -O2 took 4.5 min for 30.3 MB, 6.4 MB gzipped.
    locked "$wasm_opt" -O1 "$pkg/stepgrpo_web_bg.wasm" -o "$pkg/stepgrpo_web_bg.opt.wasm"
    mv "$pkg/stepgrpo_web_bg.opt.wasm" "$pkg/stepgrpo_web_bg.wasm"
  fi
  rm -f "$pkg/.gitignore"
  echo "$stamp" >"$pkg/.stamp"
fi
cp "$web"/js/{client.js,client.d.ts,worker.js,package.json,README.md} "$pkg/"
raw=$(stat -c %s "$pkg/stepgrpo_web_bg.wasm")
gz=$(gzip -9 -c "$pkg/stepgrpo_web_bg.wasm" | wc -c)
echo "built $pkg: stepgrpo_web_bg.wasm $((raw / 1024)) KiB ($((gz / 1024)) KiB gzipped)"
