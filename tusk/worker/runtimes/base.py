"""What every runtime shares: the sandbox's settings, its host directories and its agent."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tusk.worker.protocol import LogLine
from tusk.worker.runtimes.agent import AGENT_NAME, AgentClient, AgentResult, build_agent
from tusk.worker.runtimes.images import ImageConfig

# The host uid that a sandbox's root maps to (and the base of its uid range under podman).
from tusk.worker.settings import DEFAULT_SANDBOX_UID  # noqa: E402

AGENT_DIR = "/.tusk"  # where the agent is bound inside a sandbox
_PREFIX = "tusk-sandbox-"


class RuntimeUnavailable(Exception):
    """No runtime can run sandboxes here; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class SandboxSpec:
    """What a sandbox is made of; a worker keeps its sandbox while this stays the same."""

    runtime: str
    image: str = ""
    user: str = ""
    cpu: float | None = None
    memory: str | None = None
    pids: int | None = 4096
    network: bool = False
    sandbox_uid: int = DEFAULT_SANDBOX_UID
    podman_flags: tuple[str, ...] | None = None
    secret_mounts: tuple[str, ...] = ()  # directories where secrets appear, read-only


class SandboxDirs:
    """The host directories bound into one sandbox for its whole life: ``pfs`` (read-only at
    /pfs), ``pfs/out`` (writable at /pfs/out), ``tmp`` (the private /tmp) and the agent. The
    worker refills them datum by datum; they are removed when the sandbox ends, and by the next
    worker to start when their worker was killed (the directory name carries its pid)."""

    def __init__(
        self, root: str | None, owner: int | None, secret_mounts: tuple[str, ...] = ()
    ) -> None:
        base = os.path.abspath(root or default_scratch_root())
        if owner is not None:
            _check_searchable(base)
        remove_stale(base)
        self.root = tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=base)
        os.chmod(self.root, 0o700)
        self.pfs = self.root + "/pfs"
        self.out = self.pfs + "/out"
        self.tmp = self.root + "/tmp"
        self.agent_dir = self.root + "/agent"
        for path in (self.pfs, self.out, self.tmp, self.agent_dir):
            os.mkdir(path, 0o700)
        os.chmod(self.pfs, 0o755)
        os.chmod(self.agent_dir, 0o755)
        shutil.copy2(build_agent(), self.agent_dir + "/" + AGENT_NAME)
        os.chmod(self.agent_dir + "/" + AGENT_NAME, 0o755)
        self.owner = owner
        if owner is not None:
            for path in (self.root, self.out, self.tmp):
                os.chown(path, owner, owner)
        # One directory per secret mount path, bound read-only there; filled by the worker.
        self.secret_dirs = {path: f"{self.root}/secret-{i}" for i, path in enumerate(secret_mounts)}
        self._secrets_written: dict[str, dict[str, str]] = {}
        for directory in self.secret_dirs.values():
            os.mkdir(directory, 0o500)
            if owner is not None:
                os.chown(directory, owner, owner)

    def write_secrets(self, files: dict[str, dict[str, str]]) -> None:
        """Make each secret's keys files (mode 0400, owned by the sandbox's user) in the
        directory bound at its mount path; ``files`` maps mount path -> key -> base64 value."""
        if files == self._secrets_written:
            return
        for path, keys in files.items():
            directory = self.secret_dirs[path]
            os.chmod(directory, 0o700)  # writable for a worker that is not root, for a moment
            for name in os.listdir(directory):
                if name not in keys:
                    os.unlink(os.path.join(directory, name))
            for key, value in keys.items():
                target = os.path.join(directory, key)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(target)
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o400)
                with os.fdopen(fd, "wb") as f:
                    if self.owner is not None:
                        os.fchown(fd, self.owner, self.owner)
                    f.write(base64.b64decode(value))
            os.chmod(directory, 0o500)
        self._secrets_written = {p: dict(k) for p, k in files.items()}

    def open_log(self) -> int:
        """A file for the runtime's own messages (why a sandbox did not start)."""
        return os.open(self.root + "/runtime.log", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def log_tail(self) -> str:
        """The last line of the runtime's messages."""
        try:
            with open(self.root + "/runtime.log", "rb") as f:
                lines = f.read()[-4096:].decode(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1] if lines else ""

    def clear(self) -> None:
        """Empty /pfs/out and /tmp (keeping the directories: they are mount points)."""
        for directory in (self.out, self.tmp):
            for name in os.listdir(directory):
                path = os.path.join(directory, name)
                if os.path.isdir(path) and not os.path.islink(path):
                    _force_rmtree(path)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)

    def remove(self) -> None:
        """Remove every directory of the sandbox."""
        _force_rmtree(self.root)


