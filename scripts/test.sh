#!/usr/bin/env bash
# Check the prerequisites, set up, build the images, then run every check and test: lint,
# format, types, unit, functional, integration.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/prereqs.sh
source scripts/prereqs.sh
echo "test: checking system prerequisites"
need_programs python3:python3 python3-venv:python3-venv pg_isready:postgresql "${IMAGE_PREREQS[@]}" \
  "${FUSE_PREREQS[@]}" "${CONSOLE_PREREQS[@]}" "${EMULATOR_PREREQS[@]}"
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "test: PostgreSQL does not answer on 127.0.0.1:5432; the PostgreSQL tests need it." >&2
  echo "  Start it with:  sudo pg_ctlcluster <version> main start   (trust auth, a database 'test')" >&2
  exit 1
fi
bash scripts/setup.sh dev,postgres,s3,gcs,azure,ray
bash scripts/setup-clients.sh
bash scripts/setup-emulators.sh
bash scripts/build-images.sh
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff check"; ruff check tusk tests bench examples deploy
echo "== ruff format --check"; ruff format --check tusk tests bench examples deploy
echo "== mypy"; mypy
echo "== pytest"
pytest -q -p no:cacheprovider tests "$@"
