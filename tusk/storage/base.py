"""Object store interface: immutable, content-addressed blobs by id.

Backends are chosen by URL scheme in :func:`tusk.storage.open_object_store` (``file://`` for a
local directory, ``s3://`` for a bucket). Every backend must pass the contract suite in
``tests/functional/test_object_store_contract.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


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
        return [self.hash, self.object, self.offset, self.length]

    @classmethod
    def from_json(cls, raw: list[str | int]) -> ChunkRef:
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

    def exists(self, object_id: str) -> bool: ...

    def size(self, object_id: str) -> int: ...

    def delete(self, object_id: str) -> None:
        """Remove an object (garbage collection only); absent ids are ignored."""
        ...

    def sync(self) -> None:
        """Make every object put so far durable. Callers sync before they record metadata that
        points at new objects (objects first, then metadata); a backend whose puts are durable
        when they return does nothing here."""
        ...

    def iter_ids(self) -> Iterator[str]: ...
