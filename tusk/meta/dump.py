"""The whole metadata store as rows: what ``extract`` reads, ``restore`` writes and ``delete-all``
clears. Every table of the schema but the local ones (``_LOCAL_TABLES``) takes part,
in foreign-key order, so a table added to the schema is extracted and restored without a change
here."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Table, delete, func, select, update

from tusk.meta import schema as s
from tusk.meta.store import Tx

Row = dict[str, Any]
# ``settings`` belongs to one deployment; open 2.x transactions are a client's unfinished work
# on one server (requests against the state they were recorded on), not part of its state.
_LOCAL_TABLES = ("settings", "open_transactions", "open_transaction_requests")
# Tables whose history delete-all clears (repos, commits and branches go with their repos).
_HISTORY_TABLES = ("logs", "datum_files", "datum_cache", "job_datums", "jobs", "pipelines")


def tables() -> list[Table]:
    """The tables that make up a deployment's state, parents before children."""
    return [t for t in s.metadata.sorted_tables if t.name not in _LOCAL_TABLES]


def _serial_key(table: Table) -> str | None:
    """The name of a table's generated key (``pk``): left out of dumps, made anew on restore,
    with the rows inserted in their old order so the new keys keep it."""
    keys = [c.name for c in table.primary_key.columns]
    return keys[0] if keys == ["pk"] else None


def dump(tx: Tx) -> Iterator[tuple[str, Row]]:
    """(table name, row) of every row of every table, parents first, in creation order."""
    for table in tables():
        key = _serial_key(table)
        order = [table.c[key]] if key else list(table.primary_key.columns)
        for r in tx.c.execute(select(table).order_by(*order)).mappings():
            row = dict(r)
            if key:
                row.pop(key)
            yield table.name, row


def counts(tx: Tx) -> dict[str, int]:
    """Rows per table."""
    return {
        t.name: int(tx.c.execute(select(func.count()).select_from(t)).scalar_one())
        for t in tables()
    }


def load(tx: Tx, table_name: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` into ``table_name``; columns this schema does not have are dropped and
    missing ones take their defaults. A repo that exists already (the spec repo every server
    makes) is overwritten instead."""
    table = s.metadata.tables[table_name]
    key = _serial_key(table)
    names = {c.name for c in table.columns if c.name != key}
    clean = [{k: v for k, v in r.items() if k in names} for r in rows]
    if table_name == "repos":
        existing = {r[0] for r in tx.c.execute(select(s.repos.c.name))}
        for r in [r for r in clean if r.get("name") in existing]:
            values = {k: v for k, v in r.items() if k != "name"}
            tx.c.execute(update(s.repos).where(s.repos.c.name == r["name"]).values(**values))
        clean = [r for r in clean if r.get("name") not in existing]
    if clean:
        tx.c.execute(table.insert(), clean)


def clear_history(tx: Tx) -> None:
    """Delete every pipeline, job, datum, stored datum output and log line."""
    for name in _HISTORY_TABLES:
        tx.c.execute(delete(s.metadata.tables[name]))


def object_roots(tx: Tx) -> tuple[list[str], list[str]]:
    """What names objects: the tree root of every commit that has one, and every stored datum
    output manifest (JSON naming the objects that hold the output's chunks)."""
    trees = [
        r[0] for r in tx.c.execute(select(s.commits.c.tree).where(s.commits.c.tree.isnot(None)))
    ]
    manifests = [r[0] for r in tx.c.execute(select(s.datum_cache.c.manifest))]
    return trees, manifests


def unfinished_jobs(tx: Tx, ended: Sequence[str]) -> int:
    """How many jobs are in none of the ``ended`` states."""
    q = select(func.count()).select_from(s.jobs).where(s.jobs.c.state.notin_(list(ended)))
    return int(tx.c.execute(q).scalar_one())


def cached_output(tx: Tx, tag: str) -> str | None:
    """The stored output manifest of the datum whose hash is ``tag`` (of whichever pipeline),
    or else of the newest datum whose id (as list-datum prints it) is ``tag``."""
    dc, jd = s.datum_cache, s.job_datums
    r = tx.c.execute(select(dc.c.manifest).where(dc.c.hash == tag).limit(1)).first()
    if r is None:
        q = (
            select(dc.c.manifest)
            .join(jd, (jd.c.pipeline == dc.c.pipeline) & (jd.c.hash == dc.c.hash))
            .where(jd.c.datum_id == tag)
            .limit(1)
        )
        r = tx.c.execute(q).first()
    return None if r is None else str(r[0])
