"""Object store in a dict, for unit tests and throwaway engines; same contract as the others."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from tusk.storage.base import check_range, check_range_end, object_not_found, validate_object_id
from tusk.storage.hashing import hash_bytes


class MemoryObjectStore:
    """Objects in a dict (for tests and throwaway engines)."""

    def __init__(self) -> None:
        self.url = f"memory://{id(self):x}"
        self._objects: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self.puts = 0  # objects actually written, for tests that count writes

    def put(self, data: bytes | memoryview, object_id: str | None = None) -> str:
        if object_id is None:
            object_id = hash_bytes(data)
        validate_object_id(object_id)
        with self._lock:
            if object_id not in self._objects:
                self._objects[object_id] = bytes(data)
                self.puts += 1
        return object_id

    def get(self, object_id: str, offset: int = 0, length: int = -1) -> bytes:
        check_range(offset, length)
        validate_object_id(object_id)
        try:
            data = self._objects[object_id]
        except KeyError:
            raise object_not_found(object_id, self.url) from None
        if length == -1:
            length = max(len(data) - offset, 0)
        check_range_end(object_id, offset, length, len(data))
        return data[offset : offset + length]

    def exists(self, object_id: str) -> bool:
        return validate_object_id(object_id) in self._objects

    def size(self, object_id: str) -> int:
        try:
            return len(self._objects[validate_object_id(object_id)])
        except KeyError:
            raise object_not_found(object_id, self.url) from None

    def sync(self) -> None:
        pass

    def delete(self, object_id: str) -> None:
        with self._lock:
            self._objects.pop(validate_object_id(object_id), None)

    def iter_ids(self) -> Iterator[str]:
        return iter(sorted(self._objects))
