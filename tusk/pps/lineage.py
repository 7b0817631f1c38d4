"""Where data came from: the datums and input files behind one output file (file-level lineage),
and the whole wave of commits and jobs behind a commit (its global ID and provenance chain).

An output commit of a pipeline is the merge of the stored outputs of every datum of its job, and
a job reuses the stored output of each datum an earlier job already processed (an incremental job
has no row at all for those). So the datums behind a file are found from the file, not from the
job's rows: the ``datum_files`` index names every stored datum output of the pipeline that wrote
the path, and each such datum is checked to be one of the job's datums. For inputs without
``join``/``group`` that check costs a few look-ups per candidate: the job's salt must give the
datum's hash, and each of the datum's input files must be unchanged in the job's input commits.
Jobs with keyed inputs (whose datums depend on every file with the same key), or whose input spec
differs from that of the job that processed the candidate, enumerate their datums once instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tusk.api.pps import (
    CommitWave,
    DatumState,
    FileLineage,
    LineageDatum,
    LineageInput,
    WaveCommit,
    WaveJob,
    WavePipeline,
)
from tusk.errors import InvalidArgument, NotFound
from tusk.ids import is_commit_id
from tusk.meta import JobRecord
from tusk.meta.store import CommitRow
from tusk.pfs.commits import resolve
from tusk.pfs.context import SPEC_REPO, PfsContext
from tusk.pfs.paths import clean_path
from tusk.pps.datums import Datum, DatumInput, InputCommit, datum_hash, datum_id, enumerate_datums
from tusk.pps.running.job_inputs import input_commits, load_spec


def _keyed(node: Any) -> bool:
    """Whether an input tree (as JSON) has a join or a group anywhere."""
    if isinstance(node, dict):
        if any(k in node for k in ("join", "group", "join_on", "group_by")):
            return True
        return any(_keyed(v) for v in node.values())
    if isinstance(node, list):
        return any(_keyed(v) for v in node)
    return False


def _stored_datum(inputs: list[dict[str, Any]]) -> Datum:
    """A datum rebuilt from its stored inputs (enough for its hash and its id)."""
    return tuple(
        DatumInput(
            str(i["name"]),
            str(i["repo"]),
            str(i["branch"]),
            str(i["commit"]),
            "",
            str(i["path"]),
            str(i["hash"]),
            int(i.get("size", 0)),
            "file",
        )
        for i in inputs
    )


class LineageService:
    """File-level lineage and the waves of commits; read-only."""

    def __init__(self, ctx: PfsContext) -> None:
        self.ctx = ctx

    # -- file-level lineage ------------------------------------------------------------------
    def file(self, repo: str, ref: str, path: str) -> FileLineage:
        """The datums that wrote the file ``path`` of ``repo@ref``, with the input files each one
        read at the commits it read them from (NotFound for an unknown repo, commit or file)."""
        p = clean_path(path, allow_root=False)
        with self.ctx.meta.transaction(write=False) as tx:
            row = resolve(tx, repo, ref)
            pipeline = tx.get_pipeline(repo) if repo != SPEC_REPO else None
            job = tx.get_job(repo, row.id) if pipeline is not None else None
            candidates = tx.datums_that_wrote(repo, p) if job is not None else []
        node = self.ctx.tree.get(row.tree, p) if row.tree else None
        if node is None:
            why = f" (the commit failed: {row.reason})" if row.failed and row.reason else ""
            raise NotFound(
                f"file {p} not found in repo {repo} at commit {ref}{why}",
                hint=f"list the commit's files with `tusk list-file {repo} {ref} /`",
            )
        if node.is_dir:
            raise InvalidArgument(
                f"{p} is a directory in repo {repo} at commit {ref}",
                hint="lineage is per file: give the path of a file in it",
            )
        out = FileLineage(repo=repo, commit=row.id, path=p)
        if job is None:
            return out.model_copy(update={"pipeline": pipeline.name if pipeline else None})
        datums = self._datums_of(job, candidates)
        return out.model_copy(update={"pipeline": job.pipeline, "job_id": job.id, "datums": datums})

    def _datums_of(self, job: JobRecord, candidates: list[tuple[str, str]]) -> list[LineageDatum]:
        """The candidates (``(hash, job that processed it)``) that are datums of ``job``."""
        if not candidates:
            return []
        spec, doc = load_spec(self.ctx, job.spec_commit)
        salt = str(doc["salt"])
        inputs = input_commits(self.ctx, job.pipeline, job.id)
        keyed = spec.input is not None and _keyed(spec.input.model_dump(exclude_none=True))
        producers: dict[str, JobRecord | None] = {}
        with self.ctx.meta.transaction(write=False) as tx:
            found = tx.datums_by_hash(job.pipeline, candidates)
            for _h, producer in candidates:
                if producer not in producers:
                    producers[producer] = tx.get_job(job.pipeline, producer)
        rows = {h: found.get(h) for h, _p in candidates}
        members: dict[str, Datum | None] = {}
        unsure: list[str] = []
        for h, producer in candidates:
            r = rows[h]
            made_by = producers[producer]
            if r is None or made_by is None or keyed:
                unsure.append(h)
                continue
            stored = _stored_datum(json.loads(r.inputs))
            if datum_hash(stored, job.pipeline, salt) != h:
                continue  # another salt: reprocessed since, not a datum of this job
            if not self._unchanged(stored, inputs):
                continue
            if made_by.spec_commit != job.spec_commit:
                other, _ = load_spec(self.ctx, made_by.spec_commit)
                if other.input != spec.input:
                    unsure.append(h)
                    continue
            members[h] = None
        if unsure:  # enumerate the job's datums once
            every = {
                datum_hash(d, job.pipeline, salt): d
                for d in enumerate_datums(spec.input, inputs, self.ctx.tree)
            }
            members.update((h, every[h]) for h in unsure if h in every)
        out = []
        for h, producer in candidates:
            if h not in members:
                continue
            r = rows[h]
            if r is not None:
                ins = [
                    LineageInput(repo=i["repo"], commit=i["commit"], path=i["path"])
                    for i in json.loads(r.inputs)
                ]
                out.append(
                    LineageDatum(datum_id=r.datum_id, job_id=r.job_id, state=r.state, inputs=ins)
                )
                continue
            d = members[h]
            assert d is not None
            out.append(
                LineageDatum(
                    datum_id=datum_id(d),
                    job_id=producer,
                    state=DatumState.SUCCESS,
                    inputs=[LineageInput(repo=c.repo, commit=c.commit, path=c.path) for c in d],
                )
            )
        out.sort(key=lambda d: ([i.path for i in d.inputs], d.datum_id))
        return out

    def _unchanged(self, datum: Datum, inputs: Mapping[tuple[str, str], InputCommit]) -> bool:
        """Whether every input file of ``datum`` is in the job's input commits, unchanged."""
        for d in datum:
            ic = inputs.get((d.repo, d.branch or "master"))
            if ic is None:
                return False
            node = self.ctx.tree.get(ic.root, d.path)
            if node is None or node.hash != d.hash:
                return False
        return True

    # -- waves -------------------------------------------------------------------------------
    def wave(self, commit_id: str, repo: str | None = None) -> CommitWave:
        """Every commit with the global ID ``commit_id`` (or, with ``repo``, with the ID of the
        commit ``repo@commit_id``, which may be a branch), every commit up their provenance
        chain, the jobs that wrote the output commits among them and the pipelines' spec
        versions."""
        if repo is None and not is_commit_id(commit_id):
            raise InvalidArgument(
                f"{commit_id!r} is not a global ID (32 hex digits)",
                hint="give a commit id, or a repo with a branch: ?repo=R (`tusk wave repo@branch`)",
            )
        with self.ctx.meta.transaction(write=False) as tx:
            gid = resolve(tx, repo, commit_id).id if repo is not None else commit_id
            start = tx.commits_with_id(gid)
            if not start:
                raise NotFound(
                    f"no commit has the ID {gid}",
                    hint="commit IDs are 32 hex digits; list them with `tusk list-commit REPO`",
                )
            seen: dict[tuple[str, str], CommitRow] = {}
            todo = list(start)
            while todo:
                row = todo.pop()
                if (row.repo, row.id) in seen:
                    continue
                seen[(row.repo, row.id)] = row
                for pr, pi, _pb in tx.commit_provenance(row.repo, row.id):
                    if (pr, pi) not in seen:
                        prow = tx.get_commit(pr, pi)
                        if prow is not None:
                            todo.append(prow)
            jobs = []
            for r, i in seen:
                if r != SPEC_REPO and tx.get_pipeline(r) is not None:
                    j = tx.get_job(r, i)
                    if j is not None:
                        jobs.append(j)
        rows = sorted(seen.values(), key=lambda c: (c.started, c.repo))
        jobs.sort(key=lambda j: j.pk)  # creation order: upstream first
        return CommitWave(
            id=gid,
            commits=[
                WaveCommit(
                    repo=c.repo,
                    id=c.id,
                    branch=c.branch,
                    origin=c.origin,
                    finished=c.finished,
                    failed=c.failed,
                )
                for c in rows
                if c.repo != SPEC_REPO
            ],
            jobs=[
                WaveJob(
                    pipeline=j.pipeline,
                    job_id=j.id,
                    state=j.state,
                    spec_version=j.version,
                    spec_commit=j.spec_commit,
                    reason=j.reason,
                )
                for j in jobs
            ],
            pipelines=sorted(
                {
                    WavePipeline(
                        pipeline=j.pipeline, spec_version=j.version, spec_commit=j.spec_commit
                    )
                    for j in jobs
                },
                key=lambda p: (p.pipeline, p.spec_version),
            ),
        )
