#!/usr/bin/env bash
# Create .venv (if missing) and install tusk into it. Usage: scripts/setup.sh [extras]
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
target="."
[ -n "$extras" ] && target=".[$extras]"
if ! .venv/bin/python -m pip install -q -e "$target" >"$log" 2>&1; then
  cat "$log" >&2
  echo "setup: pip install of tusk failed (output above)" >&2
  exit 1
fi
