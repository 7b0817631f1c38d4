"""Datum batching against one process per datum, through a worker under bubblewrap.

    python bench/batching_bench.py [--datums 10000] [--rounds 3]

In the same run and the same Python image (``tusk.testing.images``), for N datums of one small
input file each, whose user code does nothing:

- protocol: the agent's ``next datum`` round trip alone (the worker answers, the Python code in
  the sandbox asks again through ``tusk_batch``), per datum;
- batched: each datum through ``Worker.run`` (input to /pfs, the round trip, /pfs/out collected,
  result) with ``datum_batching``, per datum;
- process: the same datums through a worker process (``python -m tusk.worker``) as the local
  executor runs it: a JSON task line in (the datum's own fields after the first), a JSON
  result line out (tasks written ahead), with a progress counter, so that results of quick
  datums go several at once;
- process, each result alone: the same without the counter (each result written once the
  next datum has started, as before results went in groups);
- unbatched: the same datums, ``true`` run once per datum through ``Worker.run``, per datum;
- bare round trip: the floor of any hand-over, two Python processes pinned to one CPU trading
  a message of a datum's variables over a socketpair (``wakeup_bench.py``'s), per round trip;
- Python floor: the least a Python worker does for a datum, none of tusk's code in it: read the
  input file from a directory on disk, write it into a directory in memory, hand the datum's
  variables to a process on the same CPU and wait for its answer (a bare round trip), scan the
  output directory, remove the input, encode a result line and write 32 of them at a time to a
  pipe; per datum, with that process's CPU;
- task lines: what the executor encodes and the worker parses per datum, a full task line
  against a follow-up line (the job's next datum: its own fields only), best of 7 passes.

tusk's overhead per batched datum is the batched figure: the user code spends nothing. Datum
batching as Pachyderm defines it needs at least one round trip per datum (``/pfs`` holds one
datum, and ``/pfs/out`` is collected before the next one's inputs go in), so the batched figure
is also given as a multiple of the bare round trip and of the Python floor.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import orjson
from datum_cpu_bench import _cpu
from wakeup_bench import answering, round_trip

from tusk.storage import Ingestor
from tusk.storage.local import LocalObjectStore
from tusk.testing.images import build_python_image
from tusk.worker import DatumInput, DatumTask, InputFile, Worker, WorkerSettings
from tusk.worker.cpus import HomeCpu
from tusk.worker.datum import batch_environment
from tusk.worker.protocol import TaskDecoder, TaskEncoder, encode_task
from tusk.worker.runtimes import SandboxSpec, start_sandbox
from tusk.worker.runtimes.agent import AgentResult

LOOP = "import tusk_batch\nfor _ in tusk_batch.datums():\n    pass\n"


def tasks(store: LocalObjectStore, image: str, n: int) -> list[DatumTask]:
    out = []
    writers = []
    with Ingestor(store) as ingestor:
        for i in range(n):
            writer = ingestor.open_file()
            writer.write(f"datum {i}\n".encode())
            writer.close()
            writers.append(writer)
    for i, writer in enumerate(writers):
        data = InputFile(f"/f{i:05d}", tuple(writer.chunks), writer.size)
        out.append(
            DatumTask(
                task_id=f"job-{i}-1",
                job_id="job",
                datum_id=f"d{i}",
                output_commit_id="job",
                pipeline="bench",
                store_url=store.url,
                cmd=("true",),
                runtime="bwrap",
                image=image,
                inputs=(DatumInput("in", "c", f"/f{i:05d}", (data,)),),
            )
        )
    return out


def protocol(image: str, scratch: str, n: int) -> tuple[float, float]:
    """Seconds per ``next datum`` round trip (worker answer → user code asks again), and the
    worker's CPU seconds per round trip."""
    sandbox = start_sandbox(SandboxSpec("bwrap", image), scratch)
    home = HomeCpu()  # as the worker does
    try:
        env = batch_environment({"PATH": "/usr/bin:/bin"}, sandbox)
        sandbox.start_batch(["python3", "-c", LOOP], env, "/", None, None, home.hold())
        assert not isinstance(sandbox.agent.wait([]), AgentResult)
        datum = {"in": "/pfs/in/f", "PACH_DATUM_ID": "d"}
        t, cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            sandbox.agent.answer(datum)
            assert not isinstance(sandbox.agent.wait([]), AgentResult)
        seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
        sandbox.agent.answer(None)
        sandbox.agent.wait([])
        return seconds / n, cpu / n
    finally:
        home.release()
        sandbox.close()


