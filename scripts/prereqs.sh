# shellcheck shell=bash
# Checks the system programs tusk's scripts need, before anything slow starts. Sourced by
# scripts/setup.sh, scripts/test.sh and scripts/build-images.sh.
#
# need_programs PROGRAM:PACKAGE ... checks that each PROGRAM is on PATH. Missing ones are
# installed with apt-get when we are root and nobody can be asked (CI, no terminal, or
# TUSK_INSTALL=1); otherwise it prints the one command that installs them all and exits 1.

prereq_say() { printf '%s\n' "$*" >&2; }

need_programs() {
  local missing=() item prog pkg
  for item in "$@"; do
    prog="${item%%:*}"
    pkg="${item#*:}"
    if [ "$prog" = "python3-venv" ]; then
      python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=("$pkg")
    elif [ "$prog" = "libc.a" ]; then
      # A static C library, for the sandbox agent (cc -static).
      [ -f "$(cc -print-file-name=libc.a 2>/dev/null)" ] || missing+=("$pkg")
    elif ! command -v "$prog" >/dev/null 2>&1; then
      missing+=("$pkg")
    fi
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  # Unique, in order.
  local unique=() p q seen
  for p in "${missing[@]}"; do
    seen=0
    for q in "${unique[@]:-}"; do [ "$p" = "$q" ] && seen=1; done
    [ "$seen" -eq 0 ] && unique+=("$p")
  done
  local interactive=1
  if [ -n "${CI:-}" ] || [ "${TUSK_INSTALL:-}" = "1" ] || ! [ -t 0 ]; then
    interactive=0
  fi
  if [ "$(id -u)" -eq 0 ] && [ "$interactive" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    prereq_say "prerequisites: installing ${unique[*]} with apt-get (about a minute)..."
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${unique[@]}"; } >/tmp/tusk-apt.log 2>&1; then
      cat /tmp/tusk-apt.log >&2
      prereq_say "prerequisites: apt-get install ${unique[*]} failed (output above)"
      exit 1
    fi
    prereq_say "prerequisites: installed ${unique[*]}"
    return 0
  fi
  prereq_say "prerequisites: missing ${unique[*]}."
  prereq_say "  Install them with:  sudo apt-get install ${unique[*]}"
  prereq_say "  (or run this script again as root with TUSK_INSTALL=1 to install them)"
  exit 1
}

# What running pipelines in images needs: podman and runc (containers), mmdebstrap (base
# images without a registry), bubblewrap (the sandbox), a C compiler and a static C library
# (the sandbox's agent is a small static C program).
# shellcheck disable=SC2034  # used by the scripts that source this file
IMAGE_PREREQS=(podman:podman runc:runc mmdebstrap:mmdebstrap bwrap:bubblewrap cc:gcc libc.a:libc6-dev)

# What `tusk mount` needs (and so its tests): libfuse 3 and its fusermount3 helper.
# shellcheck disable=SC2034  # used by the scripts that source this file
FUSE_PREREQS=(fusermount3:fuse3)

# What the console's browser tests drive (Playwright launches the system's Chromium).
# shellcheck disable=SC2034  # used by the scripts that source this file
CONSOLE_PREREQS=(chromium:chromium)

# What the Azure Blob Storage tests' emulator (Azurite, from npm) needs.
# shellcheck disable=SC2034  # used by the scripts that source this file
EMULATOR_PREREQS=(node:nodejs npm:npm)
