"""Google Cloud Storage and Azure Blob Storage emulators as real subprocesses on free 127.0.0.1
ports, for the ``gs://`` and ``wasb://`` tests: gcp-storage-emulator (``pip``, in the ``dev``
extra) and Azurite (``npm``, installed into ``.venv/azurite`` by ``scripts/setup-emulators.sh``).

``env()`` gives the variables that point the CLI's client library at the emulator (the
libraries' own: ``STORAGE_EMULATOR_HOST``, ``AZURE_STORAGE_CONNECTION_STRING``); ``tests/
stores.py`` turns them into pytest fixtures."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tusk.testing.served import ServedProcess

# Azurite's one account and its key: public, the same in every Azurite (Microsoft documents it).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


class GcsEmulator(ServedProcess):
    """``gcp-storage-emulator start`` in memory on 127.0.0.1."""

    name = "gcs-emulator"
    probe = "/storage/v1/b"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1"] + [
            "--port",
            str(self.port),
            "--in-memory",
        ]

    def env(self) -> dict[str, str]:
        """Environment for a process whose gs:// URLs should reach this emulator."""
        return {"STORAGE_EMULATOR_HOST": self.endpoint}

    def client(self) -> object:
        """A google-cloud-storage client of the emulator, for setting up and inspecting buckets."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project="tusk-test",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.endpoint},
        )


def azurite_program() -> str:
    """Azurite's blob server: in this venv (``scripts/setup-emulators.sh``) or on ``PATH``."""
    local = Path(sys.prefix) / "azurite" / "node_modules" / ".bin" / "azurite-blob"
    found = str(local) if local.exists() else shutil.which("azurite-blob")
    if not found:
        raise RuntimeError(
            f"Azurite is not installed ({local} is missing): run bash scripts/setup-emulators.sh"
        )
    return found


class Azurite(ServedProcess):
    """Azurite's blob service in memory on 127.0.0.1 (no telemetry, no data left on disk)."""

    name = "azurite"
    probe = f"/{AZURITE_ACCOUNT}?comp=list"

    def command(self) -> list[str]:
        return [azurite_program(), "--blobHost", "127.0.0.1", "--blobPort", str(self.port)] + [
            "--inMemoryPersistence",
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--silent",
        ]

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
            f"AccountKey={AZURITE_KEY};BlobEndpoint={self.endpoint}/{AZURITE_ACCOUNT};"
        )

    def env(self) -> dict[str, str]:
        """Environment for a process whose wasb:// URLs should reach this emulator."""
        return {"AZURE_STORAGE_CONNECTION_STRING": self.connection_string}

    def client(self) -> object:
        """An azure-storage-blob service client, for setting up and inspecting containers."""
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)
