"""``wasb://`` and ``as://`` (Azure Blob Storage) through azure-storage-blob with the CLI user's
credentials: ``AZURE_STORAGE_CONNECTION_STRING``, or an account (the URL's or
``AZURE_STORAGE_ACCOUNT``) with ``AZURE_STORAGE_KEY`` or ``AZURE_STORAGE_SAS_TOKEN`` (the
variables of the ``az`` CLI).

URLs, as 1.7 read them: the host names the account (``account`` or
``account.blob.core.windows.net``; empty: ``AZURE_STORAGE_ACCOUNT``), the first path segment the
container, the rest the blob: ``wasb://account.blob.core.windows.net/container/path``,
``as://account/container/path``. Hadoop's ``wasb://container@account.blob.core.windows.net/path``
is read too (the container before the ``@``)."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlparse

from azure.core import exceptions as az
from azure.storage.blob import BlobBlock, BlobServiceClient

from tusk.cli.remotes import BLOCK, PART, Remote, parts
from tusk.errors import InvalidArgument, SourceUnavailable

FORMS = "wasb://account.blob.core.windows.net/container/blob or as://account/container/blob"


class Azure(Remote):
    example = "wasb://account/container/blob"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.account = account_of(url)

    @classmethod
    def parse(cls, url: str) -> tuple[str, str]:
        """``(container, blob)`` of the URL."""
        parsed = urlparse(url)
        path = parsed.path.lstrip("/")
        if parsed.username:
            return parsed.username, path
        container, _, blob = path.partition("/")
        if not container:
            raise InvalidArgument(f"invalid Azure URL {url}: no container", hint=f"write {FORMS}")
        return container, blob

    def connect(self) -> None:
        options: dict[str, Any] = {"max_single_get_size": PART, "max_chunk_get_size": PART}
        service = self._service(options)
        self.container = service.get_container_client(self.bucket)

    def _service(self, options: dict[str, Any]) -> BlobServiceClient:
        text = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
        if text:
            try:
                service = BlobServiceClient.from_connection_string(text, **options)
            except ValueError as exc:
                raise SourceUnavailable(
                    f"AZURE_STORAGE_CONNECTION_STRING cannot be used: {exc}",
                    hint="set it to the connection string that the Azure portal or "
                    "az storage account show-connection-string shows",
                ) from None
            if self.account and self.account != service.account_name:
                raise InvalidArgument(
                    f"{self.url} names account {self.account!r}, but "
                    f"AZURE_STORAGE_CONNECTION_STRING is for {service.account_name!r}",
                    hint="use the connection string of the URL's account, or leave the account "
                    "out of the URL (wasb:///container/blob)",
                )
            return service
        account = self.account or os.environ.get("AZURE_STORAGE_ACCOUNT", "")
        credential: str | dict[str, str] | None = os.environ.get("AZURE_STORAGE_SAS_TOKEN")
        if os.environ.get("AZURE_STORAGE_KEY"):
            credential = {"account_name": account, "account_key": os.environ["AZURE_STORAGE_KEY"]}
        if not account or not credential:
            raise SourceUnavailable(
                f"{self.url}: no Azure credentials" + ("" if account else " and no account"),
                hint="set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_KEY (or "
                "AZURE_STORAGE_SAS_TOKEN) with the account in the URL or AZURE_STORAGE_ACCOUNT, "
                "for the CLI",
            )
        host = urlparse(self.url).hostname or ""
        endpoint = f"https://{host if '.' in host else account + '.blob.core.windows.net'}"
        return BlobServiceClient(endpoint, credential=credential, **options)

    def errors(self) -> tuple[type[Exception], ...]:
        return (az.AzureError,)

    def explain(self, exc: Exception) -> tuple[str, str]:
        if isinstance(exc, az.HttpResponseError):
            code = getattr(exc, "error_code", None)  # a StorageErrorCode, or its text
            what = str(getattr(code, "value", code) or exc.reason or "error")
            return (
                what,
                "check the account, the container, the blob and the CLI's Azure credentials",
            )
        return type(exc).__name__ + f" ({exc})", "check that the account's endpoint is reachable"

    def size(self, key: str) -> int:
        return int(self.container.get_blob_client(key).get_blob_properties().size)

    def listing(self, prefix: str) -> Iterator[tuple[str, int]]:
        for blob in self.container.list_blobs(name_starts_with=prefix):
            yield blob.name, int(blob.size)

    def read(self, key: str) -> Iterator[bytes]:
        for chunk in self.container.get_blob_client(key).download_blob().chunks():  # PART each
            for start in range(0, len(chunk), BLOCK):
                yield chunk[start : start + BLOCK]

    def write(self, key: str, blocks: Iterable[bytes]) -> None:
        """Blocks staged one by one and committed once the whole stream is sent: until then,
        and for ever if it fails, there is no blob (uncommitted blocks expire)."""
        blob = self.container.get_blob_client(key)
        staged = []
        for number, part in enumerate(parts(blocks)):
            staged.append(BlobBlock(base64.b64encode(f"{number:08d}".encode()).decode()))
            blob.stage_block(staged[-1].id, part)
        blob.commit_block_list(staged)


def account_of(url: str) -> str:
    """The account the URL's host names (``""`` when it names none)."""
    return (urlparse(url).hostname or "").split(".")[0]


STORE = Azure
