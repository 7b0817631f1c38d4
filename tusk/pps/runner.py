"""Running one job: datums, skipping by hash, dispatch to the executor, retries, merge, finish.

Every datum result is committed as it arrives (job_datums + datum_cache), so a server killed
mid-job resumes where it stopped: done datums count once, none is lost or run twice.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tusk.errors import CommitFinished
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
_JOB_COUNTERS = (
    "processed",
    "failed",
    "bytes_down",
    "bytes_up",
    "seconds_download",
    "seconds_process",
    "seconds_upload",
)
_BATCH = 256


class _JobEnded(Exception):
    """The job reached a terminal state elsewhere (stop-job, update-pipeline) while it ran."""


@dataclass
class _Progress:
    datum_ids: dict[int, str]
    tries: dict[int, int]
    totals: dict[str, Any]


def _log_row(
    pipeline: str, job_id: str, datum: str, worker: str, ts: float, stream: str, message: str
) -> dict[str, Any]:
    return {
        "pipeline": pipeline,
        "job_id": job_id,
        "datum_id": datum,
        "worker": worker,
        "ts": ts,
        "stream": stream,
        "user": stream != "system",
        "master": False,
        "message": message,
    }


def _batches(results: Iterator[DatumResult]) -> Iterator[list[DatumResult]]:
    """Group results as they come: the first one, plus every one that finished meanwhile.

    A pump thread drains the executor, so workers never wait on the job master's writes."""
    q: queue.Queue[DatumResult | BaseException | None] = queue.Queue()

    def pump() -> None:
        try:
            for r in results:
                q.put(r)
        except BaseException as exc:  # noqa: BLE001 - handed to the job master below
            q.put(exc)
        q.put(None)

    threading.Thread(target=pump, name="datum-results", daemon=True).start()
    while True:
        first = q.get()
        batch: list[DatumResult] = []
        end = False
        item: DatumResult | BaseException | None = first
        while True:
            if item is None:
                end = True
                break
            if isinstance(item, BaseException):
                raise item
            batch.append(item)
            if len(batch) >= _BATCH:
                break
            try:
                item = q.get_nowait()
            except queue.Empty:
                break
        if batch:
            yield batch
        if end:
            return


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
        todo, progress = self._pending(pipeline, job_id)
        deadline = time.time() + spec.job_timeout_seconds if spec.job_timeout_seconds else None
        # A hanging datum must not hold the job past its timeout: stop the workers at the deadline.
        watchdog = None
        if deadline is not None:
            watchdog = threading.Timer(deadline - time.time(), self.executor.cancel, (pipeline,))
            watchdog.daemon = True
            watchdog.start()
        try:
            self._attempts(
                pipeline, job_id, spec, datums, hashes, todo, progress, deadline, cancelled
            )
        except _JobEnded:
            self.executor.cancel(pipeline)
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
        progress: _Progress,
        deadline: float | None,
        cancelled: Any,
    ) -> None:
        tries = max(1, spec.datum_tries or 3)
        attempt = 0
        while todo and attempt < tries:
            attempt += 1
            tasks = [self._task(spec, pipeline, job_id, i, datums[i], attempt) for i in todo]
            failed: list[int] = []
            last = attempt >= tries
            for batch in _batches(self.executor.run(pipeline, tasks)):
                if cancelled.is_set():
                    # killed by stop-job or a shutdown: a failure then is not a try of the datum
                    batch = [r for r in batch if r.ok]
                items = [(int(r.task_id.rsplit("-", 2)[1]), r) for r in batch]
                ok = self._record(
                    pipeline, job_id, [(i, hashes[i], r) for i, r in items], last, progress
                )
                failed.extend(i for (i, _r), good in zip(items, ok, strict=True) if not good)
                if cancelled.is_set() or (failed and deadline and time.time() > deadline):
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
            existing = dict(tx.values(s.job_datums, ("idx", "state"), key))
            cached = {
                h
                for (h,) in tx.values(
                    s.datum_cache, ("hash",), {"pipeline": pipeline}, among=("hash", hashes)
                )
            }
            new = [
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
            ]
            tx.insert_many(s.job_datums, new)
            states = [*existing.values(), *(r["state"] for r in new)]
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

    def _pending(self, pipeline: str, job_id: str) -> tuple[list[int], _Progress]:
        """The datums still to run, and what the job master keeps in memory while it runs."""
        with self.ctx.meta.transaction(write=False) as tx:
            rows = tx.values(
                s.job_datums,
                ("idx", "datum_id", "tries", "state"),
                {"pipeline": pipeline, "job_id": job_id},
            )
            job = self._job(tx, pipeline, job_id)
        todo = sorted(i for i, _d, _t, state in rows if state in ("pending", "failed", "running"))
        progress = _Progress(
            {i: d for i, d, _t, _s in rows},
            {i: t for i, _d, t, _s in rows},
            {k: job[k] for k in _JOB_COUNTERS},
        )
        return todo, progress

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
        self,
        pipeline: str,
        job_id: str,
        results: list[tuple[int, str, DatumResult]],
        last: bool,
        progress: _Progress,
    ) -> list[bool]:
        """Store datum results in one transaction of a few statements; return which succeeded.

        Results arrive in batches (whatever finished while the previous batch was written), and
        the job master keeps ids, tries and counters in memory (it is the job's only writer), so
        its cost per datum stays below a worker's and adding workers adds throughput."""
        if not results:
            return []
        now = time.time()
        totals = progress.totals
        datum_rows: list[dict[str, Any]] = []
        cache_rows: list[dict[str, Any]] = []
        logs: list[dict[str, Any]] = []
        for idx, h, res in results:
            did = progress.datum_ids[idx]
            progress.tries[idx] += 1
            logs.extend(
                _log_row(pipeline, job_id, did, res.worker, ts, stream, line)
                for ts, stream, line in res.logs
            )
            totals["bytes_down"] += res.bytes_down
            totals["seconds_download"] += res.seconds_download
            totals["seconds_process"] += res.seconds_process
            totals["seconds_upload"] += res.seconds_upload
            if res.ok:
                totals["processed"] += 1
                totals["bytes_up"] += res.bytes_up
                manifest = {"files": [o.to_json() for o in res.outputs], "dirs": list(res.dirs)}
                cache_rows.append(
                    {
                        "pipeline": pipeline,
                        "hash": h,
                        "manifest": json.dumps(manifest),
                        "bytes_up": res.bytes_up,
                        "job_id": job_id,
                    }
                )
            else:
                totals["failed"] += 1 if last else 0
                note = f"failed processing datum: {res.reason}" + ("" if last else ", retrying")
                logs.append(_log_row(pipeline, job_id, did, res.worker, now, "system", note))
            datum_rows.append(
                {
                    "pipeline": pipeline,
                    "job_id": job_id,
                    "idx": idx,
                    "state": "success" if res.ok else ("failed" if last else "pending"),
                    "tries": progress.tries[idx],
                    "reason": res.reason,
                    "bytes_down": res.bytes_down,
                    "bytes_up": res.bytes_up,
                    "worker": res.worker,
                    "seconds": res.seconds_process,
                }
            )
        with self.ctx.meta.transaction() as tx:
            tx.update_many(s.job_datums, ("pipeline", "job_id", "idx"), datum_rows)
            tx.insert_missing(s.datum_cache, cache_rows)  # kept for later jobs in any case
            tx.insert_many(s.logs, logs)
            ((state,),) = tx.values(s.jobs, ("state",), {"pipeline": pipeline, "id": job_id})
            if state in TERMINAL:
                # stopped or superseded meanwhile, possibly through another server
                raise _JobEnded(state)
            tx.update_rows(s.jobs, {"pipeline": pipeline, "id": job_id}, **totals)
        return [res.ok for _i, _h, res in results]

    def _finish(self, pipeline: str, job_id: str, datums: list[Datum], hashes: list[str]) -> None:
        with self.ctx.meta.transaction(write=False) as tx:
            rows = tx.values(
                s.job_datums,
                ("idx", "state", "datum_id", "reason"),
                {"pipeline": pipeline, "job_id": job_id},
            )
            bad = sorted(r for r in rows if r[1] not in ("success", "skipped"))
            manifests = dict(
                tx.values(
                    s.datum_cache,
                    ("hash", "manifest"),
                    {"pipeline": pipeline},
                    among=("hash", hashes),
                )
            )
        if bad:
            _idx, _state, did, reason = bad[0]
            self.fail(pipeline, job_id, f"failed to process datum: {did} ({reason})")
            return
        root = self.ctx.tree.apply(EMPTY_ROOT, list(merge_ops(manifests[h] for h in hashes)))
        try:
            CommitService(self.ctx).finish(pipeline, job_id, tree=root, internal=True)
        except CommitFinished:
            return  # the job was stopped while its output was being assembled

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
