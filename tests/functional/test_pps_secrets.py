"""Secrets through the service and the HTTP API: created from Kubernetes Secret manifests,
listed and inspected without their values, checked when a pipeline names them, and read by
datums from the environment; the values live in the server's secret files and nowhere else."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Pps, atom

from tusk.client import Client
from tusk.client.inprocess import InProcessTransport
from tusk.errors import AlreadyExists, InvalidArgument, InvalidSpec, NotFound
from tusk.pfs.context import SPEC_REPO
from tusk.server.app import create_app

VALUE = "hunter2-0a8f5c"  # the secret value; no answer, record, log or spec may hold it


def manifest(name: str = "db", **data: str) -> str:
    values = data or {"password": VALUE}
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name},
            "type": "Opaque",
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()},
        }
    )


@pytest.fixture
def client(pps: Pps) -> Iterator[Client]:
    with Client(
        "http://127.0.0.1:30650", transport=InProcessTransport(create_app(pps.engine))
    ) as c:
        yield c


def everything_stored(home: Path) -> bytes:
    """Every byte of the server's home except the secret files (the database, objects, logs)."""
    out = b""
    for path in sorted(home.rglob("*")):
        if path.is_file() and "secrets" not in path.relative_to(home).parts:
            out += path.read_bytes()
    return out


def test_create_list_inspect_delete_over_http_never_answer_values(pps: Pps, client: Client) -> None:
    created = client.create_secret(manifest("db", password=VALUE, user="admin"))
    assert (created.name, created.type, created.keys) == ("db", "Opaque", ["password", "user"])
    yaml_text = (
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: api\nstringData:\n  token: {VALUE}\n"
    )
    client.create_secret(yaml_text, source="api.yaml")
    assert [(s.name, s.type) for s in client.list_secret()] == [("api", "Opaque"), ("db", "Opaque")]
    info = client.inspect_secret("api")
    assert info.keys == ["token"] and info.created > 0
    for answer in (created, info, *client.list_secret()):
        assert VALUE not in answer.model_dump_json()

    with pytest.raises(AlreadyExists) as exists:
        client.create_secret(manifest("db"))
    assert "secret db already exists" in exists.value.message

    client.delete_secret("db")
    assert [s.name for s in client.list_secret()] == ["api"]
    with pytest.raises(NotFound) as gone:
        client.inspect_secret("db")
    assert "secret db not found" in gone.value.message and "create-secret" in (
        gone.value.hint or ""
    )
    with pytest.raises(NotFound):
        client.delete_secret("db")


def test_values_live_only_in_the_servers_secret_files(pps: Pps, client: Client) -> None:
    client.create_secret(manifest("db"))
    directory = pps.home / "secrets"
    (file,) = directory.iterdir()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert pps.engine.secrets.values("db") == {"password": VALUE.encode()}
    assert VALUE.encode() not in everything_stored(pps.home)
    assert base64.b64encode(VALUE.encode()) not in everything_stored(pps.home)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "not valid JSON (line 1, column 2)"),
        (f"metadata: {{name: x}}\ndata: {{k: [{VALUE}}}\n", "not valid JSON or YAML"),
        (
            json.dumps({"metadata": {"name": "x"}, "data": {"k": VALUE + "!"}}),
            "data.k is not valid base64",
        ),
        (
            json.dumps({"metadata": {"name": "Bad_Name"}, "stringData": {"k": VALUE}}),
            "invalid secret name",
        ),
        (json.dumps({"metadata": {}, "stringData": {"k": VALUE}}), "metadata.name is missing"),
        (json.dumps({"kind": "ConfigMap", "metadata": {"name": "x"}}), "not 'Secret'"),
        (
            json.dumps({"metadata": {"name": "x"}, "stringData": {"k": 5}}),
            "stringData.k is not a string",
        ),
        (json.dumps({"metadata": {"name": "x"}}), "the secret has no data"),
        (json.dumps({"metadata": {"name": "x"}, "stringData": {"..": VALUE}}), "invalid key '..'"),
        (json.dumps({"metadata": {"name": "x"}, "stringData": {"a/b": VALUE}}), "invalid key"),
    ],
)
def test_bad_manifests_are_refused_without_echoing_values(
    pps: Pps, client: Client, text: str, problem: str
) -> None:
    with pytest.raises(InvalidArgument) as e:
        client.create_secret(text, source="s.json")
    assert problem in e.value.message and e.value.message.startswith("s.json: ")
    assert VALUE not in e.value.message and VALUE not in (e.value.hint or "")
    assert client.list_secret() == []
    assert not (pps.home / "secrets").exists() or not list((pps.home / "secrets").iterdir())


