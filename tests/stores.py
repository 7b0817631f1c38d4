"""pytest fixtures over ``tusk.testing.emulators`` and ``tusk.testing.moto``: real object stores
(real HTTP, the real client libraries) for the CLI's ``s3://``, ``gs://``, ``wasb://`` and
``as://`` URLs. An emulator that cannot start fails the tests that need it.

In a test module (pytest puts ``tests/`` on ``sys.path``)::

    from stores import Bucket, bucket_fixture, emulator_fixtures

    gcs_emulator, azurite, moto_server = emulator_fixtures()  # one of each per session
    bucket = bucket_fixture(("gs", "wasb"))  # per test and scheme: a fresh bucket

    def test_something(bucket: Bucket) -> None:
        bucket.put("data/a", b"alpha")
        run("put-file", "repo", "master", "-f", bucket.url("data/a"), env=bucket.env)
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from google.api_core.exceptions import Conflict
from s3server import moto_server_fixture

from tusk.testing.emulators import AZURITE_ACCOUNT, Azurite, GcsEmulator
from tusk.testing.moto import MotoServer

# What each store's client library says of an object that is not there.
MISSING = {"s3": "NoSuchKey", "gs": "NotFound", "gcs": "NotFound", "wasb": "BlobNotFound"}
MISSING["as"] = MISSING["wasb"]


@dataclass(frozen=True)
class Bucket:
    """A fresh bucket (an Azure container) on a real emulator, named by ``scheme://`` URLs."""

    scheme: str
    name: str
    env: dict[str, str]  # what the CLI needs to reach it (its user's credentials)
    no_credentials: dict[str, str]  # an environment in which the library finds none
    put: Callable[[str, bytes], None]
    get: Callable[[str], bytes]
    keys: Callable[[], list[str]]

    def url(self, key: str = "") -> str:
        """The URL of ``key`` as a 1.7 user writes it for this scheme."""
        if self.scheme == "wasb":
            return f"wasb://{AZURITE_ACCOUNT}.blob.core.windows.net/{self.name}/{key}"
        if self.scheme == "as":
            return f"as://{AZURITE_ACCOUNT}/{self.name}/{key}"
        return f"{self.scheme}://{self.name}/{key}"

    @property
    def missing(self) -> str:
        return MISSING[self.scheme]


def emulator_fixtures() -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    """Session fixtures ``gcs_emulator``, ``azurite`` and ``moto_server`` (assign them to names
    of those spellings in a test module)."""

    @pytest.fixture(name="gcs_emulator", scope="session")
    def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsEmulator]:
        with GcsEmulator(tmp_path_factory.mktemp("gcs")) as server:
            yield server

    @pytest.fixture(name="azurite", scope="session")
    def azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
        with Azurite(tmp_path_factory.mktemp("azurite")) as server:
            yield server

    return gcs, azure, moto_server_fixture()


def bucket_fixture(schemes: Sequence[str], name: str = "bucket") -> Callable[..., Any]:
    """A fixture parametrized over ``schemes``: a fresh bucket per test, removed after it."""

    @pytest.fixture(name=name, params=schemes)
    def fixture(request: pytest.FixtureRequest) -> Iterator[Bucket]:
        scheme: str = request.param
        make = {"s3": _s3, "gs": _gcs, "gcs": _gcs, "wasb": _azure, "as": _azure}[scheme]
        yield from make(request, scheme)

    return fixture


def _gcs(request: pytest.FixtureRequest, scheme: str) -> Iterator[Bucket]:
    emulator: GcsEmulator = request.getfixturevalue("gcs_emulator")
    client: Any = emulator.client()
    handle = client.create_bucket(f"tusk-test-{secrets.token_hex(6)}")
    try:
        yield Bucket(
            scheme,
            handle.name,
            emulator.env(),
            {"GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/key.json"},
            lambda key, data: handle.blob(key).upload_from_string(data),
            lambda key: handle.blob(key).download_as_bytes(),
            lambda: sorted(blob.name for blob in client.list_blobs(handle)),
        )
    finally:
        for blob in client.list_blobs(handle):
            blob.delete()
        # A cancelled resumable upload stays in the emulator, which cannot delete upload
        # sessions (GCS can): the bucket then stays too, in memory until the session ends.
        with contextlib.suppress(Conflict):
            handle.delete()


def _azure(request: pytest.FixtureRequest, scheme: str) -> Iterator[Bucket]:
    azurite: Azurite = request.getfixturevalue("azurite")
    container: Any = azurite.client().create_container(f"tusk-test-{secrets.token_hex(6)}")
    try:
        yield Bucket(
            scheme,
            container.container_name,
            azurite.env(),
            {"AZURE_STORAGE_KEY": "", "AZURE_STORAGE_SAS_TOKEN": ""},
            lambda key, data: container.upload_blob(key, data),
            lambda key: container.download_blob(key).readall(),
            lambda: sorted(blob.name for blob in container.list_blobs()),
        )
    finally:
        container.delete_container()


def _s3(request: pytest.FixtureRequest, scheme: str) -> Iterator[Bucket]:
    moto: MotoServer = request.getfixturevalue("moto_server")
    client = moto.client()
    name = moto.create_bucket()
    try:
        yield Bucket(
            scheme,
            name,
            moto.env(),
            {
                "AWS_ENDPOINT_URL": moto.endpoint,
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
                "AWS_CONFIG_FILE": "/nonexistent",
            },
            lambda key, data: client.put_object(Bucket=name, Key=key, Body=data),
            lambda key: client.get_object(Bucket=name, Key=key)["Body"].read(),
            lambda: sorted(
                o["Key"] for o in client.list_objects_v2(Bucket=name).get("Contents", [])
            ),
        )
    finally:
        moto.remove_bucket(name)
