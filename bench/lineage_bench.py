"""File-level lineage on a big job: does tracing one output file cost the job's size?

    python bench/lineage_bench.py                        # bases of 100 and 10,000 datums
    python bench/lineage_bench.py --bases 100,10000 --rounds 5 --reps 20

In process (``tusk.Engine`` on SQLite and a local store, runtime ``host``), so the figures are
tusk's own cost: no HTTP, no CLI start. Each base is a repo of N small files with a pipeline
(glob ``/*``, ``cp -r /pfs/in/. /pfs/out/``, 2 workers) that processed all of them, then one new
file and its incremental job (1 datum run, N reused without a row). Each round (the order of the
bases alternating) times, as the median of ``--reps`` calls:

- lineage of a file an earlier job's datum wrote, at the incremental job's output commit;
- lineage of the file the incremental job's own datum wrote;
- what lineage would cost if it had to find the job's datums by enumeration (glob the input
  commit, hash every datum: the path jobs with join/group inputs take).

Ratios (10,000 ÷ 100, and enumeration ÷ index) are taken within each round.

``--write-cost`` instead measures what the index adds where it is written: the job master's
transaction that records a batch of 256 datum results (stored outputs of 2 files each), with
the files indexed and without (``paths=()``), alternating within each round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tusk.api.pps import JobInfo
from tusk.pps.datums import datum_hash, enumerate_datums
from tusk.pps.running.job_inputs import input_commits, load_spec
from tusk.pps.spec import parse_specs
from tusk.runtime import Engine, Settings
from tusk.testing import wait_for

CMD = ["cp", "-r", "/pfs/in/.", "/pfs/out/"]


class Base:
    """A repo of ``size`` files, a pipeline that processed them, then one more file."""

    def __init__(self, engine: Engine, size: int) -> None:
        self.engine = engine
        self.size = size
        self.repo = f"in{size}"
        self.pipeline = f"p{size}"
        self.head = ""

    def build(self) -> float:
        e = self.engine
        e.repos.create(self.repo)
        batch = e.files.open_put(self.repo, "master")
        for i in range(self.size):
            batch.begin_file(f"/f{i:06d}")
            batch.write(f"datum {i}\n".encode())
            batch.end_file()
        batch.commit()
        spec = {
            "pipeline": {"name": self.pipeline},
            "transform": {"cmd": CMD},
            "input": {"atom": {"name": "in", "repo": self.repo, "glob": "/*"}},
            "parallelism_spec": {"constant": 2},
        }
        (parsed,) = parse_specs(json.dumps(spec), "bench")
        t = time.time()
        e.pipelines.create(parsed)
        self.wait(1)
        took = time.time() - t
        batch = e.files.open_put(self.repo, "master")
        batch.begin_file("/new")
        batch.write(b"new\n")
        batch.end_file()
        self.head = batch.commit().commit.id
        job = self.wait(2)
        assert job.id == self.head and job.processed == 1 and job.skipped == self.size, job
        return took

    def wait(self, count: int) -> JobInfo:
        def done() -> JobInfo | None:
            jobs = self.engine.jobs.list(self.pipeline)
            if len(jobs) >= count and all(j.state.terminal for j in jobs):
                return jobs[0]
            return None

        job: JobInfo = wait_for(f"{count} jobs of {self.pipeline}", done, 3600, interval=0.01)
        if job.state != "success":
            raise RuntimeError(f"job {job.id} ended {job.state}: {job.reason}")
        return job

    def lineage_old(self) -> None:
        lin = self.engine.lineage.file(self.pipeline, self.head, f"/f{self.size // 2:06d}")
        assert len(lin.datums) == 1 and lin.datums[0].job_id != self.head

    def lineage_new(self) -> None:
        lin = self.engine.lineage.file(self.pipeline, self.head, "/new")
        assert len(lin.datums) == 1 and lin.datums[0].job_id == self.head

    def enumerate(self) -> None:
        with self.engine.meta.transaction(write=False) as tx:
            job = tx.get_job(self.pipeline, self.head)
        assert job is not None
        spec, doc = load_spec(self.engine.ctx, job.spec_commit)
        inputs = input_commits(self.engine.ctx, self.pipeline, self.head)
        datums = enumerate_datums(spec.input, inputs, self.engine.ctx.tree)
        hashes = {datum_hash(d, self.pipeline, str(doc["salt"])) for d in datums}
        assert len(hashes) == self.size + 1


def timed(fn: Callable[[], None], reps: int) -> float:
    """The median wall of ``reps`` calls, in seconds."""
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def write_cost(engine: Engine, rounds: int) -> None:
    """The batch transaction of 256 results with and without index rows, same rounds."""
    from tusk.meta import CachedDatum, JobCounters

    batch = 256
    n = 0
    t: dict[bool, list[float]] = {True: [], False: []}
    ratios = []
    for r in range(rounds * 4):
        row: dict[bool, float] = {}
        for indexed in (True, False) if r % 2 == 0 else (False, True):
            n += 1
            cached = [
                CachedDatum(
                    "wc",
                    f"h{n}-{i}",
                    json.dumps({"files": [{"path": f"/d{i}/a"}, {"path": f"/d{i}/b"}]}),
                    10,
                    "j",
                    (f"/d{i}/a", f"/d{i}/b") if indexed else (),
                )
                for i in range(batch)
            ]
            start = time.perf_counter()
            with engine.meta.transaction(durable=False) as tx:
                tx.record_results("wc", "j", [], cached, [], JobCounters())
            row[indexed] = time.perf_counter() - start
            t[indexed].append(row[indexed] / batch)
        ratios.append(row[True] / row[False])
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| stored outputs per transaction | µs per datum, indexed | µs per datum, not indexed |")
    print("|---|---|---|")
    us = {k: [x * 1e3 for x in v] for k, v in t.items()}  # med() prints ×1000
    print(f"| {batch} | {med(us[True])} | {med(us[False])} |")
    print(f"indexed / not indexed, same round: {ratio(ratios)}")


def med(xs: list[float]) -> str:
    return f"{statistics.median(xs) * 1000:.2f} ({min(xs) * 1000:.2f}–{max(xs) * 1000:.2f})"


def ratio(xs: list[float]) -> str:
    s = sorted(xs)
    return f"{statistics.median(xs):.2f} ({s[0]:.2f}–{s[-1]:.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--bases", default="100,10000", help="base sizes, smallest first")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--write-cost", action="store_true", help="only time recording results")
    args = ap.parse_args()
    sizes = [int(x) for x in args.bases.split(",")]
    work = Path(tempfile.mkdtemp(prefix="tusk-linbench-", dir=args.workdir))
    engine = Engine(Settings.for_home(work / "home", runtime="host"))
    engine.start()
    try:
        if args.write_cost:
            write_cost(engine, args.rounds)
            return
        bases = [Base(engine, n) for n in sizes]
        for b in bases:
            print(f"base {b.size}: first job {b.build():.1f} s", flush=True)
        kinds = ("old", "new", "enum")
        t: dict[tuple[int, str], list[float]] = {(n, k): [] for n in sizes for k in kinds}
        big_small: list[float] = []
        enum_index: list[float] = []
        loads = []
        for r in range(args.rounds):
            order = bases if r % 2 == 0 else list(reversed(bases))
            row: dict[tuple[int, str], float] = {}
            for b in order:
                row[(b.size, "old")] = timed(b.lineage_old, args.reps)
                row[(b.size, "new")] = timed(b.lineage_new, args.reps)
                row[(b.size, "enum")] = timed(b.enumerate, max(1, args.reps // 4))
            for k, v in row.items():
                t[k].append(v)
            big, small = sizes[-1], sizes[0]
            big_small.append(row[(big, "old")] / row[(small, "old")])
            enum_index.append(row[(big, "enum")] / row[(big, "old")])
            loads.append(os.getloadavg()[0])
            print(
                f"round {r + 1}: "
                + ", ".join(f"{n}/{k}: {row[(n, k)] * 1000:.2f} ms" for n in sizes for k in kinds),
                flush=True,
            )
        print()
        print(
            f"load average (1 min) during the rounds: median {statistics.median(loads):.2f} "
            f"({min(loads):.2f}–{max(loads):.2f})"
        )
        print()
        print(
            "| job datums | lineage, reused datum ms | lineage, new datum ms "
            "| enumerate + hash the job's datums ms |"
        )
        print("|---|---|---|---|")
        for n in sizes:
            print(
                f"| {n + 1:,} | {med(t[(n, 'old')])} | {med(t[(n, 'new')])} "
                f"| {med(t[(n, 'enum')])} |"
            )
        print()
        print(
            f"lineage T({sizes[-1] + 1:,}) / T({sizes[0] + 1:,}), reused datum, same round: "
            f"{ratio(big_small)}"
        )
        print(
            f"enumeration / lineage by index at {sizes[-1] + 1:,} datums, same round: "
            f"{ratio(enum_index)}"
        )
    finally:
        engine.close()
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
