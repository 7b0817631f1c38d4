"""The scheduler lease: of several tuskd processes on one metadata store, exactly one runs the
scheduler. PostgreSQL: a session advisory lock held on a dedicated connection (it is released
by the database the moment that process dies). SQLite: an exclusive lock on a file beside the
database (one machine)."""

from __future__ import annotations

import fcntl
import logging
import os
from typing import Any, Protocol

from sqlalchemy import text

from tusk.meta.store import MetadataStore

log = logging.getLogger("tusk.lease")
LEASE_KEY = 0x7475736B  # "tusk"; paired with the schema, so deployments sharing a database
# in different schemas each get their own lease


class Lease(Protocol):
    """A lock that at most one process holds at a time."""

    def try_acquire(self) -> bool:
        """Take the lease if no one holds it; True if this process now does."""

    def still_held(self) -> bool:
        """Whether this process still holds the lease."""

    def release(self) -> None:
        """Give the lease up."""


class PostgresLease:
    """The lease as a PostgreSQL session advisory lock."""

    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta
        self._conn: Any = None

    def try_acquire(self) -> bool:
        """Take the advisory lock on a connection of its own, without waiting."""
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
        """Whether the lock's connection (and with it the lock) is still alive."""
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
        """Unlock and close the lock's connection."""
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
    """The lease as an exclusive lock on a file (one machine)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the file lock, without waiting."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def still_held(self) -> bool:
        """Whether this process holds the file lock."""
        return self._fd is not None

    def release(self) -> None:
        """Unlock and close the lock file."""
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def lease_for(meta: MetadataStore, home: str) -> Lease:
    """The lease that fits the store: an advisory lock on PostgreSQL, else a file in ``home``."""
    if meta.dialect == "postgresql":
        return PostgresLease(meta)
    return FileLease(os.path.join(home, "scheduler.lock"))
