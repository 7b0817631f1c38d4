from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tusk.errors import CorruptObject, InvalidPath, NotFound, PathConflict
from tusk.pfs.tree import (
    EMPTY_ROOT,
    NO_SHARED,
    Delete,
    MakeDir,
    Node,
    Op,
    PutFile,
    SetShared,
    Shared,
    Tree,
)
from tusk.pfs.tree import write as tree_write
from tusk.storage.base import ChunkRef
from tusk.storage.hashing import file_hash, hash_bytes


class MemStore:
    """Dict-backed ObjectStore that counts reads and writes."""

    url = "mem://"

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.gets = 0
        self.puts = 0

    def put(self, data: bytes | memoryview, object_id: str | None = None) -> str:
        self.puts += 1
        oid = object_id or hash_bytes(bytes(data))
        self.objects.setdefault(oid, bytes(data))
        return oid

    def get(self, object_id: str, offset: int = 0, length: int = -1) -> bytes:
        self.gets += 1
        data = self.objects[object_id]
        return data[offset:] if length < 0 else data[offset : offset + length]

    def exists(self, object_id: str) -> bool:
        return object_id in self.objects

    def sync(self) -> None:
        pass

    def size(self, object_id: str) -> int:
        return len(self.objects[object_id])

    def delete(self, object_id: str) -> None:
        self.objects.pop(object_id, None)

    def iter_ids(self) -> Iterator[str]:
        return iter(list(self.objects))

    def reset_counts(self) -> None:
        self.gets = self.puts = 0


def put(path: str, content: bytes | str) -> PutFile:
    data = content.encode() if isinstance(content, str) else content
    h = hash_bytes(data)
    chunks = (ChunkRef(h, "obj-" + h[:8], 0, len(data)),)
    return PutFile(path, chunks, len(data), file_hash(chunks))


@pytest.fixture
def store() -> MemStore:
    return MemStore()


@pytest.fixture
def tree(store: MemStore) -> Tree:
    return Tree(store)


def paths(nodes: Iterable[Node]) -> list[str]:
    return [n.path for n in nodes]


def files_of(tree: Tree, root: str) -> dict[str, str]:
    return {n.path: n.hash for n in tree.walk(root) if n.kind == "file"}


# ---- the 1.7 glob example ---------------------------------------------------------------------


@pytest.fixture
def example(tree: Tree) -> str:
    return tree.apply(
        EMPTY_ROOT,
        [put("/foo-1", "1"), put("/foo-2", "22"), put("/bar/bar-1", "333"), put("/bar/bar-2", "4")],
    )


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("/", ["/"]),
        ("", ["/"]),
        ("/*", ["/bar", "/foo-1", "/foo-2"]),
        ("/bar/*", ["/bar/bar-1", "/bar/bar-2"]),
        ("/*/*", ["/bar/bar-1", "/bar/bar-2"]),
        ("/foo*", ["/foo-1", "/foo-2"]),
        ("/bar", ["/bar"]),
        ("/bar/bar-1", ["/bar/bar-1"]),
        ("/missing", []),
        ("/foo-1/x", []),
        ("/**", ["/bar", "/bar/bar-1", "/bar/bar-2", "/foo-1", "/foo-2"]),
        ("/*/bar-2", ["/bar/bar-2"]),
    ],
)
def test_glob_1_7_examples(tree: Tree, example: str, pattern: str, expected: list[str]) -> None:
    assert paths(tree.glob(example, pattern)) == expected


def test_glob_returns_nodes_with_kind_and_size(tree: Tree, example: str) -> None:
    bar, foo1, foo2 = tree.glob(example, "/*")
    assert (bar.kind, bar.size, bar.file_count) == ("dir", 4, 2)
    assert (foo1.kind, foo1.size) == ("file", 1)
    assert foo2.chunks[0].length == 2
    (root,) = tree.glob(example, "/")
    assert (root.path, root.kind, root.size, root.id) == ("/", "dir", 7, example)


