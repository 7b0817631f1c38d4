"""Datums in their pipeline's image, with real bubblewrap and podman (CI installs both).

A worker runs each datum in its sandbox through the agent; these tests check what user code
sees and cannot do there, and what the jobs record."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tusk.cli.pps_details import job_details
from tusk.errors import InvalidArgument
from tusk.storage import Ingestor, ObjectStore, read_chunks
from tusk.storage.local import LocalObjectStore
from tusk.testing.images import TINY_ENV, TINY_WORKDIR, build_python_image, build_tiny_image
from tusk.worker import DatumInput, DatumResult, DatumTask, InputFile, Worker, WorkerSettings
from tusk.worker.protocol import encode_task
from tusk.worker.runtimes import SandboxSpec, start_sandbox

RUNTIMES = ["bwrap", "podman"]


@pytest.fixture(scope="session")
def tiny() -> str:
    return build_tiny_image()


@pytest.fixture(scope="session")
def python_image() -> str:
    return build_python_image()


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "store", durable=False)


@pytest.fixture
def scratch() -> Iterator[Path]:
    """Under /var/tmp: the sandbox's uid must be able to reach it (pytest's tmp dirs are 0700)."""
    with tempfile.TemporaryDirectory(prefix="tusk-sbx-test-", dir="/var/tmp") as path:
        os.chmod(path, 0o711)
        yield Path(path)


@pytest.fixture
def worker(scratch: Path) -> Iterator[Worker]:
    environ = {"PATH": "/usr/bin:/bin", "SECRET_TOKEN": "s3cr3t", "TUSK_AUTH_TOKEN": "t0k3n"}
    settings = WorkerSettings.from_environ(environ, scratch_root=str(scratch))
    with Worker("pipeline-sbx-v1-abcde", settings=settings) as w:
        yield w


def put(store: ObjectStore, path: str, data: bytes) -> InputFile:
    with Ingestor(store) as ingestor:
        writer = ingestor.open_file()
        writer.write(data)
        writer.close()
    return InputFile(path, tuple(writer.chunks), writer.size)


def task(store: ObjectStore, runtime: str, image: str, script: str, **fields: object) -> DatumTask:
    return DatumTask(
        task_id=str(fields.pop("task_id", "job1-0-1")),
        job_id="job1",
        datum_id="datum0",
        output_commit_id="out1",
        pipeline="sbx",
        store_url=store.url,
        cmd=("sh", "-c", script),
        runtime=runtime,
        image=image,
        **fields,  # type: ignore[arg-type]
    )


def stdout(result: DatumResult) -> list[str]:
    return [line for _, s, line in result.logs if s == "stdout"]


def host_processes(marker: str) -> list[tuple[int, int]]:
    """(pid, real uid) of the live host processes whose command line holds ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            status = (entry / "status").read_text()
        except OSError:
            continue
        if marker.encode() in cmdline and "\nState:\tZ" not in status:
            uid = next(line for line in status.splitlines() if line.startswith("Uid:"))
            found.append((int(entry.name), int(uid.split()[1])))
    return found


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_user_code_sees_the_image_its_inputs_and_pachyderm_variables(
    worker: Worker, store: LocalObjectStore, tiny: str, runtime: str
) -> None:
    data = put(store, "/fruit/apple.txt", b"apple\n")
    script = (
        "echo cwd=$(pwd); echo greeting=$GREETING; echo path=$PATH; cat hello.txt; "
        "echo in=$in; echo commit=$in_COMMIT; echo job=$PACH_JOB_ID; echo datum=$PACH_DATUM_ID; "
        "echo out=$PACH_OUTPUT_COMMIT_ID; echo mine=$MINE; cat /pfs/in/fruit/apple.txt; "
        "env | grep -c -e SECRET -e TUSK_ || true; test -e /usr/bin/python3 || echo no-python"
    )
    result = worker.run(
        task(
            store,
            runtime,
            tiny,
            script,
            env={"MINE": "from transform.env"},
            inputs=(DatumInput("in", "c0ffee", "/fruit", (data,)),),
        )
    )
    assert result.ok, result.reason
    assert stdout(result) == [
        f"cwd={TINY_WORKDIR}",  # the image's WORKDIR
        f"greeting={TINY_ENV['GREETING']}",  # its ENV
        f"path={TINY_ENV['PATH']}",
        "from the image",  # its files
        "in=/pfs/in/fruit",
        "commit=c0ffee",
        "job=job1",
        "datum=datum0",
        "out=out1",
        "mine=from transform.env",
        "apple",
        "0",  # nothing of the worker's environment
        "no-python",  # the image, not the host
    ]
    system = [line for _, s, line in result.logs if s == "system"]
    assert any(f"runtime: {runtime}, image {tiny}" in line for line in system), system


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_pfs_inputs_read_only_output_written_tmp_private_root_read_only(
    worker: Worker, store: LocalObjectStore, tiny: str, runtime: str
) -> None:
    data = put(store, "/a.txt", b"original")
    script = (
        "echo x > /pfs/in/a.txt 2>/dev/null && echo input-writable; "
        "touch /pfs/new 2>/dev/null && echo pfs-writable; "
        "touch /bin/evil 2>/dev/null && echo root-writable; "
        "ls -A /tmp; echo mine > /tmp/left-behind; "
        "cp /pfs/in/a.txt /pfs/out/copy.txt; echo done"
    )
    inputs = (DatumInput("in", "c", "/", (data,)),)
    first = worker.run(task(store, runtime, tiny, script, inputs=inputs))
    assert first.ok, first.reason
    assert stdout(first) == ["done"]  # nothing was writable, /tmp was empty
    ((output),) = first.outputs
    assert output.path == "/copy.txt"
    assert b"".join(read_chunks(store, output.chunks)) == b"original"
    # the next datum in the same sandbox starts with an empty /tmp and /pfs/out
    second = worker.run(task(store, runtime, tiny, "ls -A /tmp /pfs/out", inputs=inputs))
    assert second.ok, second.reason
    assert stdout(second) == ["/pfs/out:", "", "/tmp:"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_user_code_runs_as_an_unprivileged_host_uid_and_sees_no_server_files(
    worker: Worker, store: LocalObjectStore, tiny: str, runtime: str, tmp_path: Path
) -> None:
    server_file = tmp_path / "server-home" / "tusk.db"
    server_file.parent.mkdir()
    server_file.write_text("secret")
    seen: list[tuple[int, int]] = []

    def watch() -> None:
        deadline = time.monotonic() + 20
        while not seen and time.monotonic() < deadline:
            seen.extend(host_processes("7.4242"))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    script = (
        f"cat {server_file} 2>/dev/null && echo server-file-readable; "
        "sed -n '3,$p' /proc/net/dev | sed 's/:.*//' | tr -d ' '; id -u; sleep 7.4242"
    )
    result = worker.run(task(store, runtime, tiny, script, timeout_seconds=1.5))
    watcher.join()
    assert result.reason == "datum timed out after 1.5s"
    assert stdout(result) == ["lo", "0"]  # loopback only; root inside
    assert seen, "the datum's process was not seen on the host"
    assert all(uid >= 100000 for _, uid in seen), seen  # never the server's uid on the host
    assert host_processes("7.4242") == []  # killed at the timeout


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_transform_user_is_honoured(
    worker: Worker, store: LocalObjectStore, tiny: str, runtime: str
) -> None:
    result = worker.run(task(store, runtime, tiny, "id -u; id -g; touch /pfs/out/f", user="fruit"))
    assert result.ok, result.reason
    assert stdout(result) == ["1000", "1000"]
    assert [o.path for o in result.outputs] == ["/f"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_leftover_processes_are_killed_after_every_datum(
    worker: Worker, store: LocalObjectStore, tiny: str, runtime: str
) -> None:
    script = "sleep 60.5151 & setsid sleep 60.5151 & (sleep 60.5151 >/dev/null 2>&1 &); echo ok"
    result = worker.run(task(store, runtime, tiny, script))
    assert result.ok, result.reason
    assert stdout(result) == ["ok"]
    assert host_processes("60.5151") == []


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_command_running_when_its_worker_dies_ends_with_the_sandbox(
    tiny: str, scratch: Path, runtime: str
) -> None:
    """A worker killed mid-datum closes its end of the agent's stdin (the kernel does it): the
    agent kills the command and what it started, and the sandbox ends, rather than user code
    running on with nobody to stop it (a spout's code never ends by itself)."""
    sandbox = start_sandbox(SandboxSpec(runtime, tiny), str(scratch))
    try:
        sandbox.agent.start(["sh", "-c", "sleep 60.6161 & sleep 60.6161"], {}, "/", None, None)
        deadline = time.time() + 30
        while len(host_processes("60.6161")) < 2 and time.time() < deadline:
            time.sleep(0.1)
        assert len(host_processes("60.6161")) >= 2  # the shell and its sleeps
        sandbox.agent._in.close()  # what the worker's death does to the pipe
        sandbox.proc.wait(timeout=20)
        assert host_processes("60.6161") == []
    finally:
        sandbox.kill()
        sandbox.close()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_command_missing_from_the_image_is_a_clear_datum_error(
    worker: Worker, store: LocalObjectStore, tiny: str, runtime: str
) -> None:
    t = task(store, runtime, tiny, "")
    result = worker.run(DatumTask.from_json({**t.to_json(), "cmd": ["python3", "/edges.py"]}))
    assert not result.ok
    assert result.reason == f"command not found in image {tiny}: python3"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_missing_image_fails_the_datum(
    worker: Worker, store: LocalObjectStore, runtime: str
) -> None:
    result = worker.run(task(store, runtime, "localhost/no/such:image", "true"))
    assert not result.ok
    assert result.reason == "image localhost/no/such:image not found"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_sandbox_that_dies_is_replaced_for_the_next_datum(
    worker: Worker, store: LocalObjectStore, tiny: str, runtime: str
) -> None:
    assert worker.run(task(store, runtime, tiny, "true")).ok
    sandbox = worker.sandbox
    assert sandbox is not None
    killer = threading.Timer(0.5, sandbox.proc.kill)
    killer.start()
    dead = worker.run(task(store, runtime, tiny, "sleep 30"))
    killer.join()
    assert not dead.ok
    assert "sandbox died while running the datum" in dead.reason
    again = worker.run(task(store, runtime, tiny, "echo fresh"))
    assert again.ok, again.reason
    assert worker.sandbox is not sandbox


def test_python_datums_run_in_a_python_image(
    worker: Worker, store: LocalObjectStore, python_image: str
) -> None:
    t = task(store, "bwrap", python_image, "")
    code = "import sys, os; print(sys.version_info[0], os.getcwd())"
    result = worker.run(DatumTask.from_json({**t.to_json(), "cmd": ["python3", "-c", code]}))
    assert result.ok, result.reason
    assert stdout(result) == ["3 /"]


def test_a_scratch_dir_the_sandbox_uid_cannot_reach_is_a_clear_error(
    store: LocalObjectStore, tiny: str, tmp_path: Path
) -> None:
    hidden = tmp_path / "hidden"
    hidden.mkdir(mode=0o700)
    settings = WorkerSettings.from_environ({}, scratch_root=str(hidden / "scratch"))
    (hidden / "scratch").mkdir()
    with Worker("w", settings=settings) as worker:
        result = worker.run(task(store, "bwrap", tiny, "true"))
    assert not result.ok
    assert "is not reachable by the sandbox's uid" in result.reason
    assert "TUSK_WORKER_SCRATCH" in result.reason


def mounts_under(path: Path) -> list[str]:
    """Mount points of the host at or below ``path``."""
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [p for p in points if p == str(path) or p.startswith(f"{path}/")]


def test_sandbox_dirs_of_a_killed_worker_are_removed_by_the_next(tiny: str, scratch: Path) -> None:
    stale = scratch / "tusk-sandbox-999999999-abc"
    (stale / "pfs").mkdir(parents=True)
    # its inputs' tmpfs, still mounted: a killed worker unmounts nothing
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tusk-inputs", stale / "pfs"], check=True
    )
    (stale / "pfs" / "f").write_text("x")
    sandbox = start_sandbox(SandboxSpec("bwrap", tiny), str(scratch))
    try:
        assert not stale.exists()
        assert (Path(sandbox.dirs.root).stat().st_mode & 0o777) == 0o700
    finally:
        sandbox.close()
    assert list(scratch.iterdir()) == []
    assert mounts_under(scratch) == []


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_small_inputs_are_in_memory_larger_ones_on_disk_where_the_sandbox_stays(
    scratch: Path, store: LocalObjectStore, tiny: str, runtime: str
) -> None:
    environ = {"PATH": "/usr/bin:/bin", "TUSK_SANDBOX_INPUT_MEMORY": "64Ki"}
    settings = WorkerSettings.from_environ(environ, scratch_root=str(scratch))
    small = put(store, "/small.txt", b"s" * 1000)
    large = put(store, "/large.bin", b"l" * 100_000)  # more than 64Ki

    def run(worker: Worker, data: InputFile, job: str = "job1") -> list[str]:
        script = f"stat -f -c %T /pfs; wc -c < /pfs/in{data.path}; touch /pfs/in/x || echo ro"
        inputs = (DatumInput("in", "c", data.path, (data,)),)
        result = worker.run(replace(task(store, runtime, tiny, script, inputs=inputs), job_id=job))
        assert result.ok, result.reason
        return stdout(result)

    with Worker("pipeline-sbx-v1-abcde", settings=settings) as worker:
        assert run(worker, small) == ["tmpfs", "1000", "ro"]
        in_memory = worker.sandbox
        assert in_memory is not None and in_memory.dirs.input_memory == 64 * 1024
        assert str(scratch / Path(in_memory.dirs.root).name / "pfs") in mounts_under(scratch)
        # too large for it: a sandbox with its inputs on disk takes over ...
        on_disk, size, ro = run(worker, large)
        assert on_disk != "tmpfs" and (size, ro) == ("100000", "ro")
        assert worker.sandbox is not in_memory and worker.sandbox is not None
        assert worker.sandbox.dirs.input_memory is None
        kept = worker.sandbox
        # ... and stays for the smaller datums after it (a job's largest come first) ...
        assert run(worker, small) == [on_disk, "1000", "ro"]
        assert worker.sandbox is kept
        # ... but not for the next job's
        assert run(worker, small, "job2") == ["tmpfs", "1000", "ro"]
        assert worker.sandbox is not kept
        assert run(worker, small, "job3") == ["tmpfs", "1000", "ro"]
    assert mounts_under(scratch) == []
    assert list(scratch.iterdir()) == []


# -- jobs ------------------------------------------------------------------------------------------


def test_jobs_record_image_digest_and_runtime(tmp_path: Path, tiny: str) -> None:
    from conftest import Pps, atom

    pps = Pps(tmp_path / "home", runtime="bwrap")
    try:
        pps.repo("fruit")
        pps.put("fruit", {"/lines": "apple\nbanana\n"})
        created = pps.create(
            "count",
            atom("fruit", name="fruit"),
            ["sh", "-c", "wc -l < /pfs/fruit/lines > /pfs/out/n"],
            transform={"image": tiny},
        )
        assert created.warnings == []
        (job,) = pps.wait_jobs("count", 1)
        assert job.state == "success", job.reason
        assert pps.read("count", "master", "/n") == b"2\n"
        assert (job.image, job.runtime) == (tiny, "bwrap")
        assert job.image_digest.startswith("sha256:")
        text = job_details(pps.engine.jobs.inspect(job.id, "count"))
        assert f"Image: {tiny}\n" in text
        assert f"Image digest: {job.image_digest}\n" in text
        assert "Runtime: bwrap\n" in text

        # an image that is not there: create-pipeline warns, the job fails saying so
        missing = pps.create(
            "gone", atom("fruit", name="fruit"), ["true"], transform={"image": "no/such:1"}
        )
        assert missing.warnings[0].startswith("image no/such:1 not found")
        (failed,) = pps.wait_jobs("gone", 1)
        assert (failed.state, failed.reason) == ("failure", "image no/such:1 not found")
    finally:
        pps.close()


def test_a_jobs_image_digest_follows_a_rebuilt_or_retagged_image(
    tiny: str, python_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The digest is asked of podman only when its image store changed since the last answer."""
    from tusk.worker.runtimes import ImageNotFound, images

    podman = images.podman_executable()
    assert podman is not None
    name = f"localhost/tusk-test/retag-{os.getpid()}:1"

    def tag(image: str) -> None:
        subprocess.run([podman, "tag", image, name], check=True, capture_output=True)

    asked: list[tuple[str, ...]] = []
    real = images._podman

    def counting(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        asked.append(args)
        return real(*args, timeout=timeout)

    monkeypatch.setattr(images, "_podman", counting)
    tiny_digest = images.inspect_image(tiny, cached=False).digest
    python_digest = images.inspect_image(python_image, cached=False).digest
    assert tiny_digest != python_digest
    try:
        tag(tiny)
        assert images.image_digest(name) == tiny_digest
        asked.clear()
        assert images.image_digest(name) == tiny_digest
        assert asked == []  # nothing changed: no podman run
        tag(python_image)  # the same name now on another image (a rebuild does the same)
        assert images.image_digest(name) == python_digest
    finally:
        subprocess.run([podman, "rmi", name], capture_output=True)
    with pytest.raises(ImageNotFound):
        images.image_digest(name)


def test_host_mode_is_recorded_in_every_job(tmp_path: Path) -> None:
    from conftest import Pps, atom

    pps = Pps(tmp_path / "home", runtime="host")
    try:
        pps.repo("x")
        pps.put("x", {"/a": "a"})
        pps.create("p", atom("x", name="in"), ["sh", "-c", "cp /pfs/in/a /pfs/out/a"])
        (job,) = pps.wait_jobs("p", 1)
        assert job.state == "success", job.reason
        assert (job.runtime, job.image, job.image_digest) == ("host", "ubuntu:16.04", "")
        text = job_details(pps.engine.jobs.inspect(job.id, "p"))
        assert "Runtime: host (unsandboxed: the image was not used)\n" in text
    finally:
        pps.close()


def test_create_pipeline_refuses_without_a_runtime(tmp_path: Path) -> None:
    from conftest import Pps, atom

    # here only Docker's client exists: no engine answers
    pps = Pps(tmp_path / "home", runtime="docker")
    try:
        pps.repo("x")
        with pytest.raises(InvalidArgument) as refused:
            pps.create("p", atom("x", name="in"), ["true"])
        assert "runtime docker cannot be used: no Docker engine answers" in refused.value.message
        assert "TUSK_RUNTIME=host" in refused.value.message
        assert refused.value.hint and "TUSK_RUNTIME=host" in refused.value.hint
        assert pps.engine.pipelines.list() == []
    finally:
        pps.close()


# -- resource limits -------------------------------------------------------------------------------

MiB = 2**20


def limited_worker(scratch: Path, **settings: object) -> Worker:
    base = WorkerSettings.from_environ({"PATH": "/usr/bin:/bin"}, scratch_root=str(scratch))
    return Worker("pipeline-limits-v1-abcde", settings=replace(base, **settings))  # type: ignore[arg-type]


def python_task(
    store: ObjectStore, runtime: str, image: str, code: str, **fields: object
) -> DatumTask:
    t = task(store, runtime, image, "", **fields)
    return DatumTask.from_json({**t.to_json(), "cmd": ["python3", "-c", code]})


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_memory_hog_is_killed_and_reported_and_the_sandbox_lives_on(
    worker: Worker, store: LocalObjectStore, python_image: str, runtime: str
) -> None:
    hog = "chunks = []\nwhile True:\n    chunks.append(b'x' * 2**20)"
    cwd = set(os.listdir("."))
    result = worker.run(python_task(store, runtime, python_image, hog, memory=str(64 * MiB)))
    assert set(os.listdir(".")) == cwd  # conmon left no "oom" file in the worker's directory
    assert not result.ok
    assert result.reason == "killed: out of memory (limit 64Mi)", result.reason
    sandbox = worker.sandbox
    assert sandbox is not None and sandbox.alive()
    # the next datum runs in the same sandbox; a datum under the limit is not reported
    small = "b = b'x' * (16 * 2**20); print(len(b) // 2**20)"
    again = worker.run(python_task(store, runtime, python_image, small, memory=str(64 * MiB)))
    assert again.ok, again.reason
    assert stdout(again) == ["16"]
    assert worker.sandbox is sandbox


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_datum_past_the_disk_limit_fails_and_leaves_nothing_on_the_host(
    worker: Worker, store: LocalObjectStore, tiny: str, runtime: str, scratch: Path
) -> None:
    script = "dd if=/dev/zero of=/pfs/out/big bs=1M count=200 2>&1; echo wrote"
    result = worker.run(task(store, runtime, tiny, script, disk=50 * MiB))
    assert not result.ok
    assert result.reason == "disk limit of 50Mi exceeded", result.reason
    assert result.outputs == ()
    sandbox = worker.sandbox
    assert sandbox is not None and sandbox.dirs.disk_hard
    # the host holds no such file, and the sandbox's filesystem gave its blocks back
    assert [p for p in scratch.rglob("big")] == []
    image = Path(sandbox.dirs.root, "disk.img")
    assert image.stat().st_blocks * 512 < 8 * MiB
    # /tmp counts too, and the next datum has the whole limit again
    tmp = "dd if=/dev/zero of=/tmp/big bs=1M count=80 2>/dev/null; echo done"
    assert worker.run(task(store, runtime, tiny, tmp, disk=50 * MiB)).reason == (
        "disk limit of 50Mi exceeded"
    )
    fits = "dd if=/dev/zero of=/pfs/out/f bs=1M count=30 2>/dev/null && echo fits"
    ok = worker.run(task(store, runtime, tiny, fits, disk=50 * MiB))
    assert ok.ok, ok.reason
    assert [(o.path, o.size) for o in ok.outputs] == [("/f", 30 * MiB)]
    worker.close()
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_dev_shm_counts_towards_the_disk_limit_and_is_emptied_after_each_datum(
    worker: Worker, store: LocalObjectStore, tiny: str, runtime: str
) -> None:
    fill = "dd if=/dev/zero of=/dev/shm/big bs=1M count=80 2>/dev/null; echo done"
    full = worker.run(task(store, runtime, tiny, fill, disk=50 * MiB))
    assert full.reason == "disk limit of 50Mi exceeded", full.reason
    script = "ls -A /dev/shm; echo x > /dev/shm/small && echo shm-ok; echo x > /dev/evil || true"
    first = worker.run(task(store, runtime, tiny, script, disk=50 * MiB))
    assert first.ok, first.reason
    assert stdout(first) == ["shm-ok"]  # empty: the last datum's file went with it
    if runtime == "bwrap":  # /dev itself takes no files (podman's /dev is its own small tmpfs)
        assert any("Read-only file system" in line for _, _, line in first.logs)
    second = worker.run(task(store, runtime, tiny, "ls -A /dev/shm; echo end", disk=50 * MiB))
    assert stdout(second) == ["end"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_without_a_filesystem_of_its_own_the_disk_limit_still_holds(
    worker: Worker, store: LocalObjectStore, tiny: str, runtime: str, scratch: Path
) -> None:
    # 32Ki is too small for an ext4: the sandbox falls back to RLIMIT_FSIZE and the watchdog
    limit = 32 * 1024
    one_big = "dd if=/dev/zero of=/pfs/out/big bs=1M count=1; echo after"
    result = worker.run(task(store, runtime, tiny, one_big, disk=limit))
    assert result.reason == "disk limit of 32Ki exceeded", result.reason  # RLIMIT_FSIZE
    sandbox = worker.sandbox
    assert sandbox is not None and not sandbox.dirs.disk_hard
    system = [line for _, s, line in result.logs if s == "system"]
    assert any("no size-limited filesystem for /pfs/out and /tmp" in line for line in system)
    many_small = (
        "i=0; while [ $i -lt 100 ]; do head -c 8192 /dev/zero > /tmp/f$i; i=$((i+1)); done; "
        "sleep 20; echo survived"
    )
    started = time.monotonic()
    result = worker.run(task(store, runtime, tiny, many_small, disk=limit))
    assert result.reason == "disk limit of 32Ki exceeded", result.reason  # the watchdog
    assert time.monotonic() - started < 15
    assert "survived" not in stdout(result)
    again = worker.run(task(store, runtime, tiny, "ls -A /tmp; echo fresh", disk=limit))
    assert again.ok, again.reason
    assert stdout(again) == ["fresh"]
    assert [p for p in scratch.rglob("f99")] == []


def test_the_disk_watchdog_stops_a_runaway_writer(tmp_path: Path) -> None:
    # the fallback where no size-limited filesystem can be made: a real writer, a real kill
    from tusk.worker.runtimes.disk import Watchdog, usage

    target = tmp_path / "out"
    target.mkdir()
    writer = subprocess.Popen(
        ["sh", "-c", f"while :; do head -c 1048576 /dev/zero >> {target}/f; done"]
    )
    started = time.monotonic()
    with Watchdog((str(target),), 20 * MiB, writer.kill, 0.05) as watchdog:
        writer.wait(timeout=60)
    assert watchdog.fired
    assert time.monotonic() - started < 30
    assert 20 * MiB < usage(str(target)) < 400 * MiB


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_fork_bomb_stops_at_the_sandboxs_process_limit(
    store: LocalObjectStore, tiny: str, runtime: str, scratch: Path
) -> None:
    bomb = "n=0; while [ $n -lt 200 ]; do sleep 30.3131 & n=$((n+1)); done; echo started"
    with limited_worker(scratch, pids_limit=32) as worker:
        result = worker.run(task(store, runtime, tiny, bomb))
    assert not result.ok
    assert result.reason == "exit code 2: sh: 0: Cannot fork", result.reason  # dash gives up
    assert host_processes("30.3131") == []


def test_the_process_limit_is_per_sandbox_not_per_host_uid(
    store: LocalObjectStore, tiny: str, scratch: Path
) -> None:
    # both sandboxes run as the same host uid: RLIMIT_NPROC would be shared, the pids cgroup is not
    hold = "n=0; while [ $n -lt 20 ]; do sleep 9.8181 & n=$((n+1)); done; sleep 4; echo held"
    results: dict[int, DatumResult] = {}

    def run(i: int) -> None:
        with limited_worker(scratch, pids_limit=32) as worker:
            results[i] = worker.run(task(store, "bwrap", tiny, hold, task_id=f"job1-{i}-1"))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results.values():
        assert result.ok, result.reason
        assert stdout(result) == ["held"]
        assert [line for _, s, line in result.logs if s == "stderr"] == []


def test_the_bwrap_agent_is_in_the_sandboxs_cgroup_before_user_code_runs(
    tiny: str, scratch: Path
) -> None:
    from tusk.worker.runtimes import cgroups

    spec = SandboxSpec("bwrap", tiny, memory=str(96 * MiB), cpu=0.5, pids=50)
    first = start_sandbox(spec, str(scratch))
    assert first.cgroup is not None, "no cgroup for the sandbox on a host where root can make one"
    # a cgroup left by a killed worker (its pid is gone) goes when the next sandbox starts
    stale = [d.parent / f"{cgroups.PREFIX}999999999-dead" for d in first.cgroup.dirs.values()]
    for directory in stale:
        directory.mkdir()
    first.close()
    sandbox = start_sandbox(spec, str(scratch))
    try:
        assert not any(d.exists() for d in stale)
        cgroup = sandbox.cgroup
        assert cgroup is not None
        members = set(cgroup.pids())
        assert sandbox.proc.pid in members
        assert len(members) == 2  # bwrap and the agent, and nothing else yet
        memory = cgroup.dirs["memory" if cgroup.version == 1 else "unified"]
        limit_file = "memory.limit_in_bytes" if cgroup.version == 1 else "memory.max"
        assert (memory / limit_file).read_text().strip() == str(96 * MiB)
        if cgroup.version == 1:
            assert (cgroup.dirs["pids"] / "pids.max").read_text().strip() == "50"
            assert (cgroup.dirs["cpu"] / "cpu.cfs_quota_us").read_text().strip() == "50000"
        logs: list[tuple[float, str, str]] = []
        done = sandbox.run(["cat", "/proc/self/cgroup"], {}, "/", None, 30, logs)
        assert done.returncode == 0
    finally:
        sandbox.close()
    assert all(not d.exists() for d in cgroup.dirs.values())


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_cpu_limit_of_half_a_core_holds(
    worker: Worker, store: LocalObjectStore, python_image: str, runtime: str
) -> None:
    # a second of cpu; it prints its wall time and its cpu per second of wall time
    code = (
        "import time\n"
        "wall, cpu = time.monotonic(), time.process_time()\n"
        "while time.process_time() - cpu < 1.0:\n"
        "    pass\n"
        "wall = time.monotonic() - wall\n"
        "print(round(wall, 3), round((time.process_time() - cpu) / wall, 3))"
    )
    free = worker.run(python_task(store, runtime, python_image, code))
    limited = worker.run(python_task(store, runtime, python_image, code, cpu=0.5))
    assert free.ok and limited.ok, (free.reason, limited.reason)
    free_wall, free_ratio = (float(n) for n in stdout(free)[0].split())
    wall, ratio = (float(n) for n in stdout(limited)[0].split())
    # half a core: at most about 0.5 s of cpu per second of wall time, however busy the host
    assert ratio <= 0.62, (ratio, free_ratio)
    if free_ratio >= 0.9:  # the host had a core to spare: the limit doubles the wall time
        assert wall >= 1.5 * free_wall, (wall, free_wall)
        sandbox = worker.sandbox
        assert sandbox is not None
        if sandbox.cgroup is not None:
            assert sandbox.cgroup.throttled() > 0


# -- GPUs (this host has none: the device list is tested on a directory of stand-in nodes) ---------


def fake_dev(root: Path, *names: str) -> Path:
    """A directory of device nodes named like NVIDIA's (each a copy of /dev/null's node)."""
    dev = root / "dev"
    dev.mkdir()
    null = os.stat("/dev/null").st_rdev
    for name in names:
        os.mknod(dev / name, 0o666 | stat.S_IFCHR, null)
        os.chmod(dev / name, 0o666)
    return dev


def test_gpus_are_found_and_assigned_from_the_device_nodes(tmp_path: Path) -> None:
    from tusk.worker.runtimes import gpus

    dev = fake_dev(tmp_path, "nvidia1", "nvidia0", "nvidia10", "nvidiactl", "nvidia-uvm", "null")
    assert gpus.detect(str(dev)) == ("0", "1", "10")
    assert gpus.detect(str(tmp_path / "none")) == ()
    two = gpus.assign(2, str(dev))
    assert two.ids == ("0", "1")
    assert two.devices == tuple(
        str(dev / n) for n in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm")
    )
    assert two.env() == {"NVIDIA_VISIBLE_DEVICES": "0,1", "CUDA_VISIBLE_DEVICES": "0,1"}
    assert gpus.bwrap_device_args(two.devices[:1]) == [
        "--dev-bind",
        str(dev / "nvidia0"),
        "/dev/nvidia0",
    ]
    assert gpus.podman_device_args(two.devices[:1]) == ["--device", f"{dev}/nvidia0:/dev/nvidia0"]
    assert gpus.assign(0, str(dev)) == gpus.Gpus()
    with pytest.raises(gpus.GpuUnavailable, match="asks for 4 GPU\\(s\\) and this server has 3"):
        gpus.assign(4, str(dev))
    with pytest.raises(gpus.GpuUnavailable, match="NVIDIA GPUs only"):
        gpus.check("amd.com/gpu", 1, str(dev))
    assert gpus.requested({"type": "nvidia.com/gpu", "number": 2}) == ("nvidia.com/gpu", 2)
    assert gpus.requested(1) == ("", 1)


def test_a_sandbox_gets_the_gpu_nodes_and_variables_it_asks_for(
    store: LocalObjectStore, tiny: str, scratch: Path
) -> None:
    dev = fake_dev(scratch, "nvidia0", "nvidia1", "nvidiactl")
    script = "ls /dev | grep nvidia; echo cuda=$CUDA_VISIBLE_DEVICES nvidia=$NVIDIA_VISIBLE_DEVICES"
    (scratch / "w").mkdir(mode=0o711)
    with limited_worker(scratch / "w", gpu_devices=str(dev)) as worker:
        result = worker.run(task(store, "bwrap", tiny, script, gpus=1))
        assert result.ok, result.reason
        assert stdout(result) == ["nvidia0", "nvidiactl", "cuda=0 nvidia=0"]
        too_many = worker.run(task(store, "bwrap", tiny, "true", gpus=3))
    assert not too_many.ok
    assert "asks for 3 GPU(s) and this server has 2" in too_many.reason


def test_create_pipeline_refuses_more_gpus_than_the_server_has(tmp_path: Path) -> None:
    from conftest import Pps, atom

    pps = Pps(tmp_path / "home", runtime="host")
    try:
        pps.repo("x")
        for field, gpu in (
            ("resource_limits", {"type": "nvidia.com/gpu", "number": 1}),
            ("resource_requests", 2),
        ):
            with pytest.raises(InvalidArgument) as refused:
                pps.create("p", atom("x", name="in"), ["true"], **{field: {"gpu": gpu}})
            assert "this server has 0" in refused.value.message, refused.value.message
            assert "would wait forever" in refused.value.message
        assert pps.engine.pipelines.list() == []
    finally:
        pps.close()


def test_limit_settings_parse_or_say_what_is_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = WorkerSettings.from_environ(
        {"TUSK_SANDBOX_MEMORY": "512Mi", "TUSK_SANDBOX_DISK": "1.5Gi", "TUSK_SANDBOX_PIDS": "0"}
    )
    assert (settings.memory_limit, settings.disk_limit, settings.pids_limit) == (
        512 * MiB,
        1536 * MiB,
        None,
    )
    unset = WorkerSettings.from_environ({})
    assert unset.disk_limit == 10 * 2**30
    assert unset.memory_limit is not None and unset.memory_limit > 0  # half of the host's
    assert WorkerSettings.from_environ({"TUSK_SANDBOX_MEMORY": "0"}).memory_limit is None
    assert unset.input_memory == 64 * MiB
    assert WorkerSettings.from_environ({"TUSK_SANDBOX_INPUT_MEMORY": "1Mi"}).input_memory == MiB
    assert WorkerSettings.from_environ({"TUSK_SANDBOX_INPUT_MEMORY": "0"}).input_memory is None
    for variable, value in (
        ("TUSK_SANDBOX_INPUT_MEMORY", "plenty"),
        ("TUSK_SANDBOX_DISK", "lots"),
        ("TUSK_SANDBOX_MEMORY", "-1Gi"),
        ("TUSK_SANDBOX_PIDS", "many"),
    ):
        with pytest.raises(ValueError, match=f"{variable}='{value}' is not a"):
            WorkerSettings.from_environ({variable: value})
    # the server refuses to start with them, before any worker does
    from tusk.runtime import Settings

    monkeypatch.setenv("TUSK_SANDBOX_DISK", "lots")
    with pytest.raises(InvalidArgument, match="TUSK_SANDBOX_DISK='lots' is not a size"):
        Settings.from_env("/nonexistent-home")


def _cpu_list(cpus: set[int]) -> str:
    """CPUs as /proc/<pid>/status writes them (``0-3,6``)."""
    ranges: list[list[int]] = []
    for cpu in sorted(cpus):
        if ranges and ranges[-1][1] == cpu - 1:
            ranges[-1][1] = cpu
        else:
            ranges.append([cpu, cpu])
    return ",".join(f"{a}-{b}" if a != b else str(a) for a, b in ranges)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_pinned_worker_and_its_agent_share_one_cpu_and_commands_get_them_all(
    runtime: str, tiny: str, store: LocalObjectStore, scratch: Path
) -> None:
    """``--cpu``: the worker and the agent (the sandbox's pid 1) run on that CPU only; a
    command, once started, and what it starts run on every CPU the worker had."""
    allowed = os.sched_getaffinity(0)
    assert len(allowed) >= 2, "pinning needs a machine of two CPUs or more"
    pin = max(allowed)
    script = "sleep 0.3; grep Cpus_allowed_list /proc/self/status /proc/1/status"
    env = {"PATH": os.environ["PATH"], "TUSK_WORKER_SCRATCH": str(scratch)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tusk.worker", "--name", "pipeline-p-v1-abcde", "--cpu", str(pin)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(encode_task(task(store, runtime, tiny, script)))
        proc.stdin.flush()
        result = DatumResult.from_json(json.loads(proc.stdout.readline()))
        worker_cpus = os.sched_getaffinity(proc.pid)
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
        proc.stdout.close()
    assert result.ok, result.reason
    assert worker_cpus == {pin}
    assert stdout(result) == [
        f"/proc/self/status:Cpus_allowed_list:\t{_cpu_list(allowed)}",
        f"/proc/1/status:Cpus_allowed_list:\t{pin}",
    ]
