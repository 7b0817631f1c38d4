"""One put-file invocation: files ingested as their bytes stream in, then written as one commit.

Appending re-chunks from the end of the existing file, so only the tail is stored again.

Memory stays flat in the number of files: a file's writer lives only until its chunks are final
(a pack is written every ``PACK_MEMBERS`` small files at most), then the file is a row in a
private on-disk SQLite spill; the commit reads the rows back in path order and writes the tree
in batches of ``TREE_BATCH`` files, each batch applied to the root the previous one produced.
Nothing is recorded in metadata before the last batch is written, so a put is still one commit
or nothing (a kill -9 leaves only unreferenced objects behind).
"""

from __future__ import annotations

import json
import sqlite3
from collections import deque
from collections.abc import Callable, Iterator
from typing import Literal

from tusk.api.models import CommitKey, PutResult
from tusk.errors import PathConflict
from tusk.faults import crash_point
from tusk.memory import release_free_memory
from tusk.pfs.paths import clean_path
from tusk.pfs.split import Splitter
from tusk.pfs.tree import Op, PutFile, SetShared, Tree
from tusk.storage import ChunkRef, Ingestor, ObjectStore, append_chunks, file_hash, read_chunks
from tusk.storage.chunking import FileWriter

# Builds the operations of a write from the tree it lands on (called again on a retry).
BuildOps = Callable[[str], list[Op]]
# Writes onto the tree it is given and returns the new root (called again on a retry).
BuildRoot = Callable[[str], str]
Part = Literal["header", "footer"]

TREE_BATCH = 20_000  # files per tree write of a big put: bounds the commit's working set
RELEASE_AFTER = 10_000  # files of a put after which freed memory is given back to the OS

_PLAIN, _HEADER, _FOOTER, _SPLIT = 0, 1, 2, 3


