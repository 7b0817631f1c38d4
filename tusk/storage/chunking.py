"""Ingesting file contents into an object store, and reading them back.

Large files are cut by content-defined chunking (FastCDC 2020), each chunk stored as its own
object named by its hash, so an append or a small edit stores only the chunks that changed and
identical chunks are stored once. Small files are packed: their bytes are appended to a shared
pack object of about ``pack_target`` bytes, so ten thousand 1 KiB files cost two object writes.

Objects are written before :meth:`Ingestor.flush` returns; only then are a writer's ``chunks``
final and may be recorded in metadata (objects first, then metadata).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait

from pyfastcdc import FastCDC

from tusk.errors import Internal, InvalidArgument
from tusk.storage.base import ChunkRef, ObjectStore, check_range
from tusk.storage.hashing import file_hash, hash_bytes

AVG_CHUNK_SIZE = 1 << 20
MIN_CHUNK_SIZE = 256 << 10
MAX_CHUNK_SIZE = 4 << 20
PACK_TARGET = 8 << 20
# Small files per pack at most: a member's writer lives until its pack is written, so tiny files
# (a million of 8 bytes fit one 8 MiB pack) would otherwise all be held in memory at once.
PACK_MEMBERS = 10_000
SMALL_FILE_LIMIT = 256 << 10

# Bytes of one file buffered before cutting; the buffer holds at most this plus one max chunk.
_WINDOW = 4 * MAX_CHUNK_SIZE
_WORKERS = max(2, min(4, 2 * (os.cpu_count() or 1)))

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """Threads that hash and store chunks (both release the GIL), shared by all ingestors."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="tusk-chunk")
        return _pool


def _forget_pool_after_fork() -> None:
    # A forked child inherits the pool object but not its threads; tasks would never run.
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_pool_after_fork)


class Ingestor:
    """Turns file contents into stored chunks. Use from one thread; open any number of files."""

    def __init__(
        self,
        store: ObjectStore,
        pack_target: int = PACK_TARGET,
        small_file_limit: int = SMALL_FILE_LIMIT,
    ) -> None:
        if pack_target <= 0 or small_file_limit < 0:
            raise InvalidArgument("pack_target must be > 0 and small_file_limit >= 0")
        self.store = store
        self.pack_target = pack_target
        self.small_file_limit = small_file_limit
        self.ingested_bytes = 0  # bytes written to the store (dedup hits excluded)
        self.objects_written = 0
        self._cdc = FastCDC(AVG_CHUNK_SIZE, min_size=MIN_CHUNK_SIZE, max_size=MAX_CHUNK_SIZE)
        self._known: set[str] = set()  # chunk ids known to be in the store
        self._pack = bytearray()
        self._pack_members: list[tuple[FileWriter, str, int, int]] = []
        self._pack_offsets: dict[str, int] = {}

    def __enter__(self) -> Ingestor:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.flush()

    def open_file(self) -> FileWriter:
        """A writer for a new file."""
        return FileWriter(self)

    def open_append(self, existing: Sequence[ChunkRef]) -> FileWriter:
        """A writer for ``existing`` plus whatever is written to it.

        Re-chunks from the start of the last existing chunk, which is where a fresh chunking of
        the whole file would cut too, so only the tail chunk and the new bytes are stored.
        """
        if not existing:
            return FileWriter(self)
        last = existing[-1]
        writer = FileWriter(self, existing[:-1])
        writer.write(self.store.get(last.object, last.offset, last.length))
        return writer

    def flush(self) -> None:
        """Write the pending pack and make every stored chunk durable; afterwards every closed
        writer's chunks are final and may be recorded in metadata."""
        if self._pack_members:
            self._write_pack()
        self.store.sync()

    def _add_small(self, writer: FileWriter, data: bytearray) -> None:
        digest = hash_bytes(data)
        offset = self._pack_offsets.get(digest)
        if offset is None:
            offset = len(self._pack)
            self._pack += data
            self._pack_offsets[digest] = offset
        self._pack_members.append((writer, digest, offset, len(data)))
        if len(self._pack) >= self.pack_target or len(self._pack_members) >= PACK_MEMBERS:
            self._write_pack()

    def _write_pack(self) -> None:
        pack, members = self._pack, self._pack_members
        self._pack, self._pack_members, self._pack_offsets = bytearray(), [], {}
        pack_id = hash_bytes(pack)
        if not self.store.exists(pack_id):
            self.store.put(memoryview(pack), pack_id)
            self.ingested_bytes += len(pack)
            self.objects_written += 1
        for writer, digest, offset, length in members:
            writer._finish([ChunkRef(digest, pack_id, offset, length)])

    def _emit(self, view: memoryview, out: list[ChunkRef], final: bool) -> int:
        """Cut ``view``, store its chunks and append their refs to ``out``.

        Unless ``final``, the last chunk is held back (more bytes may move its end) and its start
        is returned; ``view`` is no longer referenced when this returns.
        """
        pool = _executor()
        futures: list[Future[tuple[str, int]]] = []
        spans: list[tuple[int, int]] = []
        pending: tuple[int, int] | None = None
        for chunk in self._cdc.cut_buf(view):
            if pending is not None:
                start, end = pending
                futures.append(pool.submit(self._store_chunk, [view[start:end]]))
                spans.append(pending)
            pending = (chunk.offset, chunk.offset + chunk.length)
        assert pending is not None, "cut of a non-empty buffer yields a chunk"
        tail = pending[0]
        if final:
            start, end = pending
            futures.append(pool.submit(self._store_chunk, [view[start:end]]))
            spans.append(pending)
            tail = len(view)
        wait(futures)  # every task has released its view, even if one of them failed
        for (start, end), future in zip(spans, futures, strict=True):
            digest, stored = future.result()
            out.append(ChunkRef(digest, digest, 0, end - start))
            if stored:
                self.ingested_bytes += stored
                self.objects_written += 1
        return tail

    def _store_chunk(self, box: list[memoryview]) -> tuple[str, int]:
        # The view comes in a box so the executor's work item drops it with the box emptied;
        # it is released here, before the result is published, so the caller may reuse its buffer.
        with box.pop() as view:
            digest = hash_bytes(view)
            if digest in self._known or self.store.exists(digest):
                self._known.add(digest)
                return digest, 0
            self.store.put(view, digest)
            self._known.add(digest)
            return digest, len(view)


