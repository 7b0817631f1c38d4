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
from sqlalchemy import func, select

from tusk.api.pps import DatumState, JobState, PipelineState
from tusk.errors import AlreadyExists
from tusk.meta import (
    BranchRow,
    CachedDatum,
    CommitRow,
    DatumLines,
    DatumOutcome,
    DatumRecord,
    JobCounters,
    JobFilter,
    JobRecord,
    LogFilter,
    LogRecord,
    MetadataStore,
    OpenTransactionRow,
    PipelineRecord,
    ProjectRow,
    RepoRow,
    SecretRecord,
    after_commit,
)
from tusk.meta import schema as s

POSTGRES_URL = os.environ.get("TUSK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _commit(repo: str, cid: str, parent: str | None = None, **kw: object) -> CommitRow:
    return CommitRow(repo=repo, id=cid, started=1.0, parent=parent, **kw)  # type: ignore[arg-type]


def _id(n: int) -> str:
    return f"{n:032x}"


def _job(pipeline: str, n: int, state: JobState = JobState.STARTING) -> JobRecord:
    return JobRecord(
        pipeline=pipeline, id=_id(n), version=1, spec_commit=_id(0), state=state, created=1.0
    )


def _datum(pipeline: str, n: int, idx: int) -> DatumRecord:
    return DatumRecord(
        pipeline, _id(n), idx, f"d{idx}", f"h{idx}", DatumState.PENDING, f'[{{"path": "/{idx}"}}]'
    )


def _cached(pipeline: str, h: str, manifest: str = "{}") -> CachedDatum:
    return CachedDatum(pipeline=pipeline, hash=h, manifest=manifest, bytes_up=0, job_id=_id(0))


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
        assert b == BranchRow("r", "master", _id(3), 1.0)  # moving the head keeps its creation

    def test_branch_deleted_and_inserted_again_has_the_new_creation_time(
        self, meta: MetadataStore
    ) -> None:
        with meta.transaction() as tx:
            tx.insert_repo(RepoRow("r", 1.0))
            tx.insert_branch(BranchRow("r", "dev", None, 1.5))
        with meta.transaction() as tx:
            tx.delete_branch("r", "dev")
            tx.insert_branch(BranchRow("r", "dev", None, 2.25))
        with meta.transaction(write=False) as tx:
            assert tx.get_branch("r", "dev") == BranchRow("r", "dev", None, 2.25)
            assert tx.list_branches("r") == [BranchRow("r", "dev", None, 2.25)]

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

    # -- pipelines, jobs, datums, logs (PPS) --------------------------------------------------
    def test_pipelines(self, meta: MetadataStore) -> None:
        pipe = PipelineRecord(
            name="edges",
            version=1,
            salt="s",
            spec="{}",
            spec_commit=_id(1),
            state=PipelineState.RUNNING,
            created=1.0,
            updated=1.0,
        )
        with meta.transaction() as tx:
            tx.insert_pipeline(pipe)
            with pytest.raises(AlreadyExists):
                tx.insert_pipeline(pipe)
            tx.insert_pipeline(replace(pipe, name="later", created=2.0))
        with meta.transaction() as tx:
            got = tx.get_pipeline("edges")
            assert got == pipe and got.stopped is False and got.reason == ""
            assert got.state is PipelineState.RUNNING
            assert tx.get_pipeline("nope") is None
            assert [p.name for p in tx.list_pipelines()] == ["later", "edges"]  # newest first
            assert tx.update_pipeline(
                "edges", version=2, state=PipelineState.PAUSED, stopped=True, spec_commit=_id(2)
            )
            assert not tx.update_pipeline("nope", version=2)
        with meta.transaction(write=False) as tx:
            assert tx.get_pipeline("edges") == replace(
                pipe, version=2, state=PipelineState.PAUSED, stopped=True, spec_commit=_id(2)
            )

    def test_delete_pipeline_takes_its_jobs_datums_and_outputs(self, meta: MetadataStore) -> None:
        with meta.transaction() as tx:
            for name in ("a", "b"):
                tx.insert_pipeline(
                    PipelineRecord(name, 1, "s", "{}", _id(1), PipelineState.RUNNING, 1.0, 1.0)
                )
                tx.insert_job(_job(name, 1))
                tx.insert_datums([_datum(name, 1, 0)])
                tx.record_results(name, _id(1), [], [_cached(name, "h0")], [], JobCounters())
        with meta.transaction() as tx:
            tx.delete_pipeline("a")
        with meta.transaction(write=False) as tx:
            assert [p.name for p in tx.list_pipelines()] == ["b"]
            assert [j.pipeline for j in tx.list_jobs()] == ["b"]
            assert tx.list_datums("a", _id(1)) == [] and len(tx.list_datums("b", _id(1))) == 1
            assert tx.cached_hashes("a", ["h0"]) == set()
            assert tx.cached_hashes("b", ["h0"]) == {"h0"}

    def test_jobs(self, meta: MetadataStore) -> None:
        with meta.transaction() as tx:
            k1 = tx.insert_job(_job("edges", 1, state=JobState.RUNNING)).pk
            k2 = tx.insert_job(_job("edges", 2, state=JobState.SUCCESS)).pk
            assert 0 < k1 < k2
            with pytest.raises(AlreadyExists):
                tx.insert_job(_job("edges", 1))
            tx.insert_job(_job("other", 1))  # one change, one id: shared by pipelines
        with meta.transaction(write=False) as tx:
            jobs = tx.list_jobs(JobFilter(pipeline="edges"))
            assert [j.id for j in jobs] == [_id(2), _id(1)]
            assert jobs[0].processed == 0 and jobs[0].bytes_up == 0
            assert jobs[0].state is JobState.SUCCESS
            picked = tx.list_jobs(JobFilter(states=[JobState.SUCCESS, JobState.FAILURE]))
            assert [j.id for j in picked] == [_id(2)]
            assert [j.pipeline for j in tx.list_jobs(JobFilter(id=_id(1)))] == ["other", "edges"]
            oldest = tx.list_jobs(JobFilter(unfinished=True, newest_first=False, limit=1))
            assert [(j.pipeline, j.id) for j in oldest] == [("edges", _id(1))]
            assert tx.list_jobs(JobFilter(pipeline="edges", limit=1))[0].id == _id(2)
            assert tx.job_counts("edges") == {"running": 1, "success": 1}
            assert tx.get_job("edges", _id(9)) is None
        with meta.transaction() as tx:
            tx.start_job("other", _id(1), started=5.0, total=4, skipped=1, processed=1)
            tx.set_job_counters("other", _id(1), JobCounters(processed=2, bytes_up=7, recovered=3))
            tx.add_job_restart("other", _id(1))
            assert tx.end_job("other", _id(1), JobState.KILLED, 9.0, "stopped")
            assert not tx.end_job("other", _id(1), JobState.SUCCESS, 10.0)  # ended already
        with meta.transaction(write=False) as tx:
            job = tx.get_job("other", _id(1))
            assert job is not None
            assert (job.state, job.started, job.finished, job.reason) == (
                JobState.KILLED,
                5.0,
                9.0,
                "stopped",
            )
            assert (job.total, job.skipped, job.processed, job.bytes_up, job.restarts) == (
                4,
                1,
                2,
                7,
                1,
            )
            assert job.recovered == 3 and job.counters.recovered == 3
        with meta.transaction() as tx:
            tx.insert_datums([_datum("edges", 1, 0)])
            tx.delete_job("edges", _id(1))
        with meta.transaction(write=False) as tx:
            assert [j.state for j in tx.list_jobs(JobFilter(pipeline="edges"))] == [
                JobState.SUCCESS
            ]
            assert tx.list_datums("edges", _id(1)) == []

    def test_stored_outputs_are_indexed_by_the_files_they_wrote(self, meta: MetadataStore) -> None:
        with meta.transaction() as tx:
            tx.insert_job(_job("p", 1))
            tx.insert_datums([_datum("p", 1, i) for i in range(2)])
            both = CachedDatum("p", "h0", "{}", 0, _id(1), ("/a/x", "/all", "/all"))
            tx.record_results("p", _id(1), [], [both], [], JobCounters())
            tx.record_results("p", _id(1), [], [_cached("p", "h1")], [], JobCounters())
            # stored again (a resumed job): nothing doubles
            tx.record_results("p", _id(1), [], [both], [], JobCounters())
            other = CachedDatum("q", "h0", "{}", 0, _id(2), ("/all",))
            tx.record_results("q", _id(2), [], [other], [], JobCounters())
        with meta.transaction(write=False) as tx:
            assert tx.datums_that_wrote("p", "/all") == [("h0", _id(1))]
            assert tx.datums_that_wrote("p", "/a/x") == [("h0", _id(1))]
            assert tx.datums_that_wrote("p", "/a") == []
            rows = tx.datums_by_hash("p", [("h1", _id(1)), ("h7", _id(1))])
            assert list(rows) == ["h1"]  # no row of h7
            assert (rows["h1"].idx, rows["h1"].job_id) == (1, _id(1))
            # the row of another job when the one asked for has none
            assert tx.datums_by_hash("p", [("h1", _id(9))]) == rows
        with meta.transaction() as tx:
            tx.delete_pipeline("p")
        with meta.transaction(write=False) as tx:
            assert tx.datums_that_wrote("p", "/all") == []
            assert tx.datums_that_wrote("q", "/all") == [("h0", _id(2))]

    def test_datums_and_stored_outputs(self, meta: MetadataStore) -> None:
        with meta.transaction() as tx:
            tx.insert_job(_job("p", 1))
            tx.insert_datums([_datum("p", 1, i) for i in range(3)])
        with meta.transaction(write=False) as tx:
            full = tx.list_datums("p", _id(1))
            assert [d.idx for d in full] == [0, 1, 2]
            assert full[0].inputs == '[{"path": "/0"}]' and full[0].state is DatumState.PENDING
            assert [d.inputs for d in tx.list_datums("p", _id(1), brief=True)] == ["", "", ""]
        outcomes = [
            DatumOutcome(0, DatumState.SUCCESS, 1, "", 3, 4, 0.5, "w1"),
            DatumOutcome(1, DatumState.FAILED, 3, "boom", 3, 0, 0.1, "w2"),
        ]
        # placeholders and quotes in a line are the line's (rows go to the driver as they are)
        logs = [
            DatumLines("d1", "w1", [(float(i), "stdout", f"line {i}") for i in range(2)]),
            DatumLines("d2", "w2", [(2.0, "stdout", "50% done? 'yes' %s %(x)s")]),  # a row alone
        ]
        with meta.transaction() as tx:
            state = tx.record_results(
                "p", _id(1), outcomes, [_cached("p", "h0")], logs, JobCounters(processed=1)
            )
            assert state is JobState.STARTING
            # a result stored twice (a resumed job) keeps the first output
            tx.record_results("p", _id(1), [], [_cached("p", "h0", "other")], [], JobCounters(1))
        with meta.transaction(write=False) as tx:
            d0, d1, d2 = tx.list_datums("p", _id(1))
            assert (d0.state, d0.tries, d0.bytes_up, d0.seconds, d0.worker) == (
                DatumState.SUCCESS,
                1,
                4,
                0.5,
                "w1",
            )
            assert (d1.state, d1.reason, d1.tries) == (DatumState.FAILED, "boom", 3)
            assert d2.state is DatumState.PENDING and d2.tries == 0
            assert tx.cached_outputs("p", ["h0", "h9"]) == {"h0": "{}"}
            job = tx.get_job("p", _id(1))
            assert job is not None and job.processed == 1
            assert [r.message for r in tx.list_logs(LogFilter(pipeline="p"))] == [
                "line 0",
                "line 1",
                "50% done? 'yes' %s %(x)s",
            ]
        with meta.transaction() as tx:
            tx.end_job("p", _id(1), JobState.KILLED, 2.0)
            # an ended job keeps its counters; the caller sees its state and rolls back
            state = tx.record_results("p", _id(1), [], [], [], JobCounters(processed=9))
            assert state is JobState.KILLED
            assert tx.record_results("p", _id(5), [], [], [], JobCounters()) is None
        with meta.transaction(write=False) as tx:
            job = tx.get_job("p", _id(1))
            assert job is not None and job.processed == 1

    def test_unsettled_and_recovered_datums_are_found_by_the_database(
        self, meta: MetadataStore
    ) -> None:
        states = [
            DatumState.SUCCESS,
            DatumState.PENDING,
            DatumState.RECOVERED,
            DatumState.FAILED,
            DatumState.SKIPPED,
            DatumState.RUNNING,
            DatumState.RECOVERED,
        ]
        with meta.transaction() as tx:
            tx.insert_job(_job("p", 1))
            tx.insert_job(_job("p", 2))
            tx.insert_datums([_datum("p", 1, i) for i in range(len(states))])
            tx.insert_datums([_datum("p", 2, 0)])
            outcomes = [
                DatumOutcome(i, state, i, "", 0, 0, 0.0, "w") for i, state in enumerate(states)
            ]
            tx.record_results("p", _id(1), outcomes, [], [], JobCounters())
            tx.record_results(
                "p",
                _id(2),
                [DatumOutcome(0, DatumState.SUCCESS, 1, "", 0, 0, 0.0, "w")],
                [],
                [],
                JobCounters(),
            )
        with meta.transaction(write=False) as tx:
            assert tx.unsettled_after("p", _id(1), -1, 10) == [(1, 1), (3, 3), (5, 5)]
            assert tx.unsettled_after("p", _id(1), -1, 2) == [(1, 1), (3, 3)]
            assert tx.unsettled_after("p", _id(1), 3, 2) == [(5, 5)]
            assert tx.unsettled_after("p", _id(2), -1, 10) == []
            first = tx.first_unsettled("p", _id(1))
            assert first is not None and (first.idx, first.state) == (1, DatumState.PENDING)
            assert tx.first_unsettled("p", _id(2)) is None
            assert tx.recovered_hashes("p", _id(1)) == {"h2", "h6"}
            assert tx.recovered_hashes("p", _id(2)) == set()

    def test_datum_pages_are_counted_ordered_and_cut_by_the_database(
        self, meta: MetadataStore
    ) -> None:
        states = [DatumState.SUCCESS, DatumState.FAILED, DatumState.PENDING, DatumState.FAILED,
                  DatumState.SUCCESS, DatumState.RECOVERED, DatumState.SUCCESS]  # fmt: skip
        with meta.transaction() as tx:
            tx.insert_job(_job("p", 1))
            tx.insert_datums([
                DatumRecord("p", _id(1), i, f"d{i}_%", f"h{i}", st, f'["{i}"]')
                for i, st in enumerate(states)
            ])  # fmt: skip
            tx.insert_job(_job("p", 2))
            tx.insert_datums([DatumRecord("p", _id(2), 0, "d0_%", "h0", DatumState.FAILED, "[]")])
        rank = {"failed": 0, "recovered": 1, "success": 2, "skipped": 3}
        with meta.transaction(write=False) as tx:
            assert tx.datum_counts("p", _id(1)) == {"success": 3, "failed": 2, "pending": 1,
                                                    "recovered": 1}  # fmt: skip
            every = tx.datums_page("p", _id(1), rank, None, 0, 100)
            assert [d.idx for d in every] == [1, 3, 5, 0, 4, 6, 2]  # by rank, then in order
            assert every[0].inputs == '["1"]' and every[0].state is DatumState.FAILED
            assert [d.idx for d in tx.datums_page("p", _id(1), rank, None, 2, 3)] == [5, 0, 4]
            page = tx.datums_page("p", _id(1), rank, "success", 1, 5)
            assert [d.idx for d in page] == [4, 6]
            assert tx.datums_page("p", _id(1), rank, "skipped", 0, 5) == []
            among = tx.datums_page("p", _id(1), rank, "success", 0, 5, ids={"d0_%", "d4_%"})
            assert [d.idx for d in among] == [0, 4]
            others = tx.datums_page("p", _id(1), rank, None, 0, 100, without={"d1_%", "d2_%"})
            assert [d.idx for d in others] == [3, 5, 0, 4, 6]
            # a prefix is matched as text, not as a LIKE pattern
            assert [d.idx for d in tx.datums_with_id("p", _id(1), "d1_%")] == [1]
            assert [d.idx for d in tx.datums_with_id("p", _id(1), "d")] == list(range(7))
            assert tx.datums_with_id("p", _id(1), "d_") == []
            assert tx.datum_counts("p", _id(3)) == {}

    def test_lookups_of_many_values(self, meta: MetadataStore) -> None:
        ids = [_id(i) for i in range(1200)]
        with meta.transaction() as tx:
            tx.record_results("p", _id(0), [], [_cached("p", h) for h in ids], [], JobCounters())
            tx.insert_datums(
                [
                    DatumRecord("p", _id(0), i, h, h, DatumState.PENDING, f'["{i}"]')
                    for i, h in enumerate(ids)
                ]
            )
        with meta.transaction(write=False) as tx:
            wanted = [*ids[::2], ids[0], _id(99999)]
            assert sorted(tx.cached_hashes("p", wanted)) == ids[::2]
            assert sorted(tx.cached_outputs("p", wanted)) == ids[::2]
            assert tx.cached_hashes("other", ids) == set()
            got = tx.datum_inputs(wanted)
            assert sorted(d for d, _ in got) == ids[::2]
            assert dict(got)[ids[2]] == '["2"]'

    def test_logs(self, meta: MetadataStore) -> None:
        with meta.transaction() as tx:
            tx.insert_logs([])
            tx.insert_logs(
                [
                    LogRecord("p", 1.0, "user a", job_id=_id(1), datum_id="abc", worker="w"),
                    LogRecord("p", 2.0, "master", job_id=_id(1), user=False, master=True),
                    LogRecord("p", 3.0, "user b", job_id=_id(2), datum_id="abd"),
                    LogRecord("q", 4.0, "user q", job_id=_id(1), datum_id="abc"),
                ]
            )
        with meta.transaction(write=False) as tx:
            user = tx.list_logs(LogFilter(pipeline="p"))
            assert [r.message for r in user] == ["user a", "user b"]
            assert user[0].pk < user[1].pk and user[0].worker == "w" and user[0].user
            assert [r.message for r in tx.list_logs(LogFilter(pipeline="p", master=True))] == [
                "master"
            ]
            assert [r.message for r in tx.list_logs(LogFilter(job_id=_id(1)))] == [
                "user a",
                "user q",
            ]
            assert [r.message for r in tx.list_logs(LogFilter(datum_prefix="abd"))] == ["user b"]
            some = tx.list_logs(LogFilter(datum_ids=("abc", "zzz")))
            assert [r.message for r in some] == ["user a", "user q"]
            after = tx.list_logs(LogFilter(pipeline="p", after=user[0].pk))
            assert [r.message for r in after] == ["user b"]

    def test_consecutive_lines_of_one_source_come_back_one_by_one(
        self, meta: MetadataStore
    ) -> None:
        """Lines of one datum and stream in a row share a stored row; reading gives every line
        with its own time and a pk that orders it, and ``after``/``limit`` may stop in a row."""

        def line(i: int, stream: str = "system", datum: str = "d1") -> LogRecord:
            user = stream != "system"
            return LogRecord(
                "p", 100.0 + i, f"line {i}", job_id=_id(1), datum_id=datum, worker="w",
                stream=stream, user=user,
            )  # fmt: skip

        sent = [
            *(line(i) for i in range(3)),
            *(line(i, "stdout") for i in range(3, 5)),
            *(line(i) for i in range(5, 8)),
            *(line(i, datum="d2") for i in range(8, 150)),  # more than one row holds
            line(150, "stderr", datum="d2"),
            *(
                replace(line(i, "stderr", datum="d2"), message=f"{i} " + "x" * 40_000)
                for i in range(151, 154)
            ),  # long lines: a row holds about 64 KiB of text
        ]
        with meta.transaction() as tx:
            tx.insert_logs(sent)
        with meta.engine.connect() as conn:
            rows = conn.execute(select(func.count()).select_from(s.logs)).scalar()
        # d1: 3 system, 2 stdout, 3 system; d2: 64 + 64 + 14 system; its stderr: line 150 with
        # the first long line, then a row for each other long line
        assert rows == 3 + 3 + 3
        with meta.transaction(write=False) as tx:
            got = tx.list_logs(LogFilter(pipeline="p"))
            assert [(r.ts, r.message, r.stream, r.datum_id) for r in got] == [
                (r.ts, r.message, r.stream, r.datum_id) for r in sent
            ]
            assert all(not r.user for r in got if r.stream == "system")
            pks = [r.pk for r in got]
            assert pks == sorted(set(pks))
            # paging by limit and after, stopping inside rows: every line once, in order
            paged: list[LogRecord] = []
            while page := tx.list_logs(
                LogFilter(pipeline="p", after=paged[-1].pk if paged else 0, limit=5)
            ):
                assert len(page) <= 5
                paged += page
            assert [r.pk for r in paged] == pks
            assert [r.message for r in tx.list_logs(LogFilter(after=pks[1]))][:2] == [
                "line 2",
                "line 3",
            ]
            d1_user = tx.list_logs(LogFilter(datum_ids=("d1",)))
            assert [r.message for r in d1_user] == [f"line {i}" for i in range(8)]
        # the same lines as a job master records them, a datum's lines at a time: the same rows
        by_datum = [
            DatumLines(d, "w", [(r.ts, r.stream, r.message) for r in sent if r.datum_id == d])
            for d in ("d1", "d2")
        ]
        with meta.transaction() as tx:
            assert tx.record_results("p2", _id(1), [], [], by_datum, JobCounters()) is None
        with meta.engine.connect() as conn:
            count = select(func.count()).select_from(s.logs).where(s.logs.c.pipeline == "p2")
            assert conn.execute(count).scalar() == rows
        with meta.transaction(write=False) as tx:
            again = tx.list_logs(LogFilter(pipeline="p2"))
            assert [replace(r, pipeline="p", pk=0) for r in again] == [
                replace(r, pk=0) for r in got
            ]

    def test_rollback_undoes_the_transaction_so_far(self, meta: MetadataStore) -> None:
        with meta.transaction() as tx:
            tx.insert_repo(RepoRow("gone", 1.0))
            tx.rollback()
        with meta.transaction(write=False) as tx:
            assert tx.get_repo("gone") is None

    # -- secrets -----------------------------------------------------------------------------
    def test_secrets_keep_names_types_and_key_names(self, meta: MetadataStore) -> None:
        with meta.transaction() as tx:
            tx.insert_secret(SecretRecord("db-creds", "Opaque", 5.0, ("password", "user")))
            tx.insert_secret(SecretRecord("api.token", "kubernetes.io/basic-auth", 6.0))
            with pytest.raises(AlreadyExists):
                tx.insert_secret(SecretRecord("db-creds", "Opaque", 7.0))
        with meta.transaction(write=False) as tx:
            assert tx.get_secret("db-creds") == SecretRecord(
                "db-creds", "Opaque", 5.0, ("password", "user")
            )
            assert [r.name for r in tx.list_secrets()] == ["api.token", "db-creds"]
            assert tx.get_secret("nope") is None
        with meta.transaction() as tx:
            assert tx.delete_secret("db-creds")
            assert not tx.delete_secret("db-creds")
        with meta.transaction(write=False) as tx:
            assert [r.name for r in tx.list_secrets()] == ["api.token"]

    def test_projects_keep_description_and_time(self, meta: MetadataStore) -> None:
        with meta.transaction() as tx:
            tx.insert_project(ProjectRow("lab", 5.0, "the lab's data"))
            tx.insert_project(ProjectRow("audit", 6.0))
            with pytest.raises(AlreadyExists):
                tx.insert_project(ProjectRow("lab", 7.0))
        with meta.transaction(write=False) as tx:
            assert tx.get_project("lab") == ProjectRow("lab", 5.0, "the lab's data")
            assert [r.name for r in tx.list_projects()] == ["audit", "lab"]
            assert tx.get_project("nope") is None
        with meta.transaction() as tx:
            tx.update_project("audit", "checked")
            assert tx.delete_project("lab")
            assert not tx.delete_project("lab")
        with meta.transaction(write=False) as tx:
            assert tx.list_projects() == [ProjectRow("audit", 6.0, "checked")]

    # -- open 2.x transactions --------------------------------------------------------------
    def test_open_transactions_keep_their_requests_in_order(self, meta: MetadataStore) -> None:
        with meta.transaction() as tx:
            tx.insert_open_transaction(OpenTransactionRow("t1", 2.0, _id(1), ("a",)))
            tx.insert_open_transaction(OpenTransactionRow("t0", 1.0, _id(2)))
            tx.append_transaction_request("t1", "b")
            tx.append_transaction_request("t0", "x")
            tx.append_transaction_request("t1", "c")
        with meta.transaction(write=False) as tx:
            assert tx.get_open_transaction("t1") == OpenTransactionRow(
                "t1", 2.0, _id(1), ("a", "b", "c")
            )
            assert [r.id for r in tx.list_open_transactions()] == ["t0", "t1"]
            assert tx.get_open_transaction("nope") is None
        with meta.transaction() as tx:
            assert tx.get_open_transaction("t0", lock=True) is not None
            assert tx.delete_open_transaction("t0")
            assert not tx.delete_open_transaction("t0")
        with meta.transaction(write=False) as tx:
            assert [r.requests for r in tx.list_open_transactions()] == [("a", "b", "c")]
        with meta.transaction() as tx:
            tx.delete_open_transactions()
        with meta.transaction(write=False) as tx:
            assert tx.list_open_transactions() == []

    def test_atomic_joins_the_transactions_opened_inside_it(self, meta: MetadataStore) -> None:
        """Transactions opened inside atomic() commit with it, or not at all; after_commit
        actions wait for its commit and are dropped with a rollback or a dry run; a failed inner
        transaction undoes only itself."""
        ran: list[str] = []

        def names() -> list[str]:
            with meta.transaction(write=False) as tx:
                return [r.name for r in tx.list_repos()]

        seen_elsewhere: list[list[str]] = []
        with meta.atomic():
            with meta.transaction() as tx:
                tx.insert_repo(RepoRow("one", 1.0))
            after_commit(lambda: ran.append("one"))
            with pytest.raises(AlreadyExists), meta.transaction() as tx:
                tx.insert_repo(RepoRow("two", 2.0))
                tx.insert_repo(RepoRow("one", 3.0))
            with meta.transaction(write=False) as tx:
                assert tx.get_repo("one") is not None and tx.get_repo("two") is None
            other = threading.Thread(target=lambda: seen_elsewhere.append(names()))
            other.start()
            other.join()
            assert ran == []
        assert ran == ["one"] and names() == ["one"]
        assert seen_elsewhere == [[]]  # another thread does not see it before the commit

        with pytest.raises(RuntimeError, match="boom"), meta.atomic():
            with meta.transaction() as tx:
                tx.insert_repo(RepoRow("three", 3.0))
            after_commit(lambda: ran.append("three"))
            raise RuntimeError("boom")
        with meta.atomic(dry_run=True):
            with meta.transaction() as tx:
                tx.insert_repo(RepoRow("four", 4.0))
            after_commit(lambda: ran.append("four"))
            assert "four" in names()
        assert ran == ["one"] and names() == ["one"]
        after_commit(lambda: ran.append("now"))  # outside atomic(): at once
        assert ran == ["one", "now"]

    # -- settings ----------------------------------------------------------------------------
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
