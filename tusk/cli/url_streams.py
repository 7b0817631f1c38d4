"""``extract -u URL`` and ``restore -u URL``: an extract stream written to or read from object
storage. ``s3://``, ``gs://``, ``wasb://`` and ``as://`` URLs go through ``tusk.cli.remotes`` with
the CLI user's credentials (as ``put-file -f`` does); ``file:///path`` is a local file. The
server never touches the URL: the stream passes through the CLI.

A write becomes visible only once the whole stream is sent (an S3 multipart upload, a GCS
resumable upload, Azure blocks committed at the end), so a failed or interrupted extract leaves
no object behind (and never half of one)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from urllib.parse import unquote, urlparse

from tusk.cli.remotes import BLOCK, SCHEMES, check_object_url, read_object, write_object
from tusk.errors import InvalidArgument, SourceUnavailable


def _is_file(url: str, command: str) -> bool:
    """Whether ``url`` is a ``file://`` URL; raise if it is neither that nor an object store's."""
    scheme = urlparse(url).scheme
    if scheme == "file" or scheme in SCHEMES:
        return scheme == "file"
    raise InvalidArgument(
        f"{command} -u {url}: tusk reads and writes s3://, gs://, wasb://, as:// and file:// "
        "URLs only",
        hint="use e.g. -u s3://bucket/key or -u file:///path, or -f <file>",
    )


def _local_path(url: str) -> str:
    parsed = urlparse(url)
    if parsed.netloc not in ("", "localhost"):
        raise InvalidArgument(
            f"invalid file URL {url}: it names host {parsed.netloc!r}",
            hint="write a local file as file:///absolute/path (three slashes)",
        )
    path = unquote(parsed.path)
    if not path or path.endswith("/"):
        raise InvalidArgument(f"invalid file URL {url}: no file name", hint="e.g. file:///tmp/x")
    return path


def check_destination(url: str) -> None:
    """Raise for a URL ``extract -u`` cannot write (checked before the server is asked)."""
    if _is_file(url, "extract"):
        _local_path(url)
    else:
        check_object_url(url)


def write_url(url: str, blocks: Iterable[bytes]) -> None:
    """Write the stream ``blocks`` to ``url`` whole, or not at all."""
    check_destination(url)
    if _is_file(url, "extract"):
        write_file(_local_path(url), blocks)
    else:
        write_object(url, blocks)


def write_file(path: str, blocks: Iterable[bytes]) -> None:
    """Write ``blocks`` to ``path`` through a temporary file renamed at the end."""
    tmp = path + ".tusk-partial"
    try:
        with open(tmp, "wb") as fh:
            for block in blocks:
                fh.write(block)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_url(url: str) -> Iterator[bytes]:
    """The bytes at ``url`` in blocks; a missing object fails before the first block."""
    if not _is_file(url, "restore"):
        return read_object(url)
    path = _local_path(url)
    if not os.path.isfile(path):
        raise SourceUnavailable(f"open {path}: no such file", hint=f"check the URL {url}")
    return _read_file(path)


def _read_file(path: str) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while block := fh.read(BLOCK):
            yield block
