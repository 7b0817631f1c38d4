"""Cron inputs: on each tick of a pipeline's schedule the leader overwrites ``/time`` in the
cron repo (a JSON-quoted RFC 3339 time, as 1.7 does), which triggers the pipeline like any put.
Restarts resume from the last written time."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

from tusk.errors import NotFound, TuskError
from tusk.pfs.context import PfsContext
from tusk.pfs.files import FileService
from tusk.pps.scheduling.ticker import Ticker
from tusk.pps.spec import PipelineSpec, parse_duration

log = logging.getLogger("tusk.cron")
_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_NAMES = {
    3: ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    4: ("sun", "mon", "tue", "wed", "thu", "fri", "sat"),
}
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))


def _field(expr: str, index: int) -> tuple[set[int], bool]:
    """Allowed values of one cron field, and whether it was ``*`` (unrestricted)."""
    low, high = _RANGES[index]
    names = _NAMES.get(index, ())
    out: set[int] = set()
    star = False
    for part in expr.split(","):
        rng, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if rng in ("*", "?"):
            star = star or not step_text
            first, last = low, high
        else:
            a, _, b = rng.partition("-")

            def value(tok: str) -> int:
                return names.index(tok.lower()) + low if tok.lower() in names else int(tok)

            first = value(a)
            last = value(b) if b else (high if step_text else first)
        out.update(range(first, last + 1, step))
    if index == 4 and 7 in out:
        out.add(0)
    return out, star


def next_tick(spec: str, after: datetime) -> datetime:
    """The first tick of ``spec`` strictly after ``after`` (robfig/cron semantics)."""
    text = spec.strip()
    if text.startswith("@every"):
        return after + timedelta(seconds=parse_duration(text[len("@every") :].strip()))
    fields = _DESCRIPTORS.get(text, text).split()
    minute, hour, dom, month, dow = (_field(f, i) for i, f in enumerate(fields))
    t = (after + timedelta(minutes=1)).replace(second=0, microsecond=0)
    limit = t + timedelta(days=366 * 5)
    while t < limit:
        if t.month not in month[0]:
            t = (t.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
            continue
        day_ok = t.day in dom[0]
        wday_ok = (t.weekday() + 1) % 7 in dow[0]
        # As in cron: when both day fields are restricted, either one matching is enough.
        ok = (day_ok or wday_ok) if not (dom[1] or dow[1]) else (day_ok and wday_ok)
        if not ok:
            t = t.replace(hour=0, minute=0) + timedelta(days=1)
            continue
        if t.hour not in hour[0]:
            t = t.replace(minute=0) + timedelta(hours=1)
            continue
        if t.minute not in minute[0]:
            t += timedelta(minutes=1)
            continue
        return t
    raise ValueError(f"cron schedule {spec!r} never fires")


class CronTicker(Ticker):
    """Runs on the scheduler's server: writes due ticks for every running cron pipeline."""

    thread_name = "cron"
    log = logging.getLogger("tusk.cron")

    def __init__(self, ctx: PfsContext, files: FileService) -> None:
        self.ctx = ctx
        self.files = files
        super().__init__()

    def step(self) -> None:
        self.tick(datetime.now(UTC))

    def tick(self, now: datetime) -> int:
        """Write every tick that is due at ``now``; return how many were written."""
        written = 0
        with self.ctx.meta.transaction(write=False) as tx:
            pipes = [p for p in tx.list_pipelines() if not p.stopped]
        for pipe in pipes:
            spec = PipelineSpec.model_validate(json.loads(pipe.spec))
            created = datetime.fromtimestamp(pipe.created, UTC)
            for leaf in spec.input.leaves() if spec.input else ():
                if leaf.cron is None:
                    continue
                repo = leaf.cron.repo_for(spec.name)
                last = self._last_tick(repo)
                if last is None:
                    start = leaf.cron.start
                    last = datetime.fromisoformat(start) if start else created
                due = next_tick(leaf.cron.spec, last)
                if due > now:
                    continue
                while True:  # after a long pause, fire once for the latest missed tick
                    following = next_tick(leaf.cron.spec, due)
                    if following > now:
                        break
                    due = following
                self._write(repo, due)
                written += 1
        return written

    def run_now(self, pipeline: str, now: datetime) -> int:
        """Write a tick at ``now`` to every cron input of ``pipeline`` (run-cron); return how
        many were written."""
        with self.ctx.meta.transaction(write=False) as tx:
            pipe = tx.get_pipeline(pipeline)
        if pipe is None:
            raise NotFound(f"pipeline {pipeline} not found")
        spec = PipelineSpec.model_validate(json.loads(pipe.spec))
        crons = [leaf.cron for leaf in (spec.input.leaves() if spec.input else ()) if leaf.cron]
        for cron in crons:
            self._write(cron.repo_for(spec.name), now)
        return len(crons)

    def _last_tick(self, repo: str) -> datetime | None:
        try:
            raw = b"".join(self.files.get(repo, "master", "/time"))
        except TuskError:
            return None
        return datetime.fromisoformat(json.loads(raw))

    def _write(self, repo: str, when: datetime) -> None:
        stamp = when.astimezone(UTC).isoformat().replace("+00:00", "Z")
        batch = self.files.open_put(repo, "master")
        batch.begin_file("/time", overwrite=True)
        batch.write(json.dumps(stamp).encode())
        batch.end_file()
        batch.commit(f"cron tick {stamp}")
