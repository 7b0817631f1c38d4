"""The CLI's object-store URLs (``tusk.cli.remotes``) against real emulators: moto (S3),
gcp-storage-emulator (GCS) and Azurite (Azure Blob Storage), through the real client libraries.
An emulator that cannot start fails these tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from stores import Bucket, bucket_fixture, emulator_fixtures

from tusk.cli.remotes import BLOCK, PART, objects, read_object, write_object
from tusk.errors import InvalidArgument, SourceUnavailable
from tusk.testing.emulators import AZURITE_ACCOUNT, AZURITE_KEY

gcs_emulator, azurite, moto_server = emulator_fixtures()
bucket = bucket_fixture(("s3", "gs", "wasb"))
azure = bucket_fixture(("wasb",), name="azure")


@pytest.fixture(autouse=True)
def _credentials(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test's store's variables in this process's environment (the CLI user's)."""
    for name in ("bucket", "azure"):
        if name in request.fixturenames:
            chosen: Bucket = request.getfixturevalue(name)
            for key, value in chosen.env.items():
                monkeypatch.setenv(key, value)


def stream(total: int, fail_after: int | None = None) -> Iterator[bytes]:
    """``total`` bytes in 1 MiB blocks, or an error once ``fail_after`` bytes are out."""
    sent = 0
    while sent < total:
        if fail_after is not None and sent >= fail_after:
            raise RuntimeError("the stream broke")
        block = bytes([sent % 251]) * min(1 << 20, total - sent)
        sent += len(block)
        yield block


def test_a_written_object_reads_back_whole(bucket: Bucket) -> None:
    size = PART + 3 * (1 << 20)  # two parts (blocks, chunks)
    write_object(bucket.url("backups/one"), stream(size))
    assert bucket.get("backups/one") == b"".join(stream(size))
    blocks = list(read_object(bucket.url("backups/one")))
    assert b"".join(blocks) == b"".join(stream(size))
    assert max(len(block) for block in blocks) <= BLOCK  # what the put stream is cut into
    write_object(bucket.url("empty"), iter(()))
    assert bucket.get("empty") == b""
    assert bucket.keys() == ["backups/one", "empty"]


def test_an_interrupted_write_leaves_no_object(bucket: Bucket) -> None:
    with pytest.raises(RuntimeError, match="the stream broke"):
        write_object(bucket.url("half"), stream(3 * PART, fail_after=PART + (1 << 20)))
    assert bucket.keys() == []


def test_objects_lists_a_prefix_and_refuses_what_is_not_there(bucket: Bucket) -> None:
    bucket.put("data/a.txt", b"alpha")
    bucket.put("data/sub/b.txt", b"beta")
    bucket.put("other", b"x")
    found = {
        rel: (b"".join(read()), size) for rel, read, size in objects(bucket.url("data/"), True)
    }
    assert found == {"a.txt": (b"alpha", 5), "sub/b.txt": (b"beta", 4)}
    [(rel, read, size)] = objects(bucket.url("other"), False)
    assert (rel, b"".join(read()), size) == ("", b"x", 1)
    with pytest.raises(SourceUnavailable, match=bucket.missing) as missing:
        list(objects(bucket.url("data/nope"), False))
    assert "nothing was stored" in str(missing.value.hint)
    with pytest.raises(SourceUnavailable, match="no objects found under"):
        list(objects(bucket.url("nothing/"), True))
    with pytest.raises(InvalidArgument, match="names a bucket or a prefix"):
        list(objects(bucket.url("data/"), False))
    with pytest.raises(SourceUnavailable, match=f"cannot get .*: {bucket.missing}"):
        b"".join(read_object(bucket.url("data/nope")))


def test_azure_urls_as_1_7_and_hadoop_write_them(azure: Bucket) -> None:
    azure.put("dir/blob", b"azure")
    same = [
        f"wasb://{AZURITE_ACCOUNT}.blob.core.windows.net/{azure.name}/dir/blob",
        f"as://{AZURITE_ACCOUNT}/{azure.name}/dir/blob",
        f"wasb:///{azure.name}/dir/blob",  # the account of the connection string
        f"wasb://{azure.name}@{AZURITE_ACCOUNT}.blob.core.windows.net/dir/blob",  # Hadoop's form
    ]
    for url in same:
        assert b"".join(read_object(url)) == b"azure", url
    with pytest.raises(InvalidArgument, match="names account 'other'") as other:
        read_object(f"wasb://other.blob.core.windows.net/{azure.name}/dir/blob")
    assert "AZURE_STORAGE_CONNECTION_STRING" in str(other.value)
    with pytest.raises(InvalidArgument, match="no container"):
        read_object(f"as://{AZURITE_ACCOUNT}/")


def test_azure_credentials_come_from_the_environment(
    azure: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    azure.put("k", b"v")
    url = azure.url("k")
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    with pytest.raises(SourceUnavailable, match="no Azure credentials") as none:
        read_object(url)
    assert "AZURE_STORAGE_KEY" in str(none.value.hint)
    wrong_key = AZURITE_KEY.replace("Eby8", "AAAA")
    endpoint = azure.env["AZURE_STORAGE_CONNECTION_STRING"].split("BlobEndpoint=")[1]
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING",
        f"AccountName={AZURITE_ACCOUNT};AccountKey={wrong_key};BlobEndpoint={endpoint}",
    )
    with pytest.raises(SourceUnavailable, match=": AuthorizationFailure"):
        read_object(url)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", "not a connection string")
    with pytest.raises(SourceUnavailable, match="AZURE_STORAGE_CONNECTION_STRING cannot be used"):
        read_object(url)


@pytest.mark.parametrize(
    ("url", "module", "extra"),
    [
        ("gs://b/k", "google.cloud.storage", "gcs"),
        ("wasb://a/c/k", "azure.storage.blob", "azure"),
        ("s3://b/k", "boto3", "s3"),
    ],
)
def test_a_missing_library_names_the_extra_to_install(
    url: str, module: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, f"tusk.cli.remotes.{extra}", raising=False)
    monkeypatch.setitem(sys.modules, module, None)  # what import finds when it is not installed
    parent, _, name = module.rpartition(".")
    if parent in sys.modules:  # ``from parent import name`` would find the loaded one there
        monkeypatch.delattr(sys.modules[parent], name, raising=False)
    with pytest.raises(SourceUnavailable, match="which is not installed") as missing:
        read_object(url)
    assert missing.value.hint == f"install it with: pip install 'tusk[{extra}]'"