class PutBatch:
    """One put-file invocation: any number of files, ingested as they stream, one commit."""

    def __init__(
        self,
        store: ObjectStore,
        tree: Tree,
        write: Callable[[BuildRoot, str], CommitKey],
        *,
        tree_batch: int | None = None,
    ) -> None:
        self.store = store
        self.tree = tree
        self._write = write
        self._tree_batch = max(1, TREE_BATCH if tree_batch is None else tree_batch)
        self.ingestor = Ingestor(store)
        self._open: deque[_Entry] = deque()  # begun, chunks not final yet, in order
        self._current: _Entry | None = None
        self._splitters: dict[int, Splitter] = {}
        self._files = 0
        self._bytes = 0
        self._ordered = False  # a split or a header/footer: replay in put order, not path order
        # "" is a private temporary database on disk, removed when closed
        self._spill = sqlite3.connect("", check_same_thread=False, isolation_level=None)
        self._spill.execute(
            "CREATE TABLE f (seq INTEGER PRIMARY KEY, path TEXT NOT NULL, kind INTEGER NOT NULL,"
            " overwrite INTEGER NOT NULL, chunks TEXT NOT NULL)"
        )
        self._spill.execute("BEGIN")
        self._rows: list[tuple[int, str, int, int, str]] = []

    def begin_file(
        self,
        path: str,
        *,
        overwrite: bool = False,
        split: str | None = None,
        target_datums: int = 0,
        target_bytes: int = 0,
        shared: Part | None = None,
    ) -> None:
        """Start the next file; its bytes follow through ``write``. ``shared``: the bytes are
        the header or footer of the directory ``path`` (put-header / put-footer)."""
        # Only a split or a header may target the root (a directory); a file needs a name, and
        # a bad path must fail before any bytes are uploaded.
        entry = _Entry(self._files, clean_path(path, allow_root=bool(split or shared)), overwrite)
        self._files += 1
        if shared is not None:
            entry.kind = _HEADER if shared == "header" else _FOOTER
            self._ordered = True
        if split:
            entry.kind = _SPLIT
            entry.splitter = Splitter(self.ingestor, split, target_datums, target_bytes)
            self._ordered = True
        else:
            entry.writer = self.ingestor.open_file()
        self._open.append(entry)
        self._current = entry

    def write(self, data: bytes | memoryview) -> None:
        """Bytes of the current file."""
        assert self._current is not None, "write before begin_file"
        if self._current.splitter is not None:
            self._current.splitter.write(data)
        else:
            assert self._current.writer is not None
            self._current.writer.write(data)

    def end_file(self) -> None:
        """End the current file."""
        entry = self._current
        assert entry is not None
        if entry.splitter is not None:
            entry.splitter.close()
            self._bytes += entry.splitter.size
        elif entry.writer is not None:
            entry.writer.close()
            self._bytes += entry.writer.size
        self._current = None
        self._spill_final()

    def _spill_final(self) -> None:
        """Move the leading files whose chunks are final from memory to the spill."""
        while self._open and self._open[0] is not self._current and self._open[0].final:
            e = self._open.popleft()
            if e.splitter is not None:
                self._splitters[e.seq] = e.splitter
                chunks = "[]"
            else:
                assert e.writer is not None
                chunks = json.dumps([c.to_json() for c in e.writer.chunks], separators=(",", ":"))
            self._rows.append((e.seq, e.path, e.kind, int(e.overwrite), chunks))
        if len(self._rows) >= 1000:
            self._spill.executemany("INSERT INTO f VALUES (?, ?, ?, ?, ?)", self._rows)
            self._rows = []

    def _replay(self) -> Iterator[tuple[int, str, int, bool, list[ChunkRef]]]:
        """The spilled files in path order (files at different paths commute, and one path's
        puts keep their order), or in put order when a split or a header is among them."""
        order = "seq" if self._ordered else "path, seq"
        cur = self._spill.execute(
            f"SELECT seq, path, kind, overwrite, chunks FROM f ORDER BY {order}"
        )
        while rows := cur.fetchmany(1000):
            for seq, path, kind, overwrite, raw in rows:
                chunks = [ChunkRef.from_json(c) for c in json.loads(raw)]
                yield seq, path, kind, bool(overwrite), chunks

    def commit(self, description: str = "") -> PutResult:
        """Store what was written as one commit (or into the open commit) and report it."""
        self.ingestor.flush()
        self._spill_final()
        assert not self._open, "a file was not ended"
        if self._rows:
            self._spill.executemany("INSERT INTO f VALUES (?, ?, ?, ?, ?)", self._rows)
            self._rows = []
        try:
            key = self._write(self._build, description)
        finally:
            self._spill.close()
            if self._files >= RELEASE_AFTER:
                release_free_memory()
        return PutResult(
            commit=key,
            files=self._files,
            bytes=self._bytes,
            stored_bytes=self.ingestor.ingested_bytes,
        )

    def _build(self, root: str) -> str:
        """Write every spilled file onto ``root``, ``tree_batch`` files per tree write."""
        tree = self.tree
        ops: list[Op] = []
        state: dict[str, list[ChunkRef]] = {}
        for seq, path, kind, overwrite, new in self._replay():
            if kind == _SPLIT:
                # a split reads the tree it lands on: write what came before it first
                if ops:
                    root, ops, state = tree.apply(root, ops), [], {}
                root = tree.apply(root, self._splitters[seq].ops(tree, root, path, overwrite))
                continue
            if kind in (_HEADER, _FOOTER):
                part: Part = "header" if kind == _HEADER else "footer"
                ops.append(SetShared(path, part, self._shared_chunks(new)))
                continue
            if overwrite:
                chunks = new
            else:
                if path in state:
                    old_chunks = state[path]
                else:
                    old = tree.get(root, path)
                    if old is not None and old.kind == "dir":
                        raise PathConflict(
                            f"cannot put file {path}: a directory exists at that path",
                            hint="choose another path or delete the directory first",
                        )
                    old_chunks = list(old.chunks) if old is not None else []
                chunks = append_chunks(self.store, old_chunks, new)
            state[path] = chunks
            ops.append(
                PutFile(path, tuple(chunks), sum(c.length for c in chunks), file_hash(chunks))
            )
            if len(ops) >= self._tree_batch:
                root, ops, state = tree.apply(root, ops), [], {}
                crash_point("put-tree-batch")
        return tree.apply(root, ops)

    def _shared_chunks(self, chunks: list[ChunkRef]) -> tuple[ChunkRef, ...]:
        """A header's or footer's chunks; none (removing it) for empty content or a lone new
        line, which is what ``echo "" | pachctl put-header ...`` sends."""
        size = sum(c.length for c in chunks)
        if size == 0:
            return ()
        if size == 1 and b"".join(read_chunks(self.store, chunks)) == b"\n":
            return ()
        return tuple(chunks)


class _Entry:
    __slots__ = ("seq", "path", "overwrite", "kind", "writer", "splitter")

    def __init__(self, seq: int, path: str, overwrite: bool) -> None:
        self.seq = seq
        self.path = path
        self.overwrite = overwrite
        self.kind = _PLAIN
        self.writer: FileWriter | None = None
        self.splitter: Splitter | None = None

    @property
    def final(self) -> bool:
        # a split's files are read only at the commit, after the ingestor's flush
        return self.writer is None or self.writer.final
