"""When a branch was made, through the PFS services on SQLite and PostgreSQL: the time of its
creation however it was created (``create-branch``, a put to a new branch, as another branch's
provenance), kept while its head moves, new when it is deleted and made again.

PostgreSQL runs at ``TUSK_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/test``),
a fresh schema per test; a PostgreSQL that cannot be reached fails the tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from tusk.meta import open_metadata_store
from tusk.pfs.commits import CommitService
from tusk.pfs.context import PfsContext
from tusk.pfs.files import FileService
from tusk.pfs.repos import RepoService
from tusk.pfs.tree import Tree
from tusk.storage import open_object_store

POSTGRES_URL = os.environ.get("TUSK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass
class Clock:
    """The services' clock, set by the test: every time it stores is the one set last."""

    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Pfs:
    repos: RepoService
    commits: CommitService
    files: FileService
    clock: Clock

    def put(self, repo: str, branch: str) -> str:
        batch = self.files.open_put(repo, branch)
        batch.begin_file("/f", overwrite=True)
        batch.write(str(self.clock.now).encode())
        batch.end_file()
        return batch.commit("").commit.id

    def created(self, repo: str, branch: str) -> datetime | None:
        return self.commits.inspect_branch(repo, branch).created


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tusk.db'}"
        return
    schema = "tusk_branch_" + uuid.uuid4().hex[:12]
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            sep = "&" if "?" in POSTGRES_URL else "?"
            yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def pfs(url: str, tmp_path: Path) -> Iterator[Pfs]:
    meta = open_metadata_store(url)
    store = open_object_store(f"file://{tmp_path / 'objects'}")
    clock = Clock()
    ctx = PfsContext(meta=meta, store=store, tree=Tree(store), clock=clock)
    try:
        yield Pfs(RepoService(ctx), CommitService(ctx), FileService(ctx), clock)
    finally:
        meta.close()


def test_a_branch_keeps_its_creation_time_while_its_head_moves(pfs: Pfs) -> None:
    pfs.repos.create("data")
    pfs.clock.now = 1_000.5
    first = pfs.put("data", "master")  # a put to a new branch makes it
    assert pfs.created("data", "master") == _at(1_000.5)

    pfs.clock.now = 2_000.0
    second = pfs.put("data", "master")
    pfs.clock.now = 3_000.0
    pfs.commits.create_branch("data", "master", head=first)  # moved back
    pfs.commits.start("data", "master")  # an open commit is its head
    info = pfs.commits.inspect_branch("data", "master")
    assert info.head not in (first, second) and info.created == _at(1_000.5)
    assert [(b.branch.name, b.created) for b in pfs.commits.list_branches("data")] == [
        ("master", _at(1_000.5))
    ]


def test_create_branch_and_provenance_record_when_they_made_the_branch(pfs: Pfs) -> None:
    pfs.repos.create("data")
    pfs.repos.create("out")
    pfs.clock.now = 4_000.0
    pfs.commits.create_branch("data", "empty")
    pfs.clock.now = 5_000.0
    # out@master and data@master (its provenance, missing until now) are made by one call
    pfs.commits.create_branch("out", "master", provenance=[("data", "master")])
    pfs.clock.now = 6_000.0
    pfs.commits.create_branch("out", "master", provenance=[("data", "empty")])  # updated only

    assert pfs.created("data", "empty") == _at(4_000.0)
    assert pfs.created("data", "master") == _at(5_000.0)
    assert pfs.created("out", "master") == _at(5_000.0)


def test_a_branch_deleted_and_made_again_has_a_new_creation_time(pfs: Pfs) -> None:
    pfs.repos.create("data")
    pfs.clock.now = 7_000.0
    head = pfs.put("data", "dev")
    pfs.commits.delete_branch("data", "dev")
    pfs.clock.now = 8_000.0
    pfs.commits.create_branch("data", "dev", head=head)
    info = pfs.commits.inspect_branch("data", "dev")
    assert info.head == head and info.created == _at(8_000.0)
