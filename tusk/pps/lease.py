"""The scheduler lease: of several tuskd processes on one metadata store, exactly one runs the
scheduler. PostgreSQL: a session advisory lock held on a dedicated connection (it is released
by the database the moment that process dies). SQLite: an exclusive lock on a file beside the
database (one machine)."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import text

from tusk.meta import MetadataStore

log = logging.getLogger("tusk.lease")
LEASE_KEY = 0x7475736B  # "tusk"; paired with the schema, so deployments sharing a database
# in different schemas each get their own lease
RETRY_SECONDS = 1.0


class Lease(Protocol):
    def try_acquire(self) -> bool: ...

    def still_held(self) -> bool: ...

    def release(self) -> None: ...


class PostgresLease:
    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta
        self._conn: Any = None

    def try_acquire(self) -> bool:
        try:
            conn = self.meta.engine.connect()
            ok = bool(
                conn.execute(
                    text("SELECT pg_try_advisory_lock(:k, hashtext(current_schema()))"),
                    {"k": LEASE_KEY},
                ).scalar()
            )
            conn.commit()
        except Exception as exc:  # noqa: BLE001 - the database is away; try again later
            log.warning("scheduler lease: %s", exc)
            return False
        if ok:
            self._conn = conn
        else:
            conn.close()
        return ok

    def still_held(self) -> bool:
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            self._conn.commit()
            return True
        except Exception:  # noqa: BLE001 - the connection (and with it the lock) is gone
            self._conn = None
            return False

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.execute(
                    text("SELECT pg_advisory_unlock(:k, hashtext(current_schema()))"),
                    {"k": LEASE_KEY},
                )
                conn.commit()
            finally:
                conn.close()


class FileLease:
    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def still_held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def lease_for(meta: MetadataStore, home: str) -> Lease:
    if meta.dialect == "postgresql":
        return PostgresLease(meta)
    return FileLease(os.path.join(home, "scheduler.lock"))


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
        self._stop.set()
        self._thread.join(timeout=10)
        if self.leading:
            self.leading = False
            self.on_lose()
        self.lease.release()
