"""PFS services (repos, commits, branches, files) on SQLite and a local object store: the rules of
reference §1 as a user of ``put-file``, ``list-commit`` … would notice them."""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tusk.api.models import CommitInfo, PutResult
from tusk.errors import (
    AlreadyExists,
    CommitFinished,
    Conflict,
    HasDependents,
    InvalidArgument,
    InvalidName,
    InvalidPath,
    NotFound,
    OutputBranch,
    PathConflict,
)
from tusk.meta import open_metadata_store
from tusk.pfs.commits import CommitService
from tusk.pfs.context import SPEC_REPO, PfsContext
from tusk.pfs.files import FileService
from tusk.pfs.repos import RepoService
from tusk.pfs.tree import Tree
from tusk.storage import open_object_store


@dataclass
class Pfs:
    repos: RepoService
    commits: CommitService
    files: FileService
    ctx: PfsContext

    def put(
        self,
        repo: str,
        ref: str,
        files: dict[str, bytes],
        *,
        overwrite: bool = False,
        split: str | None = None,
        target_datums: int = 0,
        target_bytes: int = 0,
        description: str = "",
    ) -> PutResult:
        batch = self.files.open_put(repo, ref)
        for path, data in files.items():
            batch.begin_file(
                path,
                overwrite=overwrite,
                split=split,
                target_datums=target_datums,
                target_bytes=target_bytes,
            )
            for i in range(0, len(data), 1 << 20):
                batch.write(data[i : i + (1 << 20)])
            batch.end_file()
        return batch.commit(description)

    def read(self, repo: str, ref: str, path: str) -> bytes:
        return b"".join(self.files.get(repo, ref, path))

    def head(self, repo: str, branch: str = "master") -> str | None:
        return self.commits.inspect_branch(repo, branch).head

    def names(self, repo: str, ref: str, path: str = "/") -> list[str]:
        return [f.path for f in self.files.list(repo, ref, path)]


@pytest.fixture
def pfs(tmp_path: Path) -> Iterator[Pfs]:
    meta = open_metadata_store(f"sqlite:///{tmp_path / 'tusk.db'}")
    store = open_object_store(f"file://{tmp_path / 'objects'}")
    ctx = PfsContext(meta=meta, store=store, tree=Tree(store))
    try:
        yield Pfs(RepoService(ctx), CommitService(ctx), FileService(ctx), ctx)
    finally:
        meta.close()


@pytest.fixture
def data(pfs: Pfs) -> str:
    pfs.repos.create("data")
    return "data"


# -- repos ------------------------------------------------------------------------------------
# ("a/b" names repo b of project a: tests/functional/test_projects.py)
@pytest.mark.parametrize("name", ["a b", "a/b/c", "a.b", "", "café", "x;y"])
def test_repo_name_must_be_alphanumeric_dash_underscore(pfs: Pfs, name: str) -> None:
    with pytest.raises(InvalidName, match="only alphanumeric characters, underscores, and dashes"):
        pfs.repos.create(name)
    assert pfs.repos.list() == []


def test_repo_create_duplicate_list_and_update(pfs: Pfs) -> None:
    pfs.repos.create("A_z-9", "first")
    pfs.repos.create("second")
    with pytest.raises(AlreadyExists, match="repo second already exists"):
        pfs.repos.create("second")
    assert [r.name for r in pfs.repos.list()] == ["second", "A_z-9"]
    assert pfs.repos.update("A_z-9", "changed").description == "changed"
    with pytest.raises(NotFound, match="repo nope not found"):
        pfs.repos.inspect("nope")


# -- put-file: append, overwrite, auto-commit ---------------------------------------------------
def test_put_appends_by_default_and_overwrite_replaces(pfs: Pfs, data: str) -> None:
    pfs.put(data, "master", {"/f": b"a\n"})
    pfs.put(data, "master", {"/f": b"b\n"})
    assert pfs.read(data, "master", "/f") == b"a\nb\n"
    assert pfs.read(data, "master^", "/f") == b"a\n"
    pfs.put(data, "master", {"/f": b"c\n"}, overwrite=True)
    assert pfs.read(data, "master", "/f") == b"c\n"
    # the same path twice in one invocation appends in order
    pfs.put(data, "master", {"/g": b"1"})
    batch = pfs.files.open_put(data, "master")
    for piece in (b"2", b"3"):
        batch.begin_file("/g")
        batch.write(piece)
        batch.end_file()
    batch.commit()
    assert pfs.read(data, "master", "/g") == b"123"


def test_each_put_to_a_branch_is_one_finished_commit(pfs: Pfs, data: str) -> None:
    first = pfs.put(data, "master", {"/a": b"1", "/b": b"2", "/dir/c": b"3"}, description="one")
    assert first.files == 3 and first.bytes == 3
    second = pfs.put(data, "master", {"/d": b"4"})
    commits = pfs.commits.list(data)
    assert [c.commit.id for c in commits] == [second.commit.id, first.commit.id]
    assert all(c.finished is not None for c in commits)
    assert commits[0].parent == first.commit.id and commits[1].parent is None
    assert commits[1].description == "one"
    assert pfs.head(data) == second.commit.id
    # commits are cumulative snapshots
    assert pfs.names(data, "master") == ["/a", "/b", "/d", "/dir"]
    assert pfs.names(data, first.commit.id) == ["/a", "/b", "/dir"]


def test_put_to_a_new_branch_creates_it(pfs: Pfs, data: str) -> None:
    res = pfs.put(data, "dev", {"/x": b"x"})
    assert pfs.head(data, "dev") == res.commit.id
    assert [b.branch.name for b in pfs.commits.list_branches(data)] == ["dev"]


def test_put_to_a_missing_repo_is_not_found(pfs: Pfs) -> None:
    with pytest.raises(NotFound, match="repo nope not found"):
        pfs.files.open_put("nope", "master")


