#!/usr/bin/env bash
# Check the system prerequisites, then create .venv (if missing) and install tusk into it.
# Usage: scripts/setup.sh [extras]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/prereqs.sh
source scripts/prereqs.sh
extras="${1:-}"
echo "setup: checking system prerequisites"
need_programs python3:python3 python3-venv:python3-venv "${IMAGE_PREREQS[@]}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
fi
target="."
[ -n "$extras" ] && target=".[$extras]"
echo "setup: pip install -e '$target' into .venv (a minute the first time, seconds after)"
if ! .venv/bin/python -m pip install -q -e "$target" >"$log" 2>&1; then
  cat "$log" >&2
  echo "setup: pip install of tusk failed (output above)" >&2
  exit 1
fi
echo "setup: done"
