"""The scheduler: one runner thread per pipeline, running its jobs one at a time in commit order
once their input commits are finished; jobs left running by a killed server resume on start."""

from __future__ import annotations

import logging
import threading
import traceback

from tusk.api.pps import JobState
from tusk.meta import JobFilter, JobRecord
from tusk.pfs.context import PfsContext
from tusk.pps.executors.base import Executor
from tusk.pps.running.job_inputs import InputState
from tusk.pps.running.output import settle_finished_output
from tusk.pps.running.runner import JobRunner

log = logging.getLogger("tusk.scheduler")
POLL_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0


def backoff_seconds(failures: int) -> float:
    """The pause after ``failures`` failed steps in a row: 1 s, doubling, at most 30 s."""
    return min(MAX_BACKOFF_SECONDS, POLL_SECONDS * 2 ** max(0, failures - 1))


class _Stalled(Exception):
    """A run returned with its job neither ended nor stopped."""


class PipelineLoop:
    """One pipeline's runner thread: takes its oldest unfinished job whose inputs are ready."""

    def __init__(self, name: str, ctx: PfsContext, runner: JobRunner) -> None:
        self.name = name
        self.ctx = ctx
        self.runner = runner
        self.stop_event = threading.Event()
        self.cancel_job = threading.Event()
        self.current: str | None = None
        self._last_run: str | None = None  # taking this job up again is a restart
        self.thread = threading.Thread(target=self._loop, name=f"pipeline-{name}", daemon=True)

    def _next_job(self) -> JobRecord | None:
        with self.ctx.meta.transaction(write=False) as tx:
            pipe = tx.get_pipeline(self.name)
            if pipe is None or pipe.stopped:
                return None
            jobs = tx.list_jobs(
                JobFilter(pipeline=self.name, unfinished=True, newest_first=False, limit=1)
            )
        return jobs[0] if jobs else None

    def _loop(self) -> None:
        version = self.ctx.feed.version
        failures = 0  # steps in a row that failed or left their job unfinished
        while not self.stop_event.is_set():
            try:
                worked = self._step()
                stalled = False
            except _Stalled as e:
                log.warning("pipeline %s: job %s did not end; retrying later", self.name, e)
                worked, stalled = False, True
            except Exception:  # noqa: BLE001 - a bug must not kill the loop; the job restarts
                log.error("pipeline %s: %s", self.name, traceback.format_exc())
                worked, stalled = False, True
            if stalled:
                # never a busy loop: the same error would come back at once
                failures += 1
                self.stop_event.wait(backoff_seconds(failures))
                version = self.ctx.feed.version
                continue
            failures = 0
            if not worked:
                version = self.ctx.feed.wait(version, POLL_SECONDS)

    def _count_restart(self, job: JobRecord) -> None:
        """A job taken up again (its run raised or stalled here, or a server stopped mid-job)
        counts one restart, as 1.7 counts a job its master picks up again."""
        if job.state is not JobState.RUNNING and job.id != self._last_run:
            return
        with self.ctx.meta.transaction() as tx:
            tx.add_job_restart(self.name, job.id)

    def _step(self) -> bool:
        job = self._next_job()
        if job is None:
            return False
        job_id = job.id
        if settle_finished_output(self.ctx, self.name, job_id):
            return True  # a crash came between finishing its output commit and marking it
        state, failed = self.runner.input_state(self.name, job_id)
        if state is InputState.WAITING:
            return False
        if state is InputState.FAILED:
            self.runner.fail(self.name, job_id, f"input {', '.join(failed)} failed")
            return True
        self._count_restart(job)
        self._last_run = job_id
        self.current = job_id
        self.cancel_job.clear()
        try:
            self.runner.run(self.name, job_id, self.cancel_job)
        finally:
            self.current = None
        if not self.stop_event.is_set() and not self.cancel_job.is_set():
            with self.ctx.meta.transaction(write=False) as tx:
                after = tx.get_job(self.name, job_id)
            if after is not None and not after.state.terminal:
                raise _Stalled(job_id)
        return True

    def start(self) -> None:
        """Start the loop's thread."""
        self.thread.start()

    def stop(self) -> None:
        """Ask the loop to end (and its running job to stop)."""
        self.stop_event.set()
        self.cancel_job.set()
        self.ctx.feed.publish("jobs", self.name, "")  # wake the loop from its wait on the feed


class Scheduler:
    """Keeps one :class:`PipelineLoop` per pipeline while this server holds the lease."""

    def __init__(self, ctx: PfsContext, executor: Executor, runner: JobRunner) -> None:
        self.ctx = ctx
        self.executor = executor
        self.runner = runner
        self.loops: dict[str, PipelineLoop] = {}
        self._lock = threading.Lock()
        self.running = False

    def start(self) -> None:
        """Start a loop for every pipeline (resuming their unfinished jobs)."""
        self.running = True
        with self.ctx.meta.transaction(write=False) as tx:
            names = [p.name for p in tx.list_pipelines()]
        for n in names:
            self.add(n)

    def add(self, name: str) -> None:
        """Start the loop of a pipeline unless it has one (or the scheduler is not running)."""
        if not self.running:
            return
        with self._lock:
            if name in self.loops:
                return
            loop = PipelineLoop(name, self.ctx, self.runner)
            self.loops[name] = loop
        loop.start()

    def remove(self, name: str) -> None:
        """Stop the loop of a pipeline and cancel its running datums."""
        with self._lock:
            loop = self.loops.pop(name, None)
        if loop is not None:
            loop.stop()
            self.executor.cancel(name)
            loop.thread.join(timeout=30)

    def kill_job(self, pipeline: str, job_id: str) -> None:
        """Stop the job if its pipeline's loop is running it."""
        loop = self.loops.get(pipeline)
        if loop is not None and loop.current == job_id:
            loop.cancel_job.set()
            self.executor.cancel(pipeline)

    def stop(self) -> None:
        """Stop every loop (running jobs resume when a scheduler starts again)."""
        self.running = False
        with self._lock:
            loops = list(self.loops.values())
            self.loops.clear()
        for loop in loops:
            loop.stop()
            if loop.current is not None:
                # a running datum would hold shutdown until it ends; it runs again on restart
                self.executor.cancel(loop.name)
        for loop in loops:
            loop.thread.join(timeout=30)
