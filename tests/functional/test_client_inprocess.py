"""``tusk.Client`` against tuskd's app in the test process (no socket): the PFS and PPS calls
through :class:`InProcessTransport`, and the one mapping of transport failures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import Pps

from tusk.client import Client, PutSource
from tusk.client.inprocess import InProcessTransport
from tusk.errors import AlreadyExists, InvalidPath, NotFound, ServerUnavailable
from tusk.server.app import create_app

ADDRESS = "http://localhost"  # tuskd answers to loopback names only


@pytest.fixture
def client(pps: Pps) -> Iterator[Client]:
    with Client(ADDRESS, transport=InProcessTransport(create_app(pps.engine))) as c:
        yield c


def spec(name: str, repo: str, cmd: str, **extra: Any) -> str:
    body = {
        "pipeline": {"name": name},
        "transform": {"cmd": ["sh", "-c", cmd]},
        "input": {"atom": {"repo": repo, "glob": "/*"}},
        **extra,
    }
    return json.dumps(body)


# -- PFS ---------------------------------------------------------------------------------------
def test_repos_commits_and_branches(client: Client) -> None:
    assert client.pfs.create_repo("data", "numbers").name == "data"
    client.update_repo("data", "more numbers")
    assert client.inspect_repo("data").description == "more numbers"
    assert [r.name for r in client.list_repo()] == ["data"]
    with pytest.raises(AlreadyExists):
        client.create_repo("data")
    with client.commit("data", "master", description="first") as oc:
        oc.put_file("/a", b"1\n")
        oc.put_file("/b", "2\n")
    assert oc.info is not None and oc.info.size_bytes == 4
    second = client.put_file("data", "master", "/a", b"3\n").commit.id
    assert [c.commit.id for c in client.list_commit("data")] == [second, oc.id]
    assert client.inspect_commit("data", "master^").commit.id == oc.id
    assert [c.commit.id for c in client.commit_set(second)] == [second]
    client.create_branch("data", "old", head=oc.id)
    assert client.inspect_branch("data", "old").head == oc.id
    assert sorted(b.branch.name for b in client.list_branch("data")) == ["master", "old"]
    client.delete_branch("data", "old")
    assert [b.branch.name for b in client.list_branch("data")] == ["master"]
    opened = client.start_commit("data", "master").commit.id
    assert client.finish_commit("data", opened).finished is not None
    assert [k.id for k in client.delete_commit("data", opened)] == [opened]
    assert client.delete_repo("data") == ["data"]
    assert client.list_repo() == []


def test_files_put_read_list_diff_copy_delete(client: Client) -> None:
    client.create_repo("f")
    res = client.put_files("f", "master", [PutSource(f"/d/{i}", b"%d" % i) for i in range(3)])
    assert (res.files, res.bytes) == (3, 3)
    client.put_file("f", "master", "/lines", b"a\nb\n", split="line", target_datums=1)
    assert client.get_file_bytes("f", "master", "/d/*") == b"012"
    assert b"".join(client.get_file("f", "master", "/d/2", offset=0, length=1)) == b"2"
    with pytest.raises(InvalidPath):
        client.get_file_bytes("f", "master", "/d")
    with pytest.raises(NotFound):
        list(client.pfs.get_file("f", "master", "/missing"))
    assert [f.path for f in client.list_file("f", "master", "/d")] == ["/d/0", "/d/1", "/d/2"]
    assert [f.path for f in client.glob_file("f", "master", "/lines/*")] == [
        "/lines/0000000000000000",
        "/lines/0000000000000001",
    ]
    assert client.inspect_file("f", "master", "/d").file_count == 3
    assert len(client.walk_file("f", "master")) == 7  # /, /d + 3 files, /lines + 2 files
    client.copy_file("f", "master", "/d/0", "f", "master", "/copy")
    assert client.get_file_bytes("f", "master", "/copy") == b"0"
    client.delete_file("f", "master", ["/d/1", "/d/2"])
    diff = client.diff_file("f", "master", "/d")
    assert diff.new_files == [] and [f.path for f in diff.old_files] == ["/d/1", "/d/2"]


# -- PPS ---------------------------------------------------------------------------------------
UPPER = "echo hi; for f in /pfs/in/*; do tr a-z A-Z < $f > /pfs/out/${f##*/}; done"


def test_pipelines_jobs_datums_logs_and_workers(client: Client) -> None:
    client.create_repo("in")
    head = client.put_files("in", "master", [PutSource("/x", b"x"), PutSource("/y", b"y")])
    (created,) = client.pps.create_pipeline(spec("up", "in", UPPER))
    assert created.name == "up" and created.warnings == []
    (out,) = client.flush_commit([("in", head.commit.id)])
    assert out.commit.repo == "up" and out.finished is not None
    (job,) = client.flush_job([("in", head.commit.id)], pipelines=["up"])
    assert (job.state, job.processed, job.total) == ("success", 2, 2), job.reason
    assert client.get_file_bytes("up", "master", "/x") == b"X"

    assert [p.name for p in client.list_pipeline()] == ["up"]
    assert client.inspect_pipeline("up").state == "running"
    assert client.extract_pipeline("up").root["transform"]["cmd"][0] == "sh"
    assert [j.id for j in client.list_job("up")] == [job.id]
    assert [j.id for j in client.list_job(inputs=[f"in/{head.commit.id}"])] == [job.id]
    assert client.inspect_job(job.id, pipeline="up", block=True).state == "success"
    datums = client.list_datum(job.id, pipeline="up")
    assert sorted(d.state for d in datums) == ["success", "success"]
    datum = client.inspect_datum(job.id, datums[0].id, pipeline="up")
    assert [f.repo for f in datum.inputs] == ["in"]
    lines = [r.message for r in client.get_logs(pipeline="up") if r.user]
    assert [m.strip() for m in lines] == ["hi", "hi"]
    assert [w.name.startswith("pipeline-up-v1-") for w in client.list_worker("up")] == [True]

    client.stop_pipeline("up")
    assert client.inspect_pipeline("up").stopped is True
    client.start_pipeline("up")
    assert client.inspect_pipeline("up").stopped is False
    client.delete_job(job.id, pipeline="up")
    with pytest.raises(NotFound):
        client.inspect_job(job.id, pipeline="up")
    assert client.delete_pipeline("up") == ["up"]
    assert client.list_pipeline() == []


def test_a_bad_spec_arrives_as_its_error_class(client: Client) -> None:
    with pytest.raises(NotFound, match="nope"):
        client.create_pipeline(spec("p", "nope", "true"))


# -- transport failures ------------------------------------------------------------------------
def _failing(error: type[httpx.TransportError], text: str) -> httpx.MockTransport:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error(text, request=request)

    return httpx.MockTransport(fail)


def test_no_server_is_server_unavailable_naming_the_address() -> None:
    with Client(ADDRESS, transport=_failing(httpx.ConnectError, "connection refused")) as c:
        for call in (c.list_repo, lambda: c.get_file_bytes("r", "master", "/f")):
            with pytest.raises(ServerUnavailable) as err:
                call()
            assert err.value.message == f"no tusk server answers at {ADDRESS}"
            assert err.value.hint and "tusk up" in err.value.hint


def test_a_connection_lost_mid_request_is_server_unavailable() -> None:
    with Client(ADDRESS, transport=_failing(httpx.ReadError, "connection reset")) as c:
        for call in (c.list_pipeline, lambda: next(c.subscribe_commit("r", "master"))):
            with pytest.raises(ServerUnavailable) as err:
                call()
            message = err.value.message
            assert message.startswith(f"lost the connection to the tusk server at {ADDRESS}")
            assert "ReadError: connection reset" in message
