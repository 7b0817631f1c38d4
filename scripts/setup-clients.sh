#!/usr/bin/env bash
# Create (once) the venvs of Pachyderm's official Python clients that the gRPC tests drive:
# .venv-clients/pachyderm-sdk and .venv-clients/python-pachyderm. Each client gets a venv of
# its own: python-pachyderm pins protobuf<4, which tusk's own venv must not have.
set -euo pipefail
cd "$(dirname "$0")/.."
make_venv() {
  local dir=".venv-clients/$1" requirement="$2"
  if [ -x "$dir/bin/python" ] && "$dir/bin/python" -m pip show -q "${requirement%%==*}" >/dev/null 2>&1; then
    return
  fi
  echo "setup-clients: creating $dir ($requirement)"
  rm -rf "$dir"
  python3 -m venv "$dir"
  if ! "$dir/bin/python" -m pip install -q "$requirement" >"$dir.log" 2>&1; then
    cat "$dir.log" >&2
    echo "setup-clients: pip install $requirement failed (output above)" >&2
    exit 1
  fi
}
make_venv pachyderm-sdk "pachyderm-sdk==2.12.2"
make_venv python-pachyderm "python-pachyderm==7.6.0"
echo "setup-clients: done"
