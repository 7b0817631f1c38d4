"""PPS routes: pipelines, jobs, datums, logs, workers, flush."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from tusk.pps.spec import parse_specs
from tusk.runtime import Engine

router = APIRouter()


class CreatePipelines(BaseModel):
    specs: str
    source: str = "spec"
    update: bool = False
    reprocess: bool = False


class CommitRefs(BaseModel):
    commits: list[tuple[str, str]]
    repos: list[str] | None = None
    pipelines: list[str] | None = None


def eng(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


@router.post("/pipelines")
def create_pipelines(body: CreatePipelines, request: Request) -> list[dict[str, Any]]:
    e = eng(request)
    specs = parse_specs(body.specs, body.source)
    return [e.pipelines.create(sp, update=body.update, reprocess=body.reprocess) for sp in specs]


@router.get("/pipelines")
def list_pipelines(request: Request) -> list[dict[str, Any]]:
    return eng(request).pipelines.list()


@router.get("/pipelines/{name}")
def inspect_pipeline(name: str, request: Request) -> dict[str, Any]:
    return eng(request).pipelines.inspect(name)


@router.get("/pipelines/{name}/extract")
def extract_pipeline(name: str, request: Request) -> dict[str, Any]:
    return eng(request).pipelines.extract(name)


@router.delete("/pipelines/{name}")
def delete_pipeline(name: str, request: Request, force: bool = False) -> list[str]:
    return eng(request).pipelines.delete(name, force=force)


@router.delete("/pipelines")
def delete_all_pipelines(request: Request, force: bool = False) -> list[str]:
    return eng(request).pipelines.delete(None, all=True, force=force)


@router.post("/pipelines/{name}/stop")
def stop_pipeline(name: str, request: Request) -> dict[str, Any]:
    return eng(request).pipelines.set_stopped(name, True)


@router.post("/pipelines/{name}/start")
def start_pipeline(name: str, request: Request) -> dict[str, Any]:
    return eng(request).pipelines.set_stopped(name, False)


@router.get("/jobs")
def list_jobs(
    request: Request,
    pipeline: str | None = None,
    input: list[str] | None = None,
    output: str | None = None,
) -> list[dict[str, Any]]:
    ins = [tuple(i.split("/", 1)) for i in input or []]
    out = tuple(output.split("/", 1)) if output else None
    return eng(request).jobs.list(pipeline, ins or None, out)  # type: ignore[arg-type]


@router.get("/jobs/{job_id}")
def inspect_job(
    job_id: str, request: Request, pipeline: str | None = None, block: bool = False
) -> dict[str, Any]:
    return eng(request).jobs.inspect(job_id, pipeline, block)


@router.post("/jobs/{job_id}/stop")
def stop_job(job_id: str, request: Request, pipeline: str | None = None) -> None:
    eng(request).jobs.stop(job_id, pipeline)


@router.delete("/jobs/{job_id}")
def delete_job(job_id: str, request: Request, pipeline: str | None = None) -> None:
    eng(request).jobs.delete(job_id, pipeline)


@router.get("/jobs/{job_id}/datums")
def list_datums(job_id: str, request: Request, pipeline: str | None = None) -> list[dict[str, Any]]:
    return eng(request).jobs.datums(job_id, pipeline)


@router.get("/jobs/{job_id}/datums/{datum_id}")
def inspect_datum(
    job_id: str, datum_id: str, request: Request, pipeline: str | None = None
) -> dict[str, Any]:
    return eng(request).jobs.datum(job_id, datum_id, pipeline)


@router.get("/logs")
def get_logs(
    request: Request,
    pipeline: str | None = None,
    job: str | None = None,
    datum: str | None = None,
    master: bool = False,
    after: int = 0,
    inputs: str | None = None,
    wait: float = 0.0,
) -> list[dict[str, Any]]:
    e = eng(request)
    ins = [i for i in (inputs or "").split(",") if i]
    deadline = time.time() + min(wait, 30.0)
    version = e.ctx.feed.version
    while True:
        rows = e.jobs.logs(pipeline, job, datum, master, after, ins or None)
        if rows or time.time() >= deadline:
            return rows
        version = e.ctx.feed.wait(version, 0.5)


@router.post("/flush/commits")
def flush_commits(body: CommitRefs, request: Request) -> list[dict[str, Any]]:
    return eng(request).jobs.flush_commits(body.commits, body.repos)


@router.post("/flush/jobs")
def flush_jobs(body: CommitRefs, request: Request) -> list[dict[str, Any]]:
    e = eng(request)
    commits = e.jobs.flush_commits(body.commits)
    out = []
    for c in commits:
        repo, cid = c["commit"]["repo"], c["commit"]["id"]
        if body.pipelines and repo not in body.pipelines:
            continue
        try:
            out.append(e.jobs.inspect(cid, repo, block=True))
        except Exception:  # noqa: BLE001 - commits without a job (none expected) are skipped
            continue
    return out


@router.get("/workers")
def list_workers(request: Request, pipeline: str | None = None) -> list[dict[str, Any]]:
    return eng(request).jobs.workers(pipeline)
