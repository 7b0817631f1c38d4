"""The contract every executor passes, run against local worker processes and a real two-node Ray
cluster (``tusk.testing.ray``, one per module). Tasks are real datum tasks: user commands
reading ``/pfs/in`` and writing ``/pfs/out`` against a local object store. A Ray cluster that
cannot start fails the Ray tests."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import itertools
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tusk.pps.executors.base import Executor
from tusk.pps.executors.local import LocalExecutor
from tusk.runtime import worker_env
from tusk.storage import Ingestor, read_chunks
from tusk.storage.local import LocalObjectStore
from tusk.testing import wait_for
from tusk.testing.images import TINY_ENV, build_tiny_image
from tusk.testing.process import group_members
from tusk.testing.ray import RayCluster, ray_cluster
from tusk.worker import DatumInput, DatumResult, DatumTask, InputFile

PIPELINE = "edges"
COPY = ["sh", "-c", "cp /pfs/in/a.txt /pfs/out/$PACH_DATUM_ID.txt"]
WAIT = 60.0


# A worker process that counts its first task done (as if it held the result) and dies taking
# the second; it leaves ``marker`` so that the restarted process is a real worker.
DIES_HOLDING = """
import mmap, os, struct
args = open("/proc/self/cmdline", "rb").read().split(b"\\0")
if b"--progress-fd" in args and not os.path.exists({marker!r}):
    open({marker!r}, "w").close()
    counter = mmap.mmap(int(args[args.index(b"--progress-fd") + 1]), 8)
    lines = b""
    while lines.count(b"\\n") < 1:
        lines += os.read(0, 1 << 16)
    struct.pack_into("<Q", counter, 0, 1)
    while lines.count(b"\\n") < 2:
        lines += os.read(0, 1 << 16)
    os._exit(1)
