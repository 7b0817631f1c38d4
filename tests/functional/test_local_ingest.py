"""The local ingest fast path: same machine, same user -> the server reads big files itself."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tusk.api.framing import END, FRAMES_MEDIA_TYPE, commit_frame, frame, header_frame
from tusk.api.host import peer_uid, same_user_local_peer
from tusk.client import Client, PutSource
from tusk.client.pfs import LOCAL_INGEST_MIN
from tusk.errors import InvalidArgument
from tusk.runtime import Engine
from tusk.testing.inprocess import serve_in_thread


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine]]:
    engine = Engine(tmp_path_factory.mktemp("tusk-local"))
    try:
        with serve_in_thread(engine) as address:
            yield address, engine
    finally:
        engine.close()


def test_peer_uid_of_a_loopback_connection_is_our_uid() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname()) as client:
            conn, addr = listener.accept()
            with conn:
                assert peer_uid(*addr) == os.getuid()
                assert same_user_local_peer(*addr)
                assert client.getsockname()[1] == addr[1]
    assert not same_user_local_peer("10.1.2.3", 4000)
    assert not same_user_local_peer(None, None)


def test_big_local_file_is_read_by_the_server(served: tuple[str, Engine], tmp_path: Path) -> None:
    address, engine = served
    big = tmp_path / "big.bin"
    payload = os.urandom(LOCAL_INGEST_MIN + 12345)
    big.write_bytes(payload)
    sent: list[int] = []
    with Client(address) as c:
        c.create_repo("local")
        assert c.pfs.server_is_local()
        src = PutSource("/big.bin", big)
        c.put_files("local", "master", [src], on_bytes=sent.append)
        assert c.get_file_bytes("local", "master", "/big.bin") == payload
    # The bytes were not streamed: one progress report of the whole size, from the hand-over.
    assert sent == [len(payload)]
    node = engine.files.inspect("local", "master", "/big.bin")
    assert node.size_bytes == len(payload)


def test_a_missing_local_file_stores_nothing(served: tuple[str, Engine], tmp_path: Path) -> None:
    address, _engine = served
    body = (
        header_frame("/x", overwrite=False, local_path=str(tmp_path / "gone"), size=1)
        + frame(END)
        + commit_frame("")
    )
    with Client(address) as c:
        c.create_repo("gone")
        resp = httpx.post(
            f"{address}/v1/repos/gone/put",
            params={"ref": "master"},
            content=body,
            headers={"Content-Type": FRAMES_MEDIA_TYPE},
        )
        assert resp.status_code == 422
        assert "gone" in resp.json()["error"]["message"]
        assert c.list_commit("gone") == []


def test_local_ingest_is_refused_for_other_peers() -> None:
    from starlette.requests import Request

    from tusk.server.pfs_routes import _check_local_ingest

    scope = {"type": "http", "client": ("10.0.0.7", 5555), "headers": []}
    with pytest.raises(InvalidArgument, match="own user on its own machine"):
        _check_local_ingest(Request(scope))
