"""The worker thread's home CPU for datum batching (tusk.worker.cpus)."""

from __future__ import annotations

import os
import threading

import pytest

from tusk.worker.cpus import HomeCpu, current_cpu


@pytest.fixture
def allowed() -> set[int]:
    cpus = os.sched_getaffinity(0)
    assert len(cpus) >= 2, "home CPUs need a machine of two CPUs or more"
    return cpus


def in_thread(body: object) -> None:
    """Run ``body`` in a thread of its own (holding changes that thread's CPUs only)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            body()  # type: ignore[operator]
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def test_the_current_cpu_is_one_this_thread_may_use(allowed: set[int]) -> None:
    assert current_cpu() in allowed


def test_a_held_thread_stays_on_the_preferred_cpu_until_released(allowed: set[int]) -> None:
    def body() -> None:
        preferred = max(allowed)
        home = HomeCpu(preferred)
        assert home.hold() == preferred == home.cpu
        assert os.sched_getaffinity(0) == {preferred}
        assert current_cpu() == preferred
        assert home.hold() == preferred  # held once
        home.release()
        assert home.cpu == -1 and os.sched_getaffinity(0) == allowed
        home.release()  # nothing held: nothing to do

    in_thread(body)
    assert os.sched_getaffinity(0) == allowed  # another thread's CPUs are its own


def test_without_a_usable_preference_the_thread_stays_where_it_runs(allowed: set[int]) -> None:
    def body() -> None:
        home = HomeCpu(max(allowed) + 1000)  # not a CPU this thread may use
        cpu = home.hold()
        assert cpu in allowed and os.sched_getaffinity(0) == {cpu}
        home.release()
        assert os.sched_getaffinity(0) == allowed

    in_thread(body)


def test_a_thread_already_on_one_cpu_keeps_it(allowed: set[int]) -> None:
    def body() -> None:
        only = min(allowed)
        os.sched_setaffinity(0, {only})
        home = HomeCpu(max(allowed))
        assert home.hold() == only
        home.release()
        assert os.sched_getaffinity(0) == {only}  # it was not the holder's to change

    in_thread(body)
