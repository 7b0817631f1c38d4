#!/usr/bin/env bash
# Build, offline, every container image the examples and tests name, from the Containerfiles
# under images/ (docs/images.md). Usage: scripts/build-images.sh [--list]
#
# A FROM image that is not in local storage is pulled; when no registry answers, it is made
# from a Debian root filesystem (mmdebstrap --variant=minbase, cached) and imported under the
# FROM name. Python wheels an image needs are downloaded on the host into its build context.
# Everything is cached: a second run only checks and takes seconds.
#
# Environment: TUSK_IMAGE_CACHE (default ~/.cache/tusk/images) holds the root filesystem
# tarball and the wheels; DEBIAN_SUITE (default bookworm) and DEBIAN_MIRROR choose the base.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
# shellcheck source=scripts/prereqs.sh
source scripts/prereqs.sh

started=$SECONDS
say() { printf '[build-images %3ds] %s\n' "$((SECONDS - started))" "$*"; }

# Header fields of a Containerfile: "# tags: a b", "# context: dir", "# wheels: x y".
field() { sed -n "s/^# $2: *//p" "$1" | head -n 1; }

containerfiles=()
while IFS= read -r f; do containerfiles+=("$f"); done < <(find images -name '*Containerfile' | sort)

list_tags() {
  local f t
  for f in "${containerfiles[@]}"; do
    for t in $(field "$f" tags); do echo "$t"; done
  done
}

if [ "${1:-}" = "--list" ]; then
  list_tags
  exit 0
