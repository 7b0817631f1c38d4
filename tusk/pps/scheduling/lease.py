"""Leader election over the metadata store's scheduler lease (:mod:`tusk.meta.lease`): of
several tuskd processes, the one holding the lease runs the scheduler."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from tusk.meta import Lease

log = logging.getLogger("tusk.lease")
RETRY_SECONDS = 1.0


class LeaderElection:
    """Keeps trying to take the lease; runs ``on_lead`` when it does and ``on_lose`` if the lease
    is lost (the database connection died), then tries again."""

    def __init__(
        self,
        lease: Lease,
        on_lead: Callable[[], None],
        on_lose: Callable[[], None],
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        self.lease = lease
        self.on_lead = on_lead
        self.on_lose = on_lose
        self.on_tick = on_tick
        self.leading = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scheduler-lease", daemon=True)

    def start(self, wait_first: bool = True) -> None:
        """Try the lease once now (unless told not to), then keep trying in a thread."""
        if wait_first and self.lease.try_acquire():
            self._lead()
        self._thread.start()

    def _lead(self) -> None:
        self.leading = True
        log.info("took the scheduler lease")
        self.on_lead()

    def _run(self) -> None:
        while not self._stop.wait(RETRY_SECONDS):
            if self.leading:
                if not self.lease.still_held():
                    log.warning("lost the scheduler lease; stepping down")
                    self.leading = False
                    self.on_lose()
                elif self.on_tick is not None:
                    try:
                        self.on_tick()
                    except Exception:  # noqa: BLE001 - try again next tick
                        log.exception("scheduler lease: reconciling pipelines failed")
            elif self.lease.try_acquire():
                self._lead()

    def stop(self) -> None:
        """Stop trying, step down if leading, and release the lease."""
        self._stop.set()
        self._thread.join(timeout=10)
        if self.leading:
            self.leading = False
            self.on_lose()
        self.lease.release()
