"""pytest fixtures over ``tusk.testing.moto.MotoServer``: a real S3 endpoint for tests (real HTTP,
real boto3). A server that cannot start fails the tests that need it.

In a test module or conftest (pytest puts ``tests/`` on ``sys.path``)::

    from s3server import moto_server_fixture, s3_bucket_fixture

    moto_server = moto_server_fixture()  # one server for the session
    s3_bucket = s3_bucket_fixture()  # per test: a fresh bucket and AWS credentials in the env

    def test_something(s3_bucket: S3Bucket) -> None:
        store = open_object_store(s3_bucket.url("prefix"))

For other processes (tuskd, the CLI), ``MotoServer.env()`` gives the variables that point boto3
at the server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

import pytest

from tusk.testing.moto import CREDENTIALS, MotoServer

# Variables that could point boto3 at real AWS accounts instead of the test server's fake one.
_AWS_ENV_TO_CLEAR = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)


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
