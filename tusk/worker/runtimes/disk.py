"""The disk limit of a sandbox's writable places (/pfs/out and /tmp).

As root, both live on a small filesystem of their own: a sparse ext4 image of the limit's size,
loop-mounted in the sandbox's directory (``discard``, so deleted files give their blocks back to
the host). Writing past the limit fails with ENOSPC and the host's disk never holds more than the
limit. Without root (or without loop devices) the runtimes fall back to ``RLIMIT_FSIZE`` (no
single file grows past the limit) and a watchdog that measures both directories while a datum
runs and kills the sandbox when together they exceed it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
from collections.abc import Callable

# Free space below this after a datum means it hit the limit: ext4 refuses a write that would
# need more than what is left, blocks for its own bookkeeping included, so a writer of big
# buffers stops with up to a few MiB still free.
FULL_BYTES = 8 * 2**20
WATCH_INTERVAL = 0.2


class DiskUnavailable(Exception):
    """No size-limited filesystem can be made here (the fallback applies)."""


def make_filesystem(image: str, mountpoint: str, size: int) -> None:
    """A fresh ext4 of ``size`` bytes in the sparse file ``image``, mounted at ``mountpoint``."""
    if os.geteuid() != 0:
        raise DiskUnavailable("the worker does not run as root")
    mkfs = shutil.which("mkfs.ext4") or shutil.which("mkfs.ext4", path="/usr/sbin:/sbin")
    if mkfs is None:
        raise DiskUnavailable("mkfs.ext4 is not installed (e2fsprogs)")
    with open(image, "wb") as f:
        f.truncate(size)
    steps = [
        [mkfs, "-q", "-F", "-O", "^has_journal", "-m", "0", "-E", "nodiscard", image],
        ["mount", "-o", "loop,discard,nosuid,nodev", image, mountpoint],
    ]
    for argv in steps:
        proc = subprocess.run(argv, capture_output=True, timeout=60)
        if proc.returncode != 0:
            with contextlib.suppress(OSError):
                os.unlink(image)
            lines = proc.stderr.decode(errors="replace").strip().splitlines()
            raise DiskUnavailable(f"{os.path.basename(argv[0])}: {lines[-1] if lines else ''}")
    with contextlib.suppress(OSError):
        os.rmdir(os.path.join(mountpoint, "lost+found"))


def unmount(mountpoint: str) -> None:
    """Unmount ``mountpoint`` (lazily when it is busy); nothing when it is not mounted."""
    if os.path.ismount(mountpoint):
        proc = subprocess.run(["umount", mountpoint], capture_output=True, timeout=60)
        if proc.returncode != 0:
            subprocess.run(["umount", "-l", mountpoint], capture_output=True, timeout=60)


def full(path: str, limit: int) -> bool:
    """Whether the filesystem of ``path`` (of ``limit`` bytes) has (almost) no room left: less
    than 1/16 of the limit and 8 MiB."""
    try:
        st = os.statvfs(path)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < min(FULL_BYTES, limit // 16)


def usage(*paths: str) -> int:
    """Bytes of disk used by the files under ``paths`` (allocated blocks, hard links once)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    todo = list(paths)
    while todo:
        with contextlib.suppress(OSError), os.scandir(todo.pop()) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    st = entry.stat(follow_symlinks=False)
                    if entry.is_dir(follow_symlinks=False):
                        todo.append(entry.path)
                    if (st.st_dev, st.st_ino) not in seen:
                        seen.add((st.st_dev, st.st_ino))
                        total += st.st_blocks * 512
    return total


class Watchdog:
    """Measures ``paths`` every ``interval`` seconds while a datum runs; past ``limit`` it
    calls ``kill`` once and remembers that it did."""

    def __init__(
        self, paths: tuple[str, ...], limit: int, kill: Callable[[], object], interval: float
    ) -> None:
        self.paths = paths
        self.limit = limit
        self.kill = kill
        self.interval = interval
        self.fired = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="tusk-disk-watchdog", daemon=True)

    def __enter__(self) -> Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            if usage(*self.paths) > self.limit:
                self.fired = True
                self.kill()
                return