elif [ $# -gt 0 ]; then
  echo "usage: scripts/build-images.sh [--list]" >&2
  exit 2
fi

need_programs podman:podman runc:runc mmdebstrap:mmdebstrap
if [ "$(id -u)" -ne 0 ]; then
  say "note: not root; podman runs rootless (tusk's sandbox expects the images in root's storage)"
fi

# podman as it works on Debian's podman 4.3 here: runc (crun fails on hybrid cgroups), cgroupfs,
# and rlimits no higher than the hard limits (without --ulimit, runc fails to set them).
podman_cmd=(podman --runtime runc --cgroup-manager cgroupfs)
# 4096, or less when a hard limit is lower (nproc strictly below its hard limit: equal fails).
lim() { if [ "$2" = unlimited ] || [ "$2" -gt "$1" ]; then echo "$1"; else echo "$(($2 - $3))"; fi; }
nofile="$(lim 4096 "$(ulimit -Hn)" 0)"
nproc="$(lim 4096 "$(ulimit -Hu)" 1)"
ulimits=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")

cache="${TUSK_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tusk/images}"
mkdir -p "$cache"
suite="${DEBIAN_SUITE:-bookworm}"
# What the base has besides minbase (sh, bash, coreutils, grep, mawk, findutils, sed, tar...).
base_packages="python3"
rootfs_id="$(printf '%s %s %s' "$suite" "$base_packages" "${DEBIAN_MIRROR:-}" | sha256sum | cut -c1-12)"
rootfs="$cache/debian-$suite-minbase-$rootfs_id.tar"

make_rootfs() {
  if [ -f "$rootfs" ] && [ -s "$rootfs" ]; then
    say "root filesystem: cached $(basename "$rootfs")"
    return
  fi
  say "root filesystem: mmdebstrap --variant=minbase --include=$base_packages $suite (30 s, up to 2 min on a busy machine)"
  local tmp="$rootfs.partial"
  local mirror=()
  [ -n "${DEBIAN_MIRROR:-}" ] && mirror=("$DEBIAN_MIRROR")
  if ! mmdebstrap --variant=minbase --format=tar --include="$base_packages" "$suite" "$tmp" "${mirror[@]}" \
    2>&1 | sed -u 's/^/    /'; then
    rm -f "$tmp"
    say "error: mmdebstrap failed (output above); it needs Debian's package mirror"
    exit 1
  fi
  mv "$tmp" "$rootfs"
  say "root filesystem: $(du -h "$rootfs" | cut -f1) in $(basename "$rootfs")"
}

# A fully qualified name to try pulling: python:3.11 -> docker.io/library/python:3.11.
qualified() {
  local first="${1%%/*}"
  if [[ "$1" == */* ]] && { [[ "$first" == *.* ]] || [[ "$first" == *:* ]] || [ "$first" = localhost ]; }; then
    echo "$1"
  elif [[ "$1" == */* ]]; then
    echo "docker.io/$1"
  else
    echo "docker.io/library/$1"
  fi
}

ensure_base() {
  local name="$1" label
  if "${podman_cmd[@]}" image exists "$name"; then
    label="$("${podman_cmd[@]}" image inspect --format '{{index .Labels "tusk.base.rootfs"}}' "$name")"
    if [ -z "$label" ] || [ "$label" = "<no value>" ] || [ "$label" = "$rootfs_id" ]; then
      say "base $name: present"
      return
    fi
    say "base $name: made from an older root filesystem; importing it again"
  else
    say "base $name: not in local storage; trying podman pull $(qualified "$name")"
    if timeout 60 "${podman_cmd[@]}" pull -q "$(qualified "$name")" >/dev/null 2>&1; then
      "${podman_cmd[@]}" tag "$(qualified "$name")" "$name"
      say "base $name: pulled"
      return
    fi
    say "base $name: no registry answers; making it from a local Debian $suite root filesystem"
  fi
  make_rootfs
  "${podman_cmd[@]}" import -q \
    --change "LABEL tusk.base.rootfs=$rootfs_id" \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "ENV LANG=C.UTF-8" \
    --change 'CMD ["/bin/bash"]' \
    "$rootfs" "$name" >/dev/null
  say "base $name: imported"
}

# Wheels for the image's Python (3.11 on x86_64 or aarch64), downloaded once into the cache.
fetch_wheels() {
  local wanted="$1" dir stamp py
  # One directory per wheel list, so a context gets exactly the wheels its list names.
  dir="$cache/wheels/$(printf '%s' "pip $wanted" | sha256sum | cut -c1-12)"
  stamp="$dir/.done"
  if [ -e "$stamp" ]; then
    say "wheels: cached ($wanted)"
    return
  fi
  py=python3
  [ -x "$root/.venv/bin/python" ] && py="$root/.venv/bin/python"
  if ! "$py" -m pip --version >/dev/null 2>&1; then
    say "error: downloading wheels needs pip on the host (run scripts/setup.sh first)"
    exit 1
  fi
  say "wheels: pip download pip $wanted (for CPython 3.11, $(uname -m))"
  mkdir -p "$dir"
  local arch
  arch="$(uname -m)"
  # shellcheck disable=SC2086
  "$py" -m pip download -q --disable-pip-version-check --only-binary=:all: -d "$dir" \
    --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
    --platform "manylinux2014_$arch" --platform "manylinux_2_17_$arch" \
    --platform "manylinux_2_28_$arch" --platform any \
    pip $wanted
  touch "$stamp"
  say "wheels: $(find "$dir" -name '*.whl' | wc -l) wheels, $(du -sh "$dir" | cut -f1)"
}

build_one() {
  local file="$1" tags context wheels args=() t ctx tmp="" wheel_dir
  tags="$(field "$file" tags)"
  context="$(field "$file" context)"
  wheels="$(field "$file" wheels)"
  if [ -z "$tags" ]; then
    say "error: $file has no '# tags:' line naming the images it builds"
    exit 1
  fi
  ctx="${context:-$(dirname "$file")}"
  if [ -n "$wheels" ]; then
    fetch_wheels "$wheels"
    wheel_dir="$cache/wheels/$(printf '%s' "pip $wheels" | sha256sum | cut -c1-12)"
    # A build context of the Containerfile's directory plus wheels/.
    tmp="$(mktemp -d)"
    ctx="$tmp"
    cp -r "$(dirname "$file")"/. "$ctx"/
    mkdir -p "$ctx/wheels"
    cp "$wheel_dir"/*.whl "$ctx/wheels/"
    args+=(--build-arg "WHEELS=$wheels")
  fi
  for t in $tags; do args+=(-t "$t"); done
  say "image $tags: podman build -f $file"
  if ! "${podman_cmd[@]}" build --pull=never --layers "${ulimits[@]}" -f "$root/$file" \
    "${args[@]}" "$ctx" 2>&1 | sed -u 's/^/    /'; then
    [ -n "$tmp" ] && rm -rf "$tmp"
    say "error: building $file failed (output above)"
    exit 1
  fi
  [ -n "$tmp" ] && rm -rf "$tmp"
  return 0
}

built="$(list_tags | tr '\n' ' ')"
say "images: $built"
bases=()
for f in "${containerfiles[@]}"; do
  while read -r from; do
    # A FROM that names an image built here is not a base.
    [[ " $built " == *" $from "* ]] && continue
    [[ " ${bases[*]:-} " == *" $from "* ]] || bases+=("$from")
  done < <(sed -n 's/^FROM[[:space:]]\{1,\}\([^[:space:]]*\).*/\1/p' "$f")
done
for b in "${bases[@]}"; do ensure_base "$b"; done
for f in "${containerfiles[@]}"; do build_one "$f"; done
say "done: $(list_tags | wc -l) images in $((SECONDS - started)) s"
