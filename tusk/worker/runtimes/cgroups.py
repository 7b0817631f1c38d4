"""A cgroup per sandbox: its memory, cpu and process limits, and how many times the kernel's OOM
killer struck in it.

cgroup v1 (one hierarchy per controller, as on hybrid hosts) and cgroup v2 (one unified
hierarchy, delegated to the worker) are both supported. A sandbox's cgroup is made under a
``tusk`` cgroup below the worker's own, named ``tusk-sandbox-<worker pid>-<random>`` so that a
worker that starts removes those of workers that were killed. Where no cgroup can be made (not
root, no delegation) :func:`problem` says why, and the runtimes fall back to rlimits.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PREFIX = "tusk-sandbox-"
PARENT = "tusk"
CPU_PERIOD_US = 100_000
V1_CONTROLLERS = ("memory", "cpu", "pids")
FIX = (
    "run the worker as root on a host with writable cgroups (v1, or v2 with the memory, cpu and "
    "pids controllers delegated to the worker's cgroup)"
)


@dataclass(frozen=True, slots=True)
class Limits:
    """What a sandbox's cgroup enforces (None: no limit)."""

    memory: int | None = None  # bytes, swap included
    cpu: float | None = None  # cores
    pids: int | None = None  # processes (and threads)


@dataclass(frozen=True, slots=True)
class _Layout:
    version: int  # 1 or 2
    parents: dict[str, Path]  # controller (or "unified") -> the tusk parent cgroup


_layout: _Layout | None = None
_problem: str | None = None
_probed = False
_lock = threading.Lock()


def parse_mounts(mountinfo: str) -> list[tuple[str, str, set[str]]]:
    """(mount point, fs type, super options) of cgroup mounts."""
    found = []
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(fields) < 5 or len(rest) < 3 or rest[0] not in ("cgroup", "cgroup2"):
            continue
        found.append((fields[4], rest[0], set(rest[2].split(","))))
    return found


def parse_own_paths(text: str) -> dict[str, str]:
    """The worker's own cgroup per controller ("" for the unified hierarchy)."""
    own: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                own[controller] = parts[2]
    return own


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _detect() -> tuple[_Layout | None, str | None]:
    if os.geteuid() != 0:
        return None, "the worker does not run as root"
    try:
        mounts = parse_mounts(Path("/proc/self/mountinfo").read_text())
        own = parse_own_paths(Path("/proc/self/cgroup").read_text())
    except OSError as e:
        return None, f"cannot read the worker's cgroups: {e}"
    v1 = {c: point for point, kind, opts in mounts if kind == "cgroup" for c in opts}
    problems = []
    if all(c in v1 for c in V1_CONTROLLERS):
        parents = {c: Path(v1[c] + own.get(c, "/").rstrip("/")) / PARENT for c in V1_CONTROLLERS}
        try:
            for parent in parents.values():
                parent.mkdir(exist_ok=True)
            return _Layout(1, parents), None
        except OSError as e:
            problems.append(f"cgroup v1: {e}")
    unified = next((point for point, kind, _ in mounts if kind == "cgroup2"), None)
    if unified is not None:
        mine = Path(unified + own.get("", "/").rstrip("/"))
        try:
            available = set((mine / "cgroup.controllers").read_text().split())
            missing = [c for c in V1_CONTROLLERS if c not in available]
            if missing:
                raise OSError(f"controllers {', '.join(missing)} are not delegated to {mine}")
            enable = " ".join("+" + c for c in V1_CONTROLLERS)
            _write(mine / "cgroup.subtree_control", enable)
            parent = mine / PARENT
            parent.mkdir(exist_ok=True)
            _write(parent / "cgroup.subtree_control", enable)
            return _Layout(2, {"unified": parent}), None
        except OSError as e:
            problems.append(f"cgroup v2: {e}")
    if not problems:
        problems.append("no cgroup v1 memory, cpu and pids controllers and no cgroup v2 mount")
    return None, "; ".join(problems)


def _probe() -> _Layout | None:
    global _layout, _problem, _probed
    with _lock:
        if not _probed:
            _layout, _problem = _detect()
            _probed = True
        return _layout


def problem() -> str | None:
    """Why sandboxes get no cgroup here (None when they do)."""
    _probe()
    return _problem


def version() -> int | None:
    """1 or 2, the cgroup version sandboxes use; None when they get none."""
    layout = _probe()
    return layout.version if layout else None