# -- open commits ------------------------------------------------------------------------------
def test_open_commit_collects_puts_until_finished(pfs: Pfs, data: str) -> None:
    pfs.put(data, "master", {"/base": b"0"})
    before = pfs.head(data)
    c = pfs.commits.start(data, "master", description="batch")
    assert c.finished is None and c.parent == before
    assert pfs.head(data) == c.commit.id
    r1 = pfs.put(data, "master", {"/a": b"1"})
    r2 = pfs.put(data, c.commit.id, {"/b": b"2"})
    r3 = pfs.put(data, "master", {"/a": b"+"})
    assert r1.commit.id == r2.commit.id == r3.commit.id == c.commit.id
    # reads of the open commit see the pending writes
    assert pfs.read(data, "master", "/a") == b"1+"
    assert pfs.names(data, c.commit.id) == ["/a", "/b", "/base"]
    assert len(pfs.commits.list(data)) == 2
    assert pfs.commits.inspect(data, "master").finished is None
    done = pfs.commits.finish(data, "master")
    assert done.finished is not None and done.size_bytes == 4
    with pytest.raises(CommitFinished, match=f"commit {c.commit.id} in repo data has already"):
        pfs.commits.finish(data, c.commit.id)
    with pytest.raises(CommitFinished):
        pfs.files.open_put(data, c.commit.id)
    # after finishing, a put to the branch makes a new commit again
    assert pfs.put(data, "master", {"/z": b"z"}).commit.id != c.commit.id


def test_cannot_start_on_a_branch_whose_head_is_open(pfs: Pfs, data: str) -> None:
    open_ = pfs.commits.start(data, "master")
    with pytest.raises(Conflict, match=f"parent commit {open_.commit.id} has not been finished"):
        pfs.commits.start(data, "master")
    with pytest.raises(Conflict, match="has not been finished"):
        pfs.commits.start(data, "other", parent=open_.commit.id)
    assert len(pfs.commits.list(data)) == 1


def test_start_with_explicit_parent_and_detached(pfs: Pfs, data: str) -> None:
    a = pfs.put(data, "master", {"/a": b"a"}).commit.id
    pfs.put(data, "master", {"/b": b"b"})
    c = pfs.commits.start(data, "fix", parent=a)
    assert c.parent == a
    assert pfs.names(data, "fix") == ["/a"]
    pfs.commits.finish(data, "fix")
    detached = pfs.commits.start(data)
    assert detached.branch is None and detached.parent is None
    pfs.put(data, detached.commit.id, {"/d": b"d"})
    pfs.commits.finish(data, detached.commit.id)
    assert pfs.names(data, detached.commit.id) == ["/d"]


def test_output_branch_refuses_user_commits(pfs: Pfs, data: str) -> None:
    pfs.repos.create("out")
    pfs.commits.create_branch("out", "master", provenance=[(data, "master")])
    with pytest.raises(OutputBranch, match="output branch"):
        pfs.commits.start("out", "master")
    with pytest.raises(OutputBranch):
        pfs.files.open_put("out", "master")
    pfs.put("out", "scratch", {"/x": b"x"})  # other branches of an output repo are writable


# -- ancestry refs ------------------------------------------------------------------------------
def test_ancestry_references(pfs: Pfs, data: str) -> None:
    ids = [pfs.put(data, "master", {f"/f{i}": b"x"}).commit.id for i in range(4)]
    assert pfs.commits.inspect(data, "master").commit.id == ids[3]
    assert pfs.commits.inspect(data, "master^").commit.id == ids[2]
    assert pfs.commits.inspect(data, "master^^").commit.id == ids[1]
    assert pfs.commits.inspect(data, "master~2").commit.id == ids[1]
    assert pfs.commits.inspect(data, "master^3").commit.id == ids[0]
    assert pfs.commits.inspect(data, f"{ids[2]}~2").commit.id == ids[0]
    assert pfs.names(data, "master~3") == ["/f0"]
    with pytest.raises(NotFound, match=f"parent commit {ids[0]} not found in repo data"):
        pfs.commits.inspect(data, "master^4")
    with pytest.raises(NotFound, match="parent commit"):
        pfs.read(data, "master~9", "/f0")


def test_unknown_refs(pfs: Pfs, data: str) -> None:
    pfs.commits.create_branch(data, "empty")
    with pytest.raises(
        NotFound, match=r'the branch "empty" has no head \(create one with start-commit\)'
    ):
        pfs.commits.inspect(data, "empty")
    with pytest.raises(NotFound, match="branch nope not found in repo data"):
        pfs.files.list(data, "nope")
    missing = "0" * 32
    with pytest.raises(NotFound, match=f"commit {missing} not found in repo data"):
        pfs.commits.inspect(data, missing)


# -- delete-file / copy-file --------------------------------------------------------------------
def test_delete_file_dir_glob_missing_and_root(pfs: Pfs, data: str) -> None:
    pfs.put(
        data,
        "master",
        {
            "/keep": b"k",
            "/gone": b"g",
            "/d/a": b"a",
            "/d/b": b"b",
            "/logs/1.txt": b"1",
            "/logs/2.txt": b"2",
            "/logs/3.csv": b"3",
        },
    )
    pfs.files.delete(data, "master", ["/gone"])
    assert pfs.names(data, "master") == ["/d", "/keep", "/logs"]
    pfs.files.delete(data, "master", ["/d"])
    assert pfs.names(data, "master") == ["/keep", "/logs"]
    pfs.files.delete(data, "master", ["/logs/*.txt"])
    assert pfs.names(data, "master", "/logs") == ["/logs/3.csv"]
    before = pfs.files.list(data, "master")
    pfs.files.delete(data, "master", ["/never/was"])
    assert pfs.files.list(data, "master") == before
    pfs.files.delete(data, "master", ["/"])
    assert pfs.files.list(data, "master") == []
    assert pfs.commits.inspect(data, "master").size_bytes == 0
    # every delete made a commit; the history still has the data
    assert pfs.read(data, "master~5", "/gone") == b"g"


def test_delete_then_put_in_one_open_commit(pfs: Pfs, data: str) -> None:
    pfs.put(data, "master", {"/f": b"old"})
    pfs.commits.start(data, "master")
    pfs.files.delete(data, "master", ["/f"])
    pfs.put(data, "master", {"/f": b"new"})
    pfs.commits.finish(data, "master")
    assert pfs.read(data, "master", "/f") == b"new"


