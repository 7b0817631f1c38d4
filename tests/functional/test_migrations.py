"""Schema migrations on SQLite and PostgreSQL: from empty, from revision 0001 and from a
pre-Alembic ``create_all`` database to head, restarts, concurrent starts, and the models in
``tusk/meta/schema.py`` agreeing with the migrations.

PostgreSQL runs at ``TUSK_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/test``),
a fresh schema per test; a PostgreSQL that cannot be reached fails the tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import MetaData, inspect, text

from tusk.errors import Internal
from tusk.meta import BranchRow, CommitRow, JobFilter, MetadataStore, RepoRow, migrations
from tusk.meta import schema as s
from tusk.meta.migrations.__main__ import main as cli

POSTGRES_URL = os.environ.get("TUSK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
ADDED_IN_0002 = {"ix_jobs_pipeline_state", "ix_job_datums_pipeline_hash"}
ADDED_IN_0003 = {"jobs": ("image", "image_digest", "runtime")}
ADDED_IN_0008 = {"ix_commits_repo_pk"}
ADDED_IN_0004 = {"jobs": ("recovered",)}
TABLES_ADDED_IN_0004 = {"secrets"}
TABLES_ADDED_IN_0007 = {"projects"}
ADDED_IN_0005 = {"job_datums": ("seconds_download", "seconds_upload")}
ADDED_IN_0006 = {"jobs": ("output_disjoint",)}
TABLES_ADDED_IN_0009 = {"datum_files"}
TABLES_ADDED_IN_0010 = {"open_transactions", "open_transaction_requests"}
ADDED_IN_0011 = {"logs": ("lines",)}


def _id(n: int) -> str:
    return f"{n:032x}"


@contextmanager
def _postgres_schema() -> Iterator[tuple[str, str]]:
    """A fresh schema: (its name, a URL whose search_path is it)."""
    schema = "tusk_mig_" + uuid.uuid4().hex[:12]
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            sep = "&" if "?" in POSTGRES_URL else "?"
            yield schema, f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'meta' / 'tusk.db'}"
    else:
        with _postgres_schema() as (_, pg_url):
            yield pg_url


@contextmanager
def _store(url: str, *, upgrade: bool = True) -> Iterator[MetadataStore]:
    store = MetadataStore(url, upgrade=upgrade)
    try:
        yield store
    finally:
        store.close()


def _current(url: str) -> str | None:
    with _store(url, upgrade=False) as store, store.engine.connect() as conn:
        return migrations.current_revision(conn)


def _indexes_of_0002(url: str) -> set[str]:
    with _store(url, upgrade=False) as store, store.engine.connect() as conn:
        insp = inspect(conn)
        names = {str(i["name"]) for t in ("jobs", "job_datums") for i in insp.get_indexes(t)}
    return names & ADDED_IN_0002


def _snapshot(url: str) -> dict[str, Any]:
    """Every table's columns, indexes and rows."""
    with _store(url, upgrade=False) as store, store.engine.connect() as conn:
        insp = inspect(conn)
        return {
            table: (
                [c["name"] for c in insp.get_columns(table)],
                sorted(str(i["name"]) for i in insp.get_indexes(table)),
                sorted(map(repr, conn.execute(text(f'SELECT * FROM "{table}"')))),
            )
            for table in sorted(insp.get_table_names())
        }


def _baseline_metadata() -> MetaData:
    """The 0001 tables as the pre-Alembic code made them: today's models minus 0002's indexes."""
    meta = MetaData()
    for table in s.metadata.sorted_tables:
        if table.name in (
            TABLES_ADDED_IN_0004
            | TABLES_ADDED_IN_0007
            | TABLES_ADDED_IN_0009
            | TABLES_ADDED_IN_0010
        ):
            continue
        copy = table.to_metadata(meta)
        for index in [i for i in copy.indexes if i.name in ADDED_IN_0002 | ADDED_IN_0008]:
            copy.indexes.discard(index)
        for column in (
            *ADDED_IN_0003.get(table.name, ()),
            *ADDED_IN_0004.get(table.name, ()),
            *ADDED_IN_0005.get(table.name, ()),
            *ADDED_IN_0006.get(table.name, ()),
            *ADDED_IN_0011.get(table.name, ()),
        ):
            copy._columns.remove(copy.c[column])
    return meta


