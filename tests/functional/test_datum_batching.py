"""Datum batching (``transform.datum_batching``) in a worker, with real bubblewrap and podman.

User code runs once for many datums and asks for each with ``pachctl next datum`` (the agent
under that name, in the sandbox) or ``tusk_batch`` (Python); each datum still gets its own
result, output, logs, failure and timeout."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tusk.storage import Ingestor, ObjectStore
from tusk.storage.local import LocalObjectStore
from tusk.testing.images import build_python_image, build_tiny_image
from tusk.worker import DatumInput, DatumResult, DatumTask, InputFile, Worker, WorkerSettings

SHELL_LOOP = """
echo starting
pachctl next datum || exit 1
while true; do
  for f in /pfs/in/*; do n=${f##*/}; done
  if [ "$n" = bad ]; then
    echo "bad input" >&2
    pachctl next datum --error "bad input $n" || exit 1
    continue
  fi
  cp "/pfs/in/$n" /pfs/out/
  echo "$n by $$"
  pachctl next datum || exit 1
done
"""

PYTHON_LOOP = """
import os, time, tusk_batch
print("starting", flush=True)
for datum in tusk_batch.datums():
    name = os.path.basename(os.environ["in"])
    if name == "bad":
        datum.fail("bad input " + name)
        continue
    if name == "slow":
        time.sleep(30)
    with open("/pfs/out/" + name, "w") as f:
        f.write(open(os.environ["in"]).read().upper())
    print(name, "by", os.getpid(), "datum", datum.id)
"""


@pytest.fixture(scope="module")
def tiny() -> str:
    return build_tiny_image()


@pytest.fixture(scope="module")
def python_image() -> str:
    return build_python_image()


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "store", durable=False)


@pytest.fixture
def worker() -> Iterator[Worker]:
    with tempfile.TemporaryDirectory(prefix="tusk-batch-test-", dir="/var/tmp") as scratch:
        os.chmod(scratch, 0o711)
        settings = WorkerSettings.from_environ({"PATH": "/usr/bin:/bin"}, scratch_root=scratch)
        with Worker("pipeline-batch-v1-abcde", settings=settings) as w:
            yield w


def put(store: ObjectStore, path: str, data: bytes) -> InputFile:
    with Ingestor(store) as ingestor:
        writer = ingestor.open_file()
        writer.write(data)
        writer.close()
    return InputFile(path, tuple(writer.chunks), writer.size)


def batch_task(
    store: ObjectStore, runtime: str, image: str, cmd: tuple[str, ...], name: str, **fields: object
) -> DatumTask:
    data = put(store, f"/{name}", f"{name}\n".encode())
    return DatumTask(
        task_id=f"job1-{name}-1",
        job_id=str(fields.pop("job_id", "job1")),
        datum_id=f"d-{name}",
        output_commit_id="job1",
        pipeline="batch",
        store_url=store.url,
        cmd=cmd,
        runtime=runtime,
        image=image,
        datum_batching=True,
        inputs=(DatumInput("in", "c0ffee", f"/{name}", (data,)),),
        **fields,  # type: ignore[arg-type]
    )


# The loop of run_python's code: each datum's body sees ``datum`` and its input's ``name``.
LOOP_HEAD = """
import os, subprocess, tusk_batch
for datum in tusk_batch.datums():
    name = os.path.basename(os.environ["in"])
