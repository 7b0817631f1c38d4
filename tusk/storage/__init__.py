"""Bytes by id: object stores chosen by URL scheme, content hashing, and file chunking."""

from __future__ import annotations

import importlib
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tusk.errors import InvalidArgument
from tusk.storage.base import ChunkRef, ObjectStore
from tusk.storage.chunking import FileWriter, Ingestor, append_chunks, read_chunks
from tusk.storage.hashing import file_hash, hash_bytes

__all__ = [
    "ChunkRef",
    "FileWriter",
    "Ingestor",
    "ObjectStore",
    "append_chunks",
    "file_hash",
    "hash_bytes",
    "open_object_store",
    "read_chunks",
]

SUPPORTED_SCHEMES = ("file", "s3")


def open_object_store(url: str) -> ObjectStore:
    """The object store at ``url``: ``file:///abs/path`` or ``s3://bucket/prefix``."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise InvalidArgument(
                f"object store URL {url!r} must name an absolute path",
                hint="use file:///absolute/path",
            )
        from tusk.storage.local import LocalObjectStore

        return LocalObjectStore(Path(unquote(parts.path)))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise InvalidArgument(
                f"object store URL {url!r} names no bucket", hint="use s3://bucket/prefix"
            )
        try:
            s3 = importlib.import_module("tusk.storage.s3")
        except ImportError as e:
            raise InvalidArgument(
                f"the s3:// object store is not available ({e}): install tusk[s3]",
                hint="pip install 'tusk[s3]'",
            ) from None
        store: ObjectStore = s3.S3ObjectStore.from_url(url)
        return store
    raise InvalidArgument(
        f"unsupported object store URL {url!r}",
        hint="supported schemes: " + ", ".join(f"{s}://" for s in SUPPORTED_SCHEMES),
    )
