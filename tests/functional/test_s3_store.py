"""The S3 object store against moto's S3 server in a subprocess (real HTTP, real boto3): the object
store contract, then what is particular to S3. A moto server that cannot start fails these tests."""

from __future__ import annotations

import os
import random
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from s3server import S3Bucket, moto_server_fixture, s3_bucket_fixture
from test_object_store_contract import ObjectStoreContract

from tusk.errors import InvalidArgument, ServerUnavailable
from tusk.runtime import Engine, Settings
from tusk.storage import Ingestor, ObjectStore, hash_bytes, open_object_store, read_chunks
from tusk.storage.chunking import MAX_CHUNK_SIZE
from tusk.storage.s3 import MIN_PART_SIZE, S3ObjectStore
from tusk.testing import free_port
from tusk.testing.moto import CREDENTIALS, MotoServer

moto_server = moto_server_fixture()
s3_bucket = s3_bucket_fixture()


class _Sent(Exception):
    """Raised from a before-send hook to stop a request and show where it was going."""


def _store(bucket: S3Bucket, prefix: str = "tusk", **options: Any) -> S3ObjectStore:
    return S3ObjectStore(
        bucket.name, prefix, endpoint_url=bucket.server.endpoint, path_style=True, **options
    )


def _keys(bucket: S3Bucket) -> list[str]:
    response = bucket.server.client().list_objects_v2(Bucket=bucket.name)
    return sorted(entry["Key"] for entry in response.get("Contents", ()))


def _uploads(bucket: S3Bucket) -> list[Any]:
    uploads: list[Any] = (
        bucket.server.client().list_multipart_uploads(Bucket=bucket.name).get("Uploads", [])
    )
    return uploads


class TestS3ObjectStore(ObjectStoreContract):
    @pytest.fixture
    def store(self, s3_bucket: S3Bucket) -> ObjectStore:
        return open_object_store(s3_bucket.url())


# -- layout and URLs ---------------------------------------------------------------------------
def test_layout_fans_out_by_id_prefix_under_the_url_prefix(s3_bucket: S3Bucket) -> None:
    store = _store(s3_bucket, "team/data")
    object_id = store.put(b"layout")
    assert _keys(s3_bucket) == [f"team/data/objects/{object_id[:2]}/{object_id[2:]}"]
    body = s3_bucket.server.client().get_object(Bucket=s3_bucket.name, Key=_keys(s3_bucket)[0])
    assert body["Body"].read() == b"layout"


def test_prefixes_in_one_bucket_are_separate_stores(s3_bucket: S3Bucket) -> None:
    a, b = _store(s3_bucket, "a"), _store(s3_bucket, "b")
    in_a = a.put(b"only in a")
    assert not b.exists(in_a)
    assert list(b.iter_ids()) == []
    assert list(a.iter_ids()) == [in_a]


def test_iter_ids_skips_keys_tusk_did_not_write(s3_bucket: S3Bucket) -> None:
    store = _store(s3_bucket)
    object_id = store.put(b"mine")
    client = s3_bucket.server.client()
    for key in ["tusk/objects/README", "tusk/objects/ab/c/d", "tusk/objects/AB/cdef", "tusk/x"]:
        client.put_object(Bucket=s3_bucket.name, Key=key, Body=b"foreign")
    assert list(store.iter_ids()) == [object_id]


def test_open_object_store_url_round_trip(s3_bucket: S3Bucket) -> None:
    url = s3_bucket.url("some/prefix", region="us-east-1")
    store = open_object_store(url)
    assert isinstance(store, S3ObjectStore)
    assert (store.bucket, store.prefix, store.endpoint_url) == (
        s3_bucket.name,
        "some/prefix",
        s3_bucket.server.endpoint,
    )
    assert (store.region, store.path_style) == ("us-east-1", True)
    object_id = store.put(b"via url")
    reopened = open_object_store(store.url)
    assert reopened.url == store.url
    assert reopened.get(object_id) == b"via url"


def test_endpoint_from_the_standard_aws_environment(
    s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_bucket.server.endpoint)
    store = open_object_store(f"s3://{s3_bucket.name}/from-env")
    object_id = store.put(b"endpoint and credentials from the environment")
    assert _keys(s3_bucket) == [f"from-env/objects/{object_id[:2]}/{object_id[2:]}"]


@pytest.mark.parametrize(
    "query", ["?endpoint=http://x&colour=blue", "?path_style=maybe", "?path_style="]
)
def test_bad_url_options_are_rejected(query: str) -> None:
    with pytest.raises(InvalidArgument):
        open_object_store(f"s3://bucket/prefix{query}")


