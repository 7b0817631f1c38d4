"""Jobs, datums, logs and workers: the read side of PPS, plus stop/delete and flush."""

from __future__ import annotations

import builtins
import dataclasses
import functools
import json
import time
from collections.abc import Iterator

from tusk.api.models import CommitInfo, CommitKey
from tusk.api.pps import (
    DatumInfo,
    DatumInputInfo,
    DatumState,
    JobInfo,
    JobInput,
    JobState,
    LogLine,
    WorkerInfo,
)
from tusk.errors import Conflict, InvalidArgument, NotFound
from tusk.meta import DatumRecord, JobFilter, JobRecord, LogFilter, Tx, after_commit
from tusk.pfs.commits import commit_info, resolve
from tusk.pfs.context import SPEC_REPO, PfsContext
from tusk.pfs.tree import EMPTY_ROOT
from tusk.pps.datums import InputCommit, datum_hash, datum_id, enumerate_datums
from tusk.pps.executors.base import Executor
from tusk.pps.running.job_inputs import input_commits, load_spec
from tusk.pps.running.runner import JobRunner
from tusk.pps.running.stats import stats_commit_id
from tusk.pps.scheduling.scheduler import Scheduler
from tusk.pps.spec.inputs import Input
from tusk.worker.protocol import DatumTask

# list-datum shows failed datums first, then processed, then skipped ones
JOB_PAGE = 500  # jobs per read transaction of a streamed listing
DATUM_PAGE = 1000  # datums per read transaction of a streamed listing

_DATUM_ORDER = {
    DatumState.FAILED: 0,
    DatumState.RECOVERED: 1,
    DatumState.SUCCESS: 2,
    DatumState.SKIPPED: 3,
}


def job_not_found(job_id: str) -> NotFound:
    """The error for a job id that matches no job."""
    return NotFound(f"job {job_id} not found", hint="list jobs with `tusk list-job`")


