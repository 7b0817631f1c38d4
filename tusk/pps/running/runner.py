"""Running one job: its datums, skipping by hash, dispatch to the executor, retries and the end.

The steps live beside this module: :mod:`tusk.pps.running.job_inputs` (spec and input commits),
:mod:`tusk.pps.running.datum_tasks` (recording datums, building tasks), :mod:`tusk.pps.running.results`
(recording results as they arrive) and :mod:`tusk.pps.running.output` (the output commit).
"""

from __future__ import annotations

import threading
import time

from tusk.api.pps import JobState
from tusk.errors import InvalidArgument
from tusk.pfs.context import PfsContext
from tusk.pps.datums import Datum, datum_hash, enumerate_datums
from tusk.pps.executors.base import Executor
from tusk.pps.running import incremental
from tusk.pps.running.datum_tasks import Progress, TaskBuilder, pending_datums, prepare_datums
from tusk.pps.running.image import CodeRuntime, Provenance
from tusk.pps.running.job_inputs import InputState, input_commits, input_state, load_spec
from tusk.pps.running.output import end_job, finish_job
from tusk.pps.running.results import JobEnded, record_results, result_batches
from tusk.pps.spec import PipelineSpec
from tusk.worker.runtimes import ImageNotFound


class JobRunner:
    """Runs one job at a time for a pipeline's loop: tries every datum up to ``datum_tries``
    times on the executor, then writes the job's output commit."""

    def __init__(
        self,
        ctx: PfsContext,
        executor: Executor,
        store_url: str,
        code: CodeRuntime,
        *,
        network: bool = False,
    ) -> None:
        self.ctx = ctx
        self.executor = executor
        self.code = code
        self.tasks = TaskBuilder(ctx, store_url, network=network)

    def fail(
        self, pipeline: str, job_id: str, reason: str, state: JobState = JobState.FAILURE
    ) -> None:
        """End a job that has not ended yet as failed (or killed), with ``reason``."""
        end_job(self.ctx, pipeline, job_id, reason, state)

    def input_state(self, pipeline: str, job_id: str) -> tuple[InputState, list[str]]:
        """Whether the job's inputs let it run now, and the names of the failed ones."""
        return input_state(self.ctx, pipeline, job_id)

    def run(self, pipeline: str, job_id: str, cancelled: threading.Event) -> None:
        """Run the job to its end (or until ``cancelled`` is set or it ends elsewhere)."""
        with self.ctx.meta.transaction(write=False) as tx:
            job = tx.get_job(pipeline, job_id)
        assert job is not None
        spec, doc = load_spec(self.ctx, job.spec_commit)
        provenance = self._provenance(pipeline, job_id, spec)
        if provenance is None:
            return
        salt = str(doc["salt"])
        inputs = input_commits(self.ctx, pipeline, job_id)
        delta = incremental.plan(self.ctx, pipeline, job_id, spec, salt, inputs)
        if delta is not None:  # only what changed since the last successful job
            datums, unchanged = delta.added, delta.unchanged
        else:
            datums, unchanged = enumerate_datums(spec.input, inputs, self.ctx.tree), 0
        hashes = [datum_hash(d, pipeline, salt) for d in datums]
        if not prepare_datums(self.ctx, pipeline, job_id, datums, hashes, unchanged=unchanged):
            return  # stopped (or its pipeline updated) while it was being set up
        todo, progress = pending_datums(self.ctx, pipeline, job_id)
        deadline = time.time() + spec.job_timeout_seconds if spec.job_timeout_seconds else None
        # A hanging datum must not hold the job past its timeout: stop the workers at the deadline.
        watchdog = None
        if deadline is not None:
            watchdog = threading.Timer(deadline - time.time(), self.executor.cancel, (pipeline,))
            watchdog.daemon = True
            watchdog.start()
        try:
            self._attempts(
                pipeline,
                job_id,
                spec,
                provenance,
                datums,
                hashes,
                todo,
                progress,
                deadline,
                cancelled,
                delta,
            )
        except JobEnded:
            self.executor.cancel(pipeline)
        finally:
            if watchdog is not None:
                watchdog.cancel()

    def _provenance(self, pipeline: str, job_id: str, spec: PipelineSpec) -> Provenance | None:
        """Record the job's image, its digest and the runtime; None (the job failed) when the
        image is not there or nothing here can run it."""
        try:
            provenance = self.code.provenance(spec)
        except ImageNotFound as e:
            self.fail(pipeline, job_id, str(e))
            return None
        except InvalidArgument as e:
            self.fail(pipeline, job_id, e.message)
            return None
        with self.ctx.meta.transaction(durable=False) as tx:  # redone by a resumed job
            tx.set_job_image(
                pipeline,
                job_id,
                provenance.image,
                provenance.image_digest,
                provenance.runtime,
            )
        return provenance

    def _attempts(
        self,
        pipeline: str,
        job_id: str,
        spec: PipelineSpec,
        provenance: Provenance,
        datums: list[Datum],
        hashes: list[str],
        todo: list[int],
        progress: Progress,
        deadline: float | None,
        cancelled: threading.Event,
        delta: incremental.Delta | None,
    ) -> None:
        tries = max(1, spec.datum_tries or 3)
        attempt = 0
        while todo and attempt < tries:
            attempt += 1
            tasks = [
                self.tasks.task(spec, provenance, pipeline, job_id, i, datums[i], attempt)
                for i in todo
            ]
            failed: list[int] = []
            last = attempt >= tries
            for batch in result_batches(self.executor.run(pipeline, tasks)):
                if cancelled.is_set():
                    # killed by stop-job or a shutdown: a failure then is not a try of the datum
                    batch = [r for r in batch if r.ok]
                items = [(int(r.task_id.rsplit("-", 2)[1]), r) for r in batch]
                ok = record_results(
                    self.ctx,
                    pipeline,
                    job_id,
                    [(i, hashes[i], r) for i, r in items],
                    last,
                    progress,
                )
                failed.extend(i for (i, _r), good in zip(items, ok, strict=True) if not good)
                if cancelled.is_set() or (failed and deadline and time.time() > deadline):
                    break
            if cancelled.is_set():
                return
            if deadline and time.time() > deadline:
                self.executor.cancel(pipeline)
                self.fail(
                    pipeline,
                    job_id,
                    f"job exceeded its timeout ({spec.job_timeout})",
                    JobState.KILLED,
                )
                return
            todo = sorted(failed)
        finish_job(self.ctx, pipeline, job_id, hashes, delta)
