"""One new file on a big processed base vs on a small one: is an incremental job O(changed)?

    python bench/incremental_bench.py                       # bases of 1,000 and 100,000 datums
    python bench/incremental_bench.py --bases 1000,10000 --rounds 3
    python bench/incremental_bench.py --enumeration --bases 1000,100000   # no pipeline runs
    python bench/incremental_bench.py --bases 1000 --runtime bwrap        # sandboxed datums

In process (``tusk.Engine`` on SQLite and a local store, runtime ``host`` unless ``--runtime``
says otherwise), so the figures are
tusk's own cost: no HTTP, no CLI start. Each base is a repo of N small files with a pipeline
(glob ``/*``, ``cp -r /pfs/in/. /pfs/out/``, 2 workers) that has processed all of them. Then each
round puts one new file into every base, one after the other (the order alternating from round to
round), and measures the job the put triggers: its wall (``finished - started`` of the job
record) and put returned -> job success. Ratios are taken within each round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from tusk.api.pps import JobState
from tusk.meta import JobFilter, JobRecord
from tusk.pfs.tree import Tree
from tusk.pps.spec import parse_specs
from tusk.runtime import Engine, Settings

CMD = ["cp", "-r", "/pfs/in/.", "/pfs/out/"]


class Base:
    """A repo of ``size`` files and a pipeline that has processed them."""

    def __init__(self, engine: Engine, size: int) -> None:
        self.engine = engine
        self.size = size
        self.repo = f"in{size}"
        self.pipeline = f"p{size}"
        self.added = 0

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
        self.wait(0)
        return time.time() - t

    def newest(self) -> JobRecord | None:
        """The pipeline's newest job, read straight from the metadata store (cheap: the wait
        below reads it at every change while the job it times runs in this process)."""
        with self.engine.meta.transaction(write=False) as tx:
            rows = tx.list_jobs(JobFilter(pipeline=self.pipeline, limit=1))
        return rows[0] if rows else None

    def wait(self, after: int) -> JobRecord:
        """The first job newer than job ``pk`` ``after``, once it has ended: woken by the
        engine's change feed, as tuskd's own waits are (polling every 2 ms and listing every job,
        as this bench first did, took CPU from the job it timed: 63-80 ms per job against
        39-52 ms when polling every 50 ms)."""
        feed = self.engine.ctx.feed
        deadline = time.monotonic() + 3600
        while True:
            seen = feed.version
            job = self.newest()
            if job is not None and job.pk > after and job.state.terminal:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"a job of {self.pipeline}")
            feed.wait(seen, 0.5)
        if job.state is not JobState.SUCCESS:
            raise RuntimeError(f"job {job.id} ended {job.state}: {job.reason}")
        return job

    def one_new_file(self) -> tuple[float, float, str]:
        """(job wall, put returned -> success, progress) of one new file."""
        self.added += 1
        before = self.newest()
        batch = self.engine.files.open_put(self.repo, "master")
        batch.begin_file(f"/new{self.added:04d}")
        batch.write(b"new\n")
        batch.end_file()
        batch.commit()
        put = time.time()
        job = self.wait(before.pk if before is not None else 0)
        done = time.time()
        assert job.started is not None and job.finished is not None
        progress = f"{job.processed} + {job.skipped} / {job.total}"
        return job.finished - job.started, done - put, progress


def enumeration(engine: Engine, sizes: list[int], rounds: int) -> None:
    """Full enumeration vs glob diff, per base size, in the same rounds."""
    from tusk.pps.datums import InputCommit, datum_hash, enumerate_datums
    from tusk.pps.spec.inputs import Input

    e = engine
    heads: dict[int, tuple[str, str]] = {}
    for n in sizes:
        base = Base(e, n)
        e.repos.create(base.repo)
        batch = e.files.open_put(base.repo, "master")
        for i in range(n):
            batch.begin_file(f"/f{i:06d}")
            batch.write(f"datum {i}\n".encode())
            batch.end_file()
        old = batch.commit().commit.id
        batch = e.files.open_put(base.repo, "master")
        batch.begin_file("/new")
        batch.write(b"new\n")
        batch.end_file()
        new = batch.commit().commit.id
        heads[n] = (old, new)
    full: dict[int, list[float]] = {n: [] for n in sizes}
    diff: dict[int, list[float]] = {n: [] for n in sizes}
    for r in range(rounds):
        for n in sizes if r % 2 == 0 else list(reversed(sizes)):
            repo = f"in{n}"
            with e.meta.transaction(write=False) as tx:
                old_c, new_c = (tx.get_commit(repo, c) for c in heads[n])
            assert old_c is not None and new_c is not None
            assert old_c.tree is not None and new_c.tree is not None
            tree = Tree(e.store)  # a cold cache, as a job after a restart
            inp = Input.model_validate({"atom": {"repo": repo, "glob": "/*"}})
            commits = {(repo, "master"): InputCommit(repo, "master", new_c.id, new_c.tree)}
            t = time.perf_counter()
            datums = enumerate_datums(inp, commits, tree)
            [datum_hash(d, "p", "salt") for d in datums]
            full[n].append(time.perf_counter() - t)
            tree = Tree(e.store)
            t = time.perf_counter()
            changed = tree.glob_diff("/*", new_c.tree, old_c.tree)
            diff[n].append(time.perf_counter() - t)
            assert [p for p, _a, _b in changed] == ["/new"]
    print("| base files | enumerate + hash all datums ms | glob diff ms |")
    print("|---|---|---|")
    for n in sizes:
        print(f"| {n:,} | {med(full[n])} | {med(diff[n])} |")


def med(xs: list[float]) -> str:
    return f"{statistics.median(xs) * 1000:.1f} ({min(xs) * 1000:.1f}–{max(xs) * 1000:.1f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bases", default="1000,100000", help="base sizes, smallest first")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--enumeration", action="store_true", help="only time finding the datums")
    ap.add_argument("--runtime", default="host", help="TUSK_RUNTIME: host, bwrap or podman")
    args = ap.parse_args()
    sizes = [int(x) for x in args.bases.split(",")]
    work = Path(tempfile.mkdtemp(prefix="tusk-incbench-", dir=args.workdir))
    engine = Engine(Settings.for_home(work / "home", runtime=args.runtime))
    engine.start()
    try:
        if args.enumeration:
            enumeration(engine, sizes, args.rounds)
            return
        bases = [Base(engine, n) for n in sizes]
        for b in bases:
            print(f"base {b.size}: first job {b.build():.1f} s", flush=True)
        walls: dict[int, list[float]] = {n: [] for n in sizes}
        lat: dict[int, list[float]] = {n: [] for n in sizes}
        ratios: list[float] = []
        last: dict[int, str] = {}
        for r in range(args.rounds):
            order = bases if r % 2 == 0 else list(reversed(bases))
            row: dict[int, float] = {}
            for b in order:
                wall, latency, last[b.size] = b.one_new_file()
                walls[b.size].append(wall)
                lat[b.size].append(latency)
                row[b.size] = wall
            ratios.append(row[sizes[-1]] / row[sizes[0]])
            print(f"round {r + 1}: " + ", ".join(f"{n}: {row[n] * 1000:.1f} ms" for n in sizes))
        load = os.getloadavg()
        print()
        print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print("| base datums | job wall ms | put returned → success ms | last progress |")
        print("|---|---|---|---|")
        for n in sizes:
            print(f"| {n:,} | {med(walls[n])} | {med(lat[n])} | `{last[n]}` |")
        print()
        rs = sorted(ratios)
        print(
            f"T({sizes[-1]:,}) / T({sizes[0]:,}) (job wall, same round): median "
            f"{statistics.median(ratios):.2f} ({rs[0]:.2f}–{rs[-1]:.2f})"
        )
    finally:
        engine.close()
        _cleanup(work)


def _cleanup(work: Path) -> Any:
    import shutil

    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
