"""A real tuskd that crashes at the two points between a write and what must follow it: after a
job's output commit is finished but before the job is marked, and after a put lands but before
its downstream jobs exist. Restarted on the same home, it must finish what the crash left."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tusk.api.pps import JobInfo
from tusk.errors import ServerUnavailable
from tusk.testing import Tuskd, wait_for

COPY = ["sh", "-c", "cp /pfs/in/* /pfs/out/"]
CRASH_EXIT_CODE = 86  # tusk.faults


def spec(name: str) -> str:
    return json.dumps(
        {
            "pipeline": {"name": name},
            "transform": {"cmd": COPY},
            "input": {"pfs": {"repo": "x", "name": "in", "glob": "/*"}},
        }
    )


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "home"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks


def wait_exit(server: Tuskd, timeout: float = 60.0) -> int:
    code: int = wait_for("tuskd to crash", lambda: server.proc.poll(), timeout)
    return code


def jobs(server: Tuskd, pipeline: str) -> list[JobInfo]:
    with server.client() as c:
        return list(reversed(c.list_job(pipeline)))


def test_a_crash_after_the_output_commit_finishes_the_job_on_restart(home: Path) -> None:
    crashing = Tuskd(home, {"TUSK_TEST_CRASH_AT": "job-output-finished"})
    crashing.start()
    try:
        with crashing.client() as c:
            c.create_repo("x")
            c.put_file("x", "master", "/a", b"a")
            c.create_pipeline(spec("p"))
        assert wait_exit(crashing) == CRASH_EXIT_CODE
    finally:
        crashing.stop()

    with Tuskd(home) as server:
        (job,) = wait_for(
            "the job to end",
            lambda: [j for j in jobs(server, "p") if j.state != "running"] or None,
            30,
        )
        assert job.state == "success", job
        with server.client() as c:
            assert c.get_file_bytes("p", "master", "/a") == b"a"
            before = cpu_seconds(server.pid)
            time.sleep(3)
            assert cpu_seconds(server.pid) - before < 1.5  # idle, not spinning
            c.put_file("x", "master", "/b", b"b")
        later = wait_for(
            "a second job",
            lambda: [j for j in jobs(server, "p") if j.state == "success"][1:] or None,
            60,
        )
        assert len(later) == 1
        with server.client() as c:
            assert c.get_file_bytes("p", "master", "/b") == b"b"


def test_a_crash_between_a_put_and_its_propagation_is_repaired_on_restart(home: Path) -> None:
    with Tuskd(home) as server, server.client() as c:
        c.create_repo("x")
        c.put_file("x", "master", "/a", b"a")
        c.create_pipeline(spec("p"))
        wait_for("the first job", lambda: [j for j in jobs(server, "p") if j.state == "success"])

    crashing = Tuskd(home, {"TUSK_TEST_CRASH_AT": "head-before-propagate"})
    crashing.start()
    try:
        with crashing.client() as c, pytest.raises(ServerUnavailable):
            c.put_file("x", "master", "/b", b"b")  # lands, then the server dies
        assert wait_exit(crashing) == CRASH_EXIT_CODE
    finally:
        crashing.stop()

    with Tuskd(home) as server:
        with server.client() as c:
            assert c.get_file_bytes("x", "master", "/b") == b"b"  # the put landed
        done = wait_for(
            "the job of the new head",
            lambda: [j for j in jobs(server, "p") if j.state == "success"][1:] or None,
            60,
        )
        assert len(done) == 1
        with server.client() as c:
            assert c.get_file_bytes("p", "master", "/b") == b"b"
            assert len(c.list_job("p")) == 2  # and nothing twice
