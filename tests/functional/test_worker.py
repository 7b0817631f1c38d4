"""The datum worker, in-process and as ``python -m tusk.worker``, running real commands."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tusk.storage import Ingestor, ObjectStore, file_hash, read_chunks
from tusk.storage.local import LocalObjectStore
from tusk.worker import (
    DatumInput,
    DatumResult,
    DatumTask,
    InputFile,
    OutputFile,
    Worker,
    WorkerSettings,
    run_datum,
)
from tusk.worker import datum as worker_datum
from tusk.worker import files as worker_files
from tusk.worker.process import MAX_LINE_BYTES
from tusk.worker.protocol import TaskEncoder

SANDBOXES = ["host"]  # runtimes with images: test_sandbox.py


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "store", durable=False)


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    path = tmp_path / "scratch"
    path.mkdir()
    return path


@pytest.fixture
def worker(scratch: Path) -> Iterator[Worker]:
    with Worker(
        "pipeline-test-v1-abcde", settings=WorkerSettings.from_environ(scratch_root=str(scratch))
    ) as w:
        yield w


def put(store: ObjectStore, path: str, data: bytes) -> InputFile:
    with Ingestor(store) as ingestor:
        writer = ingestor.open_file()
        writer.write(data)
        writer.close()
    return InputFile(path, tuple(writer.chunks), writer.size)


def task(store: ObjectStore, cmd: list[str], **fields: Any) -> DatumTask:
    fields.setdefault("runtime", "host")
    return DatumTask(
        task_id=fields.pop("task_id", "job1-0-1"),
        job_id="job1",
        datum_id=fields.pop("datum_id", "datum0"),
        output_commit_id="outcommit1",
        pipeline="edges",
        store_url=store.url,
        cmd=tuple(cmd),
        **fields,
    )


def py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def user_lines(result: DatumResult, stream: str = "stdout") -> list[str]:
    return [line for _, s, line in result.logs if s == stream]


def output_bytes(store: ObjectStore, output: OutputFile) -> bytes:
    return b"".join(read_chunks(store, output.chunks))


def stored_bytes(store: ObjectStore, input_file: InputFile) -> bytes:
    return b"".join(read_chunks(store, input_file.chunks))


def alive(pid: int) -> bool:
    """Running (a killed orphan may linger as a zombie until init reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def sandbox_task_fields(runtime: str) -> dict[str, Any]:
    return {"runtime": runtime}


def running_with(marker: str) -> list[int]:
    """Host pids of live processes whose command line holds ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline and alive(int(entry.name)):
                found.append(int(entry.name))
    return found


# --- environment and mounting -------------------------------------------------------------------


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_env_names_inputs_commits_and_job(
    store: LocalObjectStore, scratch: Path, sandbox: str
) -> None:
    environ = {"PATH": os.environ["PATH"], "HOME": "/root", "SECRET_TOKEN": "x"}
    worker = Worker("w", settings=WorkerSettings.from_environ(environ, scratch_root=str(scratch)))
    data = put(store, "/bar/bar-1", b"1")
    code = "import json, os; print(json.dumps(dict(os.environ)))"
    with worker:
        result = worker.run(
            task(
                store,
                py(code),
                env={"GREETING": "hi", "WHERE": "/pfs/out/x"},
                inputs=(
                    DatumInput("data", "c0ffee", "/bar", (data,)),
                    DatumInput("whole", "beef", "/", (put(store, "/w", b"w"),)),
                ),
                **sandbox_task_fields(sandbox),
            )
        )
    assert result.ok, result.reason
    env = json.loads(user_lines(result)[0])
    pfs = "/pfs"  # host mode: bubblewrap binds /pfs
    assert env["PFS"] == "/pfs"
    assert env["data"] == f"{pfs}/data/bar"
    assert env["whole"] == f"{pfs}/whole"
    assert env["data_COMMIT"] == "c0ffee"
    assert env["whole_COMMIT"] == "beef"
    assert env["PACH_JOB_ID"] == "job1"
    assert env["PACH_OUTPUT_COMMIT_ID"] == "outcommit1"
    assert env["PACH_DATUM_ID"] == "datum0"
    assert env["GREETING"] == "hi"
    assert env["WHERE"] == f"{pfs}/out/x"
    assert env["HOME"] == "/root"
    assert "SECRET_TOKEN" not in env
    systems = user_lines(result, "system")
    assert any(f"runtime: {sandbox}" in line for line in systems), systems


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_inputs_keep_full_repo_paths(worker: Worker, store: LocalObjectStore, sandbox: str) -> None:
    files = (put(store, "/bar/bar-1", b"one"), put(store, "/bar/sub/bar-2", b"two"))
    other = put(store, "/x.json", b"{}")
    script = (
        "import os\n"
        "for top in ('/pfs/data', '/pfs/other'):\n"
        "    for d, dirs, names in sorted(os.walk(top)):\n"
        "        rel = d.replace(top, top.rsplit('/', 1)[1])\n"
        "        print(rel, sorted(dirs), sorted(names))\n"
        "print(open('/pfs/data/bar/sub/bar-2').read(), os.listdir('/pfs/out'))\n"
    )
    result = worker.run(
        task(
            store,
            py(script),
            inputs=(
                DatumInput("data", "c1", "/bar", files, dirs=("/bar/empty",)),
                DatumInput("other", "c2", "/x.json", (other,)),
            ),
            **sandbox_task_fields(sandbox),
        )
    )
    assert result.ok, result.reason
    assert user_lines(result) == [
        "data ['bar'] []",
        "data/bar ['empty', 'sub'] ['bar-1']",
        "data/bar/empty [] []",
        "data/bar/sub [] ['bar-2']",
        "other [] ['x.json']",
        "two []",
    ]
    assert result.bytes_down == 3 + 3 + 2


def test_stdin_lines_are_fed_as_they_are(worker: Worker, store: LocalObjectStore) -> None:
    stdin = ("first line", "python3 /code/x.py -in=/pfs/data -out /pfs/out", "last")
    result = worker.run(task(store, ["cat"], stdin=stdin))
    assert result.ok, result.reason
    assert user_lines(result) == list(stdin)


def test_stdin_ignored_by_the_command_is_fine(worker: Worker, store: LocalObjectStore) -> None:
    result = worker.run(task(store, ["true"], stdin=tuple("x" * 1000 for _ in range(1000))))
    assert result.ok, result.reason


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_working_dir(worker: Worker, store: LocalObjectStore, sandbox: str) -> None:
    data = put(store, "/a", b"a")
    result = worker.run(
        task(
            store,
            ["ls"],
            working_dir="/pfs/data",
            inputs=(DatumInput("data", "c", "/", (data,)),),
            **sandbox_task_fields(sandbox),
        )
    )
    assert result.ok, result.reason
    assert user_lines(result) == ["a"]
    missing = worker.run(task(store, ["ls"], working_dir="/nonexistent/dir"))
    assert not missing.ok
    assert missing.reason == "working directory /nonexistent/dir does not exist"


# --- exit codes, failures, timeouts -------------------------------------------------------------


def test_exit_codes_and_accept_return_code(worker: Worker, store: LocalObjectStore) -> None:
    failing = py(
        "import sys; print('to stderr', file=sys.stderr); print('last words', file=sys.stderr); sys.exit(3)"
    )
    result = worker.run(task(store, failing))
    assert not result.ok
    assert result.exit_code == 3
    assert result.reason == "exit code 3: last words"
    assert result.outputs == ()

    accepted = worker.run(task(store, failing, accept_return_code=(1, 3)))
    assert accepted.ok and accepted.reason == ""
    assert accepted.exit_code == 3

    silent = worker.run(task(store, ["false"]))
    assert (silent.ok, silent.exit_code, silent.reason) == (False, 1, "exit code 1")


def test_command_not_found_is_a_failed_datum(worker: Worker, store: LocalObjectStore) -> None:
    for cmd in (["no-such-command-xyz", "arg"], ["/no/such/program"]):
        result = worker.run(task(store, cmd))
        assert not result.ok
        assert result.reason == f"command not found: {cmd[0]}"
        assert result.exit_code is None
    empty = worker.run(task(store, []))
    assert not empty.ok
    assert empty.reason == "the transform has no cmd (and the image no entrypoint)"


def test_timeout_kills_the_whole_process_group(
    worker: Worker, store: LocalObjectStore, tmp_path: Path
) -> None:
    script = "sleep 60.0101 & echo started; wait"
    started = time.monotonic()
    result = worker.run(task(store, ["sh", "-c", script], timeout_seconds=0.5))
    elapsed = time.monotonic() - started
    assert not result.ok
    assert result.reason == "datum timed out after 0.5s"
    assert result.exit_code is None
    assert user_lines(result) == ["started"]
    assert elapsed < 5
    assert running_with("60.0101") == []


def test_background_children_are_killed_after_the_command_exits(
    worker: Worker, store: LocalObjectStore, tmp_path: Path
) -> None:
    script = "sleep 60.0202 >/dev/null 2>&1 & setsid sleep 60.0202 & true"
    result = worker.run(task(store, ["sh", "-c", script], timeout_seconds=30))
    assert result.ok, result.reason
    assert running_with("60.0202") == []


def test_an_image_that_is_not_there_fails_the_datum(
    worker: Worker, store: LocalObjectStore
) -> None:
    result = worker.run(task(store, ["true"], runtime="bwrap", image="localhost/no/such:image"))
    assert not result.ok
    assert result.reason == "image localhost/no/such:image not found"


# --- outputs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_outputs_manifest_round_trips(
    worker: Worker, store: LocalObjectStore, sandbox: str
) -> None:
    big = os.urandom(3 << 20)  # several content-defined chunks
    data = put(store, "/big.bin", big)
    script = (
        "import os, shutil\n"
        "os.makedirs('/pfs/out/a/b/c')\n"
        "os.makedirs('/pfs/out/empty/inner')\n"
        "os.mkdir('/pfs/out/a/also-empty')\n"
        "open('/pfs/out/top.txt', 'w').write('top\\n')\n"
        "open('/pfs/out/a/b/c/deep.txt', 'w').write('deep')\n"
        "open('/pfs/out/zero', 'w').close()\n"
        "shutil.copy(os.environ['data'] + '/big.bin', '/pfs/out/a/big.copy')\n"
    )
    result = worker.run(
        task(
            store,
            py(script),
            inputs=(DatumInput("data", "c", "/", (data,)),),
            **sandbox_task_fields(sandbox),
        )
    )
    assert result.ok, result.reason
    assert [o.path for o in result.outputs] == [
        "/a/b/c/deep.txt",
        "/a/big.copy",
        "/top.txt",
        "/zero",
    ]
    contents = {o.path: output_bytes(store, o) for o in result.outputs}
    assert contents == {
        "/a/b/c/deep.txt": b"deep",
        "/a/big.copy": big,
        "/top.txt": b"top\n",
        "/zero": b"",
    }
    assert {o.path: o.size for o in result.outputs}["/a/big.copy"] == len(big)
    copy = next(o for o in result.outputs if o.path == "/a/big.copy")
    assert copy.hash == file_hash(data.chunks)  # same bytes, same content-defined chunks
    assert result.dirs == ("/a/also-empty", "/empty/inner")
    assert result.bytes_up == len(big) + 4 + 4
    # The manifest survives the wire.
    assert DatumResult.from_json(json.loads(json.dumps(result.to_json()))) == result


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_symlinks_inside_pfs_are_followed(
    worker: Worker, store: LocalObjectStore, sandbox: str
) -> None:
    data = put(store, "/dir/in.txt", b"input bytes")
    script = (
        "mkdir -p /pfs/out/real && echo made > /pfs/out/real/f && "
        "ln -s /pfs/data/dir/in.txt /pfs/out/to-input && "
        "ln -s real/f /pfs/out/to-output && "
        "ln -s /pfs/data/dir /pfs/out/to-dir"
    )
    result = worker.run(
        task(
            store,
            ["sh", "-c", script],
            inputs=(DatumInput("data", "c", "/", (data,)),),
            **sandbox_task_fields(sandbox),
        )
    )
    assert result.ok, result.reason
    got = {o.path: output_bytes(store, o) for o in result.outputs}
    assert got == {
        "/real/f": b"made\n",
        "/to-dir/in.txt": b"input bytes",
        "/to-input": b"input bytes",
        "/to-output": b"made\n",
    }
    by_path = {o.path: o for o in result.outputs}
    assert by_path["/to-input"].chunks == data.chunks  # by reference, not uploaded again


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_symlink_leaving_pfs_fails_the_datum(
    worker: Worker, store: LocalObjectStore, sandbox: str
) -> None:
    fields = sandbox_task_fields(sandbox)
    escaping = worker.run(task(store, ["ln", "-s", "/etc/passwd", "/pfs/out/leak"], **fields))
    assert not escaping.ok
    assert escaping.reason == "output /leak is a symlink to /etc/passwd, outside /pfs/out"
    dotdot = worker.run(task(store, ["ln", "-s", "../../../etc", "/pfs/out/up"], **fields))
    assert not dotdot.ok
    assert dotdot.reason == "output /up is a symlink to ../../../etc, outside /pfs/out"
    dangling = worker.run(task(store, ["ln", "-s", "/pfs/out/nothing", "/pfs/out/d"], **fields))
    assert not dangling.ok
    assert dangling.reason.startswith("output /d is a symlink to ")
    assert "does not exist" in dangling.reason
    loop = worker.run(task(store, ["sh", "-c", "mkdir /pfs/out/a && ln -s .. /pfs/out/a/up"]))
    assert not loop.ok
    assert loop.reason.endswith(", which makes a loop")


def test_named_pipe_output_fails_the_datum(worker: Worker, store: LocalObjectStore) -> None:
    result = worker.run(task(store, ["mkfifo", "/pfs/out/pipe"]))
    assert not result.ok
    assert result.reason.startswith("output /pipe is a named pipe")


def test_an_output_name_that_is_not_utf8_fails_the_datum(
    store: LocalObjectStore, scratch: Path
) -> None:
    # through a worker process: the result still goes back as a line, and the worker goes on
    make = "import os; os.makedirs(b'/pfs/out/d'); open(b'/pfs/out/d/caf\\xe9', 'w').close()"
    lines = task(store, py(make), task_id="bad-0-1").to_json(), task(store, ["true"]).to_json()
    results = worker_process_results(b"".join(json.dumps(t).encode() + b"\n" for t in lines))
    assert [(r.task_id, r.ok) for r in results] == [("bad-0-1", False), ("job1-0-1", True)]
    assert results[0].reason == (
        "output /d/caf\\xe9 has a name that is not valid UTF-8; file names in a repo are text"
    )


def test_output_over_the_limit_fails(worker: Worker, store: LocalObjectStore) -> None:
    script = "open('/pfs/out/f', 'wb').write(b'x' * 5000)"
    result = worker.run(task(store, py(script), max_output_bytes=4096))
    assert not result.ok
    assert result.reason == "output is larger than max_output_bytes (4096 bytes)"
    fits = worker.run(task(store, py(script), max_output_bytes=5000))
    assert fits.ok, fits.reason


# --- inputs cannot be changed -------------------------------------------------------------------


def test_overwriting_an_input_copy_leaves_stored_data_unchanged(
    worker: Worker, store: LocalObjectStore
) -> None:
    data = put(store, "/a.txt", b"original")
    objects_before = {i: store.get(i) for i in store.iter_ids()}
    # Even root cannot write through the read-only /pfs mount; the store never changes.
    script = "chmod u+w /pfs/data/a.txt; echo clobbered > /pfs/data/a.txt; cat /pfs/data/a.txt"
    result = worker.run(
        task(store, ["sh", "-c", script], inputs=(DatumInput("data", "c", "/", (data,)),))
    )
    assert user_lines(result) == ["original"]
    assert stored_bytes(store, data) == b"original"
    assert {i: store.get(i) for i in store.iter_ids()} == objects_before


def test_bwrap_mounts_inputs_read_only(worker: Worker, store: LocalObjectStore) -> None:
    data = put(store, "/a.txt", b"original")
    script = "echo clobbered > /pfs/data/a.txt || exit 7; touch /pfs/data/new || exit 8"
    result = worker.run(
        task(
            store,
            ["sh", "-c", script],
            inputs=(DatumInput("data", "c", "/", (data,)),),
            **sandbox_task_fields("host"),
        )
    )
    assert not result.ok
    assert result.exit_code == 7
    assert "Read-only file system" in result.reason
    assert stored_bytes(store, data) == b"original"
    assert not Path("/pfs").exists()  # the sandbox's /pfs is not made on the host


@pytest.mark.parametrize("overrides", [True, False], ids=["root", "without-dac-override"])
def test_input_dirs_are_read_only_while_datums_run_and_emptied_between_them(
    worker: Worker, store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch, overrides: bool
) -> None:
    """/pfs/<input> and its subdirectories are read-only while user code runs. A worker that may
    write there all the same (root) leaves /pfs/<input> read-only between datums; one that may
    not makes it writable to empty it. Either way the next datum sees only its own files."""
    monkeypatch.setattr(worker_files, "writes_in_readonly_dirs", lambda: overrides)
    monkeypatch.setattr(worker_datum, "writes_in_readonly_dirs", lambda: overrides)
    modes = 'stat -c "%n %a" "$PFS/in" "$PFS"/in/*; find "$PFS/in" -type f | sort'
    seen = []
    for i, paths in enumerate((("/a", "/sub/b"), ("/c",), ("/sub/d",))):
        files = tuple(put(store, p, b"x") for p in paths)
        t = task(
            store,
            ["sh", "-c", modes],
            task_id=f"job1-{i}-1",
            inputs=(DatumInput("in", "c", "/", files),),
        )
        result = worker.run(t)
        assert result.ok, result.reason
        seen.append([line.split("/pfs/", 1)[-1] for line in user_lines(result)])
        assert worker.sandbox is not None
        kept = os.stat(f"{worker.sandbox.dirs.pfs}/in").st_mode & 0o777
        assert kept == (0o555 if overrides else 0o755)
        assert os.listdir(f"{worker.sandbox.dirs.pfs}/in") == []
    assert seen == [
        ["in 555", "in/a 444", "in/sub 555", "in/a", "in/sub/b"],
        ["in 555", "in/c 444", "in/c"],
        ["in 555", "in/sub 555", "in/sub/d"],
    ]


# --- logs ---------------------------------------------------------------------------------------


def test_logs_keep_every_line_in_order_with_stream_names(
    worker: Worker, store: LocalObjectStore
) -> None:
    script = (
        "import sys\n"
        "for i in range(2000):\n"
        "    print(f'out {i}')\n"
        "    print(f'err {i}', file=sys.stderr)\n"
        "sys.stdout.write('x' * (3 * 65536) + '\\nno newline at end')\n"
    )
    result = worker.run(task(store, py(script)))
    assert result.ok, result.reason
    out = user_lines(result)
    assert out[:2000] == [f"out {i}" for i in range(2000)]
    assert out[2000:] == ["x" * MAX_LINE_BYTES, "no newline at end"]
    assert user_lines(result, "stderr") == [f"err {i}" for i in range(2000)]
    times = [ts for ts, _, _ in result.logs]
    assert times == sorted(times)
    streams = [s for _, s, _ in result.logs]
    first_user = next(i for i, s in enumerate(streams) if s != "system")
    assert set(streams[:first_user]) == {"system"}
    assert streams[-1] == "system"
    systems = user_lines(result, "system")
    assert systems[0] == "starting to download data"
    assert systems[-1].startswith("finished uploading output after ")


def test_failure_is_logged(worker: Worker, store: LocalObjectStore) -> None:
    result = worker.run(task(store, ["false"]))
    systems = user_lines(result, "system")
    assert systems[-2].startswith("errored running user code after ")
    assert systems[-1] == "failed to process datum with error: exit code 1"


# --- scratch ------------------------------------------------------------------------------------


def test_scratch_dirs_are_removed_after_every_task(
    worker: Worker, store: LocalObjectStore, scratch: Path
) -> None:
    data = put(store, "/d/a.txt", b"a")
    inputs = (DatumInput("data", "c", "/", (data,)),)
    cases = [
        task(store, ["sh", "-c", "mkdir -p /pfs/out/x && chmod 0 /pfs/out/x"], inputs=inputs),
        task(store, ["false"], inputs=inputs),
        task(store, ["sleep", "10"], inputs=inputs, timeout_seconds=0.2),
        task(store, ["ln", "-s", "/etc", "/pfs/out/e"], inputs=inputs),
        task(store, ["no-such-command-xyz"], inputs=inputs),
    ]
    for t in cases:
        worker.run(t)
        # the worker's sandbox dirs stay for its next datum, emptied (/pfs/<input> too: making
        # and removing a directory per datum costs milliseconds on some disks)
        (sandbox_dir,) = scratch.iterdir()
        assert sorted(p.name for p in (sandbox_dir / "pfs").iterdir()) == ["data", "out"], t.cmd
        assert list((sandbox_dir / "pfs" / "data").iterdir()) == [], t.cmd
        assert list((sandbox_dir / "pfs" / "out").iterdir()) == [], t.cmd
        assert list((sandbox_dir / "tmp").iterdir()) == [], t.cmd
    # an input the next datum does not have is gone for it
    other = (DatumInput("other", "c", "/", (data,)),)
    seen = worker.run(task(store, ["ls", "/pfs"], inputs=other))
    assert [line for _, s, line in seen.logs if s == "stdout"] == ["other", "out"]
    assert sorted(p.name for p in (sandbox_dir / "pfs").iterdir()) == ["other", "out"]
    worker.close()
    assert list(scratch.iterdir()) == []


def test_run_datum_in_process(store: LocalObjectStore) -> None:
    result = run_datum(task(store, ["sh", "-c", "echo hi > /pfs/out/f"]))
    assert result.ok, result.reason
    assert [output_bytes(store, o) for o in result.outputs] == [b"hi\n"]


def test_missing_input_object_fails_the_datum(worker: Worker, store: LocalObjectStore) -> None:
    data = put(store, "/a", b"abc")
    for object_id in list(store.iter_ids()):
        store.delete(object_id)
    result = worker.run(task(store, ["true"], inputs=(DatumInput("data", "c", "/", (data,)),)))
    assert not result.ok
    assert result.reason.startswith("cannot download input data /a: object ")


# --- the process protocol -----------------------------------------------------------------------


def test_task_round_trips_through_json(store: LocalObjectStore) -> None:
    original = task(
        store,
        ["python3", "/code/x.py"],
        stdin=("a",),
        env={"K": "V"},
        accept_return_code=(2,),
        working_dir="/pfs/data",
        timeout_seconds=1.5,
        runtime="podman",
        image="localhost/tusk/base:bookworm",
        user="fruit:fruit",
        cpu=0.5,
        memory="67108864",
        network=True,
        inputs=(DatumInput("data", "c", "/a", (put(store, "/a", b"x"),), dirs=("/a/e",)),),
        max_output_bytes=123,
    )
    assert DatumTask.from_json(json.loads(json.dumps(original.to_json()))) == original


def test_worker_process_runs_tasks_until_eof(store: LocalObjectStore, scratch: Path) -> None:
    data = put(store, "/a.txt", b"payload")
    inputs = (DatumInput("data", "c", "/", (data,)),)
    tasks = [
        task(store, ["cp", "/pfs/data/a.txt", "/pfs/out/copy"], inputs=inputs, task_id="j-0-1"),
        task(store, ["sh", "-c", "echo noisy; exit 4"], task_id="j-1-1"),
        task(store, ["echo", "third"], task_id="j-2-1"),
    ]
    env = dict(os.environ, TUSK_WORKER_SCRATCH=str(scratch))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tusk.worker", "--name", "pipeline-edges-v1-x7k2p"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None
    results = []
    for t in tasks:
        proc.stdin.write(json.dumps(t.to_json()).encode() + b"\n")
        proc.stdin.flush()
        results.append(DatumResult.from_json(json.loads(proc.stdout.readline())))
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0
    assert proc.stdout.read() == b""  # nothing but results on stdout
    proc.stdout.close()
    assert proc.stderr is not None
    proc.stderr.close()
    assert [r.task_id for r in results] == ["j-0-1", "j-1-1", "j-2-1"]
    assert [r.ok for r in results] == [True, False, True]
    assert {r.worker for r in results} == {"pipeline-edges-v1-x7k2p"}
    assert [output_bytes(store, o) for o in results[0].outputs] == [b"payload"]
    assert results[1].reason == "exit code 4"
    assert user_lines(results[1]) == ["noisy"]
    assert user_lines(results[2]) == ["third"]
    assert list(scratch.iterdir()) == []


def worker_process_results(lines: bytes) -> list[DatumResult]:
    """The results a worker process (``python -m tusk.worker``) answers to ``lines``."""
    proc = subprocess.run(
        [sys.executable, "-m", "tusk.worker", "--name", "w"],
        input=lines,
        capture_output=True,
        timeout=60,
        check=True,
    )
    return [DatumResult.from_json(json.loads(line)) for line in proc.stdout.splitlines()]


def test_worker_process_answers_a_bad_line(store: LocalObjectStore) -> None:
    good = json.dumps(task(store, ["true"], task_id="ok-0-1").to_json())
    lines = b'{"task_id": "bad-0-1", "cmd": "x"}\nnot json\n' + good.encode() + b"\n"
    results = worker_process_results(lines)
    assert [(r.task_id, r.ok) for r in results] == [
        ("bad-0-1", False),
        ("", False),
        ("ok-0-1", True),
    ]
    assert results[0].reason == "invalid task: InvalidArgument(\"task field 'cmd' must be a list\")"


def test_worker_process_takes_a_jobs_next_datums_as_follow_up_lines(
    store: LocalObjectStore,
) -> None:
    """The executor's encoder sends a job's next datums with their own fields only; the worker
    runs each with the job's command. A follow-up with no valid task before it fails."""
    tasks = [
        task(
            store,
            ["sh", "-c", 'cat "$data" > /pfs/out/"$PACH_DATUM_ID"; echo "$MODE"'],
            inputs=(DatumInput("data", "c", f"/{i}", (put(store, f"/{i}", b"n%d" % i),)),),
            task_id=f"j-{i}-1",
            datum_id=f"d{i}",
            env={"MODE": "one"},
        )
        for i in range(3)
    ]
    other = dataclasses.replace(tasks[2], task_id="k-0-1", job_id="k", env={"MODE": "two"})
    encoder = TaskEncoder()
    lines = [encoder.encode(t) for t in [*tasks, other]]
    assert [b'"follows"' in line for line in lines] == [False, True, True, False]
    orphan = lines[1].replace(b"j-1-1", b"o-0-1")
    results = worker_process_results(orphan + b"".join(lines))
    assert [(r.task_id, r.ok) for r in results] == [
        ("o-0-1", False),
        ("j-0-1", True),
        ("j-1-1", True),
        ("j-2-1", True),
        ("k-0-1", True),
    ]
    assert "follow-up task line without a valid task line before it" in results[0].reason
    outputs = [[(o.path, output_bytes(store, o)) for o in r.outputs] for r in results[1:]]
    assert outputs == [[("/d0", b"n0")], [("/d1", b"n1")], [("/d2", b"n2")], [("/d2", b"n2")]]
    assert [user_lines(r) for r in results[1:]] == [["one"], ["one"], ["one"], ["two"]]


def test_terminating_the_worker_kills_the_running_command(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    t = task(
        store,
        # the host pid, from /proc (the command runs in a pid namespace of its own)
        [
            "sh",
            "-c",
            f"read -r pid rest < /proc/self/stat; echo $pid > {pid_file}.tmp; "
            f"mv {pid_file}.tmp {pid_file}; exec sleep 60",
        ],
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "tusk.worker", "--name", "w"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(t.to_json()).encode() + b"\n")
    proc.stdin.flush()
    deadline = time.monotonic() + 30
    while not pid_file.exists():
        assert time.monotonic() < deadline, "the command never started"
        assert proc.poll() is None
        time.sleep(0.01)
    proc.terminate()
    assert proc.wait(timeout=30) == 128 + 15
    proc.stdin.close()
    assert not alive(int(pid_file.read_text()))


def test_a_datum_whose_inputs_stopped_half_way_leaves_nothing_to_the_next(
    worker: Worker, store: LocalObjectStore
) -> None:
    """A datum that fails while its inputs are copied (one came short) leaves its copies; the
    next datum of the worker sees only its own inputs under the same /pfs/<input>."""
    good = put(store, "/a", b"a")
    short = dataclasses.replace(put(store, "/b", b"b"), size=2)
    first = task(store, ["true"], inputs=(DatumInput("in", "c", "/", (good, short)),))
    result = worker.run(first)
    assert not result.ok and "has 1 bytes, expected 2" in result.reason
    listing = ["sh", "-c", 'cd "$PFS" && ls in && ls -d *']
    for i, path in enumerate(("/c", "/d")):  # the second keeps the directory the first made
        files = (put(store, path, b"c"),)
        nxt = task(
            store, listing, task_id=f"job1-{i}-2", inputs=(DatumInput("in", "c", "/", files),)
        )
        result = worker.run(nxt)
        assert result.ok, result.reason
        assert user_lines(result) == [path[1:], "in", "out"]
