from __future__ import annotations

import os
import random

import pytest

from tusk.errors import Internal, InvalidArgument
from tusk.storage import ChunkRef, Ingestor, append_chunks, file_hash, hash_bytes, read_chunks
from tusk.storage.chunking import MAX_CHUNK_SIZE, MIN_CHUNK_SIZE
from tusk.storage.memory import MemoryObjectStore

MiB = 1 << 20


def random_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def ingest(
    ingestor: Ingestor, data: bytes | memoryview, piece: int | None = None
) -> list[ChunkRef]:
    writer = ingestor.open_file()
    if piece is None:
        writer.write(data)
    else:
        view = memoryview(data)
        for i in range(0, len(view), piece):
            writer.write(view[i : i + piece])
    writer.close()
    ingestor.flush()
    assert writer.size == len(data)
    assert writer.hash == file_hash(writer.chunks)
    return writer.chunks


def read_all(store: MemoryObjectStore, chunks: list[ChunkRef]) -> bytes:
    return b"".join(read_chunks(store, chunks))


def test_hash_is_blake3_hex() -> None:
    assert hash_bytes(b"") == "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    big = random_bytes(3 * MiB, 1)
    assert hash_bytes(big) == hash_bytes(memoryview(big))
    assert len(hash_bytes(big)) == 64


def test_file_hash_rules() -> None:
    a = ChunkRef(hash_bytes(b"a"), "obj", 0, 1)
    b = ChunkRef(hash_bytes(b"b"), "obj", 1, 1)
    assert file_hash([]) == hash_bytes(b"")
    assert file_hash([a]) == a.hash
    assert file_hash([a, b]) == hash_bytes((a.hash + b.hash).encode("ascii"))
    assert file_hash([a, b]) != file_hash([b, a])
    # where the bytes are stored does not matter, only what they are
    assert file_hash([a, b]) == file_hash([ChunkRef(a.hash, "elsewhere", 9, 1), b])


@pytest.mark.parametrize("piece", [None, 1000, 64 << 10, 3 * MiB + 7, 9 * MiB])
def test_large_file_round_trips_and_chunks_do_not_depend_on_write_sizes(
    piece: int | None,
) -> None:
    data = random_bytes(24 * MiB + 12345, 2)
    reference = ingest(Ingestor(MemoryObjectStore()), data)
    store = MemoryObjectStore()
    chunks = ingest(Ingestor(store), data, piece)
    assert chunks == reference
    assert read_all(store, chunks) == data
    assert len(chunks) > 5
    assert all(c.object == c.hash and c.offset == 0 for c in chunks)
    assert all(MIN_CHUNK_SIZE <= c.length <= MAX_CHUNK_SIZE for c in chunks[:-1])
    assert store.puts == len({c.hash for c in chunks})


def test_one_chunk_file_hash_is_hash_of_its_bytes() -> None:
    data = random_bytes(300 << 10, 3)  # over the small-file limit, under the minimum cut
    store = MemoryObjectStore()
    ingestor = Ingestor(store)
    writer = ingestor.open_file()
    writer.write(data)
    writer.close()
    ingestor.flush()
    assert len(writer.chunks) == 1
    assert writer.hash == hash_bytes(data)
    assert store.get(writer.chunks[0].object) == data


def test_append_refinds_the_same_boundaries() -> None:
    a = random_bytes(64 * MiB, 4)
    b = random_bytes(1 * MiB, 5)
    store = MemoryObjectStore()
    ingestor = Ingestor(store)
    chunks_a = ingest(ingestor, a)
    before = ingestor.ingested_bytes

    # what a caller does for `put file -a`: last chunk of A, then the new bytes
    writer = ingestor.open_file()
    last = chunks_a[-1]
    writer.write(store.get(last.object, last.offset, last.length))
    writer.write(b)
    writer.close()
    ingestor.flush()
    appended = chunks_a[:-1] + writer.chunks

    fresh = ingest(Ingestor(MemoryObjectStore()), a + b)
    assert [c.hash for c in appended] == [c.hash for c in fresh]
    assert file_hash(appended) == file_hash(fresh)
    assert read_all(store, appended) == a + b
    assert ingestor.ingested_bytes - before < 8 * MiB


