"""Typed PPS records and filters: what the metadata store keeps about pipelines, jobs, datums,
their stored outputs and log lines (one record per table row)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tusk.api.pps import DatumState, JobState, PipelineState


@dataclass(frozen=True, slots=True)
class PipelineRecord:
    """A pipeline: its current version, salt, spec and whether it is stopped."""

    name: str
    version: int
    salt: str
    spec: str  # the normalized spec, JSON
    spec_commit: str
    state: PipelineState
    created: float
    updated: float
    reason: str = ""
    stopped: bool = False


@dataclass(frozen=True, slots=True)
class JobCounters:
    """What a job's master adds up while it runs."""

    processed: int = 0
    failed: int = 0
    bytes_down: int = 0
    bytes_up: int = 0
    seconds_download: float = 0.0
    seconds_process: float = 0.0
    seconds_upload: float = 0.0
    recovered: int = 0


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job: one run of a pipeline version over one set of input commits."""

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
    recovered: int = 0
    image: str = ""
    image_digest: str = ""
    runtime: str = ""
    output_disjoint: bool | None = None
    pk: int = 0

    @property
    def counters(self) -> JobCounters:
        return JobCounters(
            self.processed,
            self.failed,
            self.bytes_down,
            self.bytes_up,
            self.seconds_download,
            self.seconds_process,
            self.seconds_upload,
            self.recovered,
        )


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs ``list_jobs`` returns; None means any."""

    pipeline: str | None = None
    id: str | None = None
    states: Sequence[JobState] | None = None
    unfinished: bool = False
    newest_first: bool = True
    limit: int = 0
    after_pk: int | None = None  # only jobs past this one in the listing's order (next page)


@dataclass(frozen=True, slots=True)
class DatumRecord:
    """One datum of a job, by its index in the job's datum order."""

    pipeline: str
    job_id: str
    idx: int
    datum_id: str
    hash: str
    state: DatumState
    inputs: str = "[]"  # JSON list of the datum's inputs ("" when read with brief=True)
    tries: int = 0
    reason: str = ""
    bytes_down: int = 0
    bytes_up: int = 0
    seconds: float = 0.0  # processing (user code) time
    worker: str = ""
    seconds_download: float = 0.0
    seconds_upload: float = 0.0


@dataclass(frozen=True, slots=True)
class DatumOutcome:
    """One try of a datum, as ``record_results`` stores it."""

    idx: int
    state: DatumState
    tries: int
    reason: str
    bytes_down: int
    bytes_up: int
    seconds: float
    worker: str
    seconds_download: float = 0.0
    seconds_upload: float = 0.0


@dataclass(frozen=True, slots=True)
class CachedDatum:
    """A processed datum's output manifest, reused by any later job with the same datum hash."""

    pipeline: str
    hash: str
    manifest: str
    bytes_up: int
    job_id: str
    paths: tuple[str, ...] = ()  # the files it wrote (the datum_files index; not a column)


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One stored log line of user code or of a job's master."""

    pipeline: str
    ts: float
    message: str
    job_id: str = ""
    datum_id: str = ""
    worker: str = ""
    stream: str = "stdout"
    user: bool = True
    master: bool = False
    pk: int = 0


@dataclass(frozen=True, slots=True)
class DatumLines:
    """The log lines of one try of a datum, ``(ts, stream, line)`` in order, as its worker sent
    them (stream ``system`` for the worker's own lines, else user code's): stored as
    :class:`LogRecord` lines of the job, without a record made for each line."""

    datum_id: str
    worker: str
    lines: Sequence[tuple[float, str, str]]


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Which log lines ``list_logs`` returns: after ``after`` (a pk), oldest first."""

    master: bool = False
    pipeline: str | None = None
    job_id: str | None = None
    datum_prefix: str | None = None
    datum_ids: tuple[str, ...] = ()  # only the lines of these datums (if any are given)
    after: int = 0
    limit: int = 0  # at most this many lines (0: all)


@dataclass(frozen=True, slots=True)
class SecretRecord:
    """A secret as the metadata store knows it: its name, type and key names (no values)."""

    name: str
    type: str
    created: float
    keys: tuple[str, ...] = ()
