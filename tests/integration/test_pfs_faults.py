"""Faults a real tuskd must survive: SIGKILL in the middle of a put, then a restart on the same
home. The write order (objects, then trees, then one transaction) means the branch is exactly as
it was before the put, every earlier commit reads back byte for byte, and the put can simply be
run again."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tusk.client import Client, PutSource
from tusk.errors import NotFound, ServerUnavailable
from tusk.faults import CRASH_EXIT_CODE
from tusk.testing import Tuskd

MiB = 1 << 20
GiB = 1 << 30


@pytest.fixture
def tuskd(tmp_path: Path) -> Iterator[Tuskd]:
    with Tuskd(tmp_path / "home", {"TUSK_RUNTIME": "host"}) as server:
        yield server


@contextmanager
def connect(server: Tuskd) -> Iterator[Client]:
    with server.client(timeout=120) as c:
        yield c


def random_blocks(seed: int, total: int, block: int = 4 * MiB) -> Callable[[], Iterator[bytes]]:
    def blocks() -> Iterator[bytes]:
        rng = random.Random(seed)
        left = total
        while left > 0:
            n = min(block, left)
            yield rng.randbytes(n)
            left -= n

    return blocks


def sha(data: bytes | Iterator[bytes]) -> str:
    h = hashlib.sha256()
    for piece in [data] if isinstance(data, bytes) else data:
        h.update(piece)
    return h.hexdigest()


Snapshot = dict[str, dict[str, str]]  # commit id -> path -> sha256


def make_history(c: Client, repo: str) -> Snapshot:
    """Three commits of mixed content; returns what each commit holds."""
    c.create_repo(repo)
    c.put_files(
        repo,
        "master",
        [
            PutSource("/big/a.bin", random_blocks(1, 40 * MiB)),
            PutSource("/small/readme", b"hello\n"),
        ],
    )
    c.put_files(repo, "master", (PutSource(f"/small/{i:04d}", os.urandom(300)) for i in range(200)))
    c.put_file(repo, "master", "/small/readme", b"appended\n")
    return snapshot(c, repo)


def snapshot(c: Client, repo: str) -> Snapshot:
    out: Snapshot = {}
    for info in c.list_commit(repo):
        files = [f for f in c.walk_file(repo, info.commit.id) if f.type == "file"]
        out[info.commit.id] = {f.path: sha(c.get_file(repo, info.commit.id, f.path)) for f in files}
    return out


def killer(server: Tuskd, after: int) -> Callable[[int], None]:
    """A progress callback that SIGKILLs the server once ``after`` bytes were sent."""
    sent = 0

    def on_bytes(n: int) -> None:
        nonlocal sent
        sent += n
        if sent >= after:
            server.kill()

    return on_bytes


def test_kill_during_a_multi_gib_put_then_restart(tuskd: Tuskd) -> None:
    with connect(tuskd) as c:
        before = make_history(c, "data")
        head = c.inspect_commit("data", "master").commit.id
        huge = PutSource("/huge.bin", random_blocks(42, 5 * GiB // 2))
        with pytest.raises(ServerUnavailable, match="lost the connection"):
            c.put_files("data", "master", [huge], on_bytes=killer(tuskd, 1 * GiB))
    assert tuskd.proc is not None and tuskd.proc.returncode == -signal.SIGKILL
    objects = sum(f.stat().st_size for f in (tuskd.home / "objects").rglob("*") if f.is_file())
    assert objects > 512 * MiB  # the kill really came in the middle of the upload

    tuskd.start()
    with connect(tuskd) as c:
        assert c.inspect_commit("data", "master").commit.id == head
        assert snapshot(c, "data") == before
        # the same put simply runs again (smaller, to keep the test short)
        again = c.put_files("data", "master", [PutSource("/huge.bin", random_blocks(42, 64 * MiB))])
        info = c.inspect_commit("data", "master")
        assert info.commit.id == again.commit.id and info.parent == head
        assert sha(c.get_file("data", "master", "/huge.bin")) == sha(
            iter(random_blocks(42, 64 * MiB)())
        )
        assert c.inspect_file("data", "master", "/big/a.bin").size_bytes == 40 * MiB


def test_kill_during_a_put_of_many_small_files_then_restart(tuskd: Tuskd) -> None:
    n = 5000
    contents = [hashlib.sha256(b"%d" % i).digest() * 64 for i in range(n)]  # 2 KiB each

    def sources() -> Iterator[PutSource]:
        for i in range(n):
            yield PutSource(f"/many/{i:05d}", contents[i])

    with connect(tuskd) as c:
        before = make_history(c, "small")
        head = c.inspect_commit("small", "master").commit.id
        with pytest.raises(ServerUnavailable):
            c.put_files(
                "small", "master", sources(), on_bytes=killer(tuskd, n // 2 * len(contents[0]))
            )
    assert tuskd.proc is not None and tuskd.proc.returncode == -signal.SIGKILL

    tuskd.start()
    with connect(tuskd) as c:
        assert c.inspect_commit("small", "master").commit.id == head
        assert snapshot(c, "small") == before
        with pytest.raises(NotFound, match="not found"):
            c.list_file("small", "master", "/many")
        res = c.put_files("small", "master", sources())
        assert res.files == n
        listed = c.list_file("small", "master", "/many")
        assert len(listed) == n
        for i in (0, 1234, n // 2, n - 1):
            assert c.get_file_bytes("small", "master", f"/many/{i:05d}") == contents[i]
        assert c.inspect_commit("small", "master").parent == head


def test_a_crash_between_the_tree_batches_of_a_big_put_commits_nothing(tmp_path: Path) -> None:
    """A put of more files than one tree batch (20,000) writes the tree in steps before its
    commit: the server dying after the first step leaves the branch as it was."""
    n = 25_000

    def sources() -> Iterator[PutSource]:
        for i in range(n):
            yield PutSource(f"/many/{i:05d}", b"%d\n" % i)

    home = tmp_path / "home"
    crashing = Tuskd(home, {"TUSK_RUNTIME": "host", "TUSK_TEST_CRASH_AT": "put-tree-batch"})
    crashing.start()
    try:
        with connect(crashing) as c:
            before = make_history(c, "big")
            head = c.inspect_commit("big", "master").commit.id
            with pytest.raises(ServerUnavailable):
                c.put_files("big", "master", sources())
        assert crashing.proc is not None
        assert crashing.proc.wait(timeout=60) == CRASH_EXIT_CODE
    finally:
        crashing.stop()

    with Tuskd(home, {"TUSK_RUNTIME": "host"}) as server, connect(server) as c:
        assert c.inspect_commit("big", "master").commit.id == head
        assert snapshot(c, "big") == before
        with pytest.raises(NotFound, match="not found"):
            c.list_file("big", "master", "/many")
        res = c.put_files("big", "master", sources())
        assert res.files == n
        assert c.inspect_file("big", "master", "/many").file_count == n
        assert c.get_file_bytes("big", "master", "/many/12345") == b"12345\n"
        assert c.inspect_commit("big", "master").parent == head


def test_two_clients_put_to_one_branch_at_once(tuskd: Tuskd) -> None:
    with connect(tuskd) as c:
        c.create_repo("shared")
        c.put_file("shared", "master", "/base", b"base")
    rounds = 8
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)
    payloads = {name: os.urandom(3 * MiB) for name in ("left", "right")}

    def writer(name: str) -> None:
        try:
            with connect(tuskd) as c:
                barrier.wait()
                for i in range(rounds):
                    c.put_files(
                        "shared",
                        "master",
                        [
                            PutSource(f"/{name}/{i}", payloads[name]),
                            PutSource("/log", b"%s\n" % name.encode()),
                        ],
                    )
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    with connect(tuskd) as c:
        history = c.list_commit("shared", "master")
        assert len(history) == 1 + 2 * rounds
        for name, payload in payloads.items():
            for i in range(rounds):
                assert c.get_file_bytes("shared", "master", f"/{name}/{i}") == payload
        log = c.get_file_bytes("shared", "master", "/log").splitlines()
        assert sorted(log) == sorted([b"left"] * rounds + [b"right"] * rounds)
