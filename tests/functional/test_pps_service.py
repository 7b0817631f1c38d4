"""Service pipelines: the code serves the latest input commit on a port, reachable from the host
at ``external_port``; new input restarts it on the new data; code that exits is restarted with
back-off and get-logs says why. Runs in a real image under bubblewrap."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Pps, atom

from tusk.api.pps import JobInfo, JobState
from tusk.testing.images import build_python_image


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - a local test URL
            return bytes(r.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


@pytest.fixture(params=["bwrap", "podman"])
def sandboxed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pps]:
    p = Pps(tmp_path / "home", runtime=request.param)
    try:
        yield p
    finally:
        p.close()


def test_a_service_serves_its_input_and_follows_new_data(sandboxed: Pps) -> None:
    pps = sandboxed
    image = build_python_image()
    internal, external = _free_port(), _free_port()
    pps.repo("site")
    pps.put("site", {"/index.txt": "first\n"})
    created = pps.create(
        "web",
        atom("site", glob="/*"),
        ["python3", "-m", "http.server", str(internal), "--directory", "/pfs/site"],
        transform={"image": image},
        service={"internal_port": internal, "external_port": external},
    )
    assert created.service_url == f"http://127.0.0.1:{external}"
    url = created.service_url
    assert pps.wait_for("the first file served", lambda: _get(f"{url}/index.txt"), 60) == (
        b"first\n"
    )
    (job,) = pps.jobs("web")
    assert job.state is JobState.RUNNING

    pps.put("site", {"/new.txt": "second\n"})
    assert pps.wait_for("the new file served", lambda: _get(f"{url}/new.txt"), 60) == b"second\n"
    assert _get(f"{url}/index.txt") == b"first\n"  # the whole input, not one datum of it

    def first_ended() -> list[JobInfo] | None:
        jobs = pps.jobs("web")
        return jobs if len(jobs) == 2 and jobs[0].state.terminal else None

    jobs = pps.wait_for("the first job ended", first_ended, 30)
    assert [j.state for j in jobs] == [JobState.SUCCESS, JobState.RUNNING]

    pps.engine.pipelines.delete("web")
    pps.wait_for("the port closed", lambda: _get(f"{url}/index.txt") is None, 30)


def test_a_service_that_exits_is_restarted_with_backoff_and_logged(tmp_path: Path) -> None:
    pps = Pps(tmp_path / "home", runtime="bwrap")
    try:
        _flaky_service(pps)
    finally:
        pps.close()


def test_a_stopped_service_closes_and_serves_again_when_started(sandboxed: Pps) -> None:
    pps = sandboxed
    image = build_python_image()
    internal, external = _free_port(), _free_port()
    pps.repo("doc")
    pps.put("doc", {"/a.txt": "A\n"})
    pps.create(
        "svc",
        atom("doc"),
        ["python3", "-m", "http.server", str(internal), "--directory", "/pfs/doc"],
        transform={"image": image},
        service={"internal_port": internal, "external_port": external},
    )
    url = f"http://127.0.0.1:{external}/a.txt"
    assert pps.wait_for("served", lambda: _get(url), 60) == b"A\n"
    pps.engine.pipelines.set_stopped("svc", True)
    pps.wait_for("the service down", lambda: _get(url) is None, 30)
    pps.engine.pipelines.set_stopped("svc", False)
    assert pps.wait_for("served again", lambda: _get(url), 60) == b"A\n"
    # start-pipeline writes a new spec commit: its job serves now, the one before it ended
    states = [j.state for j in pps.jobs("svc")]
    assert states[-1] is JobState.RUNNING
    assert pps.wait_for(
        "the older jobs ended",
        lambda: all(j.state is JobState.SUCCESS for j in pps.jobs("svc")[:-1]),
        30,
    )


def _flaky_service(pps: Pps) -> None:
    image = build_python_image()
    internal, external = _free_port(), _free_port()
    pps.repo("in")
    pps.put("in", {"/a": "x"})
    pps.create(
        "flaky",
        atom("in"),
        ["sh", "-c", "echo starting; exit 3"],
        transform={"image": image},
        service={"internal_port": internal, "external_port": external},
    )

    def restarts() -> list[str]:
        return [
            r.message
            for r in pps.engine.jobs.logs("flaky", master=True)
            if r.message.startswith("service exited")
        ]

    lines = pps.wait_for("two restarts", lambda: restarts() if len(restarts()) >= 2 else None, 60)
    assert "exit" in lines[0] and "3" in lines[0], lines
    assert lines[0].endswith("restarting in 1s") and lines[1].endswith("restarting in 2s")
    assert pps.jobs("flaky")[0].state is JobState.RUNNING
    assert "starting" in pps.user_logs("flaky")
