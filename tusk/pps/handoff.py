"""Items handed from producer threads to one consumer thread, taken in groups.

A ``queue.Queue`` wakes its consumer for every item put while it waits: a job of quick datums
paid a thread switch per result at each hand-over (worker thread → executor → job master). Here
the consumer says how many items it waits for and until when, and a producer wakes it only once
that many have come, or at the end: a group of results costs one wake-up, not one per result.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")


class Handoff(Iterator[T]):
    """An unbounded hand-over: any thread may ``put``; one thread ``take``s the items in groups
    or iterates over them one at a time. An executor whose threads produce results returns its
    Handoff, and the job master takes from it directly (any other iterator of results is
    drained into one by a thread of its own)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._items: collections.deque[T] = collections.deque()
        self._want = 0  # items the waiting consumer needs to be woken (0: it does not wait)
        self._closed = False
        self._error: BaseException | None = None

    def put(self, item: T) -> None:
        with self._cond:
            self._items.append(item)
            if self._want and len(self._items) >= self._want:
                self._want = 0
                self._cond.notify()

    def close(self, error: BaseException | None = None) -> None:
        """No more items; ``error`` is raised by ``take`` once the items before it are taken."""
        with self._cond:
            self._closed = True
            self._error = error
            self._want = 0
            self._cond.notify()

    def take(self, most: int, *, want: int = 1, until: float | None = None) -> list[T]:
        """Up to ``most`` items, once ``want`` of them have come (all there are at ``until``, a
        ``time.monotonic()`` time, or at the end). Without ``until`` an empty list means the
        end: no item is left and none will come. The producers' error is raised once the items
        before it are taken."""
        with self._cond:
            items = self._items
            while len(items) < want and not self._closed:
                timeout = None if until is None else until - time.monotonic()
                if timeout is not None and timeout <= 0:
                    break
                self._want = want
                self._cond.wait(timeout)
                self._want = 0
            if not items and self._closed and self._error is not None:
                raise self._error
            return [items.popleft() for _ in range(min(most, len(items)))]

    def __next__(self) -> T:
        got = self.take(1)
        if not got:
            raise StopIteration
        return got[0]
