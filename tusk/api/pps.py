"""PPS wire models: pipelines, jobs, datums, logs and workers as tuskd sends them, and the request
bodies it takes. The states are ``str`` enums holding Pachyderm 1.7's spellings, so they travel
(and are stored) as those strings."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field, RootModel

from tusk.api.models import CommitKey, Wire


class JobState(StrEnum):
    """Where a job is: 1.7's ``JOB_*`` states, lower-case as list-job prints them."""

    STARTING = "starting"
    RUNNING = "running"
    EGRESS = "egress"  # 2.x JOB_EGRESSING: the output commit is finished and being copied out
    SUCCESS = "success"
    FAILURE = "failure"
    KILLED = "killed"

    @property
    def terminal(self) -> bool:
        """True once the job has ended (it never runs again)."""
        return self in TERMINAL_JOB_STATES


TERMINAL_JOB_STATES = frozenset({JobState.SUCCESS, JobState.FAILURE, JobState.KILLED})


class DatumState(StrEnum):
    """Where one datum of a job is; ``failed`` only after its last try."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    SKIPPED = "skipped"
    FAILED = "failed"
    RECOVERED = "recovered"  # 2.x: cmd failed, err_cmd exited 0; no output, the job goes on

    @property
    def done(self) -> bool:
        """True when the datum's output is there (processed now or reused from earlier)."""
        return self in (DatumState.SUCCESS, DatumState.SKIPPED)

    @property
    def settled(self) -> bool:
        """True when the datum needs no more tries: its output is there, or it was recovered."""
        return self.done or self is DatumState.RECOVERED


class PipelineState(StrEnum):
    """A pipeline's state as inspect-pipeline shows it (``failure``: its last job failed)."""

    RUNNING = "running"
    PAUSED = "paused"
    FAILURE = "failure"
    STANDBY = "standby"  # standby (or scale_down_threshold): no job to run, workers stopped


# -- pipelines --------------------------------------------------------------------------------------
class PipelineInfo(Wire):
    """One pipeline: its current spec version, state and how many jobs are in each state."""

    name: str
    version: int
    spec: dict[str, Any]
    salt: str
    spec_commit: str
    state: PipelineState
    stopped: bool = False
    reason: str = ""
    created: float
    job_counts: dict[str, int] = Field(default_factory=dict)
    input_summary: str = ""  # the INPUT column of list-pipeline
    datum_timeout_seconds: float | None = None
    job_timeout_seconds: float | None = None
    # spec fields this server accepts but cannot honour, one line each (create-pipeline said so)
    warnings: list[str] = Field(default_factory=list)
    service_url: str = ""  # where a service pipeline answers (http://host:external_port)


class PipelineCreated(PipelineInfo):
    """The result of create/update-pipeline: the pipeline, plus warnings for the user (the
    spec's own warnings and those about this create: the image, the parallelism, kept results)."""


class PipelineSpecDoc(RootModel[dict[str, Any]]):
    """A pipeline spec document as the user wrote it (extract-pipeline), with its salt."""


class CreatePipelines(Wire):
    """Body of ``POST /pipelines``: one or more specs (JSON or YAML text)."""

    specs: str
    source: str = "spec"
    update: bool = False
    reprocess: bool = False
    # the project of the specs that name none (``pipeline.project``); None: ``default``
    project: str | None = None


class DatumsOfSpec(Wire):
    """Body of ``POST /datums/preview``: a pipeline spec (JSON or YAML text; the first spec of
    the text is taken) whose input's datums are wanted, as they would run now."""

    specs: str
    source: str = "spec"
    project: str | None = None  # the project of a spec that names none; None: ``default``


class CommitRefs(Wire):
    """Body of the flush calls: ``(repo, commit or branch)`` pairs and optional filters."""

    commits: list[tuple[str, str]]
    repos: list[str] | None = None
    pipelines: list[str] | None = None


# -- jobs -------------------------------------------------------------------------------------------
class JobInput(Wire):
    """One input commit of a job (its provenance), with the branch it was taken from."""

    repo: str
    id: str
    branch: str | None = None


