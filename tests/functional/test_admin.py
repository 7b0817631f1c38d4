"""Whole-deployment operations over HTTP on real stores: extract from SQLite and restore into
PostgreSQL (and back), refusals that change nothing, and garbage collection that keeps every
object in use.

PostgreSQL runs at ``TUSK_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/test``);
each engine on it gets a schema of its own.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tusk.client import Client
from tusk.errors import Conflict, InvalidArgument
from tusk.runtime import Engine, Settings
from tusk.testing.inprocess import serve_in_thread

POSTGRES_URL = os.environ.get("TUSK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def served(home: Path, backend: str) -> Iterator[Client]:
    """A client of an engine on ``backend`` (sqlite, or postgresql in a fresh schema)."""
    if backend == "sqlite":
        engine = Engine(Settings.for_home(home))
        try:
            with serve_in_thread(engine) as address, Client(address) as c:
                yield c
        finally:
            engine.close()
        return
    schema = "tusk_admin_" + uuid.uuid4().hex[:12]
    sep = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            engine = Engine(Settings.for_home(home, metadata_url=url))
            try:
                with serve_in_thread(engine) as address, Client(address) as c:
                    yield c
            finally:
                engine.close()
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def fill(c: Client) -> None:
    c.create_repo("images", "pictures")
    c.put_file("images", "master", "/a.txt", b"a" * 1000)
    c.put_file("images", "master", "/dir/b.txt", b"b\n")
    # a directory header: an object only the directory names (extract, restore and GC keep it)
    c.put_header("images", "master", "/dir", b"header of dir\n")
    c.create_branch("images", "v1", head="master")
    started = c.start_commit("images", "master", description="open one")
    c.put_file("images", started.commit.id, "/c.txt", b"open\n")
    c.create_repo("empty")


def view(c: Client) -> dict[str, Any]:
    """What a user sees, as comparable data."""
    out: dict[str, Any] = {"repos": [r.model_dump() for r in c.list_repo()]}
    for r in c.list_repo():
        out[r.name] = {
            "commits": [i.model_dump() for i in c.list_commit(r.name)],
            "branches": [b.model_dump() for b in c.list_branch(r.name)],
            "files": {
                i.commit.id: {
                    f.path: c.get_file_bytes(r.name, i.commit.id, f.path)
                    for f in c.walk_file(r.name, i.commit.id, "/")
                    if f.type == "file"
                }
                for i in c.list_commit(r.name)
            },
        }
    return out


@pytest.mark.parametrize(("source", "target"), [("sqlite", "postgresql"), ("postgresql", "sqlite")])
def test_extract_restore_across_metadata_backends(tmp_path: Path, source: str, target: str) -> None:
    with served(tmp_path / "a", source) as a:
        fill(a)
        before = view(a)
        stream = b"".join(a.admin.extract())
        metadata_only = b"".join(a.admin.extract(objects=False))
    assert len(metadata_only) < len(stream)
    with served(tmp_path / "b", target) as b:
        result = b.admin.restore(iter([stream]))
        assert result.rows["repos"] == 3 and result.objects > 0  # images, empty, __spec__
        assert view(b) == before
        # the open commit is still open and takes writes; the restored server is a working one
        open_id = [i for i in b.list_commit("images") if i.finished is None][0].commit.id
        b.put_file("images", open_id, "/d.txt", b"more\n")
        b.finish_commit("images", open_id)
        assert b.get_file_bytes("images", "master", "/c.txt") == b"open\n"


def test_restore_refuses_and_changes_nothing(tmp_path: Path) -> None:
    with served(tmp_path / "a", "sqlite") as a:
        fill(a)
        stream = b"".join(a.admin.extract())
        with pytest.raises(Conflict, match="restore needs an empty tusk server"):
            a.admin.restore(iter([stream]))
    with served(tmp_path / "b", "sqlite") as b:
        for bad, says in [
            (stream[: len(stream) // 2], "not a complete tusk extract"),
            (stream.replace(b'"format":1', b'"format":9', 1), "format 9"),
            (b"PK\x03\x04 a zip file", "not a tusk extract"),
        ]:
            with pytest.raises(InvalidArgument, match=says):
                b.admin.restore(iter([bad]))
            assert [r.name for r in b.list_repo()] == []
        b.admin.restore(iter([stream]))
        assert b.get_file_bytes("images", "master", "/dir/b.txt") == b"header of dir\nb\n"


def test_garbage_collect_keeps_what_is_used(tmp_path: Path) -> None:
    with served(tmp_path / "a", "sqlite") as a:
        fill(a)
        a.create_repo("scratch")
        a.put_file("scratch", "master", "/big", os.urandom(200_000))
        first = a.admin.garbage_collect()
        assert first.objects_deleted == 0  # nothing unused yet
        a.delete_repo("scratch")
        second = a.admin.garbage_collect()
        assert second.objects_deleted >= 1 and second.bytes_deleted >= 200_000
        assert a.admin.garbage_collect().objects_deleted == 0
        before = view(a)
        assert before["images"]["files"]  # every file of every commit still reads
        assert a.get_file_bytes("images", "master", "/dir/b.txt") == b"header of dir\nb\n"
        a.admin.delete_all()
        assert a.list_repo() == []
        assert a.admin.garbage_collect().objects_kept == 0
