"""Running one job: datums, skipping by hash, dispatch to the executor, retries, merge, finish.

Every datum result is committed as it arrives (job_datums + datum_cache), so a server killed
mid-job resumes where it stopped: done datums count once, none is lost or run twice.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tusk.meta import Tx
from tusk.meta import schema as s
from tusk.pfs.commits import CommitService
from tusk.pfs.context import SPEC_REPO, PfsContext
from tusk.pfs.tree import EMPTY_ROOT, PutFile
from tusk.pps.datums import Datum, InputCommit, datum_hash, datum_id, enumerate_datums
from tusk.pps.executor import Executor
from tusk.pps.spec import PipelineSpec, parse_specs
from tusk.storage import ChunkRef, file_hash, read_chunks
from tusk.worker.protocol import DatumResult, DatumTask

TERMINAL = ("success", "failure", "killed")


@dataclass
class JobContext:
    pipeline: str
    job_id: str
    spec: PipelineSpec
    salt: str
    inputs: dict[tuple[str, str], InputCommit]


def load_spec(ctx: PfsContext, spec_commit: str) -> tuple[PipelineSpec, dict[str, Any]]:
    """The spec a job runs with: the file in its ``__spec__`` commit (its provenance)."""
    with ctx.meta.transaction(write=False) as tx:
        row = tx.get_commit(SPEC_REPO, spec_commit)
    assert row is not None and row.tree is not None, f"spec commit {spec_commit} missing"
    node = ctx.tree.get(row.tree, "/spec")
    assert node is not None
    raw = b"".join(read_chunks(ctx.store, node.chunks))
    doc = json.loads(raw)
    return parse_specs(json.dumps(doc["spec"]), "__spec__")[0], doc


class JobRunner:
    def __init__(self, ctx: PfsContext, executor: Executor, store_url: str, sandbox: str) -> None:
        self.ctx = ctx
        self.executor = executor
        self.store_url = store_url
        self.sandbox = sandbox

    # -- state helpers -----------------------------------------------------------------------
    def _job(self, tx: Tx, pipeline: str, job_id: str) -> dict[str, Any]:
        job = tx.row(s.jobs, pipeline=pipeline, id=job_id)
        assert job is not None
        return job

    def _log(self, tx: Tx, pipeline: str, job_id: str, message: str, **kw: Any) -> None:
        tx.insert(
            s.logs,
            pipeline=pipeline,
            job_id=job_id,
            ts=time.time(),
            message=message,
            user=False,
            master=True,
            **kw,
        )

    def fail(self, pipeline: str, job_id: str, reason: str, state: str = "failure") -> None:
        with self.ctx.meta.transaction() as tx:
            job = self._job(tx, pipeline, job_id)
            if job["state"] in TERMINAL:
                return
            tx.update_rows(
                s.jobs,
                {"pipeline": pipeline, "id": job_id},
                state=state,
                reason=reason,
                finished=time.time(),
            )
            self._log(tx, pipeline, job_id, f"job {state}: {reason}")
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
        self.ctx.feed.publish("finish", pipeline, job_id)

    # -- inputs ------------------------------------------------------------------------------
    def input_state(self, pipeline: str, job_id: str) -> tuple[str, list[str]]:
        """("ready" | "waiting" | "failed", names of failed inputs)."""
        with self.ctx.meta.transaction(write=False) as tx:
            prov = tx.commit_provenance(pipeline, job_id)
            waiting, failed = False, []
            for repo, cid, _branch in prov:
                row = tx.get_commit(repo, cid)
                if row is None:
                    continue
                if row.finished is None:
                    waiting = True
                elif row.failed and repo != SPEC_REPO:
                    failed.append(repo)
        if failed:
            return "failed", sorted(set(failed))
        return ("waiting" if waiting else "ready"), []

    def _inputs(self, pipeline: str, job_id: str) -> dict[tuple[str, str], InputCommit]:
        out: dict[tuple[str, str], InputCommit] = {}
        with self.ctx.meta.transaction(write=False) as tx:
            for repo, cid, branch in tx.commit_provenance(pipeline, job_id):
                row = tx.get_commit(repo, cid)
                if row is None or repo == SPEC_REPO:
                    continue
                out[(repo, branch or "master")] = InputCommit(
                    repo, branch or "master", cid, row.tree or EMPTY_ROOT
                )
        return out

    # -- the job -----------------------------------------------------------------------------
    def run(self, pipeline: str, job_id: str, cancelled: Any) -> None:
        with self.ctx.meta.transaction(write=False) as tx:
            job = self._job(tx, pipeline, job_id)
        spec, doc = load_spec(self.ctx, job["spec_commit"])
        salt = str(doc["salt"])
        inputs = self._inputs(pipeline, job_id)
        datums = enumerate_datums(spec.input, inputs, self.ctx.tree)
        hashes = [datum_hash(d, pipeline, salt) for d in datums]
        if not self._prepare(pipeline, job_id, datums, hashes):
            return  # stopped (or its pipeline updated) while it was being set up
        todo = self._pending(pipeline, job_id, datums, hashes)
        deadline = time.time() + spec.job_timeout_seconds if spec.job_timeout_seconds else None
        # A hanging datum must not hold the job past its timeout: stop the workers at the deadline.
        watchdog = None
        if deadline is not None:
            watchdog = threading.Timer(deadline - time.time(), self.executor.cancel, (pipeline,))
            watchdog.daemon = True
            watchdog.start()
        try:
            self._attempts(pipeline, job_id, spec, datums, hashes, todo, deadline, cancelled)
        finally:
            if watchdog is not None:
                watchdog.cancel()

    def _attempts(
        self,
        pipeline: str,
        job_id: str,
        spec: PipelineSpec,
        datums: list[Datum],
        hashes: list[str],
        todo: list[int],
        deadline: float | None,
        cancelled: Any,
    ) -> None:
        tries = max(1, spec.datum_tries or 3)
        attempt = 0
        while todo and attempt < tries:
            attempt += 1
            tasks = [self._task(spec, pipeline, job_id, i, datums[i], attempt) for i in todo]
            failed: list[int] = []
            for res in self.executor.run(pipeline, tasks):
                if cancelled.is_set() and not res.ok:
                    break  # killed by stop-job or a shutdown: not a try of the datum
                idx = int(res.task_id.rsplit("-", 2)[1])
                last = attempt >= tries
                if self._record(pipeline, job_id, idx, hashes[idx], res, last):
                    continue
                failed.append(idx)
                if cancelled.is_set() or (deadline and time.time() > deadline):
                    break
            if cancelled.is_set():
                return
            if deadline and time.time() > deadline:
                self.executor.cancel(pipeline)
                self.fail(
                    pipeline, job_id, f"job exceeded its timeout ({spec.job_timeout})", "killed"
                )
                return
            todo = sorted(failed)
        self._finish(pipeline, job_id, datums, hashes)

    def _prepare(self, pipeline: str, job_id: str, datums: list[Datum], hashes: list[str]) -> bool:
        """Record the job's datums once (a resumed job keeps what it had) and mark the ones whose
        hash any earlier job of the pipeline already processed as skipped; False if the job has
        ended meanwhile (a killed job must not come back to life as running)."""
        with self.ctx.meta.transaction() as tx:
            key = {"pipeline": pipeline, "job_id": job_id}
            if self._job(tx, pipeline, job_id)["state"] in TERMINAL:
                return False
            existing = {r["idx"] for r in tx.rows(s.job_datums, key)}
            cached = {
                r["hash"] for r in tx.rows_in(s.datum_cache, "hash", hashes, pipeline=pipeline)
            }
            tx.insert_many(
                s.job_datums,
                [
                    {
                        **key,
                        "idx": i,
                        "datum_id": datum_id(d),
                        "hash": hashes[i],
                        "state": "skipped" if hashes[i] in cached else "pending",
                        "inputs": json.dumps([c.to_json() for c in d]),
                    }
                    for i, d in enumerate(datums)
                    if i not in existing
                ],
            )
            states = [r["state"] for r in tx.rows(s.job_datums, key)]
            job = self._job(tx, pipeline, job_id)
            tx.update_rows(
                s.jobs,
                {"pipeline": pipeline, "id": job_id},
                state="running",
                started=job["started"] or time.time(),
                total=len(datums),
                skipped=states.count("skipped"),
                processed=states.count("success"),
                failed=0,
            )
            self._log(
                tx,
                pipeline,
                job_id,
                f"job running: {len(datums)} datums, {states.count('skipped')} skipped",
            )
        return True

    def _pending(
        self, pipeline: str, job_id: str, datums: list[Datum], hashes: list[str]
    ) -> list[int]:
        with self.ctx.meta.transaction(write=False) as tx:
            rows = tx.rows(s.job_datums, {"pipeline": pipeline, "job_id": job_id})
        return sorted(r["idx"] for r in rows if r["state"] in ("pending", "failed", "running"))

    def _task(
        self, spec: PipelineSpec, pipeline: str, job_id: str, idx: int, datum: Datum, attempt: int
    ) -> DatumTask:
        t = spec.transform
        inputs = []
        for c in datum:
            files, dirs = [], []
            if c.kind == "file":
                node = self.ctx.tree.get(c.root, c.path)
                nodes = [node] if node is not None else []
            else:
                nodes = list(self.ctx.tree.walk(c.root, c.path))
                if not nodes:
                    dirs.append(c.path)
            for n in nodes:
                if n.kind == "file":
                    files.append(
                        {
                            "path": n.path,
                            "chunks": [ch.to_json() for ch in n.chunks],
                            "size": n.size,
                        }
                    )
                elif n.file_count == 0:
                    dirs.append(n.path)
            inputs.append(
                {
                    "name": c.name,
                    "commit": c.commit,
                    "glob_path": c.path,
                    "files": files,
                    "dirs": dirs,
                }
            )
        return DatumTask.from_json(
            {
                "task_id": f"{job_id}-{idx}-{attempt}",
                "job_id": job_id,
                "datum_id": datum_id(datum),
                "output_commit_id": job_id,
                "pipeline": pipeline,
                "store_url": self.store_url,
                "cmd": list(t.cmd or []),
                "stdin": list(t.stdin or []),
                "env": dict(t.env or {}),
                "accept_return_code": list(t.accept_return_code or []),
                "working_dir": t.working_dir or "",
                "timeout_seconds": spec.datum_timeout_seconds,
                "sandbox": self.sandbox,
                "inputs": inputs,
            }
        )

    def _record(
        self, pipeline: str, job_id: str, idx: int, h: str, res: DatumResult, last: bool
    ) -> bool:
        """Store one datum result; return whether it succeeded."""
        did = ""
        with self.ctx.meta.transaction() as tx:
            key = {"pipeline": pipeline, "job_id": job_id, "idx": idx}
            row = tx.rows(s.job_datums, key)[0]
            did = row["datum_id"]
            tx.insert_many(
                s.logs,
                [
                    {
                        "pipeline": pipeline,
                        "job_id": job_id,
                        "datum_id": did,
                        "worker": res.worker,
                        "ts": ts,
                        "stream": stream,
                        "user": stream != "system",
                        "master": False,
                        "message": line,
                    }
                    for ts, stream, line in res.logs
                ],
            )
            job = self._job(tx, pipeline, job_id)
            common = {
                "bytes_down": job["bytes_down"] + res.bytes_down,
                "seconds_download": job["seconds_download"] + res.seconds_download,
                "seconds_process": job["seconds_process"] + res.seconds_process,
                "seconds_upload": job["seconds_upload"] + res.seconds_upload,
            }
            if res.ok:
                manifest = json.dumps(
                    {"files": [o.to_json() for o in res.outputs], "dirs": list(res.dirs)}
                )
                if tx.row(s.datum_cache, pipeline=pipeline, hash=h) is None:
                    tx.insert(
                        s.datum_cache,
                        pipeline=pipeline,
                        hash=h,
                        manifest=manifest,
                        bytes_up=res.bytes_up,
                        job_id=job_id,
                    )
                tx.update_rows(
                    s.job_datums,
                    key,
                    state="success",
                    tries=row["tries"] + 1,
                    reason="",
                    bytes_down=res.bytes_down,
                    bytes_up=res.bytes_up,
                    worker=res.worker,
                    seconds=res.seconds_process,
                )
                tx.update_rows(
                    s.jobs,
                    {"pipeline": pipeline, "id": job_id},
                    processed=job["processed"] + 1,
                    bytes_up=job["bytes_up"] + res.bytes_up,
                    **common,
                )
                return True
            tx.update_rows(
                s.job_datums,
                key,
                state="failed" if last else "pending",
                tries=row["tries"] + 1,
                reason=res.reason,
                worker=res.worker,
            )
            tx.update_rows(
                s.jobs,
                {"pipeline": pipeline, "id": job_id},
                failed=job["failed"] + (1 if last else 0),
                **common,
            )
            tx.insert(
                s.logs,
                pipeline=pipeline,
                job_id=job_id,
                datum_id=did,
                worker=res.worker,
                ts=time.time(),
                stream="system",
                user=False,
                master=False,
                message=f"failed processing datum: {res.reason}" + ("" if last else ", retrying"),
            )
        return False

    def _finish(self, pipeline: str, job_id: str, datums: list[Datum], hashes: list[str]) -> None:
        with self.ctx.meta.transaction(write=False) as tx:
            rows = sorted(
                tx.rows(s.job_datums, {"pipeline": pipeline, "job_id": job_id}),
                key=lambda r: r["idx"],
            )
            bad = [r for r in rows if r["state"] not in ("success", "skipped")]
            manifests = {
                r["hash"]: r["manifest"]
                for r in tx.rows_in(s.datum_cache, "hash", hashes, pipeline=pipeline)
            }
        if bad:
            self.fail(
                pipeline,
                job_id,
                f"failed to process datum: {bad[0]['datum_id']} ({bad[0]['reason']})",
            )
            return
        root = self.ctx.tree.apply(EMPTY_ROOT, list(merge_ops(manifests[h] for h in hashes)))
        CommitService(self.ctx).finish(pipeline, job_id, tree=root, internal=True)
        with self.ctx.meta.transaction() as tx:
            tx.update_rows(
                s.jobs, {"pipeline": pipeline, "id": job_id}, state="success", finished=time.time()
            )
            self._log(tx, pipeline, job_id, "job success")
        self.ctx.feed.publish("jobs", pipeline, job_id)


def merge_ops(manifests: Iterator[str] | Any) -> Iterator[PutFile]:
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
