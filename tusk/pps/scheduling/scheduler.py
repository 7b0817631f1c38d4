"""The scheduler: one runner thread per pipeline, running its jobs one at a time in commit order
once their input commits are finished; jobs left running by a killed server resume on start."""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from collections.abc import Callable

from tusk.api.pps import JobState, PipelineState
from tusk.meta import JobFilter, JobRecord, PipelineRecord
from tusk.pfs.context import PfsContext
from tusk.pps.executors.base import Executor
from tusk.pps.running.job_inputs import InputState
from tusk.pps.running.runner import JobRunner
from tusk.pps.service import watch
from tusk.pps.spec import PipelineSpec

log = logging.getLogger("tusk.scheduler")
POLL_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
STOP_SECONDS = 5.0  # how long a shutdown waits, in all, for the pipeline loops to end
START_TRIES = 4  # failed attempts at starting a job (about 7 s of back-off) before it fails


def backoff_seconds(failures: int) -> float:
    """The pause after ``failures`` failed steps in a row: 1 s, doubling, at most 30 s."""
    return min(MAX_BACKOFF_SECONDS, POLL_SECONDS * 2 ** max(0, failures - 1))


def idle_limit(spec: PipelineSpec) -> float | None:
    """How long the pipeline's workers stay up with no job to run: 0 for ``standby`` (and 2.x
    ``autoscaling``), ``scale_down_threshold``, or None (they stay up)."""
    if spec.service is not None or spec.spout is not None:
        return None  # long-running code: its workers are its process
    if spec.standby or spec.autoscaling:
        return 0.0
    return spec.scale_down_threshold_seconds


class _Stalled(Exception):
    """A run returned with its job neither ended nor stopped."""