def test_path_style_addressing(s3_bucket: S3Bucket) -> None:
    # "localhost" is a name, so without path-style boto3 would put the bucket in the host name.
    endpoint = f"http://localhost:{s3_bucket.server.port}"
    for path_style, expected in [
        (True, f"{endpoint}/{s3_bucket.name}/p/objects/ab/c"),
        (False, f"http://{s3_bucket.name}.localhost:{s3_bucket.server.port}/p/objects/ab/c"),
    ]:
        store = S3ObjectStore(
            s3_bucket.name, "p", endpoint_url=endpoint, path_style=path_style, verify_bucket=False
        )

        def stop(request: Any, **_: Any) -> None:
            raise _Sent(request.url)

        store.client.meta.events.register("before-send.s3", stop)
        with pytest.raises(_Sent) as sent:
            store.exists("abc")
        assert str(sent.value) == expected
    path_store = open_object_store(
        f"s3://{s3_bucket.name}/p?endpoint=http://localhost:{s3_bucket.server.port}&path_style=1"
    )
    object_id = path_store.put(b"path style")
    assert path_store.get(object_id) == b"path style"


# -- errors ------------------------------------------------------------------------------------
def test_missing_bucket_is_named_with_a_fix(s3_bucket: S3Bucket) -> None:
    url = s3_bucket.url().replace(s3_bucket.name, "no-such-bucket-here")
    with pytest.raises(InvalidArgument) as info:
        open_object_store(url)
    assert "no-such-bucket-here" in info.value.message
    assert "does not exist" in info.value.message
    assert info.value.hint is not None and "s3 mb s3://no-such-bucket-here" in info.value.hint


def test_missing_credentials_are_named_with_a_fix(
    s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key in CREDENTIALS:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(InvalidArgument) as info:
        open_object_store(s3_bucket.url())
    assert s3_bucket.name in info.value.message and "credentials" in info.value.message
    assert info.value.hint is not None and "AWS_ACCESS_KEY_ID" in info.value.hint


def test_unreachable_endpoint_is_unavailable(s3_bucket: S3Bucket) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServerUnavailable) as info:
        S3ObjectStore.from_url(f"s3://{s3_bucket.name}/p?endpoint={endpoint}", max_attempts=1)
    assert s3_bucket.name in info.value.message and endpoint in info.value.message
    assert info.value.hint is not None and "endpoint" in info.value.hint


# -- writes --------------------------------------------------------------------------------------
def test_multipart_round_trip(s3_bucket: S3Bucket) -> None:
    store = _store(s3_bucket, multipart_threshold=6 << 20, part_size=MIN_PART_SIZE)
    data = os.urandom(2 * MIN_PART_SIZE + 12345)
    object_id = store.put(memoryview(data))
    head = s3_bucket.server.client().head_object(Bucket=s3_bucket.name, Key=_keys(s3_bucket)[0])
    assert head["ETag"].endswith('-3"')  # S3 marks objects assembled from 3 parts
    assert store.size(object_id) == len(data)
    assert store.get(object_id) == data
    boundary = MIN_PART_SIZE
    assert store.get(object_id, boundary - 10, 20) == data[boundary - 10 : boundary + 10]
    assert store.get(object_id, 2 * boundary) == data[2 * boundary :]
    assert _uploads(s3_bucket) == []
    assert store.put(data) == object_id
    small = store.put(b"below the threshold")
    head = s3_bucket.server.client().head_object(
        Bucket=s3_bucket.name, Key=f"tusk/objects/{small[:2]}/{small[2:]}"
    )
    assert "-" not in head["ETag"]


def test_failed_multipart_upload_leaves_nothing_behind(s3_bucket: S3Bucket) -> None:
    store = _store(s3_bucket, multipart_threshold=6 << 20, part_size=MIN_PART_SIZE)
    real_upload_part = store.client.upload_part

    def flaky_upload_part(**kwargs: Any) -> Any:
        if kwargs["PartNumber"] == 2:
            error = {"Code": "InternalError", "Message": "boom"}
            status = {"HTTPStatusCode": 500}
            raise ClientError({"Error": error, "ResponseMetadata": status}, "UploadPart")
        return real_upload_part(**kwargs)

    store.client.upload_part = flaky_upload_part
    data = os.urandom(3 * MIN_PART_SIZE)
    with pytest.raises(ServerUnavailable, match="InternalError"):
        store.put(data)
    assert not store.exists(hash_bytes(data))
    assert _uploads(s3_bucket) == []
    store.client.upload_part = real_upload_part
    assert store.get(store.put(data)) == data


def test_a_concurrent_first_writer_is_kept(s3_bucket: S3Bucket) -> None:
    # Another process writes the object between this put's existence check and its upload.
    store = _store(s3_bucket)
    key = "tusk/objects/fi/xed-id"
    real_head = store.client.head_object

    def head_then_race(**kwargs: Any) -> Any:
        s3_bucket.server.client().put_object(Bucket=s3_bucket.name, Key=key, Body=b"first")
        return real_head(**{**kwargs, "Key": "tusk/objects/00/absent"})

    store.client.head_object = head_then_race
    assert store.put(b"second", "fixed-id") == "fixed-id"
    store.client.head_object = real_head
    assert store.get("fixed-id") == b"first"


