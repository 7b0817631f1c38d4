"""``mount`` / ``unmount`` with real FUSE (/dev/fuse, libfuse 3, fusermount3) against a real
server: repos and branches as directories, a finished commit read-only, an open commit
read-write (a written file is put when closed, the commit finished on unmount)."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tusk.testing import clean_env, wait_for

from .conftest import CLI, Tusk, rows


def ok(result: tuple[int, object, str]) -> str:
    code, out, err = result
    assert code == 0, err
    return str(out)


def mounted(path: Path) -> bool:
    return any(
        line.split()[1] == str(path) for line in Path("/proc/mounts").read_text().splitlines()
    )


@pytest.fixture
def mount_point(
    tmp_path: Path, tusk_server: dict[str, str]
) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """``tusk mount DIR`` running; unmounted and ended after the test whatever happened."""
    where = tmp_path / "pfs"
    where.mkdir()
    proc = subprocess.Popen(
        [*CLI, "mount", str(where)],
        env=clean_env(tusk_server),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for("the mount", lambda: mounted(where) or proc.poll() is not None, 30)
        assert proc.poll() is None, proc.communicate()
        yield where, proc
    finally:
        if mounted(where):
            subprocess.run(["fusermount3", "-u", str(where)], timeout=30, check=False)
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def test_mount_reads_commits_and_writes_an_open_commit(
    tusk: Tusk, mount_point: tuple[Path, subprocess.Popen[str]]
) -> None:
    where, proc = mount_point
    ok(tusk("create-repo", "mnt"))
    ok(tusk("put-file", "mnt", "master", "/docs/a.txt", input="alpha\n"))
    done = rows(ok(tusk("list-commit", "mnt")))[1][1]
    ok(tusk("create-branch", "mnt", "dev"))
    open_id = ok(tusk("start-commit", "mnt", "dev")).strip()

    # repos as directories, branches inside, files of the head commit below
    assert "mnt" in os.listdir(where)
    assert sorted(os.listdir(where / "mnt")) == ["dev", "master"]
    assert os.listdir(where / "mnt" / "master") == ["docs"]
    assert (where / "mnt" / "master" / "docs" / "a.txt").read_text() == "alpha\n"
    assert (where / "mnt" / done / "docs" / "a.txt").read_text() == "alpha\n"  # by commit id
    assert (where / "mnt" / "master" / "docs" / "a.txt").stat().st_size == 6

    # a finished commit is read-only
    with pytest.raises(OSError) as refused:
        (where / "mnt" / "master" / "new.txt").write_text("no\n")
    assert refused.value.errno in (errno.EROFS, errno.EACCES, errno.EPERM)

    # the open commit (the head of dev) is read-write: a closed file is put into it
    (where / "mnt" / "dev" / "out").mkdir()
    (where / "mnt" / "dev" / "out" / "b.txt").write_text("beta\n")
    assert (where / "mnt" / "dev" / "out" / "b.txt").read_text() == "beta\n"
    assert ok(tusk("get-file", "mnt", open_id, "/out/b.txt")) == "beta\n"
    commit = ok(tusk("inspect-commit", "mnt", open_id))
    assert "Finished: " not in commit  # still open

    # unmount: the mount ends and finishes the commit it wrote to
    ok(tusk("unmount", str(where)))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Filesystem mounted, CTRL-C to exit." in out
    assert f"finished mnt/{open_id}" in out
    assert not mounted(where)
    assert ok(tusk("get-file", "mnt", "dev", "/out/b.txt")) == "beta\n"
    finished = rows(ok(tusk("list-commit", "mnt", "dev")))[1]
    assert finished[1] == open_id and finished[-1] != "-"  # a size: finished


def test_unmount_of_something_that_is_not_mounted_fails_clearly(tusk: Tusk, tmp_path: Path) -> None:
    code, _, err = tusk("unmount", str(tmp_path))
    assert code == 7 and f"cannot unmount {tmp_path}" in err, err
    code, _, err = tusk("mount", str(tmp_path / "nope"))
    assert code == 2 and "is not a directory" in err, err


def test_mount_all_commits_lists_commit_ids(
    tusk: Tusk, tusk_server: dict[str, str], tmp_path: Path
) -> None:
    ok(tusk("create-repo", "mntall"))
    ok(tusk("put-file", "mntall", "master", "/f", input="x\n"))
    commit = rows(ok(tusk("list-commit", "mntall")))[1][1]
    where = tmp_path / "pfs"
    where.mkdir()
    proc = subprocess.Popen(
        [*CLI, "mount", "-a", str(where)],
        env=clean_env(tusk_server),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for("the mount", lambda: mounted(where) or proc.poll() is not None, 30)
        assert sorted(os.listdir(where / "mntall")) == sorted([commit, "master"])
        assert (where / "mntall" / commit / "f").read_text() == "x\n"
    finally:
        if mounted(where):
            subprocess.run(["fusermount3", "-u", str(where)], timeout=30, check=False)
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def test_mount_reads_stored_bytes_under_a_directory_header(
    tusk: Tusk, mount_point: tuple[Path, subprocess.Popen[str]]
) -> None:
    # sizes are the stored sizes, so the mount reads stored bytes (no header): nothing is cut,
    # and a file rewritten through the mount never takes the header into its content
    where, _ = mount_point
    ok(tusk("create-repo", "mnthdr"))
    ok(tusk("put-file", "mnthdr", "master", "/d/a.txt", input="alpha\n"))
    ok(tusk("put-header", "mnthdr", "master", "/d", input="-- head\n"))
    assert ok(tusk("get-file", "mnthdr", "master", "/d/a.txt")) == "-- head\nalpha\n"
    f = where / "mnthdr" / "master" / "d" / "a.txt"
    assert f.stat().st_size == 6
    assert f.read_text() == "alpha\n"