def test_copy_file_and_directory(pfs: Pfs, data: str) -> None:
    pfs.repos.create("dst")
    pfs.put(data, "master", {"/f": b"hello", "/dir/a": b"A", "/dir/sub/b": b"B"})
    stored_before = sum(1 for _ in pfs.ctx.store.iter_ids())
    pfs.files.copy(data, "master", "/f", "dst", "master", "/copy")
    pfs.files.copy(data, "master", "/dir", "dst", "master", "/tree")
    assert pfs.read("dst", "master", "/copy") == b"hello"
    assert pfs.read("dst", "master", "/tree/sub/b") == b"B"
    assert pfs.names("dst", "master", "/tree") == ["/tree/a", "/tree/sub"]
    # appends to an existing destination by default, replaces with overwrite
    pfs.files.copy(data, "master", "/f", "dst", "master", "/copy")
    assert pfs.read("dst", "master", "/copy") == b"hellohello"
    pfs.files.copy(data, "master", "/f", "dst", "master", "/copy", overwrite=True)
    assert pfs.read("dst", "master", "/copy") == b"hello"
    with pytest.raises(NotFound):
        pfs.files.copy(data, "master", "/missing", "dst", "master", "/x")
    # server-side copy stores no new file data (only tree objects)
    new_ids = set(pfs.ctx.store.iter_ids())
    assert len(new_ids) - stored_before < 20


# -- split ---------------------------------------------------------------------------------------
def test_split_lines_one_record_per_file(pfs: Pfs, data: str) -> None:
    pfs.put(data, "master", {"/users": b"a\nb\nc\nd\ne"}, split="line")
    names = pfs.names(data, "master", "/users")
    assert names == [f"/users/{i:016x}" for i in range(5)]
    assert pfs.read(data, "master", "/users/0000000000000000") == b"a\n"
    assert pfs.read(data, "master", "/users/0000000000000004") == b"e"


def test_split_target_datums_bytes_and_continued_numbering(pfs: Pfs, data: str) -> None:
    lines = b"".join(f"line{i}\n".encode() for i in range(5))  # 6 bytes each
    pfs.put(data, "master", {"/d": lines}, split="line", target_datums=2)
    assert [pfs.read(data, "master", p) for p in pfs.names(data, "master", "/d")] == [
        b"line0\nline1\n",
        b"line2\nline3\n",
        b"line4\n",
    ]
    pfs.put(data, "master", {"/d": lines}, split="line", target_bytes=10)
    names = pfs.names(data, "master", "/d")
    assert names[:3] == [f"/d/{i:016x}" for i in range(3)]
    assert names[3:] == [f"/d/{i:016x}" for i in range(3, 6)]
    assert pfs.read(data, "master", "/d/0000000000000003") == b"line0\nline1\n"
    assert pfs.read(data, "master", "/d/0000000000000005") == b"line4\n"
    # old split files are untouched by the appending split
    first = pfs.files.inspect(data, "master^", "/d/0000000000000000")
    assert pfs.files.inspect(data, "master", "/d/0000000000000000").hash == first.hash
    # overwrite replaces the children
    pfs.put(data, "master", {"/d": b"x\ny\n"}, split="line", overwrite=True)
    assert pfs.names(data, "master", "/d") == ["/d/0000000000000000", "/d/0000000000000001"]


def test_split_json(pfs: Pfs, data: str) -> None:
    body = b'{"a": 1}\n{"b": [1, 2]}  "s" 42\n[3]'
    pfs.put(data, "master", {"/j": body}, split="json")
    got = [pfs.read(data, "master", p) for p in pfs.names(data, "master", "/j")]
    assert got == [b'{"a": 1}', b'{"b": [1, 2]}', b'"s"', b"42", b"[3]"]
    with pytest.raises(InvalidArgument, match="invalid JSON"):
        pfs.put(data, "master", {"/bad": b'{"a": '}, split="json")


def test_split_into_a_directory_of_other_names_fails(pfs: Pfs, data: str) -> None:
    pfs.put(data, "master", {"/d/readme": b"hi"})
    head = pfs.head(data)
    with pytest.raises(InvalidPath, match="not made by a split"):
        pfs.put(data, "master", {"/d": b"1\n2\n"}, split="line")
    with pytest.raises(PathConflict):
        pfs.put(data, "master", {"/d/readme": b"1\n"}, split="line")
    assert pfs.head(data) == head


# -- path rules ----------------------------------------------------------------------------------
def test_file_under_a_file_is_a_path_conflict_and_makes_no_commit(pfs: Pfs, data: str) -> None:
    pfs.put(data, "master", {"/a": b"file"})
    head = pfs.head(data)
    with pytest.raises(PathConflict, match="/a is a file"):
        pfs.put(data, "master", {"/a/b": b"x"})
    assert pfs.head(data) == head
    assert len(pfs.commits.list(data)) == 1


@pytest.mark.parametrize("overwrite", [False, True])
def test_file_where_a_directory_is_is_a_path_conflict(pfs: Pfs, data: str, overwrite: bool) -> None:
    pfs.put(data, "master", {"/d/x": b"x"})
    head = pfs.head(data)
    with pytest.raises(PathConflict, match="directory"):
        pfs.put(data, "master", {"/d": b"file"}, overwrite=overwrite)
    assert pfs.head(data) == head
    assert pfs.read(data, "master", "/d/x") == b"x"


def test_file_and_directory_clash_in_one_open_commit(pfs: Pfs, data: str) -> None:
    c = pfs.commits.start(data, "master")
    pfs.put(data, "master", {"/a": b"file"})
    with pytest.raises(PathConflict):
        pfs.put(data, "master", {"/a/b": b"x"})
    assert pfs.commits.finish(data, c.commit.id).size_bytes == 4
    assert pfs.read(data, "master", "/a") == b"file"


@pytest.mark.parametrize("path", ["/a*b", "/a?", "/[x]", "/{a,b}", "/a!", "/d/../etc", "../x", "/"])
def test_bad_paths_are_rejected_before_anything_is_stored(pfs: Pfs, data: str, path: str) -> None:
    objects_before = sorted(pfs.ctx.store.iter_ids())
    with pytest.raises(InvalidPath):
        pfs.put(data, "master", {path: b"x"})
    assert pfs.commits.list(data) == []
    assert sorted(pfs.ctx.store.iter_ids()) == objects_before


def test_glob_character_message_names_the_character(pfs: Pfs, data: str) -> None:
    with pytest.raises(InvalidPath, match=r"globbing character \(\*\) not allowed in path"):
        pfs.put(data, "master", {"/a*": b"x"})
    with pytest.raises(InvalidPath, match="'..' components are not allowed"):
        pfs.put(data, "master", {"/a/../b": b"x"})


