"""Storing and reading datums' log lines: one row per line against consecutive lines sharing a row.

    python bench/log_rows_bench.py [--datums 20000] [--rounds 3]

Each datum has the six system lines a quick datum gets (each phase begun and finished), stored
as the job master stores them (a group of 256 datums' lines per transaction) into a fresh SQLite
metadata store, then read back as ``get-logs`` does (pages of 1,000 lines). "one row per line"
is the same store with a row holding at most one line (``LINES_PER_ROW = 1``: the layout before
rows held several). Reported: µs per datum to store and to read, and bytes per datum of the
``logs`` table and its indexes (SQLite's ``dbstat``).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tusk.meta import LogFilter, LogRecord, MetadataStore, pps_tx

GROUP = 256
PAGE = 1000


def datum_lines(i: int, t: float) -> list[LogRecord]:
    """The six system lines of one quick datum, as the job master stores them."""
    texts = [
        "starting to download data",
        "finished downloading data after 61µs",
        "beginning to run user code (runtime: bwrap, image localhost/tusk/python:bookworm)",
        "finished running user code after 42µs",
        "starting to upload output",
        "finished uploading output after 12µs",
    ]
    return [
        LogRecord(
            pipeline="bench",
            ts=t + k * 1e-5,
            message=text,
            job_id="0123456789abcdef0123456789abcdef",
            datum_id=f"{i:064x}",
            worker="pipeline-bench-v1-abcde",
            stream="system",
            user=False,
        )
        for k, text in enumerate(texts)
    ]


def one_round(home: Path, n: int, lines_per_row: int) -> tuple[float, float, float]:
    """(store µs per datum, read µs per datum, bytes per datum) for ``n`` datums."""
    pps_tx.LINES_PER_ROW = lines_per_row
    db = home / "tusk.db"
    store = MetadataStore(f"sqlite:///{db}")
    try:
        records = [datum_lines(i, 1e9 + i) for i in range(n)]
        started = time.perf_counter()
        for g in range(0, n, GROUP):
            with store.transaction(durable=False) as tx:
                tx.insert_logs([r for lines in records[g : g + GROUP] for r in lines])
        stored = time.perf_counter() - started
        started = time.perf_counter()
        after, got = 0, 0
        while True:
            with store.transaction(write=False) as tx:
                page = tx.list_logs(LogFilter(pipeline="bench", after=after, limit=PAGE))
            if not page:
                break
            got += len(page)
            after = page[-1].pk
        read = time.perf_counter() - started
        assert got == 6 * n, got
    finally:
        store.close()
        pps_tx.LINES_PER_ROW = 64
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = conn.execute(
            "SELECT SUM(pgsize) FROM dbstat WHERE name IN ('logs', 'ix_logs_job', "
            "'ix_logs_pipeline')"
        ).fetchone()[0]
    finally:
        conn.close()
    return stored / n * 1e6, read / n * 1e6, size / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datums", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    layouts = {"one row per line": 1, "lines share a row": pps_tx.LINES_PER_ROW}
    runs: dict[str, list[tuple[float, float, float]]] = {k: [] for k in layouts}
    with tempfile.TemporaryDirectory(prefix="tusk-bench-") as scratch:
        for r in range(args.rounds):
            order = list(layouts) if r % 2 == 0 else list(reversed(layouts))
            for name in order:
                home = Path(scratch) / f"{r}-{layouts[name]}"
                home.mkdir()
                runs[name].append(one_round(home, args.datums, layouts[name]))
    print(f"datums: {args.datums:,} (6 system lines each), rounds: {args.rounds}")
    print()
    print("| layout | store µs per datum | read µs per datum | bytes per datum (logs + indexes) |")
    print("|---|---|---|---|")
    for name, values in runs.items():
        store_us, read_us, size = (statistics.median(v[k] for v in values) for k in range(3))
        print(f"| {name} | {store_us:.1f} | {read_us:.1f} | {size:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
