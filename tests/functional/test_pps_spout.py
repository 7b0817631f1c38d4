"""Spout pipelines: code with no input writes tar streams to the named pipe /pfs/out; each whole
stream is one commit (appended, or with overwrite replacing files), a bad stream is dropped with
a log line, code that exits is restarted, stop/start/update work, and pipelines downstream run on
each commit. The code runs in a real image under bubblewrap (and podman)."""

from __future__ import annotations

import json
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Pps, atom

from tusk.api.models import CommitInfo
from tusk.api.pps import JobState
from tusk.errors import InvalidSpec
from tusk.pfs.context import SPEC_REPO
from tusk.pps import spout
from tusk.pps.spec import parse_specs
from tusk.testing import free_port
from tusk.testing.images import build_python_image
from tusk.worker.protocol import DatumResult

# Writes one tar stream per call to the named pipe /pfs/out (as 1.x spouts do).
WRITER = textwrap.dedent(
    """
    import io, sys, tarfile, time

    def tar_bytes(files):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w|") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    def stream(files):
        with open("/pfs/out", "wb") as out:
            out.write(tar_bytes(files))

    def raw(data):
        with open("/pfs/out", "wb") as out:
            out.write(data)
    """
)


def spout_spec(name: str, body: str, image: str, **fields: Any) -> str:
    spec = {
        "pipeline": {"name": name},
        "transform": {"cmd": ["python3", "-c", WRITER + textwrap.dedent(body)], "image": image},
        "spout": fields.pop("spout", {}),
        **fields,
    }
    return json.dumps(spec)


def create(pps: Pps, spec: str, update: bool = False) -> None:
    (parsed,) = parse_specs(spec, "test")
    pps.engine.pipelines.create(parsed, update=update)


def commits(pps: Pps, repo: str) -> list[CommitInfo]:
    """The finished commits of ``repo``, oldest first."""
    return [c for c in reversed(pps.engine.commits.list(repo)) if c.finished is not None]


def wait_commits(pps: Pps, repo: str, count: int, timeout: float = 90) -> list[CommitInfo]:
    try:
        got: list[CommitInfo] = pps.wait_for(
            f"{count} commits in {repo}",
            lambda: (lambda c: c if len(c) >= count else None)(commits(pps, repo)),
            timeout,
        )
    except AssertionError as e:  # say what the spout did
        raise AssertionError(f"{e}; its log: {master_logs(pps, repo)}") from None
    return got


def master_logs(pps: Pps, pipeline: str) -> list[str]:
    return [r.message for r in pps.engine.jobs.logs(pipeline, master=True)]


@pytest.fixture(params=["bwrap", "podman"])
def sandboxed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pps]:
    p = Pps(tmp_path / "home", runtime=request.param)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def bwrap(tmp_path: Path) -> Iterator[Pps]:
    p = Pps(tmp_path / "home", runtime="bwrap")
    try:
        yield p
    finally:
        p.close()


def test_three_streams_are_three_commits_and_files_are_appended(sandboxed: Pps) -> None:
    pps = sandboxed
    image = build_python_image()
    body = """
    for i in range(3):
        stream({f"f{i}.txt": f"stream {i}\\n".encode(), "log.txt": f"{i}\\n".encode()})
        print("wrote", i, flush=True)
    time.sleep(3600)
    """
    create(pps, spout_spec("gen", body, image))
    info = pps.engine.pipelines.inspect("gen")
    assert info.input_summary == "none"
    got = wait_commits(pps, "gen", 3)
    assert len(got) == 3
    spec_commit = info.spec_commit
    for c in got:
        assert [(p.commit.repo, p.commit.id) for p in c.provenance] == [(SPEC_REPO, spec_commit)]
    assert pps.tree("gen", got[0].commit.id) == {"/f0.txt": b"stream 0\n", "/log.txt": b"0\n"}
    assert pps.tree("gen", got[2].commit.id) == {
        "/f0.txt": b"stream 0\n",
        "/f1.txt": b"stream 1\n",
        "/f2.txt": b"stream 2\n",
        "/log.txt": b"0\n1\n2\n",  # without overwrite a stream's file is appended
    }
    assert pps.jobs("gen") == []  # a spout has no jobs
    # the log line follows its commit's transaction
    pps.wait_for(
        "three commits in the log",
        lambda: sum("committed as" in line for line in master_logs(pps, "gen")) == 3,
        30,
    )
    pps.engine.pipelines.delete("gen")
    assert "gen" not in pps.engine.executor.pipelines()


