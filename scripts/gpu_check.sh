#!/usr/bin/env bash
# The GPU path in one command (scripts/gpu_check.py says what each stage runs):
#   bash scripts/gpu_check.sh [--device cuda|cpu] [--wheels DIR] [--output-dir DIR]
# Uses $PYTHON, else the checkout's .venv, else python3. Exit code 1 at the first failing stage.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$root/.venv/bin/python" ]]; then PYTHON="$root/.venv/bin/python"; else PYTHON=python3; fi
fi
start=$SECONDS
status=0
"$PYTHON" "$here/gpu_check.py" "$@" || status=$?
echo "gpu_check: wall time $((SECONDS - start)) s"
exit "$status"
