"""Hardening of tuskd's HTTP API: every bad request is a clear 4xx that changes nothing, browsers
cannot drive a loopback server, and the server's answers say what its schema says.

The server runs in a thread of the test process (a real socket) over SQLite and, where the
behaviour depends on the database, over PostgreSQL at ``TUSK_TEST_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/test``, trust authentication; each test gets a schema).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import psycopg
import pytest

from tusk.api.framing import DATA, END, FRAMES_MEDIA_TYPE, commit_frame, frame, header_frame
from tusk.client import Client
from tusk.errors import (
    BY_CODE,
    CorruptObject,
    InvalidName,
    NotFound,
    TuskError,
    Unauthenticated,
)
from tusk.runtime import Engine, Settings
from tusk.server.app import create_app
from tusk.storage.local import fanout_key
from tusk.testing.inprocess import serve_in_thread

POSTGRES_URL = os.environ.get("TUSK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
PASSWORD = "pw-" + uuid.uuid4().hex[:8]  # trust authentication accepts (and ignores) it
FRAMES = {"Content-Type": FRAMES_MEDIA_TYPE}
_get = functools.partial(httpx.get, timeout=60)  # generous: the machine may be busy
_post = functools.partial(httpx.post, timeout=60)


def _postgres_url(schema: str) -> str:
    """``POSTGRES_URL`` with a password and ``schema`` as the search path."""
    scheme, _, rest = POSTGRES_URL.partition("://")
    creds, at, host = rest.rpartition("@")
    url = f"{scheme}://{creds.split(':')[0]}:{PASSWORD}@{host}" if at else POSTGRES_URL
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Engine]]:
    """(address, engine) of a served engine on each metadata backend."""
    home = tmp_path_factory.mktemp(f"tusk-{request.param}")
    if request.param == "sqlite":
        engine = Engine(Settings.for_home(home))
        with serve_in_thread(engine) as address:
            yield address, engine
        engine.close()
        return
    schema = "tusk_hard_" + uuid.uuid4().hex[:12]
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            engine = Engine(Settings.for_home(home, metadata_url=_postgres_url(schema)))
            try:
                with serve_in_thread(engine) as address:
                    yield address, engine
            finally:
                engine.close()
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine]]:
    engine = Engine(Settings.for_home(tmp_path_factory.mktemp("tusk-hard")))
    try:
        with serve_in_thread(engine) as address:
            yield address, engine
    finally:
        engine.close()


@pytest.fixture
def address(served: tuple[str, Engine]) -> str:
    return served[0]


def _repo(address: str, prefix: str = "r") -> str:
    name = prefix + uuid.uuid4().hex[:10]
    with Client(address) as c:
        c.create_repo(name)
    return name


def _error(resp: httpx.Response, status: int, code: str = "invalid") -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    err: dict[str, Any] = resp.json()["error"]
    assert err["code"] == code, err
    assert err["message"]
    return err


def _put(address: str, repo: str, *frames: bytes, **kw: Any) -> httpx.Response:
    headers = kw.pop("headers", FRAMES)
    return _post(
        f"{address}/v1/repos/{repo}/put",
        params={"ref": "master"},
        content=b"".join(frames),
        headers=headers,
        **kw,
    )


def _commits(address: str, repo: str) -> list[Any]:
    resp = _get(f"{address}/v1/repos/{repo}/commits")
    assert resp.status_code == 200, resp.text
    commits: list[Any] = resp.json()
    return commits


# -- numbers in queries --------------------------------------------------------------------------
@pytest.mark.parametrize("wait", ["nan", "inf", "-inf", "-1", "1e300"])
def test_logs_wait_must_be_a_finite_bounded_number(address: str, wait: str) -> None:
    resp = _get(f"{address}/v1/logs", params={"wait": wait})
    err = _error(resp, 400)
    assert "wait" in err["message"]


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/v1/logs", {"after": "-1"}),
        ("/v1/logs", {"after": "1e400"}),
        ("/v1/repos/{repo}/commits", {"number": "-1"}),
        ("/v1/repos/{repo}/commits", {"number": str(1 << 70)}),
        ("/v1/repos/{repo}/file", {"ref": "master", "path": "/f", "offset": "-1"}),
        ("/v1/repos/{repo}/file", {"ref": "master", "path": "/f", "length": "-2"}),
    ],
)
def test_negative_or_huge_numbers_in_queries_are_400(
    backend: tuple[str, Engine], url: str, params: dict[str, str]
) -> None:
    address = backend[0]
    repo = _repo(address)
    with Client(address) as c:
        c.put_file(repo, "master", "/f", b"0123456789")
    resp = _get(address + url.format(repo=repo), params=params)
    name = next(iter(k for k in params if k not in ("ref", "path")))
    assert name in _error(resp, 400)["message"]


# -- the put stream --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("frames", "problem"),
    [
        ([frame(b"H", b"{not json"), frame(END), commit_frame()], "header"),
        ([frame(b"H", b'["/f"]'), frame(END), commit_frame()], "header"),
        ([frame(b"H", b'{"overwrite": true}'), frame(END), commit_frame()], "path"),
        (
            [header_frame("/f", split="line", target_datums="abc"), frame(END), commit_frame()],
            "target_datums",
        ),
        ([header_frame("/f", target_bytes=-5, split="line"), frame(END), commit_frame()], "target"),
        ([frame(DATA, b"orphan"), header_frame("/f"), frame(END), commit_frame()], "before"),
        ([frame(END), commit_frame()], "before"),
        ([header_frame("/f"), frame(DATA, b"x"), commit_frame()], "end"),
        ([header_frame("/f"), header_frame("/g"), frame(END), commit_frame()], "end"),
        ([header_frame("/f"), frame(END), frame(b"Z", b"[1]")], "commit"),
        ([header_frame("/f"), frame(END), commit_frame(), header_frame("/g")], "after"),
    ],
)
def test_malformed_put_streams_are_400_and_store_nothing(
    address: str, frames: list[bytes], problem: str
) -> None:
    repo = _repo(address)
    err = _error(_put(address, repo, *frames), 400)
    assert problem in err["message"]
    assert _commits(address, repo) == []


def test_escaped_local_path_key_is_still_refused_to_other_peers(tmp_path: Path) -> None:
    """``"local\\u005fpath"`` is the same JSON key as ``"local_path"``: the server decides on the
    parsed header, not on its bytes."""
    secret = tmp_path / "secret"
    secret.write_bytes(b"the server's private file")
    engine = Engine(Settings.for_home(tmp_path / "home"))
    header = b'{"path": "/stolen", "local\\u005fpath": ' + json.dumps(str(secret)).encode() + b"}"
    assert json.loads(header)["local_path"] == str(secret)

    async def attempt() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(engine), client=("10.0.0.7", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            await c.post("/v1/repos", json={"name": "loot"})
            body = frame(b"H", header) + frame(END) + commit_frame()
            resp = await c.post("/v1/repos/loot/put?ref=master", content=body, headers=FRAMES)
            return resp, await c.get("/v1/repos/loot/commits")

    try:
        put, commits = anyio.run(attempt)
    finally:
        engine.close()
    assert "own user on its own machine" in _error(put, 400)["message"]
    assert commits.json() == []


# -- browsers: Origin, Host, content types ----------------------------------------------------------
def test_cross_site_post_from_a_browser_is_refused(address: str) -> None:
    name = "x" + uuid.uuid4().hex[:10]
    resp = _post(
        f"{address}/v1/repos",
        content=json.dumps({"name": name}),
        headers={"Origin": "https://evil.example", "Content-Type": "text/plain"},
    )
    assert "evil.example" in _error(resp, 403, "forbidden")["message"]
    with Client(address) as c, pytest.raises(NotFound):
        c.inspect_repo(name)


def test_text_plain_put_is_refused_even_without_an_origin(address: str) -> None:
    repo = _repo(address)
    body = [header_frame("/f"), frame(DATA, b"x"), frame(END), commit_frame()]
    resp = _put(address, repo, *body, headers={"Content-Type": "text/plain"})
    assert FRAMES_MEDIA_TYPE in _error(resp, 415)["message"]
    resp = _put(address, repo, *body, headers={})
    _error(resp, 415)
    assert _commits(address, repo) == []


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", None])
def test_json_bodies_need_a_json_content_type(address: str, ctype: str | None) -> None:
    name = "j" + uuid.uuid4().hex[:10]
    headers = {"Content-Type": ctype} if ctype else {}
    resp = _post(f"{address}/v1/repos", content=json.dumps({"name": name}), headers=headers)
    assert "application/json" in _error(resp, 415)["message"]
    assert _get(f"{address}/v1/repos/{name}").status_code == 404


def test_a_foreign_host_name_is_refused_dns_rebinding(address: str) -> None:
    port = httpx.URL(address).port
    resp = _get(f"{address}/v1/repos", headers={"Host": f"rebound.example:{port}"})
    assert "rebound.example" in _error(resp, 403, "forbidden")["message"]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "localhost"):
        assert _get(f"{address}/v1/repos", headers={"Host": host}).status_code == 200


def test_same_origin_and_tusk_clients_keep_working(address: str) -> None:
    port = httpx.URL(address).port
    resp = _get(f"{address}/v1/repos", headers={"Origin": f"http://127.0.0.1:{port}"})
    assert resp.status_code == 200
    repo = _repo(address)
    with Client(address) as c:
        c.put_file(repo, "master", "/f", b"hello")
        assert c.get_file_bytes(repo, "master", "/f") == b"hello"


def test_configured_host_names_are_accepted(tmp_path: Path) -> None:
    settings = Settings.for_home(tmp_path, allowed_hosts=("tusk.internal",))
    engine = Engine(settings)
    try:
        with serve_in_thread(engine) as address:
            ok = _get(f"{address}/v1/repos", headers={"Host": "tusk.internal:30650"})
            assert ok.status_code == 200
            _error(_get(f"{address}/v1/repos", headers={"Host": "other"}), 403, "forbidden")
    finally:
        engine.close()


# -- names and paths ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["abc\n", "a" * 64, "", "a b"])
def test_bad_repo_and_branch_names_are_400_on_every_backend(
    backend: tuple[str, Engine], name: str
) -> None:
    address = backend[0]
    resp = _post(f"{address}/v1/repos", json={"name": name})
    _error(resp, 400, "invalid_name")
    repo = _repo(address)
    resp = _post(f"{address}/v1/repos/{repo}/branches", json={"name": name})
    _error(resp, 400, "invalid_name")
    if name != name.strip():
        return  # a commit reference is read without surrounding spaces: "abc\n" is "abc"
    body = [header_frame("/f"), frame(DATA, b"x"), frame(END), commit_frame()]
    resp = _post(
        f"{address}/v1/repos/{repo}/put",
        params={"ref": name},
        content=b"".join(body),
        headers=FRAMES,
    )
    assert resp.status_code == 400, resp.text
    assert _commits(address, repo) == []


def test_names_up_to_the_limit_work_on_every_backend(backend: tuple[str, Engine]) -> None:
    address = backend[0]
    name = "n" + uuid.uuid4().hex + "-" * 30  # 63 characters
    assert len(name) == 63
    with Client(address) as c:
        c.create_repo(name)
        c.put_file(name, name[:40] + "x" * 23, "/f", b"x")
        assert [b.branch.name for b in c.list_branch(name)] == [name[:40] + "x" * 23]


def test_a_2000_level_path_is_400(address: str) -> None:
    repo = _repo(address)
    deep = "/d" * 2000
    body = [header_frame(deep), frame(DATA, b"x"), frame(END), commit_frame()]
    assert "deep" in _error(_put(address, repo, *body), 400, "invalid_path")["message"]
    for url in ("file", "files", "inspect-file", "walk"):
        resp = _get(f"{address}/v1/repos/{repo}/{url}", params={"ref": "master", "path": deep})
        assert resp.status_code in (400, 404), resp.text
    resp = _get(f"{address}/v1/repos/{repo}/glob", params={"ref": "master", "pattern": deep})
    assert resp.status_code in (400, 404), resp.text


# -- PostgreSQL: concurrent first puts -------------------------------------------------------------
def test_simultaneous_first_puts_to_a_new_branch_all_succeed(backend: tuple[str, Engine]) -> None:
    address = backend[0]
    repo = _repo(address)
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def put(i: int) -> None:
        try:
            with Client(address, timeout=60) as c:
                start.wait()
                c.put_file(repo, "fresh", f"/f{i}", b"x")
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=put, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    with Client(address) as c:
        files = {f.path for f in c.list_file(repo, "fresh", "/")}
        assert files == {f"/f{i}" for i in range(8)}
        assert len(c.list_commit(repo, "fresh")) == 8


# -- info, auth -------------------------------------------------------------------------------------
def test_info_does_not_show_the_database_password(backend: tuple[str, Engine]) -> None:
    address, engine = backend
    resp = _get(f"{address}/v1/info")
    assert resp.status_code == 200
    assert PASSWORD not in resp.text
    if engine.settings.metadata_url.startswith("postgresql"):
        assert PASSWORD in engine.settings.metadata_url
        assert ":***@" in resp.json()["metadata_url"]


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    engine = Engine(Settings.for_home(tmp_path_factory.mktemp("tusk-auth"), auth_token="s3cret"))
    try:
        with serve_in_thread(engine) as address:
            yield address
    finally:
        engine.close()


def test_a_wrong_token_is_an_authentication_error(guarded: str) -> None:
    resp = _get(f"{guarded}/v1/repos", headers={"Authorization": "Bearer nope"})
    _error(resp, 401, "unauthenticated")
    with Client(guarded, token="nope") as c, pytest.raises(Unauthenticated):
        c.list_repo()
    with Client(guarded, token="s3cret") as c:
        assert c.list_repo() == []
    others = {cls.exit_code for cls in BY_CODE.values() if cls is not Unauthenticated}
    assert Unauthenticated.exit_code not in others


def test_with_a_token_any_host_name_is_served_but_other_sites_are_not(guarded: str) -> None:
    """A deployment is reached by its service name; a rebound page has no token anyway."""
    token = {"Authorization": "Bearer s3cret"}
    resp = _get(f"{guarded}/v1/repos", headers={**token, "Host": "tuskd.tusk.svc:30650"})
    assert resp.status_code == 200
    resp = _get(f"{guarded}/v1/repos", headers={**token, "Origin": "https://evil.example"})
    _error(resp, 403, "forbidden")


def test_a_non_ascii_auth_header_is_401_not_500(guarded: str) -> None:
    for value in (b"Bearer \xff\xfe", "Bearer s3crét".encode("latin-1")):
        resp = _get(f"{guarded}/v1/repos", headers=[(b"Authorization", value)])
        _error(resp, 401, "unauthenticated")


# -- list-job arguments ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params", [{"input": ""}, {"input": "repo"}, {"input": "/master"}, {"output": "abc"}]
)
def test_list_job_with_a_malformed_commit_is_400(address: str, params: dict[str, str]) -> None:
    resp = _get(f"{address}/v1/jobs", params=params)
    assert "repo/commit" in _error(resp, 400)["message"]


# -- the OpenAPI schema tells the truth -------------------------------------------------------------
def test_openapi_documents_tusk_errors_not_422(address: str) -> None:
    doc = _get(f"{address}/openapi.json").json()
    assert "422" not in json.dumps(doc["paths"])
    create = doc["paths"]["/v1/repos"]["post"]["responses"]
    for status in ("400", "404", "409"):
        ref = create[status]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/ErrorBody")
    error = doc["components"]["schemas"]["ErrorBody"]
    assert error["required"] == ["error"]
    # A validation error is answered exactly as documented: 400 with tusk's error body.
    resp = _post(f"{address}/v1/repos", json={"name": 3})
    assert set(_error(resp, 400)) == {"code", "message", "hint", "fields"}


# -- corrupt tree objects ------------------------------------------------------------------------------
def test_a_corrupt_tree_object_is_a_typed_logged_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings.for_home(tmp_path)
    engine = Engine(settings)
    try:
        engine.repos.create("data")
        batch = engine.files.open_put("data", "master")
        batch.begin_file("/dir/f")
        batch.write(b"x")
        batch.end_file()
        key = batch.commit().commit
        with engine.meta.transaction(write=False) as tx:
            row = tx.get_commit("data", key.id)
            assert row is not None and row.tree
            root = row.tree
    finally:
        engine.close()
    obj = tmp_path / "objects" / "objects" / fanout_key(root)
    assert obj.is_file()
    for garbage in (b"{not json", b'{"e": [{"n": "dir"}]}', b"[]"):
        obj.chmod(0o600)
        obj.write_bytes(garbage)
        engine = Engine(settings)
        try:
            with (
                caplog.at_level(logging.ERROR, logger="tusk"),
                pytest.raises(CorruptObject) as raised,
            ):
                engine.files.walk("data", "master", "/")
            assert root in str(raised.value)
            assert any(root in r.getMessage() for r in caplog.records)
            caplog.clear()
            with serve_in_thread(engine) as address:
                resp = _get(f"{address}/v1/repos/data/files", params={"ref": "master"})
                _error(resp, 500, "corrupt")
        finally:
            engine.close()
    assert issubclass(CorruptObject, TuskError)
    assert not issubclass(CorruptObject, InvalidName)
