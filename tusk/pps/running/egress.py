"""Egress: after a job's output commit is finished, copy every file of it to the URL the spec
names (1.7 ``egress.URL``; 2.x ``egress.URL`` or ``egress.object_storage.url``).

Egress runs in the server, with the server's own S3 settings and credentials; user code never
sees them. Targets, chosen by scheme:

- ``s3://bucket/prefix``: each file at ``prefix/<path>`` through boto3. Endpoint, region and
  path-style addressing come from the URL's query (as for the object store), else from the
  server's S3 object store URL, else from boto3's usual sources. The server's own object store
  is refused as a target.
- ``file:///dir``: each file at ``dir/<path>``, but only under a directory the operator allowed
  (``TUSK_EGRESS_DIRS``): a spec must not be able to write wherever the server can.

2.x ``sql_database`` egress is refused at create.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tusk.errors import InvalidSpec
from tusk.pfs.context import PfsContext
from tusk.pps.spec import PipelineSpec
from tusk.storage.chunking import read_chunks

SCHEMES = ("s3", "file")


class EgressFailed(Exception):
    """Copying a job's output to its egress URL failed; the message names the URL and why."""


def egress_url(spec: PipelineSpec) -> str | None:
    """The URL a spec's egress writes to (None without egress); InvalidSpec for an egress that
    cannot work here."""
    egress = spec.egress
    if egress is None:
        return None
    if egress.sql_database:
        raise InvalidSpec(
            "egress.sql_database is not supported by tusk",
            hint='egress to object storage instead: "egress": {"URL": "s3://bucket/prefix"}',
        )
    url = egress.URL
    if not url and egress.object_storage:
        url = str(egress.object_storage.get("url") or "")
    if not url:
        raise InvalidSpec("egress names no URL", hint='set "egress": {"URL": "s3://bucket/prefix"}')
    try:
        scheme = urlsplit(url).scheme
    except ValueError:  # e.g. an unclosed [ in the host
        raise InvalidSpec(
            f"egress URL {url!r} is not a URL", hint="use s3://bucket/prefix"
        ) from None
    if scheme not in SCHEMES:
        raise InvalidSpec(
            f"egress URL {url} has scheme {scheme or '(none)'!r}, which tusk cannot write",
            hint="use s3://bucket/prefix or file:///dir",
        )
    return url


class EgressTargets:
    """Opens egress targets with the server's settings: its object store URL (an S3 one lends
    its endpoint and region) and the directories file:// egress may write under."""

    def __init__(self, object_url: str, allowed_dirs: Sequence[str] = ()) -> None:
        self.object_url = object_url
        self.allowed_dirs = tuple(os.path.realpath(d) for d in allowed_dirs)

    def check(self, spec: PipelineSpec) -> None:
        """Refuse, at create, an egress that could never be written."""
        url = egress_url(spec)
        if url is None:
            return
        parts = urlsplit(url)
        if parts.scheme == "file":
            self._local_dir(url)
        elif not parts.netloc:
            raise InvalidSpec(f"egress URL {url} names no bucket", hint="use s3://bucket/prefix")
        elif self._is_object_store(parts.netloc, parts.path):
            raise InvalidSpec(
                f"egress URL {url} is inside the server's own object store",
                hint="egress to another bucket or prefix",
            )

    def _is_object_store(self, bucket: str, path: str) -> bool:
        store = urlsplit(self.object_url)
        if store.scheme != "s3" or store.netloc != bucket:
            return False
        a, b = store.path.strip("/"), path.strip("/")
        return not a or not b or a == b or a.startswith(b + "/") or b.startswith(a + "/")

    def _local_dir(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise InvalidSpec(f"egress URL {url} is not file:///<dir>", hint="use file:///dir")
        target = os.path.realpath(parts.path)
        if not any(
            target == d or target.startswith(d.rstrip("/") + "/") for d in self.allowed_dirs
        ):
            allowed = ", ".join(self.allowed_dirs) or "none"
            raise InvalidSpec(
                f"egress URL {url} is not under a directory this server may write "
                f"(TUSK_EGRESS_DIRS: {allowed})",
                hint="egress to s3://bucket/prefix, or have the operator add the directory to "
                "TUSK_EGRESS_DIRS",
            )
        return target

    def copy(self, ctx: PfsContext, root: str, url: str) -> int:
        """Copy every file of the tree ``root`` to ``url``; return how many. EgressFailed (naming
        the URL and the error) when a file cannot be written."""
        files = [n for n in ctx.tree.walk(root, "/") if n.kind == "file"]
        try:
            if urlsplit(url).scheme == "file":
                directory = self._local_dir(url)
                for node in files:
                    _write_local(directory, node.path, read_chunks(ctx.store, node.chunks))
            else:
                client, bucket, prefix = self._s3(url)
                for node in files:
                    key = f"{prefix}/{node.path.lstrip('/')}" if prefix else node.path.lstrip("/")
                    body = _Reader(read_chunks(ctx.store, node.chunks))
                    client.upload_fileobj(body, bucket, key)
        except InvalidSpec as e:
            raise EgressFailed(f"egress to {url} failed: {e.message}") from None
        except Exception as e:  # noqa: BLE001 - any failure of the target fails the job, named
            raise EgressFailed(f"egress to {url} failed: {_describe(e)}") from None
        return len(files)

    def _s3(self, url: str) -> tuple[Any, str, str]:
        try:
            from tusk.storage.s3 import S3ObjectStore
        except ImportError:
            raise EgressFailed(
                f"egress to {url} failed: S3 support is not installed (pip install 'tusk[s3]')"
            ) from None
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        store = urlsplit(self.object_url)
        if store.scheme == "s3":  # the same S3 service as the server's objects, unless told
            for key, value in parse_qsl(store.query):
                query.setdefault(key, value)
        target = urlunsplit(("s3", parts.netloc, parts.path, urlencode(query), ""))
        s3 = S3ObjectStore.from_url(target)  # the bucket must exist, even for no files
        return s3.client, s3.bucket, s3.prefix


def _write_local(directory: str, path: str, data: Iterator[bytes]) -> None:
    """Write one file under ``directory``, never through a symbolic link."""
    target = os.path.join(directory, path.lstrip("/"))
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    if os.path.realpath(parent) != os.path.normpath(parent):
        raise OSError(f"{parent} is reached through a symbolic link")
    tmp = f"{target}.tusk-egress-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "wb") as f:
        for piece in data:
            f.write(piece)
    os.replace(tmp, target)


class _Reader(io.RawIOBase):
    """A file-like view of a file's chunks, for boto3's streaming upload."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buffer:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._buffer = piece
        n = min(len(b), len(self._buffer))
        b[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


def _describe(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]