# ---- reading ----------------------------------------------------------------------------------


def test_get_list_walk_stats(tree: Tree, example: str) -> None:
    node = tree.get(example, "bar/bar-1/")
    assert node is not None
    assert node == Node(
        "/bar/bar-1", "file", 3, hash_bytes(b"333"), node.chunks, 1, None
    ) and node.chunks[0].hash == hash_bytes(b"333")
    assert tree.get(example, "/nope") is None
    assert tree.get(example, "/foo-1/under-a-file") is None
    assert paths(tree.list_dir(example, "/")) == ["/bar", "/foo-1", "/foo-2"]
    assert paths(tree.list_dir(example, "/bar")) == ["/bar/bar-1", "/bar/bar-2"]
    assert paths(tree.walk(example)) == ["/bar", "/bar/bar-1", "/bar/bar-2", "/foo-1", "/foo-2"]
    assert paths(tree.walk(example, "/bar")) == ["/bar/bar-1", "/bar/bar-2"]
    assert list(tree.walk(example, "/foo-1")) == []
    assert tree.stats(example) == (7, 4)
    assert tree.stats(EMPTY_ROOT) == (0, 0)


def test_list_dir_errors(tree: Tree, example: str) -> None:
    with pytest.raises(NotFound):
        list(tree.list_dir(example, "/nope"))
    with pytest.raises(InvalidPath, match="is a file"):
        list(tree.list_dir(example, "/foo-1"))
    with pytest.raises(NotFound):
        list(tree.walk(example, "/nope"))


def test_empty_root_needs_no_stored_object(store: MemStore) -> None:
    tree = Tree(store)
    assert list(tree.list_dir(EMPTY_ROOT, "/")) == []
    assert tree.get(EMPTY_ROOT, "/a") is None
    assert store.gets == 0
    assert tree.apply(EMPTY_ROOT, []) == EMPTY_ROOT
    assert tree.apply(EMPTY_ROOT, [Delete("/")]) == EMPTY_ROOT


# ---- writing ----------------------------------------------------------------------------------


def test_put_overwrites_and_creates_parents(tree: Tree) -> None:
    r1 = tree.apply(EMPTY_ROOT, [put("/a/b/c.txt", "one")])
    assert paths(tree.walk(r1)) == ["/a", "/a/b", "/a/b/c.txt"]
    r2 = tree.apply(r1, [put("/a/b/c.txt", "two!")])
    node = tree.get(r2, "/a/b/c.txt")
    assert node is not None and node.size == 4 and node.hash == hash_bytes(b"two!")
    assert tree.stats(r2) == (4, 1)
    a = tree.get(r2, "/a")
    assert a is not None and (a.size, a.file_count) == (4, 1)


def test_ops_apply_in_order(tree: Tree) -> None:
    root = tree.apply(
        EMPTY_ROOT,
        [put("/d/x", "1"), put("/d/y", "2"), Delete("/d"), put("/d/z", "3"), put("/e", "4")],
    )
    assert files_of(tree, root).keys() == {"/d/z", "/e"}
    root = tree.apply(root, [Delete("/"), put("/only", "x")])
    assert files_of(tree, root).keys() == {"/only"}


def test_delete_semantics(tree: Tree, example: str) -> None:
    assert tree.apply(example, [Delete("/missing")]) == example
    assert tree.apply(example, [Delete("/bar/missing")]) == example
    assert tree.apply(example, [Delete("/foo-1/under-a-file")]) == example
    emptied = tree.apply(example, [Delete("/")])
    assert emptied == EMPTY_ROOT
    no_bar = tree.apply(example, [Delete("/bar")])
    assert paths(tree.walk(no_bar)) == ["/foo-1", "/foo-2"]
    # Parents left empty are kept.
    kept = tree.apply(example, [Delete("/bar/bar-1"), Delete("/bar/bar-2")])
    assert paths(tree.walk(kept)) == ["/bar", "/foo-1", "/foo-2"]
    bar = tree.get(kept, "/bar")
    assert bar is not None and (bar.size, bar.file_count, bar.id) == (0, 0, EMPTY_ROOT)


