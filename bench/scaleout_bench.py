"""Scale-out benchmarks: executors, metadata stores and object stores side by side, same run.

    python bench/scaleout_bench.py            # full run
    python bench/scaleout_bench.py --quick    # smoke run (small sizes, one round, < 1 minute
                                              # plus the Ray cluster's start)

Benchmarks (see bench/README.md): 5 a 1,000-datum job and one new file on top of 10,000
processed datums, on the local executor vs Ray (a real 2-node cluster from tusk.testing.ray);
6 commits per second with 8 concurrent writers (threads, one Client each), on their own branches
and on one branch, on SQLite vs PostgreSQL; 7 put-file of 1 GiB to the local object store vs S3
(moto server). Every server is a real tuskd driven through the CLI or a Client.
"""

# ruff: noqa: B023
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pfs_bench import (
    MiB,
    Samples,
    add_run_options,
    machine,
    new_workdir,
    parse_only,
    remove_tree,
    write_random,
    write_results,
)
from pps_bench import COMMANDS, Server, atom, make_tree, ts_of

from tusk import Client

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
WRITERS = 8


@dataclass(frozen=True)
class Config:
    datums: int
    inc_files: int
    commits: int
    big_bytes: int
    rounds: int
    reps: int
    workdir: Path
    only: frozenset[int]
    postgres: str


