"""A spout's side of the worker: its code runs on in the sandbox, and each task takes the next
tar stream it writes to the named pipe /pfs/out.

The code is started by the first spout task (and again by the next one after it ended), in a
thread of the worker, and keeps running between tasks. The worker holds the pipe's reading end
open for the code's whole life, so writers never wait to open it; a writer that writes while no
task reads waits once the pipe's buffer is full, as with any pipe.

What the code writes is a sequence of tar archives, one per stream: a stream ends with its
archive's end blocks (the NUL bytes between archives are skipped), so streams written back to
back, by one writer or by several in turn, are told apart by their content, and a writer may
close the pipe after each archive (as 1.x spouts do) or keep it open. A writer that closes the
pipe in the middle of an archive cuts that stream short. Each task reads one stream as it
arrives and stores each regular file in the object store. Its result is, for the server
(:mod:`tusk.pps.spout`):

- ``ok``: one whole, valid stream; ``outputs`` and ``dirs`` are its files and directories;
- not ``ok``, its reason starting with :data:`BAD_STREAM`: the stream was not a valid tar
  archive (cut short, garbage, a path that leaves /pfs/out) or went past the size limit (the
  disk limit, or max_output_bytes); the code keeps running, and whatever it writes until no
  writer holds the pipe open is dropped with that stream (the next stream starts after that);
- else not ``ok``: the code ended (``exit_code`` -1 when it could not even start or its sandbox
  died); the next task starts it again.

The logs of a result are what the code printed since the previous result.
"""

from __future__ import annotations

import os
import posixpath
import select
import tarfile
import threading
from dataclasses import dataclass, field

from tusk.storage import FileWriter, Ingestor, ObjectStore
from tusk.worker.datum import Worker, _DatumRun
from tusk.worker.files import DatumFailed
from tusk.worker.protocol import DatumResult, DatumTask, LogLine, OutputFile
from tusk.worker.runtimes import LimitExceeded, Sandbox, SandboxDied
from tusk.worker.settings import format_bytes

POLL_MS = 500
BAD_STREAM = "invalid tar stream"  # how the reason of a dropped stream starts
_READ_BYTES = 1 << 20


class StreamTooLarge(Exception):
    """A tar stream went past the size limit of one stream."""


