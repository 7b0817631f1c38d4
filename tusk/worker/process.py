"""Running one user command: feed stdin, capture both output streams line by line, time it out.

One ``poll`` loop in the calling thread does it all (stdin writes, stdout and stderr reads, the
timeout, and noticing the exit through a pidfd), so a datum costs no helper threads. Like Go's
``cmd.Wait`` in Pachyderm's worker, the command is done when it has exited and its output pipes are
closed (a background child still holding them is waited for, up to the timeout); anything left of
its process group is then killed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import subprocess
import time
from dataclasses import dataclass

from tusk.worker.protocol import LogLine, LogStream

MAX_LINE_BYTES = 64 << 10
_READ_SIZE = 64 << 10
_WRITE_SIZE = 64 << 10
# After a kill, how long to wait for pipes held by processes that left the group.
_DRAIN_AFTER_KILL = 2.0


@dataclass(frozen=True, slots=True)
class Completed:
    """How a user command ended."""

    returncode: int | None  # None when the command was killed for running too long
    timed_out: bool


class _LineSplitter:
    """Bytes of one stream → timestamped lines of at most MAX_LINE_BYTES (the rest is dropped)."""

    __slots__ = ("stream", "logs", "buf", "dropping")

    def __init__(self, stream: LogStream, logs: list[LogLine]) -> None:
        self.stream: LogStream = stream
        self.logs = logs
        self.buf = bytearray()
        self.dropping = False  # inside an over-long line, past its first MAX_LINE_BYTES

    def feed(self, data: bytes, now: float) -> None:
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            self._add(data[start:end])
            self._emit(now)
            self.dropping = False
            start = end + 1
        if start < len(data):
            self._add(data[start:])
            if len(self.buf) >= MAX_LINE_BYTES and not self.dropping:
                self._emit(now)
                self.dropping = True

    def _add(self, part: bytes) -> None:
        if not self.dropping:
            self.buf += part[: MAX_LINE_BYTES - len(self.buf)]

    def _emit(self, now: float) -> None:
        if self.dropping:
            return
        line = self.buf.decode("utf-8", "replace")
        self.buf.clear()
        self.logs.append((now, self.stream, line))

    def close(self, now: float) -> None:
        if self.buf and not self.dropping:
            self._emit(now)


def run_command(
    argv: list[str],
    *,
    executable: str | None = None,
    env: dict[str, str],
    cwd: str | None,
    stdin: bytes | None,
    timeout: float | None,
    logs: list[LogLine],
) -> Completed:
    """Run ``argv`` in a new session, appending its output lines to ``logs``.

    Raises OSError when the command cannot be started.
    """
    proc = subprocess.Popen(
        argv,
        executable=executable,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    try:
        timed_out, exit_seen = _pump(proc, stdin, timeout, logs)
    except BaseException:
        _kill_group(proc.pid)
        proc.wait()
        raise
    finally:
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
    if exit_seen or timed_out:
        # Kill stragglers; the leader is not reaped yet, so its group id cannot have been reused.
        _kill_group(proc.pid)
    returncode = proc.wait()
    return Completed(None if timed_out else returncode, timed_out)


def _pump(
    proc: subprocess.Popen[bytes], stdin: bytes | None, timeout: float | None, logs: list[LogLine]
) -> tuple[bool, bool]:
    """Move bytes until the command exited and closed its pipes.

    Returns (timed out, exit seen without reaping the process).
    """
    assert proc.stdout is not None and proc.stderr is not None
    poller = select.poll()
    readers: dict[int, _LineSplitter] = {
        proc.stdout.fileno(): _LineSplitter("stdout", logs),
        proc.stderr.fileno(): _LineSplitter("stderr", logs),
    }
    for fd in readers:
        poller.register(fd, select.POLLIN)
    stdin_fd = -1
    pending = memoryview(stdin or b"")
    if proc.stdin is not None:
        stdin_fd = proc.stdin.fileno()
        os.set_blocking(stdin_fd, False)
        poller.register(stdin_fd, select.POLLOUT)
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = -1  # no pidfd: the end of output is taken as the end of the command
    else:
        poller.register(pidfd, select.POLLIN)
    exited = pidfd < 0
    deadline = None if timeout is None else time.monotonic() + timeout
    timed_out = False
    try:
        while readers or not exited:
            wait_ms = None
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if timed_out:
                        break  # killed, but something outside the group still holds a pipe
                    timed_out = True
                    _kill_group(proc.pid)
                    deadline = time.monotonic() + _DRAIN_AFTER_KILL
                    continue
                wait_ms = max(1, int(remaining * 1000) + 1)
            for fd, _event in poller.poll(wait_ms):
                if fd == pidfd:
                    exited = True
                    poller.unregister(pidfd)
                elif fd == stdin_fd:
                    pending = _write_some(stdin_fd, pending)
                    if not pending:
                        poller.unregister(stdin_fd)
                        assert proc.stdin is not None
                        with contextlib.suppress(OSError):
                            proc.stdin.close()
                        stdin_fd = -1
                else:
                    data = os.read(fd, _READ_SIZE)
                    now = time.time()
                    if data:
                        readers[fd].feed(data, now)
                    else:
                        poller.unregister(fd)
                        readers.pop(fd).close(now)
    finally:
        if pidfd >= 0:
            os.close(pidfd)
    now = time.time()
    for splitter in readers.values():
        splitter.close(now)
    return timed_out, pidfd >= 0 and exited


def _write_some(fd: int, pending: memoryview) -> memoryview:
    """Write what the pipe takes now; an empty view when done or the reader has gone."""
    try:
        written = os.write(fd, pending[:_WRITE_SIZE])
    except BlockingIOError:
        return pending
    except OSError as e:
        if e.errno in (errno.EPIPE, errno.EINVAL):
            return pending[:0]  # the command does not read its stdin (to the end)
        raise
    return pending[written:]


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
