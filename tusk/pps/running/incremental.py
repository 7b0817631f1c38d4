"""Jobs that cost what changed.

A job of a pipeline with one PFS input builds on the pipeline's last successful job when it can:
its datums are the glob matches whose entries differ between that job's input tree and its own
(found by :meth:`Tree.glob_diff`, which reads only the subtrees whose Merkle ids differ), the
other datums are the earlier job's and count as skipped without a row each, and its output
commit is the earlier output with the vanished datums' outputs deleted and the new datums'
outputs added.

The output update relies on every datum of the earlier job having written under top-level names
of its own (recorded per job as ``output_disjoint``): deleting a vanished datum's names then
removes exactly its output, and a new datum's names, if free, cannot meet another datum's files.
When that does not hold (datums writing the same path are concatenated in datum order) the job
merges every datum's output as before, and so does any job whose spec input or salt differs from
the earlier job's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from tusk.api.pps import JobState
from tusk.meta import JobFilter
from tusk.pfs.context import SPEC_REPO, PfsContext
from tusk.pfs.tree import EMPTY_ROOT, Delete, Node, Op, PutFile
from tusk.pps.datums import Datum, DatumInput, InputCommit, datum_hash, enumerate_datums
from tusk.pps.running.job_inputs import load_spec
from tusk.pps.spec import PipelineSpec


@dataclass(frozen=True)
class Delta:
    """A job as the change since an earlier successful job of its pipeline."""

    base_job: str
    base_output: str  # the earlier job's output tree root
    base_total: int
    added: list[Datum]  # new or changed datums, in datum order
    removed_hashes: list[str]  # hashes of the datums that vanished or changed
    spec: PipelineSpec
    salt: str
    inputs: Mapping[tuple[str, str], InputCommit]

    @property
    def total(self) -> int:
        """The job's datum count."""
        return self.base_total - len(self.removed_hashes) + len(self.added)

    @property
    def unchanged(self) -> int:
        """Datums the job shares with the earlier one (skipped, no row each)."""
        return self.total - len(self.added)

    def all_hashes(self, ctx: PfsContext, pipeline: str) -> list[str]:
        """Every datum's hash in datum order (when the output must be merged in full)."""
        datums = enumerate_datums(self.spec.input, self.inputs, ctx.tree)
        return [datum_hash(d, pipeline, self.salt) for d in datums]


def plan(
    ctx: PfsContext,
    pipeline: str,
    job_id: str,
    spec: PipelineSpec,
    salt: str,
    inputs: Mapping[tuple[str, str], InputCommit],
) -> Delta | None:
    """The job as a :class:`Delta`, or None when it must enumerate all its datums."""
    atom = spec.input.pfs_input if spec.input is not None else None
    if atom is None or atom.glob is None:
        return None
    branch = atom.branch or "master"
    current = inputs.get((atom.repo, branch))
    if current is None:
        return None
    with ctx.meta.transaction(write=False) as tx:
        job = tx.get_job(pipeline, job_id)
        if job is None:
            return None
        done = tx.list_jobs(JobFilter(pipeline=pipeline, states=[JobState.SUCCESS], limit=8))
        base = next((j for j in done if j.pk < job.pk), None)
        # a job with recovered datums (err_cmd) has no output for them: they run again
        if base is None or not base.output_disjoint or base.recovered:
            return None
        output = tx.get_commit(pipeline, base.id)
        if output is None or output.finished is None or output.failed or output.tree is None:
            return None
        base_input = None
        for repo, cid, b in tx.commit_provenance(pipeline, base.id):
            if repo == atom.repo and (b or "master") == branch and repo != SPEC_REPO:
                base_input = tx.get_commit(repo, cid)
        if base_input is None or base_input.finished is None:
            return None
    base_spec, base_doc = load_spec(ctx, base.spec_commit)
    if str(base_doc["salt"]) != salt or base_spec.input != spec.input:
        return None
    name = atom.name or atom.repo
    old_root = base_input.tree or EMPTY_ROOT
    added: list[Node] = []
    removed: list[Node] = []
    for _path, new, old in ctx.tree.glob_diff(atom.glob, current.root, old_root):
        if new is not None:
            added.append(new)
        if old is not None:
            removed.append(old)
    added.sort(key=lambda n: (-n.size, n.path))

    def datum(n: Node, c: InputCommit) -> Datum:
        return (
            DatumInput(name, c.repo, c.branch, c.commit, c.root, n.path, n.hash, n.size, n.kind),
        )

    before = InputCommit(atom.repo, branch, base_input.id, old_root)
    return Delta(
        base_job=base.id,
        base_output=output.tree,
        base_total=base.total,
        added=[datum(n, current) for n in added],
        removed_hashes=[datum_hash(datum(n, before), pipeline, salt) for n in removed],
        spec=spec,
        salt=salt,
        inputs=inputs,
    )


def top_names(manifest: str) -> set[str]:
    """The top-level names a datum's output (its stored manifest) wrote files under."""
    return {f["path"].lstrip("/").split("/", 1)[0] for f in json.loads(manifest)["files"]}


def updated_output(
    ctx: PfsContext, delta: Delta, removed: list[str], added: list[str], merge: list[PutFile]
) -> str | None:
    """The earlier output with the ``removed`` datum outputs (manifests) deleted and ``merge``
    (the ops merging the ``added`` ones) applied; None if a new datum's top-level names are
    taken by another datum (the job then merges every output)."""
    gone: set[str] = set()
    for m in removed:
        gone |= top_names(m)
    taken: set[str] = set()
    for m in added:
        names = top_names(m)
        if not taken.isdisjoint(names):
            return None
        taken |= names
    for name in taken - gone:
        if ctx.tree.get(delta.base_output, "/" + name) is not None:
            return None
    ops: list[Op] = [Delete("/" + n) for n in sorted(gone)]
    return ctx.tree.apply(delta.base_output, [*ops, *merge])