class PipeReader:
    """The reading end of the spout's pipe, open while its code runs, read through a buffer.

    ``read`` serves :mod:`tarfile` (opened with a 512-byte buffer) and never returns bytes past
    the current 512-byte block of the stream, so the archive's reader takes nothing of the
    stream after it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = self._open()
        self.buf = b""
        self.off = 0
        self.pos = 0  # bytes of the current stream taken
        self.limit: int | None = None
        self.eof = False  # the last read found no writer and nothing left
        self.resync = False  # drop everything until no writer holds the pipe (a bad stream)

    def _open(self) -> int:
        return os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)

    def close(self) -> None:
        """Close the reading end."""
        os.close(self.fd)

    def _refresh(self) -> None:
        # a pipe whose writers all left reports a hang-up for good on that open file: take a
        # fresh one first (the pipe never is without a reader), then drop the old one
        fresh = self._open()
        os.close(self.fd)
        self.fd = fresh

    def _poll(self) -> int:
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        events = poller.poll(POLL_MS)
        return events[0][1] if events else 0

    def _fill(self) -> bool:
        """More bytes in the buffer (waiting for a writer to send some); False when no writer
        holds the pipe and it is empty."""
        while True:
            try:
                data = os.read(self.fd, _READ_BYTES)
            except BlockingIOError:
                self._poll()
                continue
            if not data:
                self.eof = True
                return False
            self.buf, self.off = data, 0
            return True

    def wait_for_stream(self, ended: threading.Event) -> bool:
        """Wait for the first byte of the next stream, skipping NUL bytes (the end blocks and
        padding of the archive before); False when the code ended and the pipe is empty."""
        while True:
            if self.off < len(self.buf):
                rest = self.buf[self.off :]
                self.off += len(rest) - len(rest.lstrip(b"\0"))
                if self.off < len(self.buf):
                    self.pos, self.eof = 0, False
                    return True
                continue
            done = ended.is_set()  # before looking: a last stream is still seen
            try:
                data = os.read(self.fd, _READ_BYTES)
            except BlockingIOError:  # a writer holds the pipe: wait for its bytes
                self._poll()
            else:
                if data:
                    self.buf, self.off = data, 0
                    continue
                # no writer: wait for one (a hang-up left by the last one would not wait)
                if self._poll() & select.POLLHUP:
                    self._refresh()
            if done:
                return False

    def drop_until_no_writer(self) -> None:
        """After a bad stream: drop what its writer still sends, until none holds the pipe."""
        self.buf, self.off = b"", 0
        while not self.eof and self._fill():
            self.buf, self.off = b"", 0
        self.resync = False

    def read(self, n: int = -1) -> bytes:
        """At most ``n`` bytes, not past the current block; b"" when the writers are gone."""
        if self.off >= len(self.buf) and not self._fill():
            return b""
        room = tarfile.BLOCKSIZE - self.pos % tarfile.BLOCKSIZE
        k = min(room, len(self.buf) - self.off, n if n is not None and n >= 0 else room)
        out = self.buf[self.off : self.off + k]
        self.off += k
        self.pos += k
        if self.limit is not None and self.pos > self.limit:
            raise StreamTooLarge()
        return out


@dataclass
class SpoutProcess:
    """The spout's code running in a worker thread, its pipe, and what it printed so far."""

    sandbox: Sandbox
    reader: PipeReader
    code: tuple[object, ...] = ()  # what it runs (see code_of): another version's code restarts it
    logs: list[LogLine] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    exit_code: int = -1
    reason: str = ""

    def take_logs(self) -> tuple[LogLine, ...]:
        """The lines printed since the last call (and forgets them: the code runs on)."""
        # the code's thread only appends; each list operation is atomic
        count = len(self.logs)
        lines = tuple(self.logs[:count])
        del self.logs[:count]
        return lines


def code_of(task: DatumTask) -> tuple[object, ...]:
    """What the spout's code is: a task of another pipeline version (an update) with other code,
    arguments or environment must not be answered by the code already running."""
    return (task.cmd, task.stdin, tuple(sorted(task.env.items())), task.working_dir, task.user)


def start_spout(worker: Worker, task: DatumTask) -> SpoutProcess:
    """Start the spout's code in the worker's sandbox for ``task`` (DatumFailed if it cannot)."""
    sandbox = worker.sandbox_for(task)
    plan = _DatumRun(worker, task).plan(sandbox)
    proc = SpoutProcess(sandbox, PipeReader(sandbox.dirs.fifo), code_of(task))

    def run() -> None:
        try:
            done = sandbox.run(plan.argv, plan.env, plan.cwd, plan.stdin, None, proc.logs)
        except LimitExceeded as e:
            proc.reason = str(e)
        except SandboxDied as e:
            proc.reason = f"the {task.runtime} sandbox died ({e})"
        except Exception as e:  # noqa: BLE001 - whatever it was, the spout ended
            proc.reason = f"worker error: {e!r}"
        else:
            if done.error:
                proc.reason = f"cannot run {plan.argv[0]}: {os.strerror(done.errno)}"
            elif done.returncode is not None:
                proc.exit_code = done.returncode
                proc.reason = f"exit code {done.returncode}"
        finally:
            proc.done.set()

    threading.Thread(target=run, name="spout", daemon=True).start()
    return proc


