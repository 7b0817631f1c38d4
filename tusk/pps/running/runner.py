"""Running one job: its datums, skipping by hash, dispatch to the executor, retries and the end.

The steps live beside this module: :mod:`tusk.pps.running.job_inputs` (spec and input commits),
:mod:`tusk.pps.running.datum_tasks` (recording datums, building tasks), :mod:`tusk.pps.running.results`
(recording results as they arrive) and :mod:`tusk.pps.running.output` (the output commit).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from tusk.api.pps import JobState
from tusk.errors import InvalidArgument, NotFound
from tusk.pfs.context import PfsContext
from tusk.pps.datums import Datum, datum_hash, enumerate_datums
from tusk.pps.executors.base import CountedTasks, Executor
from tusk.pps.running import incremental
from tusk.pps.running.datum_tasks import (
    Progress,
    SecretPayload,
    TaskBuilder,
    pending_datums,
    prepare_datums,
    resolve_secrets,
)
from tusk.pps.running.egress import EgressTargets, egress_url
from tusk.pps.running.image import CodeRuntime, Provenance
from tusk.pps.running.job_inputs import InputState, input_commits, input_state, load_spec
from tusk.pps.running.output import Egress, end_job, finish_job, settle_finished_output
from tusk.pps.running.results import JobEnded, record_results, result_batches
from tusk.pps.running.stats import write_stats
from tusk.pps.spec import PipelineSpec
from tusk.worker.protocol import DatumTask
from tusk.worker.runtimes import ImageNotFound

# Datums whose input files a job master looks up at once when it makes their tasks (their
# nodes are about 0.5 KB each, alive until the window's last task is made)
LOOKUP_WINDOW = 8192


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
        service_host: str = "127.0.0.1",
        secret_values: Callable[[str], dict[str, bytes]] | None = None,
        egress: EgressTargets | None = None,
    ) -> None:
        """``secret_values`` gives a secret's values by name (NotFound when it is gone);
        ``egress`` writes finished output commits to the URLs specs name."""
        self.ctx = ctx
        self.service_host = service_host
        self.executor = executor
        self.code = code
        self.tasks = TaskBuilder(ctx, store_url, network=network)
        self.secret_values = secret_values
        self.egress_targets = egress

    def egress(self, spec: PipelineSpec) -> Egress | None:
        """What copies a finished output commit of ``spec`` to its egress URL (None: no egress)."""
        url = egress_url(spec)
        targets = self.egress_targets
        if url is None or targets is None:
            return None

        def copy(root: str) -> None:
            targets.copy(self.ctx, root, url)

        return copy

    def settle(self, pipeline: str, job_id: str) -> bool:
        """End a job whose output commit is already finished (a crash came after finishing it,
        or during its egress, which then runs again); False if the commit is still open."""
        with self.ctx.meta.transaction(write=False) as tx:
            job = tx.get_job(pipeline, job_id)
            commit = tx.get_commit(pipeline, job_id)
        if job is None or commit is None or commit.finished is None:
            return False
        spec, _doc = load_spec(self.ctx, job.spec_commit)
        return settle_finished_output(self.ctx, pipeline, job_id, self.egress(spec))

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
        secrets = self._secrets(pipeline, job_id, spec)
        if secrets is None:
            return
        salt = str(doc["salt"])
        if spec.service is not None:
            from tusk.pps.service import serve

            serve(
                self.ctx,
                self.executor,
                self.tasks,
                self.service_host,
                pipeline,
                job_id,
                spec,
                salt,
                provenance,
                cancelled,
            )
            return
        inputs = input_commits(self.ctx, pipeline, job_id)
        delta = incremental.plan(self.ctx, pipeline, job_id, spec, salt, inputs)
        if delta is not None:  # only what changed since the last successful job
            datums, unchanged = delta.added, delta.unchanged
        else:
            datums, unchanged = enumerate_datums(spec.input, inputs, self.ctx.tree), 0
        hashes = [datum_hash(d, pipeline, salt) for d in datums]
        if not prepare_datums(self.ctx, pipeline, job_id, datums, hashes, unchanged=unchanged):
            return  # stopped (or its pipeline updated) while it was being set up
        todo, progress = pending_datums(self.ctx, pipeline, job_id, datums)
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
                secrets,
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

    def run_spout(self, pipeline: str, cancelled: threading.Event) -> None:
        """Run a spout pipeline's code until ``cancelled`` is set or the pipeline is stopped,
        updated or deleted; each tar stream it writes is a commit (:mod:`tusk.pps.spout`)."""
        from tusk.pps import spout

        parts = spout.SpoutContext(
            self.ctx, self.executor, self.tasks, self.code, self.service_host, self.secret_values
        )
        spout.run(parts, pipeline, cancelled)

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

    def _secrets(self, pipeline: str, job_id: str, spec: PipelineSpec) -> SecretPayload | None:
        """The values of the spec's secrets; None (the job failed, naming the secret and the
        fix) when one is gone."""
        if not spec.transform.secrets:
            return SecretPayload()

        def missing(name: str) -> dict[str, bytes]:
            raise NotFound(f"secret {name} not found", hint="create it with tusk create-secret")

        try:
            return resolve_secrets(spec, self.secret_values or missing)
        except (NotFound, InvalidArgument) as e:
            self.fail(pipeline, job_id, e.message + (f" ({e.hint})" if e.hint else ""))
            return None

    def _attempts(
        self,
        pipeline: str,
        job_id: str,
        spec: PipelineSpec,
        provenance: Provenance,
        secrets: SecretPayload,
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
            progress.made.clear()

            def made(todo: list[int] = todo, attempt: int = attempt) -> Iterator[DatumTask]:
                # a window of datums' input files looked up at once, in path order
                for start in range(0, len(todo), LOOKUP_WINDOW):
                    part = todo[start : start + LOOKUP_WINDOW]
                    nodes = self.tasks.file_nodes(datums[i] for i in part)
                    for i in part:
                        task = self.tasks.task(
                            spec,
                            provenance,
                            pipeline,
                            job_id,
                            i,
                            datums[i],
                            attempt,
                            secrets,
                            nodes,
                        )
                        progress.made[i] = task.datum_id  # its result needs it: not hashed again
                        yield task

            # made as the executor takes them: a task per datum at once would be the job's
            # largest memory (a few KB each, all alive until the last datum ran)
            tasks = CountedTasks(made(), len(todo))
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
        if spec.enable_stats:  # before the job ends, so whoever waits for it sees its stats
            write_stats(self.ctx, pipeline, job_id)
        finish_job(self.ctx, pipeline, job_id, hashes, self.egress(spec), delta)
