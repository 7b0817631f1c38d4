"""A datum's files: inputs copied out of the object store, outputs ingested back into it.

Inputs are copies (never links into the store), made read-only so that well-behaved code cannot
change them; whatever user code does to a copy, the stored objects are untouched.
"""

from __future__ import annotations

import functools
import os
import posixpath
import shutil
import stat
from collections import deque
from dataclasses import dataclass, field

from tusk.storage import FileWriter, Ingestor, ObjectStore, file_hash, read_chunks
from tusk.worker.protocol import DatumInput, InputFile, OutputFile
from tusk.worker.runtimes.base import force_rmtree

PFS = "/pfs"
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
_READ_BLOCK = 4 << 20
_MAX_SYMLINK_HOPS = 40
_NOT_NAMES = frozenset({"", ".", ".."})
_CAP_DAC_OVERRIDE = 1  # its bit in /proc/<pid>/status's CapEff


@functools.cache
def writes_in_readonly_dirs() -> bool:
    """Whether this process may create and remove files in a read-only directory (it has
    CAP_DAC_OVERRIDE, as root has): then /pfs/<input> stays read-only from one datum to the next,
    and the worker fills and empties it without changing its mode twice per datum."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) & (1 << _CAP_DAC_OVERRIDE))
    except (OSError, ValueError, IndexError):
        pass
    return False


class DatumFailed(Exception):
    """The datum cannot succeed; the message is the reason recorded for it."""


@dataclass
class Materialised:
    """The inputs of a datum as copied under /pfs."""

    bytes_down: int = 0
    names: frozenset[str] = frozenset()  # of the /pfs/<name> directories
    readonly_dirs: list[str] = field(default_factory=list)  # deepest first
    by_path: dict[str, InputFile] = field(default_factory=dict)  # host path → input file


def check_repo_path(path: str, what: str) -> str:
    """``path`` if it is a canonical absolute path, else the datum fails."""
    # canonical: "/" or "/"-separated names, none of them empty, "." or ".." (what
    # posixpath.normpath leaves unchanged, without its cost)
    if path != "/" and (
        not path.startswith("/")
        or "\x00" in path
        or any(part in _NOT_NAMES for part in path[1:].split("/"))
    ):
        raise DatumFailed(f"invalid {what} path {path!r}")
    return path


def check_input_name(name: str) -> str:
    """``name`` if it can be a directory under /pfs, else the datum fails."""
    if not name or "/" in name or "\x00" in name or name in (".", "..", "out"):
        raise DatumFailed(f"invalid input name {name!r}")
    return name


def materialise_inputs(
    inputs: tuple[DatumInput, ...],
    real_pfs: str,
    store: ObjectStore,
    present: frozenset[str] | None = None,
) -> Materialised:
    """Copy every input file to ``<real_pfs>/<input name><path>`` and make the copies read-only.

    ``present``: the names of the /pfs/<name> directories the previous datum left, empty, with
    ``real_pfs`` read-only (making and removing a directory costs milliseconds on some disks,
    where a file costs microseconds); None when not known: whatever is in ``real_pfs`` but
    ``out`` is removed first. The /pfs/<name> directories the previous datum left are
    read-only already when ``writes_in_readonly_dirs()``."""
    done = Materialised()
    # One name may come several times (a group datum holds every match of its key): each adds
    # its files under the same /pfs/<name>.
    names = frozenset(check_input_name(i.name) for i in inputs)
    kept = names & present if present is not None and writes_in_readonly_dirs() else frozenset()
    if present is None or present != names:
        os.chmod(real_pfs, 0o755)
        if present is None:
            present = frozenset(n for n in os.listdir(real_pfs) if n != "out")
            for name in present:
                force_rmtree(f"{real_pfs}/{name}")
            present = frozenset()
        for stale in present - names:  # an input the previous datum had and this one has not
            shutil.rmtree(f"{real_pfs}/{stale}")
        for name in names - present:
            os.mkdir(f"{real_pfs}/{name}")
        os.chmod(real_pfs, 0o555)
    done.names = names
    made = {f"{real_pfs}/{name}" for name in names}
    for datum_input in inputs:
        name = datum_input.name
        root = f"{real_pfs}/{name}"
        for directory in datum_input.dirs:
            check_repo_path(directory, "input directory")
            if directory != "/":
                _make_dirs(root + directory, made)
        for input_file in datum_input.files:
            path = check_repo_path(input_file.path, "input file")
            host = root + path
            if path.rfind("/"):  # in a directory below /pfs/<name>
                _make_dirs(posixpath.dirname(host), made)
            try:
                if datum_input.empty_files:
                    _write_empty(host)
                else:
                    _write_copy(host, store, input_file)
            except DatumFailed:
                raise
            except Exception as e:
                raise DatumFailed(
                    f"cannot download input {name} {input_file.path}: {_describe(e)}"
                ) from e
            done.by_path[host] = input_file  # a link to it in /pfs/out still gets its content
            if not datum_input.empty_files:
                done.bytes_down += input_file.size
    done.readonly_dirs.extend(made)
    # Deepest first, so a parent turns read-only only after its children were changed.
    done.readonly_dirs.sort(key=len, reverse=True)
    for directory in done.readonly_dirs:
        if directory[len(real_pfs) + 1 :] not in kept:
            os.chmod(directory, 0o555)
    return done


def _make_dirs(path: str, made: set[str]) -> None:
    if path in made:
        return
    _make_dirs(posixpath.dirname(path), made)
    try:
        os.mkdir(path)
    except FileExistsError:
        if not os.path.isdir(path):
            raise DatumFailed(f"input path {path} is both a file and a directory") from None
    made.add(path)


def _write_empty(host: str) -> None:
    try:
        os.close(os.open(host, _WRITE_FLAGS, 0o444))
    except FileExistsError:
        raise DatumFailed(f"input path {host} appears twice") from None


def _write_copy(host: str, store: ObjectStore, input_file: InputFile) -> None:
    try:
        fd = os.open(host, _WRITE_FLAGS, 0o444)
    except FileExistsError:
        raise DatumFailed(f"input path {host} appears twice") from None
    try:
        written = 0
        for data in read_chunks(store, input_file.chunks):
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            written += len(data)
    finally:
        os.close(fd)
    if written != input_file.size:
        raise DatumFailed(f"input {host} has {written} bytes, expected {input_file.size}")


def _describe(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e)


@dataclass
class Collected:
    """What a datum wrote under /pfs/out, stored."""

    files: list[OutputFile]
    dirs: list[str]
    bytes_up: int


@dataclass
class _Walk:
    real_pfs: str
    inputs: dict[str, InputFile]
    to_ingest: list[tuple[str, str, int]] = field(default_factory=list)  # (path, host, size)
    by_reference: list[tuple[str, InputFile]] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)
    size: int = 0


def collect_outputs(
    real_pfs: str,
    inputs: dict[str, InputFile],
    store: ObjectStore,
    max_bytes: int,
) -> Collected:
    """Store every file under ``<real_pfs>/out`` and list them with their chunks.

    Symlinks to files or dirs inside /pfs are followed (links to input files reuse the input's
    chunks); links that lead outside /pfs or nowhere, pipes, sockets and devices fail the datum.
    """
    walk = _Walk(real_pfs, inputs)
    # the directories followed links lead through (for loops): /pfs/out's own key is read
    # only once a link to a directory is found
    _walk_dir(walk, real_pfs + "/out", "", None, max_bytes)
    if not walk.to_ingest and not walk.by_reference:
        return Collected([], sorted(walk.dirs), 0)
    files = [
        OutputFile(path, f.chunks, f.size, file_hash(f.chunks)) for path, f in walk.by_reference
    ]
    total = sum(f.size for f in files)
    writers: list[tuple[str, FileWriter]] = []
    with Ingestor(store) as ingestor:
        for path, host, _size in walk.to_ingest:
            writer = ingestor.open_file()
            total = _ingest_file(host, path, writer, total, max_bytes)
            writers.append((path, writer))
    files += [OutputFile(p, tuple(w.chunks), w.size, w.hash) for p, w in writers]
    files.sort(key=lambda f: f.path)
    return Collected(files, sorted(walk.dirs), total)


def _dir_key(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino)


def _walk_dir(
    walk: _Walk,
    host_dir: str,
    rel_dir: str,
    ancestors: set[tuple[int, int]] | None,
    max_bytes: int,
) -> None:
    try:
        with os.scandir(host_dir) as entries:
            listing = list(entries)
    except OSError as e:
        raise DatumFailed(f"cannot read output {rel_dir or '/'}: {_describe(e)}") from e
    if not listing and rel_dir:
        walk.dirs.append(rel_dir)
    for entry in listing:
        rel = f"{rel_dir}/{entry.name}"
        if not entry.name.isascii():
            _check_text(rel)
        if entry.is_symlink():
            _follow_link(walk, entry.path, rel, ancestors, max_bytes)
            continue
        if entry.is_dir(follow_symlinks=False):
            _walk_dir(walk, entry.path, rel, ancestors, max_bytes)
            continue
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISREG(st.st_mode):
            _add_file(walk, rel, entry.path, st.st_size, max_bytes)
        else:
            mode = st.st_mode
            raise DatumFailed(
                f"output {rel} is {_kind(mode)}; outputs must be regular files, directories "
                "or symlinks to them"
            )


def _check_text(rel: str) -> None:
    """A name read from /pfs/out that is not UTF-8 (Python keeps its bytes as surrogates)
    fails the datum: repo paths are text."""
    try:
        rel.encode()
    except UnicodeEncodeError:
        shown = os.fsencode(rel).decode("utf-8", "backslashreplace")
        raise DatumFailed(
            f"output {shown} has a name that is not valid UTF-8; file names in a repo are text"
        ) from None


def _follow_link(
    walk: _Walk, host: str, rel: str, ancestors: set[tuple[int, int]] | None, max_bytes: int
) -> None:
    target = os.readlink(host)
    resolved = resolve_in_pfs(host, walk.real_pfs)
    if resolved != walk.real_pfs and not resolved.startswith(walk.real_pfs + "/"):
        raise DatumFailed(f"output {rel} is a symlink to {target}, outside /pfs/out")
    try:
        st = os.stat(resolved)
    except OSError:
        raise DatumFailed(f"output {rel} is a symlink to {target}, which does not exist") from None
    if stat.S_ISDIR(st.st_mode):
        key = (st.st_dev, st.st_ino)
        if ancestors is None:
            ancestors = {_dir_key(walk.real_pfs + "/out")}
        if key in ancestors:
            raise DatumFailed(f"output {rel} is a symlink to {target}, which makes a loop")
        _walk_dir(walk, resolved, rel, ancestors | {key}, max_bytes)
    elif stat.S_ISREG(st.st_mode):
        _add_file(walk, rel, resolved, st.st_size, max_bytes)
    else:
        raise DatumFailed(f"output {rel} is a symlink to {target}, which is {_kind(st.st_mode)}")


def from_sandbox_path(path: str, real_pfs: str) -> str:
    """Map a path as user code sees it (``/pfs/...``) to the host path."""
    if path == PFS:
        return real_pfs
    if path.startswith(PFS + "/"):
        return real_pfs + path[len(PFS) :]
    return path


def resolve_in_pfs(path: str, real_pfs: str) -> str:
    """Resolve the symlinks of host ``path``, reading absolute ``/pfs/...`` targets as user code
    sees them (in a sandbox ``/pfs`` is the datum's pfs dir).

    Like ``os.path.realpath``; a missing component ends the resolution where it is.
    """
    parts = deque(path.split("/"))
    resolved = "/"
    hops = 0
    while parts:
        part = parts.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            resolved = posixpath.dirname(resolved)
            continue
        candidate = posixpath.join(resolved, part)
        try:
            target = os.readlink(candidate)
        except OSError:  # not a link, or missing
            resolved = candidate
            continue
        hops += 1
        if hops > _MAX_SYMLINK_HOPS:
            return candidate  # a loop: report the link as leading nowhere useful
        if target.startswith("/"):
            resolved = "/"
            target = from_sandbox_path(target, real_pfs)
        parts.extendleft(reversed(target.split("/")))
    return resolved


def _add_file(walk: _Walk, rel: str, host: str, size: int, max_bytes: int) -> None:
    input_file = walk.inputs.get(host)
    if input_file is not None:  # reached through a symlink: reuse the stored chunks
        walk.by_reference.append((rel, input_file))
        size = input_file.size
    else:
        walk.to_ingest.append((rel, host, size))
    _count(walk, size, max_bytes)


def _count(walk: _Walk, size: int, max_bytes: int) -> None:
    walk.size += size
    if walk.size > max_bytes:
        raise DatumFailed(_too_big(max_bytes))


def _too_big(max_bytes: int) -> str:
    return f"output is larger than max_output_bytes ({max_bytes} bytes)"


def _ingest_file(host: str, rel: str, writer: FileWriter, total: int, max_bytes: int) -> int:
    try:
        fd = os.open(host, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise DatumFailed(f"cannot read output {rel}: {_describe(e)}") from e
    try:
        while True:
            data = os.read(fd, _READ_BLOCK)
            if not data:
                break
            total += len(data)
            if total > max_bytes:
                raise DatumFailed(_too_big(max_bytes))
            writer.write(data)
    finally:
        os.close(fd)
    writer.close()
    return total


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"