class JobInfo(Wire):
    """One job: the run of one pipeline version over one set of input commits."""

    pipeline: str
    id: str
    version: int
    spec_commit: str
    state: JobState
    created: float
    started: float | None = None
    finished: float | None = None
    processed: int = 0
    skipped: int = 0
    failed: int = 0
    total: int = 0
    bytes_down: int = 0
    bytes_up: int = 0
    seconds_download: float = 0.0
    seconds_process: float = 0.0
    seconds_upload: float = 0.0
    restarts: int = 0
    reason: str = ""
    recovered: int = 0  # datums whose err_cmd recovered them (2.x)
    image: str = ""  # the image reference the job ran
    image_digest: str = ""  # its digest when the job started ("" in host mode)
    runtime: str = ""  # bwrap, podman, docker, or host (unsandboxed, chosen by the operator)
    output_commit: CommitKey | None = None
    inputs: list[JobInput] = Field(default_factory=list)
    spec: dict[str, Any] | None = None  # inspect-job only
    duration_seconds: float | None = None
    datum_timeout_seconds: float | None = None
    job_timeout_seconds: float | None = None


# -- datums, logs, workers --------------------------------------------------------------------------
class DatumInputInfo(Wire):
    """One input's part of a datum: the matched path in one input commit."""

    name: str
    repo: str
    branch: str
    commit: str
    path: str
    hash: str
    size: int


class DatumInfo(Wire):
    """One datum of a job: its inputs, state, tries and what it moved."""

    id: str
    state: DatumState
    tries: int = 0
    reason: str = ""
    inputs: list[DatumInputInfo] = Field(default_factory=list)
    bytes_down: int = 0
    bytes_up: int = 0
    seconds: float = 0.0  # processing (user code) time of its last try
    worker: str = ""
    job_id: str
    pipeline: str
    seconds_download: float = 0.0
    seconds_upload: float = 0.0
    stats_commit: str = ""  # with enable_stats: the job's commit on the output repo's stats branch


class LogLine(Wire):
    """One stored log line (user code's stdout/stderr, or the job master's notes)."""

    pk: int
    pipeline: str
    job_id: str = ""
    datum_id: str = ""
    worker: str = ""
    ts: float
    stream: str = "stdout"
    user: bool = True
    master: bool = False
    message: str


class WorkerInfo(Wire):
    """One worker of a pipeline version (``list-worker``)."""

    name: str
    pipeline: str
    version: int
    state: str
    restarts: int = 0
    started: float
    age_seconds: float = 0.0  # at the time of the answer (list-worker's AGE)


# -- lineage and waves ------------------------------------------------------------------------------
class LineageInput(Wire):
    """One input file a datum read, at the commit it read it from."""

    repo: str
    commit: str
    path: str


class LineageDatum(Wire):
    """A datum that wrote an output file: the job that processed it (an earlier job of the
    pipeline when the output commit's job reused its stored output) and its state there."""

    datum_id: str
    job_id: str
    state: DatumState
    inputs: list[LineageInput] = Field(default_factory=list)


class FileLineage(Wire):
    """``GET /lineage``: the datums (and their input files) that produced one file of a commit.
    ``pipeline`` and ``job_id`` are None, and ``datums`` empty, for a file no pipeline wrote."""

    repo: str
    commit: str  # the commit's id (the request may name a branch)
    path: str
    pipeline: str | None = None
    job_id: str | None = None
    datums: list[LineageDatum] = Field(default_factory=list)


class WaveCommit(Wire):
    """One commit of a wave."""

    repo: str
    id: str
    branch: str | None = None
    origin: str = "user"  # user | auto (a pipeline's output) | spec
    finished: float | None = None
    failed: bool = False


class WaveJob(Wire):
    """One job of a wave: the pipeline, the spec version it ran and where it is."""

    pipeline: str
    job_id: str
    state: JobState
    spec_version: int
    spec_commit: str
    reason: str = ""


class WavePipeline(Wire):
    """The spec version of one pipeline in a wave (the one its job ran)."""

    pipeline: str
    spec_version: int
    spec_commit: str


class CommitWave(Wire):
    """``GET /commitsets/{id}/wave``: everything that made the commits of one global ID: those
    commits and every commit up their provenance chain, the jobs that wrote the pipeline output
    commits among them, and each such pipeline's spec version."""

    id: str
    commits: list[WaveCommit] = Field(default_factory=list)
    jobs: list[WaveJob] = Field(default_factory=list)
    pipelines: list[WavePipeline] = Field(default_factory=list)