def test_open_append_gives_the_whole_file() -> None:
    a = random_bytes(20 * MiB, 6)
    b = random_bytes(100_000, 7)
    store = MemoryObjectStore()
    ingestor = Ingestor(store)
    chunks_a = ingest(ingestor, a)
    written = ingestor.ingested_bytes
    writer = ingestor.open_append(chunks_a)
    writer.write(b)
    writer.close()
    ingestor.flush()
    assert writer.size == len(a) + len(b)
    assert writer.chunks[: len(chunks_a) - 1] == chunks_a[:-1]
    assert writer.hash == file_hash(ingest(Ingestor(MemoryObjectStore()), a + b))
    assert read_all(store, writer.chunks) == a + b
    assert ingestor.ingested_bytes - written <= len(b) + 2 * MAX_CHUNK_SIZE


def test_append_to_a_small_file() -> None:
    store = MemoryObjectStore()
    ingestor = Ingestor(store)
    small = ingest(ingestor, b"hello ")
    writer = ingestor.open_append(small)
    writer.write(b"world")
    writer.close()
    ingestor.flush()
    assert writer.hash == hash_bytes(b"hello world")
    assert read_all(store, writer.chunks) == b"hello world"


def test_append_chunks_joins_two_stored_files() -> None:
    a = random_bytes(6 * MiB, 9)
    b = random_bytes(300_000, 10)
    store = MemoryObjectStore()
    with Ingestor(store) as ingestor:
        chunks_a = ingest(ingestor, a)
        chunks_b = ingest(ingestor, b)
    joined = append_chunks(store, chunks_a, chunks_b)
    assert joined[: len(chunks_a) - 1] == chunks_a[:-1]
    assert file_hash(joined) == file_hash(ingest(Ingestor(MemoryObjectStore()), a + b))
    assert read_all(store, joined) == a + b
    assert append_chunks(store, [], chunks_b) == chunks_b
    assert append_chunks(store, chunks_a, []) == chunks_a


def test_small_edit_stores_only_nearby_chunks() -> None:
    data = bytearray(random_bytes(32 * MiB, 8))
    store = MemoryObjectStore()
    ingestor = Ingestor(store)
    original = ingest(ingestor, data)
    before = ingestor.ingested_bytes
    data[15 * MiB : 15 * MiB + 10] = b"0123456789"
    edited = ingest(ingestor, data)
    assert read_all(store, edited) == bytes(data)
    changed = {c.hash for c in edited} - {c.hash for c in original}
    assert 1 <= len(changed) <= 3
    assert ingestor.ingested_bytes - before <= 3 * MAX_CHUNK_SIZE
    assert len(original) - len({c.hash for c in original} & {c.hash for c in edited}) <= 3


def test_identical_content_is_stored_once() -> None:
    data = random_bytes(10 * MiB, 9)
    store = MemoryObjectStore()
    ingestor = Ingestor(store)
    first = ingest(ingestor, data)
    stored = ingestor.ingested_bytes
    assert stored == len(data)
    assert ingest(ingestor, data) == first
    assert ingestor.ingested_bytes == stored
    # a second ingestor finds the chunks in the store
    again = Ingestor(store)
    assert ingest(again, data) == first
    assert again.ingested_bytes == 0


def test_repeated_content_inside_one_file_is_deduplicated() -> None:
    block = random_bytes(8 * MiB, 10)
    store = MemoryObjectStore()
    ingestor = Ingestor(store)
    chunks = ingest(ingestor, block * 4)
    assert read_all(store, chunks) == block * 4
    assert ingestor.ingested_bytes < 2 * len(block)


def test_small_files_are_packed() -> None:
    store = MemoryObjectStore()
    ingestor = Ingestor(store)
    contents = [os.urandom(1024) for _ in range(10_000)]
    writers = []
    for content in contents:
        writer = ingestor.open_file()
        writer.write(content)
        writer.close()
        writers.append(writer)
    ingestor.flush()
    assert store.puts == 2
    assert ingestor.ingested_bytes == 10_000 * 1024
    assert len({w.chunks[0].object for w in writers}) == 2
    for writer, content in zip(writers, contents, strict=True):
        assert writer.size == 1024
        [ref] = writer.chunks
        assert ref.hash == hash_bytes(content) == writer.hash
        assert ref.object != ref.hash
        assert store.get(ref.object, ref.offset, ref.length) == content