# -- reads ---------------------------------------------------------------------------------------
@pytest.fixture
def tree_repo(pfs: Pfs, data: str) -> str:
    pfs.put(
        data,
        "master",
        {
            "/top.txt": b"12345",
            "/users/b": b"bb",
            "/users/a": b"a",
            "/imgs/x.png": b"xyz",
            "/imgs/sub/y.png": b"y",
        },
    )
    return data


def test_list_file_root_subdir_and_glob(pfs: Pfs, tree_repo: str) -> None:
    root = pfs.files.list(tree_repo, "master")
    assert [(f.path, f.type, f.size_bytes) for f in root] == [
        ("/imgs", "dir", 4),
        ("/top.txt", "file", 5),
        ("/users", "dir", 3),
    ]
    assert pfs.names(tree_repo, "master", "users") == ["/users/a", "/users/b"]
    # a glob lists each matching directory's children and each matching file as itself
    assert pfs.names(tree_repo, "master", "/*s") == [
        "/imgs/sub",
        "/imgs/x.png",
        "/users/a",
        "/users/b",
    ]
    assert pfs.names(tree_repo, "master", "/top.txt") == ["/top.txt"]
    with pytest.raises(NotFound, match="file /nope not found in repo data"):
        pfs.files.list(tree_repo, "master", "/nope")


def test_glob_file(pfs: Pfs, tree_repo: str) -> None:
    assert [f.path for f in pfs.files.glob(tree_repo, "master", "*")] == [
        "/imgs",
        "/top.txt",
        "/users",
    ]
    assert [f.path for f in pfs.files.glob(tree_repo, "master", "/**.png")] == [
        "/imgs/sub/y.png",
        "/imgs/x.png",
    ]
    assert [f.path for f in pfs.files.glob(tree_repo, "master", "/users/[!b]")] == ["/users/a"]
    assert [f.path for f in pfs.files.glob(tree_repo, "master", "/")] == ["/"]
    assert pfs.files.glob(tree_repo, "master", "/nothing*") == []


def test_get_file_glob_and_errors(pfs: Pfs, tree_repo: str) -> None:
    assert pfs.read(tree_repo, "master", "/users/*") == b"abb"
    assert b"".join(pfs.files.get(tree_repo, "master", "/top.txt", offset=1, length=3)) == b"234"
    with pytest.raises(NotFound, match="no file"):
        pfs.read(tree_repo, "master", "/zzz*")
    with pytest.raises(NotFound, match="file /zzz not found in repo data"):
        pfs.read(tree_repo, "master", "/zzz")
    with pytest.raises(InvalidPath, match="cannot read directory"):
        pfs.read(tree_repo, "master", "/users")


def test_inspect_file(pfs: Pfs, tree_repo: str) -> None:
    f = pfs.files.inspect(tree_repo, "master", "/top.txt")
    assert (f.path, f.type, f.size_bytes, f.children) == ("/top.txt", "file", 5, [])
    d = pfs.files.inspect(tree_repo, "master", "/imgs")
    assert (d.type, d.size_bytes, d.children, d.file_count) == ("dir", 4, ["sub", "x.png"], 2)
    root = pfs.files.inspect(tree_repo, "master", "/")
    assert root.size_bytes == 12 and root.children == ["imgs", "top.txt", "users"]
    with pytest.raises(NotFound):
        pfs.files.inspect(tree_repo, "master", "/imgs/none")


def test_diff_file(pfs: Pfs, tree_repo: str) -> None:
    pfs.commits.start(tree_repo, "master")
    pfs.put(tree_repo, "master", {"/new.txt": b"n", "/imgs/x.png": b"more"})
    pfs.files.delete(tree_repo, "master", ["/users/a"])
    pfs.commits.finish(tree_repo, "master")
    d = pfs.files.diff(tree_repo, "master", "/")
    assert [f.path for f in d.new_files] == ["/imgs/x.png", "/new.txt"]
    assert [f.path for f in d.old_files] == ["/imgs/x.png", "/users/a"]
    assert [f.size_bytes for f in d.new_files] == [7, 1]
    shallow = pfs.files.diff(tree_repo, "master", "/", shallow=True)
    assert [f.path for f in shallow.new_files] == ["/imgs", "/new.txt", "/users"]
    assert [f.path for f in shallow.old_files] == ["/imgs", "/users"]
    # explicit old commit, restricted to a path
    sub = pfs.files.diff(tree_repo, "master", "/users", tree_repo, "master^")
    assert (sub.new_files, [f.path for f in sub.old_files]) == ([], ["/users/a"])
    # the first commit diffs against nothing
    first = pfs.files.diff(tree_repo, "master^", "/")
    assert len(first.new_files) == 5 and first.old_files == []
    same = pfs.files.diff(tree_repo, "master", "/", tree_repo, "master")
    assert same.new_files == [] and same.old_files == []


# -- sizes ---------------------------------------------------------------------------------------
def test_commit_size_is_the_snapshot_and_repo_size_accumulates(pfs: Pfs, data: str) -> None:
    pfs.put(data, "master", {"/a": b"x" * 10})
    pfs.put(data, "master", {"/b": b"y" * 5})
    assert pfs.commits.inspect(data, "master").size_bytes == 15
    assert pfs.commits.inspect(data, "master^").size_bytes == 10
    assert pfs.repos.inspect(data).size_bytes == 15
    pfs.files.delete(data, "master", ["/a"])
    assert pfs.commits.inspect(data, "master").size_bytes == 5
    assert pfs.repos.inspect(data).size_bytes == 15
    assert [r.size_bytes for r in pfs.repos.list()] == [15]


def test_repo_size_counts_changed_files_alike_for_auto_and_open_commits(
    pfs: Pfs, tmp_path: Path
) -> None:
    """The same changes must give the same repo size however they were committed."""
    pfs.repos.create("auto")
    pfs.repos.create("manual")
    pfs.put("auto", "master", {"/f": b"x" * 10})
    pfs.put("auto", "master", {"/f": b"y" * 3})
    for chunk in (b"x" * 10, b"y" * 3):
        pfs.commits.start("manual", "master")
        pfs.put("manual", "master", {"/f": chunk})
        pfs.commits.finish("manual", "master")
    assert pfs.read("auto", "master", "/f") == pfs.read("manual", "master", "/f")
    assert pfs.repos.inspect("auto").size_bytes == pfs.repos.inspect("manual").size_bytes


