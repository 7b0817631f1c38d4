"""Jobs, datums, logs and workers: the read side of PPS, plus stop/delete and flush."""

from __future__ import annotations

import builtins
import json
import time
from typing import Any

from tusk.errors import InvalidArgument, NotFound
from tusk.meta import Tx
from tusk.meta import schema as s
from tusk.pfs.commits import commit_info, resolve
from tusk.pfs.context import SPEC_REPO, PfsContext
from tusk.pps.executor import Executor
from tusk.pps.runner import TERMINAL, JobRunner, load_spec
from tusk.pps.scheduler import Scheduler


class JobService:
    def __init__(
        self, ctx: PfsContext, scheduler: Scheduler, runner: JobRunner, executor: Executor
    ) -> None:
        self.ctx = ctx
        self.scheduler = scheduler
        self.runner = runner
        self.executor = executor

    def _find(self, tx: Tx, job_id: str, pipeline: str | None) -> dict[str, Any]:
        where: dict[str, Any] = {"id": job_id}
        if pipeline:
            where["pipeline"] = pipeline
        rows = tx.rows(s.jobs, where)
        if not rows:
            raise NotFound(f"job {job_id} not found", hint="list jobs with `tusk list-job`")
        if len(rows) > 1:
            names = ", ".join(sorted(r["pipeline"] for r in rows))
            raise InvalidArgument(
                f"job id {job_id} is shared by the jobs of pipelines {names} (one change, one id)",
                hint="pick one with --pipeline <name>",
            )
        return rows[0]

    def _info(self, tx: Tx, job: dict[str, Any]) -> dict[str, Any]:
        commit = tx.get_commit(job["pipeline"], job["id"])
        out = dict(job)
        out.pop("pk", None)
        out["output_commit"] = {"repo": job["pipeline"], "id": job["id"]} if commit else None
        out["started"] = commit.started if commit else job["created"]
        if job["state"] in TERMINAL and commit is not None and commit.finished is not None:
            out["finished"] = commit.finished
        out["inputs"] = [
            {"repo": r, "id": i, "branch": b}
            for r, i, b in (tx.commit_provenance(job["pipeline"], job["id"]) if commit else [])
        ]
        return out

    def list(
        self,
        pipeline: str | None = None,
        inputs: builtins.list[tuple[str, str]] | None = None,
        output: tuple[str, str] | None = None,
    ) -> builtins.list[dict[str, Any]]:
        with self.ctx.meta.transaction(write=False) as tx:
            where = {"pipeline": pipeline} if pipeline else {}
            if pipeline and tx.row(s.pipelines, name=pipeline) is None:
                raise NotFound(f"pipeline {pipeline} not found")
            jobs = tx.rows(s.jobs, where, order_by=[s.jobs.c.pk.desc()])
            if output:
                oc = resolve(tx, output[0], output[1])
                jobs = [j for j in jobs if j["pipeline"] == oc.repo and j["id"] == oc.id]
            infos = [self._info(tx, j) for j in jobs]
            if inputs:
                want = {(r, resolve(tx, r, c).id) for r, c in inputs}
                infos = [j for j in infos if want <= {(i["repo"], i["id"]) for i in j["inputs"]}]
            return infos

    def inspect(
        self, job_id: str, pipeline: str | None = None, block: bool = False
    ) -> dict[str, Any]:
        version = self.ctx.feed.version
        while True:
            with self.ctx.meta.transaction(write=False) as tx:
                job = self._find(tx, job_id, pipeline)
                info = self._info(tx, job)
                spec_row = tx.get_commit(SPEC_REPO, job["spec_commit"])
            if not block or job["state"] in TERMINAL:
                break
            version = self.ctx.feed.wait(version, 0.5)
        if spec_row is not None:
            _spec, doc = load_spec(self.ctx, job["spec_commit"])
            info["spec"] = doc["spec"]
        return info

    def stop(self, job_id: str, pipeline: str | None = None) -> None:
        with self.ctx.meta.transaction(write=False) as tx:
            job = self._find(tx, job_id, pipeline)
        # ended first, so the pipeline's loop cannot take it up again once its workers stop
        self.runner.fail(job["pipeline"], job_id, "stopped by the user", "killed")
        self.scheduler.kill_job(job["pipeline"], job_id)

    def delete(self, job_id: str, pipeline: str | None = None) -> None:
        with self.ctx.meta.transaction(write=False) as tx:
            job = self._find(tx, job_id, pipeline)
        if job["state"] not in TERMINAL:
            self.stop(job_id, job["pipeline"])
        with self.ctx.meta.transaction() as tx:
            tx.delete_rows(s.jobs, pipeline=job["pipeline"], id=job_id)
            tx.delete_rows(s.job_datums, pipeline=job["pipeline"], job_id=job_id)

    # -- datums ------------------------------------------------------------------------------
    def datums(self, job_id: str, pipeline: str | None = None) -> builtins.list[dict[str, Any]]:
        with self.ctx.meta.transaction(write=False) as tx:
            job = self._find(tx, job_id, pipeline)
            rows = tx.rows(
                s.job_datums,
                {"pipeline": job["pipeline"], "job_id": job_id},
                order_by=[s.job_datums.c.idx],
            )
        order = {"failed": 0, "success": 1, "skipped": 2}
        out = [
            {
                "id": r["datum_id"],
                "state": r["state"],
                "tries": r["tries"],
                "reason": r["reason"],
                "inputs": json.loads(r["inputs"]),
                "bytes_down": r["bytes_down"],
                "bytes_up": r["bytes_up"],
                "seconds": r["seconds"],
                "worker": r["worker"],
                "job_id": job_id,
                "pipeline": job["pipeline"],
            }
            for r in rows
        ]
        out.sort(key=lambda d: order.get(str(d["state"]), 3))
        return out

    def datum(self, job_id: str, datum_id: str, pipeline: str | None = None) -> dict[str, Any]:
        for d in self.datums(job_id, pipeline):
            if d["id"] == datum_id or d["id"].startswith(datum_id):
                return d
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
    ) -> builtins.list[dict[str, Any]]:
        with self.ctx.meta.transaction(write=False) as tx:
            if pipeline and tx.row(s.pipelines, name=pipeline) is None:
                raise NotFound(f"pipeline {pipeline} not found")
            if job_id:
                # one change, one id: without --pipeline, the logs of every job of that id
                where: dict[str, Any] = {"id": job_id}
                if pipeline:
                    where["pipeline"] = pipeline
                if not tx.rows(s.jobs, where):
                    raise NotFound(f"job {job_id} not found", hint="list jobs with `tusk list-job`")
            q = s.logs.select().where(s.logs.c.pk > after).order_by(s.logs.c.pk)
            if pipeline:
                q = q.where(s.logs.c.pipeline == pipeline)
            if job_id:
                q = q.where(s.logs.c.job_id == job_id)
            if datum_id:
                q = q.where(s.logs.c.datum_id.startswith(datum_id))
            q = q.where(s.logs.c.master == master)
            rows = [dict(r) for r in tx.c.execute(q).mappings()]
            if inputs:
                keep = set()
                for d in tx.rows(s.job_datums, {"datum_id": list({r["datum_id"] for r in rows})}):
                    files = json.loads(d["inputs"])
                    if all(any(f in (c["path"], c["hash"]) for c in files) for f in inputs):
                        keep.add(d["datum_id"])
                rows = [r for r in rows if r["datum_id"] in keep]
        return rows

    # -- flush -------------------------------------------------------------------------------
    def flush_commits(
        self,
        commits: builtins.list[tuple[str, str]],
        repos: builtins.list[str] | None = None,
        timeout: float = 3600,
    ) -> builtins.list[dict[str, Any]]:
        """Wait until every commit downstream of all the given commits is finished."""
        deadline = time.time() + timeout
        version = self.ctx.feed.version
        while True:
            with self.ctx.meta.transaction(write=False) as tx:
                sets = []
                for repo, ref in commits:
                    row = resolve(tx, repo, ref)
                    sets.append(self._subvenance(tx, row.repo, row.id))
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
                    for j in tx.rows(s.jobs, {"pipeline": r.repo, "id": r.id})
                    if j["state"] not in TERMINAL
                ]
                if not (pending or running) or time.time() > deadline:
                    return [
                        commit_info(tx, r).model_dump(mode="json") for r in rows if r is not None
                    ]
            version = self.ctx.feed.wait(version, 0.5)

    def _subvenance(self, tx: Tx, repo: str, cid: str) -> set[tuple[str, str]]:
        return {(r, i) for r, i in tx.commit_subvenance(repo, cid)}

    def workers(self, pipeline: str | None = None) -> builtins.list[dict[str, Any]]:
        if pipeline:
            with self.ctx.meta.transaction(write=False) as tx:
                if tx.row(s.pipelines, name=pipeline) is None:
                    raise NotFound(f"pipeline {pipeline} not found")
        return [w.__dict__ for w in self.executor.workers(pipeline)]