def through_worker(scratch: str, datums: list[DatumTask]) -> tuple[float, float]:
    """Seconds per datum through ``Worker.run`` (the sandbox and the code started beforehand),
    and the worker's CPU seconds per datum."""
    settings = WorkerSettings.from_environ({}, scratch_root=scratch)
    with Worker("bench", settings=settings) as worker:
        assert worker.run(replace(datums[0], task_id="warm")).ok
        t, cpu = time.perf_counter(), time.process_time()
        for task in datums:
            result = worker.run(task)
            assert result.ok, result.reason
        n = len(datums)
        return (time.perf_counter() - t) / n, (time.process_time() - cpu) / n


def through_process(
    scratch: str, datums: list[DatumTask], counter: bool = True
) -> tuple[float, float]:
    """Seconds per datum through a worker process (task lines written ahead by a thread, as
    fast as it reads them; one result line each), and that process's CPU seconds per datum;
    ``counter``: with a progress counter, as the local executor starts it."""
    encoder = TaskEncoder()  # as the executor writes them: a job's next datums as follow-ups
    warm = encoder.encode(replace(datums[0], task_id="warm"))
    lines = [encoder.encode(t) for t in datums]
    env = dict(os.environ, TUSK_WORKER_SCRATCH=scratch)
    argv = [sys.executable, "-m", "tusk.worker", "--name", "pipeline-bench-v1-abcde"]
    fds: tuple[int, ...] = ()
    if counter:
        fds = (os.memfd_create("progress"),)
        os.ftruncate(fds[0], 8)
        argv += ["--progress-fd", str(fds[0])]
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, pass_fds=fds
    )
    for fd in fds:
        os.close(fd)
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout
    try:
        stdin.write(warm)
        stdin.flush()
        assert json.loads(stdout.readline())["ok"]

        def feed() -> None:
            stdin.writelines(lines)
            stdin.flush()

        writer = threading.Thread(target=feed)
        t, cpu = time.perf_counter(), _cpu(f"/proc/{proc.pid}/stat")[1]
        writer.start()
        for _ in lines:
            result = json.loads(stdout.readline())
            assert result["ok"], result["reason"]
        n = len(lines)
        seconds, cpu = time.perf_counter() - t, _cpu(f"/proc/{proc.pid}/stat")[1] - cpu
        writer.join()
        return seconds / n, cpu / n
    finally:
        stdin.close()
        proc.wait()


def python_floor(scratch: str, n: int, cpu: int) -> tuple[float, float]:
    """Seconds per datum of the least a Python worker does for a datum (see the module's
    docstring), on ``cpu`` with the process it hands over to, and its CPU seconds per datum."""
    store = Path(scratch) / "floor-store"
    store.mkdir()
    for i in range(n):
        (store / f"f{i:05d}").write_bytes(f"datum {i}\n".encode())
    memory = "/dev/shm" if os.path.isdir("/dev/shm") else scratch
    pfs = Path(tempfile.mkdtemp(prefix="tusk-bench-floor-", dir=memory))
    (pfs / "in").mkdir()
    (pfs / "out").mkdir()
    results_r, results_w = os.pipe()
    held: list[bytes] = []
    try:
        with answering(cpu) as here:  # the user code: answers each hand-over
            t, used = time.perf_counter(), time.process_time()
            for i in range(n):
                name = f"f{i:05d}"
                with open(store / name, "rb") as f:
                    data = f.read()
                path = f"{pfs}/in/{name}"
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
                os.write(fd, data)
                os.close(fd)
                here.send(orjson.dumps({"in": path, "PACH_DATUM_ID": f"d{i}"}))
                here.recv(4096)
                outputs = [entry.name for entry in os.scandir(f"{pfs}/out")]
                os.unlink(path)
                held.append(orjson.dumps({"task_id": i, "ok": True, "outputs": outputs}) + b"\n")
                if len(held) == 32 or i == n - 1:
                    os.write(results_w, b"".join(held))
                    os.read(results_r, 1 << 20)
                    held.clear()
            return (time.perf_counter() - t) / n, (time.process_time() - used) / n
    finally:
        os.close(results_r)
        os.close(results_w)
        shutil.rmtree(pfs)
        shutil.rmtree(store)