def test_deleting_every_commit_brings_the_repo_size_back_to_zero(pfs: Pfs, data: str) -> None:
    a = pfs.put(data, "master", {"/a": b"x" * 10}).commit.id
    b = pfs.put(data, "master", {"/b": b"y" * 5}).commit.id
    pfs.commits.start(data, "master")
    pfs.put(data, "master", {"/c": b"z" * 7})  # open: not counted yet
    assert pfs.repos.inspect(data).size_bytes == 15
    pfs.commits.delete(data, "master")
    assert pfs.repos.inspect(data).size_bytes == 15
    pfs.commits.delete(data, b)
    assert pfs.repos.inspect(data).size_bytes == 10
    pfs.commits.delete(data, a)
    assert pfs.repos.inspect(data).size_bytes == 0


# -- delete-commit / delete-repo / delete-branch --------------------------------------------------
def test_delete_commit_reparents_children_and_moves_the_head_back(pfs: Pfs, data: str) -> None:
    a = pfs.put(data, "master", {"/a": b"a"}).commit.id
    b = pfs.put(data, "master", {"/b": b"b"}).commit.id
    c = pfs.put(data, "master", {"/c": b"c"}).commit.id
    deleted = pfs.commits.delete(data, b)
    assert [k.id for k in deleted] == [b]
    assert pfs.commits.inspect(data, c).parent == a
    assert [x.commit.id for x in pfs.commits.list(data, "master")] == [c, a]
    # a squash-out, not a revert: c keeps its data
    assert pfs.names(data, "master") == ["/a", "/b", "/c"]
    pfs.commits.delete(data, "master")
    assert pfs.head(data) == a
    pfs.commits.delete(data, a)
    assert pfs.head(data) is None
    assert pfs.commits.list(data) == []
    with pytest.raises(NotFound, match="has no head"):
        pfs.commits.inspect(data, "master")


def test_delete_commit_deletes_downstream_commits(pfs: Pfs, data: str) -> None:
    pfs.repos.create("out")
    src = pfs.put(data, "master", {"/a": b"a"}).commit.id
    out = pfs.commits.start(
        "out", "master", provenance=[(data, src, "master")], origin="auto", internal=True
    )
    assert [k.id for k in pfs.commits.inspect(data, src).subvenance] == [out.commit.id]
    with pytest.raises(InvalidArgument, match="non-empty provenance"):
        pfs.commits.delete("out", out.commit.id)
    deleted = pfs.commits.delete(data, src)
    assert {(k.repo, k.id) for k in deleted} == {(data, src), ("out", out.commit.id)}
    assert pfs.commits.list("out") == []
    assert pfs.head("out") is None


def test_delete_open_commit(pfs: Pfs, data: str) -> None:
    a = pfs.put(data, "master", {"/a": b"a"}).commit.id
    c = pfs.commits.start(data, "master")
    pfs.put(data, "master", {"/b": b"b"})
    pfs.commits.delete(data, c.commit.id)
    assert pfs.head(data) == a
    assert pfs.names(data, "master") == ["/a"]
    pfs.put(data, "master", {"/c": b"c"})  # the branch is usable again


def test_delete_repo_with_subvenance_needs_force(pfs: Pfs, data: str) -> None:
    pfs.repos.create("out")
    pfs.put(data, "master", {"/a": b"a"})
    pfs.commits.create_branch("out", "master", provenance=[(data, "master")])
    with pytest.raises(HasDependents, match=r"branch master has \[out/master\] as subvenance"):
        pfs.repos.delete(data)
    assert pfs.repos.inspect(data).name == data
    assert pfs.repos.delete(data, force=True) == [data]
    assert [r.name for r in pfs.repos.list()] == ["out"]
    with pytest.raises(NotFound):
        pfs.repos.delete(data)
    with pytest.raises(InvalidArgument, match="either a repo name or the --all flag"):
        pfs.repos.delete(None)


def test_delete_repo_all_and_recreate_empty(pfs: Pfs, data: str) -> None:
    pfs.put(data, "master", {"/a": b"a"})
    pfs.repos.create("other")
    assert sorted(pfs.repos.delete(None, all=True)) == ["data", "other"]
    assert pfs.repos.list() == []
    pfs.repos.create(data)
    assert pfs.commits.list(data) == []
    assert pfs.commits.list_branches(data) == []
    assert pfs.repos.inspect(data).size_bytes == 0


def test_delete_branch_keeps_commits(pfs: Pfs, data: str) -> None:
    c = pfs.put(data, "dev", {"/a": b"a"}).commit.id
    pfs.commits.create_branch(data, "master", head="dev")
    pfs.repos.create("out")
    pfs.commits.create_branch("out", "master", provenance=[(data, "master")])
    pfs.commits.delete_branch(data, "dev")
    assert [b.branch.name for b in pfs.commits.list_branches(data)] == ["master"]
    assert pfs.read(data, c, "/a") == b"a"
    with pytest.raises(HasDependents, match="subvenance"):
        pfs.commits.delete_branch(data, "master")
    pfs.commits.delete_branch(data, "master", force=True)
    assert pfs.commits.list_branches(data) == []
    with pytest.raises(NotFound, match="branch dev not found"):
        pfs.commits.delete_branch(data, "dev")


def test_branch_provenance_cycle_is_rejected(pfs: Pfs, data: str) -> None:
    pfs.repos.create("out")
    pfs.commits.create_branch("out", "master", provenance=[(data, "master")])
    with pytest.raises(InvalidArgument, match="provenance of itself"):
        pfs.commits.create_branch(data, "master", provenance=[("out", "master")])
    info = pfs.commits.inspect_branch(data, "master")
    assert info.provenance == [] and [str(b) for b in info.subvenance] == ["out/master"]


# -- list-commit / subscribe ---------------------------------------------------------------------
def test_list_commit_from_and_number(pfs: Pfs, data: str) -> None:
    ids = [pfs.put(data, "master", {"/f": b"x"}).commit.id for _ in range(5)]
    pfs.put(data, "dev", {"/g": b"y"})
    newest_first = list(reversed(ids))
    assert [c.commit.id for c in pfs.commits.list(data, "master")] == newest_first
    assert len(pfs.commits.list(data)) == 6
    assert [c.commit.id for c in pfs.commits.list(data, "master", from_=ids[1])] == [
        ids[4],
        ids[3],
        ids[2],
    ]
    assert [c.commit.id for c in pfs.commits.list(data, "master", number=2)] == newest_first[:2]
    assert [c.commit.id for c in pfs.commits.list(data, "master^", from_=ids[0], number=2)] == [
        ids[3],
        ids[2],
    ]
    assert len(pfs.commits.list(data, number=3)) == 3
    with pytest.raises(InvalidArgument, match="--from"):
        pfs.commits.list(data, from_=ids[0])


