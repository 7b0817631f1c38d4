"""Cron schedules: the next tick after a time, robfig/cron style."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tusk.pps.scheduling.cron import next_tick


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("spec", "after", "expected"),
    [
        ("@every 10s", "2026-01-01T00:00:05", "2026-01-01T00:00:15"),
        ("@every 1h30m", "2026-01-01T00:00:00", "2026-01-01T01:30:00"),
        ("*/5 * * * *", "2026-01-01T00:03:10", "2026-01-01T00:05:00"),
        ("*/5 * * * *", "2026-01-01T00:05:00", "2026-01-01T00:10:00"),
        ("0 * * * *", "2026-01-01T10:00:00", "2026-01-01T11:00:00"),
        ("@hourly", "2026-01-01T10:59:59", "2026-01-01T11:00:00"),
        ("@daily", "2026-01-31T12:00:00", "2026-02-01T00:00:00"),
        ("30 9 * * mon-fri", "2026-01-02T10:00:00", "2026-01-05T09:30:00"),  # Fri -> Mon
        ("0 0 1 jan *", "2026-03-01T00:00:00", "2027-01-01T00:00:00"),
        ("0 0 29 2 *", "2026-01-01T00:00:00", "2028-02-29T00:00:00"),
        # both day fields restricted: either one matching is enough (the 13th, or a Friday)
        ("0 0 13 * 5", "2026-02-01T00:00:00", "2026-02-06T00:00:00"),
        ("0 12 * * 7", "2026-01-01T00:00:00", "2026-01-04T12:00:00"),  # 7 is Sunday too
    ],
)
def test_next_tick(spec: str, after: str, expected: str) -> None:
    assert next_tick(spec, at(after)) == at(expected)


def test_a_schedule_that_never_fires_says_so() -> None:
    with pytest.raises(ValueError, match="never fires"):
        next_tick("0 0 30 2 *", at("2026-01-01T00:00:00"))
