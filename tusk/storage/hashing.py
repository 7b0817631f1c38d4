"""The one place that picks the content hash: BLAKE3, 64 lowercase hex characters."""

from __future__ import annotations

from collections.abc import Sequence

import blake3

from tusk.storage.base import ChunkRef

# Below this size blake3's thread pool costs more than it saves.
_MULTITHREAD_THRESHOLD = 1 << 20


def hash_bytes(data: bytes | bytearray | memoryview) -> str:
    """The content hash (object id) of ``data``."""
    if len(data) > _MULTITHREAD_THRESHOLD:
        return blake3.blake3(data, max_threads=blake3.blake3.AUTO).hexdigest()
    return blake3.blake3(data).hexdigest()


EMPTY_HASH = hash_bytes(b"")


def file_hash(chunks: Sequence[ChunkRef]) -> str:
    """Hash of a file from its chunk hashes.

    A one-chunk file hashes to that chunk's hash (so a small file's hash is the hash of its bytes),
    an empty file to the hash of no bytes, and a longer file to the hash of its chunk hashes
    concatenated as ASCII hex.
    """
    if not chunks:
        return EMPTY_HASH
    if len(chunks) == 1:
        return chunks[0].hash
    return hash_bytes("".join(c.hash for c in chunks).encode("ascii"))
