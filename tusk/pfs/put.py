"""One put-file invocation: files ingested as their bytes stream in, then written as one commit.

Appending re-chunks from the end of the existing file, so only the tail is stored again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from tusk.api.models import CommitKey, PutResult
from tusk.errors import PathConflict
from tusk.pfs.paths import clean_path
from tusk.pfs.split import Splitter
from tusk.pfs.tree import Op, PutFile, SetShared, Tree
from tusk.storage import ChunkRef, Ingestor, ObjectStore, append_chunks, file_hash, read_chunks
from tusk.storage.chunking import FileWriter

# Builds the operations of a write from the tree it lands on (called again on a retry).
BuildOps = Callable[[str], list[Op]]
Part = Literal["header", "footer"]


class PutBatch:
    """One put-file invocation: any number of files, ingested as they stream, one commit."""

    def __init__(
        self, store: ObjectStore, tree: Tree, write: Callable[[BuildOps, str], CommitKey]
    ) -> None:
        self.store = store
        self.tree = tree
        self._write = write
        self.ingestor = Ingestor(store)
        self.entries: list[_Entry] = []
        self._current: _Entry | None = None

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
        entry = _Entry(clean_path(path, allow_root=bool(split or shared)), overwrite)
        entry.shared = shared
        if split:
            entry.splitter = Splitter(self.ingestor, split, target_datums, target_bytes)
        else:
            entry.writer = self.ingestor.open_file()
        self.entries.append(entry)
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
        assert self._current is not None
        if self._current.splitter is not None:
            self._current.splitter.close()
        elif self._current.writer is not None:
            self._current.writer.close()
        self._current = None

    def commit(self, description: str = "") -> PutResult:
        """Store what was written as one commit (or into the open commit) and report it."""
        self.ingestor.flush()
        tree = self.tree
        total = sum(e.size for e in self.entries)

        def build(root: str) -> list[Op]:
            ops: list[Op] = []
            state: dict[str, list[ChunkRef]] = {}
            for e in self.entries:
                if e.splitter is not None:
                    ops.extend(e.splitter.ops(tree, root, e.path, e.overwrite))
                    continue
                assert e.writer is not None
                if e.shared is not None:
                    ops.append(SetShared(e.path, e.shared, self._shared_chunks(e.writer)))
                    continue
                new = list(e.writer.chunks)
                if e.overwrite:
                    chunks = new
                else:
                    if e.path in state:
                        old_chunks = state[e.path]
                    else:
                        old = tree.get(root, e.path)
                        if old is not None and old.kind == "dir":
                            raise PathConflict(
                                f"cannot put file {e.path}: a directory exists at that path",
                                hint="choose another path or delete the directory first",
                            )
                        old_chunks = list(old.chunks) if old is not None else []
                    chunks = append_chunks(self.store, old_chunks, new)
                state[e.path] = chunks
                ops.append(
                    PutFile(e.path, tuple(chunks), sum(c.length for c in chunks), file_hash(chunks))
                )
            return ops

        key = self._write(build, description)
        return PutResult(
            commit=key,
            files=len(self.entries),
            bytes=total,
            stored_bytes=self.ingestor.ingested_bytes,
        )

    def _shared_chunks(self, writer: FileWriter) -> tuple[ChunkRef, ...]:
        """A header's or footer's chunks; none (removing it) for empty content or a lone new
        line, which is what ``echo "" | pachctl put-header ...`` sends."""
        if writer.size == 0:
            return ()
        if writer.size == 1 and b"".join(read_chunks(self.store, writer.chunks)) == b"\n":
            return ()
        return tuple(writer.chunks)


class _Entry:
    __slots__ = ("path", "overwrite", "writer", "splitter", "shared")

    def __init__(self, path: str, overwrite: bool) -> None:
        self.path = path
        self.overwrite = overwrite
        self.writer: FileWriter | None = None
        self.splitter: Splitter | None = None
        self.shared: Part | None = None

    @property
    def size(self) -> int:
        if self.writer is not None:
            return self.writer.size
        return self.splitter.size if self.splitter is not None else 0
