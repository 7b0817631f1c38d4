"""PPS benchmarks: pipelines through a real tuskd and the real CLI, timed from the job records.

    python bench/pps_bench.py            # full run (about 12 minutes on 2 cores)
    python bench/pps_bench.py --quick    # smoke run (small sizes, one round, < 1 minute)

Benchmarks (see bench/README.md): 1 per-datum overhead of a 1,000-datum job (``true`` and ``cp``,
parallelism 1 and 2, sandbox ``none`` and ``bwrap``) against the bare spawn of the same argv;
2 one new file on top of 10,000 processed datums; 3 trigger latency from put-file returning to the
job running and its user code starting; 4 one changed file through a 5-stage chain over 10,000
files; 5 a CPU-bound datum (a shell loop) at parallelism 1 and 2, beside the host running the same
loop bare 1 and 2 at a time (the machine's own ceiling); 6 datum batching: the datums of 1 through
one Python process per worker (``tusk_batch``, doing nothing) beside ``true`` once per datum, in
the same Python image, parallelism 1 and 2 (the first sandbox), with tuskd's CPU per datum. Trees are deleted only at the end
(ext4 without a journal is slow to create files for minutes after mass deletes).
"""

# The lambdas handed to timed() run before the loop moves on.
# ruff: noqa: B023
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pfs_bench import (
    CLI,
    Samples,
    add_run_options,
    machine,
    new_workdir,
    parse_only,
    remove_tree,
    write_results,
)
from pfs_bench import Server as PfsServer

from tusk.api.pps import JobInfo
from tusk.testing import wait_for
from tusk.testing.images import build_python_image
from tusk.worker.runtimes.host import host_root_binds

TERMINAL = ("success", "failure", "killed")
COMMANDS = {"true": ["true"], "cp": ["cp", "-r", "/pfs/in/.", "/pfs/out/"]}
# Benchmark 6's user code: every datum through one process, doing nothing with it.
BATCH_LOOP = "import tusk_batch\nfor _ in tusk_batch.datums():\n    pass\n"
# The CPU-bound datum of benchmark 5: 0.075-0.25 s of one CPU in dash (machines differ), no I/O.
CPU_LOOP = "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done"


@dataclass(frozen=True)
class Config:
    datums: int
    inc_files: int
    chain_files: int
    stages: int
    cpu_datums: int
    rounds: int
    reps: int
    sandboxes: tuple[str, ...]
    workdir: Path
    only: frozenset[int]
    varied_sizes: bool = False  # benchmark 6's files of 1-3,000 bytes (largest datums first)


