"""CPU time per datum of the job master and of the workers, in process.

    python bench/datum_cpu_bench.py [--datums 500] [--workers 1] [--runtime bwrap] [--rounds 3]

A ``tusk.Engine`` (SQLite, local store, the local executor) runs a pipeline of ``true`` (or ``cp``
of the datum's input to /pfs/out) over N
one-file datums (glob ``/*``), once per round, each round a new pipeline on the same input. Per
datum it reports the job's wall time (record ``finished − started``) and the CPU time (user +
system, from ``/proc``) of this process, which holds the job master, and of the worker
processes. The first round starts the sandbox image's cache and is left out of the medians.

CPU time counts what the bookkeeping costs whatever else runs on the machine; wall time on a
shared machine mostly measures the load. To compare two trees, run the same command with
``PYTHONPATH`` pointing at the other tree's root.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tusk.api.pps import JobInfo
from tusk.pps.spec import parse_specs
from tusk.runtime import Engine, Settings
from tusk.testing import wait_for

TICK = os.sysconf("SC_CLK_TCK")


def _cpu(stat_path: str) -> tuple[int, float]:
    """(parent pid, user + system seconds) of a process from its stat file."""
    with open(stat_path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def workers_cpu() -> float:
    """CPU seconds of this process's living children (the worker processes)."""
    me, total = os.getpid(), 0.0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                parent, seconds = _cpu(f"/proc/{pid}/stat")
            except (OSError, IndexError, ValueError):
                continue
            if parent == me:
                total += seconds
    return total


COMMANDS = {"true": ["true"], "cp": ["cp", "-r", "/pfs/in/.", "/pfs/out/"]}


def run_round(engine: Engine, name: str, workers: int, cmd: list[str]) -> JobInfo:
    spec = {
        "pipeline": {"name": name},
        "transform": {"cmd": cmd},
        "input": {"atom": {"name": "in", "repo": "in", "glob": "/*"}},
        "parallelism_spec": {"constant": workers},
    }
    (parsed,) = parse_specs(json.dumps(spec), "bench")
    engine.pipelines.create(parsed)

    def done() -> JobInfo | None:
        jobs = engine.jobs.list(name)
        return jobs[0] if jobs and jobs[0].state.terminal else None

    job: JobInfo = wait_for(f"the job of {name}", done, 3600, interval=0.2)
    if job.state != "success":
        raise RuntimeError(f"job {job.id} ended {job.state}: {job.reason}")
    return job


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--datums", type=int, default=500)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--cmd", choices=sorted(COMMANDS), default="true", help="the datum's command")
    p.add_argument("--runtime", default="bwrap", help="TUSK_RUNTIME: bwrap, podman or host")
    p.add_argument("--rounds", type=int, default=3, help="measured rounds (after one warm-up)")
    p.add_argument("--workdir", help="where the home goes (default: the temporary directory)")
    p.add_argument(
        "--ahead", type=int, help="tasks the local executor sends a worker ahead (default: its own)"
    )
    a = p.parse_args(argv)
    n = a.datums
    work = Path(tempfile.mkdtemp(prefix="tusk-datum-cpu-", dir=a.workdir))
    os.chmod(work, 0o711)  # the sandbox's user reaches its scratch directories under it
    engine = Engine(Settings.for_home(work / "home", runtime=a.runtime))
    if a.ahead is not None:
        engine.executor.ahead = a.ahead  # type: ignore[attr-defined]
    engine.start()
    rows: list[tuple[float, float, float]] = []
    loads = [os.getloadavg()[0]]
    try:
        engine.repos.create("in")
        batch = engine.files.open_put("in", "master")
        for i in range(n):
            batch.begin_file(f"/f{i:06d}")
            batch.write(f"datum {i}\n".encode())
            batch.end_file()
        batch.commit()
        for r in range(a.rounds + 1):
            master0, workers0 = time.process_time(), workers_cpu()
            job = run_round(engine, f"p{r}", a.workers, COMMANDS[a.cmd])
            master, worker = time.process_time() - master0, workers_cpu() - workers0
            assert job.processed == n and job.finished and job.started, job
            wall = job.finished - job.started
            loads.append(os.getloadavg()[0])
            print(
                f"round {r}{' (warm-up)' if r == 0 else ''}: wall {wall * 1e3 / n:.3f} ms, "
                f"job master process CPU {master * 1e3 / n:.3f} ms, "
                f"workers CPU {worker * 1e3 / n:.3f} ms per datum; load {loads[-1]:.1f}",
                flush=True,
            )
            if r:
                rows.append((wall / n, master / n, worker / n))
    finally:
        engine.close()
        shutil.rmtree(work, ignore_errors=True)
    med = [statistics.median(col) * 1e3 for col in zip(*rows, strict=True)]
    print(
        f"\n{n} datums of `{' '.join(COMMANDS[a.cmd])}`, {a.workers} worker(s), runtime {a.runtime}, {a.rounds} rounds, "
        f"ahead {getattr(engine.executor, 'ahead', '-')}; "
        f"load average (1 min) {min(loads):.1f}–{max(loads):.1f}"
    )
    print("| ms per datum (median) | wall | job master process CPU | workers CPU |")
    print("|---|---|---|---|")
    print(f"| | {med[0]:.3f} | {med[1]:.3f} | {med[2]:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
