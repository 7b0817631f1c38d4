"""Recording datum results as they arrive: each batch in one transaction (datums, stored outputs,
log lines, the job's counters), so a server killed mid-job resumes where it stopped: done datums
count once, none is lost or run twice."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator

import orjson

from tusk.api.pps import DatumState
from tusk.errors import InvalidPath
from tusk.meta import CachedDatum, DatumLines, DatumOutcome
from tusk.pfs.context import PfsContext
from tusk.pfs.paths import clean_path
from tusk.pps.handoff import Handoff
from tusk.pps.running.datum_tasks import Progress
from tusk.worker.protocol import DatumResult

BATCH = 256
# How long the job master gathers results that come fast before it records them in one
# transaction; a crash in between loses only unacknowledged results, whose datums a resumed job
# runs again.
GROUP_SECONDS = 0.05


class JobEnded(Exception):
    """The job reached a terminal state elsewhere (stop-job, update-pipeline) while it ran."""


def result_batches(
    results: Iterator[DatumResult], window: float = GROUP_SECONDS
) -> Iterator[list[DatumResult]]:
    """Group results as they come: the first one, every one that finished meanwhile and, while
    results come faster than two per ``window``, every one that arrives within ``window`` of it
    (a group commit: the job master's transaction costs about the same for one result as for
    many, so fast datums must not each pay for one). Slow datums are recorded as soon as they
    end, and the end of the results closes a group at once, so a job's last datum is never held.

    An executor's results come in a :class:`Handoff` (else a thread drains them into one), so
    workers never wait on the job master's writes; while a window gathers, results coming in
    do not wake the job master one by one."""
    box = results if isinstance(results, Handoff) else _pumped(results)
    pace = _Pace()
    while True:
        batch = box.take(BATCH)  # the first result, and every one that finished meanwhile
        if not batch:
            return
        now = pace.arrived(len(batch))
        if pace.fast(window) and len(batch) < BATCH:
            left = BATCH - len(batch)
            batch += box.take(left, want=left, until=now + window)
        yield batch


def _pumped(results: Iterator[DatumResult]) -> Handoff[DatumResult]:
    """``results`` drained by a thread of its own as they come."""
    box: Handoff[DatumResult] = Handoff()

    def pump() -> None:
        try:
            for r in results:
                box.put(r)
        except BaseException as exc:  # noqa: BLE001 - raised to the job master by take
            box.close(exc)
        else:
            box.close()

    threading.Thread(target=pump, name="datum-results", daemon=True).start()
    return box


class _Pace:
    """How fast results come: a moving average of the time between two of them (workers that
    end datums at about the same time give a short gap then a long one; the average says how
    many a window would gather)."""

    def __init__(self) -> None:
        self.last: float | None = None
        self.gap: float | None = None
        self.gaps = 0

    def arrived(self, count: int = 1) -> float:
        """``count`` results were taken now (they came in the time since the last ones)."""
        now = time.monotonic()
        if self.last is not None:
            gap = (now - self.last) / count
            self.gap = gap if self.gap is None else 0.75 * self.gap + 0.25 * gap
            self.gaps += count
        self.last = now
        return now

    def fast(self, window: float) -> bool:
        """Whether a window is likely to gather several results (judged after a few)."""
        return self.gaps >= 4 and self.gap is not None and self.gap < window / 2


def checked_names(res: DatumResult) -> DatumResult:
    """``res``, or a failure of its datum if it wrote a file whose name no commit can hold
    (a glob character, a newline, ...): caught here, before anything is recorded, so the datum
    fails with the reason instead of the merge of the job's output failing later."""
    if not res.ok:
        return res
    for path in [*(o.path for o in res.outputs), *res.dirs]:
        try:
            clean_path(path, allow_root=False)
        except InvalidPath as e:
            reason = f"output file name {path!r} is not allowed: {e.message.split(': ', 1)[-1]}"
            if e.hint:
                reason += f" ({e.hint})"
            return dataclasses.replace(res, ok=False, reason=reason, outputs=(), dirs=())
    return res


def record_results(
    ctx: PfsContext,
    pipeline: str,
    job_id: str,
    results: list[tuple[int, str, DatumResult]],
    last: bool,
    progress: Progress,
) -> list[bool]:
    """Store ``(datum index, datum hash, result)`` triples in one transaction of a few statements;
    return which succeeded; raise :class:`JobEnded` (writing nothing) if the job has ended.

    Results arrive in batches (whatever finished while the previous batch was written), and the
    job master keeps ids, tries and counters in memory (it is the job's only writer), so its
    cost per datum stays below a worker's and adding workers adds throughput."""
    if not results:
        return []
    results = [(idx, h, checked_names(res)) for idx, h, res in results]
    now = time.time()
    totals = {f.name: getattr(progress.totals, f.name) for f in dataclasses.fields(progress.totals)}
    outcomes: list[DatumOutcome] = []
    cached: list[CachedDatum] = []
    logs: list[DatumLines] = []
    for idx, h, res in results:
        tries = progress.tried(idx, settled=res.ok or last)
        lines: list[tuple[float, str, str]] = list(res.logs)
        if res.ok or last:  # a datum's last try only: a retry downloads the same bytes again
            totals["bytes_down"] += res.bytes_down
        totals["seconds_download"] += res.seconds_download
        totals["seconds_process"] += res.seconds_process
        totals["seconds_upload"] += res.seconds_upload
        if res.ok:
            totals["processed"] += 1
            totals["bytes_up"] += res.bytes_up
            manifest = {"files": [o.to_json() for o in res.outputs], "dirs": list(res.dirs)}
            paths = tuple(o.path for o in res.outputs)
            cached.append(
                CachedDatum(
                    pipeline, h, orjson.dumps(manifest).decode(), res.bytes_up, job_id, paths
                )
            )
        elif last and res.recovered:
            totals["recovered"] += 1
            note = f"recovered datum with err_cmd after: {res.reason}"
            lines.append((now, "system", note))
        else:
            totals["failed"] += 1 if last else 0
            note = f"failed processing datum: {res.reason}" + ("" if last else ", retrying")
            lines.append((now, "system", note))
        datum_id = progress.datum_id(idx)  # once a datum: it hashes the datum's files
        logs.append(DatumLines(datum_id, res.worker, lines))
        if res.ok:
            state = DatumState.SUCCESS
        elif not last:
            state = DatumState.PENDING
        else:
            state = DatumState.RECOVERED if res.recovered else DatumState.FAILED
        outcomes.append(
            DatumOutcome(
                idx=idx,
                state=state,
                tries=tries,
                reason=res.reason,
                bytes_down=res.bytes_down,
                bytes_up=res.bytes_up,
                seconds=res.seconds_process,
                worker=res.worker,
                seconds_download=res.seconds_download,
                seconds_upload=res.seconds_upload,
            )
        )
    counters = type(progress.totals)(**totals)
    with ctx.meta.transaction(durable=False) as tx:  # a crash reruns the datums it loses
        state_now = tx.record_results(pipeline, job_id, outcomes, cached, logs, counters)
        if state_now is None or state_now.terminal:
            # stopped or superseded meanwhile, possibly through another server: roll back
            raise JobEnded(state_now)
    progress.totals = counters
    return [res.ok or (last and res.recovered) for _i, _h, res in results]
