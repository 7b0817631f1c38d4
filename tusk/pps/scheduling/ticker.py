"""A background thread that does one pass of work every half second (cron ticks, git polls)."""

from __future__ import annotations

import logging
import threading

TICK_SECONDS = 0.5


class Ticker:
    """Calls :meth:`step` every :data:`TICK_SECONDS` on a thread of its own until stopped; a pass
    that raises is logged and the next pass retries."""

    thread_name = "ticker"
    log = logging.getLogger("tusk.ticker")

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> None:
        """One pass of work."""
        raise NotImplementedError

    def start(self) -> None:
        """Start the passes in a background thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the passes (waits for the thread; a pass still running ends on its own)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            try:
                self.step()
            except Exception:  # noqa: BLE001 - keep going; the next pass retries
                self.log.exception("%s failed", self.thread_name)
