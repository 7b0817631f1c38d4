"""tuskd's memory against its data: resident size idle, while a big put, a big listing and a
many-datum job run, and after each; plus ``list-file`` of the big directory through the CLI.

    python bench/memory_bench.py                           # 100,000 files, a 1,000-datum job
    python bench/memory_bench.py --files 1000000 --datums 100000 --listings 1
    python bench/memory_bench.py --before ../other-checkout   # also that checkout's list-file

The job runs ``--cmd`` (default ``true``: the cost measured is tuskd's bookkeeping per datum,
not the command's) with ``--workers`` workers on one file per datum.

Starts a tuskd on a fresh home (runtime ``host``). RSS is read from ``/proc/<pid>/status``
(``VmRSS``); a sampling thread keeps the highest value seen every 50 ms during each step
(``peak``). The CLI's own peak is the ``ru_maxrss`` of the finished CLI process. Ratios are
against the idle RSS of the same server, measured first.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pfs_bench import CLI, Server

from tusk.client import PutSource

MiB = 1 << 20


def rss(pid: int) -> int:
    """The resident size of process ``pid`` in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class Peak:
    """The highest RSS of ``pid`` while the block runs (sampled every 50 ms)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.value = rss(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.value = max(self.value, rss(self.pid))

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.value = max(self.value, rss(self.pid))


def cli_run(argv: list[str], env: dict[str, str], cwd: str | None = None) -> tuple[float, int, int]:
    """(seconds, peak RSS bytes, stdout bytes) of one CLI process."""
    probe = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, check=True)\n"
        "dt = time.perf_counter() - t\n"
        "m = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(dt, m * 1024, len(p.stdout))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, *argv],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=cwd,
    ).stdout.split()
    return float(out[0]), int(out[1]), int(out[2])


def sources(count: int, prefix: str) -> Iterator[PutSource]:
    for i in range(count):
        yield PutSource(f"{prefix}/f{i:07d}", f"{i}\n".encode())


def mib(n: float) -> str:
    return f"{n / MiB:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=100_000, help="files of the big put")
    ap.add_argument("--datums", type=int, default=1_000, help="datums of the job")
    ap.add_argument("--cmd", default="true", help="the job's command (sh -c)")
    ap.add_argument("--workers", type=int, default=2, help="the job's parallelism")
    ap.add_argument("--listings", type=int, default=3, help="CLI list-file runs of the big put")
    ap.add_argument("--before", help="another checkout whose CLI list-file to time too")
    ap.add_argument("--idle-wait", type=float, default=5.0, help="seconds to settle before idle")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tusk-membench-"))
    srv = Server(work / "home", client_timeout=3600.0)
    rows: list[tuple[str, str, float, int, int]] = []
    try:
        pid = srv.tuskd.pid
        srv.cli("list-repo")  # every route's first use is behind us
        time.sleep(args.idle_wait)
        idle = rss(pid)
        print(f"idle: {mib(idle)} MiB", flush=True)

        def step(name: str, what: str, fn: Callable[[], object]) -> None:
            with Peak(pid) as peak:
                t = time.perf_counter()
                fn()
                dt = time.perf_counter() - t
            after = rss(pid)
            rows.append((name, what, dt, peak.value, after))
            print(f"{name}: {dt:.1f} s, peak {mib(peak.value)} MiB, after {mib(after)}", flush=True)

        c = srv.client
        c.create_repo("big")
        step(
            f"put {args.files:,} files (one put, one commit)",
            "server",
            lambda: c.put_files("big", "master", sources(args.files, "/d")),
        )
        listing = [*CLI, "list-file", "big", "master", "/d"]
        cli_rows: list[tuple[str, float, int, int, int]] = []

        def listed(label: str, env: dict[str, str], cwd: str | None = None) -> None:
            with Peak(pid) as peak:
                dt, cli_peak, size = cli_run(listing, env, cwd)
            cli_rows.append((label, dt, cli_peak, peak.value, size))
            print(f"{label}: {dt:.1f} s, CLI peak {mib(cli_peak)} MiB", flush=True)

        # `python -m` puts the working directory first on sys.path: the other checkout's CLI
        # runs from that checkout
        before = str(Path(args.before or ".").resolve())
        before_env = {**srv.env, "PYTHONPATH": before}
        for _ in range(args.listings):
            listed("list-file (this tree)", srv.env)
            if args.before:
                listed("list-file (--before)", before_env, before)
        rows.append(("after the listings", "server", 0.0, rss(pid), rss(pid)))

        c.create_repo("in")
        step(
            f"put {args.datums:,} input files",
            "server",
            lambda: c.put_files("in", "master", sources(args.datums, "")),
        )
        spec = {
            "pipeline": {"name": "job"},
            "transform": {"cmd": ["sh", "-c", args.cmd]},
            "input": {"atom": {"repo": "in", "glob": "/*"}},
            "parallelism_spec": {"constant": args.workers},
        }
        spec_file = work / "job.json"
        spec_file.write_text(json.dumps(spec))

        def job() -> None:
            srv.cli("create-pipeline", "-f", str(spec_file))
            srv.cli("flush-commit", "in/master")

        step(f"job of {args.datums:,} datums (`{args.cmd}`, {args.workers} workers)", "server", job)
        time.sleep(args.idle_wait)
        rows.append(("idle again", "server", 0.0, rss(pid), rss(pid)))

        load = os.getloadavg()
        print(f"\nload average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print(f"tuskd idle RSS: {mib(idle)} MiB\n")
        print("| step | s | tuskd peak MiB | ÷ idle | tuskd after MiB | ÷ idle |")
        print("|---|---|---|---|---|---|")
        for name, _, dt, peak, after in rows:
            print(
                f"| {name} | {dt:.1f} | {mib(peak)} | {peak / idle:.2f} | {mib(after)} | "
                f"{after / idle:.2f} |"
            )
        print(
            "\n| CLI `list-file` of the big directory | s | CLI peak MiB | tuskd peak MiB | out MiB |"
        )
        print("|---|---|---|---|---|")
        for label, dt, cli_peak, srv_peak, size in cli_rows:
            print(f"| {label} | {dt:.2f} | {mib(cli_peak)} | {mib(srv_peak)} | {mib(size)} |")
        if args.json:
            Path(args.json).write_text(
                json.dumps({"idle": idle, "rows": rows, "cli": cli_rows, "load": load}, indent=1)
            )
    finally:
        srv.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
