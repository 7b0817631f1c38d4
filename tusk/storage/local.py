"""Object store in a local directory: ``root/objects/<first 2 chars of id>/<rest of id>``."""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from tusk.errors import Internal
from tusk.storage.base import check_range, check_range_end, fanout_key, object_not_found
from tusk.storage.hashing import hash_bytes

_TMP_PREFIX = "."  # ids never start with a dot, so temp files never look like objects
_MAX_WRITE = 1 << 30


class LocalObjectStore:
    """Immutable objects as files; each put is atomic (temp file + rename) and idempotent.

    With ``durable`` (the default) the files written and their directories are fsynced by
    ``sync``, which callers run before recording metadata that points at them, so a crash never
    loses an object that metadata refers to. Deferring the fsyncs to one batch lets ingestion
    run at disk speed instead of waiting for the disk after every chunk.
    """

    def __init__(self, root: Path | str, durable: bool = True) -> None:
        self.root = Path(root).absolute()
        self.durable = durable
        self.url = self.root.as_uri()
        self._objects = self.root / "objects"
        self._objects.mkdir(parents=True, exist_ok=True)
        self._made_dirs: set[str] = set()
        self._unsynced_dirs: set[str] = set()
        self._lock = threading.Lock()
        self._syncer = _BackgroundSyncer() if durable else None

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self.root)!r}, durable={self.durable})"

    def _path(self, object_id: str) -> str:
        return f"{self._objects}/{fanout_key(object_id)}"

    def put(self, data: bytes | memoryview, object_id: str | None = None) -> str:
        if object_id is None:
            object_id = hash_bytes(data)
        path = self._path(object_id)
        if os.path.exists(path):
            return object_id
        directory = os.path.dirname(path)
        if directory not in self._made_dirs:
            if not os.path.isdir(directory):
                os.makedirs(directory, exist_ok=True)
                if self.durable:
                    with self._lock:
                        self._unsynced_dirs.add(str(self._objects))
            self._made_dirs.add(directory)
        tmp = f"{directory}/{_TMP_PREFIX}{object_id[2:]}.{secrets.token_hex(6)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            try:
                view = memoryview(data).cast("B")
                while view:
                    written = os.write(fd, view[:_MAX_WRITE])
                    view = view[written:]
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        if self._syncer is not None:
            self._syncer.enqueue(path)
            with self._lock:
                self._unsynced_dirs.add(directory)
        return object_id

    def sync(self) -> None:
        if self._syncer is None:
            return
        self._syncer.wait()
        with self._lock:
            dirs, self._unsynced_dirs = self._unsynced_dirs, set()
        for d in sorted(dirs, key=len, reverse=True):
            _fsync(d)

    def get(self, object_id: str, offset: int = 0, length: int = -1) -> bytes:
        check_range(offset, length)
        path = self._path(object_id)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise object_not_found(object_id, self.url) from None
        try:
            size = os.fstat(fd).st_size
            if length == -1:
                length = max(size - offset, 0)
            check_range_end(object_id, offset, length, size)
            if offset == 0 and length == size:
                return _read_all(fd, size)
            return _pread_all(fd, length, offset)
        finally:
            os.close(fd)

    def exists(self, object_id: str) -> bool:
        return os.path.exists(self._path(object_id))

    def size(self, object_id: str) -> int:
        try:
            return os.stat(self._path(object_id)).st_size
        except FileNotFoundError:
            raise object_not_found(object_id, self.url) from None

    def delete(self, object_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(object_id))

    def iter_ids(self) -> Iterator[str]:
        try:
            prefixes = sorted(e.name for e in os.scandir(self._objects) if e.is_dir())
        except FileNotFoundError:
            return
        for prefix in prefixes:
            try:
                names = sorted(os.listdir(self._objects / prefix))
            except FileNotFoundError:
                continue
            for name in names:
                if not name.startswith(_TMP_PREFIX):
                    yield prefix + name


def _read_all(fd: int, size: int) -> bytes:
    data = os.read(fd, size)
    if len(data) == size:
        return data
    return _pread_all(fd, size, 0)


def _pread_all(fd: int, length: int, offset: int) -> bytes:
    data = os.pread(fd, length, offset)
    if len(data) == length:
        return data
    parts = [data]
    got = len(data)
    while got < length:
        part = os.pread(fd, length - got, offset + got)
        if not part:
            raise Internal(f"object file truncated while reading ({got} of {length} bytes)")
        parts.append(part)
        got += len(part)
    return b"".join(parts)


class _BackgroundSyncer:
    """Fsyncs written objects on two background threads while ingestion goes on, so that
    ``sync`` (before metadata is recorded) only waits for the last few."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: deque[str] = deque()
        self._inflight = 0
        self._threads: list[threading.Thread] = []
        self._error: OSError | None = None

    def enqueue(self, path: str) -> None:
        with self._cond:
            self._queue.append(path)
            if len(self._threads) < 2:
                t = threading.Thread(target=self._run, name="object-fsync", daemon=True)
                self._threads.append(t)
                t.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                path = self._queue.popleft()
                self._inflight += 1
            try:
                _fsync(path)
            except FileNotFoundError:
                pass  # deleted (garbage collection) before it was synced
            except OSError as exc:
                with self._cond:
                    self._error = exc
            finally:
                with self._cond:
                    self._inflight -= 1
                    self._cond.notify_all()

    def wait(self) -> None:
        with self._cond:
            while self._queue or self._inflight:
                self._cond.wait()
            error, self._error = self._error, None
        if error is not None:
            raise error


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