"""


def run_python(
    worker: Worker, store: ObjectStore, image: str, body: str, names: list[str]
) -> list[DatumResult]:
    """One datum per name (a file of that name), through a Python loop under bwrap that runs
    ``body`` (indented by 4) for each."""
    cmd = ("python3", "-c", LOOP_HEAD + body)
    return [worker.run(batch_task(store, "bwrap", image, cmd, n)) for n in names]


def lines(result: DatumResult, stream: str = "stdout") -> list[str]:
    return [line for _, s, line in result.logs if s == stream]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/status").read_text().find("\nState:\tZ") < 0


@pytest.mark.parametrize("runtime", ["bwrap", "podman"])
def test_a_hundred_datums_in_one_shell_process(
    worker: Worker, store: LocalObjectStore, tiny: str, runtime: str
) -> None:
    cmd = ("sh", "-c", SHELL_LOOP)
    results = [worker.run(batch_task(store, runtime, tiny, cmd, f"f{i:03}")) for i in range(100)]
    assert all(r.ok for r in results), [r.reason for r in results if not r.ok]
    pids = set()
    for i, result in enumerate(results):
        name = f"f{i:03}"
        assert [o.path for o in result.outputs] == [f"/{name}"]  # its own output only
        out = lines(result)
        assert out[-1].startswith(f"{name} by "), out  # its own log lines
        pids.add(out[-1].split()[-1])
    assert len(pids) == 1  # one process ran them all
    assert lines(results[0])[0] == "starting"  # start-up output goes with the first datum
    assert "starting" not in lines(results[1])


def test_a_datum_too_large_for_memory_ends_the_batch_and_runs_with_its_inputs_on_disk(
    store: LocalObjectStore, tiny: str
) -> None:
    with tempfile.TemporaryDirectory(prefix="tusk-batch-test-", dir="/var/tmp") as scratch:
        os.chmod(scratch, 0o711)
        environ = {"PATH": "/usr/bin:/bin", "TUSK_SANDBOX_INPUT_MEMORY": "64Ki"}
        settings = WorkerSettings.from_environ(environ, scratch_root=scratch)
        cmd = ("sh", "-c", SHELL_LOOP)
        with Worker("pipeline-batch-v1-abcde", settings=settings) as worker:
            first = worker.run(batch_task(store, "bwrap", tiny, cmd, "a"))
            assert first.ok, first.reason
            in_memory = worker.sandbox
            assert in_memory is not None and in_memory.dirs.input_memory is not None
            big = batch_task(store, "bwrap", tiny, cmd, "big")
            data = put(store, "/big", b"x" * 100_000)
            big = replace(big, inputs=(DatumInput("in", "c0ffee", "/big", (data,)),))
            second = worker.run(big)
            assert second.ok, second.reason
            assert worker.sandbox is not in_memory and worker.sandbox.dirs.input_memory is None
            assert lines(second)[0] == "starting"  # the code started again, in the new sandbox
            third = worker.run(batch_task(store, "bwrap", tiny, cmd, "c"))
            assert third.ok, third.reason
            assert "starting" not in lines(third)  # and goes on there
            assert len({lines(r)[-1].split()[-1] for r in (second, third)}) == 1


@pytest.mark.parametrize("runtime", ["bwrap", "podman"])
def test_a_datum_reported_failed_fails_alone(
    worker: Worker, store: LocalObjectStore, tiny: str, runtime: str
) -> None:
    cmd = ("sh", "-c", SHELL_LOOP)
    names = ["a", "bad", "c"]
    results = [worker.run(batch_task(store, runtime, tiny, cmd, n)) for n in names]
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].reason == "user code reported an error: bad input bad"
    assert "bad input" in lines(results[1], "stderr")
    assert not results[1].outputs
    assert [o.path for o in results[2].outputs] == ["/c"]


def test_python_code_batches_with_tusk_batch_its_failure_and_timeout(
    worker: Worker, store: LocalObjectStore, python_image: str
) -> None:
    cmd = ("python3", "-c", PYTHON_LOOP)
    names = ["a", "b", "bad", "slow", "d", "e"]
    results = {
        n: worker.run(batch_task(store, "bwrap", python_image, cmd, n, timeout_seconds=2))
        for n in names
    }
    assert {n: r.ok for n, r in results.items()} == {
        "a": True,
        "b": True,
        "bad": False,
        "slow": False,
        "d": True,
        "e": True,
    }
    assert results["bad"].reason == "user code reported an error: bad input bad"
    assert results["slow"].reason == "datum timed out after 2s"
    assert lines(results["a"])[0] == "starting"
    by = {n: lines(results[n])[-1].split() for n in ("a", "b", "d", "e")}
    assert by["a"][4] == "d-a" and by["e"][4] == "d-e"  # the datum's own variables
    assert by["a"][2] == by["b"][2]  # one process ...
    assert by["d"][2] == by["e"][2] != by["a"][2]  # ... and a fresh one after the timeout
    assert lines(results["d"])[0] == "starting"
    assert [o.path for o in results["e"].outputs] == ["/e"]


def test_user_code_ends_when_the_worker_has_no_datum_left(
    worker: Worker, store: LocalObjectStore, tiny: str
) -> None:
    cmd = ("sh", "-c", "while pachctl next datum; do echo pid $$; done; echo after the loop")
    result = worker.run(batch_task(store, "bwrap", tiny, cmd, "a"))
    assert result.ok, result.reason
    sandbox = worker.sandbox
    assert sandbox is not None and worker.batch is not None
    worker.end_batch()
    assert worker.batch is None
    # the agent killed it: the sandbox lives on for the next datum, which starts a fresh loop
    again = worker.run(batch_task(store, "bwrap", tiny, cmd, "b"))
    assert again.ok and worker.sandbox is sandbox
    assert lines(again) != lines(result)


def test_a_program_that_never_asks_is_one_plain_datum_and_pachctl_says_what_it_does(
    worker: Worker, store: LocalObjectStore, tiny: str
) -> None:
    plain = batch_task(store, "bwrap", tiny, ("sh", "-c", "cat /pfs/in/a"), "a")
    result = worker.run(plain)
    assert result.ok and lines(result) == ["a"]
    assert worker.batch is None
    wrong = batch_task(store, "bwrap", tiny, ("pachctl", "list", "repo"), "b")
    failed = worker.run(wrong)
    assert not failed.ok and failed.reason.startswith("exit code 2: pachctl: only `pachctl next")


def test_a_batched_datum_past_its_exit_fails_and_is_retried(
    worker: Worker, store: LocalObjectStore, tiny: str
) -> None:
    # takes one datum, then exits with an error: the datum it had fails with its exit code
    cmd = ("sh", "-c", "pachctl next datum; echo oops >&2; exit 3")
    result = worker.run(batch_task(store, "bwrap", tiny, cmd, "a"))
    assert not result.ok and result.reason == "exit code 3: oops"
    assert worker.batch is None
    assert worker.run(batch_task(store, "bwrap", tiny, cmd, "b")).reason == "exit code 3: oops"


def test_batching_on_the_host_runtime(worker: Worker, store: LocalObjectStore) -> None:
    # TUSK_RUNTIME=host: the same pachctl and tusk_batch, at the sandbox directory's host paths
    cmd = ("sh", "-c", "pachctl next datum && exec python3 -c 'import os, tusk_batch\n" +
           "for d in tusk_batch.datums():\n    print(os.getpid(), d.id)'")  # fmt: skip
    results = [worker.run(batch_task(store, "host", "", cmd, n)) for n in ("a", "b", "c")]
    assert all(r.ok for r in results), [r.reason for r in results]
    first, second, third = (lines(r) for r in results)
    assert first == []  # the shell took the first datum and printed nothing for it
    assert second[0].split()[1] == "d-b" and third[0].split()[1] == "d-c"
    assert second[0].split()[0] == third[0].split()[0]  # one Python process


def test_python_code_keeps_its_connection_and_gives_way_to_pachctl(
    worker: Worker, store: LocalObjectStore, python_image: str
) -> None:
    # tusk_batch keeps one connection to the agent; a `pachctl next datum` of a subprocess
    # takes its place (it takes the next datum), and tusk_batch connects again after it
    code = """
    print(name, os.getpid(), flush=True)
    if name == "b":
        subprocess.run(["pachctl", "next", "datum"], check=True)
        print("pachctl took", os.path.basename(os.environ["in"]), flush=True)
