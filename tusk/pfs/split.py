"""``put-file --split line|json|sql``: one input stream becomes a directory of numbered files.

``sql`` reads pg_dump output as 1.7 does: the header is every line up to and including the first
line starting with ``COPY``; the records are the rows after it, one per line, up to the line
``\\.``; that line and everything after it are the footer. As in 1.7 they become the header and
footer of the directory (see ``put-header``), so the stored files hold only their rows and each
reads as a complete dump of its rows. Directories split before tusk had directory headers hold
the header and footer inside every file; appending to such a directory keeps doing that, so its
files never read the header twice."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from tusk.errors import InvalidArgument, InvalidPath, PathConflict
from tusk.pfs.tree import Delete, Op, PutFile, SetShared, Tree
from tusk.storage import Ingestor
from tusk.storage.hashing import file_hash

if TYPE_CHECKING:
    from tusk.storage.chunking import FileWriter

_SPLIT_NAME = re.compile(r"^[0-9a-f]{16}$")


class Splitter:
    """Cuts one input stream into records and records into numbered files."""

    def __init__(
        self, ingestor: Ingestor, mode: str, target_datums: int, target_bytes: int
    ) -> None:
        if mode not in ("line", "json", "sql"):
            raise InvalidArgument(
                f"unknown split type {mode!r}", hint="use --split line, json or sql"
            )
        if target_datums < 0 or target_bytes < 0:
            raise InvalidArgument("--target-file-datums and --target-file-bytes must be >= 0")
        self.ingestor = ingestor
        self.mode = mode
        self.target_datums = target_datums
        self.target_bytes = target_bytes
        self.writers: list[FileWriter] = []
        self._buf = b""
        self._records_in_file = 0
        self._bytes_in_file = 0
        self._decoder = json.JSONDecoder()
        self.size = 0
        self._sql_part = "header"  # sql: header, rows, then footer
        self._header = bytearray()
        self._footer: FileWriter | None = None
        self._header_writer: FileWriter | None = None

    def _emit(self, record: bytes) -> None:
        full = self._records_in_file > 0 and (
            (self.target_datums and self._records_in_file >= self.target_datums)
            or (self.target_bytes and self._bytes_in_file >= self.target_bytes)
            or (not self.target_datums and not self.target_bytes)
        )
        if not self.writers or full:
            if self.writers:
                self.writers[-1].close()
            self.writers.append(self.ingestor.open_file())
            self._records_in_file = 0
            self._bytes_in_file = 0
        self.writers[-1].write(record)
        self._records_in_file += 1
        self._bytes_in_file += len(record)
        self.size += len(record)

    def write(self, data: bytes | memoryview) -> None:
        """Bytes of the stream; whole records go to files as they complete."""
        self._buf += bytes(data)
        if self.mode == "sql":
            self._drain_sql(final=False)
        elif self.mode == "line":
            *lines, self._buf = self._buf.split(b"\n")
            for line in lines:
                self._emit(line + b"\n")
        else:
            self._drain_json(final=False)

    def _drain_json(self, final: bool) -> None:
        text = self._buf.decode("utf-8", errors="strict") if final else None
        if text is None:
            try:
                text = self._buf.decode("utf-8")
            except UnicodeDecodeError:
                return  # a multi-byte character is cut; wait for more bytes
        pos = 0
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos >= len(text):
                break
            try:
                _, end = self._decoder.raw_decode(text, pos)
            except json.JSONDecodeError as e:
                if final:
                    raise InvalidArgument(
                        f"--split json: invalid JSON value at byte {pos}: {e.msg}",
                        hint="the input must be a sequence of JSON values",
                    ) from None
                break
            if end == len(text) and not final and text[pos] not in '{["':
                break  # a bare number may continue in the next block
            self._emit(text[pos:end].encode())
            pos = end
        self._buf = text[pos:].encode()

    def _drain_sql(self, final: bool) -> None:
        buf, pos = self._buf, 0
        while self._sql_part != "footer":
            nl = buf.find(b"\n", pos)
            if nl < 0:
                if not final or pos >= len(buf):
                    break
                nl = len(buf) - 1  # the last line, without a new line
            line, pos = buf[pos : nl + 1], nl + 1
            if self._sql_part == "header":
                self._header += line
                if line.startswith(b"COPY"):
                    self._sql_part = "rows"
            elif line in (b"\\.\n", b"\\."):  # the end of the rows: the footer starts
                self._sql_part = "footer"
                self._footer = self.ingestor.open_file()
                self._footer.write(line)
            else:
                self._emit(line)
        if self._footer is not None:
            self._footer.write(buf[pos:])
            self._buf = b""
        else:
            self._buf = buf[pos:]

    def close(self) -> None:
        """End the stream; the last record (and file) is written."""
        if self.mode == "sql":
            self._drain_sql(final=True)
            if self._sql_part == "header":
                raise InvalidArgument(
                    "--split sql: invalid header - missing row inserts",
                    hint="the input must be pg_dump output with a COPY ... FROM stdin; block",
                )
            if self._sql_part == "rows":
                raise InvalidArgument(
                    "--split sql: invalid pgdump - missing footer",
                    hint="the rows of the COPY block must end with a line \\.",
                )
            header = self.ingestor.open_file()
            header.write(bytes(self._header))
            header.close()
            self._header_writer = header
            assert self._footer is not None
            self._footer.close()
            if self.writers:
                self.writers[-1].close()
            return
        if self.mode == "line":
            if self._buf:
                self._emit(self._buf)
                self._buf = b""
        else:
            self._drain_json(final=True)
        if self.writers:
            self.writers[-1].close()

    def ops(self, tree: Tree, root: str, path: str, overwrite: bool) -> list[Op]:
        """The tree operations that put the files under ``path``, after any earlier split."""
        node = tree.get(root, path)
        ops: list[Op] = []
        start = 0
        embedded = False  # an older sql split: every file holds the header and footer
        if node is not None and node.kind == "file":
            raise PathConflict(
                f"cannot split into {path}: it is a file",
                hint="split into a new path, or delete the file first",
            )
        if node is not None and overwrite:
            ops.append(Delete(path))
        elif node is not None:
            names = [c.path.rsplit("/", 1)[-1] for c in tree.list_dir(root, path)]
            bad = [n for n in names if not _SPLIT_NAME.match(n)]
            if bad:
                raise InvalidPath(
                    f"cannot split into {path}: it holds files that were not made by a split "
                    f"({bad[0]})",
                    hint="split into an empty or new directory",
                )
            start = max((int(n, 16) for n in names), default=-1) + 1
            embedded = self.mode == "sql" and bool(names) and not tree.shared(root, path)
        if self.mode == "sql":
            assert self._footer is not None
            head, foot = self._header_writer, self._footer
            assert head is not None
            if not embedded:
                ops.append(SetShared(path, "header", tuple(head.chunks)))
                ops.append(SetShared(path, "footer", tuple(foot.chunks)))
                ops.extend(self._plain_ops(path, start))
                return ops
            for i, w in enumerate(self.writers):
                chunks = [*head.chunks, *w.chunks, *foot.chunks]
                size = head.size + w.size + foot.size
                ops.append(
                    PutFile(f"{path}/{start + i:016x}", tuple(chunks), size, file_hash(chunks))
                )
            return ops
        ops.extend(self._plain_ops(path, start))
        return ops

    def _plain_ops(self, path: str, start: int) -> list[Op]:
        return [
            PutFile(f"{path}/{start + i:016x}", tuple(w.chunks), w.size, w.hash)
            for i, w in enumerate(self.writers)
        ]
