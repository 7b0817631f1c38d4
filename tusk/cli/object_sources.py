"""``put-file -f s3://bucket/key`` (``-r``: every object under a prefix): the CLI reads the objects
with boto3 and the credentials of the user running it (``AWS_*`` variables, ``AWS_ENDPOINT_URL``,
``~/.aws``) and streams them to the server, which never fetches anything with its own credentials.
Other object stores 1.7 reads (``gs://``, ``as://``, ``wasb://``) are refused with what to do."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlparse

from tusk.errors import InvalidArgument, SourceUnavailable

BLOCK = 1 << 20
OTHER_STORES = {
    "gs": "gsutil cp / gsutil cat",
    "gcs": "gsutil cp / gsutil cat",
    "as": "az storage blob download",
    "wasb": "az storage blob download",
    "pfs": "tusk get-file on the source server",
}


def refuse_other(url: str) -> None:
    """Raise for a 1.7 object-store URL tusk does not read, saying what to do instead."""
    scheme = urlparse(url).scheme
    if scheme in OTHER_STORES:
        raise SourceUnavailable(
            f"{scheme}:// sources are not supported by tusk ({url})",
            hint=f"tusk reads s3://, http:// and https://; fetch it with {OTHER_STORES[scheme]} "
            "and put the local copy (or pipe it: ... | tusk put-file <repo> <branch> <path>)",
        )


def s3_client() -> Any:
    """A boto3 S3 client with the CLI user's credentials and endpoint."""
    try:
        import boto3
        from botocore.config import Config
    except ModuleNotFoundError:
        raise SourceUnavailable(
            "s3:// sources need boto3, which is not installed",
            hint="install it with: pip install 'tusk[s3]'",
        ) from None
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    config = Config(connect_timeout=10, read_timeout=300, retries={"max_attempts": 3})
    return boto3.client("s3", endpoint_url=endpoint or None, config=config)


def bucket_key(url: str) -> tuple[str, str]:
    parsed = urlparse(url)
    key = parsed.path.lstrip("/")
    if not parsed.netloc:
        raise InvalidArgument(f"invalid S3 URL {url}", hint="write it as s3://bucket/key")
    return parsed.netloc, key


def failure(url: str, exc: Exception, verb: str = "get") -> SourceUnavailable:
    """``exc`` of boto3 as a user error naming the URL and what to check."""
    nothing = "nothing was stored" if verb == "get" else "nothing was written"
    from botocore.exceptions import ClientError, NoCredentialsError

    if isinstance(exc, NoCredentialsError):
        return SourceUnavailable(
            f"cannot {verb} {url}: no AWS credentials",
            hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) for the CLI; "
            + nothing,
        )
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = err.get("Code", "")
        what = {"404": "NoSuchKey", "NoSuchKey": "NoSuchKey"}.get(code, code)
        return SourceUnavailable(
            f"cannot {verb} {url}: {what or 'error'}"
            + (f" ({err.get('Message')})" if err.get("Message") else ""),
            hint="check the bucket, the key and the CLI's AWS credentials; " + nothing,
        )
    return SourceUnavailable(
        f"cannot {verb} {url}: {exc}",
        hint="check AWS_ENDPOINT_URL and that the endpoint is reachable; " + nothing,
    )


def _reader(client: Any, url: str, bucket: str, key: str) -> Callable[[], Iterator[bytes]]:
    def read() -> Iterator[bytes]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
            try:
                while block := body.read(BLOCK):
                    yield block
            finally:
                body.close()
        except (BotoCoreError, ClientError) as exc:
            raise failure(url, exc) from None

    return read


def s3_objects(
    url: str, recursive: bool
) -> Iterator[tuple[str, Callable[[], Iterator[bytes]], int]]:
    """``(relative path, reader, size)`` of the object at ``url`` (relative path ``""``), or with
    ``recursive`` of every object under the prefix (paths relative to it). Looked up now, so a
    missing object fails before anything is sent."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = bucket_key(url)
    client = s3_client()
    try:
        if not recursive:
            if not key:
                raise InvalidArgument(
                    f"{url} names a bucket, not an object", hint="use -r to put every object"
                )
            head = client.head_object(Bucket=bucket, Key=key)
            yield "", _reader(client, url, bucket, key), int(head["ContentLength"])
            return
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key)
        found = False
        for page in pages:
            for obj in page.get("Contents", []):
                name = obj["Key"]
                if name.endswith("/"):
                    continue  # a "directory" marker object
                found = True
                rel = name[len(key) :]
                yield rel, _reader(client, f"s3://{bucket}/{name}", bucket, name), obj["Size"]
        if not found:
            raise SourceUnavailable(
                f"no objects found under {url}", hint="check the bucket and prefix"
            )
    except (BotoCoreError, ClientError) as exc:
        raise failure(url, exc) from None
