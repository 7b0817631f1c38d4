"""Ending a job: merging the outputs of all its datums into the output commit, or finishing that
commit as failed with the reason (reading it then says so; it is not silently empty)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from tusk.api.pps import JobState
from tusk.errors import CommitFinished, TuskError
from tusk.faults import crash_point
from tusk.pfs.commits import CommitService
from tusk.pfs.context import PfsContext
from tusk.pfs.tree import EMPTY_ROOT, PutFile, Tree
from tusk.pps.running import incremental
from tusk.pps.running.datum_tasks import master_log
from tusk.pps.running.egress import EgressFailed
from tusk.storage import ChunkRef, file_hash

TREE_BATCH = 10_000  # datum outputs per tree write of a job's output: bounds finish_job's memory


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


# Copies a finished output commit (its tree) to the job's egress URL; raises EgressFailed.
Egress = Callable[[str], None]


def finish_job(
    ctx: PfsContext,
    pipeline: str,
    job_id: str,
    hashes: list[str],
    egress: Egress | None = None,
    delta: incremental.Delta | None = None,
) -> None:
    """After the last try: fail the job on its first failed datum, else write the merged
    outputs of all its datums (processed and skipped) as its output commit, then copy it to the
    job's ``egress`` if it has one. For an incremental job (``delta``; ``hashes`` are its changed
    datums') the earlier output is updated by the changed datums when it can, else every datum's
    output is merged afresh. Recovered datums (err_cmd) add nothing to the output."""
    with ctx.meta.transaction(write=False) as tx:
        first_bad = tx.first_unsettled(pipeline, job_id)
        recovered = tx.recovered_hashes(pipeline, job_id) if first_bad is None else set()
    if first_bad is not None:
        end_job(
            ctx,
            pipeline,
            job_id,
            f"failed to process datum: {first_bad.datum_id} ({first_bad.reason})",
        )
        return
    if recovered:
        hashes = [h for h in hashes if h not in recovered]
    try:
        root: str | None = None
        if delta is not None:
            with ctx.meta.transaction(write=False) as tx:
                manifests = tx.cached_outputs(pipeline, [*hashes, *delta.removed_hashes])
            if all(h in manifests for h in delta.removed_hashes):
                added = [manifests[h] for h in hashes]
                root = incremental.updated_output(
                    ctx,
                    delta,
                    [manifests[h] for h in delta.removed_hashes],
                    added,
                    list(merge_ops(added)),
                )
            del manifests
        disjoint = root is not None and not recovered
        if root is None:
            if delta is not None:
                hashes = [h for h in delta.all_hashes(ctx, pipeline) if h not in recovered]
            merged = merge_outputs(ctx, pipeline, hashes)
            root = merged.root
            disjoint = merged.disjoint(ctx) and not recovered
    except TuskError as e:
        # e.g. one datum wrote a file where another wrote a directory: the job fails, and the
        # pipeline goes on with its next job
        end_job(ctx, pipeline, job_id, f"cannot merge the outputs of its datums: {e.message}")
        return
    try:
        CommitService(ctx).finish(pipeline, job_id, tree=root, internal=True)
    except CommitFinished:
        # stopped meanwhile, or finished before
        settle_finished_output(ctx, pipeline, job_id, egress)
        return
    crash_point("job-output-finished")
    _complete(ctx, pipeline, job_id, root, egress, disjoint)


def settle_finished_output(
    ctx: PfsContext, pipeline: str, job_id: str, egress: Egress | None = None
) -> bool:
    """End a job whose output commit is already finished the way that commit ended (a server
    that crashed after finishing it, or during its egress, did not get to mark the job); False
    if it is still open."""
    with ctx.meta.transaction(write=False) as tx:
        row = tx.get_commit(pipeline, job_id)
    if row is None or row.finished is None:
        return False
    if row.failed:
        end_job(ctx, pipeline, job_id, row.reason or "its output commit failed")
    else:
        _complete(ctx, pipeline, job_id, row.tree or EMPTY_ROOT, egress)
    return True


def _complete(
    ctx: PfsContext,
    pipeline: str,
    job_id: str,
    root: str,
    egress: Egress | None,
    disjoint: bool | None = None,
) -> None:
    """The output commit is finished: run the egress (the job shows ``egress`` meanwhile; a
    failure fails the job and the commit stays, as in Pachyderm), then mark the job a success."""
    if egress is not None:
        with ctx.meta.transaction() as tx:
            if not tx.begin_egress(pipeline, job_id):
                return  # ended meanwhile (stopped)
            tx.insert_logs([master_log(pipeline, job_id, "egress: copying the output commit")])
        ctx.feed.publish("jobs", pipeline, job_id)
        try:
            egress(root)
        except EgressFailed as e:
            end_job(ctx, pipeline, job_id, str(e))
            return
    _succeed(ctx, pipeline, job_id, disjoint)


def _succeed(ctx: PfsContext, pipeline: str, job_id: str, disjoint: bool | None = None) -> None:
    with ctx.meta.transaction() as tx:
        if not tx.end_job(pipeline, job_id, JobState.SUCCESS, time.time()):
            return
        tx.set_output_disjoint(pipeline, job_id, disjoint)
        tx.insert_logs([master_log(pipeline, job_id, "job success")])
    ctx.feed.publish("jobs", pipeline, job_id)


@dataclass(frozen=True)
class MergedOutput:
    """The tree :func:`merge_outputs` wrote, and the sum over its datums of how many top-level
    names each wrote."""

    root: str
    top_names: int

    def disjoint(self, ctx: PfsContext) -> bool:
        """Whether no two datums wrote under the same top-level name: the root's top-level
        entries are the union of every datum's names, as many as their sum only when no two
        datums share one (counted without a set of every name)."""
        return sum(1 for _ in ctx.tree.list_dir(self.root)) == self.top_names


def merge_outputs(
    ctx: PfsContext, pipeline: str, hashes: Sequence[str], batch: int | None = None
) -> MergedOutput:
    """The outputs of the pipeline's datums with these ``hashes`` merged as :func:`merge_ops`
    merges them, written ``batch`` (default ``TREE_BATCH``) datums at a time: each batch's
    stored outputs are read and applied to the root the batches before it made, so the job
    master never holds every datum's output at once. A file that an earlier batch wrote too gets this batch's chunks
    appended (datum order holds across batches); a file where another datum wrote a directory
    fails the merge with a :class:`~tusk.errors.PathConflict`, as in one tree write."""
    tree = ctx.tree
    size = max(1, TREE_BATCH if batch is None else batch)
    root, top_names = EMPTY_ROOT, 0
    for start in range(0, len(hashes), size):
        part = hashes[start : start + size]
        with ctx.meta.transaction(write=False) as tx:
            manifests = tx.cached_outputs(pipeline, part)
        ordered = [manifests[h] for h in part]
        del manifests
        top_names += sum(len(incremental.top_names(m)) for m in ordered)
        ops = merge_ops(ordered)
        root = tree.apply(root, ops if root == EMPTY_ROOT else _appended(tree, root, ops))
    return MergedOutput(root, top_names)


def _appended(tree: Tree, root: str, ops: Iterable[PutFile]) -> Iterator[PutFile]:
    """``ops`` with the chunks of the file already at each path in ``root`` put first."""
    for op in ops:
        old = tree.get(root, op.path)
        if old is None or old.kind == "dir":  # a directory: the tree write names the conflict
            yield op
            continue
        chunks = (*old.chunks, *op.chunks)
        yield PutFile(op.path, chunks, old.size + op.size, file_hash(chunks))


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