def test_make_dir(tree: Tree, example: str) -> None:
    root = tree.apply(example, [MakeDir("/new/deep")])
    assert paths(tree.walk(root, "/new")) == ["/new/deep"]
    assert tree.apply(root, [MakeDir("/new/deep"), MakeDir("/")]) == root
    with pytest.raises(PathConflict, match="/foo-1 is a file"):
        tree.apply(example, [MakeDir("/foo-1")])


def test_path_conflicts_name_both_paths(tree: Tree, example: str) -> None:
    with pytest.raises(PathConflict) as e:
        tree.apply(example, [put("/foo-1/x", "under a file")])
    assert "/foo-1/x" in e.value.message and "/foo-1 is a file" in e.value.message
    assert e.value.fields == {"path": "/foo-1/x", "conflict": "/foo-1"}
    with pytest.raises(PathConflict, match="a directory exists at /bar"):
        tree.apply(example, [put("/bar", "over a dir")])
    # Conflicts with entries created earlier in the same batch.
    with pytest.raises(PathConflict):
        tree.apply(EMPTY_ROOT, [put("/a", "x"), put("/a/b", "y")])
    with pytest.raises(PathConflict):
        tree.apply(EMPTY_ROOT, [MakeDir("/a"), put("/a", "y")])
    # After a delete the path is free again.
    root = tree.apply(example, [Delete("/foo-1"), put("/foo-1/x", "ok")])
    assert "/foo-1/x" in files_of(tree, root)


def test_failed_apply_writes_nothing(store: MemStore, tree: Tree, example: str) -> None:
    store.reset_counts()
    with pytest.raises(PathConflict):
        tree.apply(example, [put("/fine", "x"), put("/foo-2/bad", "y"), put("/later", "z")])
    with pytest.raises(InvalidPath):
        tree.apply(example, [put("/fine", "x"), put("/bad*name", "y")])
    with pytest.raises(InvalidPath):
        tree.apply(example, [put("/", "root is no file")])
    assert store.puts == 0


def test_merkle_sharing_and_determinism(tree: Tree) -> None:
    ops = [put(f"/{d}/{f}", f"{d}{f}") for d in "abc" for f in "xyz"]
    r1 = tree.apply(EMPTY_ROOT, ops)
    assert tree.apply(EMPTY_ROOT, list(reversed(ops))) == r1
    # Built in three commits: same content, same root.
    r = EMPTY_ROOT
    for i in range(0, 9, 3):
        r = tree.apply(r, ops[i : i + 3])
    assert r == r1
    r2 = tree.apply(r1, [put("/b/y", "changed")])
    ids1 = {n.path: n.id for n in tree.glob(r1, "/*")}
    ids2 = {n.path: n.id for n in tree.glob(r2, "/*")}
    assert ids1["/a"] == ids2["/a"] and ids1["/c"] == ids2["/c"]
    assert ids1["/b"] != ids2["/b"] and r1 != r2
    # Changing it back restores the very same ids.
    assert tree.apply(r2, [put("/b/y", "by")]) == r1


# ---- diff -------------------------------------------------------------------------------------


