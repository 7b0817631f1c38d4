"""A worker process with a progress counter (as the local executor starts it) writes quick
datums' results several at once: it holds them while it has as many tasks waiting as it holds
results, and counts each result as it is made. Run in-process (``serve``) with real pipes and
real commands; the executor's side is in test_executor_contract.py."""

from __future__ import annotations

import json
import mmap
import os
import select
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from tusk.storage.local import LocalObjectStore
from tusk.testing import wait_for
from tusk.worker import DatumResult, DatumTask, Worker, WorkerSettings
from tusk.worker import __main__ as worker_main
from tusk.worker.protocol import TaskEncoder


class Served:
    """``serve`` in a thread, its tasks and results through pipes, its counter in memory."""

    def __init__(self, worker: Worker) -> None:
        task_r, self.task_w = os.pipe()
        self.result_r, result_w = os.pipe()
        self.counter = mmap.mmap(-1, 8)
        self.tasks: IO[bytes] = os.fdopen(task_r, "rb")
        self.results: IO[bytes] = os.fdopen(result_w, "wb")
        self.buffer = b""
        self.thread = threading.Thread(
            target=worker_main.serve, args=(worker, self.tasks, self.results, self.counter)
        )
        self.thread.start()

    def send(self, tasks: list[DatumTask]) -> None:
        encoder = TaskEncoder()
        os.write(self.task_w, b"".join(encoder.encode(t) for t in tasks))

    def done(self) -> int:
        value: int = struct.unpack_from("<Q", self.counter)[0]
        return value

    def written(self, wait: float) -> bool:
        """Whether a result line can be read within ``wait`` seconds."""
        return b"\n" in self.buffer or bool(select.select([self.result_r], [], [], wait)[0])

    def read(self, count: int, timeout: float = 30.0) -> list[DatumResult]:
        deadline = time.monotonic() + timeout
        while self.buffer.count(b"\n") < count:
            assert self.written(max(0.0, deadline - time.monotonic())), "results did not come"
            self.buffer += os.read(self.result_r, 1 << 16)
        lines = self.buffer.split(b"\n")
        self.buffer = b"\n".join(lines[count:])
        return [DatumResult.from_json(json.loads(line)) for line in lines[:count]]

    def close(self) -> None:
        os.close(self.task_w)
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()
        self.results.close()
        self.tasks.close()
        os.close(self.result_r)


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Worker]:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    settings = WorkerSettings.from_environ(scratch_root=str(scratch))
    with Worker("pipeline-groups-v1-abcde", settings=settings) as w:
        yield w


@pytest.fixture
def gate(tmp_path: Path) -> Path:
    """A named pipe: a datum reading it waits until the test writes to it."""
    path = tmp_path / "gate"
    os.mkfifo(path)
    return path


def jobs_tasks(tmp_path: Path, gate: Path) -> list[DatumTask]:
    """8 quick datums, one that waits at the gate, 12 quick ones."""
    store = LocalObjectStore(tmp_path / "store", durable=False)

    def task(i: int, cmd: list[str]) -> DatumTask:
        return DatumTask(
            task_id=f"job1-{i}-1",
            job_id="job1",
            datum_id=f"datum{i}",
            output_commit_id="job1",
            pipeline="groups",
            store_url=store.url,
            cmd=tuple(cmd),
        )

    quick = ["sh", "-c", "echo $PACH_DATUM_ID > /pfs/out/$PACH_DATUM_ID"]
    return [task(i, ["cat", str(gate)] if i == 8 else quick) for i in range(21)]


def test_results_are_held_while_enough_tasks_wait(
    worker: Worker, tmp_path: Path, gate: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the ninth datum runs, the first eight are done (the counter says so) and held:
    twelve more tasks wait, so the executor need not hear of them yet. They come together
    with the ones after, in order."""
    monkeypatch.setattr(worker_main, "HOLD_SECONDS", 60.0)  # no late write in this test
    served = Served(worker)
    try:
        batch = jobs_tasks(tmp_path, gate)
        served.send(batch)
        wait_for("eight datums done", lambda: served.done() == 8, 30)
        assert not served.written(0.3)  # all eight held while the ninth runs
        gate.write_bytes(b"open\n")
        results = served.read(len(batch))
        assert [r.task_id for r in results] == [t.task_id for t in batch]
        assert all(r.ok for r in results), [r.reason for r in results]
        assert served.done() == len(batch)
    finally:
        served.close()


def test_held_results_are_written_after_hold_seconds(
    worker: Worker, tmp_path: Path, gate: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow datum does not keep the results before it from the executor for longer than
    HOLD_SECONDS (a thread writes them), nor does a worker that waits for tasks."""
    monkeypatch.setattr(worker_main, "HOLD_SECONDS", 0.05)
    served = Served(worker)
    try:
        batch = jobs_tasks(tmp_path, gate)
        served.send(batch)
        first = served.read(8, timeout=30)  # while the ninth still waits at the gate
        assert [r.task_id for r in first] == [t.task_id for t in batch[:8]]
        assert served.done() == 8
        gate.write_bytes(b"open\n")
        rest = served.read(len(batch) - 8)
        assert [r.task_id for r in rest] == [t.task_id for t in batch[8:]]
    finally:
        served.close()


def test_without_tasks_waiting_each_result_goes_once_the_next_datum_starts(
    worker: Worker, tmp_path: Path, gate: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two tasks at a time (a slow datum's pace): nothing would replace a held result before
    the worker runs out, so none is held past the next datum's start."""
    monkeypatch.setattr(worker_main, "HOLD_SECONDS", 60.0)
    served = Served(worker)
    try:
        batch = jobs_tasks(tmp_path, gate)
        served.send(batch[7:9])  # a quick datum, then the one at the gate
        [result] = served.read(1)
        assert result.task_id == "job1-7-1" and served.done() == 1
        gate.write_bytes(b"open\n")
        [result] = served.read(1)  # written before the worker waits for a task
        assert result.task_id == "job1-8-1"
    finally:
        served.close()
