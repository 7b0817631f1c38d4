"""Listings as JSON lines and the CLI's plain reader, against the FastAPI app served by uvicorn on
a free port in a thread of the test process (over an Engine on a temporary home)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from tusk.client import Client, PutSource
from tusk.client.plain import PlainReader, is_up
from tusk.client.plain import _value as plain_value
from tusk.errors import InvalidArgument, InvalidPath, NotFound, ServerUnavailable
from tusk.pfs.files import node_dict, node_info
from tusk.pfs.tree import Node
from tusk.runtime import Engine
from tusk.server import ndjson
from tusk.testing.inprocess import serve_in_thread

FILES = 2_500  # more than one batch of lines (ndjson.BATCH_LINES) and many pages of a directory


@pytest.fixture(scope="module")
def address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    engine = Engine(tmp_path_factory.mktemp("tusk-stream"))
    try:
        with serve_in_thread(engine) as address:
            yield address
    finally:
        engine.close()


@pytest.fixture(scope="module")
def big(address: str) -> str:
    """A repo whose master has FILES files under /d and two more at the root."""
    with Client(address, timeout=120) as c:
        c.create_repo("big")
        sources = [PutSource(f"/d/f{i:05d}", f"{i}\n".encode()) for i in range(FILES)]
        sources += [PutSource("/a.txt", b"a"), PutSource("/z.txt", b"zz")]
        c.put_files("big", "master", sources)
    return "big"


@pytest.fixture
def reader(address: str) -> Iterator[PlainReader]:
    r = PlainReader(address, timeout=60)
    yield r
    r.close()


def _lines(address: str, route: str, /, **params: str) -> tuple[httpx.Response, list[object]]:
    with httpx.stream(
        "GET",
        f"{address}/v1{route}",
        params=params,
        headers={"Accept": "application/x-ndjson"},
        timeout=60,
    ) as resp:
        chunks = list(resp.iter_bytes())
    body = b"".join(chunks)
    return resp, [json.loads(line) for line in body.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("route", "params"),
    [
        ("/repos/big/files", {"ref": "master", "path": "/d"}),
        ("/repos/big/files", {"ref": "master", "path": "/"}),
        ("/repos/big/files", {"ref": "master", "path": "/d/f0000*"}),
        ("/repos/big/glob", {"ref": "master", "pattern": "/d/f01*"}),
        ("/repos/big/walk", {"ref": "master", "path": "/"}),
    ],
)
def test_json_lines_hold_what_the_json_array_holds(
    address: str, big: str, route: str, params: dict[str, str]
) -> None:
    whole = httpx.get(f"{address}/v1{route}", params=params, timeout=60)
    assert whole.status_code == 200 and whole.headers["content-type"] == "application/json"
    resp, values = _lines(address, route, **params)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/x-ndjson"
    assert values == whole.json()
    assert len(values) > 0


def test_a_directory_of_thousands_arrives_in_several_writes(address: str, big: str) -> None:
    resp, values = _lines(address, "/repos/big/files", ref="master", path="/d")
    assert [v["path"] for v in values] == [f"/d/f{i:05d}" for i in range(FILES)]  # type: ignore[index]
    with httpx.stream(
        "GET",
        f"{address}/v1/repos/big/files",
        params={"ref": "master", "path": "/d"},
        headers={"Accept": "application/x-ndjson"},
        timeout=60,
    ) as streamed:
        writes = list(streamed.iter_raw())
    # batches of BATCH_LINES lines: the server never held the listing as one body
    assert len(writes) >= FILES // ndjson.BATCH_LINES


@pytest.mark.parametrize(
    ("route", "params", "status", "code"),
    [
        ("/repos/big/files", {"ref": "master", "path": "/nope"}, 404, "not_found"),
        ("/repos/nope/files", {"ref": "master"}, 404, "not_found"),
        ("/repos/big/files", {"ref": "nobranch"}, 404, "not_found"),
        ("/repos/big/glob", {"ref": "master", "pattern": "/d/[f"}, 400, "invalid"),
        ("/repos/big/walk", {"ref": "master", "path": "/nope"}, 404, "not_found"),
        ("/repos/big/files", {"ref": "master", "path": "/a.txt/x"}, 404, "not_found"),
    ],
)
def test_a_bad_listing_is_an_error_answer_not_a_stream(
    address: str, big: str, route: str, params: dict[str, str], status: int, code: str
) -> None:
    resp = httpx.get(
        f"{address}/v1{route}",
        params=params,
        headers={"Accept": "application/x-ndjson"},
        timeout=60,
    )
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"].startswith(code)


def test_a_failure_after_the_answer_began_ends_the_stream_with_an_error_line() -> None:
    def nodes() -> Iterator[Node]:
        for i in range(ndjson.BATCH_LINES + 5):
            yield Node(path=f"/f{i}", kind="file", size=1, hash="h")
        raise InvalidPath("the tree went away", hint="run it again")

    text = b"".join(ndjson._lines(nodes(), node_dict)).decode()
    lines = text.splitlines()
    assert len(lines) == ndjson.BATCH_LINES + 6
    last = json.loads(lines[-1])
    assert last["error"]["code"] == "invalid_path"
    assert last["error"]["message"] == "the tree went away"
    with pytest.raises(InvalidPath, match="the tree went away"):
        for line in lines:
            plain_value(line.encode())


def test_node_dict_is_the_json_of_node_info() -> None:
    for node in (
        Node(path="/x/y", kind="file", size=12, hash="abc"),
        Node(path="/x", kind="dir", size=40, hash="d1", file_count=7, id="d1"),
    ):
        assert node_dict(node) == node_info(node).model_dump(mode="json")


# -- the plain reader ------------------------------------------------------------------------
def test_reader_answers_what_the_typed_client_answers(
    address: str, big: str, reader: PlainReader
) -> None:
    with Client(address, timeout=60) as c:
        assert reader.get("/repos") == [r.model_dump(mode="json") for r in c.list_repo()]
        typed = c.inspect_commit("big", "master").model_dump(mode="json")
        assert reader.get("/repos/big/commit", ref="master") == typed
        files = [f.model_dump(mode="json") for f in c.list_file("big", "master", "/d")]
        assert list(reader.lines("/repos/big/files", ref="master", path="/d")) == files
        assert b"".join(reader.blocks("/repos/big/file", ref="master", path="/z.txt")) == b"zz"
        # the connection is reused after a whole stream, and after a whole body
        assert reader.get("/repos/big")["name"] == "big"


def test_reader_raises_the_typed_errors(address: str, big: str, reader: PlainReader) -> None:
    with pytest.raises(NotFound) as err:
        reader.get("/repos/nope")
    with Client(address, timeout=60) as c, pytest.raises(NotFound) as typed:
        c.inspect_repo("nope")
    assert (err.value.message, err.value.hint) == (typed.value.message, typed.value.hint)
    with pytest.raises(NotFound):
        list(reader.lines("/repos/big/files", ref="master", path="/nope"))
    with pytest.raises(InvalidArgument):
        list(reader.lines("/repos/big/glob", ref="master", pattern="/d/[f"))
    with pytest.raises(NotFound):
        next(reader.blocks("/repos/big/file", ref="master", path="/nope"))
    # after errors the reader still works
    assert reader.get("/repos/big")["name"] == "big"


def test_reader_stops_half_way_and_goes_on(address: str, big: str, reader: PlainReader) -> None:
    it = reader.lines("/repos/big/files", ref="master", path="/d")
    assert next(it)["path"] == "/d/f00000"
    it.close()  # the rest is never read: the connection is dropped, the next request reconnects
    assert reader.get("/repos/big")["name"] == "big"


def test_reader_names_an_address_without_a_server() -> None:
    # a port that was free a moment ago: nothing listens there
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"http://127.0.0.1:{port}"
    assert not is_up(address)
    with pytest.raises(ServerUnavailable, match=f"no tusk server answers at {address}"):
        PlainReader(address).get("/repos")


def test_reader_reports_a_server_that_drops_the_connection() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    def hang_up() -> None:  # a fresh connection is not retried: one accept
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.close()

    t = threading.Thread(target=hang_up, daemon=True)
    t.start()
    try:
        with pytest.raises(ServerUnavailable, match="lost the connection to the tusk server"):
            PlainReader(f"http://127.0.0.1:{port}").get("/repos")
    finally:
        t.join(10)
        listener.close()


def test_is_up_sees_the_server(address: str) -> None:
    assert is_up(address)


def test_reader_asks_its_hook_once_when_the_first_connection_is_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    calls: list[int] = []

    def refuse() -> None:
        calls.append(1)
        raise ServerUnavailable("no local server could start", hint="see the log")

    with pytest.raises(ServerUnavailable, match="no local server could start"):
        PlainReader(f"http://127.0.0.1:{port}", when_refused=refuse).get("/repos")
    assert calls == [1]

    def nothing() -> None:
        calls.append(2)

    quiet = PlainReader(f"http://127.0.0.1:{port}", when_refused=nothing)
    with pytest.raises(ServerUnavailable, match="no tusk server answers"):
        quiet.get("/repos")  # the hook did not help: the second refusal is the error
    with pytest.raises(ServerUnavailable, match="no tusk server answers"):
        quiet.get("/repos")
    assert calls == [1, 2]
