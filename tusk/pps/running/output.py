"""Ending a job: merging the outputs of all its datums into the output commit, or finishing that
commit as failed with the reason (reading it then says so; it is not silently empty)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator

from tusk.api.pps import JobState
from tusk.errors import CommitFinished, TuskError
from tusk.pfs.commits import CommitService
from tusk.pfs.context import PfsContext
from tusk.pfs.tree import EMPTY_ROOT, PutFile
from tusk.pps.faults import crash_point
from tusk.pps.running import incremental
from tusk.pps.running.datum_tasks import master_log
from tusk.storage import ChunkRef, file_hash


def end_job(
    ctx: PfsContext, pipeline: str, job_id: str, reason: str, state: JobState = JobState.FAILURE
) -> None:
    """End a job that has not ended yet (failed or killed) and finish its output commit as
    failed with ``reason``."""
    with ctx.meta.transaction() as tx:
        if not tx.end_job(pipeline, job_id, state, time.time(), reason):
            return
        tx.insert_logs([master_log(pipeline, job_id, f"job {state}: {reason}")])
        row = tx.get_commit(pipeline, job_id)
        if row is not None and row.finished is None:
            tx.update_commit(
                pipeline,
                job_id,
                expect_open=True,
                finished=time.time(),
                tree=None,
                failed=True,
                reason=reason,
                size_bytes=0,
            )
    ctx.feed.publish("finish", pipeline, job_id)


def finish_job(
    ctx: PfsContext,
    pipeline: str,
    job_id: str,
    hashes: list[str],
    delta: incremental.Delta | None = None,
) -> None:
    """After the last try: fail the job on its first failed datum, else write the merged
    outputs of all its datums (processed and skipped) as its output commit: for an incremental
    job (``delta``; ``hashes`` are its changed datums') the earlier output updated by the
    changed datums when it can, else every datum's output merged afresh."""
    with ctx.meta.transaction(write=False) as tx:
        bad = [d for d in tx.list_datums(pipeline, job_id, brief=True) if not d.state.done]
        manifests = tx.cached_outputs(pipeline, [*hashes, *(delta.removed_hashes if delta else [])])
    if bad:
        first = bad[0]
        end_job(
            ctx, pipeline, job_id, f"failed to process datum: {first.datum_id} ({first.reason})"
        )
        return
    try:
        root: str | None = None
        if delta is not None and all(h in manifests for h in delta.removed_hashes):
            added = [manifests[h] for h in hashes]
            root = incremental.updated_output(
                ctx,
                delta,
                [manifests[h] for h in delta.removed_hashes],
                added,
                list(merge_ops(added)),
            )
        disjoint = root is not None
        if root is None:
            if delta is not None:
                hashes = delta.all_hashes(ctx, pipeline)
                with ctx.meta.transaction(write=False) as tx:
                    manifests = tx.cached_outputs(pipeline, hashes)
            ordered = [manifests[h] for h in hashes]
            root = ctx.tree.apply(EMPTY_ROOT, list(merge_ops(ordered)))
            disjoint = incremental.owns_top_names(ordered)
    except TuskError as e:
        # e.g. one datum wrote a file where another wrote a directory: the job fails, and the
        # pipeline goes on with its next job
        end_job(ctx, pipeline, job_id, f"cannot merge the outputs of its datums: {e.message}")
        return
    try:
        CommitService(ctx).finish(pipeline, job_id, tree=root, internal=True)
    except CommitFinished:
        settle_finished_output(ctx, pipeline, job_id)  # stopped meanwhile, or finished before
        return
    crash_point("job-output-finished")
    _succeed(ctx, pipeline, job_id, disjoint)


def settle_finished_output(ctx: PfsContext, pipeline: str, job_id: str) -> bool:
    """End a job whose output commit is already finished the way that commit ended (a server
    that crashed after finishing it did not get to mark the job); False if it is still open."""
    with ctx.meta.transaction(write=False) as tx:
        row = tx.get_commit(pipeline, job_id)
    if row is None or row.finished is None:
        return False
    if row.failed:
        end_job(ctx, pipeline, job_id, row.reason or "its output commit failed")
    else:
        _succeed(ctx, pipeline, job_id)
    return True


def _succeed(ctx: PfsContext, pipeline: str, job_id: str, disjoint: bool | None = None) -> None:
    with ctx.meta.transaction() as tx:
        if not tx.end_job(pipeline, job_id, JobState.SUCCESS, time.time()):
            return
        tx.set_output_disjoint(pipeline, job_id, disjoint)
        tx.insert_logs([master_log(pipeline, job_id, "job success")])
    ctx.feed.publish("jobs", pipeline, job_id)


def merge_ops(manifests: Iterable[str]) -> Iterator[PutFile]:
    """Outputs of all datums; a path written by several datums is their concatenation, in datum order."""
    files: dict[str, list[ChunkRef]] = {}
    for m in manifests:
        doc = json.loads(m)
        for f in doc["files"]:
            chunks = [ChunkRef.from_json(c) for c in f["chunks"]]
            files.setdefault(f["path"], []).extend(chunks)
    for path in sorted(files):
        chunks = files[path]
        yield PutFile(path, tuple(chunks), sum(c.length for c in chunks), file_hash(chunks))