def test_small_file_chunks_are_final_only_after_flush() -> None:
    store = MemoryObjectStore()
    ingestor = Ingestor(store)
    writer = ingestor.open_file()
    writer.write(b"tiny")
    writer.close()
    assert store.puts == 0
    with pytest.raises(Internal):
        _ = writer.chunks
    ingestor.flush()
    assert store.puts == 1
    assert read_all(store, writer.chunks) == b"tiny"


def test_same_small_content_shares_pack_bytes() -> None:
    store = MemoryObjectStore()
    ingestor = Ingestor(store)
    a, b = ingest(ingestor, b"same bytes"), None
    writers = []
    for _ in range(3):
        writer = ingestor.open_file()
        writer.write(b"dup")
        writer.close()
        writers.append(writer)
    ingestor.flush()
    b = {tuple(w.chunks) for w in writers}
    assert len(b) == 1
    assert a[0].hash == hash_bytes(b"same bytes")
    [ref] = writers[0].chunks
    assert store.size(ref.object) == 3


def test_small_file_limit_is_inclusive() -> None:
    store = MemoryObjectStore()
    ingestor = Ingestor(store, small_file_limit=1000)
    at_limit, over = ingestor.open_file(), ingestor.open_file()
    at_limit.write(random_bytes(1000, 11))
    over.write(random_bytes(1001, 12))
    at_limit.close()
    over.close()
    assert store.puts == 1  # the larger file is its own object at once
    assert not at_limit.final  # the other waits in the pack
    ingestor.flush()
    assert store.puts == 2
    assert over.chunks[0].object == over.hash
    assert store.size(at_limit.chunks[0].object) == 1000


def test_empty_file_has_no_chunks() -> None:
    store = MemoryObjectStore()
    ingestor = Ingestor(store)
    writer = ingestor.open_file()
    writer.write(b"")
    writer.close()
    ingestor.flush()
    assert writer.chunks == []
    assert writer.size == 0
    assert writer.hash == hash_bytes(b"")
    assert store.puts == 0
    assert list(read_chunks(store, [])) == []


def test_caller_may_reuse_its_buffer_after_write() -> None:
    data = random_bytes(40 * MiB, 13)
    store = MemoryObjectStore()
    ingestor = Ingestor(store)
    writer = ingestor.open_file()
    buffer = bytearray(20 * MiB)
    for i in range(0, len(data), len(buffer)):
        buffer[:] = data[i : i + len(buffer)]
        writer.write(buffer)
    buffer.extend(b"resizable again")  # no view of it is left behind
    writer.close()
    ingestor.flush()
    assert read_all(store, writer.chunks) == data


def test_write_after_close_is_rejected() -> None:
    writer = Ingestor(MemoryObjectStore()).open_file()
    writer.close()
    with pytest.raises(InvalidArgument):
        writer.write(b"late")


def test_range_reads_across_chunks() -> None:
    data = random_bytes(12 * MiB, 14)
    store = MemoryObjectStore()
    chunks = ingest(Ingestor(store), data)
    assert len(chunks) >= 3
    boundary = chunks[0].length
    cases = [
        (0, -1),
        (0, 10),
        (boundary - 5, 10),
        (boundary, chunks[1].length),
        (1234, 7 * MiB),
        (len(data) - 1, -1),
        (len(data), -1),
        (len(data) + 10, 5),
        (5, 0),
        (len(data) - 100, 1000),
    ]
    for offset, length in cases:
        got = b"".join(read_chunks(store, chunks, offset, length))
        end = len(data) if length == -1 else offset + length
        assert got == data[offset:end], (offset, length)
    pieces = list(read_chunks(store, chunks, boundary - 5, 10))
    assert [len(p) for p in pieces] == [5, 5]
    with pytest.raises(InvalidArgument):
        list(read_chunks(store, chunks, -1))


def test_range_reads_of_packed_files() -> None:
    store = MemoryObjectStore()
    ingestor = Ingestor(store)
    ingest(ingestor, b"neighbour")
    chunks = ingest(ingestor, b"0123456789")
    assert b"".join(read_chunks(store, chunks, 3, 4)) == b"3456"
    assert b"".join(read_chunks(store, chunks, 8)) == b"89"
