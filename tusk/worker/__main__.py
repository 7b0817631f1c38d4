"""``python -m tusk.worker --name NAME``: run datum tasks read as JSON lines from stdin."""

from __future__ import annotations

import argparse
import mmap
import os
import select
import signal
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import IO, Any, NoReturn

import orjson

from tusk.worker import worker_from_environ
from tusk.worker.datum import Worker
from tusk.worker.protocol import DatumResult, DatumTask, LineBuffer, TaskDecoder, result_line


def main(argv: list[str] | None = None) -> int:
    """Run a worker process: tasks on stdin, results on stdout."""
    parser = argparse.ArgumentParser(prog="python -m tusk.worker", description=__doc__)
    parser.add_argument("--name", required=True, help="worker name, pipeline-<name>-v<N>-<xxxxx>")
    parser.add_argument("--warm-runtime", help="the runtime of the datums to come (bwrap, podman)")
    parser.add_argument("--warm-image", help="their image, made ready while no task has come")
    parser.add_argument(
        "--cpu", type=int, help="run on this CPU (its commands on all the worker's CPUs)"
    )
    parser.add_argument(
        "--home-cpu",
        type=int,
        help="hand datum batching's datums over on this CPU (see tusk.worker.cpus)",
    )
    parser.add_argument(
        "--progress-fd",
        type=int,
        help="an 8-byte counter of the tasks done, which the executor reads if this worker dies "
        "(quick datums' results are then written several at once)",
    )
    args = parser.parse_args(argv)
    cpus = pin_to_cpu(args.cpu) if args.cpu is not None else ()
    results = _private_stdout()
    signal.signal(signal.SIGTERM, _exit_on_signal)
    if args.warm_runtime and args.warm_image:
        threading.Thread(
            target=warm_image, args=(args.warm_runtime, args.warm_image), daemon=True
        ).start()
    worker = worker_from_environ(args.name, cpus=cpus, home_cpu=args.home_cpu)
    progress = None
    if args.progress_fd is not None:
        progress = mmap.mmap(args.progress_fd, _DONE.size)
        os.close(args.progress_fd)
    try:
        serve(worker, sys.stdin.buffer, results, progress)
    finally:
        worker.close()  # ends the sandbox and removes its directories
    return 0


# How long datum batching's user code waits in `next datum` for another datum of its job before
# the worker ends it (Pachyderm ends it when its worker has no datum left).
BATCH_IDLE_SECONDS = 2.0


def serve(
    worker: Worker, tasks: IO[bytes], results: IO[bytes], progress: mmap.mmap | None = None
) -> None:
    """One result line per task line, in order, until EOF.

    The worker waits while a datum's command runs (a process start is most of a small datum),
    so that is when it writes the results it holds and parses the task after this one when it
    has already come. Without ``progress`` a result is held until the next datum's command has
    started, or until the worker would wait for a task; with it (a counter of the tasks done,
    which the executor reads when the worker dies), quick datums' results go several at once
    (see :class:`_Results`)."""
    out = _Results(results, progress)
    feed = _Tasks(worker, tasks, before_wait=out.flush)

    def while_running() -> None:
        out.running(feed.waiting(enough=len(out.lines) + 1))
        feed.parse_ahead()

    worker.while_running = while_running
    try:
        for task in feed:
            result = task if isinstance(task, DatumResult) else run_task(worker, task)
            out.add(result)
            if out.broken is not None:
                raise out.broken
        out.flush()
        if out.broken is not None:
            raise out.broken
    finally:
        worker.while_running = None
        out.close()


# Results held at most, and for at most this long, when they go several at once (see _Results).
HOLD_MAX = 32
HOLD_SECONDS = 0.01
_DONE = struct.Struct("<Q")  # the progress counter: tasks done (each has its result made)


class _Results:
    """The result lines, written in task order.

    Without a progress counter, the last result is held until the next datum's command has
    started (see ``serve``). With one, results are held while the worker has at least as many
    tasks waiting as it holds results, at most HOLD_MAX of them for at most HOLD_SECONDS (a
    thread writes them then): the executor wakes once per group, not once per datum, and
    sends the tasks that replace them before the worker runs out. Each result counts in
    ``progress`` as it is made, so when the worker dies holding some, the executor knows which
    datum was running (and runs the held ones again, as none of them was recorded)."""

    def __init__(self, stream: IO[bytes], progress: mmap.mmap | None = None) -> None:
        self.stream = stream
        self.progress = progress
        self.lines: list[bytes] = []
        self.since = 0.0  # when the oldest held line was made
        self.done = 0
        self.broken: OSError | None = None  # the executor's end is gone: the worker ends
        self.lock = threading.Lock()
        self.holding = threading.Event()  # lines are held (the writer thread watches them)
        self.closed = False
        if progress is not None:
            threading.Thread(target=self._write_late, name="tusk-results", daemon=True).start()

    def add(self, result: DatumResult) -> None:
        """Hold one more result (writing the one held before it, without a counter)."""
        line = result_line(result)
        with self.lock:
            if self.progress is None:
                self._write()
            self.lines.append(line)
            self.done += 1
            if self.progress is not None:
                _DONE.pack_into(self.progress, 0, self.done)
                if len(self.lines) == 1:
                    self.since = time.monotonic()
                    self.holding.set()

    def running(self, waiting: int) -> None:
        """The next datum's command has started, and ``waiting`` tasks have come after it."""
        lines = self.lines
        if self.progress is None or len(lines) >= HOLD_MAX or waiting <= len(lines):
            self.flush()

    def flush(self) -> None:
        """Write every result held."""
        with self.lock:
            self._write()

    def close(self) -> None:
        """Write what is held and end the writer thread."""
        self.flush()
        self.closed = True
        self.holding.set()

    def _write(self) -> None:
        lines, self.lines = self.lines, []
        if not lines or self.broken is not None:
            return
        try:
            self.stream.write(b"".join(lines))
            self.stream.flush()
        except OSError as e:
            self.broken = e

    def _write_late(self) -> None:
        while True:
            self.holding.wait()
            if self.closed:
                return
            time.sleep(HOLD_SECONDS)
            with self.lock:
                if self.lines and time.monotonic() - self.since >= HOLD_SECONDS:
                    self._write()
                if not self.lines:
                    self.holding.clear()