# -- a server ----------------------------------------------------------------------------------
class Server(PfsServer):
    """tuskd with extra environment (sandbox, executor, URLs) and pipeline helpers."""

    def __init__(self, home: Path, **env: str) -> None:
        super().__init__(home, client_timeout=600.0, **env)

    def cli(self, *args: str) -> str:
        out = subprocess.run([*CLI, *args], env=self.env, capture_output=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {out.stderr.decode()[-2000:]}")
        return out.stdout.decode()

    def put_tree(self, repo: str, tree: Path) -> float:
        """CLI ``put-file -r repo master / -f tree``; returns when the CLI has exited."""
        self.cli("put-file", "-r", repo, "master", "/", "-f", str(tree))
        return time.time()

    def put_one(self, repo: str, path: str, src: Path, overwrite: bool = False) -> float:
        self.cli("put-file", *(["-o"] if overwrite else []), repo, "master", path, "-f", str(src))
        return time.time()

    def create_pipeline(
        self,
        name: str,
        input: dict[str, Any],
        cmd: list[str],
        par: int,
        new_repo: bool = True,
        **transform: Any,
    ) -> None:
        spec = {
            "pipeline": {"name": name},
            "transform": {"cmd": cmd, **transform},
            "input": input,
            "parallelism_spec": {"constant": par},
        }
        path = self.home.parent / f"{name}.json"
        path.write_text(json.dumps(spec))
        if new_repo:
            self.cli("create-repo", input["atom"]["repo"])
        self.cli("create-pipeline", "-f", str(path))

    def newest_job(self, pipeline: str, not_in: set[str]) -> str:
        """The id of the pipeline's job that is not in ``not_in`` (waits until it exists)."""

        def new_job() -> str | None:
            ids = (j.id for j in self.client.list_job(pipeline))
            return next((i for i in ids if i not in not_in), None)

        return wait_for(f"a new job of {pipeline}", new_job, 60, interval=0.005)

    def wait_job(self, pipeline: str, job_id: str) -> JobInfo:
        job = self.client.inspect_job(job_id, pipeline=pipeline, block=True)
        if job.state != "success":
            raise RuntimeError(f"job {pipeline}/{job_id} ended {job.state}: {job.reason}")
        return job

    def job_ids(self, pipeline: str) -> set[str]:
        return {j.id for j in self.client.list_job(pipeline)}


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def atom(repo: str, glob: str = "/*") -> dict[str, Any]:
    return {"atom": {"name": "in", "repo": repo, "glob": glob}}


def make_tree(root: Path, count: int, prefix: str = "f", varied: bool = False) -> Path:
    """``count`` files of a few bytes, flat (glob ``/*`` gives one datum per file); ``varied``:
    of 1 to 3,000 bytes each (the same sizes every run), so that a job, which runs its largest
    datums first, takes them in no order of their paths."""
    root.mkdir(parents=True)
    sizes = random.Random(6)
    for i in range(count):
        data = b"x" * sizes.randint(1, 3000) if varied else f"datum {i}\n".encode()
        (root / f"{prefix}{i:05d}").write_bytes(data)
    return root


def _host_bwrap(argv: list[str], pfs: str) -> list[str]:
    """``argv`` under bubblewrap with the host's root entries and ``pfs`` at /pfs."""
    binds = host_root_binds()
    return ["bwrap", *binds, "--ro-bind", pfs, "/pfs", "--bind", pfs + "/out", "/pfs/out",
            "--", *argv]  # fmt: skip


def spawn_floor(argv: list[str], n: int, work: Path, sandbox: str) -> float:
    """Seconds per ``subprocess.run`` of the datum's argv (``/pfs`` rewritten to a real dir;
    wrapped in the same bwrap call the worker makes when ``sandbox`` is bwrap)."""
    pfs = work / "floor-pfs"
    if not pfs.exists():
        (pfs / "in").mkdir(parents=True)
        (pfs / "out").mkdir()
        (pfs / "in" / "f00000").write_bytes(b"datum 0\n")
    real = [a.replace("/pfs", str(pfs)) for a in argv]
    if sandbox == "host":  # host mode binds /pfs with bubblewrap, as here
        real = _host_bwrap(argv, str(pfs))
    t = time.perf_counter()
    for _ in range(n):
        subprocess.run(real, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t) / n


def host_parallel(argv: list[str], n: int, par: int) -> float:
    """Wall seconds for ``n`` runs of ``argv`` on the host, ``par`` at a time (no tusk)."""
    t0 = time.perf_counter()
    left = n
    running: list[subprocess.Popen[bytes]] = []
    while left or running:
        while left and len(running) < par:
            running.append(subprocess.Popen(argv))
            left -= 1
        running.pop(0).wait()
    return time.perf_counter() - t0


def ts_of(job: JobInfo, key: str) -> float:
    return float(getattr(job, key))


# -- the benchmarks ----------------------------------------------------------------------------
class Bench:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.s = Samples()
        self.servers: dict[str, Server] = {}
        self.n = 0
        self.progress = "?"

    def wants(self, n: int) -> bool:
        return not self.cfg.only or n in self.cfg.only

    def server(self, sandbox: str) -> Server:
        if sandbox not in self.servers:
            home = self.cfg.workdir / f"home-{sandbox}"
            self.servers[sandbox] = Server(home, TUSK_RUNTIME=sandbox)
        return self.servers[sandbox]

    def name(self, stem: str) -> str:
        self.n += 1
        return f"{stem}{self.n}"

    def close(self) -> None:
        for srv in self.servers.values():
            srv.stop()

    # 1 ------------------------------------------------------------------------------------------
    def per_datum(self, r: int) -> None:
        cfg = self.cfg
        tree = self.cfg.workdir / "tree-datums"
        if not tree.exists():
            make_tree(tree, cfg.datums)
        order = cfg.sandboxes if r % 2 == 0 else tuple(reversed(cfg.sandboxes))
        for sandbox in order:
            srv = self.server(sandbox)
            for cmd_name, argv in COMMANDS.items():
                floor = spawn_floor(argv, cfg.datums, cfg.workdir, "none")
                self.s.add(f"d.{sandbox}.{cmd_name}.floor", floor)
                if sandbox == "host":
                    bw = spawn_floor(argv, cfg.datums, cfg.workdir, "bwrap")
                    self.s.add(f"d.{sandbox}.{cmd_name}.floor_bwrap", bw)
                for par in (1, 2):
                    name = self.name(f"d{cmd_name}")
                    repo = name + "_in"
                    srv.create_pipeline(name, atom(repo), argv, par)
                    t0 = time.time()
                    t_put = srv.put_tree(repo, tree)
                    job = srv.wait_job(name, srv.newest_job(name, set()))
                    t_done = time.time()
                    assert job.processed == cfg.datums, job
                    wall = ts_of(job, "finished") - ts_of(job, "started")
                    k = f"d.{sandbox}.{cmd_name}.{par}"
                    self.s.add(k + ".wall", wall)
                    self.s.add(k + ".put_to_success", t_done - t0)
                    self.s.add(k + ".put_cli", t_put - t0)
                    self.s.add(k + ".per_datum", wall * par / cfg.datums)
                    self.s.add(k + ".overhead", wall * par / cfg.datums - floor)
                    srv.client.delete_pipeline(name)
                    print(f"  1 {sandbox} {cmd_name} p{par}: {wall:.2f} s", flush=True)

    # 2 ------------------------------------------------------------------------------------------
    def incremental_setup(self) -> None:
        srv = self.server(self.cfg.sandboxes[0])
        tree = make_tree(self.cfg.workdir / "tree-inc", self.cfg.inc_files)
        srv.create_pipeline("inc", atom("inc_in"), COMMANDS["cp"], 2)
        t0 = time.time()
        srv.put_tree("inc_in", tree)
        job = srv.wait_job("inc", srv.newest_job("inc", set()))
        self.s.add("inc.base.wall", ts_of(job, "finished") - ts_of(job, "started"))
        self.s.add("inc.base.put_to_success", time.time() - t0)

    def incremental(self, r: int) -> None:
        srv = self.server(self.cfg.sandboxes[0])
        for rep in range(self.cfg.reps):
            src = self.cfg.workdir / f"inc-new-{r}-{rep}"
            src.write_bytes(f"new {r} {rep}\n".encode())
            before = srv.job_ids("inc")
            t0 = time.time()
            t_put = srv.put_one("inc_in", f"/new{r:02d}{rep:02d}", src)
            job = srv.wait_job("inc", srv.newest_job("inc", before))
            t_done = time.time()
            total = self.cfg.inc_files + r * self.cfg.reps + rep + 1
            got = (job.processed, job.skipped, job.total)
            assert got == (1, total - 1, total), got
            self.s.add(f"inc.{r}.cli_put", t_put - t0)
            self.s.add(f"inc.{r}.put_to_success", t_done - t_put)
            self.s.add(f"inc.{r}.start_to_success", t_done - t0)
            self.s.add(f"inc.{r}.wall", ts_of(job, "finished") - ts_of(job, "started"))
            self.progress = f"{got[0]} + {got[1]} / {got[2]}"
        self._fold(r, "inc", ("cli_put", "put_to_success", "start_to_success", "wall"))

    def _fold(self, r: int, stem: str, keys: tuple[str, ...]) -> None:
        """A round's median of its repetitions becomes the round's value."""
        for k in keys:
            vals = self.s.values.pop(f"{stem}.{r}.{k}")
            self.s.add(f"{stem}.{k}", statistics.median(vals))

    # 3 ------------------------------------------------------------------------------------------
    def latency(self, r: int) -> None:
        srv = self.server(self.cfg.sandboxes[0])
        if "lat" not in {p.name for p in srv.client.list_pipeline()}:
            srv.create_pipeline("lat", atom("lat_in"), ["date", "+%s.%N"], 1)
        for rep in range(self.cfg.reps):
            for via in ("client", "cli"):
                before = srv.job_ids("lat")
                path = f"/{via}{r:02d}{rep:02d}"
                if via == "cli":
                    src = self.cfg.workdir / "lat-src"
                    src.write_bytes(path.encode())
                    t0 = srv.put_one("lat_in", path, src)
                else:
                    srv.client.put_file("lat_in", "master", path, path.encode())
                    t0 = time.time()
                job_id = srv.newest_job("lat", before)
                job = srv.wait_job("lat", job_id)
                t_done = time.time()
                logs = list(srv.client.get_logs(pipeline="lat", job=job_id))
                user = [float(x.message) for x in logs if x.stream == "stdout"]
                first = [x.ts for x in logs if x.stream == "system"]
                master = list(srv.client.get_logs(pipeline="lat", job=job_id, master=True))
                running = [x.ts for x in master if x.message.startswith("job running")]
                k = f"lat.{r}.{via}"
                self.s.add(k + ".created", ts_of(job, "started") - t0)
                self.s.add(k + ".running", running[0] - t0)
                self.s.add(k + ".datum", min(first) - t0)
                self.s.add(k + ".user", user[0] - t0)
                self.s.add(k + ".success", t_done - t0)
        for via in ("client", "cli"):
            for stage in ("created", "running", "datum", "user", "success"):
                vals = self.s.values.pop(f"lat.{r}.{via}.{stage}")
                self.s.add(f"lat.{via}.{stage}", statistics.median(vals))

    # 4 ------------------------------------------------------------------------------------------
    def chain_setup(self) -> None:
        srv = self.server(self.cfg.sandboxes[0])
        tree = make_tree(self.cfg.workdir / "tree-chain", self.cfg.chain_files)
        prev = "chain_in"
        for k in range(1, self.cfg.stages + 1):
            srv.create_pipeline(f"c{k}", atom(prev), COMMANDS["cp"], 2, new_repo=k == 1)
            prev = f"c{k}"
        t0 = time.time()
        srv.put_tree("chain_in", tree)
        last = f"c{self.cfg.stages}"
        job = srv.wait_job(last, srv.newest_job(last, set()))
        self.s.add("chain.base.put_to_success", time.time() - t0)
        self.s.add("chain.base.last_wall", ts_of(job, "finished") - ts_of(job, "started"))

    def chain(self, r: int) -> None:
        srv = self.server(self.cfg.sandboxes[0])
        last = f"c{self.cfg.stages}"
        for rep in range(self.cfg.reps):
            src = self.cfg.workdir / f"chain-change-{r}-{rep}"
            src.write_bytes(f"changed {r} {rep}\n".encode())
            before = srv.job_ids(last)
            t0 = time.time()
            t_put = srv.put_one("chain_in", "/f00000", src, overwrite=True)
            job_id = srv.newest_job(last, before)
            job = srv.wait_job(last, job_id)
            t_done = time.time()
            n = self.cfg.chain_files
            got = (job.processed, job.skipped, job.total)
            assert got == (1, n - 1, n), got
            first = srv.client.inspect_job(job_id, pipeline="c1")
            self.s.add(f"chain.{r}.cli_put", t_put - t0)
            self.s.add(f"chain.{r}.put_to_success", t_done - t_put)
            self.s.add(f"chain.{r}.per_stage", (t_done - t_put) / self.cfg.stages)
            self.s.add(f"chain.{r}.first_wall", ts_of(first, "finished") - ts_of(first, "started"))
        self._fold(r, "chain", ("cli_put", "put_to_success", "per_stage", "first_wall"))

    # 5 ------------------------------------------------------------------------------------------
    def cpu_bound(self, r: int) -> None:
        """The same CPU-bound job at parallelism 1 and 2 (order alternating by round), and the
        host's own speed-up for the loop run bare, 1 and 2 at a time, in the same round."""
        cfg = self.cfg
        n = cfg.cpu_datums
        tree = cfg.workdir / "tree-cpu"
        if not tree.exists():
            make_tree(tree, n)
        argv = ["sh", "-c", CPU_LOOP]
        host = {par: host_parallel(argv, n, par) for par in ((1, 2) if r % 2 == 0 else (2, 1))}
        self.s.add("cpu.host.speedup", host[1] / host[2])
        srv = self.server(cfg.sandboxes[0])
        walls: dict[int, float] = {}
        for par in (1, 2) if r % 2 == 0 else (2, 1):
            name = self.name("cpu")
            repo = name + "_in"
            srv.create_pipeline(name, atom(repo), argv, par)
            srv.put_tree(repo, tree)
            job = srv.wait_job(name, srv.newest_job(name, set()))
            assert job.processed == n, job
            walls[par] = ts_of(job, "finished") - ts_of(job, "started")
            self.s.add(f"cpu.{par}.wall", walls[par])
            self.s.add(f"cpu.host.{par}", host[par])
            srv.client.delete_pipeline(name)
        self.s.add("cpu.speedup", walls[1] / walls[2])
        print(
            f"  5 p1 {walls[1]:.2f} s, p2 {walls[2]:.2f} s: {walls[1] / walls[2]:.2f}× "
            f"(host {host[1] / host[2]:.2f}×)",
            flush=True,
        )

    # 6 ------------------------------------------------------------------------------------------
    def batching(self, r: int) -> None:
        cfg = self.cfg
        sandbox = cfg.sandboxes[0]
        srv = self.server(sandbox)
        tree = cfg.workdir / ("tree-varied" if cfg.varied_sizes else "tree-datums")
        if not tree.exists():
            make_tree(tree, cfg.datums, varied=cfg.varied_sizes)
        image = {"image": build_python_image()} if sandbox in ("bwrap", "podman") else {}
        modes = {
            "batched": (["python3", "-c", BATCH_LOOP], {"datum_batching": True, **image}),
            "unbatched": (["true"], image),
        }
        order = list(modes) if r % 2 == 0 else list(reversed(modes))
        for mode in order:
            argv, transform = modes[mode]
            for par in (1, 2):
                name = self.name(f"b{mode}")
                repo = name + "_in"
                srv.create_pipeline(name, atom(repo), argv, par, **transform)
                srv.put_tree(repo, tree)  # returns as the job starts
                cpu = process_cpu(srv.tuskd.pid)
                job = srv.wait_job(name, srv.newest_job(name, set()))
                cpu = process_cpu(srv.tuskd.pid) - cpu
                assert job.processed == cfg.datums, job
                wall = ts_of(job, "finished") - ts_of(job, "started")
                self.s.add(f"b.{mode}.{par}.wall", wall)
                self.s.add(f"b.{mode}.{par}.per_datum", wall / cfg.datums)
                self.s.add(f"b.{mode}.{par}.tuskd_cpu", cpu / cfg.datums)
                srv.client.delete_pipeline(name)
                print(f"  6 {sandbox} {mode} p{par}: {wall:.2f} s", flush=True)

    def run(self) -> None:
        cfg = self.cfg
        if self.wants(2):
            self.incremental_setup()
        if self.wants(4):
            self.chain_setup()
        for r in range(cfg.rounds):
            t = time.monotonic()
            if self.wants(1):
                self.per_datum(r)
            if self.wants(2):
                self.incremental(r)
            if self.wants(3):
                self.latency(r)
            if self.wants(4):
                self.chain(r)
            if self.wants(5):
                self.cpu_bound(r)
            if self.wants(6):
                self.batching(r)
            print(f"  round {r + 1}/{cfg.rounds} done in {time.monotonic() - t:.0f} s", flush=True)


# -- report ------------------------------------------------------------------------------------
def goal(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def report(b: Bench) -> Iterator[str]:
    cfg, s = b.cfg, b.s
    n = cfg.datums
    if s.has(f"d.{cfg.sandboxes[0]}.true.1.wall"):
        yield f"### 1. per-datum overhead: {n:,} datums of a few bytes, glob `/*`\n"
        yield (
            "Wall = job record `finished − started` (server side); put→success = from starting "
            "the CLI `put-file -r` to `inspect-job --block` returning. Overhead = wall × workers / "
            "datums − bare spawn of the same argv (`subprocess.run`, same round).\n"
        )
        yield (
            "| sandbox | command | workers | wall s | put→success s | ms per datum (wall × "
            "workers / datums) | bare spawn ms | overhead ms per datum | goal ≤ 1 ms at 1 worker |"
        )
        yield "|---|---|---|---|---|---|---|---|---|"
        for sandbox in cfg.sandboxes:
            for cmd in COMMANDS:
                for par in (1, 2):
                    k = f"d.{sandbox}.{cmd}.{par}"
                    floor = s.fmt(f"d.{sandbox}.{cmd}.floor", 1000, 2)
                    if s.has(f"d.{sandbox}.{cmd}.floor_bwrap"):
                        floor += f" (in bwrap: {s.fmt(f'd.{sandbox}.{cmd}.floor_bwrap', 1000, 2)})"
                    yield (
                        f"| {sandbox} | `{' '.join(COMMANDS[cmd])}` | {par} | {s.fmt(k + '.wall')} "
                        f"| {s.fmt(k + '.put_to_success')} | {s.fmt(k + '.per_datum', 1000, 2)} "
                        f"| {floor} | {s.fmt(k + '.overhead', 1000, 2)} "
                        f"| {goal(s.med(k + '.overhead') <= 0.001) if par == 1 else '—'} |"
                    )
        yield (
            "\nReference: DVC 3.67.1 `repro` of a 100-stage `foreach`, ≈120 ms of overhead per "
            "stage (measured on a 2-vCPU machine of the same kind).\n"
        )
    if s.has("inc.put_to_success"):
        m = cfg.inc_files
        yield f"### 2. incremental: one new file on top of {m:,} processed datums (`cp`, 2 workers)\n"
        yield "| step | s |"
        yield "|---|---|"
        yield f"| first job, {m:,} datums: job wall | {s.fmt('inc.base.wall')} |"
        yield f"| first job: put→success | {s.fmt('inc.base.put_to_success')} |"
        yield f"| CLI `put-file` of the new file (process start to exit) | {s.fmt('inc.cli_put')} |"
        yield f"| put-file returned → job success (Client `inspect_job(block)`) | {s.fmt('inc.put_to_success')} |"
        yield f"| CLI `put-file` started → job success | {s.fmt('inc.start_to_success')} |"
        yield f"| job wall (record `finished − started`) | {s.fmt('inc.wall')} |"
        ok = s.med("inc.put_to_success") <= 1
        yield (
            f"\nLast job's progress: `{b.progress}`. Goal ≤ 1 s from put-file "
            f"returning: {s.med('inc.put_to_success'):.2f} s → {goal(ok)}\n"
        )
    if s.has("lat.client.running"):
        yield "### 3. trigger latency (1 new datum, the pipeline has 1 worker, command `date +%s.%N`)\n"
        yield "Time from put-file returning (Client `put_file` in process / CLI process exit) to:\n"
        yield "| event | after Client put, ms | after CLI put, ms |"
        yield "|---|---|---|"
        for stage, label in (
            ("created", "job created (record `started`, inside the put request)"),
            ("running", "job `running` (master log `job running`)"),
            ("datum", "first datum starts (its first system log line)"),
            ("user", "user code runs (the timestamp it prints)"),
            ("success", "job success seen by the Client"),
        ):
            yield f"| {label} | {s.fmt(f'lat.client.{stage}', 1000, 1)} | {s.fmt(f'lat.cli.{stage}', 1000, 1)} |"
        run_ms = s.med("lat.client.running") * 1000
        yield f"\nGoal ≤ 100 ms to `running`: {run_ms:.0f} ms → {goal(run_ms <= 100)}\n"
    if s.has("chain.put_to_success"):
        c = cfg.chain_files
        yield f"### 4. {cfg.stages}-stage chain (`cp`, glob `/*`, 2 workers each) over {c:,} files, one file changed\n"
        yield "| step | s |"
        yield "|---|---|"
        yield f"| build: put → last stage success ({cfg.stages} × {c:,} datums) | {s.fmt('chain.base.put_to_success')} |"
        yield f"| CLI `put-file -o` of the changed file | {s.fmt('chain.cli_put')} |"
        yield f"| put-file returned → stage {cfg.stages} success | {s.fmt('chain.put_to_success')} |"
        yield f"| the same per stage | {s.fmt('chain.per_stage')} |"
        yield f"| stage 1's job wall | {s.fmt('chain.first_wall')} |"
        yield ""
    if s.has("cpu.speedup"):
        n = cfg.cpu_datums
        yield (
            f"### 5. a CPU-bound datum: {n} datums of a shell loop "
            f"(~{s.med('cpu.host.1') / n:.2f} s of CPU each here), sandbox {cfg.sandboxes[0]}\n"
        )
        yield "| | 1 worker s | 2 workers s | speed-up (median) | speed-up per round |"
        yield "|---|---|---|---|---|"
        for k, one, two, label in (
            ("cpu.host", "cpu.host.1", "cpu.host.2", "host, bare `sh`, no tusk"),
            ("cpu", "cpu.1.wall", "cpu.2.wall", "tusk: job wall"),
        ):
            rounds = ", ".join(f"{x:.2f}" for x in s.values[f"{k}.speedup"])
            yield (
                f"| {label} | {s.fmt(one)} | {s.fmt(two)} | {s.med(k + '.speedup'):.2f}× "
                f"| {rounds} |"
            )
        ok = s.med("cpu.speedup") >= 1.8
        yield f"\nGoal parallelism 2 ≥ 1.8× of 1: {s.med('cpu.speedup'):.2f}× → {goal(ok)}\n"
    if s.has("b.batched.1.wall"):
        yield (
            f"### 6. datum batching: {n:,} datums of "
            f"{'1 to 3,000 bytes' if cfg.varied_sizes else 'a few bytes'} through tuskd, "
            f"sandbox {cfg.sandboxes[0]}\n"
        )
        yield (
            "batched: one Python process per worker takes every datum (`tusk_batch`, doing "
            "nothing); unbatched: `true` once per datum; same image. Wall = job record "
            "`finished − started`; tuskd CPU = the server process's user + system time from "
            "the put's return (its commit starts the job) to the job's end (the job master, "
            "its threads that make tasks and read results, and the API), per datum.\n"
        )
        yield (
            "| user code | workers | wall s | µs per datum (wall / datums) "
            "| tuskd CPU µs per datum | ÷ batched |"
        )
        yield "|---|---|---|---|---|---|"
        for mode in ("batched", "unbatched"):
            for par in (1, 2):
                k = f"b.{mode}.{par}"
                ratio = s.med(k + ".wall") / s.med(f"b.batched.{par}.wall")
                yield (
                    f"| {mode} | {par} | {s.fmt(k + '.wall')} "
                    f"| {s.fmt(k + '.per_datum', 1e6, 0)} | {s.fmt(k + '.tuskd_cpu', 1e6, 0)} "
                    f"| {ratio:.2f}× |"
                )
        yield ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="small sizes, 1 round: a smoke test")
    p.add_argument("--rounds", type=int, help="rounds (default 3; 1 with --quick)")
    p.add_argument("--reps", type=int, help="repetitions inside a round for 2-4 (default 3)")
    p.add_argument("--datums", type=int, help="datums of benchmark 1 (default 1000)")
    p.add_argument("--inc-files", type=int, help="processed datums of benchmark 2 (default 10000)")
    p.add_argument("--chain-files", type=int, help="files of benchmark 4 (default 10000)")
    p.add_argument("--stages", type=int, default=5, help="stages of benchmark 4 (default 5)")
    p.add_argument("--cpu-datums", type=int, help="datums of benchmark 5 (default 40)")
    p.add_argument(
        "--sandboxes", default="host", help="runtimes (TUSK_RUNTIME) for 1 (2-5 use the first)"
    )
    p.add_argument(
        "--varied-sizes",
        action="store_true",
        help="benchmark 6 on files of 1-3,000 bytes: its datums in no order of their paths",
    )
    add_run_options(p, "1,3")
    a = p.parse_args(argv)

    workdir = new_workdir(a.workdir, "tusk-pps-bench-")
    q = a.quick
    cfg = Config(
        datums=a.datums or (50 if q else 1000),
        inc_files=a.inc_files or (200 if q else 10_000),
        chain_files=a.chain_files or (100 if q else 10_000),
        stages=a.stages,
        cpu_datums=a.cpu_datums or (8 if q else 40),
        rounds=a.rounds or (1 if q else 3),
        reps=a.reps or (1 if q else 3),
        sandboxes=tuple(x for x in a.sandboxes.split(",") if x),
        workdir=workdir,
        only=parse_only(a.only),
        varied_sizes=a.varied_sizes,
    )
    print(f"# workdir {workdir}", flush=True)
    cmd = " ".join(["python", "bench/pps_bench.py", *(argv if argv is not None else sys.argv[1:])])
    bench = Bench(cfg)
    started = time.monotonic()
    try:
        bench.run()
    finally:
        bench.close()
    text = "\n".join(
        [
            f"## `{cmd}`\n",
            machine(cfg.workdir),
            f"- {cfg.rounds} round(s), {cfg.reps} repetition(s) per round for 2-4; a cell is the "
            f"median over rounds (min–max); measured in {time.monotonic() - started:.0f} s\n",
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