"""
    results = run_python(worker, store, python_image, code, ["a", "b", "c", "d", "e"])
    assert all(r.ok for r in results), [r.reason for r in results]
    logs = [lines(r) for r in results]
    pid = logs[0][0].split()[1]
    assert logs[0] == [f"a {pid}"] and logs[1] == [f"b {pid}"]
    # datum c went to pachctl; what the Python code printed meanwhile goes with c
    assert logs[2] == ["pachctl took b"]
    assert logs[3] == [f"d {pid}"] and logs[4] == [f"e {pid}"]  # the same process goes on


def test_batched_code_keeps_every_cpu_while_its_hand_overs_stay_on_one(
    worker: Worker, store: LocalObjectStore, python_image: str
) -> None:
    # quick datums are handed over on the worker thread's home CPU; the code gets its CPUs back
    # before each datum runs, and the worker thread gets its own back when the batch ends
    allowed = os.sched_getaffinity(0)
    assert len(allowed) >= 2, "home CPUs need a machine of two CPUs or more"
    code = """
    print(sorted(os.sched_getaffinity(0)), flush=True)
"""
    results = run_python(worker, store, python_image, code, [f"f{i:02}" for i in range(30)])
    assert all(r.ok for r in results), [r.reason for r in results]
    assert worker.home.cpu in allowed
    assert os.sched_getaffinity(0) == {worker.home.cpu}  # the worker thread, held
    assert {line for r in results for line in lines(r)} == {str(sorted(allowed))}
    worker.end_batch()
    assert worker.home.cpu == -1 and os.sched_getaffinity(0) == allowed


def test_an_error_message_too_long_for_the_agent_is_cut_and_the_next_datum_follows(
    worker: Worker, store: LocalObjectStore, python_image: str
) -> None:
    code = """
    if name == "long":
        datum.fail("x" * 100_000)
    print(name, flush=True)
"""
    results = run_python(worker, store, python_image, code, ["a", "long", "b", "c"])
    assert [r.ok for r in results] == [True, False, True, True]
    reason = results[1].reason
    assert reason.startswith("user code reported an error: xxx") and len(reason) < 70_000
    assert [lines(r) for r in results] == [["a"], ["long"], ["b"], ["c"]]
