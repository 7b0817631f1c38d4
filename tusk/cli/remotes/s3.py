"""``s3://bucket/key`` through boto3 with the CLI user's credentials and endpoint (``AWS_*``
variables, ``AWS_ENDPOINT_URL``, ``~/.aws``)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from tusk.cli.remotes import BLOCK, Remote, parts


class S3(Remote):
    example = "s3://bucket/key"

    def connect(self) -> None:
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        config = Config(connect_timeout=10, read_timeout=300, retries={"max_attempts": 3})
        self.client: Any = boto3.client("s3", endpoint_url=endpoint or None, config=config)

    def errors(self) -> tuple[type[Exception], ...]:
        return (BotoCoreError, ClientError)

    def explain(self, exc: Exception) -> tuple[str, str]:
        if isinstance(exc, NoCredentialsError):
            return "no AWS credentials", (
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) for the CLI"
            )
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            code = err.get("Code", "")
            what = {"404": "NoSuchKey", "NoSuchKey": "NoSuchKey"}.get(code, code) or "error"
            message = f" ({err['Message']})" if err.get("Message") else ""
            return what + message, "check the bucket, the key and the CLI's AWS credentials"
        return str(exc), "check AWS_ENDPOINT_URL and that the endpoint is reachable"

    def size(self, key: str) -> int:
        return int(self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])

    def listing(self, prefix: str) -> Iterator[tuple[str, int]]:
        pages = self.client.get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"], int(obj["Size"])

    def read(self, key: str) -> Iterator[bytes]:
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        try:
            while block := body.read(BLOCK):
                yield block
        finally:
            body.close()

    def write(self, key: str, blocks: Iterable[bytes]) -> None:
        """A multipart upload completed only once the whole stream is sent (aborted otherwise)."""
        where = {"Bucket": self.bucket, "Key": key}
        upload = self.client.create_multipart_upload(**where)["UploadId"]
        done: list[dict[str, Any]] = []
        try:
            for number, part in enumerate(parts(blocks), 1):
                answer = self.client.upload_part(
                    **where, UploadId=upload, PartNumber=number, Body=part
                )
                done.append({"PartNumber": number, "ETag": answer["ETag"]})
            if not done:  # an empty stream still makes an (empty) object
                answer = self.client.upload_part(**where, UploadId=upload, PartNumber=1, Body=b"")
                done.append({"PartNumber": 1, "ETag": answer["ETag"]})
            self.client.complete_multipart_upload(
                **where, UploadId=upload, MultipartUpload={"Parts": done}
            )
        except BaseException:
            with contextlib.suppress(BotoCoreError, ClientError):
                self.client.abort_multipart_upload(**where, UploadId=upload)
            raise


STORE = S3