class PipelineLoop:
    """One pipeline's runner thread: takes its oldest unfinished job whose inputs are ready."""

    def __init__(self, name: str, ctx: PfsContext, runner: JobRunner, scheduler: Scheduler) -> None:
        self.name = name
        self.ctx = ctx
        self.runner = runner
        self.scheduler = scheduler
        self.idle_since: float | None = None  # monotonic time the loop last found nothing to run
        self._spec: tuple[int, PipelineSpec] | None = None
        self.stop_event = threading.Event()
        self.cancel_job = threading.Event()
        self.current: str | None = None
        self._last_run: str | None = None  # taking this job up again is a restart
        self.failed_job: str | None = None  # the job the last step took up
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

    def _note(self, job: JobRecord, reason: str) -> None:
        """Say in the job (inspect-job's Reason) why it has not started yet."""
        if job.state is JobState.STARTING and job.reason != reason:
            with self.ctx.meta.transaction() as tx:
                now = tx.get_job(self.name, job.id)
                if now is not None and now.state is JobState.STARTING:
                    tx.set_job_reason(self.name, job.id, reason)

    def _note_stopped(self) -> None:
        with self.ctx.meta.transaction(write=False) as tx:
            jobs = tx.list_jobs(JobFilter(pipeline=self.name, unfinished=True))
        for job in jobs:
            self._note(
                job,
                f"waiting: pipeline {self.name} is stopped "
                f"(start it with `tusk start-pipeline {self.name}`)",
            )

    def _is_service(self) -> bool:
        with self.ctx.meta.transaction(write=False) as tx:
            pipe = tx.get_pipeline(self.name)
        return pipe is not None and self._spec_of(pipe).service is not None

    def _supersede(self) -> None:
        """A service job has newer input: stop it so the next job serves the new data."""
        self.cancel_job.set()
        self.scheduler.executor.cancel(self.name)

    def _spec_of(self, pipe: PipelineRecord) -> PipelineSpec:
        if self._spec is None or self._spec[0] != pipe.version:
            self._spec = (pipe.version, PipelineSpec.model_validate(json.loads(pipe.spec)))
        return self._spec[1]

    def _idle(self) -> None:
        """Nothing to run: stop the workers of a standby pipeline, or of one idle for its
        ``scale_down_threshold``, and show the pipeline as ``standby``."""
        now = time.monotonic()
        if self.idle_since is None:
            self.idle_since = now
        with self.ctx.meta.transaction(write=False) as tx:
            pipe = tx.get_pipeline(self.name)
        if pipe is None:
            return
        if pipe.stopped:
            self._note_stopped()
            return
        spec = self._spec_of(pipe)
        limit = idle_limit(spec)
        if limit is None:
            long_running = spec.service is not None or spec.spout is not None
            if not long_running and now - self.idle_since >= self.scheduler.worker_idle_seconds:
                # the server's own limit: the processes go, the pipeline still shows running
                # (as in pachctl); its next job starts them again
                self.scheduler.scale_down(self.name)
            return
        if now - self.idle_since < limit:
            return
        self.scheduler.scale_down(self.name)
        self._set_state(PipelineState.RUNNING, PipelineState.STANDBY)

    def _wake(self) -> None:
        """A job is about to run: have the current version's workers (back from standby)."""
        self.idle_since = None
        self.scheduler.scale_up(self.name)
        self._set_state(PipelineState.STANDBY, PipelineState.RUNNING)

    def _set_state(self, old: PipelineState, new: PipelineState) -> None:
        with self.ctx.meta.transaction(write=False) as tx:
            pipe = tx.get_pipeline(self.name)
        if pipe is None or pipe.state is not old:
            return
        with self.ctx.meta.transaction() as tx:
            pipe = tx.get_pipeline(self.name)
            # a stop, start or update in between wrote its own state: leave it
            if pipe is None or pipe.stopped or pipe.state is not old:
                return
            tx.update_pipeline(self.name, state=new)
        self.ctx.feed.publish("pipelines", self.name, new.value)

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
            except Exception as e:  # noqa: BLE001 - a bug must not kill the loop; the job restarts
                log.error("pipeline %s: %s", self.name, traceback.format_exc())
                self._give_up_starting(e)
                worked, stalled = False, True
            if stalled:
                # never a busy loop: the same error would come back at once
                failures += 1
                self.stop_event.wait(backoff_seconds(failures))
                version = self.ctx.feed.version
                continue
            failures = 0
            if not worked:
                self._idle()
                version = self.ctx.feed.wait(version, POLL_SECONDS)

    def _give_up_starting(self, error: Exception) -> None:
        """A job that cannot even start (its workers, its image, its spec) fails, in bounded time,
        with the error: it never stays "starting" forever."""
        job_id = self.failed_job
        if job_id is None:
            return
        self._last_run = job_id  # taking it up again is a restart
        try:
            with self.ctx.meta.transaction(write=False) as tx:
                job = tx.get_job(self.name, job_id)
            tries = job.restarts + 1 if job is not None else 0  # the first try is no restart
            if job is not None and job.state is JobState.STARTING and tries >= START_TRIES:
                self.runner.fail(
                    self.name, job.id, f"the job could not start ({tries} tries): {error}"
                )
        except Exception:  # noqa: BLE001 - the store may be what failed; the loop backs off
            log.error("pipeline %s: %s", self.name, traceback.format_exc())

    def _count_restart(self, job: JobRecord) -> None:
        """A job taken up again (its run raised or stalled here, or a server stopped mid-job)
        counts one restart, as 1.7 counts a job its master picks up again."""
        if job.state is not JobState.RUNNING and job.id != self._last_run:
            return
        with self.ctx.meta.transaction() as tx:
            tx.add_job_restart(self.name, job.id)

    def _spout(self) -> bool | None:
        """A spout has no jobs: its loop runs its code until it is stopped, updated or deleted
        (then the loop waits as when idle); None for other pipelines."""
        with self.ctx.meta.transaction(write=False) as tx:
            pipe = tx.get_pipeline(self.name)
        if pipe is None or self._spec_of(pipe).spout is None:
            return None
        if pipe.stopped:
            return False
        self.cancel_job.clear()
        self._wake()
        self.runner.run_spout(self.name, self.cancel_job)
        return False

    def _step(self) -> bool:
        spout = self._spout()
        if spout is not None:
            return spout
        job = self._next_job()
        if job is None:
            return False
        job_id = job.id
        self.failed_job = job_id
        if self.runner.settle(self.name, job_id):
            return True  # a crash came between finishing its output commit and marking it
        with self.ctx.meta.transaction(write=False) as tx:
            output = tx.get_commit(self.name, job_id)
        if output is None:
            self.runner.fail(
                self.name,
                job_id,
                "its output commit was deleted (delete-commit of one of its input commits)",
                JobState.KILLED,
            )
            return True
        state, which = self.runner.input_state(self.name, job_id)
        if state is InputState.WAITING:
            self._note(job, f"waiting for input commit {', '.join(which)} to be finished")
            return False
        if state is InputState.FAILED:
            self.runner.fail(self.name, job_id, f"input {', '.join(which)} failed")
            return True
        if state is InputState.MISSING:
            self.runner.fail(self.name, job_id, f"input commit {', '.join(which)} was deleted")
            return True
        self._count_restart(job)
        self._last_run = job_id
        self.current = job_id
        self.cancel_job.clear()
        self._wake()
        served = threading.Event()
        if self._is_service():
            watch(self.ctx, self.name, job_id, served, self._supersede)
        try:
            self.runner.run(self.name, job_id, self.cancel_job)
        finally:
            served.set()
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

    def __init__(
        self,
        ctx: PfsContext,
        executor: Executor,
        runner: JobRunner,
        *,
        worker_idle_seconds: float = 600.0,
    ) -> None:
        self.ctx = ctx
        self.executor = executor
        self.runner = runner
        # how long the workers of a pipeline without standby / scale_down_threshold stay up idle
        self.worker_idle_seconds = worker_idle_seconds
        self.loops: dict[str, PipelineLoop] = {}
        self._lock = threading.Lock()
        self.running = False
        # Starts the workers of a pipeline's current version (set by the PipelineService, which
        # knows the server's limits); the loops call it before each job.
        self.start_pool: Callable[[str], None] | None = None
        self._scaled_down: set[str] = set()

    def is_scaled_down(self, name: str) -> bool:
        """True while the pipeline's workers are stopped for idleness (standby)."""
        with self._lock:
            return name in self._scaled_down

    def scale_down(self, name: str) -> None:
        """Stop an idle pipeline's workers; nobody starts them again until it has a job."""
        with self._lock:
            self._scaled_down.add(name)  # first, so a concurrent reconcile does not restart them
        if name in self.executor.pipelines():
            log.info("pipeline %s: idle, stopping its workers (standby)", name)
            self.executor.drop_pool(name)

    def scale_up(self, name: str) -> None:
        """Have the workers of the pipeline's current version (started if it was idle)."""
        with self._lock:
            self._scaled_down.discard(name)
        if self.start_pool is not None:
            self.start_pool(name)

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
            loop = PipelineLoop(name, self.ctx, self.runner, self)
            self.loops[name] = loop
        loop.start()

    def remove(self, name: str) -> None:
        """Stop the loop of a pipeline and cancel its running datums."""
        with self._lock:
            loop = self.loops.pop(name, None)
            self._scaled_down.discard(name)
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
            self._scaled_down.clear()
        for loop in loops:
            loop.stop()
            if loop.current is not None:
                # a running datum would hold shutdown until it ends; it runs again on restart
                self.executor.cancel(loop.name)
        # one deadline for all loops (not a timeout each): a loop still busy then is a daemon
        # thread whose job resumes when a scheduler starts again, like a running datum's
        deadline = time.monotonic() + STOP_SECONDS
        for loop in loops:
            loop.thread.join(timeout=max(0.0, deadline - time.monotonic()))
        late = [loop.name for loop in loops if loop.thread.is_alive()]
        if late:
            log.warning("stopping without waiting longer for pipeline loops: %s", ", ".join(late))
