"""``extract -u URL`` and ``restore -u URL``: an extract stream written to or read from object
storage. ``s3://bucket/key`` goes through boto3 with the CLI user's credentials (as ``put-file -f
s3://…`` does: ``AWS_*`` variables, ``AWS_ENDPOINT_URL``, ``~/.aws``); ``file:///path`` is a
local file. The server never touches the URL: the stream passes through the CLI.

An upload is a multipart upload completed only once the whole stream is sent, so a failed or
interrupted extract leaves no object behind (and never half of one)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import unquote, urlparse

from tusk.cli.object_sources import BLOCK, OTHER_STORES, bucket_key, failure, s3_client
from tusk.errors import InvalidArgument, SourceUnavailable

PART = 8 << 20  # S3's parts are at least 5 MiB, the last one excepted


def _scheme(url: str, command: str) -> str:
    scheme = urlparse(url).scheme
    if scheme in ("s3", "file"):
        return scheme
    tool = OTHER_STORES.get(scheme)
    instead = f" (copy the file with {tool})" if tool else ""
    raise InvalidArgument(
        f"{command} -u {url}: tusk reads and writes s3:// and file:// URLs only",
        hint=f"use -u s3://bucket/key or -u file:///path, or -f <file>{instead}",
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
    if _scheme(url, "extract") == "file":
        _local_path(url)
        return
    _, key = bucket_key(url)
    if not key or key.endswith("/"):
        raise InvalidArgument(
            f"{url} names a bucket or a prefix, not an object", hint="e.g. s3://bucket/backup.tusk"
        )


def write_url(url: str, blocks: Iterable[bytes]) -> None:
    """Write the stream ``blocks`` to ``url`` whole, or not at all."""
    check_destination(url)
    if _scheme(url, "extract") == "file":
        write_file(_local_path(url), blocks)
        return
    bucket, key = bucket_key(url)
    _upload(s3_client(), url, bucket, key, blocks)


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


def _parts(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """The stream regrouped into parts of ``PART`` bytes (the last one shorter)."""
    buf = bytearray()
    for block in blocks:
        buf += block
        while len(buf) >= PART:
            yield bytes(buf[:PART])
            del buf[:PART]
    if buf:
        yield bytes(buf)


def _upload(client: Any, url: str, bucket: str, key: str, blocks: Iterable[bytes]) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    except (BotoCoreError, ClientError) as exc:
        raise failure(url, exc, "write") from None
    done: list[dict[str, Any]] = []
    try:
        number = 0
        for number, part in enumerate(_parts(blocks), 1):
            answer = client.upload_part(
                Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=part
            )
            done.append({"PartNumber": number, "ETag": answer["ETag"]})
        if not done:  # an empty stream still makes an (empty) object
            answer = client.upload_part(
                Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b""
            )
            done.append({"PartNumber": 1, "ETag": answer["ETag"]})
        client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": done}
        )
    except BaseException as exc:
        with contextlib.suppress(BotoCoreError, ClientError):
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
        if isinstance(exc, (BotoCoreError, ClientError)):
            raise failure(url, exc, "write") from None
        raise


def read_url(url: str) -> Iterator[bytes]:
    """The bytes at ``url`` in blocks; a missing object fails before the first block."""
    if _scheme(url, "restore") == "file":
        path = _local_path(url)
        if not os.path.isfile(path):
            raise SourceUnavailable(f"open {path}: no such file", hint=f"check the URL {url}")
        return _read_file(path)
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = bucket_key(url)
    if not key:
        raise InvalidArgument(f"{url} names a bucket, not an object", hint="e.g. s3://bucket/key")
    client = s3_client()
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
    except (BotoCoreError, ClientError) as exc:
        raise failure(url, exc) from None
    return _read_body(url, body)


def _read_file(path: str) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while block := fh.read(BLOCK):
            yield block


def _read_body(url: str, body: Any) -> Iterator[bytes]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        while block := body.read(BLOCK):
            yield block
    except (BotoCoreError, ClientError) as exc:
        raise failure(url, exc) from None
    finally:
        body.close()