class _Tasks:
    """The tasks read from the executor, each parsed (or the failed result of a bad line).
    While datum batching's user code waits and no task comes for BATCH_IDLE_SECONDS, the
    worker ends that code."""

    def __init__(self, worker: Worker, stream: IO[bytes], before_wait: Callable[[], None]) -> None:
        self.worker = worker
        self.stream = stream
        self.before_wait = before_wait  # called before the worker blocks on the executor
        self.lines = LineBuffer()  # read, not parsed yet
        self.next: DatumTask | DatumResult | None = None  # parsed, not yet handed out
        self.decoder = TaskDecoder()

    def __iter__(self) -> Iterator[DatumTask | DatumResult]:
        try:
            fd = self.stream.fileno()
        except (OSError, ValueError):
            for raw in self.stream:
                if raw.strip():
                    yield parse_line(self.worker, raw, self.decoder)
            return
        while True:
            self.parse_ahead()
            if self.next is not None:
                task, self.next = self.next, None
                yield task
                continue
            self.before_wait()
            if self.worker.batch is not None:
                ready, _, _ = select.select([fd], [], [], BATCH_IDLE_SECONDS)
                if not ready:
                    self.worker.end_batch()
                    continue
            data = os.read(fd, 1 << 20)
            if not data:
                rest = self.lines.rest()
                if rest.strip():
                    yield parse_line(self.worker, rest, self.decoder)
                return
            self.lines.add(data)

    def waiting(self, enough: int) -> int:
        """How many tasks have come and are not handed out yet: what was read, and when that
        is fewer than ``enough``, what the pipe holds too."""
        count = (self.next is not None) + self.lines.whole
        if count >= enough:
            return count
        try:
            fd = self.stream.fileno()
            ready, _, _ = select.select([fd], [], [], 0)
            if ready:
                self.lines.add(os.read(fd, 1 << 20))  # b"" at EOF: read again, and seen, later
        except (OSError, ValueError):
            pass
        return (self.next is not None) + self.lines.whole

    def parse_ahead(self) -> None:
        """Parse the next task if it has come and is not parsed yet (also called while a
        datum's command runs)."""
        while self.next is None and (line := self.lines.take()) is not None:
            if line.strip():
                self.next = parse_line(self.worker, line, self.decoder)


def parse_line(
    worker: Worker, line: bytes, decoder: TaskDecoder | None = None
) -> DatumTask | DatumResult:
    """The task of one line (a follow-up line with ``decoder``, which has the lines before it),
    or the failed result of a line that is no task."""
    raw: Any = None
    try:
        raw = orjson.loads(line)
        return DatumTask.from_json(raw) if decoder is None else decoder.decode(raw)
    except Exception as e:
        task_id = raw.get("task_id", "") if isinstance(raw, dict) else ""
        return DatumResult(str(task_id), False, reason=f"invalid task: {e!r}", worker=worker.name)


def run_task(worker: Worker, task: DatumTask) -> DatumResult:
    """The result of one task; a worker error is a failed result."""
    try:
        return worker.run(task)
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        return DatumResult(task.task_id, False, reason=f"worker error: {e!r}", worker=worker.name)


def run_line(worker: Worker, line: bytes, decoder: TaskDecoder | None = None) -> DatumResult:
    """The result of one task line (a follow-up line with ``decoder``, see parse_line); a bad
    line or a worker error is a failed result."""
    task = parse_line(worker, line, decoder)
    return task if isinstance(task, DatumResult) else run_task(worker, task)


def pin_to_cpu(cpu: int) -> tuple[int, ...]:
    """Pin this process (and the sandboxes it starts) to ``cpu``, and return the CPUs it was
    allowed before, where its commands run once started; () when it stays as it was (``cpu``
    not among them, or only one).

    On a virtual machine, waking a process on another CPU costs tens of microseconds: a datum
    that hands its command to the agent, which starts it and learns of its end, pays that four
    times when the three processes sit on different CPUs, and never when they share one."""
    allowed = tuple(sorted(os.sched_getaffinity(0)))
    if cpu not in allowed or len(allowed) < 2:
        return ()
    os.sched_setaffinity(0, {cpu})
    return allowed


def warm_image(runtime: str, image: str) -> None:
    """Ask podman now (in the background) what the first datum would wait for: the image's
    config and, for bwrap, its root filesystem (together ~0.15 s). A problem is left for that
    datum to report."""
    from tusk.worker.runtimes.images import inspect_image, mount_image

    try:
        inspect_image(image)
        if runtime == "bwrap":
            mount_image(image)
    except Exception:  # noqa: BLE001 - the datum that needs the image says what is wrong
        return


def _private_stdout() -> IO[bytes]:
    """Keep fd 1 for results alone: anything else written to stdout goes to stderr."""
    results = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return results


def _exit_on_signal(signum: int, frame: object) -> NoReturn:
    # SystemExit unwinds a running datum, which kills the user's process group on the way out.
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