def test_overwrite_keeps_only_the_last_content(bwrap: Pps) -> None:
    pps = bwrap
    image = build_python_image()
    body = """
    for i in range(3):
        stream({"latest.txt": f"value {i}\\n".encode()})
    time.sleep(3600)
    """
    create(pps, spout_spec("last", body, image, spout={"overwrite": True}))
    got = wait_commits(pps, "last", 3)
    assert [pps.tree("last", c.commit.id) for c in got] == [
        {"/latest.txt": f"value {i}\n".encode()} for i in range(3)
    ]


def test_a_bad_stream_makes_no_commit_and_a_log_line(bwrap: Pps) -> None:
    pps = bwrap
    image = build_python_image()
    body = """
    stream({"a.txt": b"A"})
    raw(b"this is not a tar archive" * 40)
    time.sleep(1.5)  # what follows garbage is dropped until no writer holds the pipe
    whole = tar_bytes({"cut.txt": b"x" * 5000, "more.txt": b"y"})
    raw(whole[:1024])  # cut short inside a file
    time.sleep(1.5)
    raw(whole[:512 + 5120])  # cut at a file's end: no end-of-archive blocks
    time.sleep(1.5)
    stream({"b.txt": b"B"})
    time.sleep(3600)
    """
    create(pps, spout_spec("bad", body, image))
    got = wait_commits(pps, "bad", 2)
    pps.wait_for(
        "three dropped streams in the log",
        lambda: sum("invalid tar stream" in line for line in master_logs(pps, "bad")) >= 3,
        30,
    )
    got = commits(pps, "bad")
    assert len(got) == 2
    assert pps.tree("bad", got[-1].commit.id) == {"/a.txt": b"A", "/b.txt": b"B"}
    dropped = [line for line in master_logs(pps, "bad") if "invalid tar stream" in line]
    assert all(line.endswith("no commit") for line in dropped)


def test_code_that_exits_is_restarted_with_backoff(bwrap: Pps) -> None:
    pps = bwrap
    image = build_python_image()
    body = """
    import os
    stream({f"run-{os.getpid()}.txt": b"ran"})
    print("exiting", flush=True)
    sys.exit(3)
    """
    create(pps, spout_spec("flaky", body, image))
    got = wait_commits(pps, "flaky", 2)
    assert len(pps.tree("flaky", got[1].commit.id)) == 2  # two runs, two files
    ended = [line for line in master_logs(pps, "flaky") if "the spout ended" in line]
    assert ended, master_logs(pps, "flaky")
    assert "exit code 3" in ended[0] and "trying again in 1s" in ended[0]
    assert "exiting" in pps.user_logs("flaky")


def test_stop_start_and_update(bwrap: Pps) -> None:
    pps = bwrap
    image = build_python_image()
    body = """
    i = 0
    while True:
        stream({f"{TAG}-{i}": b"x"})
        i += 1
        time.sleep(0.3)
    """
    create(pps, spout_spec("tick", "TAG = 'a'\n" + textwrap.dedent(body), image))
    wait_commits(pps, "tick", 2)
    pps.engine.pipelines.set_stopped("tick", True)
    pps.wait_for("its workers gone", lambda: "tick" not in pps.engine.executor.pipelines(), 30)
    stopped_at = len(commits(pps, "tick"))
    time.sleep(2)
    assert len(commits(pps, "tick")) == stopped_at  # nothing while stopped
    pps.engine.pipelines.set_stopped("tick", False)
    wait_commits(pps, "tick", stopped_at + 2)

    create(pps, spout_spec("tick", "TAG = 'b'\n" + textwrap.dedent(body), image), update=True)
    new_spec = pps.engine.pipelines.inspect("tick").spec_commit

    def from_b() -> CommitInfo | None:
        last = commits(pps, "tick")[-1]
        names = pps.tree("tick", last.commit.id)
        return last if any(n.startswith("/b-") for n in names) else None

    last = pps.wait_for("a commit of the new version", from_b, 90)
    assert [p.commit.id for p in last.provenance] == [new_spec]


