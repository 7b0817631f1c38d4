"""Per-datum cost of running user code in its image, against a bare spawn of the same command.

    python bench/sandbox_bench.py [--datums 300] [--rounds 3]

For each runtime (bwrap, podman) it measures, in the same run and on the same tiny image
(``tusk.testing.images``):

- worker start: starting a sandbox and its agent until the agent answers;
- per-datum overhead: a datum of ``true`` through the agent (one exec in the kept sandbox)
  against ``subprocess.run(["true"])`` on the host, at parallelism 1 and 2 (two workers, each
  with its own sandbox, in two threads);
- a whole datum through ``Worker.run`` (input copied to /pfs, command, output collected);
- a CPU-bound datum (a shell loop) run 4 times by one worker and by two: the speed-up; then, in
  alternation each round, 8 such datums by 1 and 2 workers beside the host running the same loop
  bare 1 and 2 at a time (the machine's own ceiling): medians of the rounds' ratios.

Figures go to stdout as a Markdown table (bench/RESULTS.md keeps them).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tusk.storage import Ingestor
from tusk.storage.local import LocalObjectStore
from tusk.testing.images import build_tiny_image
from tusk.worker import DatumInput, DatumTask, InputFile, Worker, WorkerSettings
from tusk.worker.runtimes import SandboxSpec, start_sandbox

CPU_LOOP = "i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done"
ENV = {"PATH": "/usr/bin:/bin"}


def parallel(workers: int, job: Callable[[int], None]) -> float:
    """Seconds for ``workers`` threads each running ``job(index)``."""
    threads = [threading.Thread(target=job, args=(i,)) for i in range(workers)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return time.perf_counter() - t


def bare(n: int, workers: int) -> float:
    """Seconds per spawn of ``true`` on the host, ``workers`` spawning at once."""

    def job(_: int) -> None:
        for _ in range(n):
            subprocess.run(["true"], check=True)

    return parallel(workers, job) / (n * workers) * workers


def host_cpu(datums: int, workers: int) -> float:
    """Seconds per CPU-bound datum (``CPU_LOOP`` in a bare ``sh``) on the host, ``workers`` at
    once: the machine's own parallel speed-up, the ceiling for the sandboxed one."""

    def job(i: int) -> None:
        for _ in range(i, datums, workers):
            subprocess.run(["sh", "-c", CPU_LOOP], check=True)

    return parallel(workers, job) / datums


def in_sandbox(runtime: str, image: str, scratch: str, n: int, workers: int) -> float:
    """Seconds per ``true`` through the agent, each of ``workers`` with its own sandbox."""
    sandboxes = [start_sandbox(SandboxSpec(runtime, image), scratch) for _ in range(workers)]
    try:

        def job(i: int) -> None:
            for _ in range(n):
                done = sandboxes[i].run(["true"], ENV, "/", None, None, [])
                assert done.returncode == 0, done

        return parallel(workers, job) / (n * workers) * workers
    finally:
        for s in sandboxes:
            s.close()