class Cgroup:
    """One sandbox's cgroup (a directory per v1 controller, or one v2 directory)."""

    def __init__(self, layout: _Layout, limits: Limits) -> None:
        self.version = layout.version
        self.limits = limits
        self.name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        self.dirs = {c: parent / self.name for c, parent in layout.parents.items()}
        try:
            for directory in self.dirs.values():
                directory.mkdir()
            self._apply(limits)
        except OSError:
            self.remove()
            raise
        self.oom_seen = self.oom_kills()

    def _apply(self, limits: Limits) -> None:
        if self.version == 1:
            memory, cpu, pids = self.dirs["memory"], self.dirs["cpu"], self.dirs["pids"]
            if limits.memory is not None:
                _write(memory / "memory.limit_in_bytes", str(limits.memory))
                swap = memory / "memory.memsw.limit_in_bytes"
                if swap.exists():  # swap counts: a hog cannot page out to live on
                    _write(swap, str(limits.memory))
            if limits.cpu is not None:
                _write(cpu / "cpu.cfs_period_us", str(CPU_PERIOD_US))
                _write(cpu / "cpu.cfs_quota_us", str(_quota(limits.cpu)))
            if limits.pids is not None:
                _write(pids / "pids.max", str(limits.pids))
            return
        unified = self.dirs["unified"]
        if limits.memory is not None:
            _write(unified / "memory.max", str(limits.memory))
            swap = unified / "memory.swap.max"
            if swap.exists():
                _write(swap, "0")
        if limits.cpu is not None:
            _write(unified / "cpu.max", f"{_quota(limits.cpu)} {CPU_PERIOD_US}")
        if limits.pids is not None:
            _write(unified / "pids.max", str(limits.pids))

    def add(self, pid: int) -> None:
        """Move process ``pid`` (its threads too) into the cgroup."""
        for directory in self.dirs.values():
            _write(directory / "cgroup.procs", str(pid))

    def pids(self) -> list[int]:
        """The processes in the cgroup."""
        found: set[int] = set()
        for directory in self.dirs.values():
            with contextlib.suppress(OSError):
                found.update(int(p) for p in (directory / "cgroup.procs").read_text().split())
        return sorted(found)

    def oom_kills(self) -> int:
        """How many processes the OOM killer has killed in the cgroup so far."""
        directory = self.dirs["memory" if self.version == 1 else "unified"]
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        return oom_kills_in(directory / name)

    def new_oom_kill(self) -> bool:
        """Whether the OOM killer struck since the last call (or since the cgroup was made)."""
        now = self.oom_kills()
        struck, self.oom_seen = now > self.oom_seen, now
        return struck

    def throttled(self) -> int:
        """How many cpu periods the cgroup was throttled in (its cpu quota at work)."""
        directory = self.dirs["cpu" if self.version == 1 else "unified"]
        with contextlib.suppress(OSError):
            for line in (directory / "cpu.stat").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "nr_throttled":
                    return int(value)
        return 0

    def remove(self) -> None:
        """Kill what is left in the cgroup and remove it."""
        _remove(list(self.dirs.values()))


def oom_kills_in(events: Path) -> int:
    """The ``oom_kill`` count of a memory.oom_control (v1) or memory.events (v2) file."""
    with contextlib.suppress(OSError):
        for line in events.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    return 0


def _quota(cpu: float) -> int:
    return max(1000, int(cpu * CPU_PERIOD_US))


def _remove(dirs: list[Path]) -> None:
    deadline = time.monotonic() + 5
    for directory in dirs:
        while directory.exists():
            with contextlib.suppress(OSError):
                for pid in (directory / "cgroup.procs").read_text().split():
                    with contextlib.suppress(OSError):
                        os.kill(int(pid), signal.SIGKILL)
            try:
                directory.rmdir()
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.02)


def _remove_stale(parent: Path) -> None:
    """Remove the cgroups of sandboxes whose worker was killed (its pid is gone)."""
    with contextlib.suppress(OSError):
        for entry in parent.iterdir():
            if not entry.name.startswith(PREFIX):
                continue
            pid = entry.name[len(PREFIX) :].split("-", 1)[0]
            if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                _remove([entry])


def create(limits: Limits) -> Cgroup | None:
    """A new cgroup with ``limits``; None when sandboxes get no cgroup here (see :func:`problem`).

    The cgroups of dead workers' sandboxes are removed first.
    """
    layout = _probe()
    if layout is None:
        return None
    for parent in layout.parents.values():
        _remove_stale(parent)
    return Cgroup(layout, limits)


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cgroup_of(pid: int, controller: str) -> Path | None:
    """The directory of ``pid``'s cgroup of ``controller`` ("" for v2), from /proc."""
    try:
        own = parse_own_paths(Path(f"/proc/{pid}/cgroup").read_text())
        mounts = parse_mounts(Path("/proc/self/mountinfo").read_text())
    except OSError:
        return None
    if controller and controller in own:
        point = next((p for p, k, o in mounts if k == "cgroup" and controller in o), None)
    else:
        point = next((p for p, k, _ in mounts if k == "cgroup2"), None)
        controller = ""
    if point is None or controller not in own:
        return None
    return Path(point + own[controller].rstrip("/"))