"""


def name_pattern(version: int) -> re.Pattern[str]:
    return re.compile(rf"pipeline-{PIPELINE}-v{version}-[a-z0-9]{{5}}")


class Tasks:
    """Datum tasks over one input file ``/a.txt`` (repo ``in``) in a local object store."""

    def __init__(self, root: Path) -> None:
        self.store = LocalObjectStore(root / "store", durable=False)
        self.marks = root / "marks"
        self.marks.mkdir()
        self.data = b"the input\n"
        with Ingestor(self.store) as ingestor:
            writer = ingestor.open_file()
            writer.write(self.data)
            writer.close()
        self.file = InputFile("/a.txt", tuple(writer.chunks), writer.size)

    def task(
        self,
        idx: int,
        cmd: list[str],
        attempt: int = 1,
        job: str = "job1",
        runtime: str = "host",
        image: str = "",
    ) -> DatumTask:
        return DatumTask(
            task_id=f"{job}-{idx}-{attempt}",
            job_id=job,
            datum_id=f"datum{idx}",
            output_commit_id=job,
            pipeline=PIPELINE,
            store_url=self.store.url,
            cmd=tuple(cmd),
            runtime=runtime,
            image=image,
            inputs=(DatumInput("in", "c0ffee", "/", (self.file,)),),
        )

    def marking(self, seconds: float) -> list[str]:
        """Write the shell's host pid (its process group: a user command leads a session; read
        from /proc, as it runs in a pid namespace of its own) to marks/<datum id>, then sleep in a
        child process."""
        mark = f"{self.marks}/$PACH_DATUM_ID"
        return [
            "sh",
            "-c",
            f"read -r pid rest < /proc/self/stat; echo $pid > {mark}.tmp; mv {mark}.tmp {mark}; "
            f"sleep {seconds}; true",
        ]

    def started(self) -> dict[str, int]:
        """Datum id -> process group of its command, for the datums that started."""
        return {p.name: int(p.read_text()) for p in self.marks.iterdir() if p.suffix != ".tmp"}

    def output(self, result: DatumResult) -> dict[str, bytes]:
        return {o.path: b"".join(read_chunks(self.store, o.chunks)) for o in result.outputs}


@pytest.fixture
def tasks(tmp_path: Path) -> Iterator[Tasks]:
    tasks = Tasks(tmp_path)
    yield tasks
    # A killed worker orphans its datum's processes (in either executor): end them here.
    for group in tasks.started().values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)


class Background:
    """Consumes ``executor.run`` in a thread, so a test can act while datums run."""

    def __init__(self, results: Iterable[DatumResult]) -> None:
        self.results: list[DatumResult] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._consume, args=(results,), daemon=True)
        self._thread.start()

    def _consume(self, results: Iterable[DatumResult]) -> None:
        try:
            for result in results:
                self.results.append(result)
        except BaseException as e:  # handed to the test in join()
            self.error = e

    def join(self, timeout: float = WAIT) -> list[DatumResult]:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "executor.run did not end"
        if self.error is not None:
            raise self.error
        return self.results


class ExecutorContract:
    """Subclasses provide the ``executor`` fixture and the two backend hooks."""

    @pytest.fixture
    def executor(self) -> Iterator[Executor]:
        raise NotImplementedError("override the executor fixture")

    def kill_worker(self, executor: Executor, name: str) -> None:
        """Kill the worker (its process or actor) as a crash or an OOM kill would."""
        raise NotImplementedError

    def probe(self, executor: Executor, name: str) -> Callable[[], bool]:
        """A function telling whether the worker that has ``name`` now is still alive."""
        raise NotImplementedError

    def pool(self, executor: Executor, workers: int, version: int = 1) -> list[str]:
        """Ensure the pool and wait until its workers run; their names."""
        executor.ensure_pool(PIPELINE, version, workers)
        wait_for(
            "workers running", lambda: all(w.state == "Running" for w in executor.workers(PIPELINE))
        )
        return [w.name for w in executor.workers(PIPELINE)]

    # -- pools ---------------------------------------------------------------------------------
    def test_ensure_pool_creates_named_workers(self, executor: Executor) -> None:
        names = self.pool(executor, 3)
        assert len(set(names)) == 3
        assert all(name_pattern(1).fullmatch(n) for n in names), names
        infos = executor.workers()
        assert {(w.pipeline, w.version, w.restarts) for w in infos} == {(PIPELINE, 1, 0)}
        executor.ensure_pool(PIPELINE, 1, 3)  # unchanged: the same workers stay
        assert [w.name for w in executor.workers(PIPELINE)] == names
        assert executor.workers("other") == []
        assert executor.capacity() >= 1

    def test_update_to_a_new_version_replaces_the_workers(
        self, executor: Executor, tasks: Tasks
    ) -> None:
        old = self.pool(executor, 2)
        alive = [self.probe(executor, n) for n in old]
        new = self.pool(executor, 2, version=2)
        assert all(name_pattern(2).fullmatch(n) for n in new), new
        wait_for("v1 workers gone", lambda: not any(a() for a in alive))
        [result] = executor.run(PIPELINE, [tasks.task(0, COPY)])
        assert result.ok, result.reason
        assert result.worker in new

    def test_drop_pool_stops_the_workers(self, executor: Executor) -> None:
        names = self.pool(executor, 2)
        alive = [self.probe(executor, n) for n in names]
        executor.drop_pool(PIPELINE)
        assert executor.workers(PIPELINE) == []
        wait_for("workers gone", lambda: not any(a() for a in alive))

    # -- running datums ------------------------------------------------------------------------
    def test_one_result_per_task_with_its_outputs(self, executor: Executor, tasks: Tasks) -> None:
        names = self.pool(executor, 2)
        batch = [tasks.task(i, COPY) for i in range(5)] + [tasks.task(0, COPY, attempt=2)]
        results = list(executor.run(PIPELINE, batch))
        assert sorted(r.task_id for r in results) == sorted(t.task_id for t in batch)
        for r in results:
            assert r.ok, r.reason
            datum = r.task_id.split("-")[1]
            assert tasks.output(r) == {f"/datum{datum}.txt": tasks.data}
            assert r.worker in names

    def test_workers_run_datums_in_their_image(self, executor: Executor, tasks: Tasks) -> None:
        """On any executor a worker runs its datums in the pipeline's image (bwrap here)."""
        image = build_tiny_image()
        self.pool(executor, 2)
        cmd = ["sh", "-c", "echo $GREETING; cp /pfs/in/a.txt /pfs/out/a.txt"]
        batch = [tasks.task(i, cmd, runtime="bwrap", image=image) for i in range(3)]
        results = list(executor.run(PIPELINE, batch))
        assert len(results) == 3
        for r in results:
            assert r.ok, r.reason
            assert tasks.output(r) == {"/a.txt": tasks.data}
            assert [line for _, s, line in r.logs if s == "stdout"] == [TINY_ENV["GREETING"]]

    def test_secrets_and_err_cmd_reach_the_worker(self, executor: Executor, tasks: Tasks) -> None:
        """Secret values travel in the task (never in argv or logs); err_cmd recovers a datum."""
        image = build_tiny_image()
        self.pool(executor, 1)
        value = "v4lue-9c1e"
        script = 'printf %s "$TOKEN" > /pfs/out/env; cat /run/s/token > /pfs/out/file; exit 4'
        task = dataclasses.replace(
            tasks.task(0, ["sh", "-c", script], runtime="bwrap", image=image),
            secret_env={"TOKEN": value},
            secret_files={"/run/s": {"token": base64.b64encode(value.encode()).decode()}},
            err_cmd=("sh", "-c", 'test -n "$TOKEN" && test "$(cat /pfs/out/file)" = "$TOKEN"'),
        )
        assert value not in repr(task)
        [result] = executor.run(PIPELINE, [task])
        assert (result.ok, result.recovered, result.exit_code) == (False, True, 4), result.reason
        assert value not in repr(result.to_json())

        names = self.pool(executor, 2)
        quick = ["sh", "-c", "sleep 0.2"]
        batch = [tasks.task(0, ["sleep", "4"])] + [tasks.task(i, quick) for i in range(1, 6)]
        results = {r.task_id: r for r in executor.run(PIPELINE, batch)}
        assert all(r.ok for r in results.values()), [r.reason for r in results.values()]
        slow = results.pop("job1-0-1").worker
        assert {r.worker for r in results.values()} == set(names) - {slow}

    def test_a_failing_command_is_a_failed_result(self, executor: Executor, tasks: Tasks) -> None:
        self.pool(executor, 1)
        fail = ["sh", "-c", "echo broken >&2; exit 3"]
        [failed, fine] = executor.run(PIPELINE, [tasks.task(0, fail), tasks.task(1, COPY)])
        assert (failed.task_id, failed.ok, failed.exit_code) == ("job1-0-1", False, 3)
        assert "exit code 3" in failed.reason
        assert fine.ok, fine.reason

    def test_a_killed_worker_fails_its_datum_and_is_restarted(
        self, executor: Executor, tasks: Tasks
    ) -> None:
        [name] = self.pool(executor, 1)
        running = Background(executor.run(PIPELINE, [tasks.task(0, tasks.marking(30))]))
        wait_for("datum started", lambda: "datum0" in tasks.started())
        self.kill_worker(executor, name)
        [result] = running.join()
        assert (result.task_id, result.ok) == ("job1-0-1", False)
        assert "died" in result.reason, result.reason
        [info] = executor.workers(PIPELINE)
        assert (info.name, info.restarts) == (name, 1)
        [again] = executor.run(PIPELINE, [tasks.task(0, COPY, attempt=2)])
        assert again.ok, again.reason

    def test_restart_datums_fails_the_matching_running_datum_and_restarts_its_worker(
        self, executor: Executor, tasks: Tasks
    ) -> None:
        names = self.pool(executor, 2)
        batch = [tasks.task(i, tasks.marking(60)) for i in range(2)]
        running = Background(executor.run(PIPELINE, batch))
        wait_for("two datums started", lambda: len(tasks.started()) == 2)
        assert executor.restart_datums(PIPELINE, lambda t: t.datum_id == "nothing") == []
        assert executor.restart_datums(PIPELINE, lambda t: t.datum_id == "datum1") == ["datum1"]
        wait_for("the restarted datum's result", lambda: len(running.results) == 1, 60)
        [restarted] = running.results
        assert (restarted.task_id, restarted.ok) == ("job1-1-1", False)
        assert restarted.reason == "restarted by restart-datum"
        restarts = {w.name: w.restarts for w in executor.workers(PIPELINE)}
        assert sorted(restarts.values()) == [0, 1] and set(restarts) == set(names)
        executor.cancel(PIPELINE)  # the other datum still sleeps
        running.join(timeout=60)
        [again] = executor.run(PIPELINE, [tasks.task(1, COPY, attempt=2)])
        assert again.ok, again.reason

    def test_cancel_stops_running_datums(self, executor: Executor, tasks: Tasks) -> None:
        self.pool(executor, 2)
        batch = [tasks.task(i, tasks.marking(60)) for i in range(4)]
        started = time.monotonic()
        running = Background(executor.run(PIPELINE, batch))
        wait_for("two datums started", lambda: len(tasks.started()) == 2)
        executor.cancel(PIPELINE)
        results = running.join(timeout=30)
        assert time.monotonic() - started < 30
        assert not any(r.ok for r in results)
        groups = tasks.started()
        assert len(groups) == 2  # the other datums never started
        wait_for("user processes gone", lambda: not any(group_members(g) for g in groups.values()))
        [after] = executor.run(PIPELINE, [tasks.task(0, COPY, job="job2")])
        assert after.ok, after.reason


