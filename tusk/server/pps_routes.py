"""PPS routes: pipelines, jobs, datums, logs, workers, flush. Each one calls one typed service."""

from __future__ import annotations

import itertools
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from tusk.api.models import CommitInfo
from tusk.api.pps import (
    CommitRefs,
    CreatePipelines,
    DatumInfo,
    DatumsOfSpec,
    JobInfo,
    LogLine,
    PipelineCreated,
    PipelineInfo,
    PipelineSpecDoc,
    WorkerInfo,
)
from tusk.api.projects import DEFAULT_PROJECT
from tusk.errors import InvalidArgument
from tusk.pps.spec import parse_specs
from tusk.runtime import Engine
from tusk.server import serverlog
from tusk.server.ndjson import NDJSON, models_response, wants_lines
from tusk.server.params import Count, PipelineKey, Seconds

router = APIRouter()


def eng(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def _commit_ref(text: str, what: str) -> tuple[str, str]:
    repo, _, ref = text.partition("/")
    if not repo or not ref:
        raise InvalidArgument(
            f"{what} ({text!r}) invalid: expected repo/commit",
            hint=f"give the {what} as repo/branch or repo/commit-id, e.g. images/master",
        )
    return repo, ref


@router.post("/pipelines", response_model=list[PipelineCreated])
def create_pipelines(body: CreatePipelines, request: Request) -> list[PipelineCreated]:
    e = eng(request)
    specs = [sp.in_project(body.project) for sp in parse_specs(body.specs, body.source)]
    return [e.pipelines.create(sp, update=body.update, reprocess=body.reprocess) for sp in specs]


@router.get("/pipelines", response_model=list[PipelineInfo])
def list_pipelines(
    request: Request, project: str = DEFAULT_PROJECT, all_projects: bool = False
) -> list[PipelineInfo]:
    return eng(request).pipelines.list(project=None if all_projects else project)


@router.get("/pipelines/{name}", response_model=PipelineInfo)
def inspect_pipeline(name: PipelineKey, request: Request) -> PipelineInfo:
    return eng(request).pipelines.inspect(name)


@router.get("/pipelines/{name}/extract", response_model=PipelineSpecDoc)
def extract_pipeline(name: PipelineKey, request: Request) -> PipelineSpecDoc:
    return eng(request).pipelines.extract(name)


@router.delete("/pipelines/{name}", response_model=list[str])
def delete_pipeline(name: PipelineKey, request: Request, force: bool = False) -> list[str]:
    return eng(request).pipelines.delete(name, force=force)


@router.delete("/pipelines", response_model=list[str])
def delete_all_pipelines(
    request: Request, force: bool = False, project: str = DEFAULT_PROJECT
) -> list[str]:
    return eng(request).pipelines.delete(None, all=True, force=force, project=project)


@router.post("/pipelines/{name}/stop", response_model=PipelineInfo)
def stop_pipeline(name: PipelineKey, request: Request) -> PipelineInfo:
    return eng(request).pipelines.set_stopped(name, True)


@router.post("/pipelines/{name}/start", response_model=PipelineInfo)
def start_pipeline(name: PipelineKey, request: Request) -> PipelineInfo:
    return eng(request).pipelines.set_stopped(name, False)


def _lines_doc(what: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {NDJSON: {}}, "description": f"one {what} per line (Accept: ndjson)"}}


@router.get("/jobs", response_model=list[JobInfo], responses=_lines_doc("JobInfo"))
def list_jobs(
    request: Request,
    pipeline: str | None = None,
    input: Annotated[list[str] | None, Query()] = None,
    output: str | None = None,
) -> Any:
    ins = [_commit_ref(i, "input") for i in input or []]
    out = _commit_ref(output, "output") if output is not None else None
    jobs = eng(request).jobs
    if wants_lines(request):  # read page by page as it is sent (see tusk.server.ndjson)
        return models_response(jobs.iter_list(pipeline, ins or None, out))
    return jobs.list(pipeline, ins or None, out)


