"""``mount`` / ``unmount`` (pachctl 1.7): PFS as a directory tree through FUSE.

``DIR/<repo>/<branch>/…`` (a commit id works in place of the branch too): a finished commit is a
read-only tree; a branch whose head is an open commit (or an open commit's id) is read-write. A
file written there is put into the open commit when it is closed (replacing it), a removed file is
deleted from it, and the commits written to are finished when the file system is unmounted, as
1.7 does. The mount talks to the server like any other client (over its HTTP API)."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

import click

from tusk.api.models import CommitInfo, FileInfo
from tusk.cli.common import client, for_program
from tusk.client import Client
from tusk.errors import InvalidArgument, NotFound, SourceUnavailable, TuskError

FS_NAME = "tusk"
CACHE_SECONDS = 1.0


def _fuse() -> Any:
    """The FUSE binding (mfusepy over the system's libfuse 3), or a clear error."""
    try:
        import mfusepy
    except ModuleNotFoundError:
        raise SourceUnavailable(
            "mount needs the mfusepy package, which is not installed",
            hint="install it with: pip install 'tusk[fuse]' (and the fuse3 system package)",
        ) from None
    except OSError as e:  # mfusepy is there, libfuse is not
        raise SourceUnavailable(
            f"mount needs libfuse: {e}",
            hint="install the fuse3 system package (Debian: apt-get install fuse3)",
        ) from None
    return mfusepy


def _buffer() -> IO[bytes]:
    """A written file's new content until it is closed (on disk past 8 MiB); closed by
    ``release``."""
    return tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115


class _Open:
    """A file opened for writing: its new content, put into the commit when it is closed."""

    __slots__ = ("repo", "commit", "path", "data", "dirty")

    def __init__(self, repo: str, commit: str, path: str, data: IO[bytes]) -> None:
        self.repo = repo
        self.commit = commit
        self.path = path
        self.data = data
        self.dirty = False


class PfsFilesystem:
    """The FUSE operations (the ``mfusepy.Operations`` protocol) over a tusk client."""

    def __init__(self, tusk: Client, fuse: Any, *, all_commits: bool = False) -> None:
        self.tusk = tusk
        self.fuse = fuse
        self.all_commits = all_commits  # list commit ids beside the branches
        self.written: dict[tuple[str, str], None] = {}  # open commits written to, in order
        self._commits: dict[tuple[str, str], tuple[float, CommitInfo]] = {}
        self._open: dict[int, _Open] = {}
        self._dirs: set[tuple[str, str, str]] = set()  # made by mkdir in open commits
        self._next_fh = 1
        self._lock = threading.Lock()
        self._uid, self._gid = os.getuid(), os.getgid()

    # -- helpers ---------------------------------------------------------------------------------
    def _error(self, code: int) -> Exception:
        error: Exception = self.fuse.FuseOSError(code)
        return error

    @staticmethod
    def _split(path: str) -> tuple[str, str, str]:
        parts = [p for p in path.split("/") if p]
        repo = parts[0] if parts else ""
        ref = parts[1] if len(parts) > 1 else ""
        rest = "/" + "/".join(parts[2:])
        return repo, ref, rest

    def _commit(self, repo: str, ref: str) -> CommitInfo:
        key = (repo, ref)
        now = time.monotonic()
        hit = self._commits.get(key)
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        try:
            info = self.tusk.inspect_commit(repo, ref)
        except NotFound:
            raise self._error(errno.ENOENT) from None
        except TuskError:
            raise self._error(errno.EIO) from None
        self._commits[key] = (now, info)
        return info

    def _file(self, repo: str, commit: str, path: str) -> FileInfo:
        try:
            return self.tusk.inspect_file(repo, commit, path)
        except NotFound:
            if (repo, commit, path) in self._dirs:
                return FileInfo(path=path, type="dir", size_bytes=0, hash="")
            raise self._error(errno.ENOENT) from None
        except TuskError:
            raise self._error(errno.EIO) from None

    def _dir_attr(self, writable: bool, when: float) -> dict[str, Any]:
        mode = stat.S_IFDIR | (0o755 if writable else 0o555)
        return self._attr(mode, 0, when, nlink=2)

    def _attr(self, mode: int, size: int, when: float, nlink: int = 1) -> dict[str, Any]:
        return {
            "st_mode": mode,
            "st_size": size,
            "st_nlink": nlink,
            "st_uid": self._uid,
            "st_gid": self._gid,
            "st_atime": when,
            "st_mtime": when,
            "st_ctime": when,
        }

    # -- reading ---------------------------------------------------------------------------------
    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        repo, ref, rest = self._split(path)
        if not repo:
            return self._dir_attr(False, time.time())
        if not ref:
            try:
                info = self.tusk.inspect_repo(repo)
            except NotFound:
                raise self._error(errno.ENOENT) from None
            return self._dir_attr(False, info.created.timestamp())
        commit = self._commit(repo, ref)
        writable = commit.finished is None
        when = (commit.finished or commit.started).timestamp()
        if rest == "/":
            return self._dir_attr(writable, when)
        for o in self._open.values():  # a file being written: its size so far
            if (o.repo, o.commit, o.path) == (repo, commit.commit.id, rest):
                o.data.seek(0, os.SEEK_END)
                return self._attr(stat.S_IFREG | 0o644, o.data.tell(), when)
        f = self._file(repo, commit.commit.id, rest)
        if f.type == "dir":
            return self._dir_attr(writable, when)
        return self._attr(stat.S_IFREG | (0o644 if writable else 0o444), f.size_bytes, when)

    def readdir(self, path: str, fh: int) -> list[str]:
        repo, ref, rest = self._split(path)
        names: list[str]
        if not repo:
            names = [r.name for r in self.tusk.list_repo()]
        elif not ref:
            names = [b.branch.name for b in self.tusk.list_branch(repo)]
            if self.all_commits:
                names += [c.commit.id for c in self.tusk.list_commit(repo)]
        else:
            commit = self._commit(repo, ref)
            try:
                infos = self.tusk.list_file(repo, commit.commit.id, rest)
            except NotFound:
                infos = []
            names = [f.path.rstrip("/").rsplit("/", 1)[-1] for f in infos]
            prefix = rest.rstrip("/") + "/"
            for r, c, d in self._dirs:
                if (r, c) == (repo, commit.commit.id) and d.startswith(prefix):
                    child = d[len(prefix) :].split("/", 1)[0]
                    if child and child not in names:
                        names.append(child)
        return [".", "..", *names]

    def open(self, path: str, flags: int) -> int:
        repo, ref, rest = self._split(path)
        if rest == "/":
            raise self._error(errno.EISDIR)
        commit = self._commit(repo, ref)
        if flags & (os.O_WRONLY | os.O_RDWR):
            if commit.finished is not None:
                raise self._error(errno.EROFS)
            data = _buffer()
            if not flags & os.O_TRUNC:
                try:
                    for block in self.tusk.get_file(repo, commit.commit.id, rest, headers=False):
                        data.write(block)
                except NotFound:
                    pass
            return self._new_handle(_Open(repo, commit.commit.id, rest, data))
        self._file(repo, commit.commit.id, rest)
        return 0

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        o = self._open.get(fh)
        if o is not None:
            o.data.seek(offset)
            return o.data.read(size)
        repo, ref, rest = self._split(path)
        commit = self._commit(repo, ref)
        try:
            return b"".join(
                self.tusk.get_file(
                    repo, commit.commit.id, rest, offset=offset, length=size, headers=False
                )
            )
        except NotFound:
            raise self._error(errno.ENOENT) from None

    # -- writing (open commits only) -------------------------------------------------------------
    def _new_handle(self, o: _Open) -> int:
        with self._lock:
            fh = self._next_fh
            self._next_fh += 1
            self._open[fh] = o
        return fh

    def _writable(self, path: str) -> tuple[str, str, str]:
        repo, ref, rest = self._split(path)
        if not ref or rest == "/":
            raise self._error(errno.EPERM)
        commit = self._commit(repo, ref)
        if commit.finished is not None:
            raise self._error(errno.EROFS)
        return repo, commit.commit.id, rest

    def create(self, path: str, mode: int, fi: Any = None) -> int:
        repo, commit, rest = self._writable(path)
        o = _Open(repo, commit, rest, _buffer())
        o.dirty = True  # an empty new file is a file too
        return self._new_handle(o)

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        o = self._open.get(fh)
        if o is None:
            raise self._error(errno.EBADF)
        o.data.seek(offset)
        o.data.write(data)
        o.dirty = True
        return len(data)

    def truncate(self, path: str, length: int, fh: int | None = None) -> None:
        o = self._open.get(fh) if fh else None
        if o is None:
            for candidate in self._open.values():
                if (candidate.repo, candidate.path) == (self._split(path)[0], self._split(path)[2]):
                    o = candidate
        if o is None:
            repo, commit, rest = self._writable(path)
            data = b"".join(self.tusk.get_file(repo, commit, rest, headers=False))[:length]
            self._put(repo, commit, rest, data.ljust(length, b"\0"))
            return
        o.data.truncate(length)
        o.dirty = True

    def flush(self, path: str, fh: int) -> None:
        o = self._open.get(fh)
        if o is not None and o.dirty:
            o.data.seek(0)
            self._put(o.repo, o.commit, o.path, o.data.read())
            o.dirty = False

    def release(self, path: str, fh: int) -> None:
        self.flush(path, fh)
        o = self._open.pop(fh, None)
        if o is not None:
            o.data.close()

    def _put(self, repo: str, commit: str, path: str, data: bytes) -> None:
        try:
            self.tusk.put_file(repo, commit, path, data, overwrite=True)
        except TuskError:
            raise self._error(errno.EIO) from None
        self.written[(repo, commit)] = None

    def unlink(self, path: str) -> None:
        repo, commit, rest = self._writable(path)
        try:
            self.tusk.delete_file(repo, commit, rest)
        except NotFound:
            raise self._error(errno.ENOENT) from None
        self.written[(repo, commit)] = None

    def mkdir(self, path: str, mode: int) -> None:
        repo, commit, rest = self._writable(path)
        self._dirs.add((repo, commit, rest))

    def rmdir(self, path: str) -> None:
        repo, commit, rest = self._writable(path)
        self._dirs.discard((repo, commit, rest))

    def chmod(self, path: str, mode: int) -> None:
        return None  # PFS keeps no modes

    def chown(self, path: str, uid: int, gid: int) -> None:
        return None

    def utimens(self, path: str, times: Any = None) -> None:
        return None

    def finish_written(self) -> list[str]:
        """Finish every open commit this mount wrote to; return them as ``repo/id``."""
        done = []
        for repo, commit in self.written:
            try:
                self.tusk.finish_commit(repo, commit)
            except TuskError as e:
                click.echo(f"cannot finish {repo}/{commit}: {e.message}", err=True)
                continue
            done.append(f"{repo}/{commit}")
        self.written.clear()
        return done


def _operations(fs: PfsFilesystem, fuse: Any) -> Any:
    """``fs`` as a subclass of the binding's ``Operations`` (made here: the binding is optional)."""
    names = [
        "getattr", "readdir", "open", "read", "create", "write", "truncate", "flush",
        "release", "unlink", "mkdir", "rmdir", "chmod", "chown", "utimens",
    ]  # fmt: skip
    return type("TuskOperations", (fuse.Operations,), {n: _bound(getattr(fs, n)) for n in names})()


def _bound(method: Any) -> Any:
    def call(_self: Any, *args: Any) -> Any:
        return method(*args)

    return call


@click.command("mount")
@click.argument("mount_point", metavar="path/to/mount/point")
@click.option("-d", "--debug", is_flag=True, help="Turn on debug messages.")
@click.option(
    "-c",
    "--commits",
    multiple=True,
    metavar="repo:commit",
    help="Commits to mount for repos (accepted: every branch and commit of a repo is a "
    "directory under it already).",
)
@click.option(
    "-a", "--all-commits", is_flag=True, help="Show every commit (by id) beside the branches."
)
def mount(mount_point: str, debug: bool, commits: tuple[str, ...], all_commits: bool) -> None:
    """Mount pfs locally. This command blocks."""
    fuse = _fuse()
    target = Path(mount_point)
    if not target.is_dir():
        raise InvalidArgument(
            f"mount point {mount_point} is not a directory", hint=f"mkdir -p {mount_point}"
        )
    tusk = client()
    tusk.list_repo()  # fail now, not inside FUSE, if the server does not answer
    fs = PfsFilesystem(tusk, fuse, all_commits=all_commits)
    click.echo("Filesystem mounted, CTRL-C to exit.")
    # libfuse ends its loop on SIGINT/SIGTERM (its own handlers; none is set here). An unmount
    # from outside (`tusk unmount`) does not always wake its read of /dev/fuse, so a watcher
    # signals the main thread once the mount is gone.
    where = os.path.realpath(target)
    stderr = os.dup(2)
    gone = threading.Event()
    loop = _FuseLoop()
    watcher = threading.Thread(
        target=_end_when_unmounted,
        args=(where, threading.main_thread().ident, gone, loop),
        daemon=True,
    )
    watcher.start()
    try:
        fuse.FUSE(
            _operations(fs, fuse),
            str(target),
            foreground=True,
            nothreads=True,
            fsname=FS_NAME,
            debug=debug,
        )
    except RuntimeError as e:
        if not gone.is_set():  # else: unmounted from outside, the normal end
            raise SourceUnavailable(
                f"cannot mount {mount_point}: libfuse error {e}",
                hint="FUSE needs /dev/fuse and the right to mount (root, or fusermount3)",
            ) from None
    finally:
        loop.end()
        os.dup2(stderr, 2)
        os.close(stderr)
    for name in fs.finish_written():
        click.echo(f"finished {name}")


class _FuseLoop:
    """Whether libfuse's loop still runs in the main thread. Once it has returned, its signal
    handlers are gone and a SIGTERM would kill the process (before the written commits are
    finished), so the watcher signals only while the loop runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ended = False

    def end(self) -> None:
        with self._lock:
            self._ended = True

    def signal(self, main: int) -> None:
        with self._lock:
            if not self._ended:
                signal.pthread_kill(main, signal.SIGTERM)


def _end_when_unmounted(
    where: str, main: int | None, gone: threading.Event, loop: _FuseLoop
) -> None:
    seen = False
    deadline = time.monotonic() + 60
    while True:
        time.sleep(0.2)
        present = where in _tusk_mounts()
        if present:
            seen = True
        elif seen or time.monotonic() > deadline:
            break
    if main is None or not seen:
        return
    gone.set()
    # libfuse's loop ends on the signal, then tries to unmount again and reports that the mount
    # is gone: that report is not for the user
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    loop.signal(main)


def _unmount(mount_point: str) -> None:
    helper = shutil.which("fusermount3") or shutil.which("fusermount")
    cmd = [helper, "-u", mount_point] if helper else ["umount", mount_point]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise SourceUnavailable(
            f"cannot unmount {mount_point}: {proc.stderr.strip() or 'failed'}",
            hint="is it a tusk mount? (see /proc/mounts)",
        )


def _tusk_mounts() -> list[str]:
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return []
    return [line.split()[1] for line in lines if line.split()[0] == FS_NAME]


@click.command("unmount")
@click.argument("mount_point", metavar="path/to/mount/point", required=False)
@click.option("-a", "--all", "all_", is_flag=True, help="unmount all pfs mounts")
def unmount(mount_point: str | None, all_: bool) -> None:
    """Unmount pfs."""
    if mount_point:
        _unmount(mount_point)
        return
    if not all_:
        raise InvalidArgument(
            "give a mount point, or -a for every tusk mount",
            hint=for_program("tusk unmount <dir>, or tusk unmount -a"),
        )
    mounts = _tusk_mounts()
    if not mounts:
        click.echo("No mounts found.")
        return
    click.echo("Unmount the following filesystems? yN")
    for m in mounts:
        click.echo(m)
    answer = sys.stdin.readline()
    if answer[:1] in ("y", "Y"):
        for m in mounts:
            _unmount(m)


COMMANDS = [mount, unmount]
