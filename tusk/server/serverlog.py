"""The server's own log, kept in memory for ``get-logs`` without ``--pipeline``/``--job`` (1.7
shows pachd's logs then). ``install`` is called once by ``tuskd``; an in-process engine keeps no
server log."""

from __future__ import annotations

import collections
import logging
import sys
import threading
import time

from tusk.api.pps import LogLine

MAX_LINES = 5000


class _Ring(logging.Handler):
    """The last ``MAX_LINES`` records of the ``tusk`` loggers, numbered from 1."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: collections.deque[LogLine] = collections.deque(maxlen=MAX_LINES)
        self.count = 0
        self._guard = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
        except Exception:  # noqa: BLE001 - a bad log call must not break the caller
            text = str(record.msg)
        with self._guard:
            self.count += 1
            self.lines.append(
                LogLine(
                    pk=self.count,
                    pipeline="",
                    ts=record.created,
                    stream="stderr",
                    user=False,
                    message=f"{record.levelname.lower()} {record.name}: {text}",
                )
            )
            self._guard.notify_all()


_ring: _Ring | None = None


def install() -> None:
    """Keep the ``tusk`` loggers' INFO and above in memory; WARNING and above still go to
    stderr, as before."""
    global _ring
    if _ring is not None:
        return
    _ring = _Ring()
    root = logging.getLogger("tusk")
    root.setLevel(logging.INFO)
    root.addHandler(_ring)
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.WARNING)
    root.addHandler(stderr)
    logging.getLogger("tusk.server").info("tuskd started at %s", time.strftime("%Y-%m-%d %H:%M:%S"))


def lines(after: int = 0, wait: float = 0.0) -> list[LogLine]:
    """The kept lines numbered above ``after``, oldest first; with ``wait``, wait up to that
    many seconds (at most 30) for a first one."""
    if _ring is None:
        return []
    ring = _ring
    with ring._guard:
        ring._guard.wait_for(lambda: ring.count > after, timeout=min(wait, 30.0))
        return [line for line in ring.lines if line.pk > after]
