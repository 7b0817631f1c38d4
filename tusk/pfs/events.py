"""In-process change notification: waiters wake when any branch head or commit changes.

Waiters also re-check on a timeout, so changes made by another server process (sharing the
metadata store) are seen within that timeout.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from tusk.meta import after_commit


class ChangeFeed:
    """Counts changes and wakes waiters and listeners when one is published."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._version = 0
        self._listeners: list[Callable[[str, str, str], None]] = []

    @property
    def version(self) -> int:
        """The number of changes published so far."""
        return self._version

    def subscribe(self, listener: Callable[[str, str, str], None]) -> None:
        """Call ``listener(kind, repo, name)`` after each change (kind: head | finish | delete)."""
        self._listeners.append(listener)

    def publish(self, kind: str, repo: str, name: str) -> None:
        """Announce a change (kind: head | finish | delete) to waiters and listeners (inside
        ``MetadataStore.atomic``, once its transaction has committed)."""
        after_commit(lambda: self._announce(kind, repo, name))

    def _announce(self, kind: str, repo: str, name: str) -> None:
        with self._cond:
            self._version += 1
            self._cond.notify_all()
        for listener in list(self._listeners):
            listener(kind, repo, name)

    def wait(self, seen: int, timeout: float) -> int:
        """Block until the version moves past ``seen`` or ``timeout`` passes; return the version."""
        with self._cond:
            if self._version == seen:
                self._cond.wait(timeout)
            return self._version
