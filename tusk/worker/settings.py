"""The worker's settings, and the one place a worker reads its environment.

A worker is a process of its own (``python -m tusk.worker``, or a Ray actor on another machine),
so it does not share the server's settings: it reads what it needs from its own environment here,
once, and everything else in ``tusk.worker`` takes a :class:`WorkerSettings`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

SCRATCH_ENV = "TUSK_WORKER_SCRATCH"

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

    scratch_root: str | None = None  # one directory per running datum; the temp dir when None
    user_env: Mapping[str, str] = field(default_factory=lambda: basic_env({}))

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> WorkerSettings:
        """Settings from ``environ`` (this process's environment when None), then ``overrides``.

        ``$TUSK_WORKER_SCRATCH`` sets ``scratch_root``; of the rest only the basic variables
        (``PATH``, ``HOME``, locale …) reach user code, never the worker's credentials.
        """
        env = os.environ if environ is None else environ
        settings = cls(scratch_root=env.get(SCRATCH_ENV) or None, user_env=basic_env(env))
        return replace(settings, **overrides)