class TestLocalExecutor(ExecutorContract):
    @pytest.fixture
    def executor(self) -> Iterator[Executor]:
        executor = LocalExecutor(worker_env(os.environ, "file:///"))
        yield executor
        executor.close()

    def _process(self, executor: Executor, name: str) -> Any:
        assert isinstance(executor, LocalExecutor)
        for pool in executor._pools.values():
            for w in pool.workers:
                if w.name == name:
                    return w.proc
        raise AssertionError(f"no worker {name}")

    def kill_worker(self, executor: Executor, name: str) -> None:
        os.kill(self._process(executor, name).pid, signal.SIGKILL)

    def probe(self, executor: Executor, name: str) -> Callable[[], bool]:
        proc = self._process(executor, name)
        return lambda: proc.poll() is None

    def _sent(self, executor: Executor, name: str) -> list[str]:
        """The datum ids of the tasks the worker was sent and has not answered yet."""
        assert isinstance(executor, LocalExecutor)
        (worker,) = [w for p in executor._pools.values() for w in p.workers if w.name == name]
        return [t.datum_id for t in worker.sent]

    def test_new_workers_get_the_pipelines_image_ready(
        self, executor: Executor, tasks: Tasks
    ) -> None:
        """Workers of a sandboxed server are told the pipeline's image when they start, and
        ask podman for it while no datum has come (the first datum no longer waits ~0.15 s)."""
        assert isinstance(executor, LocalExecutor)
        image = build_tiny_image()
        executor.runtime = lambda: "bwrap"
        executor.ensure_pool(PIPELINE, 1, 1, image=image)
        (name,) = [w.name for w in executor.workers(PIPELINE)]
        argv = Path(f"/proc/{self._process(executor, name).pid}/cmdline").read_bytes().split(b"\0")
        at = argv.index(b"--warm-runtime")
        assert argv[at : at + 4] == [b"--warm-runtime", b"bwrap", b"--warm-image", image.encode()]
        cmd = ["sh", "-c", "cp /pfs/in/a.txt /pfs/out/a.txt"]
        [result] = executor.run(PIPELINE, [tasks.task(0, cmd, runtime="bwrap", image=image)])
        assert result.ok, result.reason
        # a host server's workers (and one whose runtime is unknown) are told nothing
        executor.runtime = lambda: "host"
        executor.ensure_pool(PIPELINE, 2, 1, image=image)
        (name,) = [w.name for w in executor.workers(PIPELINE)]
        argv = Path(f"/proc/{self._process(executor, name).pid}/cmdline").read_bytes()
        assert b"--warm" not in argv

    def test_workers_run_pinned_to_the_servers_cpus_in_turn(
        self, executor: Executor, tasks: Tasks
    ) -> None:
        """Each new worker runs on one CPU, the next of the server's (round every pool), where
        its agent hands it datums without waking another CPU; pinning can be turned off."""
        assert isinstance(executor, LocalExecutor)
        allowed = sorted(os.sched_getaffinity(0))
        assert len(allowed) >= 2, "pinning needs a machine of two CPUs or more"
        executor.pin_workers = True  # what TUSK_PIN_WORKERS=1 sets

        def cpus() -> list[set[int]]:
            procs = [self._process(executor, w.name) for w in executor.workers(PIPELINE)]
            return [os.sched_getaffinity(p.pid) for p in procs]

        executor.ensure_pool(PIPELINE, 1, 2)
        # a worker pins itself as it starts
        pinned = wait_for("pinned workers", lambda: all(len(c) == 1 for c in cpus()) and cpus())
        assert pinned[0] != pinned[1] and set.union(*pinned) <= set(allowed)
        [result] = executor.run(PIPELINE, [tasks.task(0, COPY)])
        assert result.ok, result.reason
        executor.pin_workers = False
        executor.ensure_pool(PIPELINE, 2, 1)
        [result] = executor.run(PIPELINE, [tasks.task(0, COPY)])  # the worker is past its start
        assert result.ok, result.reason
        assert cpus() == [set(allowed)]

    def test_unpinned_workers_get_home_cpus_in_turn_for_datum_batching(
        self, executor: Executor
    ) -> None:
        """Unpinned, each new worker is told a CPU of its own (the next in turn), where datum
        batching hands datums over, so that two workers' batches do not share one CPU."""
        assert isinstance(executor, LocalExecutor)
        allowed = sorted(os.sched_getaffinity(0))
        assert len(allowed) >= 2, "home CPUs need a machine of two CPUs or more"
        executor.ensure_pool(PIPELINE, 1, 2)
        homes = []
        for worker in executor.workers(PIPELINE):
            proc = self._process(executor, worker.name)
            argv = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
            assert b"--cpu" not in argv
            homes.append(int(argv[argv.index(b"--home-cpu") + 1]))
            assert os.sched_getaffinity(proc.pid) == set(allowed)  # not pinned
        assert homes[0] != homes[1] and set(homes) <= set(allowed)

    def test_warming_an_image_readies_it_or_leaves_the_problem_to_the_datum(self) -> None:
        from tusk.worker.__main__ import warm_image
        from tusk.worker.runtimes import images

        image = build_tiny_image()
        images._cache.pop(image, None)
        images._mounts.pop(image, None)
        warm_image("podman", image)
        assert image in images._cache and image not in images._mounts
        warm_image("bwrap", image)
        assert os.path.isdir(images._mounts[image] + "/bin")
        warm_image("bwrap", "localhost/no/such:1")  # nothing raised: its datum says what is wrong
        assert "localhost/no/such:1" not in images._cache

    def test_a_lone_worker_gets_its_next_task_ahead(self, executor: Executor, tasks: Tasks) -> None:
        """While a lone worker runs a datum, the next task already waits in its pipe; when the
        worker dies, that task (never started) is no failed try: it runs on the restarted one."""
        (name,) = self.pool(executor, 1)
        batch = [tasks.task(0, tasks.marking(60)), tasks.task(1, COPY), tasks.task(2, COPY)]
        running = Background(executor.run(PIPELINE, batch))
        wait_for("datum0 started", lambda: "datum0" in tasks.started())
        assert self._sent(executor, name) == ["datum0", "datum1"]
        assert [t.datum_id for t in executor.running(PIPELINE)] == ["datum0"]
        assert executor.restart_datums(PIPELINE, lambda t: t.task_id == "job1-0-1") == ["datum0"]
        results = {r.task_id: r for r in running.join()}
        assert sorted(results) == ["job1-0-1", "job1-1-1", "job1-2-1"]
        assert results.pop("job1-0-1").reason == "restarted by restart-datum"
        assert all(r.ok for r in results.values()), [r.reason for r in results.values()]

    def test_a_result_comes_while_the_next_datum_runs(
        self, executor: Executor, tasks: Tasks
    ) -> None:
        """A worker writes a datum's result once the next datum's command has started (or
        before it waits for a task): no result waits for the datum after it to end."""
        self.pool(executor, 1)
        batch = [tasks.task(0, COPY), tasks.task(1, ["sh", "-c", "exit 3"]), tasks.task(2, COPY)]
        batch.append(tasks.task(3, tasks.marking(60)))
        running = Background(executor.run(PIPELINE, batch))
        wait_for("datum3 started", lambda: "datum3" in tasks.started())
        wait_for("the results before it", lambda: len(running.results) == 3)
        assert [r.task_id for r in running.results] == ["job1-0-1", "job1-1-1", "job1-2-1"]
        assert [r.ok for r in running.results] == [True, False, True]
        assert running.results[1].reason == "exit code 3"
        assert executor.restart_datums(PIPELINE, lambda t: t.task_id == "job1-3-1") == ["datum3"]
        last = running.join()[-1]
        assert (last.task_id, last.reason) == ("job1-3-1", "restarted by restart-datum")
        # a lone task's result is written before the worker waits for the next one
        [alone] = executor.run(PIPELINE, [tasks.task(4, COPY)])
        assert alone.ok, alone.reason

    def test_with_several_workers_none_gets_a_task_ahead(
        self, executor: Executor, tasks: Tasks
    ) -> None:
        """A task sent ahead could wait behind a slow datum while another worker idles."""
        names = self.pool(executor, 2)
        batch = [tasks.task(i, tasks.marking(60)) for i in range(3)]
        running = Background(executor.run(PIPELINE, batch))
        wait_for("two datums started", lambda: len(tasks.started()) == 2)
        assert sorted(self._sent(executor, n) for n in names) == [["datum0"], ["datum1"]]
        executor.cancel(PIPELINE)
        running.join(timeout=30)

    def test_workers_of_quick_datums_get_tasks_ahead(
        self, executor: Executor, tasks: Tasks
    ) -> None:
        """Once a worker's datums are known to be quick, it is sent as many tasks ahead as it
        runs in ``ahead_seconds`` (a pool of several too): it never waits for the job master
        between them. A slow datum then holds the tasks sent behind it; stopping it hands them
        out again, not counted as tries."""
        assert isinstance(executor, LocalExecutor)
        executor.ahead_seconds = 600.0  # every datum here counts as quick
        names = self.pool(executor, 2)
        batch = [tasks.task(i, COPY) for i in range(6)]
        batch += [tasks.task(6, tasks.marking(60))] + [tasks.task(i, COPY) for i in range(7, 10)]
        running = Background(executor.run(PIPELINE, batch))
        wait_for("datum6 started", lambda: "datum6" in tasks.started())
        (held,) = [sent for sent in (self._sent(executor, n) for n in names) if "datum6" in sent]
        assert held[0] == "datum6" and len(held) > 1, held
        assert executor.restart_datums(PIPELINE, lambda t: t.datum_id == "datum6") == ["datum6"]
        results = {r.task_id: r for r in running.join()}
        assert sorted(results) == sorted(t.task_id for t in batch)
        assert results.pop("job1-6-1").reason == "restarted by restart-datum"
        assert all(r.ok for r in results.values()), [r.reason for r in results.values()]

    def test_a_worker_that_dies_holding_results_runs_their_datums_again(
        self, executor: Executor, tasks: Tasks, tmp_path: Path
    ) -> None:
        """A worker counts each result as it makes it and may hold a few: when it dies, the
        datum it was running fails (a try) and those whose results it held, never recorded,
        run again on the restarted worker (no try)."""
        assert isinstance(executor, LocalExecutor)
        site = tmp_path / "site"
        site.mkdir()
        # sitecustomize runs before ``-m tusk.worker``: the first process counts its first task
        # done without writing the result, and dies taking the second; later ones are real
        (site / "sitecustomize.py").write_text(DIES_HOLDING.format(marker=str(tmp_path / "died")))
        executor.env = {**executor.env, "PYTHONPATH": str(site)}
        self.pool(executor, 1)
        batch = [tasks.task(i, COPY) for i in range(4)]
        results = {r.task_id: r for r in executor.run(PIPELINE, batch)}
        assert sorted(results) == [t.task_id for t in batch]
        died = results.pop("job1-1-1")
        assert not died.ok and "died" in died.reason and "restarted" in died.reason, died.reason
        assert all(r.ok for r in results.values()), [r.reason for r in results.values()]
        assert tasks.output(results["job1-0-1"]) == {"/datum0.txt": tasks.data}
        assert executor.workers(PIPELINE)[0].restarts == 1

    def test_an_error_of_a_worker_thread_ends_the_results(
        self, executor: Executor, tasks: Tasks, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The results end once every worker's thread has ended: one that fails (a bug, not a
        worker dying) ends them with its error instead of leaving the job master waiting."""
        from tusk.pps.executors.local import WorkerProcess
        from tusk.pps.handoff import Handoff

        self.pool(executor, 2)
        received = WorkerProcess.receive
        calls = itertools.count()

        def receive(w: WorkerProcess) -> DatumResult:
            if next(calls) == 2:
                raise RuntimeError("reading a result went wrong")
            return received(w)

        monkeypatch.setattr(WorkerProcess, "receive", receive)
        stream = executor.run(PIPELINE, [tasks.task(i, COPY) for i in range(6)])
        assert isinstance(stream, Handoff)  # the job master takes results from it directly
        running = Background(stream)
        with pytest.raises(RuntimeError, match="reading a result went wrong"):
            running.join(timeout=60)
        # the results before the error came first; the failed thread's datum has none
        assert 2 <= len(running.results) <= 5 and all(r.ok for r in running.results)

    def test_workers_get_a_minimal_environment(self) -> None:
        server_env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "HOME": "/home/tusk",
            "TUSK_WORKER_SCRATCH": "/scratch",
            "TUSK_AUTH_TOKEN": "secret",
            "TUSK_METADATA_URL": "postgresql://user:pw@db/tusk",
            "AWS_SECRET_ACCESS_KEY": "s3-secret",
            "UNRELATED": "x",
        }
        executor = LocalExecutor(worker_env(server_env, "file:///objects"))
        try:
            executor.ensure_pool(PIPELINE, 1, 1)
            (worker,) = executor.workers(PIPELINE)
            pid = self._process(executor, worker.name).pid
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            got = dict(e.decode().split("=", 1) for e in environ if e)
        finally:
            executor.close()
        assert got == {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "HOME": "/home/tusk",
            "TUSK_WORKER_SCRATCH": "/scratch",
        }
        # workers upload outputs, so with an S3 store they get the S3 client's settings
        s3 = worker_env(server_env, "s3://bucket/prefix")
        assert s3["AWS_SECRET_ACCESS_KEY"] == "s3-secret"
        assert "TUSK_AUTH_TOKEN" not in s3 and "TUSK_METADATA_URL" not in s3


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    temp_dir = Path(tempfile.mkdtemp(prefix="tuskray", dir="/tmp"))  # Ray's socket paths are long
    try:
        with ray_cluster(temp_dir) as cluster:
            yield cluster
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


class TestRayExecutor(ExecutorContract):
    @pytest.fixture
    def executor(self, cluster: RayCluster) -> Iterator[Executor]:
        from tusk.pps.executors.ray import RayExecutor

        # The GCS address: Ray Client (ray[client]) would serve another port.
        executor = RayExecutor(cluster.url, client=False)
        yield executor
        executor.close()

    def _actor(self, name: str) -> Any:
        import ray

        from tusk.pps.executors.ray import NAMESPACE

        return ray.get_actor(name, namespace=NAMESPACE)

    def kill_worker(self, executor: Executor, name: str) -> None:
        import ray

        ray.kill(self._actor(name))

    def probe(self, executor: Executor, name: str) -> Callable[[], bool]:
        def alive() -> bool:  # a dead actor's name is released (these names are never reused)
            try:
                self._actor(name)
            except ValueError:
                return False
            return True

        return alive

    def test_capacity_counts_the_nodes_and_workers_spread_over_them(
        self, executor: Executor
    ) -> None:
        import ray

        assert executor.capacity() == 2
        names = self.pool(executor, 3)
        nodes = {ray.get(self._actor(n).ready.remote())["node"] for n in names}
        assert len(nodes) == 2

    def test_a_worker_process_killed_by_signal_is_restarted(
        self, executor: Executor, tasks: Tasks
    ) -> None:
        import ray

        [name] = self.pool(executor, 1)
        pid = ray.get(self._actor(name).ready.remote())["pid"]
        running = Background(executor.run(PIPELINE, [tasks.task(0, tasks.marking(30))]))
        wait_for("datum started", lambda: "datum0" in tasks.started())
        os.kill(pid, signal.SIGKILL)
        [result] = running.join()
        assert not result.ok and result.reason.startswith("ray actor died"), result.reason
        [again] = executor.run(PIPELINE, [tasks.task(0, COPY, attempt=2)])
        assert again.ok and again.worker == name, again.reason
        assert executor.workers(PIPELINE)[0].restarts == 1

    def test_tasks_are_made_as_actors_free_up(self, executor: Executor, tasks: Tasks) -> None:
        """A job of 100,000 datums must not hold 100,000 tasks: the pool takes from the job's
        iterable only what its free actors' next groups need, never the whole job."""
        from tusk.pps.executors.ray import MAX_GROUP

        self.pool(executor, 2)
        made: list[int] = []
        count = 6 * MAX_GROUP

        def lazily() -> Iterator[DatumTask]:
            for i in range(count):
                made.append(i)
                yield tasks.task(i, COPY)

        results = []
        most = 0
        for result in executor.run(PIPELINE, lazily()):
            most = max(most, len(made) - len(results))
            results.append(result)
        # in flight: a group per actor; made ahead: a group per actor
        assert most <= 2 * 2 * MAX_GROUP < count, most
        assert sorted(int(r.task_id.split("-")[1]) for r in results) == list(range(count))
        assert all(r.ok for r in results), [r.reason for r in results if not r.ok]

    def test_a_task_that_cannot_be_made_ends_the_run_after_the_made_ones(
        self, executor: Executor, tasks: Tasks
    ) -> None:
        self.pool(executor, 2)

        def broken() -> Iterator[DatumTask]:
            for i in range(3):
                yield tasks.task(i, COPY)
            raise RuntimeError("cannot read the datum's input")

        results: list[DatumResult] = []
        with pytest.raises(RuntimeError, match="cannot read the datum's input"):
            for result in executor.run(PIPELINE, broken()):
                results.append(result)
        assert sorted(r.task_id for r in results) == ["job1-0-1", "job1-1-1", "job1-2-1"]
        assert all(r.ok for r in results), [r.reason for r in results if not r.ok]
        [after] = executor.run(PIPELINE, [tasks.task(0, COPY, job="job2")])  # the pool is idle
        assert after.ok, after.reason