def test_create_pipeline_refuses_missing_secrets_and_keys_and_bad_entries(
    pps: Pps, client: Client
) -> None:
    pps.repo("in")
    env = {"name": "db", "env_var": "DB_PASS", "key": "password"}
    with pytest.raises(NotFound) as missing:
        pps.create("p", atom("in"), ["true"], transform={"secrets": [env]})
    assert "secret db not found" in missing.value.message
    assert "pipeline p" in missing.value.message and "create-secret" in (missing.value.hint or "")
    assert pps.engine.pipelines.list() == []

    client.create_secret(manifest("db"))
    with pytest.raises(NotFound) as no_key:
        pps.create("p", atom("in"), ["true"], transform={"secrets": [{**env, "key": "user"}]})
    assert "secret db has no key user" in no_key.value.message
    assert "password" in (no_key.value.hint or "")

    bad = [
        ({"name": "db"}, "sets neither env_var nor mount_path"),
        ({"name": "db", "env_var": "X"}, "needs a key"),
        ({"name": "db", "env_var": "1X", "key": "password"}, "is not a variable name"),
        ({"name": "db", "mount_path": "relative"}, "is not an absolute directory"),
        ({"name": "db", "mount_path": "/pfs/secret"}, "inside a directory the sandbox provides"),
        ({"name": "", "mount_path": "/s"}, "name is missing"),
    ]
    for entry, problem in bad:
        with pytest.raises(InvalidSpec) as e:
            pps.create("p", atom("in"), ["true"], transform={"secrets": [entry]})
        assert problem in e.value.message, e.value.message
    assert pps.engine.pipelines.list() == []

    # this engine runs pipelines on the host, where nothing can be mounted
    with pytest.raises(InvalidSpec) as host:
        pps.create(
            "p", atom("in"), ["true"], transform={"secrets": [{"name": "db", "mount_path": "/s"}]}
        )
    assert "need a sandbox" in host.value.message and "TUSK_RUNTIME=host" in host.value.message

    # over HTTP the missing secret is a 404 naming it
    spec = {
        "pipeline": {"name": "q"},
        "transform": {"cmd": ["true"], "secrets": [{**env, "name": "nope"}]},
        "input": atom("in"),
    }
    with pytest.raises(NotFound) as http_missing:
        client.create_pipeline(json.dumps(spec))
    assert "secret nope not found" in http_missing.value.message


def test_a_datum_reads_its_secret_from_the_environment_and_nothing_records_it(
    pps: Pps, client: Client
) -> None:
    client.create_secret(manifest("db", password=VALUE, user="admin"))
    pps.repo("in")
    pps.put("in", {"/a": "1"})
    # The datum proves it has the value without printing it: it writes it to its output.
    script = 'printf %s "$DB_PASS" > /pfs/out/pass; printf %s "$DB_USER" > /pfs/out/user; echo done'
    pps.create(
        "p",
        atom("in"),
        ["sh", "-c", script],
        transform={
            "env": {"DB_USER": "overridden by the secret"},
            "secrets": [
                {"name": "db", "env_var": "DB_PASS", "key": "password"},
                {"name": "db", "env_var": "DB_USER", "key": "user"},
            ],
        },
    )
    (job,) = pps.wait_jobs("p", 1)
    assert job.state == "success", job.reason
    assert pps.read("p", "master", "/pass") == VALUE.encode()
    assert pps.read("p", "master", "/user") == b"admin"

    answers = [
        client.inspect_pipeline("p").model_dump_json(),
        client.extract_pipeline("p").model_dump_json(),
        client.inspect_job(job.id, pipeline="p").model_dump_json(),
        *(d.model_dump_json() for d in client.list_datum(job.id, pipeline="p")),
        *(line.model_dump_json() for line in client.get_logs(pipeline="p")),
        *(line.model_dump_json() for line in client.get_logs(pipeline="p", master=True)),
        b"".join(pps.engine.files.get(SPEC_REPO, "p", "/spec")).decode(),
    ]
    assert "done" in "".join(answers)  # the logs were read
    for text in answers:
        assert VALUE not in text
    with pps.engine.meta.transaction(write=False) as tx:
        rows = [*tx.list_datums("p", job.id), tx.get_job("p", job.id), tx.get_pipeline("p")]
    assert VALUE not in repr(rows)


def test_a_deleted_secret_fails_the_next_job_naming_it(pps: Pps, client: Client) -> None:
    client.create_secret(manifest("db"))
    pps.repo("in")
    pps.create(
        "p",
        atom("in"),
        ["true"],
        transform={"secrets": [{"name": "db", "env_var": "X", "key": "password"}]},
    )
    client.delete_secret("db")
    pps.put("in", {"/a": "1"})
    (job,) = pps.wait_jobs("p", 1)
    assert job.state == "failure"
    assert job.reason.startswith("secret db not found") and "create-secret" in job.reason


def test_secret_files_are_private_to_the_server_user(pps: Pps, client: Client) -> None:
    client.create_secret(manifest("db"))
    for path in [pps.home / "secrets", *(pps.home / "secrets").iterdir()]:
        assert path.stat().st_uid == os.geteuid()
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0
