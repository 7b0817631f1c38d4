"""One page of a commit listing (500 commits), its children and provenance read per commit
(``commit_info`` for each row, as before) against read for the page at once (``commit_infos``),
on the same database in the same run: the server-side cost of list-commit's pages.

    .venv/bin/python bench/commit_page_bench.py --rows 20000 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from listing_bench import seed  # noqa: E402

from tusk.pfs import commits  # noqa: E402
from tusk.runtime import Engine, Settings  # noqa: E402

PAGE = 500


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tusk-commit-page-") as tmp:
        home = Path(tmp)
        seed(home, args.rows)
        engine = Engine(Settings.for_home(home, runtime="host"))
        print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        per_row, batched = [], []
        for _ in range(args.rounds):
            with engine.ctx.meta.transaction(write=False) as tx:
                rows = tx.list_commits("big", limit=PAGE)
                start = time.perf_counter()
                one = [commits.commit_info(tx, r) for r in rows]
                per_row.append(time.perf_counter() - start)
                start = time.perf_counter()
                many = commits.commit_infos(tx, rows)
                batched.append(time.perf_counter() - start)
            assert one == many
        a, b = statistics.median(per_row), statistics.median(batched)
        print(f"{args.rows:,} commits, a page of {PAGE}, {args.rounds} rounds (medians)")
        print(f"per commit: {a * 1000:.1f} ms; per page: {b * 1000:.1f} ms; ratio {a / b:.1f}x")
        print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