class JobService:
    """Reads jobs, datums, logs and workers; stops and deletes jobs; waits for commits (flush)."""

    def __init__(
        self, ctx: PfsContext, scheduler: Scheduler, runner: JobRunner, executor: Executor
    ) -> None:
        self.ctx = ctx
        self.scheduler = scheduler
        self.runner = runner
        self.executor = executor

    def _find(self, tx: Tx, job_id: str, pipeline: str | None) -> JobRecord:
        rows = tx.list_jobs(JobFilter(pipeline=pipeline or None, id=job_id))
        if not rows:
            raise job_not_found(job_id)
        if len(rows) > 1:
            names = ", ".join(sorted(r.pipeline for r in rows))
            raise InvalidArgument(
                f"job id {job_id} is shared by the jobs of pipelines {names} (one change, one id)",
                hint="pick one with --pipeline <name>",
            )
        return rows[0]

    def _require_pipeline(self, tx: Tx, pipeline: str | None) -> None:
        if pipeline and tx.get_pipeline(pipeline) is None:
            raise NotFound(f"pipeline {pipeline} not found")

    def _info(self, tx: Tx, job: JobRecord) -> JobInfo:
        commit = tx.get_commit(job.pipeline, job.id)
        started = commit.started if commit else job.created
        finished = job.finished
        if job.state.terminal and commit is not None and commit.finished is not None:
            finished = commit.finished
        inputs = tx.commit_provenance(job.pipeline, job.id) if commit else []
        data = {
            k: v for k, v in dataclasses.asdict(job).items() if k not in ("pk", "output_disjoint")
        }
        data.update(
            started=started,
            finished=finished,
            output_commit=CommitKey(repo=job.pipeline, id=job.id) if commit else None,
            inputs=[JobInput(repo=r, id=i, branch=b) for r, i, b in inputs],
            duration_seconds=finished - started if finished is not None and started else None,
        )
        return JobInfo.model_validate(data)

    def iter_list(
        self,
        pipeline: str | None = None,
        inputs: builtins.list[tuple[str, str]] | None = None,
        output: tuple[str, str] | None = None,
    ) -> Iterator[JobInfo]:
        """:meth:`list`'s jobs in its order, read a page at a time (a short read transaction
        each) so that they are never all in memory. Bad arguments raise here, before the
        first job is read."""
        with self.ctx.meta.transaction(write=False) as tx:
            self._require_pipeline(tx, pipeline)
            oc = resolve(tx, output[0], output[1]) if output else None
            want = {(r, resolve(tx, r, c).id) for r, c in inputs or []}
        if oc is not None:  # an output commit is one job: no pages to read
            return iter(self.list(pipeline, inputs, output))
        return self._job_pages(pipeline, want)

    def _job_pages(self, pipeline: str | None, want: set[tuple[str, str]]) -> Iterator[JobInfo]:
        after: int | None = None
        while True:
            with self.ctx.meta.transaction(write=False) as tx:
                jobs = tx.list_jobs(
                    JobFilter(pipeline=pipeline or None, limit=JOB_PAGE, after_pk=after)
                )
                infos = [self._info(tx, j) for j in jobs]
            for info in infos:
                if not want or want <= {(i.repo, i.id) for i in info.inputs}:
                    yield info
            if len(jobs) < JOB_PAGE:
                return
            after = jobs[-1].pk

    def list(
        self,
        pipeline: str | None = None,
        inputs: builtins.list[tuple[str, str]] | None = None,
        output: tuple[str, str] | None = None,
        limit: int = 0,
    ) -> builtins.list[JobInfo]:
        """Jobs, newest first: of one pipeline, with all these input commits, or of an output
        commit; ``limit`` keeps the newest that many (of the jobs before those filters)."""
        with self.ctx.meta.transaction(write=False) as tx:
            self._require_pipeline(tx, pipeline)
            jobs = tx.list_jobs(JobFilter(pipeline=pipeline or None, limit=limit))
            if output:
                oc = resolve(tx, output[0], output[1])
                jobs = [j for j in jobs if j.pipeline == oc.repo and j.id == oc.id]
            infos = [self._info(tx, j) for j in jobs]
            if inputs:
                want = {(r, resolve(tx, r, c).id) for r, c in inputs}
                infos = [j for j in infos if want <= {(i.repo, i.id) for i in j.inputs}]
            return infos

    def inspect(self, job_id: str, pipeline: str | None = None, block: bool = False) -> JobInfo:
        """One job with the spec it ran; ``block`` waits until it has ended."""
        version = self.ctx.feed.version
        while True:
            with self.ctx.meta.transaction(write=False) as tx:
                job = self._find(tx, job_id, pipeline)
                info = self._info(tx, job)
                spec_row = tx.get_commit(SPEC_REPO, job.spec_commit)
            if not block or job.state.terminal:
                break
            version = self.ctx.feed.wait(version, 0.5)
        if spec_row is None:
            return info
        spec, doc = load_spec(self.ctx, job.spec_commit)
        return info.model_copy(
            update={
                "spec": doc["spec"],
                "datum_timeout_seconds": spec.datum_timeout_seconds,
                "job_timeout_seconds": spec.job_timeout_seconds,
            }
        )

    def stop(self, job_id: str, pipeline: str | None = None) -> None:
        """Kill a job: its output commit is finished without data."""
        with self.ctx.meta.transaction(write=False) as tx:
            job = self._find(tx, job_id, pipeline)
        # ended first, so the pipeline's loop cannot take it up again once its workers stop
        self.runner.fail(job.pipeline, job_id, "stopped by the user", JobState.KILLED)
        after_commit(lambda: self.scheduler.kill_job(job.pipeline, job_id))

    def stop_set(self, job_id: str, reason: str) -> None:
        """Kill every job of the global id ``job_id`` that has not ended, with ``reason``."""
        with self.ctx.meta.transaction(write=False) as tx:
            jobs = tx.list_jobs(JobFilter(id=job_id, unfinished=True))
        for job in jobs:
            self.runner.fail(job.pipeline, job_id, reason, JobState.KILLED)
            after_commit(functools.partial(self.scheduler.kill_job, job.pipeline, job_id))

    def end(self, job_id: str, pipeline: str | None, state: JobState, reason: str) -> None:
        """End a job that has not ended as failed or killed, with ``reason`` (a 2.x
        UpdateJobState): its output commit is finished without data and its workers stop."""
        if state not in (JobState.FAILURE, JobState.KILLED):
            raise InvalidArgument(
                f"a job can only be ended as failed or killed here, not as {state}",
                hint="tusk's job runner sets every other state itself",
            )
        with self.ctx.meta.transaction(write=False) as tx:
            job = self._find(tx, job_id, pipeline)
        if job.state.terminal:
            raise Conflict(
                f"job {job.pipeline}@{job_id} has already finished",
                hint="only a job that has not ended can change its state",
            )
        self.runner.fail(job.pipeline, job_id, reason, state)
        after_commit(lambda: self.scheduler.kill_job(job.pipeline, job_id))

    def delete(self, job_id: str, pipeline: str | None = None) -> None:
        """Delete a job record (stopping it first); its output commit stays."""
        with self.ctx.meta.transaction(write=False) as tx:
            job = self._find(tx, job_id, pipeline)
        if not job.state.terminal:
            self.stop(job_id, job.pipeline)
        with self.ctx.meta.transaction() as tx:
            tx.delete_job(job.pipeline, job_id)

    # -- datums ------------------------------------------------------------------------------
    def datums(self, job_id: str, pipeline: str | None = None) -> builtins.list[DatumInfo]:
        """The datums of a job, failed ones first."""
        with self.ctx.meta.transaction(write=False) as tx:
            job = self._find(tx, job_id, pipeline)
            rows = tx.list_datums(job.pipeline, job_id)
            stats = tx.get_commit(job.pipeline, stats_commit_id(job_id))
        stats_id = stats.id if stats is not None else ""
        out = [self._datum_info(r, job, stats_id) for r in rows]
        if job.total > len(rows):
            out.extend(self._skipped_datums(job, {r.hash for r in rows}))
        out.sort(key=lambda d: _DATUM_ORDER.get(d.state, 4))
        return out

    def iter_datums(self, job_id: str, pipeline: str | None = None) -> Iterator[DatumInfo]:
        """:meth:`datums` in the same order, read a page at a time (a short read transaction
        each) so that a job's datums are never all in memory: one state after the other, in
        datum order within a state; the skipped datums without a row of their own come after
        the recorded skipped ones. Bad arguments raise before the first datum is read."""
        with self.ctx.meta.transaction(write=False) as tx:
            job = self._find(tx, job_id, pipeline)
            stats = tx.get_commit(job.pipeline, stats_commit_id(job_id))
            recorded = tx.count_datums(job.pipeline, job_id)
        stats_id = stats.id if stats is not None else ""
        return self._datum_pages(job, stats_id, recorded)

    def _datum_pages(self, job: JobRecord, stats_id: str, recorded: int) -> Iterator[DatumInfo]:
        ordered = builtins.list(_DATUM_ORDER)
        groups: builtins.list[tuple[tuple[DatumState, ...], tuple[DatumState, ...]]]
        groups = [((state,), ()) for state in ordered] + [((), tuple(ordered))]
        for states, other_than in groups:
            after = -1
            while True:
                with self.ctx.meta.transaction(write=False) as tx:
                    rows = tx.datum_page(
                        job.pipeline,
                        job.id,
                        states=states,
                        other_than=other_than,
                        after_idx=after,
                        limit=DATUM_PAGE,
                    )
                for r in rows:
                    yield self._datum_info(r, job, stats_id)
                if len(rows) < DATUM_PAGE:
                    break
                after = rows[-1].idx
            if states == (DatumState.SKIPPED,) and job.total > recorded:
                with self.ctx.meta.transaction(write=False) as tx:
                    hashes = tx.datum_hashes(job.pipeline, job.id)
                yield from self._iter_skipped(job, hashes)

    def datums_page(
        self,
        job_id: str,
        pipeline: str | None = None,
        state: DatumState | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[builtins.list[DatumInfo], int, dict[str, int]]:
        """One page of ``datums`` (of one state, if given), the number of them, and how many
        datums of the job are in each state. The database counts, orders and cuts the page, so
        its cost does not grow with the job; a job that skipped datums is the exception
        (skipped datums have no record and are enumerated again). A datum a worker runs now is
        shown ``running``."""
        rank = {str(k): v for k, v in _DATUM_ORDER.items()}
        pending = str(DatumState.PENDING)
        # one snapshot: counts and rows read apart could see a job master's rows land between
        with self.ctx.meta.transaction(write=False) as tx:
            tx.snapshot()
            job = self._find(tx, job_id, pipeline)
            now = self._running_now(job)
            counts = tx.datum_counts(job.pipeline, job_id)
            stored = job.total <= sum(counts.values())
            if stored:
                stats = tx.get_commit(job.pipeline, stats_commit_id(job_id))
                running = (
                    tx.datums_page(job.pipeline, job_id, rank, pending, 0, len(now), ids=now)
                    if now
                    else []
                )
                if state == DatumState.RUNNING:
                    rows = running[offset : offset + limit]
                elif state == DatumState.PENDING:
                    rows = tx.datums_page(
                        job.pipeline, job_id, rank, pending, offset, limit, without=now
                    )
                else:
                    rows = tx.datums_page(job.pipeline, job_id, rank, state, offset, limit)
        if not stored:
            every = self._mark_running(job, self.datums(job_id, job.pipeline), now)
            counts = {}
            for d in every:
                counts[d.state.value] = counts.get(d.state.value, 0) + 1
            chosen = [d for d in every if d.state == state] if state else every
            return chosen[offset : offset + limit], len(chosen), counts
        if running:  # a running datum is stored pending until its result
            counts[pending] -= len(running)
            counts[str(DatumState.RUNNING)] = len(running)
            if not counts[pending]:
                del counts[pending]
        total = counts.get(str(state), 0) if state else sum(counts.values())
        stats_id = stats.id if stats is not None else ""
        page = [self._datum_info(r, job, stats_id) for r in rows]
        return self._mark_running(job, page, now), total, counts

    def _running_now(self, job: JobRecord) -> set[str]:
        """The datums of ``job`` that a worker runs now (none once the job has ended)."""
        if job.state.terminal:
            return set()
        return {t.datum_id for t in self.executor.running(job.pipeline) if t.job_id == job.id}

    def _mark_running(
        self, job: JobRecord, datums: builtins.list[DatumInfo], now: set[str] | None = None
    ) -> builtins.list[DatumInfo]:
        """The pending datums of a running job that a worker runs now (``now``, else asked of
        the executor), as ``running``."""
        if job.state.terminal or not any(d.state == DatumState.PENDING for d in datums):
            return datums
        if now is None:
            now = self._running_now(job)
        return [
            d.model_copy(update={"state": DatumState.RUNNING})
            if d.state == DatumState.PENDING and d.id in now
            else d
            for d in datums
        ]

    @staticmethod
    def _datum_info(r: DatumRecord, job: JobRecord, stats_id: str) -> DatumInfo:
        return DatumInfo(
            id=r.datum_id,
            state=r.state,
            tries=r.tries,
            reason=r.reason,
            inputs=[DatumInputInfo.model_validate(i) for i in json.loads(r.inputs)],
            bytes_down=r.bytes_down,
            bytes_up=r.bytes_up,
            seconds=r.seconds,
            seconds_download=r.seconds_download,
            seconds_upload=r.seconds_upload,
            worker=r.worker,
            job_id=job.id,
            pipeline=job.pipeline,
            stats_commit=stats_id,
        )

    def restart_datums(
        self, job_id: str, filters: builtins.list[str], pipeline: str | None = None
    ) -> builtins.list[str]:
        """``restart-datum``: stop the running datums of a running job whose inputs match every
        filter (an input file's path, or a prefix of it); each is tried again (the stopped run
        counts as one of its ``datum_tries``). Returns their datum ids."""
        wanted = [f.strip() for f in filters if f.strip()]
        if not wanted:
            raise InvalidArgument(
                "restart-datum needs a datum filter", hint="e.g. restart-datum <job> /data/a.csv"
            )
        with self.ctx.meta.transaction(write=False) as tx:
            job = self._find(tx, job_id, pipeline)
        if job.state.terminal:
            raise InvalidArgument(
                f"job {job_id} of pipeline {job.pipeline} has ended ({job.state})",
                hint="restart-datum restarts datums of a running job",
            )

        def match(task: DatumTask) -> bool:
            if task.job_id != job_id:
                return False
            paths = [f.path for i in task.inputs for f in i.files]
            paths += [i.glob_path for i in task.inputs]
            return all(any(_path_matches(p, f) for p in paths) for f in wanted)

        hit = self.executor.restart_datums(job.pipeline, match)
        if not hit:
            raise NotFound(
                f"no running datum of job {job_id} matches {', '.join(wanted)}",
                hint="the filters name input files of a datum that is running now "
                "(see `tusk inspect-job` and `tusk list-datum`)",
            )
        return hit

    def _skipped_datums(self, job: JobRecord, recorded: set[str]) -> builtins.list[DatumInfo]:
        """The datums a job skipped: they have no row of their own (skipping must cost nothing
        per datum), so they are enumerated again from the job's input commits."""
        return builtins.list(self._iter_skipped(job, recorded))

    def _iter_skipped(self, job: JobRecord, recorded: set[str]) -> Iterator[DatumInfo]:
        spec, doc = load_spec(self.ctx, job.spec_commit)
        inputs = input_commits(self.ctx, job.pipeline, job.id)
        for d in enumerate_datums(spec.input, inputs, self.ctx.tree):
            if datum_hash(d, job.pipeline, str(doc["salt"])) in recorded:
                continue
            yield DatumInfo(
                id=datum_id(d),
                state=DatumState.SKIPPED,
                inputs=[DatumInputInfo.model_validate(c.to_json()) for c in d],
                job_id=job.id,
                pipeline=job.pipeline,
            )

    def input_datums(self, spec_input: Input) -> Iterator[DatumInfo]:
        """The datums a pipeline with this input would run now: the input's globs over the
        heads of its branches (2.x ``list datum -f``). Nothing is stored or run; an input
        branch with no commit yet gives no datums, as it would give no job."""
        commits: dict[tuple[str, str], InputCommit] = {}
        with self.ctx.meta.transaction(write=False) as tx:
            for leaf in spec_input.leaves():
                if leaf.cron is not None or leaf.git is not None:
                    raise InvalidArgument(
                        "the datums of a cron or git input depend on its pipeline",
                        hint="list the datums of one of the pipeline's jobs instead",
                    )
                atom = leaf.pfs_input
                if atom is None:
                    continue
                branch = atom.branch or "master"
                if tx.get_repo(atom.repo) is None:
                    raise NotFound(f"repo {atom.repo} not found")
                row = tx.get_branch(atom.repo, branch)
                head = tx.get_commit(atom.repo, row.head) if row and row.head else None
                if head is not None:
                    commits[(atom.repo, branch)] = InputCommit(
                        atom.repo, branch, head.id, head.tree or EMPTY_ROOT
                    )
        for d in enumerate_datums(spec_input, commits, self.ctx.tree):
            yield DatumInfo(
                id=datum_id(d),
                state=DatumState.PENDING,
                inputs=[DatumInputInfo.model_validate(c.to_json()) for c in d],
                job_id="",
                pipeline="",
            )

    def datum(self, job_id: str, datum_id: str, pipeline: str | None = None) -> DatumInfo:
        """One datum of a job, by its id or a prefix of it."""
        with self.ctx.meta.transaction(write=False) as tx:
            job = self._find(tx, job_id, pipeline)
            rows = tx.datums_with_id(job.pipeline, job_id, datum_id) if datum_id else []
            stats = tx.get_commit(job.pipeline, stats_commit_id(job_id))
        if rows:  # a recorded datum: read by its id, not with every datum of the job
            rows.sort(key=lambda r: (r.datum_id != datum_id, _DATUM_ORDER.get(r.state, 4)))
            info = self._datum_info(rows[0], job, stats.id if stats is not None else "")
            return self._mark_running(job, [info])[0]
        for d in self.datums(job_id, job.pipeline):  # a skipped one has no record
            if d.id == datum_id or d.id.startswith(datum_id):
                return self._mark_running(job, [d])[0]
        raise NotFound(f"datum {datum_id} not found in job {job_id}")

    # -- logs --------------------------------------------------------------------------------
    def logs(
        self,
        pipeline: str | None = None,
        job_id: str | None = None,
        datum_id: str | None = None,
        master: bool = False,
        after: int = 0,
        inputs: builtins.list[str] | None = None,
        wait: float = 0.0,
        limit: int = 0,
    ) -> builtins.list[LogLine]:
        """Stored log lines after ``after``, oldest first; ``inputs`` keeps the lines of datums
        that read every one of these paths (or file hashes). With ``wait``, wait up to that
        many seconds (at most 30) for a first line. ``limit`` reads at most that many lines
        (before the ``inputs`` filter)."""
        deadline = time.time() + min(wait, 30.0)
        version = self.ctx.feed.version
        while True:
            lines = self._logs(pipeline, job_id, datum_id, master, after, inputs, limit)
            if lines or time.time() >= deadline:
                return lines
            version = self.ctx.feed.wait(version, 0.5)

    def _logs(
        self,
        pipeline: str | None,
        job_id: str | None,
        datum_id: str | None,
        master: bool,
        after: int,
        inputs: builtins.list[str] | None,
        limit: int = 0,
    ) -> builtins.list[LogLine]:
        with self.ctx.meta.transaction(write=False) as tx:
            self._require_pipeline(tx, pipeline)
            if job_id and not tx.list_jobs(JobFilter(pipeline=pipeline or None, id=job_id)):
                # one change, one id: without --pipeline, the logs of every job of that id
                raise job_not_found(job_id)
            rows = tx.list_logs(
                LogFilter(
                    master=master,
                    pipeline=pipeline or None,
                    job_id=job_id or None,
                    datum_prefix=datum_id or None,
                    after=after,
                    limit=limit,
                )
            )
            if inputs:
                keep = set()
                for did, text in tx.datum_inputs(r.datum_id for r in rows):
                    files = json.loads(text)
                    if all(any(f in (c["path"], c["hash"]) for c in files) for f in inputs):
                        keep.add(did)
                rows = [r for r in rows if r.datum_id in keep]
        return [LogLine.model_validate(r, from_attributes=True) for r in rows]

    # -- flush -------------------------------------------------------------------------------
    def flush_commits(
        self,
        commits: builtins.list[tuple[str, str]],
        repos: builtins.list[str] | None = None,
        timeout: float = 3600,
    ) -> builtins.list[CommitInfo]:
        """Wait until every commit downstream of all the given commits is finished."""
        deadline = time.time() + timeout
        version = self.ctx.feed.version
        while True:
            with self.ctx.meta.transaction(write=False) as tx:
                sets = []
                for repo, ref in commits:
                    row = resolve(tx, repo, ref)
                    sets.append(set(tx.commit_subvenance(row.repo, row.id)))
                keys = set.intersection(*sets) if sets else set()
                if repos:
                    keys = {k for k in keys if k[0] in repos}
                rows = [tx.get_commit(r, i) for r, i in sorted(keys)]
                pending = [r for r in rows if r is not None and r.finished is None]
                # A job's output commit is finished a moment before the job row says success;
                # wait for that too, so `flush-commit` then `list-job` shows the finished jobs.
                running = [
                    j
                    for r in rows
                    if r is not None
                    for j in tx.list_jobs(JobFilter(pipeline=r.repo, id=r.id, unfinished=True))
                ]
                if not (pending or running) or time.time() > deadline:
                    return [commit_info(tx, r) for r in rows if r is not None]
            version = self.ctx.feed.wait(version, 0.5)

    def flush_jobs(
        self, commits: builtins.list[tuple[str, str]], pipelines: builtins.list[str] | None = None
    ) -> builtins.list[JobInfo]:
        """Wait for the jobs caused by the given commits (of these pipelines) and return them."""
        out = []
        for c in self.flush_commits(commits):
            repo, cid = c.commit.repo, c.commit.id
            if pipelines and repo not in pipelines:
                continue
            try:
                out.append(self.inspect(cid, repo, block=True))
            except NotFound:  # commits without a job (none expected) are skipped
                continue
        return out

    def workers(self, pipeline: str | None = None) -> builtins.list[WorkerInfo]:
        """The workers the executor keeps (for one pipeline or all)."""
        if pipeline:
            with self.ctx.meta.transaction(write=False) as tx:
                self._require_pipeline(tx, pipeline)
        now = time.time()
        return [
            WorkerInfo(**dataclasses.asdict(w), age_seconds=max(0.0, now - w.started))
            for w in self.executor.workers(pipeline)
        ]


def _path_matches(path: str, wanted: str) -> bool:
    """An input path named by a restart-datum filter: the path itself (with or without its
    leading ``/``) or a directory above it."""
    want = "/" + wanted.strip("/")
    return path == want or path.startswith(want.rstrip("/") + "/")
