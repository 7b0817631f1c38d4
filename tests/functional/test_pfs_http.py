"""The PFS HTTP contract through ``tusk.Client``: uvicorn serves the FastAPI app on a free port in
a thread of the test process, over an Engine on a temporary home."""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import random
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tusk.api.framing import DATA, END, FRAMES_MEDIA_TYPE, frame, header_frame
from tusk.api.models import CommitInfo
from tusk.client import Client, PutSource
from tusk.errors import (
    AlreadyExists,
    CommitFinished,
    HasDependents,
    InvalidArgument,
    InvalidName,
    InvalidPath,
    NotFound,
    PathConflict,
    TuskError,
)
from tusk.runtime import Engine
from tusk.testing.inprocess import serve_in_thread


@pytest.fixture(scope="module")
def address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    engine = Engine(tmp_path_factory.mktemp("tusk-http"))
    try:
        with serve_in_thread(engine) as address:
            yield address
    finally:
        engine.close()


@pytest.fixture
def client(address: str) -> Iterator[Client]:
    with Client(address, timeout=30) as c:
        yield c


@pytest.fixture
def repo(client: Client, request: pytest.FixtureRequest) -> str:
    name = "r" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:12]
    client.create_repo(name)
    return name


# -- errors ------------------------------------------------------------------------------------
def test_not_found_round_trips_code_message_and_hint(client: Client, address: str) -> None:
    with pytest.raises(NotFound) as err:
        client.inspect_repo("nope")
    assert err.value.message == "repo nope not found"
    assert err.value.hint and "list-repo" in err.value.hint
    raw = httpx.get(f"{address}/v1/repos/nope")
    assert raw.status_code == 404
    assert raw.json()["error"]["code"] == "not_found"
    assert raw.json()["error"]["message"] == "repo nope not found"


def test_error_classes_survive_the_wire(client: Client, repo: str) -> None:
    def raised(call: object) -> type[TuskError]:
        assert callable(call)
        with pytest.raises(TuskError) as err:
            call()
        return type(err.value)

    client.put_file(repo, "master", "/f", b"x")
    client.put_file(repo, "master", "/d/x", b"x")
    done = client.inspect_commit(repo, "master").commit.id
    client.create_repo(repo + "-out")
    client.create_branch(repo + "-out", "master", provenance=[(repo, "master")])
    assert raised(lambda: client.create_repo(repo)) is AlreadyExists
    assert raised(lambda: client.create_repo("bad name")) is InvalidName
    assert raised(lambda: client.put_file(repo, "master", "/f/g", b"x")) is PathConflict
    assert raised(lambda: client.put_file(repo, "master", "/a*", b"x")) is InvalidPath
    assert raised(lambda: client.put_file(repo, done, "/g", b"x")) is CommitFinished
    assert raised(lambda: client.delete_repo(repo)) is HasDependents
    assert raised(lambda: client.get_file_bytes(repo, "master", "/missing")) is NotFound
    assert raised(lambda: client.list_commit(repo, from_=done)) is InvalidArgument
    assert raised(lambda: client.inspect_commit(repo, "master^9")) is NotFound


def test_invalid_request_is_a_400_in_the_error_format(address: str) -> None:
    resp = httpx.post(f"{address}/v1/repos", json={"description": 3})
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "invalid"


# -- put-file streaming ------------------------------------------------------------------------
def test_many_files_in_one_request_make_one_commit(client: Client, repo: str) -> None:
    n = 3000
    before = len(client.list_commit(repo))
    res = client.put_files(
        repo, "master", (PutSource(f"/many/{i:05d}", b"%d\n" % i) for i in range(n))
    )
    assert (res.files, res.bytes) == (n, sum(len(b"%d\n" % i) for i in range(n)))
    assert len(client.list_commit(repo)) == before + 1
    listed = client.list_file(repo, "master", "/many")
    assert [f.path for f in listed] == [f"/many/{i:05d}" for i in range(n)]
    assert client.get_file_bytes(repo, "master", "/many/01234") == b"1234\n"
    assert client.inspect_file(repo, "master", "/many").file_count == n


def test_put_with_split_and_overwrite_over_http(client: Client, repo: str) -> None:
    client.put_file(repo, "master", "/lines", b"a\nb\nc\n", split="line", target_datums=2)
    assert [f.path for f in client.list_file(repo, "master", "/lines")] == [
        "/lines/0000000000000000",
        "/lines/0000000000000001",
    ]
    client.put_file(repo, "master", "/f", "one")
    client.put_file(repo, "master", "/f", "two")
    assert client.get_file_bytes(repo, "master", "/f") == b"onetwo"
    client.put_file(repo, "master", "/f", "three", overwrite=True)
    assert client.get_file_bytes(repo, "master", "/f") == b"three"


