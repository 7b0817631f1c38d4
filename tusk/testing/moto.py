"""moto's S3 server as a real subprocess on a free 127.0.0.1 port: a real S3 endpoint (real HTTP,
real boto3) for tests and benchmarks. Needs ``tusk[s3]`` and moto's server extra.

For other processes (tuskd, the CLI), ``MotoServer.env()`` gives the variables that point boto3
at the server; ``tests/s3server.py`` turns it into pytest fixtures.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Any

from tusk.testing.served import ServedProcess

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "tusk-test",
    "AWS_SECRET_ACCESS_KEY": "tusk-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class MotoServer(ServedProcess):
    """``python -m moto.server`` on 127.0.0.1; ``start`` returns once it answers HTTP."""

    name = "moto"
    probe = "/moto-api/"

    def __init__(self, log_dir: Path) -> None:
        super().__init__(log_dir)
        self._client: Any = None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]

    def process_env(self) -> dict[str, str]:
        return {**os.environ, **CREDENTIALS}

    def start(self, timeout: float = 30.0) -> None:
        self._client = None
        super().start(timeout)

    def __enter__(self) -> MotoServer:
        self.start()
        return self

    def env(self) -> dict[str, str]:
        """Environment for a process that should use this server for every s3:// URL."""
        return {
            **CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self) -> Any:
        """A boto3 S3 client for setting up and inspecting buckets (not the store under test)."""
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _make_client(self) -> Any:
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        )
        return session.client(
            "s3", endpoint_url=self.endpoint, config=Config(s3={"addressing_style": "path"})
        )

    def create_bucket(self, name: str | None = None) -> str:
        name = name or f"tusk-test-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)
        return name

    def remove_bucket(self, name: str) -> None:
        """Delete a bucket with everything in it, including unfinished multipart uploads."""
        client = self.client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": entry["Key"]} for entry in page.get("Contents", ())]
            if keys:
                client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        for upload in client.list_multipart_uploads(Bucket=name).get("Uploads", ()):
            client.abort_multipart_upload(
                Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        client.delete_bucket(Bucket=name)