def _take(it: Iterator[CommitInfo], n: int) -> list[str]:
    return [next(it).commit.id for _ in range(n)]


def test_subscribe_streams_history_then_new_commits(pfs: Pfs, data: str) -> None:
    ids = [pfs.put(data, "master", {"/f": b"x"}).commit.id for _ in range(3)]
    stop = threading.Event()
    it = pfs.commits.subscribe(data, "master", stop=stop, poll=0.2)
    try:
        assert _take(it, 3) == ids
        new = pfs.put(data, "master", {"/f": b"y"}).commit.id
        assert _take(it, 1) == [new]
        opened = pfs.commits.start(data, "master").commit.id
        assert _take(it, 1) == [opened]  # open commits are streamed too
        pfs.put(data, "dev", {"/other": b"z"})  # another branch is not streamed
        pfs.commits.finish(data, "master")
        last = pfs.put(data, "master", {"/f": b"w"}).commit.id
        assert _take(it, 1) == [last]
    finally:
        stop.set()
        it.close()


def test_subscribe_new_and_from(pfs: Pfs, data: str) -> None:
    ids = [pfs.put(data, "master", {"/f": b"x"}).commit.id for _ in range(3)]
    stop = threading.Event()
    only_new = pfs.commits.subscribe(data, "master", new=True, stop=stop, poll=0.2)
    after = pfs.commits.subscribe(data, "master", from_=ids[0], stop=stop, poll=0.2)
    try:
        assert _take(after, 2) == ids[1:]
        fresh = pfs.put(data, "master", {"/f": b"y"}).commit.id
        assert _take(only_new, 1) == [fresh]
        assert _take(after, 1) == [fresh]
    finally:
        stop.set()
        only_new.close()
        after.close()
    with pytest.raises(InvalidArgument, match="--new and --from"):
        pfs.commits.subscribe(data, "master", new=True, from_=ids[0])
    with pytest.raises(NotFound):
        pfs.commits.subscribe("nope", "master")


def test_subscribe_to_a_branch_that_does_not_exist_yet(pfs: Pfs, data: str) -> None:
    stop = threading.Event()
    it = pfs.commits.subscribe(data, "later", stop=stop, poll=0.2)
    try:
        first = pfs.put(data, "later", {"/f": b"x"}).commit.id
        assert _take(it, 1) == [first]
    finally:
        stop.set()
        it.close()


# -- big puts: written in batches ---------------------------------------------------------------
def _walk(pfs: Pfs, repo: str) -> list[tuple[str, int, str]]:
    """Paths, sizes and content hashes (a directory's hash names the packs its files are in)."""
    return [
        (f.path, f.size_bytes, f.hash if f.type == "file" else "dir")
        for f in pfs.files.walk(repo, "master")
    ]


