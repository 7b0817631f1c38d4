"""The bulk parts of ``pfs_v2.API``: file bytes out (GetFile, GetFileTAR) and in (ModifyFile)."""

from __future__ import annotations

import contextlib
import queue
import tarfile
import threading
import time
from collections.abc import Iterator
from typing import Any, cast

import betterproto
from betterproto.lib.google.protobuf import BytesValue
from pachyderm_sdk.api import pfs

from tusk.api.models import FileInfo
from tusk.errors import InvalidArgument, NotFound
from tusk.grpc import convert as cv
from tusk.grpc.base import Unimplemented
from tusk.grpc.wire import bytes_value_wire
from tusk.pfs.put import PutBatch
from tusk.runtime import Engine

CHUNK = 1 << 20  # bytes of a GetFile message (clients accept up to 20 MiB; 1 MiB costs
# client and server the least CPU per byte in grpc_bench: fewer, larger messages meet the
# allocator's slow path for big buffers, smaller ones pay per-message costs)
PREFETCH_POLL = 0.5  # seconds between checks of a prefetch thread's stop flag


class RawBytes(BytesValue):
    """A ``BytesValue`` answer already on the wire: its tag, length and payload were joined
    in one copy (betterproto would copy the payload again at every level of encoding)."""

    def __init__(self, wire: bytes) -> None:
        # not betterproto's __init__: only __bytes__ is ever asked of an answer
        self._wire = wire

    def __bytes__(self) -> bytes:
        return self._wire


def chunks(it: Iterator[bytes]) -> Iterator[RawBytes]:
    """The bytes of ``it`` as ``BytesValue`` answers of ``CHUNK`` bytes (the last one shorter),
    each payload copied once, straight into its message."""
    buf: list[bytes | memoryview] = []
    size = 0
    for piece in it:
        view = memoryview(piece)
        while view:
            part = view[: CHUNK - size]
            buf.append(part)
            size += len(part)
            view = view[len(part) :]
            if size == CHUNK:
                yield RawBytes(bytes_value_wire(buf, size))
                buf, size = [], 0
    if buf:
        yield RawBytes(bytes_value_wire(buf, size))


def tar_stream(e: Engine, repo: str, ref: str, infos: list[FileInfo]) -> Iterator[bytes]:
    """A tar stream of the files (and directories) ``infos``, each file's bytes streamed."""
    for info in infos:
        entry = tarfile.TarInfo(info.path.rstrip("/") or "/")  # absolute, as pachd names them
        entry.mtime = int(time.time())
        if info.type == "dir":
            entry.type = tarfile.DIRTYPE
            entry.mode = 0o755
            yield entry.tobuf(format=tarfile.PAX_FORMAT)
            continue
        entry.size = info.size_bytes
        entry.mode = 0o644
        yield entry.tobuf(format=tarfile.PAX_FORMAT)
        yield from e.files.get(repo, ref, info.path, headers=False)  # sized as stored
        pad = -info.size_bytes % tarfile.BLOCKSIZE
        if pad:
            yield b"\0" * pad
    yield b"\0" * (2 * tarfile.BLOCKSIZE)


class Prefetch:
    """Receives (and parses) the next requests of a stream on a thread of its own while the
    current one is being stored, as the HTTP put route overlaps receiving and ingesting."""

    DEPTH = 2  # messages held ahead (each up to the clients' 19 MiB)

    def __init__(self, reqs: Iterator[Any]) -> None:
        self.reqs = reqs
        self.queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=self.DEPTH)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="grpc-prefetch", daemon=True)

    def __enter__(self) -> Prefetch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=PREFETCH_POLL * 4)

    def _put(self, item: tuple[str, Any]) -> None:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=PREFETCH_POLL)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        try:
            for req in self.reqs:
                self._put(("item", req))
                if self.stop.is_set():
                    return
            self._put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - raised again on the handler's side
            self._put(("error", exc))

    def __iter__(self) -> Iterator[Any]:
        while True:
            kind, value = self.queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value


class Modify:
    """One ModifyFile stream, applied in order to its commit. Consecutive adds share one put
    batch; AddFile appends to the file as the commit has it, and a DeleteFile of the path just
    before its AddFile makes the add an overwrite (clients send a put without append so)."""

    def __init__(self, e: Engine) -> None:
        self.e = e
        self.repo = ""
        self.ref = ""
        self.batch: PutBatch | None = None
        self.current: str | None = None
        self.deletes: list[str] = []

    def run(self, reqs: Iterator[pfs.ModifyFileRequest]) -> None:
        for req in reqs:
            kind, body = betterproto.which_one_of(req, "body")
            body = cast(Any, body)
            if kind == "set_commit":
                self.flush()
                self.repo, self.ref = cv.commit_ref(body)
                self.e.files.check_writable(self.repo, self.ref)
            elif not self.repo:
                raise InvalidArgument(
                    "ModifyFile needs its commit first", hint="send set_commit before the files"
                )
            elif kind == "add_file":
                self.add(body)
            elif kind == "delete_file":
                self.end_file()
                self.deletes.append(body.path)
            elif kind == "copy_file":
                self.flush()
                src_repo, src_ref, src_path = file_ref(body.src)
                self.e.files.copy(
                    src_repo, src_ref, src_path, self.repo, self.ref, body.dst, not body.append
                )
        self.flush()

    def add(self, add: pfs.AddFile) -> None:
        kind, _ = betterproto.which_one_of(add, "source")
        if kind == "url":
            raise Unimplemented("AddFile from a URL is not supported by tusk; send the bytes")
        path = add.path
        if path != self.current or self.batch is None:
            self.end_file()
            overwrite = path in self.deletes
            self.deletes = [d for d in self.deletes if d != path]
            if self.deletes:
                self.flush()
            if self.batch is None:
                self.batch = self.e.files.open_put(self.repo, self.ref)
            self.batch.begin_file(path, overwrite=overwrite)
            self.current = path
        if add.raw:
            self.batch.write(add.raw)

    def end_file(self) -> None:
        if self.batch is not None and self.current is not None:
            self.batch.end_file()
        self.current = None

    def flush(self) -> None:
        """Write the open batch, then the pending deletes."""
        self.end_file()
        if self.batch is not None:
            self.batch.commit()
            self.batch = None
        if self.deletes:
            with contextlib.suppress(NotFound):
                self.e.files.delete(self.repo, self.ref, self.deletes)
            self.deletes = []


def file_ref(file: pfs.File | None) -> tuple[str, str, str]:
    """(repo, ref, path) of a Pachyderm ``File``."""
    if file is None:
        raise InvalidArgument("a file is required", hint="e.g. images@master:/path")
    repo, ref = cv.commit_ref(file.commit)
    return repo, ref, file.path or "/"