def test_diff_cases(tree: Tree, example: str) -> None:
    new = tree.apply(
        example,
        [put("/foo-1", "changed"), Delete("/foo-2"), put("/bar/bar-3", "new"), put("/baz/q", "q")],
    )
    added, removed = tree.diff(new, example)
    assert paths(added) == ["/bar/bar-3", "/baz/q", "/foo-1"]
    assert paths(removed) == ["/foo-1", "/foo-2"]
    assert added[2].hash == hash_bytes(b"changed") and removed[0].hash == hash_bytes(b"1")
    assert tree.diff(example, example) == ([], [])
    # Against nothing, everything is new.
    added, removed = tree.diff(example, None)
    assert paths(added) == ["/bar/bar-1", "/bar/bar-2", "/foo-1", "/foo-2"] and removed == []
    # A sub-path.
    added, removed = tree.diff(new, example, "/bar")
    assert (paths(added), removed) == (["/bar/bar-3"], [])
    # Shallow: changed entries directly under the path, directories not expanded.
    added, removed = tree.diff(new, example, shallow=True)
    assert paths(added) == ["/bar", "/baz", "/foo-1"]
    assert [n.kind for n in added] == ["dir", "dir", "file"]
    assert paths(removed) == ["/bar", "/foo-1", "/foo-2"]


def test_diff_file_replaced_by_directory(tree: Tree, example: str) -> None:
    new = tree.apply(example, [Delete("/foo-1"), put("/foo-1/inside", "x"), Delete("/bar")])
    added, removed = tree.diff(new, example)
    assert paths(added) == ["/foo-1/inside"]
    assert paths(removed) == ["/bar/bar-1", "/bar/bar-2", "/foo-1"]


def test_diff_reads_only_differing_subtrees(store: MemStore, tree: Tree) -> None:
    ops = [put(f"/d{i:03d}/f{j:02d}", f"{i}-{j}") for i in range(300) for j in range(10)]
    old = tree.apply(EMPTY_ROOT, ops)
    new = tree.apply(old, [put("/d150/f05", "different")])
    store.reset_counts()
    added, removed = Tree(store).diff(new, old)
    assert paths(added) == paths(removed) == ["/d150/f05"]
    assert store.gets == 4  # two roots, two /d150 directories


# ---- paging -----------------------------------------------------------------------------------


def _is_page_index(store: MemStore, oid: str) -> bool:
    return b'"p":' in store.objects[oid][:40]


def test_large_directory_is_paged_and_reads_back(store: MemStore, tree: Tree) -> None:
    ops = [put(f"/big/f{i:05d}", str(i)) for i in range(5000)]
    root = tree.apply(EMPTY_ROOT, ops)
    big = tree.get(root, "/big")
    assert big is not None and big.id is not None and big.file_count == 5000
    assert _is_page_index(store, big.id)
    cold = Tree(store)
    assert paths(cold.list_dir(root, "/big")) == sorted(op.path for op in ops)
    assert cold.get(root, "/big/f04321") is not None
    assert cold.get(root, "/big/f04321x") is None
    assert cold.get(root, "/big/a") is None  # before the first page
    # Shrinking below the threshold turns it back into a plain directory with the same id
    # as one built directly.
    small = tree.apply(root, [Delete(op.path) for op in ops[500:]])
    direct = tree.apply(EMPTY_ROOT, ops[:500])
    assert small == direct
    assert not _is_page_index(store, small)


def test_list_dir_from_an_offset_reads_only_the_pages_it_returns(store: MemStore) -> None:
    ops = [put(f"/big/f{i:05d}", str(i)) for i in range(5000)]
    root = Tree(store).apply(EMPTY_ROOT, ops)
    every = sorted(op.path for op in ops)
    for start in (0, 1, 255, 256, 2500, 4999, 5000, 9999):
        store.reset_counts()
        got = paths(itertools.islice(Tree(store).list_dir(root, "/big", start), 10))
        assert got == every[start : start + 10], start
        assert store.gets <= 5, (start, store.gets)  # root, index, at most two pages (+1)
    small = Tree(store).apply(EMPTY_ROOT, ops[:20])  # not paged
    assert paths(Tree(store).list_dir(small, "/big", 15)) == sorted(op.path for op in ops[:20])[15:]