class Bench:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.s = Samples()
        self.cleanups: list[object] = []
        self.n = 0
        self.progress = "?"

    def wants(self, n: int) -> bool:
        return not self.cfg.only or n in self.cfg.only

    def home(self, stem: str) -> Path:
        self.n += 1
        return self.cfg.workdir / f"{stem}{self.n}"

    # 5 ------------------------------------------------------------------------------------------
    def executors(self) -> None:
        from tusk.testing.ray import start_cluster, stop_cluster

        cfg = self.cfg
        t = time.monotonic()
        cluster = start_cluster(cfg.workdir / "ray")
        self.s.add("x.ray_start", time.monotonic() - t)
        try:
            servers = {
                "local": Server(self.home("local"), TUSK_RUNTIME="host"),
                "ray": Server(
                    self.home("ray"),
                    TUSK_RUNTIME="host",
                    TUSK_EXECUTOR=cluster.client_url,
                    RAY_AUTH_MODE="disabled",
                    RAY_USAGE_STATS_ENABLED="0",
                ),
            }
            try:
                self._executors(servers)
            finally:
                for srv in servers.values():
                    srv.stop()
        finally:
            stop_cluster(cluster)

    def _executors(self, servers: dict[str, Server]) -> None:
        cfg = self.cfg
        tree = make_tree(cfg.workdir / "tree-datums", cfg.datums)
        inc_tree = make_tree(cfg.workdir / "tree-inc", cfg.inc_files)
        for ex, srv in servers.items():
            srv.create_pipeline("inc", atom("inc_in"), COMMANDS["cp"], 2)
            t0 = time.time()
            srv.put_tree("inc_in", inc_tree)
            job = srv.wait_job("inc", srv.newest_job("inc", set()))
            self.s.add(f"x.{ex}.inc_base", ts_of(job, "finished") - ts_of(job, "started"))
            self.s.add(f"x.{ex}.inc_base_put", time.time() - t0)
        for r in range(cfg.rounds):
            order = list(servers.items())
            if r % 2:
                order.reverse()
            for ex, srv in order:
                name = f"d{r}"
                srv.create_pipeline(name, atom(name + "_in"), COMMANDS["cp"], 2)
                t0 = time.time()
                srv.put_tree(name + "_in", tree)
                job = srv.wait_job(name, srv.newest_job(name, set()))
                wall = ts_of(job, "finished") - ts_of(job, "started")
                self.s.add(f"x.{ex}.job", wall)
                self.s.add(f"x.{ex}.job_put", time.time() - t0)
                self.s.add(f"x.{ex}.per_datum", wall * 2 / cfg.datums)
                srv.client.delete_pipeline(name)
                vals = []
                for rep in range(cfg.reps):
                    src = cfg.workdir / f"new-{ex}-{r}-{rep}"
                    src.write_bytes(src.name.encode())
                    before = srv.job_ids("inc")
                    t_put = srv.put_one("inc_in", f"/new{r:02d}{rep:02d}", src)
                    job = srv.wait_job("inc", srv.newest_job("inc", before))
                    assert job.processed == 1, job
                    vals.append(time.time() - t_put)
                    self.progress = f"{job.processed} + {job.skipped} / {job.total}"
                self.s.add(f"x.{ex}.inc", statistics.median(vals))
                print(f"  5 {ex} round {r + 1}: job {wall:.2f} s", flush=True)

    # 6 ------------------------------------------------------------------------------------------
    def commits(self) -> None:
        import psycopg

        cfg = self.cfg
        schema = "tusk_bench_" + uuid.uuid4().hex[:10]
        with psycopg.connect(cfg.postgres, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f"CREATE SCHEMA {schema}")
        sep = "&" if "?" in cfg.postgres else "?"
        pg_url = f"{cfg.postgres}{sep}options=-csearch_path%3D{schema}"
        try:
            servers = {
                "sqlite": Server(self.home("sqlite")),
                "postgres": Server(self.home("pg"), TUSK_METADATA_URL=pg_url),
            }
            try:
                for r in range(cfg.rounds):
                    order = list(servers.items())
                    if r % 2:
                        order.reverse()
                    for db, srv in order:
                        for mode in ("branches", "one-branch"):
                            rate = self._writers(srv, f"w{r}{mode[0]}", mode)
                            self.s.add(f"c.{db}.{mode}", rate)
                            print(f"  6 {db} {mode}: {rate:.0f} commits/s", flush=True)
            finally:
                for srv in servers.values():
                    srv.stop()
        finally:
            with psycopg.connect(cfg.postgres, autocommit=True, connect_timeout=5) as admin:
                admin.execute(f"DROP SCHEMA {schema} CASCADE")

    def _writers(self, srv: Server, repo: str, mode: str) -> float:
        """Commits per second of WRITERS threads, each doing ``commits`` put_file calls."""
        srv.client.create_repo(repo)
        srv.client.put_file(repo, "master", "/seed", b"seed")
        if mode == "branches":
            for i in range(WRITERS):
                srv.client.create_branch(repo, f"b{i}", head="master")
        clients = [Client(srv.address) for _ in range(WRITERS)]
        barrier = threading.Barrier(WRITERS + 1)
        errors: list[BaseException] = []

        def write(i: int) -> None:
            branch = f"b{i}" if mode == "branches" else "master"
            barrier.wait()
            try:
                for k in range(self.cfg.commits):
                    clients[i].put_file(repo, branch, f"/w{i}/f{k}", f"{i} {k}".encode())
            except BaseException as e:  # noqa: BLE001 - reported after the join
                errors.append(e)

        threads = [threading.Thread(target=write, args=(i,)) for i in range(WRITERS)]
        for th in threads:
            th.start()
        barrier.wait()
        t = time.perf_counter()
        for th in threads:
            th.join()
        elapsed = time.perf_counter() - t
        for c in clients:
            c.close()
        if errors:
            raise errors[0]
        return WRITERS * self.cfg.commits / elapsed

    # 7 ------------------------------------------------------------------------------------------
    def big_put(self) -> None:
        from tusk.testing.moto import MotoServer

        cfg = self.cfg
        src = cfg.workdir / "big.bin"
        write_random(src, cfg.big_bytes)
        moto = MotoServer(cfg.workdir)
        moto.start()
        try:
            for r in range(cfg.rounds):
                order = ["local", "s3"] if r % 2 == 0 else ["s3", "local"]
                for store in order:
                    if store == "s3":
                        bucket = moto.create_bucket()
                        url = f"s3://{bucket}/tusk?endpoint={moto.endpoint}&path_style=1"
                        srv = Server(self.home("s3"), TUSK_OBJECT_URL=url, **moto.env())
                    else:
                        srv = Server(self.home("local"))
                    try:
                        srv.cli("create-repo", "big")
                        t = time.perf_counter()
                        srv.cli("put-file", "big", "master", "/big.bin", "-f", str(src))
                        self.s.add(f"b.{store}", time.perf_counter() - t)
                    finally:
                        srv.stop()
                    if store == "s3":
                        moto.remove_bucket(bucket)
                    print(f"  7 {store}: {self.s.values[f'b.{store}'][-1]:.2f} s", flush=True)
        finally:
            moto.stop()

    def run(self) -> None:
        if self.wants(6):
            self.commits()
        if self.wants(7):
            self.big_put()
        if self.wants(5):
            self.executors()