def _assert_old_rows_readable(store: MetadataStore) -> None:
    with store.transaction(write=False) as tx:
        assert tx.get_repo("images") == RepoRow("images", 1.0, "pictures", 10, "user")
        assert [c.id for c in tx.list_commits("images")] == [_id(2), _id(1)]
        commit = tx.get_commit("images", _id(2))
        assert commit is not None and commit.parent == _id(1) and commit.tree == "t2"
        assert tx.get_branch("images", "master") == BranchRow("images", "master", _id(2), 1.0)
        jobs = tx.list_jobs(JobFilter(pipeline="edges"))
        assert [(j.id, j.state, j.processed) for j in jobs] == [(_id(7), "success", 3)]


def _insert_old_rows(url: str) -> None:
    """Rows in repos, commits, branches and jobs, written with plain SQL (no MetadataStore)."""
    with _store(url, upgrade=False) as store, store.engine.begin() as conn:
        conn.execute(
            s.repos.insert().values(
                name="images", created=1.0, description="pictures", size_bytes=10, kind="user"
            )
        )
        for n, parent in ((1, None), (2, _id(1))):
            conn.execute(
                s.commits.insert().values(
                    repo="images",
                    id=_id(n),
                    parent=parent,
                    branch="master",
                    origin="user",
                    started=float(n),
                    finished=float(n),
                    tree=f"t{n}",
                    size_bytes=5,
                    description="",
                    failed=False,
                    reason="",
                )
            )
        conn.execute(
            s.branches.insert().values(repo="images", name="master", head=_id(2), created=1.0)
        )
        conn.execute(
            _baseline_metadata()
            .tables["jobs"]
            .insert()
            .values(
                pipeline="edges",
                id=_id(7),
                version=1,
                spec_commit=_id(8),
                state="success",
                created=1.0,
                processed=3,
                skipped=0,
                failed=0,
                total=3,
                bytes_down=0,
                bytes_up=0,
                seconds_download=0.0,
                seconds_process=0.0,
                seconds_upload=0.0,
                restarts=0,
                reason="",
            )
        )


# -- tests -------------------------------------------------------------------------------------
def test_head_is_the_schema_version() -> None:
    assert [m.revision for m in migrations.history()] == [
        "0011",
        "0010",
        "0009",
        "0008",
        "0007",
        "0006",
        "0005",
        "0004",
        "0003",
        "0002",
        "0001",
    ]
    assert int(migrations.head_revision()) == s.SCHEMA_VERSION


def test_empty_database_is_migrated_to_head(url: str) -> None:
    with _store(url) as store, store.transaction(write=False) as tx:
        assert tx.get_setting("schema_version") == str(s.SCHEMA_VERSION)
    assert _current(url) == migrations.head_revision()
    tables = set(_snapshot(url))
    assert tables == set(s.metadata.tables) | {"alembic_version"}
    assert _indexes_of_0002(url) == ADDED_IN_0002


def test_models_and_migrations_agree(url: str) -> None:
    with _store(url) as store, store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), s.metadata)
    assert diff == []


def test_from_0001_to_head_keeps_the_data(url: str) -> None:
    with _store(url, upgrade=False) as store, store.engine.begin() as conn:
        migrations.upgrade(conn, "0001")
    assert _current(url) == "0001"
    assert _indexes_of_0002(url) == set()
    _insert_old_rows(url)

    with _store(url) as store:
        _assert_old_rows_readable(store)
        with store.transaction(write=False) as tx:
            assert tx.get_setting("schema_version") == str(s.SCHEMA_VERSION)
    assert _current(url) == migrations.head_revision()
    assert _indexes_of_0002(url) == ADDED_IN_0002


def test_0009_indexes_the_files_of_stored_datum_outputs(url: str) -> None:
    with _store(url, upgrade=False) as store, store.engine.begin() as conn:
        migrations.upgrade(conn, "0006")
        manifest = {"files": [{"path": "/a/x.txt"}, {"path": "/b.txt"}], "dirs": ["/a"]}
        conn.execute(
            s.datum_cache.insert(),
            [
                {
                    "pipeline": "edges",
                    "hash": "h1",
                    "manifest": json.dumps(manifest),
                    "bytes_up": 1,
                    "job_id": _id(7),
                },
                {
                    "pipeline": "edges",
                    "hash": "h2",
                    "manifest": json.dumps({"files": []}),
                    "bytes_up": 0,
                    "job_id": _id(7),
                },
            ],
        )
    with _store(url) as store, store.engine.connect() as conn:
        rows = conn.execute(text("SELECT pipeline, path, hash FROM datum_files")).all()
    assert sorted(map(tuple, rows)) == [("edges", "/a/x.txt", "h1"), ("edges", "/b.txt", "h1")]