@router.get("/jobs/{job_id}", response_model=JobInfo)
def inspect_job(
    job_id: str, request: Request, pipeline: str | None = None, block: bool = False
) -> JobInfo:
    return eng(request).jobs.inspect(job_id, pipeline, block)


@router.post("/jobs/{job_id}/stop", response_model=None)
def stop_job(job_id: str, request: Request, pipeline: str | None = None) -> None:
    eng(request).jobs.stop(job_id, pipeline)


@router.delete("/jobs/{job_id}", response_model=None)
def delete_job(job_id: str, request: Request, pipeline: str | None = None) -> None:
    eng(request).jobs.delete(job_id, pipeline)


@router.get(
    "/jobs/{job_id}/datums", response_model=list[DatumInfo], responses=_lines_doc("DatumInfo")
)
def list_datums(
    job_id: str,
    request: Request,
    pipeline: str | None = None,
    page_size: Count = 0,
    page: Count = 0,
) -> Any:
    jobs = eng(request).jobs
    if wants_lines(request):  # read page by page as it is sent (see tusk.server.ndjson)
        it = jobs.iter_datums(job_id, pipeline)
        if page_size:
            it = itertools.islice(it, page * page_size, (page + 1) * page_size)
        return models_response(it)
    datums = jobs.datums(job_id, pipeline)
    if page_size:  # 1.7's pages: ``page`` (from 0) of ``page_size`` datums
        return datums[page * page_size : (page + 1) * page_size]
    return datums


@router.post("/datums/preview", response_model=list[DatumInfo])
def preview_datums(body: DatumsOfSpec, request: Request) -> list[DatumInfo]:
    """The datums a pipeline with this spec's input would run now (2.x ``list datum -f``):
    nothing is stored or run."""
    spec = parse_specs(body.specs, body.source)[0].in_project(body.project).normalized()
    if spec.input is None:
        raise InvalidArgument(
            f"the pipeline spec in {body.source} has no input", hint="add an input to the spec"
        )
    return list(eng(request).jobs.input_datums(spec.input))


@router.post("/jobs/{job_id}/datums/restart", response_model=list[str])
def restart_datums(
    job_id: str, request: Request, data: str = "", pipeline: str | None = None
) -> list[str]:
    filters = [d for d in data.split(",") if d]
    return eng(request).jobs.restart_datums(job_id, filters, pipeline)


@router.get("/jobs/{job_id}/datums/{datum_id}", response_model=DatumInfo)
def inspect_datum(
    job_id: str, datum_id: str, request: Request, pipeline: str | None = None
) -> DatumInfo:
    return eng(request).jobs.datum(job_id, datum_id, pipeline)


@router.get("/logs", response_model=list[LogLine])
def get_logs(
    request: Request,
    pipeline: str | None = None,
    job: str | None = None,
    datum: str | None = None,
    master: bool = False,
    after: Count = 0,
    inputs: str | None = None,
    wait: Seconds = 0.0,
) -> list[LogLine]:
    if not pipeline and not job and not datum and not inputs and not master:
        return serverlog.lines(after, wait)  # 1.7: get-logs without a pipeline or job shows pachd's
    ins = [i for i in (inputs or "").split(",") if i]
    return eng(request).jobs.logs(pipeline, job, datum, master, after, ins or None, wait=wait)


@router.post("/flush/commits", response_model=list[CommitInfo])
def flush_commits(body: CommitRefs, request: Request) -> list[CommitInfo]:
    return eng(request).jobs.flush_commits(body.commits, body.repos)


@router.post("/flush/jobs", response_model=list[JobInfo])
def flush_jobs(body: CommitRefs, request: Request) -> list[JobInfo]:
    return eng(request).jobs.flush_jobs(body.commits, body.pipelines)


@router.get("/workers", response_model=list[WorkerInfo])
def list_workers(request: Request, pipeline: str | None = None) -> list[WorkerInfo]:
    return eng(request).jobs.workers(pipeline)