class FileWriter:
    """One file being ingested: ``write`` any number of times, then ``close``."""

    def __init__(self, ingestor: Ingestor, prefix: Sequence[ChunkRef] = ()) -> None:
        self._ingestor = ingestor
        self._prefix = list(prefix)
        self._prefix_size = sum(c.length for c in self._prefix)
        self._own: list[ChunkRef] = []
        self._buf = bytearray()  # bytes not yet cut into final chunks; starts at a boundary
        self._written = 0
        self._closed = False
        self._chunks: list[ChunkRef] | None = None
        self._hash: str | None = None

    def __enter__(self) -> FileWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._closed = True
            self._buf = bytearray()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes to the file."""
        if self._closed:
            raise InvalidArgument("write to a closed file")
        view = data if isinstance(data, memoryview) else memoryview(data)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        if not view:
            return
        self._written += len(view)
        try:
            self._write(view)
        except BaseException:
            self._closed = True  # chunk state is unknown now; the file must be written again
            self._buf = bytearray()
            raise

    def _write(self, view: memoryview) -> None:
        ingestor = self._ingestor
        while True:
            buf = self._buf
            if len(buf) + len(view) < _WINDOW:
                buf += view
                return
            if not buf:
                # Cut the caller's bytes in place; only the trailing chunk is copied.
                tail = ingestor._emit(view, self._own, final=False)
                self._buf = bytearray(view[tail:])
                return
            # Join the carry with one max chunk of new bytes: the chunk ending the carry is then
            # complete and the last chunk of the join starts inside ``view``.
            take = min(len(view), MAX_CHUNK_SIZE)
            carried = len(buf)
            buf += view[:take]
            tail = ingestor._emit(memoryview(buf), self._own, final=False)
            if tail >= carried:
                self._buf = bytearray()
                view = view[tail - carried :]
            else:
                self._buf = bytearray(memoryview(buf)[tail:])
                view = view[take:]
            if not view:
                return

    def close(self) -> None:
        """End the file; its chunks are final after the ingestor's ``flush``."""
        if self._closed:
            return
        self._closed = True
        buf, self._buf = self._buf, bytearray()
        ingestor = self._ingestor
        if not self._own and self._written <= ingestor.small_file_limit:
            if self._written:
                ingestor._add_small(self, buf)
            else:
                self._finish([])
            return
        if buf:
            ingestor._emit(memoryview(buf), self._own, final=True)
        self._finish(self._own)

    def _finish(self, own: list[ChunkRef]) -> None:
        self._chunks = self._prefix + own if self._prefix else own
        self._hash = file_hash(self._chunks)

    @property
    def final(self) -> bool:
        """Whether ``chunks`` and ``hash`` are final."""
        return self._chunks is not None

    @property
    def chunks(self) -> list[ChunkRef]:
        """The file's chunks, once final."""
        if self._chunks is None:
            raise Internal("a file's chunks are final only after close() and Ingestor.flush()")
        return self._chunks

    @property
    def hash(self) -> str:
        """The file's hash, once final."""
        if self._hash is None:
            raise Internal("a file's hash is final only after close() and Ingestor.flush()")
        return self._hash

    @property
    def size(self) -> int:
        """Bytes in the file so far."""
        return self._prefix_size + self._written


def append_chunks(
    store: ObjectStore, existing: Sequence[ChunkRef], new: Sequence[ChunkRef]
) -> list[ChunkRef]:
    """The chunks of a file ``existing`` with the stored bytes of ``new`` appended.

    Re-chunks as :meth:`Ingestor.open_append` does, so only the tail is stored again; the new
    objects are durable when this returns.
    """
    if not existing or not new:
        return [*existing, *new]
    with Ingestor(store) as ingestor:
        writer = ingestor.open_append(existing)
        for piece in read_chunks(store, new):
            writer.write(piece)
        writer.close()
    return writer.chunks


def read_chunks(
    store: ObjectStore, chunks: Sequence[ChunkRef], offset: int = 0, length: int = -1
) -> Iterator[bytes]:
    """Stream ``length`` bytes (to the end when -1) of a file from ``offset``, chunk by chunk."""
    check_range(offset, length)
    end = None if length == -1 else offset + length
    position = 0
    for chunk in chunks:
        start, position = position, position + chunk.length
        if position <= offset:
            continue
        if end is not None and start >= end:
            return
        lo = max(offset - start, 0)
        hi = chunk.length if end is None else min(end - start, chunk.length)
        if hi > lo:
            yield store.get(chunk.object, chunk.offset + lo, hi - lo)