def test_a_stream_of_a_replaced_version_is_not_committed(bwrap: Pps) -> None:
    """A stream the old version wrote just before an update must not land after the new
    version's commits (its commit would carry the old spec as provenance)."""
    pps = bwrap
    image = build_python_image()
    body = "time.sleep(3600)\n"
    create(pps, spout_spec("quiet", body, image))
    old = spout.current(pps.engine.ctx, "quiet")
    assert old is not None
    spout._commit_stream(pps.engine.ctx, old, DatumResult(task_id="t", ok=True, dirs=("/a",)))
    (first,) = commits(pps, "quiet")  # the version that runs commits its streams
    assert [p.commit.id for p in first.provenance] == [old.spec_commit]

    create(pps, spout_spec("quiet", "# v2\n" + body, image), update=True)
    spout._commit_stream(pps.engine.ctx, old, DatumResult(task_id="t", ok=True, dirs=("/b",)))
    assert [c.commit.id for c in commits(pps, "quiet")] == [first.commit.id]
    assert any("its last stream was dropped" in line for line in master_logs(pps, "quiet"))

    # An update bumps the version before it writes the new spec commit: in between, the spout
    # runs the spec of the commit it would cite, and its streams are not committed.
    with pps.engine.ctx.meta.transaction() as tx:
        tx.update_pipeline("quiet", spec_commit=old.spec_commit)
    during = spout.current(pps.engine.ctx, "quiet")
    assert during is not None
    assert (during.version, during.spec, during.spec_commit) == (1, old.spec, old.spec_commit)
    spout._commit_stream(pps.engine.ctx, during, DatumResult(task_id="t", ok=True, dirs=("/c",)))
    assert [c.commit.id for c in commits(pps, "quiet")] == [first.commit.id]


def test_pipelines_downstream_run_on_each_commit(bwrap: Pps) -> None:
    pps = bwrap
    image = build_python_image()
    body = """
    for i in range(2):
        stream({f"n{i}": f"{i}".encode()})
    time.sleep(3600)
    """
    create(pps, spout_spec("src", body, image))
    pps.create("count", atom("src", glob="/"), ["sh", "-c", "ls /pfs/src | wc -l > /pfs/out/n"],
               transform={"image": image})  # fmt: skip
    wait_commits(pps, "src", 2)

    def two_done() -> bool:
        jobs = pps.jobs("count")
        return len(jobs) >= 2 and all(j.state.terminal for j in jobs)

    pps.wait_for("the downstream jobs", two_done, 90)
    jobs = pps.jobs("count")
    assert all(j.state is JobState.SUCCESS for j in jobs)
    assert pps.read("count", "master", "/n").strip() == b"2"


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"input": atom("in")}, "spout pipelines cannot have an input"),
        ({"service": {"internal_port": 1, "external_port": 2}}, "spout.service"),
        ({"parallelism_spec": {"constant": 2}}, "parallelism of 1"),
    ],
)
def test_bad_spout_specs_are_refused(fields: dict[str, Any], problem: str) -> None:
    spec = {"pipeline": {"name": "s"}, "transform": {"cmd": ["true"]}, "spout": {}, **fields}
    with pytest.raises(InvalidSpec) as e:
        parse_specs(json.dumps(spec), "test")
    assert problem in str(e.value)


def test_a_spout_with_a_service_port(bwrap: Pps) -> None:
    pps = bwrap
    image = build_python_image()
    internal, external = free_port(), free_port()
    body = """
    import http.server, threading

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"spout here")

    server = http.server.HTTPServer(("127.0.0.1", INTERNAL), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stream({"a.txt": b"A"})
    time.sleep(3600)
    """.replace("INTERNAL", str(internal))
    service = {"internal_port": internal, "external_port": external}
    create(pps, spout_spec("served", body, image, spout={"service": service}))
    url = pps.engine.pipelines.inspect("served").service_url
    assert url == f"http://127.0.0.1:{external}"
    wait_commits(pps, "served", 1)

    def get() -> bytes | None:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - a local test URL
                return bytes(r.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None

    assert pps.wait_for("the spout's port answering", get, 60) == b"spout here"
    pps.engine.pipelines.delete("served")
    pps.wait_for("the port closed", lambda: get() is None, 30)
