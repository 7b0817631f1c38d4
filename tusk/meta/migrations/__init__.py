"""Schema migrations of the metadata database: Alembic, driven from code (no alembic.ini).

:func:`upgrade_to_head` is what :class:`~tusk.meta.store.MetadataStore` runs when it opens a
database; ``python -m tusk.meta.migrations`` is the admin CLI (see README.md here).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, delete, inspect, select, text

from tusk.errors import Internal
from tusk.meta import schema as s

# pg_advisory_xact_lock key held while one process migrates ("tuskmigr"); no other lock in tusk
# may use it.
MIGRATION_LOCK_KEY = 0x7475_736B_6D69_6772
# The revision the pre-Alembic ``metadata.create_all`` databases are at.
BASELINE = "0001"
VERSION_TABLE = "alembic_version"


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent))
    cfg.attributes["connection"] = connection
    return cfg


def history() -> list[Script]:
    """Every revision, newest first."""
    return list(ScriptDirectory.from_config(alembic_config()).walk_revisions())


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no revisions shipped"
    return head


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(conn: Connection, revision: str = "head") -> None:
    """Apply the revisions up to ``revision`` inside the transaction ``conn`` is in."""
    command.upgrade(alembic_config(conn), revision)


def stamp(conn: Connection, revision: str) -> None:
    command.stamp(alembic_config(conn), revision)


def upgrade_to_head(engine: Engine) -> str:
    """Bring the database to the head revision in one transaction, one process at a time.

    ``engine`` is a :class:`~tusk.meta.store.MetadataStore`'s: on SQLite its write transactions
    begin with ``BEGIN IMMEDIATE``, which is the lock; on PostgreSQL the lock is an advisory
    transaction lock. A database made before migrations existed is checked against the baseline
    and stamped. Returns the head revision.
    """
    with engine.connect() as conn, conn.begin():
        _lock(conn)
        tables = set(inspect(conn).get_table_names())
        if VERSION_TABLE not in tables and tables & _tusk_table_names():
            _check_baseline(conn)
            stamp(conn, BASELINE)
        current = current_revision(conn)
        known = {script.revision for script in history()}
        if current is not None and current not in known:
            raise Internal(
                f"the metadata database is at schema revision {current}, "
                "which this tusk does not know",
                hint="it was migrated by a newer tusk: run that version",
            )
        upgrade(conn)
        head = head_revision()
        _record_schema_version(conn, head)
    return head


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    elif conn.dialect.name == "sqlite":
        # MetadataStore's engine began this transaction with BEGIN IMMEDIATE: the write lock.
        assert conn.connection.dbapi_connection.in_transaction  # type: ignore[union-attr]


def _record_schema_version(conn: Connection, head: str) -> None:
    version = str(int(head))
    key = s.settings.c.key == "schema_version"
    if conn.execute(select(s.settings.c.value).where(key)).scalar() != version:
        conn.execute(delete(s.settings).where(key))
        conn.execute(s.settings.insert().values(key="schema_version", value=version))


# -- pre-Alembic databases ---------------------------------------------------------------------
Shape = dict[str, tuple[frozenset[str], frozenset[str]]]  # table -> (columns, indexes)


def _tusk_table_names() -> set[str]:
    return set(s.metadata.tables)


def _shape(conn: Connection, only: set[str]) -> Shape:
    insp = inspect(conn)
    return {
        table: (
            frozenset(c["name"] for c in insp.get_columns(table)),
            frozenset(
                str(i["name"])
                for i in insp.get_indexes(table)
                if not i.get("duplicates_constraint")  # PostgreSQL's index behind a UNIQUE
            ),
        )
        for table in set(insp.get_table_names()) & only
    }


def baseline_shape() -> Shape:
    """Tables, columns and indexes revision 0001 creates (applied to a scratch SQLite)."""
    scratch = create_engine("sqlite://")
    try:
        with scratch.connect() as conn, conn.begin():
            upgrade(conn, BASELINE)
            return _shape(conn, _tusk_table_names())
    finally:
        scratch.dispose()


def _check_baseline(conn: Connection) -> None:
    expected = baseline_shape()
    found = _shape(conn, _tusk_table_names() | set(expected))
    if found == expected:
        return
    problems = [f"missing table {t}" for t in sorted(set(expected) - set(found))]
    problems += [f"unexpected table {t}" for t in sorted(set(found) - set(expected))]
    for table in sorted(set(expected) & set(found)):
        for kind, want, got in zip(("column", "index"), expected[table], found[table], strict=True):
            problems += [f"{table}: missing {kind} {n}" for n in sorted(want - got)]
            problems += [f"{table}: unexpected {kind} {n}" for n in sorted(got - want)]
    raise Internal(
        "the metadata database has tusk tables but no migration history, and they are not "
        f"the baseline schema {BASELINE}: " + "; ".join(problems),
        hint="point tusk at an empty database, or repair these tables by hand",
    )
