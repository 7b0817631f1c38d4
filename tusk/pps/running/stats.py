"""``enable_stats``: after each job, one commit on the ``stats`` branch of the pipeline's output
repo with what 1.7 writes there for every datum:

    /<datum id>/job:<job id>      empty; names the job that processed the datum
    /<datum id>/index             the datum's index in the job
    /<datum id>/stats             JSON: downloadTime, processTime, uploadTime, downloadBytes,
                                  uploadBytes (1.7's ProcessStats)
    /<datum id>/logs              the user code's log lines (of every try)
    /<datum id>/failure           why it failed (failed datums only)
    /<datum id>/pfs/<input>/...   the datum's input files
    /<datum id>/pfs/out/...       what it wrote (processed and skipped datums)

Every file refers to chunks already stored (inputs, outputs) or to small new ones, so a stats
commit costs little space. The commit is written once the job has ended; its id is derived from
the job's (``stats_commit_id``), so it is written once even if a server stops half-way."""

from __future__ import annotations

import hashlib
import json

from tusk.meta import DatumRecord, LogFilter
from tusk.pfs.commits import CommitService
from tusk.pfs.context import PfsContext
from tusk.pfs.tree import EMPTY_ROOT, PutFile
from tusk.storage import Ingestor
from tusk.storage.chunking import ChunkRef, FileWriter
from tusk.storage.hashing import file_hash

STATS_BRANCH = "stats"


def stats_commit_id(job_id: str) -> str:
    """The id of a job's commit on the stats branch."""
    return hashlib.md5(f"stats/{job_id}".encode()).hexdigest()


def _duration(seconds: float) -> str:
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


STATS_PAGE = 2_000  # datums read, written and applied to the stats tree at a time


def write_stats(ctx: PfsContext, pipeline: str, job_id: str) -> str:
    """Write the job's stats commit (unless it is there); return its id. Datums are read and
    their files added to the tree a page at a time, so memory does not grow with the job."""
    commit_id = stats_commit_id(job_id)
    with ctx.meta.transaction(write=False) as tx:
        if tx.get_commit(pipeline, commit_id) is not None:
            return commit_id
    root = EMPTY_ROOT
    roots: dict[tuple[str, str], str] = {}  # input commit -> tree (a job has a few)
    after = -1
    while page := _stats_page(ctx, pipeline, job_id, after, roots):
        datums, manifests, user_logs = page
        root = ctx.tree.apply(root, _datum_files(ctx, job_id, datums, manifests, user_logs, roots))
        after = datums[-1].idx
    commits = CommitService(ctx)
    commits.start(
        pipeline,
        STATS_BRANCH,
        commit_id=commit_id,
        description=f"stats of job {job_id}",
        internal=True,
    )
    commits.finish(pipeline, commit_id, tree=root, internal=True)
    return commit_id


def _stats_page(
    ctx: PfsContext, pipeline: str, job_id: str, after: int, roots: dict[tuple[str, str], str]
) -> tuple[list[DatumRecord], dict[str, str], dict[str, list[str]]] | None:
    """The next page of datums past index ``after``, their output manifests and user log lines
    (None when there are no more); fills ``roots`` with the trees of their input commits."""
    with ctx.meta.transaction(write=False) as tx:
        datums = tx.datum_page(pipeline, job_id, after_idx=after, limit=STATS_PAGE)
        if not datums:
            return None
        manifests = tx.cached_outputs(pipeline, [d.hash for d in datums if d.state.done])
        ids = tuple(d.datum_id for d in datums)
        logs = tx.list_logs(LogFilter(pipeline=pipeline, job_id=job_id, datum_ids=ids))
        for d in datums:
            for i in json.loads(d.inputs):
                key = (i["repo"], i["commit"])
                if key not in roots:
                    row = tx.get_commit(*key)
                    roots[key] = (row.tree or EMPTY_ROOT) if row is not None else EMPTY_ROOT
    user_logs: dict[str, list[str]] = {}
    for line in logs:
        if line.user:
            user_logs.setdefault(line.datum_id, []).append(line.message.rstrip("\n") + "\n")
    return datums, manifests, user_logs


def _datum_files(
    ctx: PfsContext,
    job_id: str,
    datums: list[DatumRecord],
    manifests: dict[str, str],
    user_logs: dict[str, list[str]],
    roots: dict[tuple[str, str], str],
) -> list[PutFile]:
    """The stats files of ``datums``: small new ones stored here, the rest chunks stored already."""
    small: list[tuple[str, FileWriter]] = []
    ops: list[PutFile] = []
    with Ingestor(ctx.store) as ingestor:

        def add(path: str, data: bytes) -> None:
            writer = ingestor.open_file()
            writer.write(data)
            writer.close()
            small.append((path, writer))

        for d in datums:
            top = f"/{d.datum_id}"
            add(f"{top}/job:{job_id}", b"")
            add(f"{top}/index", str(d.idx).encode())
            stats = {
                "downloadTime": _duration(d.seconds_download),
                "processTime": _duration(d.seconds),
                "uploadTime": _duration(d.seconds_upload),
                "downloadBytes": str(d.bytes_down),
                "uploadBytes": str(d.bytes_up),
            }
            add(f"{top}/stats", json.dumps(stats, indent=2).encode() + b"\n")
            add(f"{top}/logs", "".join(user_logs.get(d.datum_id, [])).encode())
            if d.reason and not d.state.done:
                add(f"{top}/failure", d.reason.encode() + b"\n")
            for i in json.loads(d.inputs):
                ops.extend(_input_files(ctx, roots[(i["repo"], i["commit"])], i, top))
            manifest = manifests.get(d.hash) if d.state.done else None
            for f in json.loads(manifest)["files"] if manifest else []:
                chunks = [ChunkRef.from_json(c) for c in f["chunks"]]
                ops.append(_put(f"{top}/pfs/out{f['path']}", chunks))
    ops.extend(PutFile(p, tuple(w.chunks), w.size, w.hash) for p, w in small)
    return ops


def _put(path: str, chunks: list[ChunkRef]) -> PutFile:
    return PutFile(path, tuple(chunks), sum(c.length for c in chunks), file_hash(chunks))


def _input_files(ctx: PfsContext, root: str, inp: dict[str, str], top: str) -> list[PutFile]:
    node = ctx.tree.get(root, inp["path"])
    if node is None:
        return []
    base = f"{top}/pfs/{inp['name']}"
    if not node.is_dir:
        return [_put(base + node.path, list(node.chunks))]
    return [
        _put(base + n.path, list(n.chunks))
        for n in ctx.tree.walk(root, inp["path"])
        if not n.is_dir
    ]
