"""Secrets, err_cmd and egress through the real CLI against a real tuskd whose datums run in a
real sandbox (bubblewrap, the tiny test image): ``create-secret`` (and pachctl 2.x's ``create
secret``), list/inspect/delete, a datum reading its secret from the environment and from a
mounted file, and no value in get-logs, --raw output, the spec repo, the database or tuskd's log.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tusk import testing
from tusk.testing import Tuskd
from tusk.testing.images import build_tiny_image

from .conftest import Tusk, raw_objects, rows, run
from .test_cli_pps import fails, ok

VALUE = "pa55-7d3e91c4"


@pytest.fixture(scope="module")
def sandboxed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuskd]:
    """A tuskd running datums under bubblewrap, allowed to egress under one directory."""
    home = tmp_path_factory.mktemp("tusk-secrets") / "home"
    egress = home.parent / "egress"
    egress.mkdir()
    with Tuskd(home, {"TUSK_RUNTIME": "bwrap", "TUSK_EGRESS_DIRS": str(egress)}) as server:
        yield server


@pytest.fixture
def tusk(sandboxed: Tuskd) -> Tusk:
    def call(*args: str, **kw: Any) -> tuple[int, Any, str]:
        return run(*args, env=sandboxed.env, **kw)

    return call


def jobs_done(tusk: Tusk, pipeline: str, count: int = 1) -> list[dict[str, Any]]:
    def done() -> list[dict[str, Any]] | None:
        js = raw_objects(ok(tusk("list-job", "-p", pipeline, "--raw")))
        finished = [j for j in js if j["state"] in ("success", "failure", "killed")]
        return js if len(finished) >= count else None

    result: list[dict[str, Any]] = testing.wait_for(f"jobs of {pipeline}", done, 120, interval=0.2)
    return result


def test_secret_commands_and_a_sandboxed_datum_reading_its_secret(
    tusk: Tusk, sandboxed: Tuskd, tmp_path: Path
) -> None:
    image = build_tiny_image()
    secret = tmp_path / "db.json"
    secret.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "db-creds"},
                "type": "Opaque",
                "data": {"password": base64.b64encode(VALUE.encode()).decode()},
                "stringData": {"user": "admin"},
            }
        )
    )
    # pachctl 2.x's spelling, then 1.7-style hyphenated names for the rest
    assert ok(tusk("create", "secret", "-f", str(secret))) == ""
    fails(tusk("create-secret", "-f", str(secret)), 4, "secret db-creds already exists")
    table = rows(ok(tusk("list-secret")))
    assert table[0] == ["NAME", "TYPE", "CREATED"]
    assert [r[:2] for r in table[1:]] == [["db-creds", "Opaque"]]
    inspected = ok(tusk("inspect", "secret", "db-creds"))
    assert "Name: db-creds\nType: Opaque\n" in inspected and "Keys: password, user\n" in inspected
    raw = raw_objects(ok(tusk("inspect-secret", "db-creds", "--raw")))
    assert raw[0]["keys"] == ["password", "user"]

    ok(tusk("create-repo", "sec-in"))
    ok(tusk("put-file", "sec-in", "master", "/x", input="1\n"))
    script = (
        'printf %s "$DB_PASSWORD" > /pfs/out/env; cat /var/run/db/password > /pfs/out/file; '
        "echo read the secret"
    )
    spec = {
        "pipeline": {"name": "sec-read"},
        "transform": {
            "image": image,
            "cmd": ["sh", "-c", script],
            "secrets": [
                {"name": "db-creds", "env_var": "DB_PASSWORD", "key": "password"},
                {"name": "db-creds", "mount_path": "/var/run/db"},
            ],
        },
        "input": {"pfs": {"repo": "sec-in", "glob": "/"}},
    }
    ok(tusk("create-pipeline", "-f", "-", input=json.dumps(spec)))
    (job,) = jobs_done(tusk, "sec-read")
    assert job["state"] == "success", job["reason"]
    assert ok(tusk("get-file", "sec-read", "master", "/env")) == VALUE
    assert ok(tusk("get-file", "sec-read", "master", "/file")) == VALUE

    logs = ok(tusk("get-logs", "-p", "sec-read"))
    assert "read the secret" in logs
    shown = [
        logs,
        ok(tusk("get-logs", "-p", "sec-read", "--master")),
        ok(tusk("inspect-job", job["id"], "--raw")),
        ok(tusk("inspect-job", job["id"])),
        ok(tusk("inspect-pipeline", "sec-read", "--raw")),
        ok(tusk("extract-pipeline", "sec-read")),
        ok(tusk("list-datum", job["id"], "--raw")),
        ok(tusk("get-file", "__spec__", "sec-read", "/spec")),
        ok(tusk("list-secret", "--raw")),
    ]
    for text in shown:
        assert VALUE not in text
    assert "db-creds" in shown[4]  # the spec names the secret, never its value
    home = sandboxed.home
    assert VALUE.encode() not in (home / "tusk.db").read_bytes()
    assert VALUE.encode() not in sandboxed.log.read_bytes()

    # a pipeline naming a secret that is not there: 404, naming it and the fix
    spec["pipeline"] = {"name": "sec-missing"}
    spec["transform"]["secrets"] = [{"name": "nope", "env_var": "X", "key": "k"}]
    err = fails(
        tusk("create-pipeline", "-f", "-", input=json.dumps(spec)), 3, "secret nope not found"
    )
    assert "create-secret" in err

    ok(tusk("delete-pipeline", "sec-read"))
    assert ok(tusk("delete", "secret", "db-creds")) == ""
    assert rows(ok(tusk("list-secret"))) == [["NAME", "TYPE", "CREATED"]]
    fails(tusk("inspect-secret", "db-creds"), 3, "secret db-creds not found")


def test_err_cmd_and_egress_through_the_cli(tusk: Tusk, sandboxed: Tuskd) -> None:
    image = build_tiny_image()
    target = sandboxed.home.parent / "egress" / "words"
    ok(tusk("create-repo", "eg-in"))
    ok(tusk("put-file", "eg-in", "master", "/good", input="apple\n"))
    ok(tusk("put-file", "eg-in", "master", "/bad", input="bad\n"))
    spec = {
        "pipeline": {"name": "eg-words"},
        "transform": {
            "image": image,
            "cmd": ["sh", "-c", "grep -v bad /pfs/in/* > /pfs/out/$(ls /pfs/in)"],
            "err_cmd": ["sh", "-c", "echo giving up on $(ls /pfs/in); true"],
        },
        "input": {"pfs": {"repo": "eg-in", "glob": "/*", "name": "in"}},
        "egress": {"URL": f"file://{target}"},
        "datum_tries": 1,
    }
    ok(tusk("create-pipeline", "-f", "-", input=json.dumps(spec)))
    (job,) = jobs_done(tusk, "eg-words")
    assert job["state"] == "success", job["reason"]
    assert (job["processed"], job["recovered"], job["total"]) == (1, 1, 2)
    listed = ok(tusk("list-job", "-p", "eg-words"))
    assert "1 + 0 / 2 (1 recovered)" in listed
    assert "Recovered: 1\n" in ok(tusk("inspect-job", job["id"]))
    datums = rows(ok(tusk("list-datum", job["id"])))
    assert sorted(r[1] for r in datums[1:]) == ["recovered", "success"]
    assert "giving up on bad" in ok(tusk("get-logs", "-p", "eg-words"))
    # egress copied the output commit: only the good datum's file
    assert sorted(p.name for p in target.iterdir()) == ["good"]
    assert (target / "good").read_text() == "apple\n"
