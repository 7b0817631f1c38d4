"""What resource limits cost: sandbox start and a whole datum, with and without them.

    python bench/limits_bench.py [--datums 100] [--rounds 5]

For each runtime (bwrap, podman) it measures, in the same run and on the same tiny image:

- sandbox start (sandbox up, agent answering; for bwrap its processes moved into their cgroup)
  with no limit, with memory, cpu and pids limits (bwrap: its cgroup), with a disk limit (a
  size-limited filesystem for /pfs/out and /tmp), and with all of them;
- a whole datum through ``Worker.run`` (one input file in, one output file out) in a kept
  sandbox, without and with every limit (with them, each datum also checks the OOM counter
  and the filesystem's free space).

Must run as root for the cgroup and the filesystem. Figures go to stdout as a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import replace

from tusk.storage import Ingestor
from tusk.storage.local import LocalObjectStore
from tusk.testing.images import build_tiny_image
from tusk.worker import DatumInput, DatumTask, InputFile, Worker, WorkerSettings
from tusk.worker.runtimes import SandboxSpec, start_sandbox

LIMITS = {
    "none": {},
    "memory+cpu+pids": {"memory": str(256 * 2**20), "cpu": 1.0, "pids": 512},
    "disk": {"disk": 2**30},
    "all": {"memory": str(256 * 2**20), "cpu": 1.0, "pids": 512, "disk": 2**30},
}


def start_time(runtime: str, image: str, scratch: str, rounds: int, limits: dict) -> float:
    """Median seconds to start a sandbox with ``limits`` (and close it, not counted)."""
    times = []
    base = {"pids": None}
    for _ in range(rounds):
        t = time.perf_counter()
        sandbox = start_sandbox(SandboxSpec(runtime, image, **{**base, **limits}), scratch)
        times.append(time.perf_counter() - t)
        sandbox.close()
    return statistics.median(times)


def datum_time(
    runtime: str, image: str, scratch: str, store: LocalObjectStore, n: int, limited: bool
) -> float:
    """Median seconds of a whole datum in a kept sandbox."""
    with Ingestor(store) as ingestor:
        writer = ingestor.open_file()
        writer.write(b"apple\n")
        writer.close()
    data = InputFile("/a.txt", tuple(writer.chunks), writer.size)
    settings = WorkerSettings.from_environ({"PATH": "/usr/bin:/bin"}, scratch_root=scratch)
    if limited:
        settings = replace(settings, pids_limit=512, memory_limit=256 * 2**20, disk_limit=2**30)
    else:
        settings = replace(settings, pids_limit=None, memory_limit=None, disk_limit=None)
    task = DatumTask(
        task_id="bench-0-1",
        job_id="bench",
        datum_id="d0",
        output_commit_id="o",
        pipeline="bench",
        store_url=store.url,
        cmd=("cp", "/pfs/in/a.txt", "/pfs/out/a.txt"),
        runtime=runtime,
        image=image,
        cpu=1.0 if limited else None,
        inputs=(DatumInput("in", "c", "/", (data,)),),
    )
    times = []
    with Worker("bench", settings=settings) as worker:
        assert worker.run(task).ok
        for _ in range(n):
            t = time.perf_counter()
            result = worker.run(task)
            times.append(time.perf_counter() - t)
            assert result.ok, result.reason
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datums", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: cgroups and the disk filesystem need it")
    image = build_tiny_image()
    print(f"cpus: {os.cpu_count()}, datums: {args.datums}, sandbox starts: {args.rounds}\n")
    print(
        "| runtime | start, no limit | + memory/cpu/pids | + disk | all | datum, no limit | all |"
    )
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="tusk-limits-bench-", dir="/var/tmp") as scratch:
        os.chmod(scratch, 0o711)
        store = LocalObjectStore(os.path.join(scratch, "store"), durable=False)
        for runtime in ("bwrap", "podman"):
            starts = [
                start_time(runtime, image, scratch, args.rounds, limits)
                for limits in LIMITS.values()
            ]
            free = datum_time(runtime, image, scratch, store, args.datums, False)
            limited = datum_time(runtime, image, scratch, store, args.datums, True)
            cells = [f"{s:.3f} s" for s in starts] + [
                f"{free * 1000:.2f} ms",
                f"{limited * 1000:.2f} ms",
            ]
            print(f"| {runtime} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