def test_servers_without_conditional_writes_still_work(s3_bucket: S3Bucket) -> None:
    store = _store(s3_bucket)
    real_put_object = store.client.put_object
    calls: list[bool] = []

    def put_object(**kwargs: Any) -> Any:
        calls.append("IfNoneMatch" in kwargs)
        if "IfNoneMatch" in kwargs:
            error = {"Code": "NotImplemented", "Message": "header not implemented"}
            raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 501}}, "Put")
        return real_put_object(**kwargs)

    store.client.put_object = put_object
    first, second = store.put(b"one"), store.put(b"two")
    assert calls == [True, False, False]
    assert (store.get(first), store.get(second)) == (b"one", b"two")


def test_concurrent_puts_and_paginated_listing(s3_bucket: S3Bucket) -> None:
    store = _store(s3_bucket)
    blobs = [i.to_bytes(4, "big") for i in range(1001)]  # S3 lists 1,000 keys a page
    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(store.put, blobs))
    assert list(store.iter_ids()) == sorted(ids)
    assert [store.get(ids[i]) for i in range(0, 1001, 50)] == blobs[::50]


# -- reads ---------------------------------------------------------------------------------------
def test_range_reads_fetch_only_the_range(s3_bucket: S3Bucket) -> None:
    store = _store(s3_bucket)
    data = os.urandom(3 << 20)
    object_id = store.put(data)
    ranges: list[str | None] = []

    def record(request: Any, **_: Any) -> None:
        header = request.headers.get("Range")
        ranges.append(header.decode() if isinstance(header, bytes) else header)

    store.client.meta.events.register("before-send.s3.GetObject", record)
    assert store.get(object_id, 1_000_000, 4096) == data[1_000_000:1_004_096]
    assert store.get(object_id, (3 << 20) - 5) == data[-5:]
    assert store.get(object_id) == data
    assert ranges == ["bytes=1000000-1004095", "bytes=3145723-", None]


# -- through the rest of tusk ------------------------------------------------------------------
def test_ingestor_round_trip_of_a_20_mib_file(s3_bucket: S3Bucket) -> None:
    store = _store(s3_bucket)
    data = random.Random(7).randbytes(20 << 20)
    with Ingestor(store) as ingestor:
        writer = ingestor.open_file()
        for start in range(0, len(data), 1 << 20):
            writer.write(data[start : start + (1 << 20)])
        writer.close()
    assert all(chunk.length <= MAX_CHUNK_SIZE for chunk in writer.chunks)
    assert len(writer.chunks) > 5
    assert b"".join(read_chunks(store, writer.chunks)) == data
    assert b"".join(read_chunks(store, writer.chunks, 7 << 20, 5 << 20)) == data[7 << 20 : 12 << 20]
    assert len(list(store.iter_ids())) == len({c.object for c in writer.chunks})
    with Ingestor(store) as again:
        copy = again.open_file()
        copy.write(data)
        copy.close()
    assert again.objects_written == 0 and copy.hash == writer.hash


def test_ingestor_round_trip_of_1000_small_files(s3_bucket: S3Bucket) -> None:
    store = _store(s3_bucket)
    rng = random.Random(11)
    files = [rng.randbytes(rng.randrange(0, 1000)) for _ in range(1000)]
    with Ingestor(store) as ingestor:
        writers = []
        for data in files:
            writer = ingestor.open_file()
            writer.write(data)
            writer.close()
            writers.append(writer)
    assert ingestor.objects_written == 1  # one pack
    with ThreadPoolExecutor(8) as pool:
        read = list(pool.map(lambda w: b"".join(read_chunks(store, w.chunks)), writers))
    assert read == files


def test_engine_on_s3_creates_a_repo_and_puts_and_gets_a_file(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    url = s3_bucket.url("engine")
    big = os.urandom(3 << 20)
    with Engine(Settings.for_home(tmp_path / "home", object_url=url)) as engine:
        engine.repos.create("images")
        batch = engine.files.open_put("images", "master")
        for path, data in [("/small.txt", b"hello from s3\n"), ("/big.bin", big)]:
            batch.begin_file(path)
            batch.write(data)
            batch.end_file()
        batch.commit()
        assert b"".join(engine.files.get("images", "master", "/small.txt")) == b"hello from s3\n"
        assert b"".join(engine.files.get("images", "master", "/big.bin")) == big
        assert not any((tmp_path / "home").rglob("objects"))
    assert _keys(s3_bucket) and all(key.startswith("engine/objects/") for key in _keys(s3_bucket))
    with Engine(Settings.for_home(tmp_path / "home", object_url=url)) as reopened:
        assert b"".join(reopened.files.get("images", "master", "/big.bin")) == big


def test_moto_server_stops(tmp_path: Path) -> None:
    with MotoServer(tmp_path) as server:
        assert server.client().list_buckets()["Buckets"] == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