def _raw_put(address: str, repo: str, frames: Iterable[bytes]) -> httpx.Response:
    with httpx.Client(base_url=address + "/v1", timeout=30) as http:
        return http.post(
            f"/repos/{repo}/put",
            params={"ref": "master"},
            content=iter(frames),
            headers={"Content-Type": FRAMES_MEDIA_TYPE},
        )


def test_stream_without_the_commit_frame_stores_nothing(
    client: Client, address: str, repo: str
) -> None:
    client.put_file(repo, "master", "/kept", b"kept")
    head = client.inspect_commit(repo, "master").commit.id
    frames = [header_frame("/partial"), frame(DATA, os.urandom(3 << 20)), frame(END)]
    resp = _raw_put(address, repo, frames)
    assert resp.status_code == 400
    assert "ended before it was complete" in resp.json()["error"]["message"]
    # a frame cut in the middle is the same
    cut = header_frame("/partial") + frame(DATA, b"x" * 1000)[:500]
    assert _raw_put(address, repo, [cut]).status_code == 400
    assert client.inspect_commit(repo, "master").commit.id == head
    assert [f.path for f in client.list_file(repo, "master")] == ["/kept"]


def test_client_that_dies_mid_stream_stores_nothing(client: Client, repo: str) -> None:
    client.put_file(repo, "master", "/kept", b"kept")
    head = client.inspect_commit(repo, "master").commit.id

    class Died(Exception):
        pass

    def dying() -> Iterator[bytes]:
        for _ in range(8):
            yield os.urandom(1 << 20)
        raise Died

    with pytest.raises(Died):
        client.put_files(repo, "master", [PutSource("/a", b"a"), PutSource("/big", dying)])
    assert client.inspect_commit(repo, "master").commit.id == head
    assert len(client.list_commit(repo)) == 1
    # and the connection pool is still usable
    client.put_file(repo, "master", "/after", b"ok")
    assert [f.path for f in client.list_file(repo, "master")] == ["/after", "/kept"]


# -- get-file streaming -------------------------------------------------------------------------
def test_get_file_streams_a_large_file_with_ranges(client: Client, repo: str) -> None:
    data = random.Random(3).randbytes(20 << 20)
    client.put_file(repo, "master", "/big", data)
    pieces = list(client.get_file(repo, "master", "/big"))
    assert len(pieces) > 5  # streamed, not one body
    assert hashlib.sha256(b"".join(pieces)).digest() == hashlib.sha256(data).digest()
    start, length = (5 << 20) + 3, (7 << 20) + 11
    got = b"".join(client.get_file(repo, "master", "/big", offset=start, length=length))
    assert got == data[start : start + length]
    tail = b"".join(client.get_file(repo, "master", "/big", offset=len(data) - 10))
    assert tail == data[-10:]
    assert b"".join(client.get_file(repo, "master", "/big", offset=0, length=1)) == data[:1]


def test_get_file_of_a_glob_and_a_directory(client: Client, repo: str) -> None:
    client.put_files(repo, "master", [PutSource("/d/b", b"B"), PutSource("/d/a", b"A")])
    assert client.get_file_bytes(repo, "master", "/d/*") == b"AB"
    with pytest.raises(InvalidPath, match="cannot read directory"):
        client.get_file_bytes(repo, "master", "/d")


# -- subscribe ----------------------------------------------------------------------------------
def test_subscribe_streams_history_then_new_commits(client: Client, repo: str) -> None:
    ids = [client.put_file(repo, "master", "/f", b"x").commit.id for _ in range(3)]
    stream = client.subscribe_commit(repo, "master")
    try:
        assert [next(stream).commit.id for _ in range(3)] == ids
        new = client.put_file(repo, "master", "/f", b"y").commit.id
        assert next(stream).commit.id == new
        opened = client.start_commit(repo, "master").commit.id
        streamed = next(stream)
        assert (streamed.commit.id, streamed.finished) == (opened, None)
        client.finish_commit(repo, opened)
    except StopIteration:
        pytest.fail("the subscription ended")
    finally:
        stream.close()


