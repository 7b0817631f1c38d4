"""Cron inputs: ticks overwrite /time in the cron repo and trigger the pipeline."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from conftest import Pps


def test_cron_ticks_trigger_jobs_and_overwrite_time(pps: Pps) -> None:
    pps.create(
        "ticker",
        {"cron": {"name": "tick", "spec": "@every 1s"}},
        ["sh", "-c", "cp /pfs/tick/time /pfs/out/seen"],
    )
    assert "ticker_tick" in [r.name for r in pps.engine.repos.list()]
    pps.wait_for("two ticks", lambda: len(pps.jobs("ticker")) >= 2, timeout=30)
    first, second = (pps.wait_job("ticker", j.id) for j in pps.jobs("ticker")[:2])
    stamps = []
    for job in (first, second):
        assert job.state == "success"
        (tick,) = [i for i in job.inputs if i.repo == "ticker_tick"]
        # the tick commit holds exactly one file, /time, with a JSON-quoted RFC 3339 time
        assert [f.path for f in pps.engine.files.list("ticker_tick", tick.id)] == ["/time"]
        time_file = pps.read("ticker_tick", tick.id, "/time")
        assert pps.read("ticker", job.id, "/seen") == time_file
        stamps.append(datetime.fromisoformat(json.loads(time_file)))
    # ticks fall on the schedule (one second apart, or a whole number of seconds when the
    # ticker had to skip missed ticks on a loaded machine)
    gap = (stamps[1] - stamps[0]).total_seconds()
    assert gap >= 1 and gap == int(gap)
    assert abs(datetime.now(UTC) - stamps[1]) < timedelta(seconds=30)


def test_a_stopped_cron_pipeline_does_not_tick(pps: Pps) -> None:
    pps.create("quiet", {"cron": {"name": "tick", "spec": "@every 1s"}}, ["true"])
    pps.wait_for("a first tick", lambda: pps.jobs("quiet"), timeout=30)
    pps.engine.pipelines.set_stopped("quiet", True)
    commits = len(pps.engine.commits.list("quiet_tick"))
    assert pps.engine.cron.tick(datetime.now(UTC) + timedelta(hours=1)) == 0
    assert len(pps.engine.commits.list("quiet_tick")) == commits