def test_a_put_written_in_tree_batches_equals_one_written_at_once(
    pfs: Pfs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A big put spills its files and writes the tree a batch at a time, in path order: the
    result must be exactly the tree of the same put written in one go, appends included."""
    rng = random.Random(13)
    names = [f"/big/n{i:05d}" for i in range(2600)] + [f"/d{k % 7}/x{k}" for k in range(300)]
    rng.shuffle(names)
    files: list[tuple[str, bytes, bool]] = [(n, n.encode() * 3, False) for n in names]
    # one path twice in the put (appends in order), a file of the base appended to and one
    # overwritten, all scattered among the others
    files.insert(700, ("/big/keep", b"+1", False))
    files.insert(2100, ("/big/keep", b"+2", False))
    files.insert(1500, ("/other", b"new", True))
    trees = []
    for repo, tree_batch, pack_members in (("once", 10**9, 10**9), ("batched", 250, 100)):
        monkeypatch.setattr("tusk.pfs.put.TREE_BATCH", tree_batch)
        monkeypatch.setattr("tusk.storage.chunking.PACK_MEMBERS", pack_members)
        pfs.repos.create(repo)
        pfs.put(repo, "master", {"/big/keep": b"old", "/other": b"o"})
        batch = pfs.files.open_put(repo, "master")
        for path, body, overwrite in files:
            batch.begin_file(path, overwrite=overwrite)
            batch.write(body)
            batch.end_file()
        result = batch.commit()
        assert result.files == len(files)
        assert result.bytes == sum(len(b) for _, b, _ in files)
        assert len(pfs.commits.list(repo, "master")) == 2
        assert pfs.read(repo, "master", "/big/keep") == b"old+1+2"
        assert pfs.read(repo, "master", "/other") == b"new"
        assert pfs.read(repo, "master", "/big/n01234") == b"/big/n01234" * 3
        trees.append(_walk(pfs, repo))
    assert trees[0] == trees[1]
    assert len(trees[0]) == 2600 + 300 + 2 + 8  # files and the directories /big, /d0 … /d6


# -- concurrency -----------------------------------------------------------------------------
def test_two_concurrent_puts_to_one_branch_both_land(pfs: Pfs, data: str) -> None:
    pfs.put(data, "master", {"/base": b"0"})
    results: dict[str, PutResult] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def writer(name: str) -> None:
        try:
            batch = pfs.files.open_put(data, "master")
            batch.begin_file(f"/{name}")
            batch.write(os.urandom(200_000))
            batch.end_file()
            barrier.wait()
            results[name] = batch.commit()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert results["one"].commit.id != results["two"].commit.id
    assert pfs.names(data, "master") == ["/base", "/one", "/two"]
    history = pfs.commits.list(data, "master")
    assert len(history) == 3
    assert {h.commit.id for h in history[:2]} == {r.commit.id for r in results.values()}


def test_many_concurrent_puts_to_one_branch_all_land(pfs: Pfs, data: str) -> None:
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            for j in range(5):
                pfs.put(data, "master", {f"/w{i}/f{j}": b"x"})
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert len(pfs.commits.list(data, "master")) == 30
    assert len([f for f in pfs.files.walk(data, "master") if f.type == "file"]) == 30


# -- properties: cost of a put, deduplication ---------------------------------------------------
def _best_put_seconds(pfs: Pfs, repo: str, rounds: int = 5) -> float:
    best = float("inf")
    for i in range(rounds):
        t0 = time.perf_counter()
        pfs.put(repo, "master", {f"/files/new-{i}": b"one more file"})
        best = min(best, time.perf_counter() - t0)
    return best


def test_put_cost_does_not_grow_with_repo_size(pfs: Pfs) -> None:
    pfs.repos.create("small")
    pfs.repos.create("big")
    pfs.put("small", "master", {f"/files/{i:06d}": b"%d" % i for i in range(10)})
    big = {f"/files/{i:06d}": b"%d" % i for i in range(20_000)}
    pfs.put("big", "master", big)
    assert pfs.files.inspect("big", "master", "/files").file_count == 20_000
    small_t = _best_put_seconds(pfs, "small")
    big_t = _best_put_seconds(pfs, "big")
    # generous: a put is O(changed), so one more file in a directory of 20,000 must not cost
    # 3x what it costs in a directory of 10
    assert big_t < 3 * small_t + 0.02, (small_t, big_t)


def test_appending_to_a_large_file_stores_only_the_change(pfs: Pfs, data: str) -> None:
    rng = random.Random(7)
    base = rng.randbytes(32 << 20)
    first = pfs.put(data, "master", {"/big": base})
    assert first.stored_bytes >= 32 << 20
    grown = base + rng.randbytes(1 << 20)
    again = pfs.put(data, "master", {"/big": grown}, overwrite=True)
    assert again.bytes == 33 << 20
    assert again.stored_bytes < 8 << 20, again.stored_bytes
    assert pfs.files.inspect(data, "master", "/big").size_bytes == 33 << 20
    assert pfs.read(data, "master", "/big") == grown
    # the same bytes once more store nothing new
    assert pfs.put(data, "master", {"/big": grown}, overwrite=True).stored_bytes == 0


# -- directory headers and footers (put-header / put-footer, --split sql) ----------------------
PG_DUMP = (
    b"SET x = 0;\nCREATE TABLE cars (id int, name text);\nCOPY cars (id, name) FROM stdin;\n"
    b"1\tbeetle\n2\tmini\n3\tfiat\n\\.\nALTER TABLE cars ADD PRIMARY KEY (id);\n"
)
SQL_HEADER, _, _rest = PG_DUMP.partition(b"1\tbeetle\n")
SQL_FOOTER = _rest[_rest.index(b"\\.\n") :]


def put_shared(pfs: Pfs, repo: str, ref: str, path: str, part: str, data: bytes) -> None:
    batch = pfs.files.open_put(repo, ref)
    batch.begin_file(path, shared="header" if part == "header" else "footer")
    batch.write(data)
    batch.end_file()
    batch.commit()


def test_header_and_footer_wrap_files_and_the_directory(pfs: Pfs, data: str) -> None:
    pfs.put(data, "master", {"/d/a": b"A\n", "/d/b": b"B\n", "/d/sub/c": b"C\n", "/top": b"T\n"})
    with pytest.raises(InvalidPath, match="cannot read directory /d, no header or footer"):
        pfs.read(data, "master", "/d")
    put_shared(pfs, data, "master", "/d", "header", b"<h>\n")
    put_shared(pfs, data, "master", "/d", "footer", b"<f>\n")
    assert pfs.read(data, "master", "/d/a") == b"<h>\nA\n<f>\n"
    # the rule is the parent directory's, as 1.7 reads a file
    assert pfs.read(data, "master", "/d/sub/c") == b"C\n"
    assert pfs.read(data, "master", "/top") == b"T\n"
    assert pfs.read(data, "master", "/d") == b"<h>\nA\nB\nC\n<f>\n"
    # a glob of one directory's files reads inside its header and footer once
    assert pfs.read(data, "master", "/d/*") == b"<h>\nA\nB\n<f>\n"
    # a glob matching the directory reads it whole
    assert pfs.read(data, "master", "/*") == b"<h>\nA\nB\nC\n<f>\nT\n"
    # offsets apply to what is read
    assert b"".join(pfs.files.get(data, "master", "/d/a", offset=2, length=4)) == b">\nA\n"
    # sizes stay the stored sizes, and the 2.x API (no headers there) reads what is stored
    assert pfs.files.inspect(data, "master", "/d/a").size_bytes == 2
    assert b"".join(pfs.files.get(data, "master", "/d/a", headers=False)) == b"A\n"
    assert pfs.files.inspect(data, "master", "/d").size_bytes == 6
    # diff-file lists the directory whose header changed
    put_shared(pfs, data, "master", "/d", "header", b"<h2>\n")
    diff = pfs.files.diff(data, "master", "/")
    assert [f.path for f in diff.new_files] == ["/d"]
    assert [f.path for f in diff.old_files] == ["/d"]
    assert pfs.read(data, "master", "/d/b") == b"<h2>\nB\n<f>\n"


@pytest.mark.parametrize("empty", [b"", b"\n"])
def test_an_empty_line_removes_a_header(pfs: Pfs, data: str, empty: bytes) -> None:
    pfs.put(data, "master", {"/d/a": b"A\n"})
    put_shared(pfs, data, "master", "/d", "header", b"<h>\n")
    put_shared(pfs, data, "master", "/d", "footer", b"<f>\n")
    put_shared(pfs, data, "master", "/d", "header", empty)
    assert pfs.read(data, "master", "/d/a") == b"A\n<f>\n"
    put_shared(pfs, data, "master", "/d", "footer", empty)
    assert pfs.read(data, "master", "/d/a") == b"A\n"
    with pytest.raises(InvalidPath, match="no header or footer"):
        pfs.read(data, "master", "/d")


def test_header_on_a_file_or_in_an_open_commit(pfs: Pfs, data: str) -> None:
    pfs.put(data, "master", {"/f": b"x"})
    head = pfs.head(data)
    with pytest.raises(PathConflict, match="/f is a file"):
        put_shared(pfs, data, "master", "/f", "header", b"h")
    assert pfs.head(data) == head
    # into an open commit: no new commit, the header is there when it finishes
    started = pfs.commits.start(data, "master")
    put_shared(pfs, data, started.commit.id, "/new", "header", b"h\n")
    pfs.put(data, started.commit.id, {"/new/a": b"a\n"})
    pfs.commits.finish(data, started.commit.id)
    assert pfs.read(data, "master", "/new/a") == b"h\na\n"


def test_split_sql_puts_the_dump_header_on_the_directory(pfs: Pfs, data: str) -> None:
    pfs.put(data, "master", {"/cars": PG_DUMP}, split="sql")
    names = pfs.names(data, "master", "/cars")
    assert len(names) == 3
    rows = [b"1\tbeetle\n", b"2\tmini\n", b"3\tfiat\n"]
    # stored files hold only their rows; reading adds the directory's header and footer
    assert [pfs.files.inspect(data, "master", n).size_bytes for n in names] == [
        len(r) for r in rows
    ]
    for name, row in zip(names, rows, strict=True):
        assert pfs.read(data, "master", name) == SQL_HEADER + row + SQL_FOOTER
    assert pfs.read(data, "master", "/cars") == PG_DUMP  # the whole dump again
    # appending another dump continues the numbering under the same header
    pfs.put(data, "master", {"/cars": PG_DUMP}, split="sql")
    names = pfs.names(data, "master", "/cars")
    assert len(names) == 6
    assert pfs.read(data, "master", names[4]) == SQL_HEADER + rows[1] + SQL_FOOTER


def test_split_sql_appends_to_an_old_split_without_reading_the_header_twice(
    pfs: Pfs, data: str
) -> None:
    # a directory split before directory headers: every file holds header and footer itself
    old = SQL_HEADER + b"1\tbeetle\n" + SQL_FOOTER
    pfs.put(data, "master", {"/cars/0000000000000000": old})
    pfs.put(data, "master", {"/cars": PG_DUMP}, split="sql")
    names = pfs.names(data, "master", "/cars")
    assert len(names) == 4
    assert pfs.read(data, "master", names[0]) == old
    assert pfs.read(data, "master", names[2]) == SQL_HEADER + b"2\tmini\n" + SQL_FOOTER


def test_copy_file_carries_directory_headers(pfs: Pfs, data: str) -> None:
    pfs.put(data, "master", {"/cars": PG_DUMP}, split="sql")
    pfs.files.copy(data, "master", "/cars", data, "master", "/copy")
    assert pfs.read(data, "master", "/copy") == PG_DUMP


def test_squash_commit_set(pfs: Pfs, data: str) -> None:
    """A squashed set leaves the history of every repo it is in; the children keep the data.
    Refused, nothing changed: a head commit, an open commit, a commit a later set was computed
    from, an unknown id."""
    pfs.repos.create("out")

    def step(files: dict[str, bytes]) -> str:
        cid = pfs.put(data, "master", files).commit.id
        pfs.commits.start(
            "out",
            "master",
            commit_id=cid,
            provenance=[(data, cid, "master")],
            origin="auto",
            internal=True,
        )
        pfs.commits.finish("out", cid)
        return cid

    a, b, c = step({"/a": b"a"}), step({"/b": b"b"}), step({"/c": b"c"})
    with pytest.raises(Conflict, match="has no children"):
        pfs.commits.squash(c)
    with pytest.raises(NotFound, match="not found"):
        pfs.commits.squash("0" * 32)
    squashed = pfs.commits.squash(b)
    assert {(k.repo, k.id) for k in squashed} == {(data, b), ("out", b)}
    assert [i.commit.id for i in pfs.commits.list(data)] == [c, a]
    assert [i.commit.id for i in pfs.commits.list("out")] == [c, a]
    assert pfs.commits.inspect(data, c).parent == a
    assert pfs.names(data, "master") == ["/a", "/b", "/c"]
    # a commit of another set computed from a: squashing a would leave it naming nothing
    x = pfs.commits.start(
        "out", "master", provenance=[(data, a, "master")], origin="auto", internal=True
    )
    pfs.commits.finish("out", x.commit.id)
    with pytest.raises(Conflict, match=f"out@{x.commit.id} was computed from"):
        pfs.commits.squash(a)
    open_ = pfs.commits.start(data, "master")
    pfs.put(data, "master", {"/d": b"d"})
    with pytest.raises(Conflict, match="is not finished"):
        pfs.commits.squash(open_.commit.id)
    assert [i.commit.id for i in pfs.commits.list("out")][-1] == a  # nothing changed


def test_drop_commit_set(pfs: Pfs, data: str) -> None:
    """A dropped set's commits are deleted with their data and the branches on them move back
    to their parents. Refused, nothing changed, as pachd refuses it: a commit with children, a
    commit another set was computed from, a pipeline's spec commit, an unknown id."""
    pfs.repos.create("out")
    a = pfs.put(data, "master", {"/a": b"a"}).commit.id
    b = pfs.put(data, "master", {"/b": b"b"}).commit.id
    pfs.commits.start(
        "out", "master", commit_id=b, provenance=[(data, b, "master")], origin="auto", internal=True
    )
    pfs.commits.finish("out", b)
    x = pfs.commits.start(
        "out", "master", provenance=[(data, b, "master")], origin="auto", internal=True
    )
    pfs.commits.finish("out", x.commit.id)
    with pytest.raises(Conflict, match=f"has subvenant commit sets: {x.commit.id}"):
        pfs.commits.drop(b)
    with pytest.raises(Conflict, match=f"cannot drop a commit that has children: {data}@{a}"):
        pfs.commits.drop(a)
    with pytest.raises(NotFound, match="not found"):
        pfs.commits.drop("0" * 32)
    assert [i.commit.id for i in pfs.commits.list(data)] == [b, a]  # nothing changed
    pfs.repos.ensure(SPEC_REPO, kind="spec")
    spec = pfs.commits.start(SPEC_REPO, "pipe", origin="spec", internal=True)
    with pytest.raises(Conflict, match="updated a pipeline"):
        pfs.commits.drop(spec.commit.id)

    assert {(k.repo, k.id) for k in pfs.commits.drop(x.commit.id)} == {("out", x.commit.id)}
    assert {(k.repo, k.id) for k in pfs.commits.drop(b)} == {(data, b), ("out", b)}
    assert [i.commit.id for i in pfs.commits.list(data)] == [a]
    assert pfs.commits.inspect_branch(data, "master").head == a
    assert pfs.commits.inspect_branch("out", "master").head is None
    assert pfs.names(data, "master") == ["/a"]
