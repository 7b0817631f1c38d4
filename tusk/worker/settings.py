"""The worker's settings, and the one place a worker reads its environment.

A worker is a process of its own (``python -m tusk.worker``, or a Ray actor on another machine),
so it does not share the server's settings: it reads what it needs from its own environment here,
once, and everything else in ``tusk.worker`` takes a :class:`WorkerSettings`.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

SCRATCH_ENV = "TUSK_WORKER_SCRATCH"
SANDBOX_UID_ENV = "TUSK_SANDBOX_UID"
SANDBOX_PIDS_ENV = "TUSK_SANDBOX_PIDS"
PODMAN_FLAGS_ENV = "TUSK_PODMAN_FLAGS"
SANDBOX_MEMORY_ENV = "TUSK_SANDBOX_MEMORY"
SANDBOX_DISK_ENV = "TUSK_SANDBOX_DISK"
INPUT_MEMORY_ENV = "TUSK_SANDBOX_INPUT_MEMORY"
GPU_DEVICES_ENV = "TUSK_GPU_DEVICES"
# The settings a worker reads from its environment (the server passes them on).
WORKER_SETTINGS_ENV = (
    SCRATCH_ENV,
    SANDBOX_UID_ENV,
    SANDBOX_PIDS_ENV,
    PODMAN_FLAGS_ENV,
    SANDBOX_MEMORY_ENV,
    SANDBOX_DISK_ENV,
    INPUT_MEMORY_ENV,
    GPU_DEVICES_ENV,
)
DEFAULT_SANDBOX_UID = 100000
DEFAULT_PIDS_LIMIT = 4096
DEFAULT_DISK_LIMIT = 10 * 2**30  # /pfs/out and /tmp together, per sandbox
# A datum's inputs up to this size are copied to memory (a tmpfs at /pfs), not to disk
DEFAULT_INPUT_MEMORY = 64 * 2**20

_SCALE = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_SCALE.update({"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40})


def parse_bytes(text: str, variable: str) -> int | None:
    """A byte quantity (``512Mi``, ``10Gi``, ``2G``, ``1048576``); ``0`` means no limit."""
    text = text.strip()
    number = text.rstrip("kKMGTi")
    suffix = text[len(number) :]
    try:
        if suffix not in _SCALE:
            raise ValueError(suffix)
        value = int(float(number) * _SCALE[suffix])
        if value < 0:
            raise ValueError(text)
    except ValueError:
        raise ValueError(
            f"{variable}={text!r} is not a size: use bytes or a quantity like 512Mi, 10Gi, 0"
        ) from None
    return value or None


def _count(text: str, variable: str) -> int | None:
    """A number of processes; ``0`` means no limit."""
    if not text.strip().isdigit():
        raise ValueError(f"{variable}={text!r} is not a number of processes: use e.g. 4096, or 0")
    return int(text) or None


def format_bytes(value: int) -> str:
    """``67108864`` as ``64Mi``: the largest binary unit that divides it exactly."""
    for suffix in ("Ti", "Gi", "Mi", "Ki"):
        if value % _SCALE[suffix] == 0:
            return f"{value // _SCALE[suffix]}{suffix}"
    return f"{value}B"


def default_memory_limit() -> int | None:
    """The memory limit of a sandbox whose spec sets none: half of the host's memory."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024 // 2
    except (OSError, ValueError, IndexError):
        pass
    return None


# The worker's own environment variables that user code gets (besides transform.env).
_USER_ENV = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "USER", "LOGNAME", "SHELL")


def basic_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The basic variables of ``environ`` (PATH, HOME, locale ...) that user code may inherit."""
    env = {k: v for k, v in environ.items() if k in _USER_ENV or k.startswith("LC_")}
    env.setdefault("PATH", os.defpath)
    return env


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """What a worker needs from its environment: where datums run, what user code inherits."""

    scratch_root: str | None = None  # where sandboxes' directories go; the temp dir when None
    user_env: Mapping[str, str] = field(default_factory=lambda: basic_env({}))
    sandbox_uid: int = DEFAULT_SANDBOX_UID  # the host uid a sandbox's root maps to
    pids_limit: int | None = DEFAULT_PIDS_LIMIT  # processes per sandbox (0: no limit)
    podman_flags: tuple[str, ...] | None = None  # None: probe for flags that work
    memory_limit: int | None = None  # bytes, when a spec sets no resource_limits.memory
    disk_limit: int | None = DEFAULT_DISK_LIMIT  # bytes of /pfs/out and /tmp (None: no limit)
    input_memory: int | None = DEFAULT_INPUT_MEMORY  # bytes of inputs in memory (None: disk)
    gpu_devices: str = "/dev"  # where GPU device nodes are looked for
    cpus: tuple[int, ...] = ()  # pinned to one CPU: where its commands run (see pin_to_cpu)
    home_cpu: int | None = None  # where datum batching hands over (None: where it runs then)

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> WorkerSettings:
        """Settings from ``environ`` (this process's environment when None), then ``overrides``.

        ``$TUSK_WORKER_SCRATCH`` sets ``scratch_root``, ``$TUSK_SANDBOX_UID`` the host uid of
        sandboxes, ``$TUSK_SANDBOX_PIDS`` their process limit, ``$TUSK_SANDBOX_MEMORY`` their
        memory limit when a spec sets none (half of the host's memory when unset; 0: none),
        ``$TUSK_SANDBOX_DISK`` the size limit of /pfs/out and /tmp together (10Gi when unset; 0:
        none), ``$TUSK_SANDBOX_INPUT_MEMORY`` the memory for a datum's inputs (64Mi when unset;
        0: inputs always on disk), ``$TUSK_GPU_DEVICES`` where GPU device nodes are (``/dev``) and
        ``$TUSK_PODMAN_FLAGS`` the flags of ``podman run`` (space-separated; probed when unset).
        Of the rest only the basic
        variables (``PATH``, ``HOME``, locale …) reach host-mode user code, never the worker's
        credentials.
        """
        env = os.environ if environ is None else environ
        flags = env.get(PODMAN_FLAGS_ENV)
        pids = env.get(SANDBOX_PIDS_ENV)
        memory = env.get(SANDBOX_MEMORY_ENV)
        disk = env.get(SANDBOX_DISK_ENV)
        input_memory = env.get(INPUT_MEMORY_ENV)
        settings = cls(
            scratch_root=env.get(SCRATCH_ENV) or None,
            user_env=basic_env(env),
            sandbox_uid=int(env.get(SANDBOX_UID_ENV) or DEFAULT_SANDBOX_UID),
            pids_limit=_count(pids, SANDBOX_PIDS_ENV) if pids else DEFAULT_PIDS_LIMIT,
            podman_flags=tuple(shlex.split(flags)) if flags is not None else None,
            memory_limit=(
                parse_bytes(memory, SANDBOX_MEMORY_ENV) if memory else default_memory_limit()
            ),
            disk_limit=parse_bytes(disk, SANDBOX_DISK_ENV) if disk else DEFAULT_DISK_LIMIT,
            input_memory=(
                parse_bytes(input_memory, INPUT_MEMORY_ENV)
                if input_memory
                else DEFAULT_INPUT_MEMORY
            ),
            gpu_devices=env.get(GPU_DEVICES_ENV) or "/dev",
        )
        return replace(settings, **overrides)
