"""The contract every metadata store backend passes. Subclass ``MetadataContract`` and override
the ``meta`` fixture to run it against a backend.

PostgreSQL runs at ``TUSK_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/test``);
each test gets a schema of its own. A PostgreSQL that cannot be reached fails the tests: the
contract of a backend that was not run is not met.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from tusk.errors import AlreadyExists
from tusk.meta import BranchRow, CommitRow, MetadataStore, RepoRow
from tusk.meta import schema as s

POSTGRES_URL = os.environ.get("TUSK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _commit(repo: str, cid: str, parent: str | None = None, **kw: object) -> CommitRow:
    return CommitRow(repo=repo, id=cid, started=1.0, parent=parent, **kw)  # type: ignore[arg-type]


def _id(n: int) -> str:
    return f"{n:032x}"


class _Rollback(Exception):
    pass


class MetadataContract:
    @pytest.fixture
    def meta(self) -> Iterator[MetadataStore]:
        raise NotImplementedError("override the meta fixture")

    # -- repos -------------------------------------------------------------------------------
    def test_insert_and_get_repo(self, meta: MetadataStore) -> None:
        with meta.transaction() as tx:
            tx.insert_repo(RepoRow("images", 10.0, "pictures", 0, "user"))
        with meta.transaction(write=False) as tx:
            assert tx.get_repo("images") == RepoRow("images", 10.0, "pictures", 0, "user")
            assert tx.get_repo("missing") is None

    def test_duplicate_repo_is_already_exists_and_keeps_the_transaction(
        self, meta: MetadataStore
    ) -> None:
        with meta.transaction() as tx:
            tx.insert_repo(RepoRow("images", 1.0))
            with pytest.raises(AlreadyExists, match="repo images already exists"):
                tx.insert_repo(RepoRow("images", 2.0, "other"))
            # the failed insert must not poison the rest of the transaction
            tx.insert_repo(RepoRow("edges", 3.0))
        with meta.transaction(write=False) as tx:
            assert [r.name for r in tx.list_repos()] == ["edges", "images"]
            repo = tx.get_repo("images")
            assert repo is not None and repo.description == ""

    def test_list_repos_newest_first_then_by_name(self, meta: MetadataStore) -> None:
        with meta.transaction() as tx:
            tx.insert_repo(RepoRow("old", 1.0))
            tx.insert_repo(RepoRow("new-b", 5.0))
            tx.insert_repo(RepoRow("new-a", 5.0))
            tx.insert_repo(RepoRow("mid", 3.0))
        with meta.transaction(write=False) as tx:
            assert [r.name for r in tx.list_repos()] == ["new-a", "new-b", "mid", "old"]

    def test_update_repo_and_size(self, meta: MetadataStore) -> None:
        with meta.transaction() as tx:
            tx.insert_repo(RepoRow("r", 1.0))
            tx.update_repo("r", description="d", kind="output")
            tx.add_repo_size("r", 100)
            tx.add_repo_size("r", -30)
        with meta.transaction(write=False) as tx:
            assert tx.get_repo("r") == RepoRow("r", 1.0, "d", 70, "output")

    def test_delete_repo_removes_its_commits_branches_and_provenance(
        self, meta: MetadataStore
    ) -> None:
        with meta.transaction() as tx:
            tx.insert_repo(RepoRow("a", 1.0))
            tx.insert_repo(RepoRow("b", 2.0))
            tx.insert_commit(_commit("a", _id(1)))
            tx.insert_commit(_commit("b", _id(2)))
            tx.insert_commit(_commit("a", _id(3), _id(1)), [("b", _id(2), "master")])
            tx.insert_branch(BranchRow("a", "master", _id(3), 1.0))
            tx.insert_branch(BranchRow("b", "master", _id(2), 1.0))
            tx.set_branch_provenance("a", "master", [("b", "master")])
        with meta.transaction() as tx:
            tx.delete_repo("a")
        with meta.transaction(write=False) as tx:
            assert tx.get_repo("a") is None
            assert tx.list_commits("a") == []
            assert tx.get_commit("a", _id(3)) is None
            assert tx.list_branches("a") == []
            assert tx.commit_provenance("a", _id(3)) == []
            assert tx.commit_subvenance("b", _id(2)) == []
            assert tx.branch_subvenance("b", "master") == []
            # the other repo is untouched
            assert [c.id for c in tx.list_commits("b")] == [_id(2)]
            assert tx.get_branch("b", "master") == BranchRow("b", "master", _id(2), 1.0)
        with meta.transaction() as tx:  # the name is free again
            tx.insert_repo(RepoRow("a", 9.0))
            tx.insert_commit(_commit("a", _id(1)))

    # -- commits -----------------------------------------------------------------------------
    def test_insert_commit_round_trips_every_field(self, meta: MetadataStore) -> None:
        row = CommitRow(
            repo="r",
            id=_id(1),
            started=1.5,
            parent=None,
            branch="master",
            origin="auto",
            finished=2.5,
            tree="t" * 64,
            size_bytes=1 << 40,
            description="first",
            failed=True,
            reason="boom",
        )
        with meta.transaction() as tx:
            tx.insert_repo(RepoRow("r", 1.0))
            stored = tx.insert_commit(row)
        assert stored.pk > 0
        with meta.transaction(write=False) as tx:
            got = tx.get_commit("r", _id(1))
        assert got == replace(row, pk=stored.pk)
        assert stored == replace(row, pk=stored.pk)

    def test_duplicate_commit_is_already_exists(self, meta: MetadataStore) -> None:
        with meta.transaction() as tx:
            tx.insert_repo(RepoRow("r", 1.0))
            tx.insert_commit(_commit("r", _id(1)))
            with pytest.raises(AlreadyExists):
                tx.insert_commit(_commit("r", _id(1)))
            tx.insert_commit(_commit("r", _id(2)))
        with meta.transaction(write=False) as tx:
            assert tx.count_commits("r") == 2

    def test_same_commit_id_in_two_repos_is_a_commit_set(self, meta: MetadataStore) -> None:
        with meta.transaction() as tx:
            tx.insert_repo(RepoRow("a", 1.0))
            tx.insert_repo(RepoRow("b", 1.0))
            tx.insert_commit(_commit("a", _id(7)))
            tx.insert_commit(_commit("b", _id(7)))
        with meta.transaction(write=False) as tx:
            assert [(c.repo, c.id) for c in tx.commits_with_id(_id(7))] == [
                ("a", _id(7)),
                ("b", _id(7)),
            ]
            assert tx.commits_with_id(_id(8)) == []

    def test_list_commits_newest_first_with_limit(self, meta: MetadataStore) -> None:
        with meta.transaction() as tx:
            tx.insert_repo(RepoRow("r", 1.0))
            for i in range(1, 6):
                tx.insert_commit(_commit("r", _id(i), _id(i - 1) if i > 1 else None))
        with meta.transaction(write=False) as tx:
            assert [c.id for c in tx.list_commits("r")] == [_id(i) for i in range(5, 0, -1)]
            assert [c.id for c in tx.list_commits("r", limit=2)] == [_id(5), _id(4)]
            assert tx.count_commits("r") == 5

    def test_provenance_and_subvenance(self, meta: MetadataStore) -> None:
        with meta.transaction() as tx:
            for name in ("in1", "in2", "out"):
                tx.insert_repo(RepoRow(name, 1.0))
            tx.insert_commit(_commit("in1", _id(1)))
            tx.insert_commit(_commit("in2", _id(2)))
            prov = [("in1", _id(1), "master"), ("in2", _id(2), None), ("in1", _id(1), "master")]
            tx.insert_commit(_commit("out", _id(10)), prov)
            tx.insert_commit(_commit("out", _id(11), _id(10)), [("in1", _id(1), "master")])
        with meta.transaction(write=False) as tx:
            assert sorted(tx.commit_provenance("out", _id(10)), key=str) == sorted(
                [("in1", _id(1), "master"), ("in2", _id(2), None)], key=str
            )
            assert tx.commit_subvenance("in1", _id(1)) == [("out", _id(10)), ("out", _id(11))]
            assert tx.commit_subvenance("in2", _id(2)) == [("out", _id(10))]
            assert tx.commit_subvenance("out", _id(10)) == []

    def test_children_in_creation_order(self, meta: MetadataStore) -> None:
        with meta.transaction() as tx:
            tx.insert_repo(RepoRow("r", 1.0))
            tx.insert_commit(_commit("r", _id(1)))
            tx.insert_commit(_commit("r", _id(9), _id(1)))
            tx.insert_commit(_commit("r", _id(3), _id(1)))
            tx.insert_commit(_commit("r", _id(4), _id(3)))
        with meta.transaction(write=False) as tx:
            assert tx.children("r", _id(1)) == [_id(9), _id(3)]
            assert tx.children("r", _id(4)) == []

    def test_update_commit_expect_open(self, meta: MetadataStore) -> None:
        with meta.transaction() as tx:
            tx.insert_repo(RepoRow("r", 1.0))
            tx.insert_commit(_commit("r", _id(1)))
        with meta.transaction() as tx:
            assert tx.update_commit("r", _id(1), expect_open=True, finished=5.0, size_bytes=3)
        with meta.transaction() as tx:
            assert not tx.update_commit("r", _id(1), expect_open=True, finished=6.0)
            assert not tx.update_commit("r", _id(404), description="x")
        with meta.transaction(write=False) as tx:
            row = tx.get_commit("r", _id(1))
        assert row is not None and (row.finished, row.size_bytes) == (5.0, 3)

    def test_update_commit_expect_tree_is_compare_and_swap(self, meta: MetadataStore) -> None:
        with meta.transaction() as tx:
            tx.insert_repo(RepoRow("r", 1.0))
            tx.insert_commit(_commit("r", _id(1), tree=None))
        with meta.transaction() as tx:
            assert not tx.update_commit("r", _id(1), expect_tree="a" * 64, tree="b" * 64)
            assert tx.update_commit("r", _id(1), expect_tree=None, tree="a" * 64)
            assert not tx.update_commit("r", _id(1), expect_tree=None, tree="c" * 64)
            assert tx.update_commit("r", _id(1), expect_tree="a" * 64, tree="b" * 64)
            assert not tx.update_commit("r", _id(1), expect_tree="a" * 64, tree="c" * 64)
        with meta.transaction(write=False) as tx:
            row = tx.get_commit("r", _id(1))
        assert row is not None and row.tree == "b" * 64

    def test_delete_commit_and_reparent(self, meta: MetadataStore) -> None:
        with meta.transaction() as tx:
            tx.insert_repo(RepoRow("r", 1.0))
            tx.insert_repo(RepoRow("out", 1.0))
            tx.insert_commit(_commit("r", _id(1)))
            tx.insert_commit(_commit("r", _id(2), _id(1)))
            tx.insert_commit(_commit("r", _id(3), _id(2)))
            tx.insert_commit(_commit("r", _id(4), _id(2)))
            tx.insert_commit(_commit("out", _id(2)), [("r", _id(2), "master")])
        with meta.transaction() as tx:
            tx.reparent("r", _id(2), _id(1))
            tx.delete_commit("r", _id(2))
        with meta.transaction(write=False) as tx:
            assert tx.get_commit("r", _id(2)) is None
            assert tx.children("r", _id(1)) == [_id(3), _id(4)]
            assert tx.count_commits("r") == 3
            # a commit of the same id in another repo is a different commit
            assert tx.get_commit("out", _id(2)) is not None
        with meta.transaction() as tx:
            tx.reparent("r", _id(1), None)
            tx.delete_commit("r", _id(1))
            tx.delete_commit("out", _id(2))
        with meta.transaction(write=False) as tx:
            roots = [c for c in tx.list_commits("r") if c.parent is None]
            assert sorted(c.id for c in roots) == [_id(3), _id(4)]
            assert tx.commit_provenance("out", _id(2)) == []

    # -- branches ----------------------------------------------------------------------------
    def test_insert_get_list_branches(self, meta: MetadataStore) -> None:
        with meta.transaction() as tx:
            tx.insert_repo(RepoRow("r", 1.0))
            tx.insert_commit(_commit("r", _id(1)))
            tx.insert_branch(BranchRow("r", "master", _id(1), 1.0))
            tx.insert_branch(BranchRow("r", "dev", None, 2.0))
            with pytest.raises(AlreadyExists, match="branch master already exists"):
                tx.insert_branch(BranchRow("r", "master", None, 3.0))
        with meta.transaction(write=False) as tx:
            assert tx.get_branch("r", "master") == BranchRow("r", "master", _id(1), 1.0)
            assert tx.get_branch("r", "dev") == BranchRow("r", "dev", None, 2.0)
            assert tx.get_branch("r", "nope") is None
            assert [b.name for b in tx.list_branches("r")] == ["dev", "master"]
            assert tx.branches_at("r", _id(1)) == ["master"]

    def test_set_branch_head_compare_and_swap(self, meta: MetadataStore) -> None:
        with meta.transaction() as tx:
            tx.insert_repo(RepoRow("r", 1.0))
            tx.insert_branch(BranchRow("r", "master", None, 1.0))
        with meta.transaction() as tx:
            assert not tx.set_branch_head("r", "master", _id(2), expect=_id(1))
            assert tx.set_branch_head("r", "master", _id(1), expect=None)
            assert not tx.set_branch_head("r", "master", _id(2), expect=None)
            assert tx.set_branch_head("r", "master", _id(2), expect=_id(1))
            assert tx.set_branch_head("r", "master", None, expect=_id(2))
            assert tx.set_branch_head("r", "master", _id(3))  # unconditional
            assert not tx.set_branch_head("r", "missing", _id(3))
        with meta.transaction(write=False) as tx:
            b = tx.get_branch("r", "master")
        assert b is not None and b.head == _id(3)

    def test_branch_provenance_and_subvenance(self, meta: MetadataStore) -> None:
        with meta.transaction() as tx:
            for name in ("a", "b", "p"):
                tx.insert_repo(RepoRow(name, 1.0))
                tx.insert_branch(BranchRow(name, "master", None, 1.0))
            tx.set_branch_provenance("p", "master", [("b", "master"), ("a", "master")])
        with meta.transaction(write=False) as tx:
            assert tx.branch_provenance("p", "master") == [("a", "master"), ("b", "master")]
            assert tx.branch_subvenance("a", "master") == [("p", "master")]
            assert tx.branch_provenance("a", "master") == []
        with meta.transaction() as tx:  # replacing provenance replaces it, not adds to it
            tx.set_branch_provenance("p", "master", [("a", "master"), ("a", "master")])
        with meta.transaction(write=False) as tx:
            assert tx.branch_provenance("p", "master") == [("a", "master")]
            assert tx.branch_subvenance("b", "master") == []
        with meta.transaction() as tx:
            tx.delete_branch("p", "master")
        with meta.transaction(write=False) as tx:
            assert tx.get_branch("p", "master") is None
            assert tx.branch_subvenance("a", "master") == []

    # -- transactions ------------------------------------------------------------------------
    def test_exception_rolls_the_whole_transaction_back(self, meta: MetadataStore) -> None:
        with pytest.raises(_Rollback), meta.transaction() as tx:
            tx.insert_repo(RepoRow("r", 1.0))
            tx.insert_commit(_commit("r", _id(1)))
            raise _Rollback
        with meta.transaction(write=False) as tx:
            assert tx.get_repo("r") is None
            assert tx.get_commit("r", _id(1)) is None

    # -- generic rows and settings -----------------------------------------------------------
    def test_generic_rows(self, meta: MetadataStore) -> None:
        pipe = {
            "name": "edges",
            "version": 1,
            "salt": "s",
            "spec": "{}",
            "spec_commit": _id(1),
            "state": "running",
            "created": 1.0,
            "updated": 1.0,
        }
        with meta.transaction() as tx:
            assert tx.insert(s.pipelines, **pipe) == 0  # no integer key
            with pytest.raises(AlreadyExists):
                tx.insert(s.pipelines, **pipe)
            job = {"pipeline": "edges", "version": 1, "spec_commit": _id(1), "created": 1.0}
            k1 = tx.insert(s.jobs, id=_id(1), state="running", **job)
            k2 = tx.insert(s.jobs, id=_id(2), state="success", **job)
            assert 0 < k1 < k2
            tx.insert_many(
                s.logs,
                [{"pipeline": "edges", "ts": float(i), "message": f"line {i}"} for i in range(5)],
            )
            tx.insert_many(s.logs, [])
        with meta.transaction() as tx:
            got = tx.row(s.pipelines, name="edges")
            assert got is not None and got["stopped"] is False and got["reason"] == ""
            assert tx.row(s.pipelines, name="nope") is None
            jobs = tx.rows(s.jobs, {"pipeline": "edges"}, order_by=[s.jobs.c.pk.desc()])
            assert [j["id"] for j in jobs] == [_id(2), _id(1)]
            assert jobs[0]["processed"] == 0 and jobs[0]["bytes_up"] == 0
            picked = tx.rows(s.jobs, {"state": ["success", "failed"]})
            assert [j["id"] for j in picked] == [_id(2)]
            logs = tx.rows(s.logs, {"pipeline": "edges"}, order_by=[s.logs.c.pk], limit=2)
            assert [x["message"] for x in logs] == ["line 0", "line 1"]
            assert tx.update_rows(s.jobs, {"pipeline": "edges"}, state="killed") == 2
            assert tx.update_rows(s.jobs, {"id": _id(9)}, state="killed") == 0
            assert tx.delete_rows(s.jobs, id=_id(1)) == 1
            assert [j["state"] for j in tx.rows(s.jobs)] == ["killed"]

    def test_rows_in_many_values(self, meta: MetadataStore) -> None:
        ids = [_id(i) for i in range(1200)]
        with meta.transaction() as tx:
            tx.insert_many(
                s.datum_cache,
                [{"pipeline": "p", "hash": h, "manifest": "[]", "job_id": _id(0)} for h in ids],
            )
        with meta.transaction(write=False) as tx:
            got = tx.rows_in(s.datum_cache, "hash", [*ids[::2], ids[0], _id(99999)], pipeline="p")
            assert sorted(r["hash"] for r in got) == ids[::2]
            assert tx.rows_in(s.datum_cache, "hash", ids, pipeline="other") == []

    def test_settings_and_schema_version(self, meta: MetadataStore) -> None:
        with meta.transaction() as tx:
            assert tx.get_setting("schema_version") == str(s.SCHEMA_VERSION)
            assert tx.get_setting("missing") is None
            tx.put_setting("k", "1")
            tx.put_setting("k", "2")
        with meta.transaction(write=False) as tx:
            assert tx.get_setting("k") == "2"

    def test_reopening_keeps_data(self, meta: MetadataStore) -> None:
        with meta.transaction() as tx:
            tx.insert_repo(RepoRow("r", 1.0))
        again = MetadataStore(meta.url)
        try:
            with again.transaction(write=False) as tx:
                assert tx.get_repo("r") is not None
                assert tx.get_setting("schema_version") == str(s.SCHEMA_VERSION)
        finally:
            again.close()

    # -- concurrency -------------------------------------------------------------------------
    def test_concurrent_compare_and_swap_on_one_head_loses_nothing(
        self, meta: MetadataStore
    ) -> None:
        threads, per_thread = 8, 15
        with meta.transaction() as tx:
            tx.insert_repo(RepoRow("r", 1.0))
            tx.insert_branch(BranchRow("r", "master", None, 1.0))
        errors: list[BaseException] = []
        landed: list[str] = []
        lock = threading.Lock()
        start = threading.Barrier(threads)

        def writer() -> None:
            try:
                start.wait()
                done = 0
                while done < per_thread:
                    with meta.transaction(write=False) as tx:
                        b = tx.get_branch("r", "master")
                        assert b is not None
                        head = b.head
                    cid = uuid.uuid4().hex
                    try:
                        with meta.transaction() as tx:
                            tx.insert_commit(_commit("r", cid, head))
                            if not tx.set_branch_head("r", "master", cid, expect=head):
                                raise _Rollback
                    except _Rollback:
                        continue
                    done += 1
                    with lock:
                        landed.append(cid)
            except BaseException as e:  # noqa: BLE001 - reported by the main thread
                errors.append(e)

        workers = [threading.Thread(target=writer) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=120)
        assert not any(w.is_alive() for w in workers)
        assert errors == []
        with meta.transaction(write=False) as tx:
            b = tx.get_branch("r", "master")
            assert b is not None
            chain: list[str] = []
            cur = b.head
            while cur is not None:
                chain.append(cur)
                row = tx.get_commit("r", cur)
                assert row is not None
                cur = row.parent
            # rolled-back attempts leave no commit behind
            assert tx.count_commits("r") == threads * per_thread
        assert len(chain) == threads * per_thread
        assert sorted(chain) == sorted(landed)


class TestSqliteMetadata(MetadataContract):
    @pytest.fixture
    def meta(self, tmp_path: Path) -> Iterator[MetadataStore]:
        store = MetadataStore(f"sqlite:///{tmp_path / 'meta' / 'tusk.db'}")
        try:
            yield store
        finally:
            store.close()


class TestPostgresMetadata(MetadataContract):
    @pytest.fixture
    def meta(self) -> Iterator[MetadataStore]:
        schema = "tusk_test_" + uuid.uuid4().hex[:12]
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f"CREATE SCHEMA {schema}")
            try:
                sep = "&" if "?" in POSTGRES_URL else "?"
                store = MetadataStore(f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}")
                try:
                    yield store
                finally:
                    store.close()
            finally:
                admin.execute(f"DROP SCHEMA {schema} CASCADE")
