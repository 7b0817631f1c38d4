"""The local executor: long-lived worker processes per pipeline version (``python -m
tusk.worker``) on this machine; it hands datums out dynamically and restarts a worker that dies."""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import mmap
import os
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any

from tusk.pps.executors.base import PooledExecutor, WorkerDied, WorkerInfo, worker_name
from tusk.pps.handoff import Handoff
from tusk.worker.protocol import DatumResult, DatumTask, LineBuffer, TaskEncoder, parse_result
from tusk.worker.runtimes.images import DEFAULT_IMAGE

log = logging.getLogger("tusk.worker")

PIN_WORKERS_ENV = "TUSK_PIN_WORKERS"


class WorkerProcess:
    """One long-lived worker process speaking JSON lines."""

    def __init__(
        self,
        pipeline: str,
        version: int,
        env: dict[str, str],
        warm: tuple[str, str] | None = None,
        cpu: int | None = None,
        pinned: bool = False,
    ) -> None:
        """``warm``: the (runtime, image) its datums will run in, made ready while it idles;
        ``cpu``: its CPU, where it runs pinned (``pinned``: its commands run on every CPU once
        started) or else where it hands datum batching's datums over (see tusk.worker.cpus)."""
        self.pipeline = pipeline
        self.version = version
        self.name = worker_name(pipeline, version)
        self.env = env
        self.warm = warm
        self.cpu = cpu
        self.pinned = pinned
        self.restarts = 0
        self.started = time.time()
        self.state = "Pending"
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        self._stderr_reader: threading.Thread | None = None
        self.lock = threading.Lock()
        self.sent: collections.deque[DatumTask] = collections.deque()  # not answered yet, in order
        self.sent_bytes: collections.deque[int] = collections.deque()  # their task lines' sizes
        self.answered = 0  # results received from this process
        self.books = threading.Lock()  # sent and answered, as restart-datum reads them
        self.pace = _Pace()  # how long its datums take, judged from its results
        self.encoder = TaskEncoder()  # its task lines (a job's next datum as a follow-up)
        self.restart_asked: DatumTask | None = None  # restart-datum killed it running this task
        self.progress: mmap.mmap | None = None  # tasks it has done (see tusk.worker.__main__)
        self.results: _Lines | None = None
        self._spawn()

    def _spawn(self) -> None:
        self.encoder.reset()
        self.answered = 0
        argv = [sys.executable, "-m", "tusk.worker", "--name", self.name]
        if self.warm is not None:
            argv += ["--warm-runtime", self.warm[0], "--warm-image", self.warm[1]]
        if self.cpu is not None:
            argv += ["--cpu" if self.pinned else "--home-cpu", str(self.cpu)]
        counter = _progress_counter()
        self.progress = None
        if counter is not None:
            argv += ["--progress-fd", str(counter)]
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self.env,
                pass_fds=() if counter is None else (counter,),
            )
            if counter is not None:
                self.progress = mmap.mmap(counter, _DONE.size)
        finally:
            if counter is not None:
                os.close(counter)
        assert self.proc.stdout is not None
        self.results = _Lines(self.proc.stdout)
        self.stderr_tail.clear()
        self._stderr_reader = threading.Thread(
            target=self._drain_stderr, args=(self.proc.stderr,), daemon=True
        )
        self._stderr_reader.start()
        self.state = "Running"

    def _drain_stderr(self, stream: IO[bytes] | None) -> None:
        # The worker's own errors (a traceback when it crashes) go to the server's log and are
        # kept for the reason of a datum whose worker died; user code's output never comes here.
        if stream is None:
            return
        with contextlib.suppress(OSError, ValueError):
            for raw in stream:
                line = raw.decode(errors="replace").rstrip()
                if line:
                    self.stderr_tail.append(line)
                    log.warning("worker %s: %s", self.name, line)
        with contextlib.suppress(OSError):
            stream.close()  # here, not in _close_pipes: a sandbox may hold it open a while

    def died(self) -> WorkerDied:
        """The error for a worker whose stdout ended, with its last stderr line if it left one."""
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=1)
        if self._stderr_reader is not None:
            self._stderr_reader.join(timeout=1)
        last = self.stderr_tail[-1] if self.stderr_tail else ""
        return WorkerDied(f"worker {self.name} died" + (f": {last}" if last else ""))

    def run(self, task: DatumTask) -> DatumResult:
        """Run one task on this process and wait for its result."""
        self.send(self.encoder.encode(task))
        return self.receive()

    def send(self, line: bytes) -> None:
        """Write one encoded task line (the worker runs the tasks in the order they come)."""
        proc = self.proc
        assert proc is not None and proc.stdin is not None
        try:
            proc.stdin.write(line)
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self.died() from None

    def receive(self) -> DatumResult:
        """Wait for the result of the oldest task sent and not answered yet."""
        try:
            line = self.results.readline() if self.results is not None else b""
        except (OSError, ValueError):
            line = b""
        if not line:
            raise self.died()
        return parse_result(line)

    def answered_one(self) -> None:
        """The oldest task sent has its result."""
        with self.books:
            self.sent.popleft()
            self.sent_bytes.popleft()
            self.answered += 1

    def more_results(self) -> bool:
        """Whether another result has come already (the worker writes several at once)."""
        return self.results is not None and self.results.pending()

    def running_index(self) -> int:
        """Where in ``sent`` the task this process runs now is (``len(sent)``: none of them):
        its results held and not written yet come before it."""
        progress = self.progress
        done = _DONE.unpack_from(progress)[0] if progress is not None else self.answered
        return max(0, done - self.answered)

    def running(self) -> DatumTask | None:
        """The task this process runs now (None when it waits for one)."""
        with self.books:
            index = self.running_index()
            return self.sent[index] if index < len(self.sent) else None

    def restart(self) -> None:
        """Kill the process and start a new one (counted as a restart)."""
        self.kill()
        self._close_pipes()
        self.restarts += 1
        self._spawn()

    def kill(self) -> None:
        """SIGTERM first (the worker then kills its datum's process group), SIGKILL if it lingers."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stop(self) -> None:
        """Let the process end after its current task (kill it if it lingers)."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        self._close_pipes()
        self.state = "Terminated"

    def _close_pipes(self) -> None:
        # Only with the worker's lock held (or no reader left): a reader may be in readline.
        self.results = None  # the pipe is closed below: a late reader finds it gone
        if self.proc is not None:
            for pipe in (self.proc.stdin, self.proc.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()


class _Lines:
    """A worker's result lines, as many per read as have come (read through the pipe's file
    object, so that reading it once closed fails instead of reading another file's fd)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.buffer = LineBuffer()

    def pending(self) -> bool:
        """Whether a whole line has been read already."""
        return self.buffer.whole > 0

    def readline(self) -> bytes:
        """The next line; b"" at the end (a last line cut short is no line)."""
        while (line := self.buffer.take()) is None:
            data = self.stream.read1(1 << 16)  # type: ignore[attr-defined]
            if not data:
                return b""
            self.buffer.add(data)
        return line


_DONE = struct.Struct("<Q")  # a worker's progress counter: the tasks it has done


def _progress_counter() -> int | None:
    """A fresh zeroed counter a worker process shares (its fd), or None where memfd_create is
    missing (the worker then writes each result at once)."""
    try:
        fd = os.memfd_create("tusk-worker-progress", os.MFD_CLOEXEC)
    except (AttributeError, OSError):
        return None
    try:
        os.ftruncate(fd, _DONE.size)
    except OSError:
        os.close(fd)
        return None
    return fd


# A task sent while its worker still runs the one before waits in the pipe to the worker, which
# holds 64 KiB: the lines sent and not answered stay well under that (more could block the
# writer while the worker blocks writing a large result nobody reads yet).
AHEAD_MAX_BYTES = 32 << 10
# A worker whose datums are quick is sent as many tasks ahead as it runs in AHEAD_SECONDS at
# its recent pace (at most AHEAD_MAX_TASKS): it never waits for the job master between two of
# them, and at a job's end no other worker waits longer than about that for the tasks it holds.
# Twice the time of the results a worker may hold (tusk.worker.__main__.HOLD_SECONDS): it holds
# them while as many tasks wait, so about half of these go back as one group.
AHEAD_SECONDS = 0.010
AHEAD_MAX_TASKS = 64


class _Pace:
    """How long a worker's datums take (a moving average), from each task's start (its
    result before it came, or it was sent to a worker that had nothing to do) to its result:
    the job master's own work is not counted."""

    def __init__(self) -> None:
        self.seconds: float | None = None
        self.start: float | None = None  # when the worker started the task it runs now

    def reset(self) -> None:
        self.seconds = self.start = None

    def sent(self, idle: bool) -> None:
        """A task was sent; ``idle``: the worker had none, so it starts now."""
        if idle:
            self.start = time.monotonic()

    def result(self, has_next: bool, count: int = 1) -> None:
        """``count`` results came (written together); ``has_next``: the worker had its next
        task, which it runs now."""
        now = time.monotonic()
        if self.start is not None:
            gap = (now - self.start) / count
            self.seconds = gap if self.seconds is None else 0.75 * self.seconds + 0.25 * gap
        self.start = now if has_next else None

    def ahead(self, least: int, seconds: float = AHEAD_SECONDS) -> int:
        """Tasks to send beyond the one running: as many as the worker runs in ``seconds``, at
        least ``least``, at most AHEAD_MAX_TASKS."""
        if self.seconds is None:
            return least
        return max(least, min(AHEAD_MAX_TASKS, int(seconds / max(self.seconds, 1e-6))))


class _TaskFeed:
    """Tasks handed out one at a time to the workers' threads, made as they are taken."""

    def __init__(self, tasks: Iterable[DatumTask], ahead: int) -> None:
        self._lock = threading.Lock()
        self._source = iter(tasks)
        # the first ``ahead`` now: they say how many workers to start (fewer tasks, fewer)
        self._ahead = collections.deque(itertools.islice(self._source, ahead))
        self.head = len(self._ahead)
        self.done = False
        self.error: BaseException | None = None

    def take(self) -> DatumTask | None:
        """The next task, or None when there are no more (or making one failed)."""
        with self._lock:
            if self._ahead:
                task = self._ahead.popleft()
            elif self.done:
                return None
            else:
                try:
                    task = next(self._source)
                except StopIteration:
                    self.done = True
                    return None
                except BaseException as e:  # noqa: BLE001 - raised again by LocalPool.run
                    self.error, self.done = e, True
                    return None
            return task

    def give_back(self, tasks: Iterable[DatumTask]) -> None:
        """Tasks taken and never started (their worker died first): the next ones handed out."""
        with self._lock:
            back = list(tasks)
            self._ahead.extendleft(reversed(back))


class LocalPool:
    """The worker processes of one pipeline version on this machine."""

    def __init__(
        self,
        pipeline: str,
        version: int,
        count: int,
        env: dict[str, str],
        ahead: int = 1,
        warm: tuple[str, str] | None = None,
        cpu_for: Callable[[], tuple[int | None, bool]] = lambda: (None, False),
        ahead_seconds: float = AHEAD_SECONDS,
    ) -> None:
        """``ahead``: tasks sent to a lone worker beyond the one it runs, whatever its pace (0:
        one at a time, but for quick datums). Any worker is sent as many tasks ahead as it
        runs in ``ahead_seconds`` at its recent pace; with several workers only those (a task
        waiting behind a slow datum could leave another worker with nothing to do).
        ``warm``: see :class:`WorkerProcess`; ``cpu_for`` gives each new worker its CPU and
        whether it runs pinned to it."""
        self.pipeline = pipeline
        self.version = version
        self.workers = [
            WorkerProcess(pipeline, version, env, warm, *cpu_for()) for _ in range(max(1, count))
        ]
        self.cancelled = threading.Event()
        self.ahead = ahead
        self.ahead_seconds = ahead_seconds

    def run(self, tasks: Iterable[DatumTask]) -> Iterator[DatumResult]:
        """Hand the tasks to whichever worker is free; the results as they arrive (a task that
        could not be made, or a worker thread's error, ends them).

        Tasks are taken from ``tasks`` only as workers become free, so a job of 100,000 datums
        holds a few tasks per worker (see ``ahead``), not 100,000 of them."""
        feed = _TaskFeed(tasks, len(self.workers))
        results: Handoff[DatumResult] = Handoff()
        self.cancelled.clear()

        def serve(w: WorkerProcess) -> None:
            queued: collections.deque[tuple[DatumTask, bytes]] = collections.deque()
            sent = w.sent
            with w.books:
                sent.clear()  # what a cancelled run had sent went with the killed process
                w.sent_bytes.clear()
            w.pace.reset()  # another job's datums may take another time
            come = 0  # results read since the worker's last write
            while not self.cancelled.is_set():
                with w.lock:
                    if not w.more_results():  # refill once the results that came are read
                        self._feed_worker(w, feed, queued, sent)
                    if not sent:
                        return
                    try:
                        res = w.receive()
                    except WorkerDied as e:
                        if self.cancelled.is_set():
                            return  # killed by cancel (which restarts it) or close (which must not)
                        res = self._died(w, e, feed, queued)
                        come = 0
                    else:
                        w.answered_one()
                        come += 1
                        if not w.more_results():
                            w.pace.result(has_next=bool(sent), count=come)
                            come = 0
                results.put(res)

        serving = self.workers[: max(1, min(feed.head, len(self.workers)))]
        left = [len(serving)]  # serve threads still running: the last one ends the results
        lock = threading.Lock()
        failed: list[BaseException] = []

        def serve_until_done(w: WorkerProcess) -> None:
            try:
                serve(w)
            except BaseException as e:  # noqa: BLE001 - ends the results with it, below
                failed.append(e)
            finally:
                with lock:
                    left[0] -= 1
                    last = left[0] == 0
                if last:
                    results.close(feed.error or (failed[0] if failed else None))

        for w in serving:
            threading.Thread(target=serve_until_done, args=(w,), daemon=True).start()
        return results

    def _died(
        self,
        w: WorkerProcess,
        error: WorkerDied,
        feed: _TaskFeed,
        queued: collections.deque[tuple[DatumTask, bytes]],
    ) -> DatumResult:
        """The failed result of the task a worker died running (restarting it); the tasks sent
        with it go back to the feed, not counted as tries: those after it never started, and
        those before it had results the worker held and never wrote (they run again, as none
        of them was recorded)."""
        with w.books:
            sent = list(w.sent)
            index = min(w.running_index(), len(sent) - 1)
            w.sent.clear()
            w.sent_bytes.clear()
        task = sent.pop(index)
        feed.give_back([*sent, *(t for t, _ in queued)])
        queued.clear()
        w.pace.reset()
        asked, w.restart_asked = w.restart_asked, None
        w.restart()
        reason = "restarted by restart-datum" if asked is task else f"{error}; it was restarted"
        return DatumResult(task_id=task.task_id, ok=False, reason=reason, worker=w.name)

    def _feed_worker(
        self,
        w: WorkerProcess,
        feed: _TaskFeed,
        queued: collections.deque[tuple[DatumTask, bytes]],
        sent: collections.deque[DatumTask],
    ) -> None:
        """Keep tasks ahead at the worker (see ``ahead`` and AHEAD_SECONDS): it starts the next
        as soon as it answers the one before, while this process records that answer and makes
        the tasks after (the job master's work per datum overlaps the worker's instead of
        adding to it)."""
        least = self.ahead if len(self.workers) == 1 else 0
        ahead = w.pace.ahead(least, self.ahead_seconds)
        sizes = w.sent_bytes
        lines: list[bytes] = []
        while not self.cancelled.is_set():
            if not queued:
                if len(sent) > ahead:
                    break
                task = feed.take()
                if task is None:
                    break
                queued.append((task, w.encoder.encode(task)))
            task, line = queued[0]
            if sent and sum(sizes) + len(line) > AHEAD_MAX_BYTES:
                break  # sent once the worker has answered what it holds
            queued.popleft()
            w.pace.sent(idle=not sent)
            with w.books:
                sent.append(task)
                sizes.append(len(line))
            lines.append(line)
        if lines:
            try:
                w.send(b"".join(lines))
            except WorkerDied:
                return  # its receive reports the death, for the task it ran

    def cancel(self) -> None:
        """Kill the running datums (their workers restart)."""
        self.cancelled.set()
        for w in self.workers:
            w.kill()
        for w in self.workers:
            with w.lock:
                if w.proc is not None and w.proc.poll() is not None:
                    w.restart()

    def restart_datums(self, match: Callable[[DatumTask], bool]) -> list[str]:
        """Kill the worker of each running task ``match`` accepts: the task fails (a try of its
        datum, retried like any other) and the worker restarts; return their datum ids."""
        hit: list[str] = []
        for w in self.workers:
            task = w.running()
            if task is not None and match(task):
                w.restart_asked = task
                w.kill()
                hit.append(task.datum_id)
        return hit

    def running(self) -> list[DatumTask]:
        """The tasks the workers run now."""
        return [t for t in (w.running() for w in self.workers) if t is not None]

    def infos(self) -> list[WorkerInfo]:
        """The workers as list-worker shows them."""
        return [
            WorkerInfo(w.name, self.pipeline, self.version, w.state, w.restarts, w.started)
            for w in self.workers
        ]

    def close(self) -> None:
        """Stop every worker process."""
        self.cancelled.set()
        for w in self.workers:
            w.stop()


class LocalExecutor(PooledExecutor):
    """Runs datums in long-lived ``python -m tusk.worker`` processes on this machine."""

    name = "local"
    supports_containers = False

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        """``env`` is the whole environment of the worker processes (the composition root
        picks it; none of the server's own variables are passed on by default)."""
        super().__init__()
        self.env = dict(env or {})
        self.ahead = 1  # tasks sent to a lone worker beyond the one it runs (see LocalPool)
        self.ahead_seconds = AHEAD_SECONDS  # work sent ahead to a worker of quick datums
        # The server's runtime for user code (None: not known, or the host): new workers get
        # the pipeline's image ready (inspected, mounted) before its first datum needs it.
        self.runtime: Callable[[], str | None] = lambda: None
        # TUSK_PIN_WORKERS=1: each new worker runs pinned to the next of the server's CPUs,
        # round the pools (see pin_to_cpu in tusk.worker.__main__). Off by default: a worker
        # alone gains, but beside the job master on two CPUs it was measured no faster.
        self.pin_workers = os.environ.get(PIN_WORKERS_ENV) == "1"
        self._next_cpu = itertools.count()

    def capacity(self) -> int:
        """The number of CPUs of this machine."""
        return os.cpu_count() or 1

    def _cpu_for_worker(self) -> tuple[int | None, bool]:
        """The next worker's CPU, the server's CPUs in turn, and whether it runs pinned to it
        (else it is where its datum batching hands datums over, so that two workers do not
        share one); None when the server may use only one CPU."""
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return None, False
        return cpus[next(self._next_cpu) % len(cpus)], self.pin_workers

    def ensure_pool(
        self,
        pipeline: str,
        version: int,
        workers: int,
        resources: dict[str, Any] | None = None,
        image: str | None = None,
    ) -> None:
        # Local workers share this machine: resources and image are recorded by the spec only.
        """Have exactly ``workers`` processes of this pipeline version."""
        with self._lock:
            if self._older_than_pool(pipeline, version):
                return
            pool = self._pools.get(pipeline)
            if (
                isinstance(pool, LocalPool)
                and pool.version == version
                and len(pool.workers) == workers
            ):
                return
            if pool is not None:
                pool.close()
            runtime = self.runtime()
            warm = (runtime, image or DEFAULT_IMAGE) if runtime in ("bwrap", "podman") else None
            self._pools[pipeline] = LocalPool(
                pipeline,
                version,
                workers,
                self.env,
                self.ahead,
                warm,
                self._cpu_for_worker,
                self.ahead_seconds,
            )

    def close(self) -> None:
        """Stop every worker process."""
        self._close_pools()
