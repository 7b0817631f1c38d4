"""``gs://bucket/key`` (1.7 also wrote ``gcs://``) through google-cloud-storage with the CLI
user's credentials: application default credentials (``GOOGLE_APPLICATION_CREDENTIALS``, or
``gcloud auth application-default login``); ``STORAGE_EMULATOR_HOST`` points it at an emulator."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from google.api_core import exceptions as api
from google.auth import exceptions as auth
from google.cloud import storage
from requests import RequestException

from tusk.cli.remotes import BLOCK, PART, Remote


class GCS(Remote):
    example = "gs://bucket/key"

    def connect(self) -> None:
        self.client = storage.Client()
        self.handle = self.client.bucket(self.bucket)

    def errors(self) -> tuple[type[Exception], ...]:
        return (api.GoogleAPIError, auth.GoogleAuthError, RequestException)

    def explain(self, exc: Exception) -> tuple[str, str]:
        if isinstance(exc, auth.DefaultCredentialsError):
            return "no Google Cloud credentials", (
                "set GOOGLE_APPLICATION_CREDENTIALS to a service account key file (or run "
                "gcloud auth application-default login) for the CLI"
            )
        if isinstance(exc, api.NotFound):
            return "NotFound (no such bucket or object)", "check the bucket and the object name"
        if isinstance(exc, api.GoogleAPICallError):
            return f"{type(exc).__name__} ({exc.message})", (
                "check the bucket, the object name and the CLI's Google Cloud credentials"
            )
        return str(exc), "check that Google Cloud Storage (or STORAGE_EMULATOR_HOST) is reachable"

    def size(self, key: str) -> int:
        blob = self.handle.blob(key)
        blob.reload()
        return int(blob.size or 0)

    def listing(self, prefix: str) -> Iterator[tuple[str, int]]:
        for blob in self.client.list_blobs(self.handle, prefix=prefix):
            yield blob.name, int(blob.size or 0)

    def read(self, key: str) -> Iterator[bytes]:
        # one ranged request per PART, handed on in blocks of BLOCK
        with self.handle.blob(key).open("rb", chunk_size=PART) as fh:
            while block := fh.read(BLOCK):
                yield block

    def write(self, key: str, blocks: Iterable[bytes]) -> None:
        """A resumable upload finished by its last chunk only: on a failure it is cancelled,
        and no object appears."""
        writer = self.handle.blob(key).open("wb", chunk_size=PART, ignore_flush=True)
        try:
            for block in blocks:
                writer.write(block)
        except BaseException:
            with contextlib.suppress(*self.errors()):
                writer.terminate()
            raise
        writer.close()


STORE = GCS
