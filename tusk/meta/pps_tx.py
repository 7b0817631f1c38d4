"""The PPS half of a metadata transaction: pipelines, jobs, datums, stored datum outputs and
logs, as the typed records of :mod:`tusk.meta.pps_records` (the PFS half is in
:mod:`tusk.meta.store`)."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import fields
from enum import StrEnum
from typing import Any, TypeVar

import orjson
from sqlalchemy import Connection, and_, case, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from tusk.api.pps import TERMINAL_JOB_STATES, DatumState, JobState, PipelineState
from tusk.errors import AlreadyExists
from tusk.meta import schema as s
from tusk.meta.pps_records import (
    CachedDatum,
    DatumLines,
    DatumOutcome,
    DatumRecord,
    JobCounters,
    JobFilter,
    JobRecord,
    LogFilter,
    LogRecord,
    PipelineRecord,
    SecretRecord,
)

# A log row holds up to this many lines; a line's pk is its row's times this plus its place.
LINES_PER_ROW = 64
ROW_CHARS = 64 << 10  # and lines of about this much text at most (a longer line: a row alone)
_BATCH = 500  # values per IN (...) query: below every dialect's parameter limit
_SETTLED = [str(x) for x in DatumState if x.settled]  # states that need no more tries
T = TypeVar("T")
K = TypeVar("K")  # what the lines of one log row share


def _record(cls: type[T], mapping: Any, state: type[StrEnum] | None = None) -> T:
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    data = {k: v for k, v in dict(mapping).items() if k in names}
    if state is not None:
        data["state"] = state(data["state"])
    return cls(**data)


def _pipeline(mapping: Any) -> PipelineRecord:
    return _record(PipelineRecord, mapping, PipelineState)


def _job(mapping: Any) -> JobRecord:
    return _record(JobRecord, mapping, JobState)


def _datum(mapping: Any) -> DatumRecord:
    return _record(DatumRecord, mapping, DatumState)


def _plain(value: Any) -> Any:
    """Enums as the plain strings the database drivers expect."""
    return str(value) if isinstance(value, StrEnum) else value


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def _values(record: Any, *skip: str) -> dict[str, Any]:
    """A flat record's fields as column values. Not ``dataclasses.asdict``: that deep-copies
    every value, and the job master turns several records a datum into rows (log lines)."""
    return {k: _plain(getattr(record, k)) for k in _field_names(type(record)) if k not in skip}


def _batches(values: Iterable[T]) -> Iterable[list[T]]:
    distinct = list(dict.fromkeys(values))
    for i in range(0, len(distinct), _BATCH):
        yield distinct[i : i + _BATCH]


class PpsTx:
    """Pipelines, jobs, datums and logs, read and written inside one transaction."""

    c: Connection

    def _many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """Run ``sql`` (``?`` placeholders) once per row through the database driver itself:
        for the rows the job master writes per datum, SQLAlchemy's handling of each parameter
        set costs more than the database does."""
        if self.c.dialect.paramstyle != "qmark":
            sql = sql.replace("?", "%s")
        self.c.exec_driver_sql(sql, rows)

    def _insert_new(
        self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
    ) -> None:
        """Insert rows, skipping those whose key exists (SQLite and PostgreSQL both say it
        ``ON CONFLICT DO NOTHING``), through the driver as :meth:`_many` does."""
        if rows:
            marks = ", ".join("?" * len(columns))
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) ON CONFLICT DO NOTHING"
            self._many(sql, rows)

    # -- pipelines ---------------------------------------------------------------------------
    def insert_pipeline(self, record: PipelineRecord) -> None:
        """Add a pipeline; AlreadyExists if one has that name."""
        try:
            with self.c.begin_nested():
                self.c.execute(s.pipelines.insert().values(**_values(record)))
        except IntegrityError:
            raise AlreadyExists(f"pipeline {record.name} already exists") from None

    def get_pipeline(self, name: str) -> PipelineRecord | None:
        """The pipeline of that name, if any."""
        p = s.pipelines
        r = self.c.execute(select(p).where(p.c.name == name)).mappings().first()
        return _pipeline(r) if r else None

    def list_pipelines(self) -> list[PipelineRecord]:
        """Every pipeline, newest first."""
        q = select(s.pipelines).order_by(s.pipelines.c.created.desc())
        return [_pipeline(r) for r in self.c.execute(q).mappings()]

    def update_pipeline(
        self,
        name: str,
        *,
        version: int | None = None,
        salt: str | None = None,
        spec: str | None = None,
        spec_commit: str | None = None,
        state: PipelineState | None = None,
        stopped: bool | None = None,
        updated: float | None = None,
    ) -> bool:
        """Change the given fields of a pipeline (None: unchanged); False if there is none."""
        changes = {
            k: v
            for k, v in {
                "version": version,
                "salt": salt,
                "spec": spec,
                "spec_commit": spec_commit,
                "state": state,
                "stopped": stopped,
                "updated": updated,
            }.items()
            if v is not None
        }
        p = s.pipelines
        changes = {k: _plain(v) for k, v in changes.items()}
        return bool(self.c.execute(update(p).where(p.c.name == name).values(**changes)).rowcount)

    def delete_pipeline(self, name: str) -> None:
        """The pipeline with its jobs, datums and stored datum outputs (its logs stay)."""
        self.c.execute(delete(s.jobs).where(s.jobs.c.pipeline == name))
        self.c.execute(delete(s.job_datums).where(s.job_datums.c.pipeline == name))
        self.c.execute(delete(s.datum_cache).where(s.datum_cache.c.pipeline == name))
        self.c.execute(delete(s.datum_files).where(s.datum_files.c.pipeline == name))
        self.c.execute(delete(s.pipelines).where(s.pipelines.c.name == name))

    # -- jobs --------------------------------------------------------------------------------
    def insert_job(self, record: JobRecord) -> JobRecord:
        """Add a job; return it with its creation-order key."""
        try:
            with self.c.begin_nested():
                key = self.c.execute(
                    s.jobs.insert().values(**_values(record, "pk"))
                ).inserted_primary_key
        except IntegrityError:
            raise AlreadyExists(f"job {record.id} of pipeline {record.pipeline} exists") from None
        return _job({**_values(record), "pk": int(key[0]) if key else 0})

    def get_job(self, pipeline: str, job_id: str) -> JobRecord | None:
        """One job of a pipeline, if it exists."""
        j = s.jobs
        q = select(j).where(and_(j.c.pipeline == pipeline, j.c.id == job_id))
        r = self.c.execute(q).mappings().first()
        return _job(r) if r else None

    def list_jobs(self, where: JobFilter | None = None) -> list[JobRecord]:
        """Jobs in creation order (newest first unless the filter says otherwise)."""
        f = where or JobFilter()
        j = s.jobs
        q = select(j).order_by(j.c.pk.desc() if f.newest_first else j.c.pk)
        if f.pipeline is not None:
            q = q.where(j.c.pipeline == f.pipeline)
        if f.id is not None:
            q = q.where(j.c.id == f.id)
        if f.states is not None:
            q = q.where(j.c.state.in_([str(x) for x in f.states]))
        if f.unfinished:
            q = q.where(j.c.state.not_in([str(x) for x in TERMINAL_JOB_STATES]))
        if f.after_pk is not None:
            q = q.where(j.c.pk < f.after_pk if f.newest_first else j.c.pk > f.after_pk)
        if f.limit:
            q = q.limit(f.limit)
        return [_job(r) for r in self.c.execute(q).mappings()]

    def job_counts(self, pipeline: str) -> dict[str, int]:
        """How many jobs of the pipeline are in each state."""
        j = s.jobs
        q = select(j.c.state, func.count()).where(j.c.pipeline == pipeline).group_by(j.c.state)
        return {str(JobState(state)): int(n) for state, n in self.c.execute(q)}

    def start_job(
        self,
        pipeline: str,
        job_id: str,
        *,
        started: float,
        total: int,
        skipped: int,
        processed: int,
    ) -> None:
        """Mark a job running with its datum counts (its failures are counted afresh)."""
        self._update_job(
            pipeline,
            job_id,
            state=str(JobState.RUNNING),
            started=started,
            total=total,
            skipped=skipped,
            processed=processed,
            failed=0,
            reason="",
        )

    def set_job_reason(self, pipeline: str, job_id: str, reason: str) -> None:
        """Say why a job that has not started yet is waiting (inspect-job's Reason)."""
        self._update_job(pipeline, job_id, reason=reason)

    def set_job_image(
        self, pipeline: str, job_id: str, image: str, image_digest: str, runtime: str
    ) -> None:
        """Record the job's code provenance: the image it runs, its digest and the runtime."""
        self._update_job(pipeline, job_id, image=image, image_digest=image_digest, runtime=runtime)

    def set_job_counters(self, pipeline: str, job_id: str, counters: JobCounters) -> None:
        """Store what the job's master has counted so far."""
        self._update_job(pipeline, job_id, **_values(counters))

    def end_job(
        self, pipeline: str, job_id: str, state: JobState, finished: float, reason: str = ""
    ) -> bool:
        """Put a job that has not ended yet into a terminal state; False if it had ended."""
        assert state.terminal, state
        j = s.jobs
        cond = and_(
            j.c.pipeline == pipeline,
            j.c.id == job_id,
            j.c.state.not_in([str(x) for x in TERMINAL_JOB_STATES]),
        )
        values: dict[str, Any] = {"state": str(state), "finished": finished}
        if reason:
            values["reason"] = reason
        return bool(self.c.execute(update(j).where(cond).values(**values)).rowcount)

    def begin_egress(self, pipeline: str, job_id: str) -> bool:
        """Mark a job that has not ended as copying its output out (``egress``); False if it
        had ended."""
        j = s.jobs
        cond = and_(
            j.c.pipeline == pipeline,
            j.c.id == job_id,
            j.c.state.not_in([str(x) for x in TERMINAL_JOB_STATES]),
        )
        return bool(
            self.c.execute(update(j).where(cond).values(state=str(JobState.EGRESS))).rowcount
        )

    def set_output_disjoint(self, pipeline: str, job_id: str, disjoint: bool | None) -> None:
        """Record whether every datum of the job wrote under top-level names of its own."""
        self._update_job(pipeline, job_id, output_disjoint=disjoint)

    def add_job_restart(self, pipeline: str, job_id: str) -> None:
        """Count one restart of the job (its loop failed and took it up again)."""
        j = s.jobs
        self.c.execute(
            update(j)
            .where(and_(j.c.pipeline == pipeline, j.c.id == job_id))
            .values(restarts=j.c.restarts + 1)
        )

    def _update_job(self, pipeline: str, job_id: str, **values: Any) -> None:
        j = s.jobs
        self.c.execute(
            update(j).where(and_(j.c.pipeline == pipeline, j.c.id == job_id)).values(**values)
        )

    def delete_job(self, pipeline: str, job_id: str) -> None:
        """The job and its datums (their stored outputs stay for later jobs)."""
        j, d = s.jobs, s.job_datums
        self.c.execute(delete(j).where(and_(j.c.pipeline == pipeline, j.c.id == job_id)))
        self.c.execute(delete(d).where(and_(d.c.pipeline == pipeline, d.c.job_id == job_id)))

    # -- datums ------------------------------------------------------------------------------
    def insert_datums(self, records: Sequence[DatumRecord]) -> None:
        """Add datum rows of a job (a row per datum at a job's start: through the driver, as
        :meth:`_many` says)."""
        if records:
            self._many(
                "INSERT INTO job_datums (pipeline, job_id, idx, datum_id, hash, state, tries, "
                "reason, inputs, bytes_down, bytes_up, seconds, worker, seconds_download, "
                "seconds_upload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        r.pipeline,
                        r.job_id,
                        r.idx,
                        r.datum_id,
                        r.hash,
                        str(r.state),
                        r.tries,
                        r.reason,
                        r.inputs,
                        r.bytes_down,
                        r.bytes_up,
                        r.seconds,
                        r.worker,
                        r.seconds_download,
                        r.seconds_upload,
                    )
                    for r in records
                ],
            )

    def list_datums(self, pipeline: str, job_id: str, *, brief: bool = False) -> list[DatumRecord]:
        """A job's datums in datum order; ``brief`` leaves out their inputs (cheap for many)."""
        d = s.job_datums
        cols = [c for c in d.c if not (brief and c.name == "inputs")]
        q = (
            select(*cols)
            .where(and_(d.c.pipeline == pipeline, d.c.job_id == job_id))
            .order_by(d.c.idx)
        )
        return [_datum({**r, "inputs": ""} if brief else r) for r in self.c.execute(q).mappings()]

    def datums_after(self, pipeline: str, job_id: str, after: int, limit: int) -> list[DatumRecord]:
        """Up to ``limit`` of a job's datums whose index is above ``after``, in datum order and
        without their inputs: a page of a job too big to read at once."""
        d = s.job_datums
        q = (
            select(*[c for c in d.c if c.name != "inputs"])
            .where(and_(d.c.pipeline == pipeline, d.c.job_id == job_id, d.c.idx > after))
            .order_by(d.c.idx)
            .limit(limit)
        )
        return [_datum({**r, "inputs": ""}) for r in self.c.execute(q).mappings()]

    def unsettled_after(
        self, pipeline: str, job_id: str, after: int, limit: int
    ) -> list[tuple[int, int]]:
        """``(index, tries)`` of up to ``limit`` of a job's datums above index ``after`` that
        still need a try (neither done nor recovered), in datum order: what a job master starts
        from, judged by the database instead of a record per datum."""
        d = s.job_datums
        q = (
            select(d.c.idx, d.c.tries)
            .where(
                and_(
                    d.c.pipeline == pipeline,
                    d.c.job_id == job_id,
                    d.c.idx > after,
                    d.c.state.not_in(_SETTLED),
                )
            )
            .order_by(d.c.idx)
            .limit(limit)
        )
        return [(int(idx), int(tries)) for idx, tries in self.c.execute(q)]

    def first_unsettled(self, pipeline: str, job_id: str) -> DatumRecord | None:
        """The job's first datum (in datum order) that is neither done nor recovered, without
        its inputs; None when every datum is settled."""
        d = s.job_datums
        q = (
            select(*[c for c in d.c if c.name != "inputs"])
            .where(
                and_(
                    d.c.pipeline == pipeline,
                    d.c.job_id == job_id,
                    d.c.state.not_in(_SETTLED),
                )
            )
            .order_by(d.c.idx)
            .limit(1)
        )
        r = self.c.execute(q).mappings().first()
        return _datum({**r, "inputs": ""}) if r else None

    def recovered_hashes(self, pipeline: str, job_id: str) -> set[str]:
        """The hashes of the job's recovered datums (err_cmd: no output of theirs is kept)."""
        d = s.job_datums
        q = select(d.c.hash).where(
            and_(
                d.c.pipeline == pipeline,
                d.c.job_id == job_id,
                d.c.state == str(DatumState.RECOVERED),
            )
        )
        return {str(h) for (h,) in self.c.execute(q)}

    def datum_counts(self, pipeline: str, job_id: str) -> dict[str, int]:
        """How many datum rows of a job are in each state (counted by the database)."""
        d = s.job_datums
        q = (
            select(d.c.state, func.count())
            .where(and_(d.c.pipeline == pipeline, d.c.job_id == job_id))
            .group_by(d.c.state)
        )
        return {str(r[0]): int(r[1]) for r in self.c.execute(q)}

    def datums_page(
        self,
        pipeline: str,
        job_id: str,
        rank: dict[str, int],
        state: str | None,
        offset: int,
        limit: int,
        ids: Collection[str] | None = None,
        without: Collection[str] = (),
    ) -> list[DatumRecord]:
        """One page of a job's datum rows (of one state, if given; among ``ids``, if given;
        leaving out ``without``),
        ordered by ``rank`` of their state (unranked states last), then datum order: the
        database sorts and cuts, so a page costs the same however many datums the job has."""
        d = s.job_datums
        where = and_(d.c.pipeline == pipeline, d.c.job_id == job_id)
        if state:
            where = and_(where, d.c.state == state)
        if ids is not None:
            where = and_(where, d.c.datum_id.in_(list(ids)))
        if without:
            where = and_(where, d.c.datum_id.not_in(list(without)))
        order = case(rank, value=d.c.state, else_=len(rank) + 1)
        q = select(d).where(where).order_by(order, d.c.idx).offset(offset).limit(limit)
        return [_datum(r) for r in self.c.execute(q).mappings()]

    def datums_with_id(self, pipeline: str, job_id: str, prefix: str) -> list[DatumRecord]:
        """The job's datum rows whose id starts with ``prefix``, in datum order (at most 100)."""
        d = s.job_datums
        q = (
            select(d)
            .where(
                and_(
                    d.c.pipeline == pipeline,
                    d.c.job_id == job_id,
                    d.c.datum_id.startswith(prefix, autoescape=True),
                )
            )
            .order_by(d.c.idx)
            .limit(100)
        )
        return [_datum(r) for r in self.c.execute(q).mappings()]

    def datum_page(
        self,
        pipeline: str,
        job_id: str,
        *,
        states: Sequence[DatumState] = (),
        other_than: Sequence[DatumState] = (),
        after_idx: int = -1,
        limit: int = 1000,
    ) -> list[DatumRecord]:
        """Up to ``limit`` of a job's datums in datum order past index ``after_idx``: those in
        ``states`` (if given), not in ``other_than``; a listing read page by page."""
        d = s.job_datums
        q = select(d).where(
            and_(d.c.pipeline == pipeline, d.c.job_id == job_id, d.c.idx > after_idx)
        )
        if states:
            q = q.where(d.c.state.in_([str(x) for x in states]))
        if other_than:
            q = q.where(d.c.state.not_in([str(x) for x in other_than]))
        q = q.order_by(d.c.idx).limit(limit)
        return [_datum(r) for r in self.c.execute(q).mappings()]

    def count_datums(self, pipeline: str, job_id: str) -> int:
        """How many datum rows a job has."""
        d = s.job_datums
        q = select(func.count()).where(and_(d.c.pipeline == pipeline, d.c.job_id == job_id))
        return int(self.c.execute(q).scalar_one())

    def datum_hashes(self, pipeline: str, job_id: str) -> set[str]:
        """The hashes of a job's datum rows (to tell the datums it skipped, which have none)."""
        d = s.job_datums
        q = select(d.c.hash).where(and_(d.c.pipeline == pipeline, d.c.job_id == job_id))
        return {r[0] for r in self.c.execute(q)}

    def datum_inputs(self, datum_ids: Iterable[str]) -> list[tuple[str, str]]:
        """``(datum id, inputs JSON)`` of every datum row with one of these ids."""
        d = s.job_datums
        out: list[tuple[str, str]] = []
        for chunk in _batches(datum_ids):
            q = select(d.c.datum_id, d.c.inputs).where(d.c.datum_id.in_(chunk))
            out.extend((r[0], r[1]) for r in self.c.execute(q))
        return out

    def cached_outputs(self, pipeline: str, hashes: Iterable[str]) -> dict[str, str]:
        """Stored output manifests of the pipeline's datums with these hashes: hash -> manifest."""
        dc = s.datum_cache
        out: dict[str, str] = {}
        for chunk in _batches(hashes):
            q = select(dc.c.hash, dc.c.manifest).where(
                and_(dc.c.pipeline == pipeline, dc.c.hash.in_(chunk))
            )
            out.update((r[0], r[1]) for r in self.c.execute(q))
        return out

    def datums_that_wrote(self, pipeline: str, path: str) -> list[tuple[str, str]]:
        """``(hash, job id)`` of every stored datum output of the pipeline that wrote the file
        ``path`` (the job is the one that processed the datum), by hash."""
        df, dc = s.datum_files, s.datum_cache
        q = (
            select(df.c.hash, dc.c.job_id)
            .join(dc, and_(dc.c.pipeline == df.c.pipeline, dc.c.hash == df.c.hash))
            .where(and_(df.c.pipeline == pipeline, df.c.path == path))
            .order_by(df.c.hash)
        )
        return [(r[0], r[1]) for r in self.c.execute(q)]

    def datums_by_hash(
        self, pipeline: str, wanted: Sequence[tuple[str, str]]
    ) -> dict[str, DatumRecord]:
        """For each ``(hash, job id)``: the row of the datum with that hash in that job, else in
        another job of the pipeline that has one (left out when no job has a row for it: its job
        was deleted)."""
        d = s.job_datums
        rows: dict[str, list[DatumRecord]] = {}
        for chunk in _batches(h for h, _j in wanted):
            q = select(d).where(and_(d.c.pipeline == pipeline, d.c.hash.in_(chunk)))
            for r in self.c.execute(q).mappings():
                rows.setdefault(r["hash"], []).append(_datum(r))
        out: dict[str, DatumRecord] = {}
        for h, job_id in wanted:
            found = rows.get(h, [])
            mine = [r for r in found if r.job_id == job_id]
            if found:
                out[h] = (mine or found)[-1]
        return out

    def cached_hashes(self, pipeline: str, hashes: Iterable[str]) -> set[str]:
        """Which of these datum hashes have a stored output for the pipeline."""
        dc = s.datum_cache
        out: set[str] = set()
        for chunk in _batches(hashes):
            q = select(dc.c.hash).where(and_(dc.c.pipeline == pipeline, dc.c.hash.in_(chunk)))
            out.update(r[0] for r in self.c.execute(q))
        return out

    def record_results(
        self,
        pipeline: str,
        job_id: str,
        outcomes: Sequence[DatumOutcome],
        cached: Sequence[CachedDatum],
        logs: Sequence[DatumLines],
        counters: JobCounters,
    ) -> JobState | None:
        """Store a batch of datum results, their outputs (kept for later jobs in any case) and
        log lines, and the job's new counters unless the job has ended meanwhile; return the
        job's state (None if it is gone). The caller rolls back on a terminal state."""
        if outcomes:
            self._many(
                "UPDATE job_datums SET state = ?, tries = ?, reason = ?, bytes_down = ?, "
                "bytes_up = ?, seconds = ?, worker = ?, seconds_download = ?, seconds_upload = ? "
                "WHERE pipeline = ? AND job_id = ? AND idx = ?",
                [
                    (
                        str(o.state),
                        o.tries,
                        o.reason,
                        o.bytes_down,
                        o.bytes_up,
                        o.seconds,
                        o.worker,
                        o.seconds_download,
                        o.seconds_upload,
                        pipeline,
                        job_id,
                        o.idx,
                    )
                    for o in outcomes
                ],
            )
        self._insert_new(
            "datum_cache",
            ("pipeline", "hash", "manifest", "bytes_up", "job_id"),
            [(c.pipeline, c.hash, c.manifest, c.bytes_up, c.job_id) for c in cached],
        )
        self._insert_new(
            "datum_files",
            ("pipeline", "path", "hash"),
            [(c.pipeline, p, c.hash) for c in cached for p in sorted(set(c.paths))],
        )
        self._insert_log_rows(_datum_log_rows(pipeline, job_id, logs))
        job = self.get_job(pipeline, job_id)
        if job is None:
            return None
        if not job.state.terminal:
            self.set_job_counters(pipeline, job_id, counters)
        return job.state

    # -- logs --------------------------------------------------------------------------------
    def insert_logs(self, records: Sequence[LogRecord]) -> None:
        """Store log lines. Consecutive lines of one source share a row (a datum's system
        lines, a burst of its output), up to LINES_PER_ROW lines and ROW_CHARS of text: a
        quick datum's six lines cost one row, not six."""
        lines = ((_source(r), r.ts, r.message) for r in records)
        rows = [_log_row(source, run) for source, run in _log_runs(lines)]
        self._insert_log_rows(rows)

    def _insert_log_rows(self, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        # The job master stores several lines a datum: rows go to the driver as they are.
        self._many(
            'INSERT INTO logs (pipeline, job_id, datum_id, worker, stream, "user", master, ts, '
            "message, lines) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def list_logs(self, where: LogFilter) -> list[LogRecord]:
        """Log lines matching the filter, oldest first. A line's ``pk`` orders it among all
        lines (its row's key times LINES_PER_ROW plus its place in the row): ``after`` takes
        the last one read."""
        lg = s.logs
        row_after, _ = divmod(where.after, LINES_PER_ROW)
        q = select(lg).where(lg.c.pk >= row_after, lg.c.master == where.master).order_by(lg.c.pk)
        if where.pipeline:
            q = q.where(lg.c.pipeline == where.pipeline)
        if where.job_id:
            q = q.where(lg.c.job_id == where.job_id)
        if where.datum_prefix:
            q = q.where(lg.c.datum_id.startswith(where.datum_prefix))
        if where.datum_ids:
            q = q.where(lg.c.datum_id.in_(where.datum_ids))
        if where.limit:
            q = q.limit(where.limit + 1)  # every row holds a line; the first may be read already
        out: list[LogRecord] = []
        with self.c.execute(q) as rows:  # rows are read as they are taken: stop at the limit
            for row in rows:
                first = row.pk * LINES_PER_ROW
                lines = [(row.ts, row.message)] if row.lines == 1 else json.loads(row.message)
                out.extend(
                    LogRecord(
                        pipeline=row.pipeline,
                        ts=ts,
                        message=text,
                        job_id=row.job_id,
                        datum_id=row.datum_id,
                        worker=row.worker,
                        stream=row.stream,
                        user=row.user,
                        master=row.master,
                        pk=first + i,
                    )
                    for i, (ts, text) in enumerate(lines)
                    if first + i > where.after
                )
                if where.limit and len(out) >= where.limit:
                    return out[: where.limit]
        return out

    # -- secrets -----------------------------------------------------------------------------
    def insert_secret(self, record: SecretRecord) -> None:
        """Add a secret; AlreadyExists when one of that name exists."""
        try:
            with self.c.begin_nested():
                self.c.execute(
                    s.secrets.insert().values(
                        name=record.name,
                        type=record.type,
                        created=record.created,
                        keys=json.dumps(list(record.keys)),
                    )
                )
        except IntegrityError:
            raise AlreadyExists(f"secret {record.name} already exists") from None

    def get_secret(self, name: str) -> SecretRecord | None:
        """One secret, if it exists."""
        r = self.c.execute(select(s.secrets).where(s.secrets.c.name == name)).mappings().first()
        return _secret(r) if r else None

    def list_secrets(self) -> list[SecretRecord]:
        """Every secret, by name."""
        q = select(s.secrets).order_by(s.secrets.c.name)
        return [_secret(r) for r in self.c.execute(q).mappings()]

    def delete_secret(self, name: str) -> bool:
        """Remove a secret; False when there was none."""
        return bool(self.c.execute(delete(s.secrets).where(s.secrets.c.name == name)).rowcount)


def _secret(mapping: Any) -> SecretRecord:
    return SecretRecord(
        name=mapping["name"],
        type=mapping["type"],
        created=mapping["created"],
        keys=tuple(json.loads(mapping["keys"])),
    )


def _source(r: LogRecord) -> tuple[Any, ...]:
    """What lines sharing a row have in common (all of a row's columns but the line's own)."""
    return (r.pipeline, r.job_id, r.datum_id, r.worker, str(r.stream), r.user, r.master)


def _log_row(source: tuple[Any, ...], run: list[tuple[float, str]]) -> tuple[Any, ...]:
    """The row of consecutive lines ``(ts, line)`` of one ``source`` (see ``insert_logs``)."""
    ts, message = run[0]
    if len(run) > 1:
        message = orjson.dumps(run).decode()
    return (*source, ts, message, len(run))


def _log_runs(lines: Iterable[tuple[K, float, str]]) -> Iterator[tuple[K, list[tuple[float, str]]]]:
    """Lines ``(source, ts, line)`` cut into the runs that share a row: consecutive lines of one
    source, up to LINES_PER_ROW lines and ROW_CHARS of text."""
    run: list[tuple[float, str]] = []
    run_source: Any = None
    run_chars = 0
    for source, ts, line in lines:
        if run and (
            source != run_source or len(run) >= LINES_PER_ROW or run_chars + len(line) > ROW_CHARS
        ):
            yield run_source, run
            run, run_chars = [], 0
        run_source = source
        run.append((ts, line))
        run_chars += len(line)
    if run:
        yield run_source, run


def _datum_log_rows(
    pipeline: str, job_id: str, logs: Sequence[DatumLines]
) -> list[tuple[Any, ...]]:
    """The rows of datums' lines, as ``insert_logs`` makes them from records (a line's source
    is its datum's but for its stream)."""
    rows: list[tuple[Any, ...]] = []
    for d in logs:
        for stream, run in _log_runs((st, ts, line) for ts, st, line in d.lines):
            source = (pipeline, job_id, d.datum_id, d.worker, stream, stream != "system", False)
            rows.append(_log_row(source, run))
    return rows
