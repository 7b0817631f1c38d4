"""Switching a fresh SQLite database to WAL while another connection holds it."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from tusk.meta.store import _use_wal


def _reader_holding(path: Path) -> sqlite3.Connection:
    """A connection in a read transaction: no other connection can change the journal mode
    until it ends."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("CREATE TABLE t (x)")
    conn.execute("BEGIN")
    conn.execute("SELECT * FROM t").fetchall()
    return conn


def test_switch_waits_for_the_database_to_be_free(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    holder = _reader_holding(path)
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        other.execute("PRAGMA journal_mode=WAL")  # what SQLite does without the retry
    release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    release.start()
    started = time.monotonic()
    _use_wal(other, wait=10)
    release.join()
    assert time.monotonic() - started >= 0.25
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    _use_wal(holder)  # already WAL: nothing to switch
    assert holder.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_switch_gives_up_after_its_wait(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    holder = _reader_holding(path)
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _use_wal(other, wait=0.1)
    holder.execute("COMMIT")
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
