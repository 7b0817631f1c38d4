"""The job master records datum results in groups: while results come fast, what arrives within
a short window shares one transaction; a slow datum's result and the end of a job's results are
recorded at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from tusk.pps.running.results import result_batches
from tusk.worker.protocol import DatumResult


def _result(i: int) -> DatumResult:
    return DatumResult(task_id=f"job-{i}-1", ok=True, worker="w")


def test_results_arriving_together_share_a_batch() -> None:
    def arriving() -> Iterator[DatumResult]:
        for i in range(20):
            time.sleep(0.002)
            yield _result(i)

    batches = list(result_batches(arriving(), window=5.0))
    assert [r.task_id for b in batches for r in b] == [f"job-{i}-1" for i in range(20)]
    # the first few are recorded as they come (nothing says more are coming yet); once they
    # have come fast, the others are gathered
    assert len(batches) <= 6, [len(b) for b in batches]


def test_the_last_result_is_not_held_for_the_window() -> None:
    started = time.monotonic()
    batches = list(result_batches(iter([_result(i) for i in range(3)]), window=30.0))
    assert [r.task_id for b in batches for r in b] == ["job-0-1", "job-1-1", "job-2-1"]
    assert time.monotonic() - started < 10  # the end closed the group, not the 30 s window


def test_more_than_a_batch_at_once_and_the_end_are_not_held_for_the_window() -> None:
    from tusk.pps.running.results import BATCH

    n = BATCH + 44
    started = time.monotonic()
    batches = list(result_batches(iter([_result(i) for i in range(n)]), window=30.0))
    assert [r.task_id for b in batches for r in b] == [f"job-{i}-1" for i in range(n)]
    assert max(len(b) for b in batches) == BATCH
    assert time.monotonic() - started < 10  # neither group waited for the 30 s window


def test_results_of_slow_datums_are_recorded_as_they_come() -> None:
    produced: list[float] = []

    def slow() -> Iterator[DatumResult]:
        for i in range(3):
            time.sleep(2.5)  # longer than the window: nothing to gather
            produced.append(time.monotonic())
            yield _result(i)

    delays = []
    for batch in result_batches(slow(), window=2.0):
        assert len(batch) == 1
        delays.append(time.monotonic() - produced[-1])
    # held for a window, the first two would come 2 s after their datum ended
    assert len(delays) == 3 and max(delays) < 1.5, delays


def test_a_result_is_recorded_after_the_window_even_if_more_are_coming() -> None:
    release = threading.Event()

    def slow_second() -> Iterator[DatumResult]:
        yield _result(0)
        release.wait(30)
        yield _result(1)

    batches = result_batches(slow_second(), window=0.05)
    first = next(batches)  # returns while the second datum still runs
    assert [r.task_id for r in first] == ["job-0-1"]
    release.set()
    assert [[r.task_id for r in b] for b in batches] == [["job-1-1"]]


def test_an_executor_error_reaches_the_job_master() -> None:
    def failing() -> Iterator[DatumResult]:
        yield _result(0)
        raise RuntimeError("worker pool gone")

    with pytest.raises(RuntimeError, match="worker pool gone"):
        list(result_batches(failing(), window=5.0))
