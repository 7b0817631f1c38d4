"""What every runtime shares: the sandbox's settings, its host directories and its agent."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from tusk.worker.protocol import LogLine
from tusk.worker.runtimes import cgroups, disk
from tusk.worker.runtimes.agent import AGENT_NAME, AgentClient, AgentResult, build_agent
from tusk.worker.runtimes.images import ImageConfig

# DEFAULT_SANDBOX_UID: the host uid that a sandbox's root maps to (and the base of its uid range
# under podman).
from tusk.worker.settings import DEFAULT_SANDBOX_UID, format_bytes

AGENT_DIR = "/.tusk"  # where the agent is bound inside a sandbox
RUN_DIR = AGENT_DIR + "/run"  # where the sandbox's run directory (batching's socket) is bound
_PREFIX = "tusk-sandbox-"
_SPOUT_OUT = "/spout-out"  # a spout sandbox's out directory (its /pfs/out is a pipe)


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
    disk: int | None = None  # bytes of /pfs/out and /tmp together
    input_memory: int | None = None  # /pfs (the inputs) in memory of this size (None: on disk)
    gpus: tuple[str, ...] = ()  # device nodes passed in (e.g. /dev/nvidia0, /dev/nvidiactl)
    gpu_ids: tuple[str, ...] = ()  # their indexes, for NVIDIA_VISIBLE_DEVICES
    spout: bool = False  # /pfs/out is a named pipe (a spout pipeline's), not a directory
    # The worker runs pinned to one CPU: its commands get these CPUs once started (the agent's
    # --cpus); empty when the worker is not pinned.
    cpus: tuple[int, ...] = ()

    @property
    def memory_bytes(self) -> int | None:
        """``memory`` as a number of bytes."""
        return int(float(self.memory)) if self.memory else None


class LimitExceeded(Exception):
    """A datum went past a limit of its sandbox; the message says which."""


class SandboxDirs:
    """The host directories bound into one sandbox for its whole life: ``pfs`` (read-only at
    /pfs), ``pfs/out`` (writable at /pfs/out), ``tmp`` (the private /tmp), ``shm`` (its
    /dev/shm, so that shared memory files count towards the disk limit and go after each datum
    like /tmp's) and the agent. The
    worker refills them datum by datum; they are removed when the sandbox ends, and by the next
    worker to start when their worker was killed (the directory name carries its pid)."""

    def __init__(
        self,
        root: str | None,
        owner: int | None,
        disk_limit: int | None = None,
        secret_mounts: tuple[str, ...] = (),
        spout: bool = False,
        input_memory: int | None = None,
    ) -> None:
        """With ``spout``, /pfs/out is a named pipe (``fifo``) in ``pfs``, which the read-only
        bind of /pfs carries into the sandbox (writing to a pipe writes nothing to its
        filesystem); ``out`` is then a directory of its own that nothing binds. With
        ``input_memory`` (and root), ``pfs`` is a tmpfs of that many bytes: a datum's input
        files cost a few microseconds each to make and remove there, on a disk tens."""
        base = os.path.abspath(root or default_scratch_root())
        if owner is not None:
            _check_searchable(base)
        remove_stale(base)
        self.root = tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=base)
        os.chmod(self.root, 0o700)
        self.pfs = self.root + "/pfs"
        self.out = self.root + _SPOUT_OUT if spout else self.pfs + "/out"
        self.fifo = self.pfs + "/out" if spout else ""
        self.agent_dir = self.root + "/agent"
        self.disk_limit = disk_limit
        self.disk_hard = False  # /pfs/out and /tmp are on a filesystem of the limit's size
        self.disk_problem = ""  # why they are not (the fallback applies)
        self.input_memory: int | None = None  # bytes of the tmpfs at pfs (None: on disk)
        try:
            self.run = self.root + "/run"  # datum batching's socket (/.tusk/run), writable
            os.mkdir(self.pfs, 0o700)
            if input_memory is not None and os.geteuid() == 0:
                self.input_memory = _memory_pfs(self.pfs, input_memory)
            for path in (self.out, self.agent_dir, self.run):
                os.mkdir(path, 0o700)
            self.tmp = self._writable_dirs(disk_limit)
            self.shm = os.path.dirname(self.tmp) + "/shm"  # the sandbox's /dev/shm
            os.mkdir(self.shm, 0o700)
            if self.fifo:
                # writable by whichever user the image runs as; only the sandbox reaches it
                os.mkfifo(self.fifo, 0o600)
                os.chmod(self.fifo, 0o622)
                if owner is not None:
                    os.chown(self.fifo, owner, owner)
            os.chmod(self.pfs, 0o755)
            os.chmod(self.agent_dir, 0o755)
            shutil.copy2(build_agent(), self.agent_dir + "/" + AGENT_NAME)
            os.chmod(self.agent_dir + "/" + AGENT_NAME, 0o755)
            _add_batching_tools(self.agent_dir)
            self.owner = owner
            if owner is not None:
                for path in (self.root, self.out, self.tmp, self.shm, self.run):
                    os.chown(path, owner, owner)
            # One directory per secret mount path, bound read-only there; filled by the worker.
            self.secret_dirs = {p: f"{self.root}/secret-{i}" for i, p in enumerate(secret_mounts)}
            self._secrets_written: dict[str, dict[str, str]] = {}
            # The /pfs/<input> directories between two datums (kept empty for the next one, pfs
            # read-only); None when not known (the next datum empties pfs and makes its own).
            self.pfs_inputs: frozenset[str] | None = None
            for directory in self.secret_dirs.values():
                os.mkdir(directory, 0o500)
                if owner is not None:
                    os.chown(directory, owner, owner)
        except BaseException:
            self.remove()
            raise

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

    def _writable_dirs(self, disk_limit: int | None) -> str:
        """Make /tmp's directory, with /pfs/out on the size-limited filesystem when one can be
        made; return /tmp's directory."""
        if disk_limit is None:
            os.mkdir(self.root + "/tmp", 0o700)
            return self.root + "/tmp"
        rw = self.root + "/rw"
        os.mkdir(rw, 0o755)
        try:
            disk.make_filesystem(self.root + "/disk.img", rw, disk_limit)
            os.chmod(rw, 0o755)
            os.mkdir(rw + "/out", 0o700)
            proc = subprocess.run(["mount", "--bind", rw + "/out", self.out], capture_output=True)
            if proc.returncode != 0:
                raise disk.DiskUnavailable(proc.stderr.decode(errors="replace").strip())
        except disk.DiskUnavailable as e:
            self.disk_problem = str(e)
            _unmount_writable(self.root)
            os.mkdir(self.root + "/tmp", 0o700)
            return self.root + "/tmp"
        self.disk_hard = True
        os.mkdir(rw + "/tmp", 0o700)
        return rw + "/tmp"

    def holds_inputs(self, size: int) -> bool:
        """Whether inputs taking ``size`` bytes (see ``input_bytes``) fit in ``pfs``."""
        return self.input_memory is None or size <= self.input_memory

    def out_binds(self, flag: str = "--bind") -> list[str]:
        """bwrap's arguments that bind /pfs/out (none for a spout: its pipe comes with /pfs)."""
        return [] if self.fifo else [flag, self.out, "/pfs/out"]

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

    def clear(self, out_only: bool = False) -> None:
        """Empty /pfs/out, /tmp and /dev/shm, or only /pfs/out (keeping the directories: they
        are mount points)."""
        for directory in (self.out,) if out_only else (self.out, self.tmp, self.shm):
            for name in os.listdir(directory):
                path = os.path.join(directory, name)
                if os.path.isdir(path) and not os.path.islink(path):
                    force_rmtree(path)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)

    def disk_exceeded(self) -> bool:
        """Whether the datum went past the disk limit: it filled the size-limited filesystem,
        or (without one) its files take more than the limit (``RLIMIT_FSIZE`` is set one byte
        above it, so a file it cut short still shows)."""
        limit = self.disk_limit
        if limit is None:
            return False
        if self.disk_hard:
            return disk.full(self.out, limit)
        return disk.usage(self.out, self.tmp, self.shm) > limit

    def remove(self) -> None:
        """Remove every directory of the sandbox (and its filesystem)."""
        _unmount_all(self.root)
        force_rmtree(self.root)