def task_lines(datums: list[DatumTask]) -> dict[str, tuple[float, float, float]]:
    """Per datum: (bytes, seconds to encode, seconds to parse) of full and follow-up lines."""
    full = [encode_task(t) for t in datums]
    encoder = TaskEncoder()
    follow_ups = [encoder.encode(t) for t in datums][1:]
    first = orjson.loads(full[0])

    def encode_full() -> None:
        for t in datums:
            encode_task(t)

    def encode_follow_ups() -> None:
        encoder = TaskEncoder()
        for t in datums:
            encoder.encode(t)

    def parse_follow_ups() -> None:
        decoder = TaskDecoder()
        decoder.decode(first)
        for line in follow_ups:
            decoder.decode(orjson.loads(line))

    def parse_full() -> None:
        for line in full:
            DatumTask.from_json(orjson.loads(line))

    def best(f: Callable[[], None]) -> float:
        return min(timeit.repeat(f, number=1, repeat=7)) / len(datums)

    return {
        "full": (
            statistics.mean(map(len, full)),
            best(encode_full),
            best(parse_full),
        ),
        "follow-up": (
            statistics.mean(map(len, follow_ups)),
            best(encode_follow_ups),
            best(parse_follow_ups),
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datums", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    image = build_python_image()
    n = args.datums
    scratch_base = "/var/tmp" if os.geteuid() == 0 else None
    with tempfile.TemporaryDirectory(prefix="tusk-bench-", dir=scratch_base) as scratch:
        os.chmod(scratch, 0o711)
        store = LocalObjectStore(Path(scratch) / "store", durable=False)
        plain = tasks(store, image, n)
        batched = [
            replace(t, cmd=("python3", "-c", LOOP), datum_batching=True, job_id="batch")
            for t in plain
        ]
        figures: dict[str, list[tuple[float, float]]] = {
            "protocol": [],
            "batched": [],
            "process": [],
            "process, each result alone": [],
            "unbatched": [],
            "bare round trip": [],
            "Python floor": [],
        }
        loads = [os.getloadavg()[0]]
        for _ in range(args.rounds):
            figures["protocol"].append(protocol(image, scratch, n))
            figures["batched"].append(through_worker(scratch, batched))
            figures["process"].append(through_process(scratch, batched))
            figures["process, each result alone"].append(
                through_process(scratch, batched, counter=False)
            )
            figures["unbatched"].append(through_worker(scratch, plain))
            cpu0 = sorted(os.sched_getaffinity(0))[0]
            figures["bare round trip"].append((round_trip(n, cpu0), float("nan")))
            figures["Python floor"].append(python_floor(scratch, n, cpu0))
            loads.append(os.getloadavg()[0])
        wall = {k: statistics.median(w for w, _ in v) for k, v in figures.items()}
        cpu = {k: statistics.median(c for _, c in v) for k, v in figures.items()}
        print(f"datums: {n}, rounds: {args.rounds}, cpus: {os.cpu_count()}")
        print("load (1 min) at start and after each round: " + ", ".join(f"{x:.1f}" for x in loads))
        print()
        print("| per datum | wall µs (median) | wall µs (runs) | worker CPU µs (median) |")
        print("|---|---|---|---|")
        for key, values in figures.items():
            runs = ", ".join(f"{w * 1e6:.0f}" for w, _ in values)
            used = "—" if key == "bare round trip" else f"{cpu[key] * 1e6:.0f}"
            print(f"| {key} | {wall[key] * 1e6:.0f} | {runs} | {used} |")
        print()
        print(
            f"unbatched / batched: wall {wall['unbatched'] / wall['batched']:.1f}×, "
            f"worker CPU {cpu['unbatched'] / cpu['batched']:.1f}×"
        )
        for floor in ("bare round trip", "Python floor"):
            print(
                f"per datum ÷ {floor}: protocol {wall['protocol'] / wall[floor]:.1f}×, "
                f"batched {wall['batched'] / wall[floor]:.1f}×, "
                f"process {wall['process'] / wall[floor]:.1f}×"
            )
        print()
        print("| task line | bytes | encode µs (executor) | parse µs (worker) |")
        print("|---|---|---|---|")
        for kind, (size, encode, parse) in task_lines(batched).items():
            print(f"| {kind} | {size:.0f} | {encode * 1e6:.1f} | {parse * 1e6:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
