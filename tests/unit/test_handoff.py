"""Handoff: items from producer threads, taken by one consumer in groups."""

from __future__ import annotations

import threading
import time

import pytest

from tusk.pps.handoff import Handoff


def _later(seconds: float, action: object) -> threading.Timer:
    timer = threading.Timer(seconds, action)  # type: ignore[arg-type]
    timer.start()
    return timer


def test_take_returns_what_has_come_up_to_most() -> None:
    box: Handoff[int] = Handoff()
    for i in range(5):
        box.put(i)
    assert box.take(3) == [0, 1, 2]
    assert box.take(3) == [3, 4]


def test_take_waits_for_the_first_item() -> None:
    box: Handoff[int] = Handoff()
    timer = _later(0.2, lambda: box.put(7))
    started = time.monotonic()
    assert box.take(10) == [7]
    assert time.monotonic() - started >= 0.15
    timer.join()


def test_a_group_is_not_woken_item_by_item() -> None:
    box: Handoff[int] = Handoff()
    woken: list[int] = []
    original = box._cond.notify

    def counting_notify(n: int = 1) -> None:
        woken.append(n)
        original(n)

    box._cond.notify = counting_notify  # type: ignore[method-assign]

    def produce() -> None:
        for i in range(50):
            box.put(i)
            time.sleep(0.001)

    taken: list[int] = []
    thread = threading.Thread(target=produce)
    thread.start()
    taken += box.take(50, want=50, until=time.monotonic() + 30)
    thread.join()
    assert taken == list(range(50))
    assert len(woken) <= 1  # once the 50th came, not for each of the 50


def test_until_returns_what_came_in_time() -> None:
    box: Handoff[int] = Handoff()
    box.put(1)
    started = time.monotonic()
    assert box.take(10, want=5, until=started + 0.2) == [1]
    assert 0.15 <= time.monotonic() - started < 5
    assert box.take(10, want=5, until=time.monotonic() + 0.05) == []  # not the end: nothing came


def test_close_ends_a_wait_and_the_end_is_an_empty_take() -> None:
    box: Handoff[int] = Handoff()
    box.put(1)
    timer = _later(0.1, box.close)
    assert box.take(10, want=5, until=time.monotonic() + 30) == [1]  # the close, not the 30 s
    assert box.take(10) == []
    timer.join()


def test_the_producers_error_comes_after_their_items() -> None:
    box: Handoff[int] = Handoff()
    box.put(1)
    box.put(2)
    box.close(RuntimeError("pool gone"))
    assert box.take(1) == [1]
    assert box.take(10) == [2]
    with pytest.raises(RuntimeError, match="pool gone"):
        box.take(10)