def _add_batching_tools(agent_dir: str) -> None:
    """What datum batching's user code finds next to the agent: ``bin/pachctl`` (the agent under
    that name answers ``pachctl next datum``), ``python/tusk_batch.py`` (the same for Python
    code, without a process per call) and ``run``, where the run directory is bound."""
    for sub in ("bin", "python", "run"):
        os.mkdir(f"{agent_dir}/{sub}", 0o755)
    os.symlink("../" + AGENT_NAME, f"{agent_dir}/bin/pachctl")
    helper = resources.files("tusk").joinpath("batch.py").read_bytes()
    with open(f"{agent_dir}/python/tusk_batch.py", "wb") as f:
        f.write(helper)
    os.chmod(f"{agent_dir}/python/tusk_batch.py", 0o644)


def _memory_pfs(pfs: str, size: int) -> int | None:
    """Mount a tmpfs of ``size`` bytes at ``pfs``; its size, or None when it cannot be (the
    inputs then go to the disk, as without one)."""
    options = f"size={size},mode=0700,nosuid,nodev"
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tusk-inputs", pfs], capture_output=True, timeout=60
    )
    return size if proc.returncode == 0 else None


def input_bytes(files: Iterable[int]) -> int:
    """What input files of these sizes take in a tmpfs: whole pages, and a page more for
    each (its directory entry and what rounding leaves)."""
    return sum(((size + 4095) // 4096 + 1) * 4096 for size in files)


def _unmount_writable(root: str) -> None:
    """Unmount the sandbox directory's /pfs/out bind (a spout's out directory) and its
    size-limited filesystem."""
    for mountpoint in (root + "/pfs/out", root + _SPOUT_OUT, root + "/rw"):
        disk.unmount(mountpoint)


def _unmount_all(root: str) -> None:
    """Unmount all of the sandbox directory's filesystems: its inputs' tmpfs last, as the
    /pfs/out bind is inside it."""
    _unmount_writable(root)
    disk.unmount(root + "/pfs")


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
            _unmount_all(os.path.join(base, name))
            force_rmtree(os.path.join(base, name))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def force_rmtree(path: str) -> None:
    """Remove ``path`` even where user code took away permissions: open a failing entry up and
    retry it once. An entry that still cannot go (a mount point, a file a process still writes
    into) is left, never retried in a loop."""
    retried: set[str] = set()

    def fix(function: object, failed: str, error: object) -> None:
        if failed in retried:
            return
        retried.add(failed)
        with contextlib.suppress(OSError):
            if failed != path:  # never the mode of the directory ``path`` is in
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
    """A running sandbox with its agent: commands run in it one at a time.

    ``cgroup`` holds its processes' memory, cpu and pids limits when the runtime made one
    (bwrap); ``memory_events`` is the file that counts OOM kills in the sandbox, wherever its
    cgroup is (podman's own). Without a size-limited filesystem for /pfs/out and /tmp, a
    watchdog measures them while a command runs and kills the sandbox past the disk limit.
    """

    runtime = "host"

    def __init__(
        self,
        spec: SandboxSpec,
        dirs: SandboxDirs,
        proc: subprocess.Popen[bytes],
        image: ImageConfig | None,
        description: str,
        cgroup: cgroups.Cgroup | None = None,
    ) -> None:
        self.spec = spec
        self.dirs = dirs
        self.proc = proc
        self.image = image
        self.description = description
        self.agent = AgentClient(proc)
        self.name = secrets.token_hex(4)
        self.on_kill: Callable[[], object] | None = None  # what else a killed sandbox leaves
        self.cgroup = cgroup
        self.memory_events: Callable[[], int] | None = None  # OOM kills so far (podman)
        self._oom_seen = 0
        self.limits_note = ""  # what the runtime could not enforce here, said once per sandbox

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
        started: Callable[[], None] | None = None,
    ) -> AgentResult:
        """Run one command in the sandbox (``started`` is called once it runs).

        Raises LimitExceeded when the command went past the sandbox's memory or disk limit
        (the sandbox lives on, except when the disk watchdog had to kill it).
        """
        limit = self.dirs.disk_limit
        if limit is None or self.dirs.disk_hard or self.runtime == "host":
            try:
                result = self.agent.run(argv, env, cwd, stdin, timeout, logs, started=started)
            except Exception:
                self._check_oom()
                raise
            self._check_limits(result)
            return result
        watched = (self.dirs.out, self.dirs.tmp, self.dirs.shm)
        watchdog = disk.Watchdog(watched, limit, self.kill, 0.2)
        try:
            with watchdog:
                result = self.agent.run(argv, env, cwd, stdin, timeout, logs, started=started)
        except Exception:
            if watchdog.fired:
                raise LimitExceeded(f"disk limit of {format_bytes(limit)} exceeded") from None
            self._check_oom()
            raise
        self._check_limits(result)
        return result

    @property
    def tools_view(self) -> str:
        """Where user code sees the agent's directory (``bin/pachctl``, ``python/``)."""
        return AGENT_DIR

    @property
    def run_view(self) -> str:
        """Where user code sees the sandbox's run directory."""
        return RUN_DIR

    def start_batch(
        self,
        argv: list[str],
        env: dict[str, str],
        cwd: str,
        stdin: bytes | None,
        timeout: float | None,
        home_cpu: int = -1,
    ) -> str:
        """Start a datum-batching command, which serves ``next datum`` on a socket of the run
        directory; returns the socket's path as user code sees it. Its events come from
        ``agent.wait``, answers go by ``agent.answer``; :meth:`check_limits` after it ends.
        ``home_cpu``: the CPU of the worker's thread, where the agent hands quick datums over
        (see ``agent.c``); -1 for none."""
        socket = f"{self.run_view}/next.sock"
        self.agent.start(argv, env, cwd, stdin, timeout, batch_socket=socket, home_cpu=home_cpu)
        return socket

    def check_limits(self, result: AgentResult | None) -> None:
        """LimitExceeded when the last command went past the sandbox's memory or disk limit,
        or (``result`` None: a batched datum its code said was done) past the disk limit. An
        out-of-memory kill of the code itself ends it, so it shows in its result."""
        if result is not None:
            self._check_limits(result)
            return
        limit = self.dirs.disk_limit
        if limit is not None and self.dirs.disk_exceeded():
            raise LimitExceeded(f"disk limit of {format_bytes(limit)} exceeded")

    def _check_oom(self) -> None:
        if self.cgroup is not None:
            struck = self.cgroup.new_oom_kill()
        elif self.memory_events is not None:
            now = self.memory_events()
            struck, self._oom_seen = now > self._oom_seen, now
        else:
            return
        if struck:
            memory = self.spec.memory_bytes
            limit = f" (limit {format_bytes(memory)})" if memory else ""
            raise LimitExceeded(f"killed: out of memory{limit}")

    def _check_limits(self, result: AgentResult) -> None:
        exceeded = self.dirs.disk_exceeded()
        if result.returncode == 0 and not result.timed_out and not exceeded:
            return
        self._check_oom()
        limit = self.dirs.disk_limit
        if limit is not None and (exceeded or result.returncode == -signal.SIGXFSZ):
            raise LimitExceeded(f"disk limit of {format_bytes(limit)} exceeded")

    def alive(self) -> bool:
        """Whether the sandbox still runs."""
        return self.proc.poll() is None

    def kill(self) -> None:
        """Kill the sandbox at once (its agent and whatever runs in it)."""
        with contextlib.suppress(OSError):
            self.proc.kill()
        if self.cgroup is not None:
            for pid in self.cgroup.pids():
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        if self.on_kill is not None:
            with contextlib.suppress(Exception):
                self.on_kill()

    def close(self) -> None:
        """End the sandbox and remove its directories (and its cgroup)."""
        if not self.agent.close() and self.on_kill is not None:
            self.on_kill()
        if self.cgroup is not None:
            self.cgroup.remove()
        self.dirs.remove()
