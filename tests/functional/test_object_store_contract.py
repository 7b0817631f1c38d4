"""The contract every object store backend passes. Subclass ``ObjectStoreContract`` and override
the ``store`` fixture to run it against a backend."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tusk.errors import InvalidArgument, NotFound
from tusk.storage import ObjectStore, hash_bytes, open_object_store
from tusk.storage.local import LocalObjectStore
from tusk.storage.memory import MemoryObjectStore

INVALID_IDS = ["", "ab", "ABCDEF", "ab/cd", "../etc", "abc def", ".hidden", "x" * 201, "ab\x00cd"]


class ObjectStoreContract:
    @pytest.fixture
    def store(self) -> ObjectStore:
        raise NotImplementedError("override the store fixture")

    def test_put_defaults_to_content_hash(self, store: ObjectStore) -> None:
        data = b"hello, objects"
        object_id = store.put(data)
        assert object_id == hash_bytes(data)
        assert store.get(object_id) == data

    def test_put_under_given_id_and_memoryview(self, store: ObjectStore) -> None:
        data = os.urandom(100_000)
        assert store.put(memoryview(data)[10:], "pack_0001") == "pack_0001"
        assert store.get("pack_0001") == data[10:]
        assert store.size("pack_0001") == len(data) - 10

    def test_empty_object(self, store: ObjectStore) -> None:
        object_id = store.put(b"")
        assert store.exists(object_id)
        assert store.size(object_id) == 0
        assert store.get(object_id) == b""

    def test_range_reads(self, store: ObjectStore) -> None:
        data = bytes(range(256)) * 40
        object_id = store.put(data)
        assert store.get(object_id, 0, 10) == data[:10]
        assert store.get(object_id, 1000, 2000) == data[1000:3000]
        assert store.get(object_id, 5000) == data[5000:]
        assert store.get(object_id, len(data)) == b""
        assert store.get(object_id, len(data) - 1, 1) == data[-1:]
        assert store.get(object_id, 7, 0) == b""

    def test_range_past_end_or_negative_is_rejected(self, store: ObjectStore) -> None:
        object_id = store.put(b"0123456789")
        with pytest.raises(InvalidArgument):
            store.get(object_id, 5, 6)
        with pytest.raises(InvalidArgument):
            store.get(object_id, 11)
        with pytest.raises(InvalidArgument):
            store.get(object_id, -1, 2)
        with pytest.raises(InvalidArgument):
            store.get(object_id, 0, -2)

    def test_exists_and_size(self, store: ObjectStore) -> None:
        object_id = hash_bytes(b"not stored yet")
        assert not store.exists(object_id)
        store.put(b"not stored yet")
        assert store.exists(object_id)
        assert store.size(object_id) == len(b"not stored yet")

    def test_put_is_idempotent_and_never_rewrites(self, store: ObjectStore) -> None:
        assert store.put(b"first", "fixed-id") == "fixed-id"
        assert store.put(b"second", "fixed-id") == "fixed-id"
        assert store.get("fixed-id") == b"first"
        assert store.put(b"first") == store.put(b"first")
        assert sorted(store.iter_ids()).count("fixed-id") == 1

    def test_missing_object_is_not_found(self, store: ObjectStore) -> None:
        missing = hash_bytes(b"never stored")
        with pytest.raises(NotFound, match=missing):
            store.get(missing)
        with pytest.raises(NotFound):
            store.get(missing, 0, 1)
        with pytest.raises(NotFound):
            store.size(missing)

    def test_delete(self, store: ObjectStore) -> None:
        keep = store.put(b"keep")
        gone = store.put(b"gone")
        store.delete(gone)
        assert not store.exists(gone)
        assert store.exists(keep)
        with pytest.raises(NotFound):
            store.get(gone)
        store.delete(gone)  # absent ids are ignored
        assert store.put(b"gone") == gone
        assert store.get(gone) == b"gone"

    def test_iter_ids_lists_exactly_the_stored_objects(self, store: ObjectStore) -> None:
        assert list(store.iter_ids()) == []
        ids = {store.put(os.urandom(64)) for _ in range(20)}
        ids.add(store.put(b"x", "abc"))
        assert set(store.iter_ids()) == ids
        store.delete("abc")
        assert set(store.iter_ids()) == ids - {"abc"}

    @pytest.mark.parametrize("bad_id", INVALID_IDS)
    def test_invalid_ids_are_rejected(self, store: ObjectStore, bad_id: str) -> None:
        with pytest.raises(InvalidArgument):
            store.put(b"data", bad_id)
        with pytest.raises(InvalidArgument):
            store.get(bad_id)
        with pytest.raises(InvalidArgument):
            store.exists(bad_id)
        with pytest.raises(InvalidArgument):
            store.size(bad_id)
        with pytest.raises(InvalidArgument):
            store.delete(bad_id)
        assert list(store.iter_ids()) == []

    def test_large_object_round_trip(self, store: ObjectStore) -> None:
        data = os.urandom(5 << 20)
        object_id = store.put(data)
        assert store.size(object_id) == len(data)
        assert store.get(object_id) == data
        assert store.get(object_id, 3 << 20, 1 << 20) == data[3 << 20 : 4 << 20]


class TestLocalObjectStore(ObjectStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> ObjectStore:
        return LocalObjectStore(tmp_path / "store")

    def test_layout_fans_out_by_id_prefix(self, tmp_path: Path) -> None:
        store = LocalObjectStore(tmp_path)
        object_id = store.put(b"layout")
        path = tmp_path / "objects" / object_id[:2] / object_id[2:]
        assert path.read_bytes() == b"layout"

    def test_existing_object_is_not_rewritten(self, tmp_path: Path) -> None:
        store = LocalObjectStore(tmp_path, durable=False)
        object_id = store.put(b"once")
        path = tmp_path / "objects" / object_id[:2] / object_id[2:]
        before = path.stat()
        store.put(b"once")
        assert path.stat().st_ino == before.st_ino
        assert path.stat().st_mtime_ns == before.st_mtime_ns

    def test_leftover_temp_files_are_not_objects(self, tmp_path: Path) -> None:
        store = LocalObjectStore(tmp_path)
        object_id = store.put(b"real")
        # what a crash in the middle of a put leaves behind
        partial = tmp_path / "objects" / object_id[:2] / f".{object_id[2:]}.dead.tmp"
        partial.write_bytes(b"re")
        assert list(store.iter_ids()) == [object_id]
        assert store.get(object_id) == b"real"

    def test_url_round_trips_through_open_object_store(self, tmp_path: Path) -> None:
        store = LocalObjectStore(tmp_path / "with space")
        object_id = store.put(b"via url")
        reopened = open_object_store(store.url)
        assert isinstance(reopened, LocalObjectStore)
        assert reopened.root == store.root
        assert reopened.get(object_id) == b"via url"
        assert open_object_store(f"file://{tmp_path}/plain").url.startswith("file:///")


class TestMemoryObjectStore(ObjectStoreContract):
    @pytest.fixture
    def store(self) -> ObjectStore:
        return MemoryObjectStore()


@pytest.mark.parametrize(
    "url", ["ftp://host/x", "relative/path", "file://relative/path", "s3://", "memory://x"]
)
def test_open_object_store_rejects_unsupported_urls(url: str) -> None:
    with pytest.raises(InvalidArgument):
        open_object_store(url)


def test_unsupported_scheme_names_the_supported_ones() -> None:
    with pytest.raises(InvalidArgument) as info:
        open_object_store("gs://bucket/prefix")
    assert "file://" in str(info.value.hint) and "s3://" in str(info.value.hint)


def test_s3_without_its_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    real_import = importlib.import_module

    def no_s3(name: str, package: str | None = None) -> object:
        if name == "tusk.storage.s3":
            raise ImportError("No module named 'boto3'")
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", no_s3)
    with pytest.raises(InvalidArgument, match=r"install tusk\[s3\]"):
        open_object_store("s3://bucket/prefix")