def test_pre_alembic_database_is_stamped_and_upgraded(url: str) -> None:
    with _store(url, upgrade=False) as store:
        _baseline_metadata().create_all(store.engine)
        with store.engine.begin() as conn:  # what the pre-Alembic code wrote
            conn.execute(s.settings.insert().values(key="schema_version", value="1"))
    _insert_old_rows(url)
    assert "alembic_version" not in _snapshot(url)

    with _store(url) as store:
        _assert_old_rows_readable(store)
        with store.transaction(write=False) as tx:
            assert tx.get_setting("schema_version") == str(s.SCHEMA_VERSION)
        with store.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), s.metadata) == []
    assert _current(url) == migrations.head_revision()


def test_pre_alembic_database_that_is_not_the_baseline_is_refused(url: str) -> None:
    with _store(url, upgrade=False) as store:
        meta = _baseline_metadata()
        meta.create_all(store.engine, [t for t in meta.sorted_tables if t.name != "logs"])
    before = _snapshot(url)
    with pytest.raises(Internal, match="not the baseline schema 0001: missing table logs$"):
        MetadataStore(url)
    assert _snapshot(url) == before  # nothing stamped, nothing created


def test_database_from_a_newer_tusk_is_refused(url: str) -> None:
    with _store(url) as store, store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    with pytest.raises(Internal, match="revision 0099, which this tusk does not know"):
        MetadataStore(url)
    assert _current(url) == "0099"


def test_reopening_changes_nothing(url: str) -> None:
    with _store(url) as store, store.transaction() as tx:
        tx.insert_repo(RepoRow("images", 1.0))
        tx.insert_commit(CommitRow(repo="images", id=_id(1), started=1.0))
    before = _snapshot(url)
    with _store(url), _store(url):
        pass
    assert _snapshot(url) == before


def test_two_processes_starting_at_once_both_succeed(url: str) -> None:
    """Each process opens the fresh database at the same moment; one migrates, the others wait
    for it and then find the database at head."""
    script = (
        "import sys\n"
        "from tusk.meta import MetadataStore, migrations\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"
        "store = MetadataStore(sys.argv[1])\n"
        "with store.engine.connect() as conn:\n"
        "    print(migrations.current_revision(conn))\n"
        "store.close()\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-W", "error", "-c", script, url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline() == "ready\n"
        for p in procs:  # all are imported and waiting: release them together
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        results = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    head = migrations.head_revision()
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
        assert out.strip() == head
    assert _current(url) == head


def test_postgres_migration_waits_for_the_migration_lock() -> None:
    with _postgres_schema() as (schema, url):
        opened: list[MetadataStore] = []
        errors: list[BaseException] = []

        def open_store() -> None:
            try:
                opened.append(MetadataStore(url))
            except BaseException as e:  # noqa: BLE001 - reported by the main thread
                errors.append(e)

        with psycopg.connect(POSTGRES_URL, connect_timeout=5) as holder:
            holder.execute("SELECT pg_advisory_xact_lock(%s)", (migrations.MIGRATION_LOCK_KEY,))
            opener = threading.Thread(target=open_store)
            opener.start()
            try:
                with psycopg.connect(POSTGRES_URL, autocommit=True) as watch:
                    key = migrations.MIGRATION_LOCK_KEY
                    deadline, waiting = time.monotonic() + 60, 0
                    while not waiting and opener.is_alive() and time.monotonic() < deadline:
                        time.sleep(0.01)
                        waiting = watch.execute(
                            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                            " AND classid = %s AND objid = %s AND NOT granted",
                            (key >> 32, key & 0xFFFFFFFF),
                        ).fetchone()[0]  # type: ignore[index]
                    assert waiting, errors
                    tables = watch.execute(
                        "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s",
                        (schema,),
                    ).fetchone()
                    assert tables == (0,)  # nothing was migrated before the lock was taken
            finally:
                holder.rollback()  # releases the lock
                opener.join(timeout=60)
        assert not opener.is_alive() and errors == []
        opened[0].close()
        assert _current(url) == migrations.head_revision()


def test_admin_cli(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tusk.db'}"
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    assert run("current", "--url", url) == "none\n"
    assert run("upgrade", "--url", url) == "0011 (head)\n"
    assert run("current", "--url", url) == "0011 (head)\n"
    lines = run("history", "--url", url).splitlines()
    assert [line.split()[0] for line in lines] == [
        "0011",
        "0010",
        "0009",
        "0008",
        "0007",
        "0006",
        "0005",
        "0004",
        "0003",
        "0002",
        "0001",
    ]
    assert "(current)" in lines[0] and "(current)" not in lines[1]
