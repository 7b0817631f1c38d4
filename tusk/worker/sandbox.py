"""How user code sees ``/pfs``: a bubblewrap mount namespace, or paths rewritten to the datum dir.

With bubblewrap the host's root entries are bound one by one into the sandbox's fresh root (not
``--dev-bind / /``, which would make bwrap create ``/pfs`` on the host), the datum's ``pfs`` dir is
bound read-only at ``/pfs`` and its ``out`` dir read-write at ``/pfs/out``. Without it, every
``/pfs`` path in the command, stdin and env is rewritten to the datum's real ``pfs`` dir.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

PFS = "/pfs"

# "/pfs" as the root of an absolute path: at the start of a value or after a separator that may
# introduce a path in a flag, list or quoted string (``-in=/pfs/x``, ``a:/pfs/b``, ``'/pfs/c'``),
# and followed by the end, "/" or such a separator (so ``/pfsx`` and ``/data/pfs`` are left alone).
_PFS_RE = re.compile(r"(?<![^\s=:,;'\"(\[{])/pfs(?=$|[/\s'\"\]),;:}])")


def rewrite_pfs(value: str, real_pfs: str) -> str:
    """``value`` with every root ``/pfs`` replaced by ``real_pfs``."""
    if PFS not in value:
        return value
    return _PFS_RE.sub(lambda _: real_pfs, value)


def from_sandbox_path(path: str, real_pfs: str) -> str:
    """Map a path as user code sees it (``/pfs/...``) to the host path."""
    if path == PFS:
        return real_pfs
    if path.startswith(PFS + "/"):
        return real_pfs + path[len(PFS) :]
    return path


class Bubblewrap:
    """Runs commands under bubblewrap; ``available`` says whether it exists and works here."""

    def __init__(self, executable: str | None = None) -> None:
        self.executable = executable or shutil.which("bwrap")
        self._root_args: list[str] | None = None
        self._problem: str | None = None
        self._probed = False

    @property
    def problem(self) -> str | None:
        """Why bubblewrap cannot be used (None when it can)."""
        if not self._probed:
            self._probed = True
            self._problem = self._probe()
        return self._problem

    @property
    def available(self) -> bool:
        """Whether bubblewrap can be used here."""
        return self.problem is None

    def _probe(self) -> str | None:
        if self.executable is None:
            return "bwrap is not on PATH (install bubblewrap)"
        try:
            proc = subprocess.run(
                [self.executable, *self.root_args(), "--die-with-parent", "--", "true"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError) as e:
            return f"bwrap does not run: {e}"
        if proc.returncode != 0:
            message = proc.stderr.decode(errors="replace").strip().splitlines()
            return f"bwrap does not work here: {message[-1] if message else proc.returncode}"
        return None

    def root_args(self) -> list[str]:
        """Binds of the host's root entries (but ``/pfs``) into the sandbox's root."""
        if self._root_args is None:
            args: list[str] = []
            for name in sorted(os.listdir("/")):
                path = "/" + name
                if path == PFS:
                    continue
                if os.path.islink(path):
                    args += ["--symlink", os.readlink(path), path]
                else:
                    args += ["--dev-bind", path, path]
            self._root_args = args
        return self._root_args

    def wrap(self, cmd: list[str], real_pfs: str, cwd: str) -> list[str]:
        """``cmd`` run in a sandbox with ``real_pfs`` read-only at /pfs and its out dir writable."""
        assert self.executable is not None
        return [
            self.executable,
            *self.root_args(),
            "--ro-bind",
            real_pfs,
            PFS,
            "--bind",
            real_pfs + "/out",
            PFS + "/out",
            "--die-with-parent",
            "--chdir",
            cwd,
            "--",
            *cmd,
        ]