class TestRayGroups:
    """Short datums go to a Ray actor in groups, one call each; what a group's loss costs."""

    @pytest.fixture
    def executor(self, cluster: RayCluster) -> Iterator[Any]:
        from tusk.pps.executors.ray import RayExecutor

        executor = RayExecutor(cluster.url, client=False)
        executor.ensure_pool(PIPELINE, 1, 1)
        wait_for(
            "worker running", lambda: all(w.state == "Running" for w in executor.workers(PIPELINE))
        )
        yield executor
        executor.close()

    @staticmethod
    def warm(executor: Any, tasks: Tasks, count: int = 30) -> None:
        """Run short datums, then set the actor's measured rate to 1 ms a datum, so its next
        group is as big as the fair share allows whatever the load of the machine (on a busy
        machine the rate it measured gives groups of 1 or 2)."""
        [actor] = executor._pools[PIPELINE].actors
        warm = [tasks.task(i, COPY, job="warm") for i in range(count)]
        results = list(executor.run(PIPELINE, warm))
        assert all(r.ok for r in results), [r.reason for r in results if not r.ok]
        actor.per_task, actor.last_group = 0.001, 64

    def test_short_datums_go_in_groups_with_one_result_each(
        self, executor: Any, tasks: Tasks
    ) -> None:
        self.warm(executor, tasks)
        [actor] = executor._pools[PIPELINE].actors
        batch = [tasks.task(i, COPY) for i in range(40)]
        results, groups = [], set()
        for result in executor.run(PIPELINE, batch):
            results.append(result)
            groups.add(actor.last_group)
        assert max(groups) > 1, groups
        assert sorted(r.task_id for r in results) == sorted(t.task_id for t in batch)
        assert all(r.ok and tasks.output(r) for r in results), [r.reason for r in results]

    def test_a_datum_that_kills_its_actor_fails_alone(self, executor: Any, tasks: Tasks) -> None:
        self.warm(executor, tasks)
        killer = ["sh", "-c", "kill -9 $PPID; sleep 5"]
        batch = [tasks.task(i, killer if i == 3 else COPY) for i in range(8)]
        results = {r.task_id: r for r in executor.run(PIPELINE, batch)}
        assert sorted(results) == sorted(t.task_id for t in batch)  # one result each
        bad = results.pop("job1-3-1")
        assert not bad.ok and "died" in bad.reason, bad.reason
        assert all(r.ok for r in results.values()), [r.reason for r in results.values()]

    def test_restart_datum_in_a_group_reruns_the_others_untried(
        self, executor: Any, tasks: Tasks
    ) -> None:
        self.warm(executor, tasks)
        batch = [tasks.task(i, tasks.marking(60) if i == 3 else COPY) for i in range(8)]
        running = Background(executor.run(PIPELINE, batch))
        wait_for("the slow datum started", lambda: "datum3" in tasks.started())
        assert len(executor.running(PIPELINE)) == 8  # the whole group is one call
        assert executor.restart_datums(PIPELINE, lambda t: t.datum_id == "datum3") == ["datum3"]
        results = {r.task_id: r for r in running.join()}
        assert sorted(results) == sorted(t.task_id for t in batch)
        restarted = results.pop("job1-3-1")
        assert (restarted.ok, restarted.reason) == (False, "restarted by restart-datum")
        assert all(r.ok for r in results.values()), [r.reason for r in results.values()]

    def test_the_last_datums_are_shared_among_the_actors(self, executor: Any, tasks: Tasks) -> None:
        from tusk.pps.executors.base import CountedTasks

        executor.ensure_pool(PIPELINE, 2, 2)
        wait_for(
            "workers running",
            lambda: (
                all(w.state == "Running" for w in executor.workers(PIPELINE))
                and len(executor.workers(PIPELINE)) == 2
            ),
        )
        list(executor.run(PIPELINE, [tasks.task(i, COPY, job="warm") for i in range(60)]))
        slow = ["sh", "-c", "sleep 0.5; cp /pfs/in/a.txt /pfs/out/$PACH_DATUM_ID.txt"]
        batch = [tasks.task(i, slow) for i in range(4)]
        started = time.monotonic()
        results = list(executor.run(PIPELINE, CountedTasks(iter(batch), len(batch))))
        assert all(r.ok for r in results), [r.reason for r in results]
        assert len({r.worker for r in results}) == 2  # not one group of 4 on one actor
        assert time.monotonic() - started < 4 * 0.5 + 0.9


def test_resources_become_actor_options() -> None:
    from tusk.pps.executors.ray import DEFAULT_NUM_CPUS, actor_options, parse_quantity

    assert actor_options(None, "ubuntu:16.04", containers=False) == {"num_cpus": DEFAULT_NUM_CPUS}
    spec = {"cpu": "500m", "memory": "64Mi", "gpu": {"type": "nvidia.com/gpu", "number": 1}}
    assert actor_options(spec, "img:1", containers=True) == {
        "num_cpus": 0.5,
        "memory": 64 << 20,
        "num_gpus": 1,
        "runtime_env": {"image_uri": "img:1"},
    }
    assert parse_quantity("1G") == 1e9
    assert parse_quantity(2) == 2.0


def test_ray_addresses() -> None:
    from tusk.errors import InvalidArgument
    from tusk.pps.executors.ray import RayExecutor

    assert RayExecutor("ray").address() is None  # ray.init() decides
    assert RayExecutor("ray://head:6379", client=False).address() == "head:6379"
    assert RayExecutor("ray://head:10001", client=True).address() == "ray://head:10001"
    with pytest.raises(InvalidArgument):
        RayExecutor("ray://").address()
