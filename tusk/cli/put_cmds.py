"""``put-file`` (1.7 grammar): plan every source's destination, validate, then one put: sent whole
by the plain reader when it is small, else streamed by the typed client."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING
from urllib.parse import urlparse

import click

from tusk.api.frames import (
    DATA,
    END,
    FRAMES_MEDIA_TYPE,
    commit_frame,
    file_options,
    frame_head,
    header_frame,
)
from tusk.cli.common import client, reader, repo_seg, warn
from tusk.cli.remotes import is_remote, objects, read_object
from tusk.errors import InvalidArgument, SourceUnavailable

if TYPE_CHECKING:
    from tusk.client import PutSource

BLOCK = 1 << 20
PROGRESS_BYTES = 64 << 20
PROGRESS_FILES = 1000
# A put of local files (or stdin) holding this much at most is sent whole by the plain reader:
# the typed client's imports (httpx, pydantic) would cost more than sending it.
SMALL_PUT_BYTES = 4 << 20
SMALL_PUT_FILES = 1000
URL_SCHEMES = ("http", "https")


@dataclass(frozen=True, slots=True)
class Planned:
    """One file to put: destination path, where its bytes come from, and its size if known."""

    dest: str
    data: bytes | Path | IO[bytes] | Callable[[], Iterable[bytes]]
    size: int | None = None


def is_url(text: str) -> bool:
    return "://" in text and bool(urlparse(text).scheme)


def join_dest(prefix: str, source: str) -> str:
    """1.7's ``joinPaths``: a URL contributes its path, anything else the string as given."""
    if is_url(source):
        source = urlparse(source).path
    return normalize(f"{prefix}/{source}" if prefix else source)


def normalize(path: str) -> str:
    """Leading ``/``, no empty or ``.`` components (the server validates everything else)."""
    return "/" + "/".join(p for p in path.split("/") if p not in ("", "."))


def url_reader(url: str) -> Callable[[], Iterator[bytes]]:
    """Stream a URL's body lazily; failures become SourceUnavailable (nothing is committed)."""
    if urlparse(url).scheme not in URL_SCHEMES:
        raise SourceUnavailable(
            f"unsupported URL scheme in {url}",
            hint="tusk reads s3://, gs://, wasb://, as://, http:// and https:// URLs; download "
            "other sources first (pfs://: tusk get-file on the source server) and put the copy",
        )

    def read() -> Iterator[bytes]:
        import httpx

        try:
            with httpx.stream(
                "GET", url, follow_redirects=True, timeout=httpx.Timeout(300.0, connect=10.0)
            ) as resp:
                if resp.status_code >= 400:
                    raise SourceUnavailable(
                        f"cannot get {url}: HTTP {resp.status_code}",
                        hint="check the URL; nothing was stored",
                    )
                yield from resp.iter_bytes(BLOCK)
        except httpx.HTTPError as exc:
            raise SourceUnavailable(
                f"cannot get {url}: {exc or type(exc).__name__}",
                hint="check the URL and that its host is reachable; nothing was stored",
            ) from None

    return read


