"""The metadata store at long histories: commit reads and writes against the number of commits.

    python bench/scale_bench.py [--sizes 1000,100000,1000000] [--backends sqlite,postgres]

For each backend (SQLite in a temporary home; PostgreSQL in a database of its own made on the
server of ``--postgres`` and dropped after) and each history length N, one repo gets N commits
(one real commit through the services, then N-1 rows written straight into the metadata store,
each the child of the previous one, all on ``master``). Then, through the HTTP API in-process
(``tusk.Client`` over the server's app), the median of ``--reps`` calls of:

- ``list-commit repo -n 20`` (the first page, newest first);
- ``list-commit repo master -n 20`` (the branch's ancestry);
- ``inspect-commit`` of the head and of the first commit;
- ``put-file`` of one small file on ``master`` (a new commit on top of the history);
- the first page again after dropping the (repo, pk) index of migration 0008 (same run).

A flat store gives the same figures at every N.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from tusk.client import Client
from tusk.client.inprocess import InProcessTransport
from tusk.meta import schema as s
from tusk.runtime import Engine, Settings
from tusk.server.app import create_app

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def database(backend: str, home: Path, server: str) -> Iterator[str]:
    """A fresh metadata URL for one measurement."""
    if backend == "sqlite":
        yield f"sqlite:///{home / 'tusk.db'}"
        return
    name = f"tusk_scale_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def fill(engine: Engine, repo: str, n: int) -> tuple[str, str]:
    """Give ``repo`` a history of ``n`` commits on master; (first id, head id)."""
    client = engine.files
    batch = client.open_put(repo, "master")
    batch.begin_file("/seed", overwrite=False)
    batch.write(b"seed\n")
    batch.end_file()
    first = batch.commit().commit.id
    with engine.meta.transaction() as tx:
        seed = tx.get_commit(repo, first)
    assert seed is not None
    parent, t = first, seed.started
    rows = []
    for _ in range(n - 1):
        cid = uuid.uuid4().hex
        t += 0.001
        rows.append(
            {
                "repo": repo,
                "id": cid,
                "parent": parent,
                "branch": "master",
                "origin": "user",
                "started": t,
                "finished": t,
                "tree": seed.tree,
                "size_bytes": seed.size_bytes,
                "description": "",
                "failed": False,
                "reason": "",
            }
        )
        parent = cid
        if len(rows) >= 20_000:
            _insert(engine, rows)
            rows = []
    if rows:
        _insert(engine, rows)
    with engine.meta.transaction() as tx:
        tx.set_branch_head(repo, "master", parent)
    return first, parent


def _insert(engine: Engine, rows: list[dict[str, object]]) -> None:
    with engine.meta.engine.begin() as conn:
        conn.execute(s.commits.insert(), rows)


def median_ms(reps: int, call: Callable[[], object]) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def measure(backend: str, n: int, reps: int, server: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="tusk-scale-") as tmp:
        home = Path(tmp)
        with database(backend, home, server) as url:
            engine = Engine(Settings.for_home(home, metadata_url=url, runtime="host"))
            transport = InProcessTransport(create_app(engine))
            try:
                client = Client(transport=transport)
                client.create_repo("data")
                t = time.perf_counter()
                first, _ = fill(engine, "data", n)
                filled = time.perf_counter() - t
                client.list_commit("data", number=20)  # warm
                out = {
                    "fill s": filled,
                    "list first page": median_ms(
                        reps, lambda: client.list_commit("data", number=20)
                    ),
                    "list branch page": median_ms(
                        reps, lambda: client.list_commit("data", "master", number=20)
                    ),
                    "inspect head": median_ms(
                        reps, lambda: client.inspect_commit("data", "master")
                    ),
                    "inspect first": median_ms(reps, lambda: client.inspect_commit("data", first)),
                    "put-file": median_ms(
                        reps, lambda: client.put_file("data", "master", "/f", b"x\n")
                    ),
                }
                # the same first page without the (repo, pk) index of migration 0008
                with engine.meta.engine.begin() as conn:
                    conn.execute(text("DROP INDEX ix_commits_repo_pk"))
                out["list first page, no 0008 index"] = median_ms(
                    reps, lambda: client.list_commit("data", number=20)
                )
                return out
            finally:
                transport.close()
                engine.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--reps", type=int, default=21)
    parser.add_argument("--postgres", default=POSTGRES_URL)
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",")]
    keys = [
        "list first page",
        "list first page, no 0008 index",
        "list branch page",
        "inspect head",
        "inspect first",
        "put-file",
    ]
    print(f"reps: {args.reps}, cpus: {os.cpu_count()}, load at start: {os.getloadavg()[0]:.1f}")
    print()
    print("| backend | commits | fill s | " + " | ".join(f"{k} ms" for k in keys) + " |")
    print("|---|---|---|" + "---|" * len(keys))
    for backend in args.backends.split(","):
        for n in sizes:
            got = measure(backend, n, args.reps, args.postgres)
            cells = " | ".join(f"{got[k]:.2f}" for k in keys)
            print(f"| {backend} | {n:,} | {got['fill s']:.0f} | {cells} |", flush=True)
    print(f"\nload at end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
