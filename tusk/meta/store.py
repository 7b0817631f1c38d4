"""SQL metadata store: one implementation over SQLAlchemy Core for SQLite and PostgreSQL.

Dialect code is limited to connecting (pragmas, ``BEGIN IMMEDIATE`` on SQLite) and translating
driver errors. Every contract is in ``tests/functional/test_metadata_contract.py``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    NestedTransaction,
    and_,
    create_engine,
    delete,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.pool import QueuePool

from tusk.errors import AlreadyExists, InvalidArgument, ServerUnavailable
from tusk.meta import migrations
from tusk.meta import schema as s
from tusk.meta.open_tx import OpenTxMixin
from tusk.meta.pps_tx import PpsTx


@dataclass(frozen=True, slots=True)
class RepoRow:
    name: str
    created: float
    description: str = ""
    size_bytes: int = 0
    kind: str = "user"


@dataclass(frozen=True, slots=True)
class ProjectRow:
    name: str
    created: float
    description: str = ""


@dataclass(frozen=True, slots=True)
class CommitRow:
    repo: str
    id: str
    started: float
    parent: str | None = None
    branch: str | None = None
    origin: str = "user"
    finished: float | None = None
    tree: str | None = None
    size_bytes: int = 0
    description: str = ""
    failed: bool = False
    reason: str = ""
    pk: int = 0


@dataclass(frozen=True, slots=True)
class BranchRow:
    repo: str
    name: str
    head: str | None
    created: float


ProvRow = tuple[str, str, str | None]  # (repo, commit id, branch it was taken from)


def _chunks(ids: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    """``ids`` in parts small enough for one ``IN (...)`` on every database."""
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def _row(cls: type, mapping: Any) -> Any:
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in dict(mapping).items() if k in names})


class Tx(PpsTx, OpenTxMixin):
    """One database transaction; every read and write of the services goes through one."""

    def __init__(self, conn: Connection, savepoint: NestedTransaction | None = None) -> None:
        self.c = conn
        self.savepoint = savepoint  # set when it runs inside MetadataStore.atomic()

    def rollback(self) -> None:
        """Undo everything this transaction wrote so far."""
        (self.savepoint or self.c).rollback()

    def snapshot(self) -> None:
        """Make the reads of this transaction one consistent view (PostgreSQL reads each
        statement afresh by default; a SQLite transaction already is one snapshot). Call it
        before any read."""
        if self.c.dialect.name == "postgresql":
            self.c.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))

    # -- projects ----------------------------------------------------------------------------
    def insert_project(self, row: ProjectRow) -> None:
        try:
            with self.c.begin_nested():
                self.c.execute(
                    s.projects.insert().values(
                        name=row.name, created=row.created, description=row.description
                    )
                )
        except IntegrityError:
            raise AlreadyExists(f"project {row.name} already exists") from None

    def get_project(self, name: str) -> ProjectRow | None:
        q = select(s.projects).where(s.projects.c.name == name)
        r = self.c.execute(q).mappings().first()
        return _row(ProjectRow, r) if r else None

    def list_projects(self) -> list[ProjectRow]:
        q = select(s.projects).order_by(s.projects.c.name)
        return [_row(ProjectRow, r) for r in self.c.execute(q).mappings()]

    def update_project(self, name: str, description: str) -> None:
        self.c.execute(
            update(s.projects).where(s.projects.c.name == name).values(description=description)
        )

    def delete_project(self, name: str) -> bool:
        """Remove a project's row; False when there was none."""
        q = delete(s.projects).where(s.projects.c.name == name)
        return bool(self.c.execute(q).rowcount)

    # -- repos -------------------------------------------------------------------------------
    def insert_repo(self, row: RepoRow) -> None:
        try:
            with self.c.begin_nested():
                self.c.execute(
                    s.repos.insert().values(
                        name=row.name,
                        created=row.created,
                        description=row.description,
                        size_bytes=row.size_bytes,
                        kind=row.kind,
                    )
                )
        except IntegrityError:
            raise AlreadyExists(f"repo {row.name} already exists") from None

    def get_repo(self, name: str) -> RepoRow | None:
        r = self.c.execute(select(s.repos).where(s.repos.c.name == name)).mappings().first()
        return _row(RepoRow, r) if r else None

    def list_repos(self) -> list[RepoRow]:
        q = select(s.repos).order_by(s.repos.c.created.desc(), s.repos.c.name)
        return [_row(RepoRow, r) for r in self.c.execute(q).mappings()]

    def update_repo(self, name: str, **values: Any) -> None:
        self.c.execute(update(s.repos).where(s.repos.c.name == name).values(**values))

    def add_repo_size(self, name: str, delta: int) -> None:
        self.c.execute(
            update(s.repos)
            .where(s.repos.c.name == name)
            .values(size_bytes=s.repos.c.size_bytes + delta)
        )

    def delete_repo(self, name: str) -> None:
        self.c.execute(delete(s.commit_provenance).where(s.commit_provenance.c.repo == name))
        self.c.execute(delete(s.commits).where(s.commits.c.repo == name))
        self.c.execute(delete(s.branch_provenance).where(s.branch_provenance.c.repo == name))
        self.c.execute(delete(s.branches).where(s.branches.c.repo == name))
        self.c.execute(delete(s.repos).where(s.repos.c.name == name))

    # -- commits -----------------------------------------------------------------------------
    def insert_commit(self, row: CommitRow, provenance: Sequence[ProvRow] = ()) -> CommitRow:
        values = {f.name: getattr(row, f.name) for f in fields(CommitRow) if f.name != "pk"}
        try:
            with self.c.begin_nested():
                pk = self.c.execute(s.commits.insert().values(**values)).inserted_primary_key
                if provenance:
                    self.c.execute(
                        s.commit_provenance.insert(),
                        [
                            {
                                "repo": row.repo,
                                "id": row.id,
                                "prov_repo": pr,
                                "prov_id": pid,
                                "prov_branch": pb,
                            }
                            for pr, pid, pb in dict.fromkeys(provenance)
                        ],
                    )
        except IntegrityError:
            raise AlreadyExists(f"commit {row.id} already exists in repo {row.repo}") from None
        return CommitRow(**{**values, "pk": int(pk[0]) if pk else 0})

    def get_commit(self, repo: str, commit_id: str) -> CommitRow | None:
        q = select(s.commits).where(and_(s.commits.c.repo == repo, s.commits.c.id == commit_id))
        r = self.c.execute(q).mappings().first()
        return _row(CommitRow, r) if r else None

    def commits_with_id(self, commit_id: str) -> list[CommitRow]:
        q = select(s.commits).where(s.commits.c.id == commit_id).order_by(s.commits.c.pk)
        return [_row(CommitRow, r) for r in self.c.execute(q).mappings()]

    def list_commits(self, repo: str, limit: int = 0, before: int | None = None) -> list[CommitRow]:
        """Newest first; ``before``: only commits older than the one of that ``pk`` (the next
        page of a listing read page by page)."""
        q = select(s.commits).where(s.commits.c.repo == repo).order_by(s.commits.c.pk.desc())
        if before is not None:
            q = q.where(s.commits.c.pk < before)
        if limit:
            q = q.limit(limit)
        return [_row(CommitRow, r) for r in self.c.execute(q).mappings()]

    def children(self, repo: str, commit_id: str) -> list[str]:
        q = (
            select(s.commits.c.id)
            .where(and_(s.commits.c.repo == repo, s.commits.c.parent == commit_id))
            .order_by(s.commits.c.pk)
        )
        return [r[0] for r in self.c.execute(q)]

    def update_commit(
        self, repo: str, commit_id: str, *, expect_open: bool = False, **values: Any
    ) -> bool:
        cond = and_(s.commits.c.repo == repo, s.commits.c.id == commit_id)
        if expect_open:
            cond = and_(cond, s.commits.c.finished.is_(None))
        if "expect_tree" in values:
            expected = values.pop("expect_tree")
            cond = and_(
                cond,
                s.commits.c.tree.is_(None) if expected is None else s.commits.c.tree == expected,
            )
        res = self.c.execute(update(s.commits).where(cond).values(**values))
        return bool(res.rowcount)

    def delete_commit(self, repo: str, commit_id: str) -> None:
        cp = s.commit_provenance
        self.c.execute(delete(cp).where(and_(cp.c.repo == repo, cp.c.id == commit_id)))
        self.c.execute(
            delete(s.commits).where(and_(s.commits.c.repo == repo, s.commits.c.id == commit_id))
        )

    def reparent(self, repo: str, old_parent: str, new_parent: str | None) -> None:
        self.c.execute(
            update(s.commits)
            .where(and_(s.commits.c.repo == repo, s.commits.c.parent == old_parent))
            .values(parent=new_parent)
        )

    def commit_provenance(self, repo: str, commit_id: str) -> list[ProvRow]:
        cp = s.commit_provenance
        q = select(cp.c.prov_repo, cp.c.prov_id, cp.c.prov_branch).where(
            and_(cp.c.repo == repo, cp.c.id == commit_id)
        )
        return [(r[0], r[1], r[2]) for r in self.c.execute(q)]

    def commit_subvenance(self, repo: str, commit_id: str) -> list[tuple[str, str]]:
        cp = s.commit_provenance
        q = (
            select(cp.c.repo, cp.c.id)
            .join(s.commits, and_(s.commits.c.repo == cp.c.repo, s.commits.c.id == cp.c.id))
            .where(and_(cp.c.prov_repo == repo, cp.c.prov_id == commit_id))
            .order_by(s.commits.c.pk)
        )
        return [(r[0], r[1]) for r in self.c.execute(q)]

    # The same three reads for many commits of one repo at once (a listing's page): a few
    # queries per page instead of three per commit.
    def children_of(self, repo: str, ids: Sequence[str]) -> dict[str, list[str]]:
        """Each commit's children, oldest first (``children`` for many commits)."""
        c = s.commits.c
        out: dict[str, list[str]] = {}
        for part in _chunks(ids):
            q = select(c.parent, c.id).where(and_(c.repo == repo, c.parent.in_(part)))
            for parent, child in self.c.execute(q.order_by(c.pk)):
                out.setdefault(parent, []).append(child)
        return out

    def provenance_of(self, repo: str, ids: Sequence[str]) -> dict[str, list[ProvRow]]:
        """Each commit's provenance (``commit_provenance`` for many commits)."""
        cp = s.commit_provenance
        out: dict[str, list[ProvRow]] = {}
        for part in _chunks(ids):
            q = select(cp.c.id, cp.c.prov_repo, cp.c.prov_id, cp.c.prov_branch).where(
                and_(cp.c.repo == repo, cp.c.id.in_(part))
            )
            for cid, r, i, b in self.c.execute(q):
                out.setdefault(cid, []).append((r, i, b))
        return out

    def subvenance_of(self, repo: str, ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        """Each commit's subvenance, oldest first (``commit_subvenance`` for many commits)."""
        cp = s.commit_provenance
        out: dict[str, list[tuple[str, str]]] = {}
        for part in _chunks(ids):
            q = (
                select(cp.c.prov_id, cp.c.repo, cp.c.id)
                .join(s.commits, and_(s.commits.c.repo == cp.c.repo, s.commits.c.id == cp.c.id))
                .where(and_(cp.c.prov_repo == repo, cp.c.prov_id.in_(part)))
                .order_by(s.commits.c.pk)
            )
            for pid, r, i in self.c.execute(q):
                out.setdefault(pid, []).append((r, i))
        return out

    def count_commits(self, repo: str) -> int:
        q = select(func.count()).select_from(s.commits).where(s.commits.c.repo == repo)
        return int(self.c.execute(q).scalar_one())

    # -- branches ----------------------------------------------------------------------------
    def get_branch(self, repo: str, name: str) -> BranchRow | None:
        b = s.branches
        r = (
            self.c.execute(select(b).where(and_(b.c.repo == repo, b.c.name == name)))
            .mappings()
            .first()
        )
        return _row(BranchRow, r) if r else None

    def list_branches(self, repo: str) -> list[BranchRow]:
        b = s.branches
        q = select(b).where(b.c.repo == repo).order_by(b.c.created.desc(), b.c.name)
        return [_row(BranchRow, r) for r in self.c.execute(q).mappings()]

    def insert_branch(self, row: BranchRow) -> None:
        try:
            with self.c.begin_nested():
                self.c.execute(
                    s.branches.insert().values(
                        repo=row.repo, name=row.name, head=row.head, created=row.created
                    )
                )
        except IntegrityError:
            raise AlreadyExists(f"branch {row.name} already exists in repo {row.repo}") from None

    def set_branch_head(
        self, repo: str, name: str, head: str | None, *, expect: str | None | object = ...
    ) -> bool:
        """Move a branch head; with ``expect`` only if the head is still that (compare-and-swap)."""
        b = s.branches
        cond = and_(b.c.repo == repo, b.c.name == name)
        if expect is not ...:
            cond = and_(cond, b.c.head.is_(None) if expect is None else b.c.head == expect)
        return bool(self.c.execute(update(b).where(cond).values(head=head)).rowcount)

    def branches_at(self, repo: str, head: str) -> list[str]:
        b = s.branches
        q = select(b.c.name).where(and_(b.c.repo == repo, b.c.head == head))
        return [r[0] for r in self.c.execute(q)]

    def delete_branch(self, repo: str, name: str) -> None:
        bp = s.branch_provenance
        self.c.execute(delete(bp).where(and_(bp.c.repo == repo, bp.c.branch == name)))
        self.c.execute(
            delete(s.branches).where(and_(s.branches.c.repo == repo, s.branches.c.name == name))
        )

    def set_branch_provenance(self, repo: str, name: str, prov: Sequence[tuple[str, str]]) -> None:
        bp = s.branch_provenance
        self.c.execute(delete(bp).where(and_(bp.c.repo == repo, bp.c.branch == name)))
        if prov:
            self.c.execute(
                bp.insert(),
                [
                    {"repo": repo, "branch": name, "prov_repo": r, "prov_branch": b}
                    for r, b in dict.fromkeys(prov)
                ],
            )

    def branch_provenance(self, repo: str, name: str) -> list[tuple[str, str]]:
        bp = s.branch_provenance
        q = (
            select(bp.c.prov_repo, bp.c.prov_branch)
            .where(and_(bp.c.repo == repo, bp.c.branch == name))
            .order_by(bp.c.prov_repo, bp.c.prov_branch)
        )
        return [(r[0], r[1]) for r in self.c.execute(q)]

    def branch_subvenance(self, repo: str, name: str) -> list[tuple[str, str]]:
        bp = s.branch_provenance
        q = (
            select(bp.c.repo, bp.c.branch)
            .where(and_(bp.c.prov_repo == repo, bp.c.prov_branch == name))
            .order_by(bp.c.repo, bp.c.branch)
        )
        return [(r[0], r[1]) for r in self.c.execute(q)]

    # -- settings ----------------------------------------------------------------------------
    def get_setting(self, key: str) -> str | None:
        r = self.c.execute(select(s.settings.c.value).where(s.settings.c.key == key)).first()
        return r[0] if r else None

    def put_setting(self, key: str, value: str) -> None:
        if self.get_setting(key) is None:
            self.c.execute(s.settings.insert().values(key=key, value=value))
        else:
            self.c.execute(update(s.settings).where(s.settings.c.key == key).values(value=value))


# Inside MetadataStore.atomic(): the store and connection every transaction() of this thread
# joins, and the actions to run once that transaction has committed.
_joined: ContextVar[tuple[MetadataStore, Connection] | None] = ContextVar(
    "tusk_meta_joined", default=None
)
_after_commit: ContextVar[list[Callable[[], object]] | None] = ContextVar(
    "tusk_meta_after_commit", default=None
)


def after_commit(action: Callable[[], object]) -> None:
    """Run ``action`` now, or, inside :meth:`MetadataStore.atomic`, once its transaction has
    committed (never, if it rolls back): for what other threads and processes do on seeing a
    change (change notifications, starting or killing workers), which must not see one that may
    still be undone."""
    pending = _after_commit.get()
    if pending is None:
        action()
    else:
        pending.append(action)


def _use_wal(dbapi_conn: sqlite3.Connection, wait: float = 60.0) -> None:
    """Put the database in WAL mode (it stays so once set). Switching needs the database to
    itself, and SQLite answers "database is locked" at once, without waiting its busy timeout,
    when two fresh connections try together: so try again until ``wait`` seconds have passed."""
    deadline = time.monotonic() + wait
    while True:
        try:
            if dbapi_conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                dbapi_conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class MetadataStore:
    """Connection factory and transaction boundary for one metadata database URL."""

    def __init__(self, url: str, *, upgrade: bool = True) -> None:
        """Open the database at ``url`` and, unless ``upgrade`` is false, migrate it to the
        schema this tusk uses (see :mod:`tusk.meta.migrations`)."""
        self.url = url
        self.dialect = url.split(":", 1)[0].split("+", 1)[0]
        self.engine = self._make_engine(url)
        if upgrade:
            try:
                with self.engine.connect():
                    pass
            except OperationalError as e:
                self.engine.dispose()
                raise ServerUnavailable(
                    f"metadata store {redact_url(url)} is unreachable: {e.orig}",
                    hint="check TUSK_METADATA_URL and that the database is running",
                ) from None
            try:
                migrations.upgrade_to_head(self.engine)
            except BaseException:
                self.engine.dispose()
                raise

    def _make_engine(self, url: str) -> Engine:
        if self.dialect == "sqlite":
            path = url.removeprefix("sqlite:///")
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            # Pooled: opening a connection per transaction costs more than the transaction, and
            # closing the last one checkpoints the WAL each time.
            engine = create_engine(
                url,
                poolclass=QueuePool,
                pool_size=8,
                max_overflow=32,
                connect_args={"timeout": 60, "check_same_thread": False},
            )

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn: Any, _rec: Any) -> None:
                dbapi_conn.isolation_level = None
                _use_wal(dbapi_conn)
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA synchronous=FULL")  # per transaction: see _on_begin
                cur.execute("PRAGMA busy_timeout=60000")
                cur.close()

            @event.listens_for(engine, "begin")
            def _on_begin(conn: Connection) -> None:
                options = conn.get_execution_options()
                write = options.get("tusk_write", True)
                if write:
                    # WAL: NORMAL syncs at checkpoints, not at each commit; the database stays
                    # consistent and a crash of the process loses nothing, a crash of the
                    # machine at most the last such transactions
                    durable = options.get("tusk_durable", True)
                    conn.exec_driver_sql(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
                conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

            return engine
        if self.dialect == "postgresql":
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
            try:
                return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
            except ModuleNotFoundError:
                raise InvalidArgument(
                    "PostgreSQL support is not installed", hint="pip install 'tusk[postgres]'"
                ) from None
        raise InvalidArgument(
            f"unsupported metadata URL {url!r}",
            hint="use sqlite:///path/to/tusk.db or postgresql://user@host/db",
        )

    @contextmanager
    def transaction(self, write: bool = True, *, durable: bool = True) -> Iterator[Tx]:
        """One transaction. ``durable=False`` commits without waiting for the disk (a machine
        crash may lose it, never half of it): for bookkeeping that is redone or recounted after
        a crash, such as a job master's datum results, never for what a user was told is done.
        Inside :meth:`atomic` (same thread) it is a savepoint of atomic's transaction."""
        joined = _joined.get()
        if joined is not None and joined[0] is self:
            conn = joined[1]
            with conn.begin_nested() as savepoint:
                yield Tx(conn, savepoint)
            return
        try:
            conn = self.engine.connect().execution_options(tusk_write=write, tusk_durable=durable)
        except OperationalError as e:
            raise ServerUnavailable(f"metadata store unreachable: {e.orig}") from None
        try:
            with conn.begin():
                if write and not durable and self.dialect == "postgresql":
                    conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
                yield Tx(conn)
        finally:
            conn.close()

    @contextmanager
    def atomic(self, *, dry_run: bool = False) -> Iterator[Tx]:
        """One transaction that every :meth:`transaction` this thread opens meanwhile joins (as a
        savepoint), so that several service calls take effect together or not at all, even if
        the process dies half way; :func:`after_commit` actions wait for its commit.
        ``dry_run`` rolls it back at the end (the calls' errors, no effect)."""
        if _joined.get() is not None:
            raise RuntimeError("MetadataStore.atomic() does not nest")
        actions: list[Callable[[], object]] = []
        with self.transaction() as tx:
            tokens = (_joined.set((self, tx.c)), _after_commit.set(actions))
            try:
                yield tx
                if dry_run:
                    tx.rollback()
            finally:
                _joined.reset(tokens[0])
                _after_commit.reset(tokens[1])
        if not dry_run:
            for action in actions:
                action()

    def close(self) -> None:
        self.engine.dispose()


def redact_url(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at or ":" not in creds:
        return url
    return f"{scheme}{sep}{creds.split(':', 1)[0]}:***@{host}"


def open_metadata_store(url: str) -> MetadataStore:
    return MetadataStore(url)