class LocalFile:
    """A local file opened only when its bytes are sent (cheaper than a Path per file)."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self) -> Iterator[bytes]:
        with open(self.path, "rb") as fh:
            while block := fh.read(BLOCK):
                yield block


def walk_dir(root: str, want_size: bool) -> Iterator[tuple[str, str, int | None]]:
    """(relative path, local path, size) of every file under ``root``; symlinked dirs are not
    followed (as Go's filepath.Walk). One scandir per directory, no stat unless sizes are wanted."""
    stack = [(root, "")]
    while stack:
        directory, rel = stack.pop()
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
        subdirs = []
        for e in entries:
            r = f"{rel}/{e.name}"
            if e.is_dir(follow_symlinks=False):
                subdirs.append((e.path, r))
            elif e.is_file():
                yield r, e.path, (e.stat().st_size if want_size else None)
        stack.extend(reversed(subdirs))


def local_source(source: str, dest: str, recursive: bool, want_size: bool) -> Iterator[Planned]:
    try:
        st = os.stat(source)
    except FileNotFoundError:
        raise SourceUnavailable(
            f"open {source}: no such file or directory",
            hint="check the -f path (relative paths start at the current directory); nothing was stored",
        ) from None
    except OSError as exc:
        raise SourceUnavailable(
            f"open {source}: {exc.strerror}", hint="nothing was stored"
        ) from None
    if os.path.isdir(source):
        if not recursive:
            raise InvalidArgument(
                f"read {source}: is a directory", hint=f"use -r to put the contents of {source}"
            )
        prefix = "" if dest == "/" else dest  # names from scandir need no normalizing
        for rel, local, size in walk_dir(source, want_size):
            yield Planned(prefix + rel, LocalFile(local), size)
        return
    yield Planned(dest, LocalFile(source), st.st_size)


def read_source_list(input_file: str) -> list[str]:
    """``-i``: sources one per line, from a local file, a URL or ``-`` (stdin)."""
    if input_file == "-":
        text = sys.stdin.read()
    elif is_remote(input_file):
        text = b"".join(read_object(input_file)).decode()
    elif is_url(input_file):
        text = b"".join(url_reader(input_file)()).decode()
    else:
        try:
            text = Path(input_file).read_text()
        except OSError as exc:
            raise SourceUnavailable(
                f"open {input_file}: {exc.strerror.lower() if exc.strerror else exc}",
                hint="check the -i path; nothing was stored",
            ) from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def plan(
    sources: Sequence[str], path: str | None, recursive: bool, want_size: bool
) -> list[Planned]:
    """Destinations by 1.7's rules, validated before anything is sent."""
    planned: list[Planned] = []
    for source in sources:
        if path is None:
            if source == "-":
                raise InvalidArgument(
                    "must specify filename when reading data from stdin",
                    hint="give a destination path: tusk put-file <repo> <branch> <path>",
                )
            dest = join_dest("", source)
        elif len(sources) == 1:
            dest = normalize(path)
        else:
            dest = join_dest(path, source)
        if source == "-":
            planned.append(Planned(dest, sys.stdin.buffer))
        elif is_remote(source):
            for rel, reader, size in objects(source, recursive):
                planned.append(Planned(normalize(f"{dest}/{rel}") if rel else dest, reader, size))
        elif is_url(source):
            planned.append(Planned(dest, url_reader(source)))
        else:
            planned.extend(local_source(source, dest, recursive, want_size))
    seen: set[str] = set()
    for p in planned:
        if p.dest in seen:
            raise InvalidArgument(
                f"multiple files put with the path {p.dest}, aborting",
                hint="give each source its own destination; nothing was stored",
            )
        seen.add(p.dest)
    return planned


def progress_wanted() -> bool:
    setting = os.environ.get("TUSK_PROGRESS", "")
    if setting in ("0", "1"):
        return setting == "1"
    return sys.stderr.isatty()


@click.command("put-file")
@click.argument("repo", metavar="repo-name")
@click.argument("branch", metavar="branch")
@click.argument("path", metavar="[path/to/file/in/pfs]", required=False)
@click.option(
    "-f",
    "--file",
    "files",
    multiple=True,
    help="The file to be put, it can be a local file or a URL (http(s)://, s3://, gs://, wasb://, as://; - or none: stdin).",
)
@click.option(
    "-i",
    "--input-file",
    default="",
    help="Read filepaths or URLs from a file.  If - is used, paths are read from the standard input.",
)
@click.option(
    "-r",
    "--recursive",
    is_flag=True,
    help="Recursively put the files in a directory (or under an object-store prefix).",
)
@click.option(
    "-p",
    "--parallelism",
    default=10,
    type=int,
    help="The maximum number of files that can be uploaded in parallel (accepted; tusk sends every file in one stream).",
)
@click.option(
    "-o",
    "--overwrite",
    is_flag=True,
    help="Overwrite the existing content of the file, either from previous commits or previous calls to put-file within this commit.",
)
@click.option(
    "--split",
    type=click.Choice(["line", "json", "sql"]),
    default=None,
    help="Split the input file into smaller files, subject to the constraints of --target-file-datums and --target-file-bytes. Permissible values are `json`, `line` and `sql` (pg_dump output).",
)
@click.option(
    "--target-file-datums",
    default=0,
    type=int,
    help="The upper bound of the number of datums that each file contains, the last file will contain fewer if the datums don't divide evenly; needs to be used with --split.",
)
@click.option(
    "--target-file-bytes",
    default=0,
    type=int,
    help="The target upper bound of the number of bytes that each file contains; needs to be used with --split.",
)
@click.option(
    "-c", "--commit", "commit_flag", is_flag=True, help="DEPRECATED: Put file(s) in a new commit."
)
@click.option(
    "-m",
    "--message",
    "--description",
    "description",
    default="",
    help="A description of this commit's contents (--description is a synonym).",
)
def put_file(
    repo: str,
    branch: str,
    path: str | None,
    files: Sequence[str],
    input_file: str,
    recursive: bool,
    parallelism: int,
    overwrite: bool,
    split: str | None,
    target_file_datums: int,
    target_file_bytes: int,
    commit_flag: bool,
    description: str,
) -> None:
    """Put a file into the filesystem.

    Into a branch (all files of one put-file in one new commit) or an open commit. Appends to an
    existing file unless -o, as in 1.7.

    \b
    # Put data from stdin as repo/branch/path:
    echo "data" | tusk put-file repo branch path
    # Put a file from the local filesystem as repo/branch/path:
    tusk put-file repo branch path -f file
    # Put the contents of a directory as repo/branch/path/...:
    tusk put-file -r repo branch path -f dir
    # Put the data from a URL as repo/branch/path:
    tusk put-file repo branch path -f http://host/path
    """
    if commit_flag:
        warn(
            "flag --commit / -c is deprecated; as of 1.7.2, you will get the same behavior "
            "without it"
        )
    if path is not None and is_url(path):
        warn(f'warning: PFS destination "{path}" looks like a URL; did you mean -f {path}?')
    sources = list(files)
    if input_file:
        sources += read_source_list(input_file)
    if not sources:
        sources = ["-"]
    show = progress_wanted()
    planned = plan(sources, path, recursive, want_size=show)
    options = file_options(overwrite, split, target_file_datums, target_file_bytes)
    small = small_put_body(planned, options, description)
    if isinstance(small, bytes):
        reader().post(
            f"/repos/{repo_seg(repo)}/put", small, content_type=FRAMES_MEDIA_TYPE, ref=branch
        )
        return
    planned = small
    from tusk.client import PutSource

    put_sources = [
        PutSource(
            p.dest,
            p.data,
            overwrite=overwrite,
            split=split,
            target_datums=target_file_datums,
            target_bytes=target_file_bytes,
            local_path=p.data.path if isinstance(p.data, LocalFile) else None,
        )
        for p in planned
    ]
    c = client()
    total = sum(p.size or 0 for p in planned)
    if show and (total > PROGRESS_BYTES or len(planned) > PROGRESS_FILES):
        with_progress(
            put_sources,
            total,
            lambda srcs, cb: c.put_files(repo, branch, srcs, description=description, on_bytes=cb),
        )
    else:
        c.put_files(repo, branch, put_sources, description=description)


def small_put_body(
    planned: list[Planned], options: dict[str, object], description: str
) -> bytes | list[Planned]:
    """The whole request body of a put of local files and stdin that hold at most
    ``SMALL_PUT_BYTES`` together; else the planned files again, for the streamed put (stdin, when
    it was read from, given back as what was read followed by the rest)."""
    if len(planned) > SMALL_PUT_FILES:
        return planned
    local_bytes = 0
    for p in planned:
        if isinstance(p.data, LocalFile):
            size = p.size if p.size is not None else _size_of(p.data.path)
            if size is None:
                return planned
            local_bytes += size
            if local_bytes > SMALL_PUT_BYTES:
                return planned
        elif p.data is not sys.stdin.buffer:
            return planned  # a URL or an object store: streamed as it is read
    frames: list[bytes] = []
    for i, p in enumerate(planned):
        if isinstance(p.data, LocalFile):
            data = _read_local(p.data.path)
        else:  # stdin (one at most): what still fits, and a byte more to know whether it all does
            room = SMALL_PUT_BYTES - local_bytes
            data = sys.stdin.buffer.read(room + 1)
            if len(data) > room:  # too much to hold: streamed after all
                streamed = Planned(p.dest, _then(data, sys.stdin.buffer))
                return [*planned[:i], streamed, *planned[i + 1 :]]
        frames.append(header_frame(p.dest, **options))
        if data:
            frames += (frame_head(DATA, len(data)), data)
        frames.append(frame_head(END, 0))
    frames.append(commit_frame(description))
    return b"".join(frames)


def _size_of(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def _read_local(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise SourceUnavailable(
            f"open {path}: {exc.strerror.lower() if exc.strerror else exc}",
            hint="check the -f path and its permissions; nothing was stored",
        ) from None


def _then(head: bytes, rest: IO[bytes]) -> Callable[[], Iterator[bytes]]:
    """The bytes already read from a stream, then the rest of it, in blocks."""

    def read() -> Iterator[bytes]:
        yield head
        while block := rest.read(BLOCK):
            yield block

    return read


def with_progress(
    sources: list[PutSource],
    total: int,
    send: Callable[[Iterable[PutSource], Callable[[int], None]], object],
) -> None:
    """Run ``send`` with a Rich progress bar (bytes, rate, files) on stderr."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    n = len(sources)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    ) as progress:
        task = progress.add_task(f"0/{n} files", total=total or None)

        def counted() -> Iterator[PutSource]:
            for i, src in enumerate(sources, 1):
                yield src
                progress.update(task, description=f"{i}/{n} files")

        send(counted(), lambda k: progress.advance(task, k))


COMMANDS = [put_file]
