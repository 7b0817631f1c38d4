"""Long listings through the CLI: ``list-commit`` and ``list-job`` of N rows, time and peak RSS.

    python bench/listing_bench.py                          # 100,000 rows, 2 rounds
    python bench/listing_bench.py --rows 20000 --rounds 3
    python bench/listing_bench.py --before ../other-checkout   # also that checkout's CLI

A home gets a repo of N commits and N jobs (one real commit, pipeline and job through the
services, then N-1 copies of the commit and of the job row written straight into the metadata
store, as ``scale_bench.py`` does), then a tuskd serves it. Each round runs, in alternating
order, ``list-commit <repo>`` and ``list-job`` of this tree's CLI (JSON lines, printed block by
block) and, with ``--before``, of the other checkout's (same server: it asks for the JSON array
answer), output to /dev/null. Per run: wall time, the CLI's peak RSS (GNU ``time``) and the
server's peak RSS during the run (``VmHWM``, reset before each run). Same-round ratios after ÷
before.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from pfs_bench import CLI
from scale_bench import fill
from sqlalchemy import select

from tusk.meta import schema as s
from tusk.runtime import Engine, Settings
from tusk.testing import Tuskd, clean_env, wait_for


def seed(home: Path, rows: int) -> None:
    """Repo ``big`` with ``rows`` commits; ``rows`` jobs of pipeline ``copy``."""
    engine = Engine(Settings.for_home(home, runtime="host"))
    engine.start()
    try:
        engine.repos.create("big")
        fill(engine, "big", rows)
        engine.repos.create("src")
        batch = engine.files.open_put("src", "master")
        batch.begin_file("/a", overwrite=False)
        batch.write(b"a\n")
        batch.end_file()
        batch.commit()
        from tusk.pps.spec import parse_specs

        spec = '{"pipeline": {"name": "copy"}, "transform": {"cmd": ["cp", "-r", "/pfs/src/.",'
        spec += ' "/pfs/out/"]}, "input": {"pfs": {"repo": "src", "glob": "/*"}}}'
        (parsed,) = parse_specs(spec, "bench")
        engine.pipelines.create(parsed)
        wait_for("a job", lambda: any(j.state.terminal for j in engine.jobs.list("copy")), 120)
        with engine.meta.engine.begin() as conn:
            job = dict(conn.execute(select(s.jobs)).mappings().first() or {})
        job.pop("pk")
        copies = []
        for _ in range(rows - 1):
            copies.append({**job, "id": uuid.uuid4().hex})
            if len(copies) >= 20_000:
                _insert_jobs(engine, copies)
                copies = []
        if copies:
            _insert_jobs(engine, copies)
    finally:
        engine.close()


def _insert_jobs(engine: Engine, rows: list[dict[str, object]]) -> None:
    with engine.meta.engine.begin() as conn:
        conn.execute(s.jobs.insert(), rows)


def run(argv: list[str], env: dict[str, str], cwd: str | None) -> tuple[float, float, int]:
    """(seconds, peak RSS MiB, lines printed) of one CLI run. The peak comes from GNU time: a
    child forked from this (big) process would count this process's memory as its own peak."""
    with tempfile.NamedTemporaryFile("r") as peak:
        t = time.perf_counter()
        proc = subprocess.Popen(
            ["/usr/bin/time", "-f", "%M", "-o", peak.name, *argv],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
        )
        assert proc.stdout is not None
        lines = 0
        while block := proc.stdout.read(1 << 16):
            lines += block.count(b"\n")
        assert proc.wait() == 0, argv
        seconds = time.perf_counter() - t
        return seconds, int(peak.read().split()[-1]) / 1024, lines


def reset_peak(pid: int) -> None:
    """Start the process's peak RSS (``VmHWM``) afresh from its present RSS (Linux >= 4.0)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def server_peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cell(xs: list[float], digits: int = 1) -> str:
    return f"{statistics.median(xs):.{digits}f} ({min(xs):.{digits}f}–{max(xs):.{digits}f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--before", help="another checkout whose CLI to run too (same server)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tusk-listbench-"))
    home = work / "home"
    t = time.perf_counter()
    seed(home, args.rows)
    print(f"seeded {args.rows:,} commits and jobs in {time.perf_counter() - t:.0f} s")
    tuskd = Tuskd(home, {"TUSK_PROGRESS": "0", "TUSK_RUNTIME": "host"}).start(timeout=120.0)
    try:
        env = clean_env({}, **tuskd.env)
        before = str(Path(args.before).resolve()) if args.before else None
        before_env = {**env, "PYTHONPATH": before or ""}
        kinds = {"list-commit big": ["list-commit", "big"], "list-job": ["list-job"]}
        runs: dict[tuple[str, str], list[tuple[float, float, int, float]]] = {}
        whos = ["after", *(["before"] if before else [])]
        load = os.getloadavg()
        print(f"load average at the start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        for r in range(args.rounds):  # alternating order, the same rounds for both trees
            pairs = [(w, k) for k in kinds for w in whos]
            for who, k in pairs if r % 2 == 0 else reversed(pairs):
                cwd, e = (before, before_env) if who == "before" else (None, env)
                reset_peak(tuskd.pid)
                secs, rss, lines = run([*CLI, *kinds[k]], e, cwd)
                runs.setdefault((who, k), []).append((secs, rss, lines, server_peak_mib(tuskd.pid)))
        load = os.getloadavg()
        print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print(f"{args.rows:,} rows, {args.rounds} rounds\n")
        print("| CLI | command | lines | s | CLI peak RSS MiB | server peak RSS MiB |")
        print("|---|---|---|---|---|---|")
        for (who, k), xs in sorted(runs.items()):
            secs, rss, lines, server = zip(*xs, strict=True)
            print(
                f"| {who} | `{k}` | {lines[0]:,} | {cell(list(secs))} | {cell(list(rss))} "
                f"| {cell(list(server), 0)} |"
            )
        if before:
            for k in kinds:
                ratio = [
                    a[0] / b[0]
                    for a, b in zip(runs[("after", k)], runs[("before", k)], strict=True)
                ]
                rss = [
                    a[1] / b[1]
                    for a, b in zip(runs[("after", k)], runs[("before", k)], strict=True)
                ]
                print(f"\n`{k}` after ÷ before: time {cell(ratio, 2)}, CLI peak RSS {cell(rss, 2)}")
    finally:
        tuskd.stop(timeout=60)
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
