#!/usr/bin/env bash
# Set up tusk, build the workshop's images, and run the Pachyderm diabetes workshop end to end
# on the embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build-images.sh
exec .venv/bin/python examples/diabetes/workshop.py "$@"