def next_stream(worker: Worker, task: DatumTask) -> DatumResult:
    """Wait for the spout's next tar stream and store it (see the module's doc)."""
    proc: SpoutProcess | None = None

    def result(
        ok: bool,
        reason: str = "",
        exit_code: int | None = None,
        outputs: tuple[OutputFile, ...] = (),
        dirs: tuple[str, ...] = (),
        bytes_up: int = 0,
    ) -> DatumResult:
        return DatumResult(
            task_id=task.task_id,
            ok=ok,
            exit_code=exit_code,
            reason=reason,
            logs=proc.take_logs() if proc is not None else (),
            outputs=outputs,
            dirs=dirs,
            bytes_up=bytes_up,
            worker=worker.name,
        )

    try:
        store = worker.store(task.store_url)
        proc = worker.spout
        if proc is not None and proc.code != code_of(task):
            worker.drop_sandbox()  # an update: the old version's code ends with its sandbox
            proc = None
        if proc is None or worker.sandbox is not proc.sandbox:  # an ended one is told below
            proc = worker.spout = start_spout(worker, task)
    except DatumFailed as e:
        return result(False, reason=str(e), exit_code=-1)
    except Exception as e:  # noqa: BLE001 - the object store, the sandbox: the spout did not start
        return result(False, reason=f"cannot start the spout: {e!r}", exit_code=-1)
    reader = proc.reader
    if reader.resync:
        reader.drop_until_no_writer()
    if not reader.wait_for_stream(proc.done):
        worker.spout = None
        reader.close()
        return result(False, reason=proc.reason, exit_code=proc.exit_code)
    limit = task.disk if task.disk is not None else worker.settings.disk_limit
    reader.limit = min(limit, task.max_output_bytes) if limit is not None else task.max_output_bytes
    try:
        files, dirs, size = _read_tar(reader, store)
    except StreamTooLarge:
        reader.resync = True
        return result(False, reason=f"{BAD_STREAM}: larger than {format_bytes(reader.limit)}")
    except (tarfile.TarError, EOFError, ValueError, OSError) as e:
        reader.resync = not reader.eof
        return result(False, reason=f"{BAD_STREAM}: {e}")
    return result(True, outputs=tuple(files), dirs=tuple(dirs), bytes_up=size)


def _read_tar(reader: PipeReader, store: ObjectStore) -> tuple[list[OutputFile], list[str], int]:
    """Store the regular files of one tar stream; its directories; the bytes stored."""
    writers: list[tuple[str, FileWriter]] = []
    dirs: list[str] = []
    seen: set[str] = set()
    with (
        Ingestor(store) as ingestor,
        tarfile.open(  # type: ignore[call-overload]
            fileobj=reader, mode="r|", bufsize=tarfile.BLOCKSIZE
        ) as archive,
    ):
        for member in archive:
            path = _member_path(member.name)
            if member.isdir():
                if path != "/":
                    dirs.append(path)
                continue
            if not member.isfile():
                raise ValueError(
                    f"{member.name} is not a regular file or directory (spouts store only those)"
                )
            if path in seen:
                raise ValueError(f"{member.name} is in the archive twice")
            seen.add(path)
            source = archive.extractfile(member)
            assert source is not None
            writer = ingestor.open_file()
            while data := source.read(_READ_BYTES):
                writer.write(data)
            writer.close()
            writers.append((path, writer))
        # an archive cut at a member's end reads like a shorter one but has no end block
        if reader.pos < archive.offset + tarfile.BLOCKSIZE:
            raise tarfile.ReadError("the stream ended before the archive's end")
    files = [OutputFile(p, tuple(w.chunks), w.size, w.hash) for p, w in writers]
    return sorted(files, key=lambda f: f.path), sorted(dirs), sum(f.size for f in files)


def _member_path(name: str) -> str:
    """A member's path in the output repo; ValueError for one that leaves it."""
    if any(part == ".." for part in name.split("/")) or "\x00" in name:
        raise ValueError(f"path {name!r} leaves /pfs/out")
    return posixpath.normpath("/" + name)