def test_one_put_into_100k_directory_touches_index_and_one_page(store: MemStore) -> None:
    tree = Tree(store)
    ops = [put(f"/file-{i:06d}", str(i)) for i in range(100_000)]
    root = tree.apply(EMPTY_ROOT, ops)
    assert tree.stats(root)[1] == 100_000
    store.reset_counts()
    cold = Tree(store)
    new_root = cold.apply(root, [put("/file-050000", "rewritten")])
    assert (store.gets, store.puts) == (2, 2)
    # A new name: index, its page, and at most the next page if it lands after a boundary.
    store.reset_counts()
    cold = Tree(store)
    newer = cold.apply(new_root, [put("/file-050000-b", "new")])
    assert store.gets <= 3 and store.puts <= 3
    assert cold.stats(newer)[1] == 100_001
    # Diff between them reads the two indexes and the differing pages only.
    store.reset_counts()
    added, removed = Tree(store).diff(newer, root)
    assert paths(added) == ["/file-050000", "/file-050000-b"]
    assert paths(removed) == ["/file-050000"]
    assert store.gets <= 6


def test_glob_star_reads_only_the_matched_directory(store: MemStore, tree: Tree) -> None:
    root = tree.apply(EMPTY_ROOT, [put(f"/d{i:05d}/f", "x") for i in range(3000)])
    cold = Tree(store)
    index = cold.get(root, "/")
    assert index is not None and index.id is not None
    n_pages = len(store.objects[index.id].split(b"],[")) if _is_page_index(store, root) else 0
    assert n_pages > 1
    store.reset_counts()
    cold = Tree(store)
    assert len(list(cold.glob(root, "/*"))) == 3000
    assert store.gets == 1 + n_pages
    # A literal component is a direct lookup: index + one page + the directory.
    store.reset_counts()
    cold = Tree(store)
    assert paths(cold.glob(root, "/*/f")) == [f"/d{i:05d}/f" for i in range(3000)]
    store.reset_counts()
    cold = Tree(store)
    assert paths(cold.glob(root, "/d01234/*")) == ["/d01234/f"]
    assert store.gets == 3


# ---- model-based check of paging and apply ---------------------------------------------------

# "a" is also a directory name, so some batches hit path conflicts.
NAMES = st.sampled_from([f"n{i:02d}" for i in range(40)] + ["a"])
DIRS = st.sampled_from(["", "/a", "/b", "/a/c"])
OPS = st.one_of(
    st.builds(lambda d, n, v: ("put", f"{d}/{n}", v), DIRS, NAMES, st.integers(0, 3)),
    st.builds(lambda d, n: ("del", f"{d}/{n}"), DIRS, NAMES),
    st.builds(lambda d: ("del", d or "/"), DIRS),
)


