"""moto's S3 server as a real subprocess on a free 127.0.0.1 port: a real S3 endpoint for tests
(real HTTP, real boto3). A server that cannot start fails the tests that need it.

In a test module or conftest (``tests/`` must be on ``sys.path``; it is for ``tests/integration``)::

    from s3server import moto_server_fixture, s3_bucket_fixture

    moto_server = moto_server_fixture()  # one server for the session
    s3_bucket = s3_bucket_fixture()  # per test: a fresh bucket and AWS credentials in the env

    def test_something(s3_bucket: S3Bucket) -> None:
        store = open_object_store(s3_bucket.url("prefix"))

For other processes (tuskd, the CLI), ``MotoServer.env()`` gives the variables that point boto3
at the server.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

import pytest

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "tusk-test",
    "AWS_SECRET_ACCESS_KEY": "tusk-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# Variables that could point boto3 at real AWS accounts instead of the test server's fake one.
_AWS_ENV_TO_CLEAR = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MotoServer:
    """``python -m moto.server`` on 127.0.0.1; ``start`` returns once it answers HTTP."""

    def __init__(self, log_dir: Path) -> None:
        self.log_path = log_dir / "moto.log"
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._client: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        # The port may be taken between choosing and binding it; then try another.
        for _ in range(3):
            self.port = free_port()
            self._client = None
            with open(self.log_path, "ab") as log:
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env={**os.environ, **CREDENTIALS},
                )
            if self._wait_until_answering(timeout):
                return
            self.stop()
        raise RuntimeError(f"moto server did not start; its log:\n{self._log_tail()}")

    def _wait_until_answering(self, timeout: float) -> bool:
        assert self._proc is not None
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            try:
                opener.open(f"{self.endpoint}/moto-api/", timeout=1).close()
                return True
            except urllib.error.HTTPError:
                return True  # any HTTP answer means it is serving
            except OSError:
                time.sleep(0.05)
        return False

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def __enter__(self) -> MotoServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """Environment for a process that should use this server for every s3:// URL."""
        return {
            **CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self) -> Any:
        """A boto3 S3 client for setting up and inspecting buckets (not the store under test)."""
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _make_client(self) -> Any:
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        )
        return session.client(
            "s3", endpoint_url=self.endpoint, config=Config(s3={"addressing_style": "path"})
        )

    def create_bucket(self, name: str | None = None) -> str:
        name = name or f"tusk-test-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)
        return name

    def remove_bucket(self, name: str) -> None:
        """Delete a bucket with everything in it, including unfinished multipart uploads."""
        client = self.client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": entry["Key"]} for entry in page.get("Contents", ())]
            if keys:
                client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        for upload in client.list_multipart_uploads(Bucket=name).get("Uploads", ()):
            client.abort_multipart_upload(
                Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        client.delete_bucket(Bucket=name)


@dataclass(frozen=True)
class S3Bucket:
    server: MotoServer
    name: str

    def url(self, prefix: str = "tusk", **options: str) -> str:
        """``s3://bucket/prefix?endpoint=…&path_style=1`` plus ``options``."""
        query = {"endpoint": self.server.endpoint, "path_style": "1", **options}
        return f"s3://{self.name}/{prefix}?{urlencode(query, safe=':/')}"


def moto_server_fixture(
    name: str = "moto_server", scope: Literal["session", "package", "module"] = "session"
) -> Callable[..., Any]:
    """A fixture (assign it to a module or conftest name) running one moto server per scope."""

    @pytest.fixture(name=name, scope=scope)
    def fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
        with MotoServer(tmp_path_factory.mktemp("moto")) as server:
            yield server

    return fixture


def s3_bucket_fixture(name: str = "s3_bucket", server: str = "moto_server") -> Callable[..., Any]:
    """A fixture giving each test a fresh bucket on the ``server`` fixture's moto, and AWS
    credentials for it in the environment (boto3's usual source); removed after the test."""

    @pytest.fixture(name=name)
    def fixture(
        request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
    ) -> Iterator[S3Bucket]:
        moto: MotoServer = request.getfixturevalue(server)
        for key in _AWS_ENV_TO_CLEAR:
            monkeypatch.delenv(key, raising=False)
        for key, value in CREDENTIALS.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        bucket = moto.create_bucket()
        try:
            yield S3Bucket(moto, bucket)
        finally:
            moto.remove_bucket(bucket)

    return fixture
