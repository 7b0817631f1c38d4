"""The worker's reading of a spout's named pipe (a real FIFO, a local object store): archives
written back to back on one open pipe are separate streams, the NUL bytes between them are
skipped, and a cut, oversized or escaping stream is refused."""

from __future__ import annotations

import io
import os
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tusk.storage import ObjectStore, open_object_store, read_chunks
from tusk.worker.protocol import OutputFile
from tusk.worker.spout import PipeReader, StreamTooLarge, _read_tar


def tar_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w|") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def pipe(tmp_path: Path) -> Iterator[tuple[str, PipeReader]]:
    path = str(tmp_path / "out")
    os.mkfifo(path)
    reader = PipeReader(path)
    try:
        yield path, reader
    finally:
        reader.close()


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return open_object_store(f"file://{tmp_path / 'objects'}")


def write(path: str, *parts: bytes) -> threading.Thread:
    """Write ``parts`` to the pipe in one open, in a thread (a pipe's buffer is small)."""

    def run() -> None:
        with open(path, "wb") as f:
            for part in parts:
                f.write(part)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def contents(store: ObjectStore, files: list[OutputFile]) -> dict[str, bytes]:
    return {f.path: b"".join(read_chunks(store, f.chunks)) for f in files}


def test_archives_back_to_back_on_one_open_pipe_are_separate_streams(
    pipe: tuple[str, PipeReader], store: ObjectStore
) -> None:
    path, reader = pipe
    big = os.urandom(300_000)  # more than a pipe's buffer: read while it is written
    writer = write(path, tar_bytes({"a.txt": b"1", "dir/big": big}), tar_bytes({"b.txt": b"2"}))
    ended = threading.Event()
    assert reader.wait_for_stream(ended)
    files, _dirs, size = _read_tar(reader, store)
    assert contents(store, files) == {"/a.txt": b"1", "/dir/big": big}
    assert size == 1 + len(big)
    assert reader.wait_for_stream(ended)
    files, _dirs, _size = _read_tar(reader, store)
    assert contents(store, files) == {"/b.txt": b"2"}
    writer.join(5)
    ended.set()  # the code ended and the pipe is empty: no more streams
    assert not reader.wait_for_stream(ended)


def test_a_stream_cut_at_a_member_end_is_refused(
    pipe: tuple[str, PipeReader], store: ObjectStore
) -> None:
    path, reader = pipe
    whole = tar_bytes({"a": b"x" * 600, "b": b"y"})
    write(path, whole[: 512 + 1024]).join(5)  # the first member whole, then the writer leaves
    assert reader.wait_for_stream(threading.Event())
    with pytest.raises(tarfile.ReadError, match="before the archive's end"):
        _read_tar(reader, store)
    assert reader.eof  # the writer is gone: nothing to drop before the next stream


def test_a_stream_past_the_limit_and_an_escaping_path_are_refused(
    pipe: tuple[str, PipeReader], store: ObjectStore
) -> None:
    path, reader = pipe
    write(path, tar_bytes({"big": b"z" * 10_000}))
    assert reader.wait_for_stream(threading.Event())
    reader.limit = 4096
    with pytest.raises(StreamTooLarge):
        _read_tar(reader, store)
    reader.drop_until_no_writer()
    reader.limit = None
    write(path, tar_bytes({"../../etc/passwd": b"root"}))
    assert reader.wait_for_stream(threading.Event())
    with pytest.raises(ValueError, match="leaves /pfs/out"):
        _read_tar(reader, store)