def default_scratch_root() -> str:
    """Where sandbox directories go by default: as root, ``/var/tmp/tusk-sandboxes`` (mode
    0711, so the sandbox's uid reaches its own directories, whatever the mode of /tmp); else
    the temp dir."""
    if os.geteuid() != 0:
        return tempfile.gettempdir()
    path = "/var/tmp/tusk-sandboxes"
    os.makedirs(path, mode=0o711, exist_ok=True)
    os.chmod(path, 0o711)
    return path


def _check_searchable(base: str) -> None:
    """The sandbox's uid must reach its directories: every parent of ``base`` needs o+x."""
    path = base
    while True:
        if not os.stat(path).st_mode & 0o001:
            raise OSError(
                f"the scratch directory {base} is not reachable by the sandbox's uid ({path} "
                "is not searchable by others): set TUSK_WORKER_SCRATCH to a directory like /tmp"
            )
        if path == "/":
            return
        path = os.path.dirname(path)


def remove_stale(base: str) -> None:
    """Remove sandbox directories left by workers that were killed (their pid is gone)."""
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        if not name.startswith(_PREFIX):
            continue
        pid = name[len(_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            _force_rmtree(os.path.join(base, name))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _force_rmtree(path: str) -> None:
    def fix(function: object, failed: str, error: object) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(failed), 0o700)
            if os.path.isdir(failed) and not os.path.islink(failed):
                os.chmod(failed, 0o700)
                shutil.rmtree(failed, onerror=fix)
            else:
                os.unlink(failed)

    shutil.rmtree(path, onerror=fix)


def resolve_user(user: str, rootfs: str | None) -> tuple[int, int]:
    """``user`` (``name``, ``uid``, ``name:group`` or ``uid:gid``) as numbers, looked up in the
    image's /etc/passwd and /etc/group; root when empty."""
    if not user:
        return 0, 0
    name, _, group = user.partition(":")

    def lookup(file: str, key: str) -> tuple[int, int] | None:
        if key.isdigit():
            return int(key), int(key)
        if rootfs is None:
            return None
        with contextlib.suppress(OSError):
            for line in Path(rootfs, "etc", file).read_text(errors="replace").splitlines():
                parts = line.split(":")
                if len(parts) >= 4 and parts[0] == key:
                    return int(parts[2]), int(parts[3])
        return None

    found = lookup("passwd", name)
    if found is None:
        raise ValueError(f"user {name!r} is not in the image's /etc/passwd")
    uid, gid = found
    if group:
        g = lookup("group", group)
        if g is None:
            raise ValueError(f"group {group!r} is not in the image's /etc/group")
        gid = g[0] if not group.isdigit() else int(group)
    return uid, gid


class Sandbox:
    """A running sandbox with its agent: commands run in it one at a time."""

    runtime = "host"

    def __init__(
        self,
        spec: SandboxSpec,
        dirs: SandboxDirs,
        proc: subprocess.Popen[bytes],
        image: ImageConfig | None,
        description: str,
    ) -> None:
        self.spec = spec
        self.dirs = dirs
        self.proc = proc
        self.image = image
        self.description = description
        self.agent = AgentClient(proc)
        self.name = secrets.token_hex(4)
        self.on_kill: Callable[[], object] | None = None  # what else a killed sandbox leaves

    @property
    def pfs_view(self) -> str:
        """Where user code sees the datum's /pfs."""
        return "/pfs"

    def run(
        self,
        argv: list[str],
        env: dict[str, str],
        cwd: str,
        stdin: bytes | None,
        timeout: float | None,
        logs: list[LogLine],
    ) -> AgentResult:
        """Run one command in the sandbox."""
        return self.agent.run(argv, env, cwd, stdin, timeout, logs)

    def alive(self) -> bool:
        """Whether the sandbox still runs."""
        return self.proc.poll() is None

    def close(self) -> None:
        """End the sandbox and remove its directories."""
        if not self.agent.close() and self.on_kill is not None:
            self.on_kill()
        self.dirs.remove()