def _model_apply(model: dict[str, int | None], op: tuple[Any, ...]) -> bool:
    """Apply to {path: content or None for a directory}; False if the tree must refuse it."""
    if op[0] == "del":
        path = op[1]
        for p in [p for p in model if p == path or p.startswith(path.rstrip("/") + "/")]:
            del model[p]
        return True
    _, path, value = op
    parts = path.split("/")[1:]
    for i in range(1, len(parts)):
        if model.get("/" + "/".join(parts[:i])) is not None:
            return False
    if path in model and model[path] is None:
        return False
    for i in range(1, len(parts)):
        model["/" + "/".join(parts[:i])] = None
    model[path] = value
    return True


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(OPS, max_size=25), max_size=6))
def test_random_batches_match_a_dict_model(batches: list[list[tuple[Any, ...]]]) -> None:
    # Small pages so that paging, splitting and merging happen with a few dozen names.
    with (
        mock.patch.object(tree_write, "PAGE_THRESHOLD", 6),
        mock.patch.object(tree_write, "_PAGE_MASK", 0x3),
    ):
        store = MemStore()
        tree = Tree(store, cache_size=8)
        model: dict[str, int | None] = {}
        root = EMPTY_ROOT
        for batch in batches:
            ops: list[Op] = []
            trial = dict(model)
            ok = True
            for op in batch:
                ok = _model_apply(trial, op) and ok
                ops.append(put(op[1], str(op[2])) if op[0] == "put" else Delete(op[1]))
            if not ok:
                with pytest.raises(PathConflict):
                    tree.apply(root, ops)
                continue
            prev_root, prev_files = root, {p: v for p, v in model.items() if v is not None}
            root = tree.apply(root, ops)
            model = trial
            now_files = {p: v for p, v in model.items() if v is not None}
            added, removed = tree.diff(root, prev_root)
            assert {n.path for n in added} == {
                p for p, v in now_files.items() if prev_files.get(p) != v
            }
            assert {n.path for n in removed} == {
                p for p, v in prev_files.items() if now_files.get(p) != v
            }
            walked = {n.path: n for n in tree.walk(root)}
            assert set(walked) == set(model)
            for p, v in model.items():
                assert walked[p].kind == ("dir" if v is None else "file")
                if v is not None:
                    assert walked[p].hash == hash_bytes(str(v).encode())
                    assert tree.get(root, p) == walked[p]
            files = [v for v in model.values() if v is not None]
            assert tree.stats(root) == (sum(len(str(v)) for v in files), len(files))
            # Same content built from scratch (in another order) gives the same root id.
            scratch: list[Op] = [MakeDir(p) for p, v in model.items() if v is None]
            scratch += [
                put(p, str(v)) for p, v in sorted(model.items(), reverse=True) if v is not None
            ]
            assert tree.apply(EMPTY_ROOT, scratch) == root
            # Reads through a cold cache agree.
            assert {n.path for n in Tree(store).walk(root)} == set(model)


# ---- glob diff ----------------------------------------------------------------------------------


def _glob_changes(tree: Tree, pattern: str, new: str, old: str) -> list[tuple[str, Any, Any]]:
    """The reference: both full globs compared match by match."""
    a = {n.path: n.hash for n in tree.glob(new, pattern)}
    b = {n.path: n.hash for n in tree.glob(old, pattern)}
    return [(p, a.get(p), b.get(p)) for p in sorted(a.keys() | b.keys()) if a.get(p) != b.get(p)]


@pytest.mark.parametrize("pattern", ["/*", "/", "/*/*", "/bar/*", "/bar", "/**", "/*-1", "/x/*"])
def test_glob_diff_matches_comparing_full_globs(tree: Tree, example: str, pattern: str) -> None:
    changed = tree.apply(
        example,
        [put("/foo-2", "changed"), Delete("/bar/bar-1"), put("/baz/z", "z"), MakeDir("/empty")],
    )
    for new, old in [(changed, example), (example, changed), (example, example)]:
        got = [
            (p, a.hash if a else None, b.hash if b else None)
            for p, a, b in tree.glob_diff(pattern, new, old)
        ]
        assert got == _glob_changes(tree, pattern, new, old), (pattern, new == changed)


def test_glob_diff_over_100k_entries_reads_only_the_changed_page(store: MemStore) -> None:
    tree = Tree(store)
    root = tree.apply(EMPTY_ROOT, [put(f"/file-{i:06d}", str(i)) for i in range(100_000)])
    new = tree.apply(root, [put("/file-050000-b", "new"), Delete("/file-000007")])
    store.reset_counts()
    got = Tree(store).glob_diff("/*", new, root)
    assert [(p, a is not None, b is not None) for p, a, b in got] == [
        ("/file-000007", False, True),
        ("/file-050000-b", True, False),
    ]
    assert store.gets <= 8  # the two indexes and the differing pages


# ---- directory headers and footers ------------------------------------------------------------


def chunks_of(content: str) -> tuple[ChunkRef, ...]:
    return put("/x", content).chunks


