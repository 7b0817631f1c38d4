"""CLI start: ``pachctl list-repo`` and the other reads against ``python -c pass``, interleaved.

    python bench/cli_bench.py                 # 15 rounds
    python bench/cli_bench.py --rounds 30
    python bench/cli_bench.py --before ../other-checkout   # also that checkout's CLI, same rounds

Starts a tuskd on a fresh home (three repos, one file in ``images``, pipeline ``copy`` over it
and its job), then each round spawns, in alternating order, ``python -c pass``, ``python -m
tusk.cli.main --version`` and each read command (the code of ``pachctl``/``tusk``): list-repo,
list-commit, list-pipeline, inspect-pipeline, list-job, inspect-job, list-datum, get-logs, and
two writes: put-file -o of a small file (a commit each time) and create-branch --head. Ratios are
taken within each round; the table shows medians (min–max). The CPU columns give the user +
system time of each command's process (``getrusage`` of the children), which a loaded machine
inflates far less than wall time: on a shared machine they are the figure to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pfs_bench import CLI, Server

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "list-repo": [*CLI, "list-repo"],
    "--version": [*CLI, "--version"],
    "list-commit images": [*CLI, "list-commit", "images"],
    "list-pipeline": [*CLI, "list-pipeline"],
    "inspect-pipeline copy": [*CLI, "inspect-pipeline", "copy"],
    "list-job": [*CLI, "list-job"],
    "inspect-job": [*CLI, "inspect-job", "JOB", "--pipeline", "copy"],
    "list-datum": [*CLI, "list-datum", "JOB", "--pipeline", "copy"],
    "get-logs -p copy": [*CLI, "get-logs", "-p", "copy"],
    "put-file -o (a small file)": [*CLI, "put-file", "-o", "labels", "master", "/a", "-f", "FILE"],
    "create-branch --head": [*CLI, "create-branch", "labels", "dev", "--head", "master"],
}
SPEC = {
    "pipeline": {"name": "copy"},
    "transform": {"cmd": ["sh", "-c", "echo copied; cp -r /pfs/images/. /pfs/out/"]},
    "input": {"pfs": {"repo": "images", "glob": "/*"}},
}


def spawn(argv: list[str], env: dict[str, str], cwd: str | None = None) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, cwd=cwd)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cell(xs: list[float], scale: float = 1.0, digits: int = 1) -> str:
    return (
        f"{statistics.median(xs) * scale:.{digits}f} "
        f"({min(xs) * scale:.{digits}f}–{max(xs) * scale:.{digits}f})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--before", help="another checkout whose CLI to time too (PYTHONPATH)")
    args = ap.parse_args()
    commands = dict(COMMANDS)
    if args.before:  # the commands this branch moved to the plain reader, and list-repo
        moved = ("list-repo", "list-pipeline", "inspect-job", "list-datum", "get-logs -p copy")
        for k in (
            *moved,
            "inspect-pipeline copy",
            "put-file -o (a small file)",
            "create-branch --head",
        ):
            commands[f"{k} (--before)"] = commands[k]
    work = Path(tempfile.mkdtemp(prefix="tusk-clibench-"))
    srv = Server(work / "home")
    try:
        for name in ("images", "labels", "models"):
            srv.cli("create-repo", name)
        (work / "a.txt").write_text("a\n")
        srv.cli("put-file", "images", "master", "/a.txt", "-f", str(work / "a.txt"))
        srv.cli("put-file", "labels", "master", "/a", "-f", str(work / "a.txt"))
        (work / "spec.json").write_text(json.dumps(SPEC))
        srv.cli("create-pipeline", "-f", str(work / "spec.json"))
        srv.cli("flush-commit", "images/master")
        (job,) = srv.client.list_job("copy")
        fill = {"JOB": job.id, "FILE": str(work / "a.txt")}
        commands = {k: [fill.get(a, a) for a in v] for k, v in commands.items()}
        env = srv.env
        # `python -m` puts the working directory first on sys.path: the other checkout's CLI
        # runs from that checkout (PYTHONPATH alone would still import this one)
        before = str(Path(args.before or ".").resolve())
        before_env = {**env, "PYTHONPATH": before}
        times: dict[str, list[float]] = {k: [] for k in commands}
        ratios: dict[str, list[float]] = {k: [] for k in commands}
        cpus: dict[str, list[float]] = {k: [] for k in commands}
        cpu_ratios: dict[str, list[float]] = {k: [] for k in commands}
        for r in range(args.rounds):
            order = list(commands) if r % 2 == 0 else list(reversed(commands))
            row = {
                k: spawn(commands[k], before_env, before)
                if "before" in k
                else spawn(commands[k], env)
                for k in order
            }
            base_wall, base_cpu = row["python -c pass"]
            for k, (wall, cpu) in row.items():
                times[k].append(wall)
                ratios[k].append(wall / base_wall)
                cpus[k].append(cpu)
                cpu_ratios[k].append(cpu / base_cpu)
        load = os.getloadavg()
        print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print(f"{args.rounds} rounds\n")
        print(
            "| command | wall ms | ÷ `python -c pass` (same round) | CPU ms | CPU ÷ (same round) |"
        )
        print("|---|---|---|---|---|")
        for k in commands:
            print(
                f"| `{k}` | {cell(times[k], 1000)} | {cell(ratios[k], digits=2)} "
                f"| {cell(cpus[k], 1000)} | {cell(cpu_ratios[k], digits=2)} |"
            )
    finally:
        srv.stop()
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
