"""The in-sandbox agent: its build (a static C program, cached by source hash) and its client.

One agent runs per sandbox, started with the sandbox, and runs the datum commands it is sent one
at a time (see ``agent.c`` for the wire format). It is a static binary so that it runs in any
image, with or without a shell, libc or Python.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import IO

from tusk.worker.process import LineSplitter
from tusk.worker.protocol import LogLine

AGENT_NAME = "tusk-agent"
_build_lock = threading.Lock()


class AgentUnavailable(Exception):
    """The agent cannot be built here (no C compiler, no static libc)."""


class SandboxDied(Exception):
    """The sandbox (or the agent in it) ended while the worker talked to it."""


def agent_flags(cpus: tuple[int, ...]) -> list[str]:
    """The agent's flags after ``--pidns``: ``--cpus`` when the worker is pinned to one CPU
    and the commands are to run on ``cpus`` once started."""
    return [f"--cpus={','.join(map(str, cpus))}"] if cpus else []


def agent_source() -> bytes:
    """The agent's C source, shipped in the package."""
    return resources.files("tusk.worker.runtimes").joinpath("agent.c").read_bytes()


def agent_cache_dir() -> Path:
    """Where built agents are kept (``$XDG_CACHE_HOME/tusk``, ``~/.cache/tusk``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tusk"


def build_agent(cache: Path | None = None) -> Path:
    """The agent binary, compiled with ``cc -static`` on first use and cached by source hash.

    Its directory is readable by everyone (it is bound read-only into every sandbox).
    """
    source = agent_source()
    digest = hashlib.sha256(source).hexdigest()[:16]
    directory = (cache or agent_cache_dir()) / f"agent-{digest}"
    binary = directory / AGENT_NAME
    if binary.exists():
        return binary
    with _build_lock:
        if binary.exists():
            return binary
        compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        if compiler is None:
            raise AgentUnavailable(
                "no C compiler to build the sandbox agent (install gcc and libc6-dev)"
            )
        directory.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="agent-", dir=directory.parent))
        try:
            (work / "agent.c").write_bytes(source)
            proc = subprocess.run(
                [compiler, "-static", "-O2", "-o", str(work / AGENT_NAME), str(work / "agent.c")],
                capture_output=True,
                timeout=120,
            )
            if proc.returncode != 0:
                tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
                raise AgentUnavailable(
                    "cannot build the sandbox agent with a static libc "
                    f"(install libc6-dev): {' '.join(tail)}"
                )
            (work / "agent.c").unlink()
            os.chmod(work, 0o755)
            try:
                os.rename(work, directory)
            except OSError:  # built meanwhile by another process
                shutil.rmtree(work, ignore_errors=True)
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
        os.chmod(directory.parent, 0o755)
    return binary


@dataclass(frozen=True, slots=True)
class AgentResult:
    """How one command ended in the sandbox."""

    returncode: int | None  # None when killed for running too long
    timed_out: bool
    error: str  # "", "exec" (could not start), "chdir", "socket" or "gone" (batching)
    errno: int


class AgentClient:
    """Speaks to one agent over its stdin and stdout (the pipes of ``proc``)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self.proc = proc
        self._in: IO[bytes] = proc.stdin
        self._out: IO[bytes] = proc.stdout

    def wait_ready(self) -> None:
        """Wait for the agent's ready frame; SandboxDied if the sandbox did not start."""
        kind, _ = self._frame()
        if kind != b"r":
            raise SandboxDied(f"unexpected first frame {kind!r} from the agent")

    def _exact(self, n: int) -> bytes:
        data = self._out.read(n)
        if data is None or len(data) < n:
            raise SandboxDied("the sandbox ended")
        return data

    def _frame(self) -> tuple[bytes, bytes]:
        head = self._exact(5)
        (length,) = struct.unpack("<I", head[1:])
        return head[:1], self._exact(length) if length else b""

    def start(
        self,
        argv: list[str],
        env: dict[str, str],
        cwd: str,
        stdin: bytes | None,
        timeout: float | None,
        uid: int = -1,
        gid: int = -1,
        batch_socket: str = "",
        home_cpu: int = -1,
    ) -> None:
        """Send one command to the agent (with ``batch_socket``: a datum-batching command that
        serves ``next datum`` on that socket, its hand-overs on ``home_cpu`` when it is not
        -1; see ``agent.c``)."""
        fields = [
            batch_socket,
            str(home_cpu),
            str(int(timeout * 1000) if timeout else 0),
            str(uid),
            str(gid),
            cwd,
            str(len(argv)),
            *argv,
            str(len(env)),
            *(f"{k}={v}" for k, v in env.items()),
        ]
        if any("\x00" in f for f in fields):
            raise ValueError("a NUL byte in the command, its environment or working directory")
        payload = b"".join(f.encode() + b"\x00" for f in fields) + (stdin or b"")
        self._send(payload)

    def _send(self, payload: bytes) -> None:
        try:
            self._in.write(struct.pack("<I", len(payload)) + payload)
            self._in.flush()
        except OSError as e:
            raise SandboxDied(f"the sandbox ended ({e})") from e

    def run(
        self,
        argv: list[str],
        env: dict[str, str],
        cwd: str,
        stdin: bytes | None,
        timeout: float | None,
        logs: list[LogLine],
        uid: int = -1,
        gid: int = -1,
        started: Callable[[], None] | None = None,
    ) -> AgentResult:
        """Run one command in the sandbox, appending its output lines to ``logs``; ``started``
        is called once the command is on its way (the agent runs it meanwhile)."""
        self.start(argv, env, cwd, stdin, timeout, uid, gid)
        if started is not None:
            started()
        event = self.wait(logs)
        if not isinstance(event, AgentResult):
            raise SandboxDied("unexpected frame b'n' from the agent")
        return event

    def wait(self, logs: list[LogLine]) -> AgentResult | bytes:
        """Read the command's output into ``logs`` until it ends (its result) or, batching,
        until its next ``next datum`` request (the request's bytes)."""
        splitters = {b"o": LineSplitter("stdout", logs), b"e": LineSplitter("stderr", logs)}
        while True:
            kind, data = self._frame()
            if kind in splitters:
                splitters[kind].feed(data, time.time())
                continue
            now = time.time()
            for splitter in splitters.values():
                splitter.close(now)
            if kind == b"n":
                return data
            if kind != b"x":
                raise SandboxDied(f"unexpected frame {kind!r} from the agent")
            status, timed_out, error, number = data.decode().split()
            return AgentResult(
                None if timed_out == "1" else int(status),
                timed_out == "1",
                {"x": "exec", "c": "chdir", "s": "socket", "g": "gone"}.get(error, ""),
                int(number),
            )

    def answer(self, env: dict[str, str] | None) -> None:
        """Answer the pending ``next datum`` request: the next datum's variables, or None
        when there is none (the agent kills the command)."""
        if env is None:
            self._send(b"q")
            return
        entries = [f"{k}={v}" for k, v in env.items()]
        if any("\x00" in e for e in entries):
            raise ValueError("a NUL byte in a datum's environment")
        self._send(b"d" + b"".join(e.encode() + b"\x00" for e in entries))

    def close(self, grace: float = 1.0) -> bool:
        """End the agent (EOF on its stdin) and the sandbox with it; False when it had to be
        killed (it was busy with a command)."""
        with contextlib.suppress(OSError):
            self._in.close()
        gentle = True
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            gentle = False
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(OSError):
            self._out.close()
        return gentle