def test_header_and_footer_live_on_the_directory(tree: Tree, store: MemStore) -> None:
    root = tree.apply(EMPTY_ROOT, [put("/d/a", "1"), put("/d/b", "22")])
    plain_d = tree.get(root, "/d")
    with_head = tree.apply(root, [SetShared("/d", "header", chunks_of("H"))])
    both = tree.apply(with_head, [SetShared("/d", "footer", chunks_of("FF"))])
    assert tree.shared(root, "/d") == NO_SHARED
    assert tree.shared(with_head, "/d") == Shared(chunks_of("H"), ())
    assert tree.shared(both, "/d") == Shared(chunks_of("H"), chunks_of("FF"))
    d = tree.get(both, "/d")
    assert d is not None and d.id is not None and plain_d is not None
    assert tree.shared_of(d.id) == tree.shared(both, "/d")
    # the directory object changed (so its id and the root's), the files and sizes did not
    assert d.id != plain_d.id and both != root
    assert (d.size, d.file_count) == (plain_d.size, plain_d.file_count)
    assert files_of(tree, both) == files_of(tree, root)
    assert tree.shared(both, "/d/a") == NO_SHARED  # files have none
    assert tree.shared(both, "/missing") == NO_SHARED
    # a fresh Tree (no cache) reads them from the stored object
    assert Tree(store, cache_size=0).shared(both, "/d") == Shared(chunks_of("H"), chunks_of("FF"))


def test_header_survives_writes_in_the_directory_and_goes_with_it(tree: Tree) -> None:
    root = tree.apply(EMPTY_ROOT, [SetShared("/d", "header", chunks_of("H")), put("/d/a", "1")])
    root = tree.apply(root, [put("/d/b", "2"), Delete("/d/a"), put("/other", "3")])
    assert tree.shared(root, "/d").header == chunks_of("H")
    assert tree.shared(tree.apply(root, [Delete("/d")]), "/d") == NO_SHARED
    # deleting the directory and writing it again in one apply starts without a header
    again = tree.apply(root, [Delete("/d"), put("/d/c", "4")])
    assert tree.shared(again, "/d") == NO_SHARED


def test_empty_chunks_remove_it_and_restore_the_old_id(tree: Tree) -> None:
    root = tree.apply(EMPTY_ROOT, [put("/d/a", "1")])
    with_head = tree.apply(root, [SetShared("/d", "header", chunks_of("H"))])
    removed = tree.apply(with_head, [SetShared("/d", "header", ())])
    assert tree.shared(removed, "/d") == NO_SHARED
    assert removed == root  # content-addressed: no header, same object as before


def test_set_shared_makes_the_directory_and_refuses_a_file(tree: Tree) -> None:
    root = tree.apply(EMPTY_ROOT, [SetShared("/new/dir", "footer", chunks_of("F"))])
    node = tree.get(root, "/new/dir")
    assert node is not None and node.is_dir and node.file_count == 0
    top = tree.apply(EMPTY_ROOT, [SetShared("/", "header", chunks_of("H"))])
    assert tree.shared(top, "/").header == chunks_of("H")
    with_file = tree.apply(EMPTY_ROOT, [put("/f", "1")])
    with pytest.raises(PathConflict, match="is a file"):
        tree.apply(with_file, [SetShared("/f", "header", chunks_of("H"))])


def test_header_of_a_paged_directory(tree: Tree) -> None:
    with (
        mock.patch.object(tree_write, "PAGE_THRESHOLD", 6),
        mock.patch.object(tree_write, "_PAGE_MASK", 0x3),
    ):
        root = tree.apply(EMPTY_ROOT, [put(f"/big/{i:03d}", str(i)) for i in range(40)])
        root = tree.apply(root, [SetShared("/big", "header", chunks_of("H"))])
        root = tree.apply(root, [put("/big/100", "x"), Delete("/big/005")])
        assert tree.shared(root, "/big").header == chunks_of("H")
        assert len([n for n in tree.list_dir(root, "/big")]) == 40


