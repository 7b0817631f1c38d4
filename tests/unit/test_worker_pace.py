"""How many tasks the local executor sends ahead to a worker, from the pace of its datums."""

from __future__ import annotations

import pytest

from tusk.pps.executors import local
from tusk.pps.executors.local import AHEAD_MAX_TASKS, _Pace


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(local.time, "monotonic", c)
    return c


def test_unknown_pace_sends_the_least(clock: Clock) -> None:
    pace = _Pace()
    assert pace.ahead(0) == 0 and pace.ahead(1) == 1
    pace.result(has_next=False)  # a result with no start seen (a cancelled run's): no pace
    assert pace.seconds is None


def test_a_datum_counts_from_its_send_to_an_idle_worker(clock: Clock) -> None:
    """Not from the result before it: the job master's time between them is not the datum's."""
    pace = _Pace()
    pace.sent(idle=True)
    clock.now += 0.002
    pace.result(has_next=False)
    assert pace.seconds == pytest.approx(0.002)
    clock.now += 1.0  # the job master took a second to send the next task
    pace.sent(idle=True)
    clock.now += 0.002
    pace.result(has_next=False)
    assert pace.seconds == pytest.approx(0.002)
    assert pace.ahead(0, seconds=0.005) == 2


def test_a_task_waiting_at_the_worker_starts_at_the_result_before_it(clock: Clock) -> None:
    pace = _Pace()
    pace.sent(idle=True)
    pace.sent(idle=False)  # sent ahead: it starts when the first one ends
    clock.now += 0.001
    pace.result(has_next=True)
    clock.now += 0.003
    pace.result(has_next=False)
    assert pace.seconds == pytest.approx(0.75 * 0.001 + 0.25 * 0.003)


def test_ahead_is_bounded_and_slow_datums_get_the_least(clock: Clock) -> None:
    pace = _Pace()
    pace.sent(idle=True)
    clock.now += 1e-9
    pace.result(has_next=False)
    assert pace.ahead(0) == AHEAD_MAX_TASKS
    pace.reset()
    pace.sent(idle=True)
    clock.now += 2.0
    pace.result(has_next=False)
    assert pace.ahead(0) == 0 and pace.ahead(1) == 1
