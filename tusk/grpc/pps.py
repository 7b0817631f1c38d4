"""``pps_v2.API``: pipelines, jobs and job sets, datums, logs."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import betterproto
import grpc
from betterproto import Casing
from betterproto.lib.google.protobuf import Empty
from pachyderm_sdk.api import pfs, pps

from tusk.api.pps import DatumInfo, JobInfo, JobState, LogLine, PipelineInfo
from tusk.api.projects import qualify, split
from tusk.api.secrets import SecretInfo
from tusk.errors import InvalidArgument, InvalidSpec, NotFound
from tusk.grpc import convert as cv
from tusk.grpc.base import Service, Unimplemented
from tusk.pps.spec import PipelineSpec
from tusk.pps.spec.inputs import Input
from tusk.runtime import Engine

LOG_WAIT = 1.0  # seconds a followed log stream waits for new lines between checks
JOBS_WATCHED = 100  # newest jobs a SubscribeJob checks for changes after the first answer
EMPTY_DEFAULTS = '{"createPipelineRequest": {}}'
NO_DEFAULTS = (
    "cluster and project defaults are not supported by tusk: set the fields in each pipeline spec"
)
DATUM_BATCH = 100  # datums of a CreateDatum batch when the client asks for 0 (the server's pick)

PIPELINE_STATES = {
    "starting": pps.PipelineState.PIPELINE_STARTING,
    "running": pps.PipelineState.PIPELINE_RUNNING,
    "paused": pps.PipelineState.PIPELINE_PAUSED,
    "failure": pps.PipelineState.PIPELINE_FAILURE,
    "standby": pps.PipelineState.PIPELINE_STANDBY,
}
JOB_STATES = {
    "starting": pps.JobState.JOB_STARTING,
    "running": pps.JobState.JOB_RUNNING,
    "success": pps.JobState.JOB_SUCCESS,
    "failure": pps.JobState.JOB_FAILURE,
    "killed": pps.JobState.JOB_KILLED,
}
DATUM_STATES = {
    "pending": pps.DatumState.STARTING,
    "running": pps.DatumState.STARTING,
    "success": pps.DatumState.SUCCESS,
    "skipped": pps.DatumState.SKIPPED,
    "failed": pps.DatumState.FAILED,
}
# Request fields that are options of the call, not part of the pipeline's spec.
CALL_FIELDS = ("update", "reprocess", "dry_run")


def spec_of(req: pps.CreatePipelineRequest) -> PipelineSpec:
    """The tusk spec of a 2.x create request (its JSON form is 1.7's, with 2.x's projects)."""
    doc = req.to_dict(casing=Casing.SNAKE)
    for name in CALL_FIELDS:
        doc.pop(name, None)
    return PipelineSpec.from_dict(doc)


def pipeline_name(p: pps.Pipeline | None) -> str:
    """The stored key of the pipeline a Pachyderm ``Pipeline`` names."""
    if p is None or not p.name:
        raise InvalidArgument("a pipeline is required", hint="name the pipeline")
    return qualify(cv.project_name(p.project), p.name)


def pipeline_msg(key: str) -> pps.Pipeline:
    proj, name = split(key)
    return pps.Pipeline(name=name, project=cv.project(proj))


def _time(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


T = TypeVar("T")


def _in_projects(
    items: Iterable[T], projects: list[pfs.Project], key: Callable[[T], str]
) -> Iterator[T]:
    """The items whose pipeline or repo key belongs to one of ``projects`` (all when none)."""
    names = {cv.project_name(p) for p in projects}
    for item in items:
        if not names or split(key(item))[0] in names:
            yield item


def _pipe(job: JobInfo) -> str:
    return job.pipeline


def pipeline_info(info: PipelineInfo) -> pps.PipelineInfo:
    spec = dict(info.spec)
    details = pps.PipelineInfoDetails().from_dict(
        {k: v for k, v in spec.items() if k in ("transform", "input", "description", "salt")}
    )
    details.created_at = _time(info.created)
    details.parallelism_spec = None
    return pps.PipelineInfo(
        pipeline=pipeline_msg(info.name),
        version=info.version,
        spec_commit=cv.commit_msg(info.name, info.spec_commit) if info.spec_commit else None,
        stopped=info.stopped,
        state=PIPELINE_STATES.get(str(info.state), pps.PipelineState.PIPELINE_STATE_UNKNOWN),
        reason=info.reason,
        details=details,
        user_spec_json=json.dumps(spec),
        effective_spec_json=json.dumps(spec),
        type=pps.PipelineInfoPipelineType.PIPELINE_TYPE_TRANSFORM,
    )


def job_info(job: JobInfo) -> pps.JobInfo:
    out = job.output_commit
    return pps.JobInfo(
        job=pps.Job(pipeline=pipeline_msg(job.pipeline), id=job.id),
        pipeline_version=job.version,
        output_commit=cv.commit_msg(out.repo, out.id, "master") if out else None,
        restart=job.restarts,
        data_processed=job.processed,
        data_skipped=job.skipped,
        data_total=job.total,
        data_failed=job.failed,
        stats=pps.ProcessStats(
            download_time=timedelta(seconds=job.seconds_download),
            process_time=timedelta(seconds=job.seconds_process),
            upload_time=timedelta(seconds=job.seconds_upload),
            download_bytes=job.bytes_down,
            upload_bytes=job.bytes_up,
        ),
        state=JOB_STATES.get(str(job.state), pps.JobState.JOB_STATE_UNKNOWN),
        reason=job.reason,
        created=_time(job.created),
        started=_time(job.started),
        finished=_time(job.finished),
    )


def datum_info(d: DatumInfo) -> pps.DatumInfo:
    return pps.DatumInfo(
        datum=pps.Datum(job=pps.Job(pipeline=pipeline_msg(d.pipeline), id=d.job_id), id=d.id),
        state=DATUM_STATES.get(str(d.state), pps.DatumState.UNKNOWN),
        stats=pps.ProcessStats(
            process_time=timedelta(seconds=d.seconds),
            download_bytes=d.bytes_down,
            upload_bytes=d.bytes_up,
        ),
        data=[cv.file_info_of(i.repo, i.commit, i.path, i.size, i.hash) for i in d.inputs],
    )


def preview_info(d: DatumInfo) -> pps.DatumInfo:
    """A datum of an input spec (no job yet), as pachd lists one: its id and input files."""
    return pps.DatumInfo(
        datum=pps.Datum(id=d.id),
        state=pps.DatumState.UNKNOWN,
        data=[cv.file_info_of(i.repo, i.commit, i.path, i.size, i.hash) for i in d.inputs],
    )


def input_of(msg: pps.Input) -> Input:
    """The tusk input tree of a 2.x ``Input`` (validated as a pipeline's input is)."""
    doc = {
        "pipeline": {"name": "datums"},
        "transform": {"cmd": ["true"]},
        "input": msg.to_dict(casing=Casing.SNAKE),
    }
    spec = PipelineSpec.from_dict(doc).normalized()
    assert spec.input is not None
    return spec.input


def _datum_page(
    infos: Iterator[pps.DatumInfo], marker: str, number: int, reverse: bool
) -> Iterator[pps.DatumInfo]:
    """ListDatum's paging: the datums after the one whose id is ``marker``, at most
    ``number`` (0: all), in reverse order with ``reverse``."""
    if reverse:
        infos = iter(list(infos)[::-1])
    if marker:
        infos = itertools.dropwhile(lambda i: i.datum.id != marker, infos)
        next(infos, None)  # the marker itself was on the page before
    yield from itertools.islice(infos, number or None)


def log_message(line: LogLine) -> pps.LogMessage:
    return pps.LogMessage(
        project_name=split(line.pipeline)[0],
        pipeline_name=split(line.pipeline)[1],
        job_id=line.job_id,
        worker_id=line.worker,
        datum_id=line.datum_id,
        master=line.master,
        user=line.user,
        ts=_time(line.ts),
        message=line.message,
    )


# UpdateJobState's states tusk takes: the ones that end a job without its output
ENDED_STATES = {
    pps.JobState.JOB_FAILURE: JobState.FAILURE,
    pps.JobState.JOB_KILLED: JobState.KILLED,
    pps.JobState.JOB_UNRUNNABLE: JobState.FAILURE,
}


def _job_ref(job: pps.Job | None) -> tuple[str, str | None]:
    if job is None or not job.id:
        raise InvalidArgument("a job id is required", hint="e.g. edges@<job id>")
    pipeline = pipeline_name(job.pipeline) if job.pipeline and job.pipeline.name else None
    return job.id, pipeline


def build(engine: Engine, token: str | None) -> list[Service]:
    svc = Service("pps_v2.API", token)
    e = engine

    # -- pipelines --------------------------------------------------------------------------
    @svc.unary("CreatePipeline", pps.CreatePipelineRequest)
    def create_pipeline(req: pps.CreatePipelineRequest, _ctx: Any) -> Empty:
        if req.dry_run:
            spec_of(req)
            return Empty()
        e.pipelines.create(spec_of(req), update=req.update, reprocess=req.reprocess)
        return Empty()

    @svc.unary("CreatePipelineV2", pps.CreatePipelineV2Request)
    def create_pipeline_v2(req: pps.CreatePipelineV2Request, _ctx: Any) -> Any:
        try:
            doc = json.loads(req.create_pipeline_request_json)
            parsed = pps.CreatePipelineRequest().from_dict(doc)
        except (ValueError, TypeError, KeyError) as exc:
            raise InvalidSpec(f"invalid pipeline spec JSON: {exc}") from None
        parsed.update = parsed.update or req.update
        parsed.reprocess = parsed.reprocess or req.reprocess
        spec = spec_of(parsed)
        if not req.dry_run:
            e.pipelines.create(spec, update=parsed.update, reprocess=parsed.reprocess)
        return pps.CreatePipelineV2Response(effective_create_pipeline_request_json=json.dumps(doc))

    @svc.unary("InspectPipeline", pps.InspectPipelineRequest)
    def inspect_pipeline(req: pps.InspectPipelineRequest, _ctx: Any) -> pps.PipelineInfo:
        return pipeline_info(e.pipelines.inspect(pipeline_name(req.pipeline)))

    @svc.stream("ListPipeline", pps.ListPipelineRequest)
    def list_pipeline(req: pps.ListPipelineRequest, _ctx: Any) -> Iterator[pps.PipelineInfo]:
        if req.pipeline and req.pipeline.name:
            yield pipeline_info(e.pipelines.inspect(pipeline_name(req.pipeline)))
            return
        for info in _in_projects(e.pipelines.list(), req.projects, lambda i: i.name):
            yield pipeline_info(info)

    @svc.unary("DeletePipeline", pps.DeletePipelineRequest)
    def delete_pipeline(req: pps.DeletePipelineRequest, _ctx: Any) -> Empty:
        if req.keep_repo:
            raise Unimplemented("keep_repo is not supported by tusk")
        if req.all:
            proj = req.pipeline.project if req.pipeline else None
            e.pipelines.delete(None, all=True, force=req.force, project=cv.project_name(proj))
        else:
            try:
                e.pipelines.delete(pipeline_name(req.pipeline), force=req.force)
            except NotFound:
                if req.must_exist:
                    raise
        return Empty()

    @svc.unary("DeletePipelines", pps.DeletePipelinesRequest)
    def delete_pipelines(req: pps.DeletePipelinesRequest, _ctx: Any) -> Any:
        names: list[str] = []
        if req.all or not req.projects:  # no project named: all (as pre-project clients mean)
            names = e.pipelines.delete(None, all=True, force=req.force)
        for p in req.projects if not req.all else []:
            names += e.pipelines.delete(None, all=True, force=req.force, project=cv.project_name(p))
        return pps.DeletePipelinesResponse(pipelines=[pipeline_msg(n) for n in names])

    @svc.unary("StartPipeline", pps.StartPipelineRequest)
    def start_pipeline(req: pps.StartPipelineRequest, _ctx: Any) -> Empty:
        e.pipelines.set_stopped(pipeline_name(req.pipeline), False)
        return Empty()

    @svc.unary("StopPipeline", pps.StopPipelineRequest)
    def stop_pipeline(req: pps.StopPipelineRequest, _ctx: Any) -> Empty:
        e.pipelines.set_stopped(pipeline_name(req.pipeline), True)
        return Empty()

    @svc.unary("RunCron", pps.RunCronRequest)
    def run_cron(req: pps.RunCronRequest, _ctx: Any) -> Empty:
        name = pipeline_name(req.pipeline)
        if e.cron.run_now(name, datetime.now(UTC)) == 0:
            raise InvalidArgument(f"pipeline {name} has no cron input")
        return Empty()

    @svc.unary("RerunPipeline", pps.RerunPipelineRequest)
    def rerun_pipeline(req: pps.RerunPipelineRequest, _ctx: Any) -> Empty:
        # a new version with the same spec: a new job over the current inputs, which skips the
        # datums already processed unless ``reprocess`` asks for them all
        name = pipeline_name(req.pipeline)
        spec = PipelineSpec.from_dict(e.pipelines.inspect(name).spec)
        e.pipelines.create(spec, update=True, reprocess=req.reprocess)
        return Empty()

    @svc.unary("PipelinesSummary", pps.PipelinesSummaryRequest)
    def pipelines_summary(req: pps.PipelinesSummaryRequest, _ctx: Any) -> Any:
        wanted = [p.name for p in req.projects if p.name] or [p.name for p in e.projects.list()]
        out = []
        for project in wanted:
            infos = e.pipelines.list(project=project)
            failed = sum(1 for i in infos if str(i.state) == "failure")
            paused = sum(1 for i in infos if i.stopped)
            out.append(
                pps.PipelinesSummary(
                    project=cv.project(project),
                    active_pipelines=len(infos) - paused - failed,
                    paused_pipelines=paused,
                    failed_pipelines=failed,
                    unhealthy_pipelines=failed,
                )
            )
        return pps.PipelinesSummaryResponse(summaries=out)

    @svc.unary("GetClusterDefaults", pps.GetClusterDefaultsRequest)
    def get_cluster_defaults(_req: pps.GetClusterDefaultsRequest, _ctx: Any) -> Any:
        # tusk has no cluster-wide spec defaults: every field's default is the spec's own
        return pps.GetClusterDefaultsResponse(cluster_defaults_json=EMPTY_DEFAULTS)

    @svc.unary("GetProjectDefaults", pps.GetProjectDefaultsRequest)
    def get_project_defaults(req: pps.GetProjectDefaultsRequest, _ctx: Any) -> Any:
        e.projects.inspect(cv.project_name(req.project))
        return pps.GetProjectDefaultsResponse(project_defaults_json=EMPTY_DEFAULTS)

    @svc.unary("SetClusterDefaults", pps.SetClusterDefaultsRequest)
    def set_cluster_defaults(_req: pps.SetClusterDefaultsRequest, _ctx: Any) -> Any:
        raise Unimplemented(NO_DEFAULTS)

    @svc.unary("SetProjectDefaults", pps.SetProjectDefaultsRequest)
    def set_project_defaults(_req: pps.SetProjectDefaultsRequest, _ctx: Any) -> Any:
        raise Unimplemented(NO_DEFAULTS)

    # -- jobs and job sets ------------------------------------------------------------------
    @svc.unary("InspectJob", pps.InspectJobRequest)
    def inspect_job(req: pps.InspectJobRequest, _ctx: Any) -> pps.JobInfo:
        job_id, pipeline = _job_ref(req.job)
        return job_info(e.jobs.inspect(job_id, pipeline, req.wait))

    @svc.stream("ListJob", pps.ListJobRequest)
    def list_job(req: pps.ListJobRequest, _ctx: Any) -> Iterator[pps.JobInfo]:
        pipeline = pipeline_name(req.pipeline) if req.pipeline and req.pipeline.name else None
        inputs = [cv.commit_ref(c) for c in req.input_commit] or None
        for job in _in_projects(e.jobs.list(pipeline, inputs, None), req.projects, _pipe):
            yield job_info(job)

    @svc.stream("SubscribeJob", pps.SubscribeJobRequest)
    def subscribe_job(req: pps.SubscribeJobRequest, ctx: Any) -> Iterator[pps.JobInfo]:
        # each job of the pipeline as it is now, oldest first, then again at every change of
        # its state, until the client goes away
        name = pipeline_name(req.pipeline)
        e.pipelines.inspect(name)
        seen: dict[str, str] = {}
        version = e.ctx.feed.version
        limit = 0  # every job at first; then only the newest can have changed
        while ctx.is_active():
            for job in reversed(e.jobs.list(name, None, None, limit=limit)):
                if seen.get(job.id) != str(job.state):
                    seen[job.id] = str(job.state)
                    yield job_info(job)
            limit = JOBS_WATCHED
            version = e.ctx.feed.wait(version, LOG_WAIT)

    def job_set(set_id: str) -> list[JobInfo]:
        return [j for j in e.jobs.list(None, None, None) if j.id == set_id]

    @svc.stream("InspectJobSet", pps.InspectJobSetRequest)
    def inspect_job_set(req: pps.InspectJobSetRequest, _ctx: Any) -> Iterator[pps.JobInfo]:
        set_id = req.job_set.id if req.job_set else ""
        if not set_id:
            raise InvalidArgument("a job set id is required")
        jobs = job_set(set_id)
        if req.wait:
            jobs = [e.jobs.inspect(j.id, j.pipeline, True) for j in jobs]
        for job in jobs:
            yield job_info(job)

    @svc.stream("ListJobSet", pps.ListJobSetRequest)
    def list_job_set(req: pps.ListJobSetRequest, _ctx: Any) -> Iterator[pps.JobSetInfo]:
        sets: dict[str, list[JobInfo]] = {}
        for job in _in_projects(e.jobs.list(None, None, None), req.projects, _pipe):
            sets.setdefault(job.id, []).append(job)
        for set_id, jobs in sets.items():
            yield pps.JobSetInfo(job_set=pps.JobSet(id=set_id), jobs=[job_info(j) for j in jobs])

    @svc.unary("StopJob", pps.StopJobRequest)
    def stop_job(req: pps.StopJobRequest, _ctx: Any) -> Empty:
        e.jobs.stop(*_job_ref(req.job))
        return Empty()

    @svc.unary("UpdateJobState", pps.UpdateJobStateRequest)
    def update_job_state(req: pps.UpdateJobStateRequest, _ctx: Any) -> Empty:
        state = ENDED_STATES.get(req.state)
        if state is None:
            raise InvalidArgument(
                f"tusk takes UpdateJobState only to end a job (JOB_FAILURE or JOB_KILLED), "
                f"not to {pps.JobState(req.state).name}",
                hint="tusk's job runner sets the other states itself (its workers report to "
                "tuskd directly)",
            )
        e.jobs.end(*_job_ref(req.job), state, req.reason)
        return Empty()

    @svc.unary("DeleteJob", pps.DeleteJobRequest)
    def delete_job(req: pps.DeleteJobRequest, _ctx: Any) -> Empty:
        e.jobs.delete(*_job_ref(req.job))
        return Empty()

    # -- datums -----------------------------------------------------------------------------
    @svc.stream("ListDatum", pps.ListDatumRequest)
    def list_datum(req: pps.ListDatumRequest, _ctx: Any) -> Iterator[pps.DatumInfo]:
        if req.input and not req.job:
            infos = map(preview_info, e.jobs.input_datums(input_of(req.input)))
            yield from _datum_page(infos, req.pagination_marker, req.number, req.reverse)
            return
        job_id, pipeline = _job_ref(req.job)
        for d in e.jobs.datums(job_id, pipeline):
            yield datum_info(d)

    @svc.bidi("CreateDatum", pps.CreateDatumRequest)
    def create_datum(reqs: Iterator[pps.CreateDatumRequest], _ctx: Any) -> Iterator[Any]:
        # the SDK's generate_datums: a start with the input and a batch size, then a continue
        # (with the next batch size) for each further batch; the stream ends with the datums
        first = next(reqs, None)
        if first is None or betterproto.which_one_of(first, "body")[0] != "start":
            raise InvalidArgument("the first CreateDatum request must be a start request")
        datums = map(preview_info, e.jobs.input_datums(input_of(first.start.input)))
        number = first.start.number or DATUM_BATCH
        while True:
            sent = 0
            for info in itertools.islice(datums, number):
                sent += 1
                yield info
            if sent < number:
                return
            more = next(reqs, None)
            if more is None:
                return
            number = (more.continue_.number if more.continue_ else 0) or number

    @svc.unary("InspectDatum", pps.InspectDatumRequest)
    def inspect_datum(req: pps.InspectDatumRequest, _ctx: Any) -> pps.DatumInfo:
        if not req.datum or not req.datum.id:
            raise InvalidArgument("a datum id is required")
        job_id, pipeline = _job_ref(req.datum.job)
        return datum_info(e.jobs.datum(job_id, req.datum.id, pipeline))

    @svc.unary("RestartDatum", pps.RestartDatumRequest)
    def restart_datum(req: pps.RestartDatumRequest, _ctx: Any) -> Empty:
        job_id, pipeline = _job_ref(req.job)
        e.jobs.restart_datums(job_id, list(req.data_filters), pipeline)
        return Empty()

    # -- secrets (their values never leave the server) --------------------------------------
    def secret_info(info: SecretInfo) -> pps.SecretInfo:
        return pps.SecretInfo(
            secret=pps.Secret(name=info.name),
            type=info.type,
            creation_timestamp=_time(info.created),
        )

    def secret_name(secret: pps.Secret | None) -> str:
        if secret is None or not secret.name:
            raise InvalidArgument("a secret name is required", hint="e.g. Secret(name='db-creds')")
        return secret.name

    @svc.unary("CreateSecret", pps.CreateSecretRequest)
    def create_secret(req: pps.CreateSecretRequest, _ctx: Any) -> Empty:
        try:
            manifest = req.file.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidArgument(
                "the secret manifest is not UTF-8 text",
                hint="send a Kubernetes Secret manifest (JSON or YAML) as the file",
            ) from None
        e.secrets.create(manifest, source="CreateSecret")
        return Empty()

    @svc.unary("InspectSecret", pps.InspectSecretRequest)
    def inspect_secret(req: pps.InspectSecretRequest, _ctx: Any) -> pps.SecretInfo:
        return secret_info(e.secrets.inspect(secret_name(req.secret)))

    @svc.unary("ListSecret", Empty)
    def list_secret(_req: Empty, _ctx: Any) -> pps.SecretInfos:
        return pps.SecretInfos(secret_info=[secret_info(i) for i in e.secrets.list()])

    @svc.unary("DeleteSecret", pps.DeleteSecretRequest)
    def delete_secret(req: pps.DeleteSecretRequest, _ctx: Any) -> Empty:
        e.secrets.delete(secret_name(req.secret))
        return Empty()

    # -- logs -------------------------------------------------------------------------------
    @svc.stream("GetLogs", pps.GetLogsRequest)
    def get_logs(req: pps.GetLogsRequest, ctx: grpc.ServicerContext) -> Iterator[Any]:
        pipeline = pipeline_name(req.pipeline) if req.pipeline and req.pipeline.name else None
        job_id = None
        if req.job and req.job.id:
            job_id, job_pipeline = _job_ref(req.job)
            pipeline = pipeline or job_pipeline
        datum_id = req.datum.id if req.datum and req.datum.id else None
        stop = threading.Event()
        ctx.add_callback(stop.set)
        after = 0
        lines = e.jobs.logs(pipeline, job_id, datum_id, req.master, 0, req.data_filters or None)
        if req.tail > 0:
            lines = lines[-req.tail :]
        while True:
            for line in lines:
                after = max(after, line.pk)
                yield log_message(line)
            if not req.follow or stop.is_set():
                return
            lines = e.jobs.logs(
                pipeline,
                job_id,
                datum_id,
                req.master,
                after,
                req.data_filters or None,
                wait=LOG_WAIT,
            )

    # -- the rest ---------------------------------------------------------------------------
    @svc.unary("DeleteAll", Empty)
    def delete_all(_req: Empty, _ctx: Any) -> Empty:
        e.pipelines.delete(None, all=True, force=True)
        return Empty()

    return [svc]