def test_referenced_and_diff_see_headers(tree: Tree) -> None:
    root = tree.apply(EMPTY_ROOT, [put("/d/a", "1")])
    head = chunks_of("H")
    with_head = tree.apply(root, [SetShared("/d", "header", head)])
    seen: set[str] = set()
    tree.referenced(with_head, seen)
    assert head[0].object in seen
    new, old = tree.diff(with_head, root)
    assert paths(new) == ["/d"] and paths(old) == ["/d"]
    assert all(n.is_dir for n in new + old)
    assert tree.diff(with_head, with_head) == ([], [])


def test_old_directory_objects_without_headers_read_the_same(tree: Tree, store: MemStore) -> None:
    # an object written before headers existed: no "hd"/"ft" keys at all
    entry = {"n": "a", "s": 1, "h": "h1", "c": [["c1", "o1", 0, 1]]}
    data = json.dumps({"s": 1, "k": 1, "e": [entry]}, separators=(",", ":")).encode()
    oid = store.put(data)
    assert tree.shared(oid, "/") == NO_SHARED
    assert paths(tree.walk(oid)) == ["/a"]


def test_the_cache_holds_a_bounded_number_of_entries() -> None:
    """Directories of many thousand entries: the cached pages hold at most ``cache_entries``
    entries together, whatever the size of the tree, and reads stay right after evictions."""
    store = MemStore()
    tree = Tree(store, cache_size=256)
    objects = tree._objects
    objects._cache_entries = 2_000
    root = tree.apply(EMPTY_ROOT, [put(f"/d/f{i:05d}", str(i)) for i in range(20_000)])
    assert sum(1 for _ in tree.list_dir(root, "/d")) == 20_000
    count, entries = objects.cached()
    assert 1 <= count <= 256 and entries <= 2_000
    node = tree.get(root, "/d/f12345")
    assert node is not None and node.size == len("12345")
    assert objects.cached()[1] <= 2_000


def test_added_bytes_is_the_size_of_the_diffs_new_files() -> None:
    store = MemStore()
    tree = Tree(store)
    base = tree.apply(
        EMPTY_ROOT,
        [put(f"/big/f{i:05d}", "x" * (i % 7)) for i in range(3_000)]
        + [put("/a", "aaa"), put("/s/t", "tt")],
    )
    new = tree.apply(
        base,
        [put("/big/f00010", "changed!"), put("/big/zz", "new"), put("/n/m", "12345"), Delete("/a")],
    )
    for old_root, new_root in ((base, new), (EMPTY_ROOT, new), (new, base), (base, base)):
        added, _ = tree.diff(new_root, old_root)
        want = sum(n.size for n in added if n.kind == "file")
        assert tree.added_bytes(new_root, old_root) == want
    assert tree.added_bytes(new, base) == len("changed!") + len("new") + len("12345")


def test_tree_objects_parse_whatever_their_json_holds_and_refuse_what_is_not() -> None:
    store = MemStore()
    tree = Tree(store)
    # written by hand: a size of 64 bits and a name that is not ASCII, escaped or not
    big = 2**64 - 1
    entry = {"n": "caf\u00e9", "s": big, "h": "h" * 64, "c": [["c" * 64, "o" * 64, 0, big]]}
    for escaped in (False, True):
        data = json.dumps({"e": [entry]}, separators=(",", ":"), ensure_ascii=escaped).encode()
        node = tree.get(store.put(data), "/caf\u00e9")
        assert node is not None and node.size == big and node.chunks[0].length == big
        assert isinstance(node.size, int)
    # bytes whose hash is their id, but no tree object: corrupt, as before
    for junk in (b"{not json", b"[1, 2]", b'{"e": 3}'):
        with pytest.raises(CorruptObject, match="does not decode"):
            tree.get(store.put(junk), "/x")
