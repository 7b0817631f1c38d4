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
# The settings a worker reads from its environment (the server passes them on).
WORKER_SETTINGS_ENV = (SCRATCH_ENV, SANDBOX_UID_ENV, SANDBOX_PIDS_ENV, PODMAN_FLAGS_ENV)
DEFAULT_SANDBOX_UID = 100000
DEFAULT_PIDS_LIMIT = 4096

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

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> WorkerSettings:
        """Settings from ``environ`` (this process's environment when None), then ``overrides``.

        ``$TUSK_WORKER_SCRATCH`` sets ``scratch_root``, ``$TUSK_SANDBOX_UID`` the host uid of
        sandboxes, ``$TUSK_SANDBOX_PIDS`` their process limit and ``$TUSK_PODMAN_FLAGS`` the
        flags of ``podman run`` (space-separated; probed when unset). Of the rest only the basic
        variables (``PATH``, ``HOME``, locale …) reach host-mode user code, never the worker's
        credentials.
        """
        env = os.environ if environ is None else environ
        flags = env.get(PODMAN_FLAGS_ENV)
        pids = env.get(SANDBOX_PIDS_ENV)
        settings = cls(
            scratch_root=env.get(SCRATCH_ENV) or None,
            user_env=basic_env(env),
            sandbox_uid=int(env.get(SANDBOX_UID_ENV) or DEFAULT_SANDBOX_UID),
            pids_limit=(int(pids) or None) if pids else DEFAULT_PIDS_LIMIT,
            podman_flags=tuple(shlex.split(flags)) if flags is not None else None,
        )
        return replace(settings, **overrides)