def start_time(runtime: str, image: str, scratch: str, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        sandbox = start_sandbox(SandboxSpec(runtime, image), scratch)
        times.append(time.perf_counter() - t)
        sandbox.close()
    return statistics.median(times)


def make_task(
    store: LocalObjectStore, runtime: str, image: str, cmd: list[str], i: int
) -> DatumTask:
    with Ingestor(store) as ingestor:
        writer = ingestor.open_file()
        writer.write(f"datum {i}\n".encode())
        writer.close()
    data = InputFile(f"/f{i:05d}", tuple(writer.chunks), writer.size)
    return DatumTask(
        task_id=f"job-{i}-1",
        job_id="job",
        datum_id=f"d{i}",
        output_commit_id="job",
        pipeline="bench",
        store_url=store.url,
        cmd=tuple(cmd),
        runtime=runtime,
        image=image,
        inputs=(DatumInput("in", "c", f"/f{i:05d}", (data,)),),
    )


def worker_datums(
    runtime: str, image: str, scratch: str, store: LocalObjectStore, cmd: list[str], n: int,
    workers: int,
) -> float:  # fmt: skip
    """Seconds per datum through ``Worker.run`` with ``workers`` workers (wall / datums)."""
    settings = WorkerSettings.from_environ({}, scratch_root=scratch)
    pool = [Worker(f"w{i}", settings=settings) for i in range(workers)]
    tasks = [make_task(store, runtime, image, cmd, i) for i in range(n)]
    try:
        for w in pool:  # start each sandbox outside the timing
            assert w.run(tasks[0]).ok

        def job(i: int) -> None:
            for task in tasks[i::workers]:
                result = pool[i].run(task)
                assert result.ok, result.reason

        return parallel(workers, job) / n
    finally:
        for w in pool:
            w.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datums", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runtimes", default="bwrap,podman")
    args = parser.parse_args(argv)
    image = build_tiny_image()
    n = args.datums
    scratch_base = "/var/tmp" if os.geteuid() == 0 else None
    with tempfile.TemporaryDirectory(prefix="tusk-bench-", dir=scratch_base) as scratch:
        os.chmod(scratch, 0o711)
        store = LocalObjectStore(Path(scratch) / "store", durable=False)
        print(f"cpus: {os.cpu_count()}, datums per measure: {n}, rounds: {args.rounds}")
        print()
        print("| runtime | worker start s | workers | bare spawn ms | agent exec ms | "
              "above bare ms | whole datum ms | CPU datum s | speed-up |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|")
        for runtime in args.runtimes.split(","):
            start = start_time(runtime, image, scratch, args.rounds)
            cpu: dict[int, float] = {}
            for workers in (1, 2):
                floors, agents, wholes = [], [], []
                for r in range(args.rounds):
                    order = (0, 1) if r % 2 == 0 else (1, 0)  # alternate, against drift
                    for which in order:
                        if which == 0:
                            floors.append(bare(n, workers))
                        else:
                            agents.append(in_sandbox(runtime, image, scratch, n, workers))
                    wholes.append(
                        worker_datums(runtime, image, scratch, store, ["true"], n, workers)
                    )
                cpu[workers] = worker_datums(
                    runtime, image, scratch, store, ["sh", "-c", CPU_LOOP], 4, workers
                )
                floor, agent = statistics.median(floors), statistics.median(agents)
                speedup = f"{cpu[1] / cpu[2]:.2f}×" if workers == 2 else ""
                print(
                    f"| {runtime} | {start:.3f} | {workers} | {floor * 1e3:.2f} | "
                    f"{agent * 1e3:.2f} | {(agent - floor) * 1e3:+.2f} | "
                    f"{statistics.median(wholes) * 1e3:.2f} | {cpu[workers] * 4:.2f} | {speedup} |",
                    flush=True,
                )
        print_speedups(args.runtimes.split(","), image, scratch, store, args.rounds)
    return 0


def print_speedups(
    runtimes: list[str], image: str, scratch: str, store: LocalObjectStore, rounds: int
) -> None:
    """The CPU-bound speed-up of 2 workers over 1, each round measuring 1 and 2 workers back to
    back (per runtime) beside the host's own speed-up for the same loop: medians of the rounds'
    ratios."""
    cmd = ["sh", "-c", CPU_LOOP]
    ratios: dict[str, list[float]] = {k: [] for k in ["host", *runtimes]}
    for _ in range(rounds):
        ratios["host"].append(host_cpu(8, 1) / host_cpu(8, 2))
        for runtime in runtimes:
            one = worker_datums(runtime, image, scratch, store, cmd, 8, 1)
            two = worker_datums(runtime, image, scratch, store, cmd, 8, 2)
            ratios[runtime].append(one / two)
    print()
    print("| CPU-bound datum, 2 workers ÷ 1 | speed-up (median) | rounds |")
    print("|---|---|---|")
    for k, xs in ratios.items():
        name = "host (bare sh, no tusk)" if k == "host" else k
        runs = ", ".join(f"{x:.2f}" for x in xs)
        print(f"| {name} | {statistics.median(xs):.2f}× | {runs} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
