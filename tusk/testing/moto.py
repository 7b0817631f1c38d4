"""moto's S3 server as a real subprocess on a free 127.0.0.1 port: a real S3 endpoint (real HTTP,
real boto3) for tests and benchmarks. Needs ``tusk[s3]`` and moto's server extra.

For other processes (tuskd, the CLI), ``MotoServer.env()`` gives the variables that point boto3
at the server; ``tests/s3server.py`` turns it into pytest fixtures.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tusk.testing.process import free_port, log_tail, stop_process, wait_for

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "tusk-test",
    "AWS_SECRET_ACCESS_KEY": "tusk-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class MotoServer:
    """``python -m moto.server`` on 127.0.0.1; ``start`` returns once it answers HTTP."""

    def __init__(self, log_dir: Path) -> None:
        self.log_path = log_dir / "moto.log"
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._client: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        # The port may be taken between choosing and binding it; then try another.
        for _ in range(3):
            self.port = free_port()
            self._client = None
            with open(self.log_path, "ab") as log:
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env={**os.environ, **CREDENTIALS},
                )
            try:
                if wait_for("moto to answer", self._answering_or_exited, timeout) == "answering":
                    return
            except AssertionError:
                pass
            self.stop()
        raise RuntimeError(f"moto server did not start; its log:\n{log_tail(self.log_path)}")

    def _answering_or_exited(self) -> str | None:
        assert self._proc is not None
        if self._proc.poll() is not None:
            return "exited"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            opener.open(f"{self.endpoint}/moto-api/", timeout=1).close()
        except urllib.error.HTTPError:
            pass  # any HTTP answer means it is serving
        except OSError:
            return None
        return "answering"

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process(proc, timeout=10)

    def __enter__(self) -> MotoServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

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
