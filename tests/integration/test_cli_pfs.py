"""The PFS commands through the real CLI against a real server: what a user sees."""

from __future__ import annotations

import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tusk.testing import clean_env, free_port

from .conftest import CLI, Tusk, fails, raw_objects, rows, run

ID = re.compile(r"^[0-9a-f]{32}$")


def commit_ids(tusk: Tusk, repo: str) -> list[str]:
    code, out, err = tusk("list-commit", repo)
    assert code == 0, err
    return [r[1] for r in rows(out)[1:]]


def files_of(tusk: Tusk, repo: str, ref: str = "master") -> list[str]:
    code, out, err = tusk("glob-file", repo, ref, "/**")
    assert code == 0, err
    return [r[0] for r in rows(out)[1:] if r[1] == "file"]


def put(tusk: Tusk, repo: str, path: str, data: str, *flags: str) -> None:
    code, _, err = tusk("put-file", repo, "master", path, *flags, input=data)
    assert code == 0, err


# -- repos ------------------------------------------------------------------------------------
def test_repo_commands(tusk: Tusk) -> None:
    assert tusk("create-repo", "repos1", "-d", "first repo")[0] == 0
    assert tusk("create-repo", "repos2")[0] == 0

    code, out, _ = tusk("list-repo")
    assert code == 0
    table = rows(out)
    assert table[0] == ["NAME", "CREATED", "SIZE"]
    names = [r[0] for r in table[1:]]
    assert names.index("repos2") < names.index("repos1")  # newest first
    assert "__spec__" not in names
    assert out.splitlines()[0].endswith(" ")  # tab-terminated header cells, as pachctl
    assert any(r[0] == "repos1" and r[-1] == "0B" and "ago" in r for r in table[1:])

    code, out, _ = tusk("inspect-repo", "repos1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Name: repos1"
    assert lines[1] == "Description: first repo"
    assert re.match(r"^Created: .+ ago$", lines[2])
    assert lines[3] == "Size: 0B"
    assert "Description" not in tusk("inspect-repo", "repos2")[1]

    assert tusk("update-repo", "repos1", "-d", "renamed")[0] == 0
    (info,) = raw_objects(tusk("inspect-repo", "repos1", "--raw")[1])
    assert info["name"] == "repos1" and info["description"] == "renamed"
    listed = raw_objects(tusk("list-repo", "--raw")[1])
    assert {"repos1", "repos2"} <= {r["name"] for r in listed}

    fails(tusk("create-repo", "repos1"), 4, "repo repos1 already exists")
    err = fails(
        tusk("create-repo", "bad.name"),
        2,
        "repo name (bad.name) invalid: only alphanumeric characters, underscores, and dashes",
    )
    assert "  hint: " in err
    fails(tusk("inspect-repo", "nope"), 3, "repo nope not found")
    fails(tusk("delete-repo"), 2, "either a repo name or the --all flag needs to be provided")
    fails(tusk("delete-repo", "repos2", "--all"), 2, "cannot use the --all flag with an argument")

    size_before = tusk("list-repo")[1]
    assert "bad.name" not in size_before
    assert tusk("delete-repo", "repos2")[0] == 0
    assert "repos2" not in [r[0] for r in rows(tusk("list-repo")[1])]
    fails(tusk("delete-repo", "repos2"), 3, "repo repos2 not found")


# -- commits ----------------------------------------------------------------------------------
def test_commit_lifecycle(tusk: Tusk) -> None:
    assert tusk("create-repo", "commits")[0] == 0
    code, out, err = tusk("start-commit", "commits", "master", "-m", "first")
    assert code == 0, err
    first = out.strip()
    assert ID.match(first)

    # an open commit: '-' for duration and size
    table = rows(tusk("list-commit", "commits")[1])
    assert table[0] == ["REPO", "ID", "PARENT", "STARTED", "DURATION", "SIZE"]
    assert table[1][:3] == ["commits", first, "<none>"]
    assert table[1][-2:] == ["-", "-"]

    put(tusk, "commits", "/a.txt", "abcd")  # lands in the open head commit
    code, _, err = tusk("put-file", "commits", first, "/b.txt", input="xy")
    assert code == 0, err
    assert tusk("finish-commit", "commits", first)[0] == 0
    assert commit_ids(tusk, "commits") == [first]

    code, out, _ = tusk("inspect-commit", "commits", first)
    lines = out.split("\n")
    assert lines[0] == f"Commit: commits/{first}"
    assert lines[1] == "Description: first"
    assert re.match(r"^Started: .+ ago$", lines[2])
    assert re.match(r"^Finished: .+ ago $", lines[3])  # trailing space, as 1.7
    assert lines[4] == "Size: 6B"
    assert not any(line.startswith(("Parent:", "Provenance:")) for line in lines)

    # finishing a finished commit: 1.7 message, non-zero, nothing changed
    fails(
        tusk("finish-commit", "commits", first),
        5,
        f"commit {first} in repo commits has already finished",
    )
    fails(
        tusk("put-file", "commits", first, "/c.txt", input="z"),
        5,
        f"commit {first} in repo commits has already finished",
    )
    assert commit_ids(tusk, "commits") == [first]

    # more commits: auto-commits from put-file, and an explicit one with --description
    put(tusk, "commits", "/c.txt", "1")
    put(tusk, "commits", "/d.txt", "22")
    code, out, _ = tusk("start-commit", "commits", "master", "--description", "fourth")
    fourth = out.strip()
    assert tusk("finish-commit", "commits", "master", "-m", "changed")[0] == 0
    ids = commit_ids(tusk, "commits")
    assert len(ids) == 4 and ids[0] == fourth and ids[-1] == first
    second, third = ids[2], ids[1]

    out = tusk("inspect-commit", "commits", "master")[1]
    assert f"Parent: {third}" in out.splitlines()
    assert "Description: changed" in out.splitlines()
    assert tusk("inspect-commit", "commits", "master^")[1].startswith(f"Commit: commits/{third}\n")
    assert tusk("inspect-commit", "commits", "master~2")[1].startswith(f"Commit: commits/{second}")
    assert tusk("inspect-commit", "commits", "master^^^")[1].startswith(f"Commit: commits/{first}")
    code, _, err = tusk("inspect-commit", "commits", "master^4")
    assert code == 3 and "not found" in err
    (raw,) = raw_objects(tusk("inspect-commit", "commits", "master", "--raw")[1])
    assert raw["commit"] == {"repo": "commits", "id": fourth} and raw["parent"] == third

    # list-commit: a branch walks the chain, -n limits, --from stops (exclusive)
    table = rows(tusk("list-commit", "commits", "master", "-n", "2")[1])
    assert [r[1] for r in table[1:]] == [fourth, third]
    assert table[1][2] == third and table[-1][-1].endswith("B")
    table = rows(tusk("list-commit", "commits", "master", "--from", second)[1])
    assert [r[1] for r in table[1:]] == [fourth, third]
    assert rows(tusk("list-commit", "commits")[1])[-1][2] == "<none>"
    assert len(raw_objects(tusk("list-commit", "commits", "--raw")[1])) == 4

    # unknown repo / commit / branch
    fails(tusk("list-commit", "nope"), 3, "repo nope not found")
    fails(tusk("inspect-commit", "commits", "0" * 32), 3, f"commit {'0' * 32} not found")
    fails(tusk("inspect-commit", "commits", "nobranch"), 3, "not found")
    fails(tusk("start-commit", "nope", "master"), 3, "repo nope not found")
    assert commit_ids(tusk, "commits") == ids

    # delete-commit squashes the head out; the branch moves back
    assert tusk("delete-commit", "commits", fourth)[0] == 0
    assert commit_ids(tusk, "commits") == [third, second, first]
    assert rows(tusk("list-branch", "commits")[1])[1] == ["master", third]
    fails(tusk("delete-commit", "commits", fourth), 3, "not found")


def test_subscribe_commit(tusk: Tusk, tusk_server: dict[str, str]) -> None:
    assert tusk("create-repo", "subs")[0] == 0
    put(tusk, "subs", "/a", "1")
    first = commit_ids(tusk, "subs")[0]
    fails(tusk("subscribe-commit", "subs", "master", "--new", "--from", first), 2, "--new")
    proc = subprocess.Popen(
        [*CLI, "subscribe-commit", "subs", "master"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(tusk_server),
    )
    try:
        assert proc.stdout is not None
        header = proc.stdout.readline().decode().split()
        assert header == ["REPO", "ID", "PARENT", "STARTED", "DURATION", "SIZE"]
        assert proc.stdout.readline().decode().split()[:3] == ["subs", first, "<none>"]
        put(tusk, "subs", "/b", "2")
        second = commit_ids(tusk, "subs")[0]
        assert proc.stdout.readline().decode().split()[:3] == ["subs", second, first]
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


# -- branches ---------------------------------------------------------------------------------
def test_branches(tusk: Tusk) -> None:
    assert tusk("create-repo", "br")[0] == 0
    put(tusk, "br", "/a", "1")
    put(tusk, "br", "/b", "2")
    head, parent = commit_ids(tusk, "br")

    assert tusk("create-branch", "br", "dev", "--head", "master^")[0] == 0
    assert tusk("create-branch", "br", "empty")[0] == 0
    code, out, err = tusk("set-branch", "br", head, "old")
    assert code == 0 and "set-branch is DEPRECATED, use create-branch instead." in err
    table = rows(tusk("list-branch", "br")[1])
    assert table[0] == ["BRANCH", "HEAD"]
    assert {tuple(r) for r in table[1:]} == {
        ("master", head),
        ("dev", parent),
        ("empty", "-"),
        ("old", head),
    }
    assert {b["branch"]["name"] for b in raw_objects(tusk("list-branch", "br", "--raw")[1])} == {
        "master",
        "dev",
        "empty",
        "old",
    }
    assert tusk("get-file", "br", "dev", "/a")[1] == "1"
    fails(tusk("get-file", "br", "dev", "/b"), 3, "file /b not found in repo br")
    fails(
        tusk("list-file", "br", "empty"),
        3,
        'the branch "empty" has no head (create one with start-commit)',
    )
    fails(tusk("create-branch", "br", "bad^name", "--head", "master"), 2, "branch name")
    fails(tusk("create-branch", "br", "x", "-p", "nobranch"), 2, "repo/branch")
    fails(tusk("list-branch", "nope"), 3, "repo nope not found")

    # an output branch (provenance) cannot be written by users
    assert tusk("create-repo", "br-out")[0] == 0
    code, _, err = tusk("create-branch", "br-out", "master", "-p", "br/master")
    assert code == 0, err
    before = tusk("list-commit", "br-out")[1]
    code, _, err = tusk("put-file", "br-out", "master", "/x", input="x")
    assert code == 5 and "output branch" in err
    assert tusk("list-commit", "br-out")[1] == before
    out = tusk("inspect-commit", "br-out", "master")[1]
    if out:  # the provenance line, when the server made an output commit
        prov = next(line for line in out.splitlines() if line.startswith("Provenance: "))
        assert f" br/{head} " in prov and prov.endswith("  ")

    code, _, err = tusk("delete-branch", "br", "master")
    assert code != 0 and "subvenance" in err
    assert tusk("delete-branch", "br", "master", "-f")[0] == 0
    assert tusk("delete-branch", "br", "dev")[0] == 0
    assert [r[0] for r in rows(tusk("list-branch", "br")[1])[1:]] == ["old", "empty"] or {
        r[0] for r in rows(tusk("list-branch", "br")[1])[1:]
    } == {"old", "empty"}
    assert commit_ids(tusk, "br") == [head, parent]  # commits are kept
    fails(tusk("delete-branch", "br", "dev"), 3, "not found")


# -- put-file ---------------------------------------------------------------------------------
@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "data" / "a.txt").write_text("A\n")
    (tmp_path / "data" / "b.txt").write_text("B\n")
    (tmp_path / "data" / "sub" / "c.txt").write_text("C\n")
    return tmp_path


def test_put_file_destinations(tusk: Tusk, tree: Path) -> None:
    assert tusk("create-repo", "dest")[0] == 0
    in_tree = partial(tusk, cwd=tree)
    # no path: the source as given; path + one source: that path
    assert in_tree("put-file", "dest", "master", "-f", "data/a.txt")[0] == 0
    assert in_tree("put-file", "dest", "master", "/one.txt", "-f", "data/b.txt")[0] == 0
    # path + several sources: path/<source>; all of one invocation in ONE commit
    n = len(commit_ids(tusk, "dest"))
    code, _, err = in_tree(
        "put-file", "dest", "master", "multi", "-f", "data/a.txt", "-f", "data/b.txt"
    )
    assert code == 0, err
    assert len(commit_ids(tusk, "dest")) == n + 1
    # -r: a directory tree, under its own name, under a path, or at the top with "/"
    assert in_tree("put-file", "dest", "master", "-r", "-f", "data")[0] == 0
    assert in_tree("put-file", "dest", "worker", "/", "-r", "-f", "data")[0] == 0
    assert in_tree("put-file", "dest", "other", "/in", "-r", "-f", str(tree / "data"))[0] == 0
    # -i: a file listing sources
    (tree / "list.txt").write_text("data/a.txt\ndata/sub/c.txt\n")
    assert in_tree("put-file", "dest", "listed", "-i", "list.txt")[0] == 0
    # -c is deprecated but accepted; -m sets the description
    code, _, err = tusk("put-file", "dest", "other", "/c", "-c", "-m", "msg", input="c")
    assert code == 0 and "flag --commit / -c is deprecated" in err
    assert "Description: msg" in tusk("inspect-commit", "dest", "other")[1]

    assert files_of(tusk, "dest") == [
        "/data/a.txt",
        "/data/b.txt",
        "/data/sub/c.txt",
        "/multi/data/a.txt",
        "/multi/data/b.txt",
        "/one.txt",
    ]
    assert files_of(tusk, "dest", "worker") == ["/a.txt", "/b.txt", "/sub/c.txt"]
    assert files_of(tusk, "dest", "other") == ["/c", "/in/a.txt", "/in/b.txt", "/in/sub/c.txt"]
    assert files_of(tusk, "dest", "listed") == ["/data/a.txt", "/data/sub/c.txt"]
    assert tusk("get-file", "dest", "master", "/one.txt")[1] == "B\n"


def test_put_file_bad_input_changes_nothing(tusk: Tusk, tree: Path) -> None:
    assert tusk("create-repo", "bad")[0] == 0
    put(tusk, "bad", "/dir/file", "x")
    put(tusk, "bad", "/plain", "y")
    before = commit_ids(tusk, "bad")
    in_tree = partial(tusk, cwd=tree)

    fails(
        tusk("put-file", "bad", "master", input="x"),
        2,
        "must specify filename when reading data from stdin",
    )
    fails(in_tree("put-file", "bad", "master", "-f", "data/missing.txt"), 7, "data/missing.txt")
    fails(
        in_tree("put-file", "bad", "master", "-f", "data/a.txt", "-f", "data/missing.txt"),
        7,
        "open data/missing.txt: no such file or directory",
    )
    fails(in_tree("put-file", "bad", "master", "-f", "data"), 2, "is a directory")
    fails(
        in_tree("put-file", "bad", "master", "/same", "-f", "data/a.txt", "-f", "data/a.txt"),
        2,
        "multiple files put with the path /same/data/a.txt",
    )
    fails(
        tusk("put-file", "bad", "master", "/a*b", input="x"),
        2,
        "path (/a*b) invalid: globbing character (*) not allowed in path",
    )
    fails(tusk("put-file", "bad", "master", "/x/../../y", input="x"), 2, "'..'")
    fails(
        tusk("put-file", "bad", "master", "/dir", input="x"), 5, "a directory exists at that path"
    )
    fails(tusk("put-file", "bad", "master", "/plain/below", input="x"), 5, "plain")
    port = free_port()  # nothing listens there
    fails(
        tusk("put-file", "bad", "master", "-f", f"http://127.0.0.1:{port}/x"),
        7,
        f"cannot get http://127.0.0.1:{port}/x",
    )
    fails(tusk("put-file", "bad", "nobranch^", "/f", input="x"), 3, "not found")
    fails(tusk("put-file", "nope", "master", "/f", input="x"), 3, "repo nope not found")
    fails(tusk("put-file", "bad", "master", "/f", "--split", "csv", input="x"), 2, "csv")

    assert commit_ids(tusk, "bad") == before
    assert files_of(tusk, "bad") == ["/dir/file", "/plain"]


@pytest.fixture
def http_files(tmp_path: Path) -> Iterator[str]:
    """A local HTTP server over tmp_path/www; yields its base URL."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "data.csv").write_text("1,2\n3,4\n")
    handler = partial(_QuietHandler, directory=str(www))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_put_file_url(tusk: Tusk, http_files: str) -> None:
    assert tusk("create-repo", "urls")[0] == 0
    assert tusk("put-file", "urls", "master", "-f", f"{http_files}/data.csv")[0] == 0
    assert (
        tusk("put-file", "urls", "master", "/renamed.csv", "-f", f"{http_files}/data.csv")[0] == 0
    )
    assert files_of(tusk, "urls") == ["/data.csv", "/renamed.csv"]
    assert tusk("get-file", "urls", "master", "/data.csv")[1] == "1,2\n3,4\n"
    before = tusk("list-commit", "urls")[1]
    fails(tusk("put-file", "urls", "master", "-f", f"{http_files}/missing.csv"), 7, "HTTP 404")
    code, _, err = tusk("put-file", "urls", "master", "http://x/y", input="z")
    assert "looks like a URL; did you mean -f http://x/y?" in err
    assert tusk("list-commit", "urls")[1] != before  # the warning does not stop the put


def test_append_overwrite_and_split(tusk: Tusk) -> None:
    assert tusk("create-repo", "appends")[0] == 0
    put(tusk, "appends", "/f", "a\n")
    put(tusk, "appends", "/f", "b\n")
    assert tusk("get-file", "appends", "master", "/f")[1] == "a\nb\n"  # append by default
    put(tusk, "appends", "/f", "c\n", "-o")
    assert tusk("get-file", "appends", "master", "/f")[1] == "c\n"
    assert tusk("get-file", "appends", "master^", "/f")[1] == "a\nb\n"

    lines = "".join(f"user{i}\n" for i in range(5))
    put(tusk, "appends", "/users", lines, "--split", "line", "--target-file-datums", "2")
    table = rows(tusk("list-file", "appends", "master", "/users")[1])
    assert [r[0] for r in table[1:]] == [f"/users/{i:016x}" for i in range(3)]
    put(tusk, "appends", "/users", "user5\nuser6\n", "--split", "line")
    names = [r[0] for r in rows(tusk("list-file", "appends", "master", "/users")[1])[1:]]
    assert names == [f"/users/{i:016x}" for i in range(5)]  # numbering continues
    assert tusk("get-file", "appends", "master", "/users/0000000000000001")[1] == "user2\nuser3\n"
    # get-file of a glob: all matches concatenated in path order
    assert tusk("get-file", "appends", "master", "/users/*")[1] == lines + "user5\nuser6\n"
    put(tusk, "appends", "/j", '{"a": 1} {"b": 2}', "--split", "json")
    assert len(rows(tusk("list-file", "appends", "master", "/j")[1])) == 3
    put(tusk, "appends", "/bytes", "x" * 100, "--split", "line", "--target-file-bytes", "10")


# -- reads ------------------------------------------------------------------------------------
def test_get_file(tusk: Tusk, tmp_path: Path) -> None:
    assert tusk("create-repo", "gets")[0] == 0
    blob = bytes(range(256)) * 1000
    code, _, err = tusk("put-file", "gets", "master", "/bin/blob", input=blob)
    assert code == 0, err
    put(tusk, "gets", "/bin/sub/t.txt", "text\n")
    code, out, _ = tusk("get-file", "gets", "master", "/bin/blob", binary=True)
    assert code == 0 and out == blob  # binary-safe stdout
    target = tmp_path / "blob"
    assert tusk("get-file", "gets", "master", "/bin/blob", "-o", str(target))[0] == 0
    assert target.read_bytes() == blob

    fails(
        tusk("get-file", "gets", "master", "/bin", "-r"),
        2,
        "an output path needs to be specified when using the --recursive flag",
    )
    down = tmp_path / "down"
    assert tusk("get-file", "gets", "master", "/bin", "-r", "-o", str(down))[0] == 0
    assert (down / "blob").read_bytes() == blob
    assert (down / "sub" / "t.txt").read_text() == "text\n"

    fails(
        tusk("get-file", "gets", "master", "/nope"),
        3,
        "file /nope not found in repo gets at commit master",
    )
    fails(tusk("get-file", "gets", "master", "/bin/x*"), 3, "no file(s) found that match /bin/x*")
    fails(tusk("get-file", "gets", "master", "/bin"), 2, "cannot read directory")
    fails(tusk("get-file", "gets", "master", "/../etc"), 2, "'..'")
    fails(tusk("get-file", "gets", "nobranch", "/bin/blob"), 3, "not found")
    assert not (tmp_path / "missing").exists()
    fails(
        tusk("get-file", "gets", "master", "/nope", "-o", str(tmp_path / "missing")), 3, "not found"
    )
    assert not (tmp_path / "missing").exists()


def test_list_inspect_glob_diff_delete_copy(tusk: Tusk) -> None:
    assert tusk("create-repo", "reads")[0] == 0
    put(tusk, "reads", "/top.txt", "12345")
    put(tusk, "reads", "/users/u1", "a" * 1500)
    put(tusk, "reads", "/users/u2", "bb")

    # root listing: names without the leading slash; sub-dir: full paths
    table = rows(tusk("list-file", "reads", "master")[1])
    assert table[0] == ["NAME", "TYPE", "SIZE"]
    assert table[1:] == [["top.txt", "file", "5B"], ["users", "dir", "1.467KiB"]]
    assert rows(tusk("list-file", "reads", "master", "/users")[1])[1:] == [
        ["/users/u1", "file", "1.465KiB"],
        ["/users/u2", "file", "2B"],
    ]
    assert [r[0] for r in rows(tusk("list-file", "reads", "master", "/users/u*")[1])[1:]] == [
        "/users/u1",
        "/users/u2",
    ]
    assert [f["path"] for f in raw_objects(tusk("list-file", "reads", "master", "--raw")[1])] == [
        "/top.txt",
        "/users",
    ]
    fails(tusk("list-file", "reads", "master", "/nope"), 3, "file /nope not found in repo reads")

    assert rows(tusk("glob-file", "reads", "master", "/*")[1])[1:] == [
        ["/top.txt", "file", "5B"],
        ["/users", "dir", "1.467KiB"],
    ]
    assert len(raw_objects(tusk("glob-file", "reads", "master", "/users/*", "--raw")[1])) == 2

    assert tusk("inspect-file", "reads", "master", "/users")[1] == (
        "Path: /users\nType: dir\nSize: 1.467KiB\nChildren:  u1  u2 \n"
    )
    assert tusk("inspect-file", "reads", "master", "top.txt")[1] == (
        "Path: /top.txt\nType: file\nSize: 5B\n"
    )
    (raw,) = raw_objects(tusk("inspect-file", "reads", "master", "/top.txt", "--raw")[1])
    assert raw["size_bytes"] == 5 and raw["type"] == "file"
    fails(tusk("inspect-file", "reads", "master", "/nope"), 3, "not found")

    # diff against the parent (3 args): only new files
    out = tusk("diff-file", "reads", "master", "/")[1]
    assert out.startswith("New Files:\n") and "Old Files:" not in out
    assert [r[0] for r in rows(out)[2:]] == ["/users/u2"]
    put(tusk, "reads", "/users/u2", "cc")
    out = tusk("diff-file", "reads", "master", "/users")[1]
    new, old = out.split("Old Files:\n")
    assert rows(new)[2:] == [["/users/u2", "file", "4B"]]
    assert rows(old) == [["NAME", "TYPE", "SIZE"], ["/users/u2", "file", "2B"]]
    # 6-arg form and --shallow
    out = tusk("diff-file", "reads", "master", "/", "reads", "master~3", "/", "-s")[1]
    assert [r[0] for r in rows(out.split("Old Files:")[0])[2:]] == ["/users"]
    (raw,) = raw_objects(tusk("diff-file", "reads", "master", "/users", "--raw")[1])
    assert [f["path"] for f in raw["old_files"]] == ["/users/u2"]
    fails(tusk("diff-file", "reads", "master", "/", "reads"), 2, "3 or 6 arguments")

    # copy-file (append by default, -o overwrites), delete-file
    assert tusk("copy-file", "reads", "master", "/top.txt", "reads", "master", "/copy.txt")[0] == 0
    assert tusk("copy-file", "reads", "master", "/users", "reads", "master", "/u2")[0] == 0
    assert tusk("get-file", "reads", "master", "/u2/u2")[1] == "bbcc"
    args = ("copy-file", "reads", "master", "/top.txt", "reads", "master", "/copy.txt")
    assert tusk(*args)[0] == 0
    assert tusk("get-file", "reads", "master", "/copy.txt")[1] == "1234512345"
    assert tusk(*args, "-o")[0] == 0
    assert tusk("get-file", "reads", "master", "/copy.txt")[1] == "12345"
    fails(tusk("copy-file", "reads", "master", "/nope", "reads", "master", "/x"), 3, "not found")

    assert tusk("delete-file", "reads", "master", "/users")[0] == 0
    assert tusk("delete-file", "reads", "master", "/u2/*")[0] == 0
    assert files_of(tusk, "reads") == ["/copy.txt", "/top.txt"]
    assert tusk("get-file", "reads", "master^^", "/users/u1")[1] == "a" * 1500
    fails(tusk("delete-file", "reads", "master", "/a/../.."), 2, "'..'")


def test_many_files_progress_and_speed(tusk: Tusk, tmp_path: Path) -> None:
    src = tmp_path / "many"
    for d in range(11):
        (src / f"d{d}").mkdir(parents=True)
        for i in range(100):
            (src / f"d{d}" / f"f{i}").write_bytes(b"%d\n" % i)
    assert tusk("create-repo", "many")[0] == 0
    code, _, err = tusk(
        "put-file", "many", "master", "/", "-r", "-f", str(src), env={"TUSK_PROGRESS": "1"}
    )
    assert code == 0, err
    assert "1100/1100 files" in err
    assert len(commit_ids(tusk, "many")) == 1
    out = tusk("inspect-file", "many", "master", "/d3")[1]
    assert out.splitlines()[:2] == ["Path: /d3", "Type: dir"]
    code, _, err = tusk(
        "put-file", "many", "master", "/x", "-f", str(src / "d0" / "f1"), env={"TUSK_PROGRESS": "1"}
    )
    assert code == 0 and err == ""  # small puts show no bar


# -- the server: explicit address, up / status / down, auto-start ------------------------------
def test_unreachable_server_and_up_status_down(tmp_path: Path) -> None:
    port = free_port()
    env = {"TUSK_HOME": str(tmp_path / "home"), "TUSK_ADDRESS": f"http://127.0.0.1:{port}"}
    # an explicit non-default address is never auto-started
    code, _, err = run("list-repo", env=env)
    assert code == 8 and f"no tusk server answers at http://127.0.0.1:{port}" in err
    code, _, err = run("status", env=env)
    assert code == 8 and "tusk up" in err
    try:
        code, out, err = run("up", env=env)
        assert code == 0, err
        assert out.startswith(f"tusk server started at http://127.0.0.1:{port}")
        assert run("up", env=env)[1].startswith("tusk server already running")
        code, out, _ = run("status", env=env)
        lines = out.splitlines()
        assert lines[0] == f"Address: http://127.0.0.1:{port}"
        assert f"Home: {tmp_path / 'home'}" in lines
        assert any(line.startswith("PID: ") for line in lines)
        assert any(line.startswith("Metadata: sqlite") for line in lines)
        (info,) = raw_objects(run("status", "--raw", env=env)[1])
        assert info["home"] == str(tmp_path / "home")
        # delete-repo --all on this private server
        assert run("create-repo", "one", env=env)[0] == 0
        assert run("create-repo", "two", env=env)[0] == 0
        assert run("delete-repo", "--all", env=env)[0] == 0
        assert rows(run("list-repo", env=env)[1]) == [["NAME", "CREATED", "SIZE"]]
    finally:
        code, out, _ = run("down", env=env)
    assert code == 0 and out.startswith("tusk server stopped")
    assert run("status", env=env)[0] == 8
    assert "no tusk server running" in run("down", env=env)[1]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.skipif(not _port_free(30650), reason="the default port 30650 is in use")
def test_auto_start_at_default_address(tmp_path: Path) -> None:
    env = {"TUSK_HOME": str(tmp_path / "home")}  # TUSK_ADDRESS unset: the default address
    try:
        code, out, err = run("list-repo", env=env)
        assert code == 0, err
        assert err.strip() == (
            f"tusk: started a local server at http://127.0.0.1:30650 (data in {tmp_path / 'home'})"
        )
        assert rows(out) == [["NAME", "CREATED", "SIZE"]]
        code, out, err = run("create-repo", "auto", env=env)
        assert code == 0 and err == ""  # already running: no second announcement
        assert run("status", env=env)[1].startswith("Address: http://127.0.0.1:30650")
    finally:
        run("down", env=env)
    assert _port_free(30650)


def test_cli_basics() -> None:
    code, out, _ = run("--version")
    assert code == 0 and out.startswith("tusk ")
    code, out, _ = run("--no-metrics", "-v", "--help")
    assert code == 0 and "put-file" in out and "list-repo" in out
    code, _, err = run("no-such-command")
    assert code == 2 and "No such command" in err
    code, _, err = run("get-file", "onlyrepo")
    assert code == 2 and "Missing argument" in err
