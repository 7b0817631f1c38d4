"""Object store in an S3 bucket: ``s3://bucket/prefix`` holds ``prefix/objects/<2 chars>/<rest>``.

The URL's query may name the endpoint (any S3-compatible server), the region and path-style
addressing: ``s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1&path_style=1``.
Whatever it leaves out comes from boto3's usual sources (``AWS_ENDPOINT_URL``, ``AWS_PROFILE``,
``AWS_ACCESS_KEY_ID``, ``~/.aws/config``, instance roles, ...).

One boto3 client is made per store and shared by all threads (clients are thread-safe, sessions
are not). Objects at or above ``multipart_threshold`` bytes are uploaded in parallel parts.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn, TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as TransportError

from tusk.errors import Internal, InvalidArgument, ServerUnavailable
from tusk.storage.base import (
    check_range,
    check_range_end,
    fanout_key,
    object_not_found,
    validate_object_id,
)
from tusk.storage.hashing import hash_bytes

MULTIPART_THRESHOLD = 64 << 20
PART_SIZE = 16 << 20
MIN_PART_SIZE = 5 << 20  # S3's minimum for every part but the last
MAX_PARTS = 10_000
_QUERY_KEYS = ("endpoint", "region", "path_style")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
# Network failures. botocore retries them for the request, not while streaming a response body.
_TRANSPORT_ERRORS = (TransportError, HTTPClientError, IncompleteReadError)
_BODY_ATTEMPTS = 3
_CREDENTIALS_HINT = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or configure ~/.aws"
)

T = TypeVar("T")


class S3ObjectStore:
    """Immutable objects in an S3 bucket; ``put`` is idempotent and never rewrites an object."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        path_style: bool | None = None,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        part_size: int = PART_SIZE,
        max_concurrency: int = 8,
        connect_timeout: float = 10,
        read_timeout: float = 60,
        max_attempts: int = 5,
        verify_bucket: bool = True,
    ) -> None:
        if not bucket:
            raise InvalidArgument("S3 object store needs a bucket", hint="use s3://bucket/prefix")
        if part_size < MIN_PART_SIZE or multipart_threshold < 1 or max_concurrency < 1:
            raise InvalidArgument(
                f"invalid multipart settings (part_size={part_size}, "
                f"threshold={multipart_threshold}, concurrency={max_concurrency})",
                hint=f"parts are at least {MIN_PART_SIZE} bytes",
            )
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.region = region
        self.path_style = path_style
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.max_concurrency = max_concurrency
        self.url = _format_url(bucket, self.prefix, endpoint_url, region, path_style)
        self._objects = f"{self.prefix}/objects/" if self.prefix else "objects/"
        self._conditional_put = True  # cleared if the server rejects If-None-Match
        s3_config: dict[str, str] = {}
        if path_style is not None:
            s3_config["addressing_style"] = "path" if path_style else "virtual"
        config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            max_pool_connections=max(10, 2 * max_concurrency),
            s3=s3_config or None,
        )
        # A session of its own: the default session is shared and not thread-safe.
        session = boto3.session.Session()
        self.client: Any = session.client(
            "s3", endpoint_url=endpoint_url, region_name=region, config=config
        )
        if verify_bucket:
            self._call(lambda: self.client.head_bucket(Bucket=bucket))

    @classmethod
    def from_url(cls, url: str, **options: Any) -> S3ObjectStore:
        """The store at ``s3://bucket/prefix[?endpoint=URL&region=NAME&path_style=1]``."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise InvalidArgument(
                f"object store URL {url!r} names no bucket", hint="use s3://bucket/prefix"
            )
        query: dict[str, str] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key not in _QUERY_KEYS:
                raise InvalidArgument(
                    f"unknown option {key!r} in object store URL {url!r}",
                    hint="options: " + ", ".join(_QUERY_KEYS),
                )
            query[key] = value
        path_style: bool | None = None
        if "path_style" in query:
            flag = query["path_style"].lower()
            if flag not in _TRUE + _FALSE:
                raise InvalidArgument(
                    f"path_style={query['path_style']!r} in {url!r} is not a boolean",
                    hint="use path_style=1 or path_style=0",
                )
            path_style = flag in _TRUE
        return cls(
            unquote(parts.netloc),
            unquote(parts.path),
            endpoint_url=query.get("endpoint") or None,
            region=query.get("region") or None,
            path_style=path_style,
            **options,
        )

    def __repr__(self) -> str:
        return f"S3ObjectStore({self.url!r})"

    def _key(self, object_id: str) -> str:
        return f"{self._objects}{fanout_key(object_id)}"

    # -- writing -------------------------------------------------------------------------------
    def put(self, data: bytes | memoryview, object_id: str | None = None) -> str:
        if object_id is None:
            object_id = hash_bytes(data)
        key = self._key(object_id)
        if self._head(key, object_id) is not None:
            return object_id
        view = memoryview(data).cast("B")
        if len(view) >= self.multipart_threshold:
            self._put_multipart(key, view, object_id)
        else:
            # botocore takes bytes or files, not memoryviews; a copy of a small object is cheap.
            body = data if isinstance(data, bytes) else view.tobytes()
            self._put_single(key, body, object_id)
        return object_id

    def _put_single(self, key: str, body: bytes, object_id: str) -> None:
        def put() -> None:
            if self._conditional_put:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*")
            else:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=body)

        self._conditional(put, object_id)

    def _put_multipart(self, key: str, view: memoryview, object_id: str) -> None:
        part_size = max(self.part_size, math.ceil(len(view) / MAX_PARTS))
        spans = [(i, min(i + part_size, len(view))) for i in range(0, len(view), part_size)]
        upload = self._call(
            lambda: self.client.create_multipart_upload(Bucket=self.bucket, Key=key), object_id
        )
        upload_id = upload["UploadId"]

        def send(number: int, start: int, end: int) -> dict[str, Any]:
            response = self._call(
                lambda: self.client.upload_part(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=view[start:end].tobytes(),
                ),
                object_id,
            )
            return {"PartNumber": number, "ETag": response["ETag"]}

        try:
            with ThreadPoolExecutor(min(self.max_concurrency, len(spans))) as pool:
                futures = [
                    pool.submit(send, number, start, end)
                    for number, (start, end) in enumerate(spans, 1)
                ]
                try:
                    parts = [future.result() for future in futures]
                except BaseException:
                    pool.shutdown(cancel_futures=True)
                    raise

            def complete() -> None:
                extra = {"IfNoneMatch": "*"} if self._conditional_put else {}
                self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                    **extra,
                )

            if not self._conditional(complete, object_id):
                self._abort(key, upload_id)
        except BaseException:
            self._abort(key, upload_id)
            raise

    def _conditional(self, write: Callable[[], None], object_id: str) -> bool:
        """Run a write that may carry If-None-Match; False if the object already existed."""
        try:
            self._call(write, object_id, raw=True)
        except ClientError as e:
            status, code = _status(e), _code(e)
            if status == 412 or code == "PreconditionFailed":
                return False  # written by someone else meanwhile: immutable, so keep theirs
            if status == 501 or code == "NotImplemented":
                self._conditional_put = False  # a server without conditional writes
                self._call(write, object_id)
                return True
            self._raise(e, object_id)
        return True

    def sync(self) -> None:
        """Nothing to do: S3 has stored an object durably when its PUT succeeds."""

    def _abort(self, key: str, upload_id: str) -> None:
        # If this fails too, the bucket's lifecycle rule for incomplete uploads is the backstop.
        with contextlib.suppress(BotoCoreError, ClientError):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    # -- reading -------------------------------------------------------------------------------
    def get(self, object_id: str, offset: int = 0, length: int = -1) -> bytes:
        check_range(offset, length)
        key = self._key(object_id)
        if length == 0:
            check_range_end(object_id, offset, 0, self._size(key, object_id))
            return b""
        if offset == 0 and length == -1:
            return self._read(key, object_id, None)
        last = "" if length == -1 else str(offset + length - 1)
        try:
            data = self._read(key, object_id, f"bytes={offset}-{last}", raw=True)
        except ClientError as e:
            if _status(e) != 416 and _code(e) != "InvalidRange":
                self._raise(e, object_id)
            # The range starts at or past the end: fine only for an empty tail read.
            check_range_end(object_id, offset, max(length, 0), self._size(key, object_id))
            return b""
        if length != -1 and len(data) != length:
            # S3 cuts a range that runs past the end short instead of failing.
            check_range_end(object_id, offset, length, self._size(key, object_id))
            raise Internal(f"short read of object {object_id}: {len(data)} of {length} bytes")
        return data

    def _read(self, key: str, object_id: str, byte_range: str | None, raw: bool = False) -> bytes:
        extra = {"Range": byte_range} if byte_range else {}
        for attempt in range(_BODY_ATTEMPTS):
            response = self._call(
                lambda: self.client.get_object(Bucket=self.bucket, Key=key, **extra),
                object_id,
                raw=raw,
            )
            try:
                data: bytes = response["Body"].read()
                return data
            except _TRANSPORT_ERRORS as e:
                if attempt + 1 == _BODY_ATTEMPTS:
                    self._raise(e, object_id)
            finally:
                response["Body"].close()
        raise AssertionError("unreachable")

    def exists(self, object_id: str) -> bool:
        return self._head(self._key(object_id), object_id) is not None

    def size(self, object_id: str) -> int:
        return self._size(self._key(object_id), object_id)

    def _size(self, key: str, object_id: str) -> int:
        size = self._head(key, object_id)
        if size is None:
            raise object_not_found(object_id, self.url)
        return size

    def _head(self, key: str, object_id: str) -> int | None:
        """The object's size, or None when it does not exist."""
        try:
            response = self._call(
                lambda: self.client.head_object(Bucket=self.bucket, Key=key), object_id, raw=True
            )
        except ClientError as e:
            if _status(e) == 404:
                return None
            self._raise(e, object_id)
        return int(response["ContentLength"])

    def delete(self, object_id: str) -> None:
        key = self._key(object_id)
        self._call(lambda: self.client.delete_object(Bucket=self.bucket, Key=key), object_id)

    def iter_ids(self) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = iter(paginator.paginate(Bucket=self.bucket, Prefix=self._objects))
        start = len(self._objects)
        while True:
            page = self._call(lambda: next(pages, None))
            if page is None:
                return
            for entry in page.get("Contents", ()):
                rest = entry["Key"][start:]
                if len(rest) > 3 and rest[2] == "/":
                    object_id = rest[:2] + rest[3:]
                    try:
                        yield validate_object_id(object_id)
                    except InvalidArgument:
                        continue  # not written by tusk

    # -- errors --------------------------------------------------------------------------------
    def _call(self, fn: Callable[[], T], object_id: str | None = None, raw: bool = False) -> T:
        """Run one S3 request, translating its failures; with ``raw``, ClientErrors pass through
        for the caller to inspect (and hand to :meth:`_raise`)."""
        try:
            return fn()
        except ClientError as e:
            if raw:
                raise
            self._raise(e, object_id)
        except BotoCoreError as e:
            self._raise(e, object_id)

    def _raise(self, error: Exception, object_id: str | None) -> NoReturn:
        where = f"S3 bucket {self.bucket!r}" + (
            f" at {self.endpoint_url}" if self.endpoint_url else ""
        )
        if isinstance(error, NoCredentialsError | PartialCredentialsError):
            raise InvalidArgument(
                f"no usable AWS credentials for {where}: {error}", hint=_CREDENTIALS_HINT
            ) from None
        if isinstance(error, ClientError):
            status, code = _status(error), _code(error)
            if code == "NoSuchBucket" or (status == 404 and object_id is None):
                raise InvalidArgument(
                    f"{where} does not exist",
                    hint=f"create it (aws s3 mb s3://{self.bucket}) or fix the object store URL",
                ) from None
            if code in ("NoSuchKey", "NotFound") or status == 404:
                raise object_not_found(str(object_id), self.url) from None
            if status == 403 or code in (
                "AccessDenied",
                "InvalidAccessKeyId",
                "SignatureDoesNotMatch",
                "ExpiredToken",
            ):
                raise InvalidArgument(
                    f"access to {where} denied ({code})", hint=_CREDENTIALS_HINT
                ) from None
            if status >= 500 or code in (
                "SlowDown",
                "RequestTimeout",
                "InternalError",
                "ServiceUnavailable",
            ):
                raise ServerUnavailable(
                    f"{where} failed ({code}: {_message(error)})",
                    hint="S3 is unavailable or throttling; retry later",
                ) from None
            raise Internal(f"{where}: {code}: {_message(error)}") from None
        if isinstance(error, _TRANSPORT_ERRORS):
            raise ServerUnavailable(
                f"cannot reach {where}: {error}",
                hint="check the endpoint= in the object store URL (or AWS_ENDPOINT_URL) "
                "and that the S3 server is up",
            ) from None
        raise error


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", ""))


def _format_url(
    bucket: str, prefix: str, endpoint: str | None, region: str | None, path_style: bool | None
) -> str:
    query: dict[str, str] = {}
    if endpoint:
        query["endpoint"] = endpoint
    if region:
        query["region"] = region
    if path_style is not None:
        query["path_style"] = "1" if path_style else "0"
    url = f"s3://{quote(bucket, safe='')}/{quote(prefix)}"
    return f"{url}?{urlencode(query, safe=':/')}" if query else url
