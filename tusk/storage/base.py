"""Object store interface: immutable, content-addressed blobs by id.

Backends are chosen by URL scheme in :func:`tusk.storage.open_object_store` (``file://`` for a
local directory, ``s3://`` for a bucket). Every backend must pass the contract suite in
``tests/functional/test_object_store_contract.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from tusk.errors import InvalidArgument, NotFound

_ID_RE = re.compile(r"[0-9a-z_-]{3,200}")


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """One piece of a file: ``length`` bytes at ``offset`` inside object ``object``.

    ``hash`` is the content hash of exactly those bytes, so two files with the same bytes have
    the same chunk hashes wherever the bytes are stored (alone, or packed with other small files).
    """

    hash: str
    object: str
    offset: int
    length: int

    def to_json(self) -> list[str | int]:
        """The compact wire and tree form: ``[hash, object, offset, length]``."""
        return [self.hash, self.object, self.offset, self.length]

    @classmethod
    def from_json(cls, raw: list[str | int]) -> ChunkRef:
        """The inverse of :meth:`to_json`."""
        h, o, off, ln = raw
        return cls(str(h), str(o), int(off), int(ln))


class ObjectStore(Protocol):
    """Immutable blobs addressed by id. ``put`` is idempotent: an existing id is not rewritten."""

    url: str

    def put(self, data: bytes | memoryview, object_id: str | None = None) -> str:
        """Store ``data`` under ``object_id`` (default: its content hash); return the id.

        The object is complete under its id when this returns; it is durable after ``sync``."""
        ...

    def get(self, object_id: str, offset: int = 0, length: int = -1) -> bytes:
        """Read ``length`` bytes (all when -1) from ``offset``; raise NotFound if absent."""
        ...

    def exists(self, object_id: str) -> bool:
        """Whether the object is stored."""
        ...

    def size(self, object_id: str) -> int:
        """The object's size in bytes; raise NotFound if absent."""
        ...

    def delete(self, object_id: str) -> None:
        """Remove an object (garbage collection only); absent ids are ignored."""
        ...

    def sync(self) -> None:
        """Make every object put so far durable. Callers sync before they record metadata that
        points at new objects (objects first, then metadata); a backend whose puts are durable
        when they return does nothing here."""
        ...

    def iter_ids(self) -> Iterator[str]:
        """Every stored object id (garbage collection and checks)."""
        ...


# What every backend checks the same way, with the same errors.


def validate_object_id(object_id: str) -> str:
    """``object_id`` if it is a valid object id, else InvalidArgument."""
    if not isinstance(object_id, str) or not _ID_RE.fullmatch(object_id):
        raise InvalidArgument(
            f"invalid object id {object_id!r}",
            hint="object ids are 3-200 characters of [0-9a-z_-] (content hashes are lowercase hex)",
        )
    return object_id


def fanout_key(object_id: str) -> str:
    """``ab/cdef…``: where a store that fans objects out by id prefix keeps ``object_id``."""
    validate_object_id(object_id)
    return f"{object_id[:2]}/{object_id[2:]}"


def check_range(offset: int, length: int) -> None:
    """Reject a byte range that no object has (``length`` -1 means to the end)."""
    if offset < 0 or length < -1:
        raise InvalidArgument(f"invalid range offset={offset} length={length}")


def check_range_end(object_id: str, offset: int, length: int, size: int) -> None:
    """Reject a byte range that runs past the end of an object of ``size`` bytes."""
    if offset + length > size:
        raise InvalidArgument(
            f"range {offset}+{length} is past the end of object {object_id} ({size} bytes)"
        )


def object_not_found(object_id: str, store_url: str) -> NotFound:
    """The error for an object that is not in the store at ``store_url``."""
    return NotFound(f"object {object_id} not found in {store_url}")
