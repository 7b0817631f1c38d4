#!/usr/bin/env bash
# Install (once) what the gs:// and wasb:// tests run as real servers besides the dev extra's
# gcp-storage-emulator: Azurite, Microsoft's Azure Blob Storage emulator, from npm into
# .venv/azurite (removed with the venv; the tests look for it there, then on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/prereqs.sh
source scripts/prereqs.sh
AZURITE_VERSION=3.35.0
dir=.venv/azurite
need_programs "${EMULATOR_PREREQS[@]}"
if [ -x "$dir/node_modules/.bin/azurite-blob" ] && grep -q "\"version\": \"$AZURITE_VERSION\"" \
  "$dir/node_modules/azurite/package.json" 2>/dev/null; then
  exit 0
fi
echo "setup-emulators: npm install azurite@$AZURITE_VERSION into $dir (a minute the first time)"
mkdir -p "$dir"
if ! npm install --prefix "$dir" --no-audit --no-fund --silent "azurite@$AZURITE_VERSION" \
  >"$dir.log" 2>&1; then
  cat "$dir.log" >&2
  echo "setup-emulators: npm install azurite failed (output above)" >&2
  exit 1
fi
echo "setup-emulators: done"