def goal(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def report(b: Bench) -> Iterator[str]:
    cfg, s = b.cfg, b.s
    if s.has("x.local.job"):
        yield "### 5. local executor vs Ray (2-node cluster: head 2 CPUs + node 1 CPU, same machine)\n"
        yield (
            f"Pipelines run `cp` with 2 workers, sandbox `none`; the job wall is the job record's "
            f"`finished − started`. Ray cluster start: {s.fmt('x.ray_start')} s.\n"
        )
        yield "| figure | local | Ray | Ray ÷ local |"
        yield "|---|---|---|---|"
        for label, k, scale, digits in (
            (f"{cfg.datums:,}-datum job: wall s", "job", 1, 2),
            (f"{cfg.datums:,}-datum job: put→success s", "job_put", 1, 2),
            ("ms per datum (wall × 2 / datums)", "per_datum", 1000, 2),
            (f"first job over {cfg.inc_files:,} datums: wall s (1 run)", "inc_base", 1, 1),
            (f"1 new file on {cfg.inc_files:,} datums: CLI put returned → success s", "inc", 1, 2),
        ):
            a, c = f"x.local.{k}", f"x.ray.{k}"
            ratio = s.med(c) / s.med(a) if s.med(a) else float("nan")
            yield f"| {label} | {s.fmt(a, scale, digits)} | {s.fmt(c, scale, digits)} | {ratio:.2f} |"
        yield f"\nLast incremental job's progress: `{b.progress}`.\n"
    if s.has("c.sqlite.branches"):
        yield (
            f"### 6. commits per second, {WRITERS} writer threads (one Client each), "
            f"{cfg.commits} `put_file` commits each\n"
        )
        yield "| metadata store | own branch per writer | all on `master` |"
        yield "|---|---|---|"
        for db in ("sqlite", "postgres"):
            yield (
                f"| {db} | {s.fmt(f'c.{db}.branches', digits=0)} "
                f"| {s.fmt(f'c.{db}.one-branch', digits=0)} |"
            )
        yield "\nReference: lakeFS sizing guide, 7.6k writes/s on large hardware.\n"
    if s.has("b.local"):
        mib = cfg.big_bytes / MiB
        yield f"### 7. CLI put-file of one {mib:.0f} MiB file (random bytes), local store vs S3 (moto)\n"
        yield "| object store | time s | MiB/s |"
        yield "|---|---|---|"
        for store, label in (("local", "`file://` (local disk)"), ("s3", "`s3://` (moto server)")):
            sp = Samples()
            sp.values["x"] = [mib / t for t in s.values[f"b.{store}"]]
            yield f"| {label} | {s.fmt(f'b.{store}')} | {sp.fmt('x', digits=0)} |"
        yield ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="small sizes, 1 round: a smoke test")
    p.add_argument("--rounds", type=int, help="rounds (default 3; 1 with --quick)")
    p.add_argument("--reps", type=int, help="incremental puts per round in 5 (default 3)")
    p.add_argument("--datums", type=int, help="datums of the job in 5 (default 1000)")
    p.add_argument("--inc-files", type=int, help="processed datums in 5 (default 10000)")
    p.add_argument("--commits", type=int, help="commits per writer in 6 (default 50)")
    p.add_argument("--big-mib", type=int, help="size of the file in 7 in MiB (default 1024)")
    p.add_argument("--postgres", default=POSTGRES_URL, help=f"PostgreSQL (default {POSTGRES_URL})")
    add_run_options(p, "6,7")
    a = p.parse_args(argv)

    workdir = new_workdir(a.workdir, "tusk-scaleout-bench-")
    q = a.quick
    cfg = Config(
        datums=a.datums or (50 if q else 1000),
        inc_files=a.inc_files or (100 if q else 10_000),
        commits=a.commits or (3 if q else 50),
        big_bytes=(a.big_mib or (16 if q else 1024)) * MiB,
        rounds=a.rounds or (1 if q else 3),
        reps=a.reps or (1 if q else 3),
        workdir=workdir,
        only=parse_only(a.only),
        postgres=a.postgres,
    )
    print(f"# workdir {workdir}", flush=True)
    cmd = " ".join(
        ["python", "bench/scaleout_bench.py", *(argv if argv is not None else sys.argv[1:])]
    )
    bench = Bench(cfg)
    started = time.monotonic()
    bench.run()
    text = "\n".join(
        [
            f"## `{cmd}`\n",
            machine(cfg.workdir),
            f"- {cfg.rounds} round(s); a cell is the median over rounds (min–max); measured in "
            f"{time.monotonic() - started:.0f} s\n",
            *report(bench),
        ]
    )
    print(text)
    write_results(text, bench.s, a.out, a.json)
    if not a.keep:
        remove_tree(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
