#!/usr/bin/env bash
# Set up and run every check and test: lint, format, types, unit, functional, integration.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev,postgres,s3,ray
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff check"; ruff check tusk tests bench examples deploy
echo "== ruff format --check"; ruff format --check tusk tests bench examples deploy
echo "== mypy"; mypy
echo "== pytest"
pytest -q -p no:cacheprovider tests "$@"
