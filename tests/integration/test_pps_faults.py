"""Crashes during a job, with a real tuskd: the server SIGKILLed mid-job and restarted on the same
home finishes the job with the output it would have had (nothing lost, nothing twice); a worker
process killed mid-datum is restarted and the datum retried."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tusk import Client
from tusk.testing import Tuskd, wait_for

TERMINAL = ("success", "failure", "killed")


def worker_pids(server_pid: int) -> list[int]:
    """The server's child processes running ``python -m tusk.worker``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == server_pid and b"tusk.worker" in cmdline:
            pids.append(int(entry))
    return pids


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class Server:
    """tuskd on ``home``; ``kill`` (SIGKILL) and ``start`` again on the same home."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.tuskd = Tuskd(home, {"TUSK_RUNTIME": "host", **env})  # host programs
        self.client: Client | None = None
        self.workers: set[int] = set()  # every worker pid seen, to clean up orphans

    def start(self) -> Client:
        self.tuskd.start()
        self.client = self.tuskd.client()
        return self.client

    def note_workers(self) -> list[int]:
        pids = worker_pids(self.tuskd.pid) if self.tuskd.running else []
        self.workers.update(pids)
        return pids

    def kill(self) -> None:
        assert self.client is not None
        self.note_workers()
        self.tuskd.kill()
        self.client.close()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        self.note_workers()
        self.tuskd.stop()
        kill_all(sorted(self.workers))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    # datum scratch dirs of killed workers stay inside the test's directory
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    s = Server(tmp_path / "home", {"TUSK_WORKER_SCRATCH": str(scratch)})
    try:
        yield s
    finally:
        s.close()


def spec(name: str, cmd: list[str], **fields: Any) -> str:
    doc = {
        "pipeline": {"name": name},
        "transform": {"cmd": cmd},
        "input": {"atom": {"repo": "x", "name": "in", "glob": "/*"}},
        **fields,
    }
    return json.dumps(doc)


def tree(client: Client, repo: str) -> dict[str, bytes]:
    files = client.walk_file(repo, "master")
    return {
        f.path: client.get_file_bytes(repo, "master", f.path) for f in files if f.type == "file"
    }


def finished_job(client: Client, pipeline: str, timeout: float = 120.0) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        jobs = client.list_job(pipeline)
        return jobs[0] if jobs and jobs[0]["state"] in TERMINAL else None

    return wait_for(f"the job of {pipeline}", done, timeout)


def test_a_server_killed_mid_job_finishes_it_after_a_restart(
    server: Server, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    names = [f"f{i:02d}" for i in range(40)]
    client = server.start()
    client.create_repo("x")
    with client.commit("x", "master") as c:
        for n in names:
            c.put_file(f"/{n}", f"{n}!".encode())
    # every datum: its own output file, a line appended to a shared file, a line in $RUNS
    cmd = [
        "sh",
        "-c",
        'sleep 0.2; for f in /pfs/in/*; do n=$(basename "$f"); tr a-z A-Z < "$f" > "/pfs/out/$n"; '
        'echo "$n" >> /pfs/out/all; echo "$n" >> "$RUNS"; done',
    ]
    client.create_pipeline(
        spec(
            "p",
            cmd,
            transform={"cmd": cmd, "env": {"RUNS": str(runs)}},
            parallelism_spec={"constant": 2},
        )
    )
    (job,) = wait_for(
        "the job to be half done",
        lambda: [j for j in client.list_job("p") if 8 <= j["processed"] < 30],
    )
    assert job["state"] == "running"
    server.kill()

    client = server.start()
    job = finished_job(client, "p")
    assert job["state"] == "success", job["reason"]
    assert [j["id"] for j in client.list_job("p")] == [job["id"]]
    assert job["processed"] + job["skipped"] == job["total"] == 40
    assert job["failed"] == 0

    files = tree(client, "p")
    expected = {f"/{n}": f"{n.upper()}!".encode() for n in names}
    expected["/all"] = "".join(f"{n}\n" for n in names).encode()  # each datum once, in order
    assert files == expected
    # a datum finished before the crash never ran again; only those in flight at the kill may have
    ran = runs.read_text().split()
    assert set(ran) == set(names)
    assert len(ran) <= len(names) + 2
    datums = client.list_datum(job["id"], pipeline="p")
    assert len(datums) == 40 and {d["state"] for d in datums} == {"success"}


def test_a_killed_worker_is_restarted_and_its_datum_retried(server: Server, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    client = server.start()
    client.create_repo("x")
    with client.commit("x", "master") as c:
        for n in ("a", "b", "c"):
            c.put_file(f"/{n}", n.encode())
    cmd = [
        "sh",
        "-c",
        'for f in /pfs/in/*; do n=$(basename "$f"); echo started >> "$MARKS/$n"; sleep 1; '
        'cp "$f" /pfs/out/; done',
    ]
    client.create_pipeline(spec("p", cmd, transform={"cmd": cmd, "env": {"MARKS": str(marks)}}))
    (worker,) = client.list_worker("p")
    assert worker["restarts"] == 0
    running = wait_for("a datum to start", lambda: sorted(marks.iterdir()), timeout=30)
    (pid,) = wait_for("the worker process", server.note_workers)
    os.kill(pid, signal.SIGKILL)

    job = finished_job(client, "p")
    assert job["state"] == "success", job["reason"]
    assert job["processed"] == job["total"] == 3
    assert tree(client, "p") == {"/a": b"a", "/b": b"b", "/c": b"c"}
    killed = running[0].name
    assert (marks / killed).read_text().split() == ["started", "started"]  # run again
    datums = {d["inputs"][0]["path"]: d for d in client.list_datum(job["id"], pipeline="p")}
    assert datums[f"/{killed}"]["tries"] == 2
    assert {datums[p]["tries"] for p in datums if p != f"/{killed}"} == {1}
    (after,) = client.list_worker("p")
    assert after["name"] == worker["name"] and after["restarts"] == 1
    # the restarted worker is a new process
    (new_pid,) = server.note_workers()
    assert new_pid != pid
    logs = [r["message"] for r in client.get_logs(pipeline="p") if not r["user"]]
    assert any("died" in m for m in logs), logs