def test_subscribe_new_skips_history(address: str, client: Client, repo: str) -> None:
    history = {client.put_file(repo, "master", "/f", b"x").commit.id for _ in range(2)}
    got: queue.Queue[CommitInfo | BaseException] = queue.Queue()
    stop = threading.Event()

    def listen() -> None:
        with Client(address, timeout=30) as c:
            stream = c.subscribe_commit(repo, "master", new=True)
            try:
                for info in stream:
                    got.put(info)
                    if stop.is_set():
                        return
            except BaseException as e:  # noqa: BLE001 - reported by the test
                got.put(e)
            finally:
                stream.close()

    listener = threading.Thread(target=listen)
    listener.start()
    try:
        made: list[str] = []
        first: CommitInfo | BaseException | None = None
        while first is None:  # the listener may connect after any of these
            made.append(client.put_file(repo, "master", "/f", b"y").commit.id)
            with contextlib.suppress(queue.Empty):
                first = got.get(timeout=0.5)
        assert isinstance(first, CommitInfo)
        assert first.commit.id in made and first.commit.id not in history
        stop.set()
        client.put_file(repo, "master", "/f", b"z")
    finally:
        stop.set()
        listener.join(30)
    assert not listener.is_alive()


def test_subscribe_errors_arrive_as_classes(client: Client) -> None:
    with pytest.raises(NotFound):
        next(client.subscribe_commit("nope", "master"))


def test_abandoned_subscriptions_do_not_exhaust_the_server(client: Client, repo: str) -> None:
    client.put_file(repo, "master", "/f", b"x")
    for _ in range(45):
        stream = client.subscribe_commit(repo, "master")
        assert next(stream).branch == "master"
        stream.close()  # the client goes away while the server waits for new commits
    with Client(client.address, timeout=10) as fresh:
        assert fresh.inspect_repo(repo).name == repo
        fresh.put_file(repo, "master", "/g", b"still serving")


# -- open commits over HTTP ----------------------------------------------------------------------
def test_branches_carry_their_creation_time(client: Client, address: str, repo: str) -> None:
    """``created`` in the branch answers (an additive field of the HTTP model): an RFC 3339
    time, the same in inspect and list, kept when the head moves."""
    before = datetime.now(UTC)
    client.create_branch(repo, "dev")
    after = datetime.now(UTC)
    made = client.inspect_branch(repo, "dev").created
    assert made is not None and before <= made <= after
    client.put_file(repo, "dev", "/a", b"a")  # moves the head
    [listed] = httpx.get(f"{address}/v1/repos/{repo}/branches").json()
    assert listed["head"] and datetime.fromisoformat(listed["created"]) == made


def test_commit_context_finishes_or_deletes(client: Client, repo: str) -> None:
    with client.commit(repo, "master", description="two files") as c:
        c.put_file("/a", b"a")
        c.put_file("/b", b"b")
        assert client.inspect_commit(repo, "master").finished is None
    assert c.info is not None and c.info.finished is not None and c.info.size_bytes == 2

    class Boom(Exception):
        pass

    with pytest.raises(Boom), client.commit(repo, "master") as c2:
        c2.put_file("/c", b"c")
        raise Boom
    assert client.inspect_commit(repo, "master").commit.id == c.id
    assert [f.path for f in client.list_file(repo, "master")] == ["/a", "/b"]


def test_diff_and_glob_over_http(client: Client, repo: str, tmp_path: Path) -> None:
    src = tmp_path / "local.txt"
    src.write_bytes(b"from disk")
    client.put_file(repo, "master", "/x/local.txt", src)
    client.put_file(repo, "master", "/x/other.txt", b"o")
    d = client.diff_file(repo, "master", "/")
    assert [f.path for f in d.new_files] == ["/x/other.txt"] and d.old_files == []
    assert [f.path for f in client.glob_file(repo, "master", "/x/*.txt")] == [
        "/x/local.txt",
        "/x/other.txt",
    ]
    assert client.get_file_bytes(repo, "master", "/x/local.txt") == b"from disk"


def test_get_file_with_or_without_directory_headers(client: Client, repo: str) -> None:
    client.put_file(repo, "master", "/d/a", b"A\n")
    client.put_header(repo, "master", "/d", b"<h>\n")
    client.put_header(repo, "master", "/d", b"<f>\n", part="footer")
    assert client.get_file_bytes(repo, "master", "/d/a") == b"<h>\nA\n<f>\n"
    assert client.get_file_bytes(repo, "master", "/d") == b"<h>\nA\n<f>\n"
    assert b"".join(client.get_file(repo, "master", "/d/a", headers=False)) == b"A\n"
    assert b"".join(client.get_file(repo, "master", "/d/a", offset=4, length=2)) == b"A\n"
    # a bad part is refused by the server before anything is stored
    head = client.inspect_branch(repo, "master").head
    with pytest.raises(InvalidArgument, match="shared"):
        client.put_files(repo, "master", [PutSource("/d", b"x", options={"shared": "middle"})])
    assert client.inspect_branch(repo, "master").head == head
