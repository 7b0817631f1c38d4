"""Client-side settings: the one place the client and CLI read the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ADDRESS = "http://127.0.0.1:30650"


@dataclass(frozen=True)
class ClientConfig:
    """Where the server is, the token to send, and the home of a server the CLI starts."""

    address: str
    token: str | None
    home: Path
    explicit_address: bool
    project: str | None = None  # the current project (TUSK_PROJECT or PACH_PROJECT)

    @classmethod
    def from_env(cls) -> ClientConfig:
        """The settings from ``TUSK_ADDRESS`` (or ``PACHD_ADDRESS``), ``TUSK_AUTH_TOKEN``,
        ``TUSK_HOME`` and ``TUSK_PROJECT`` (or ``PACH_PROJECT``)."""
        addr = os.environ.get("TUSK_ADDRESS") or os.environ.get("PACHD_ADDRESS")
        if addr and "://" not in addr:
            addr = "http://" + addr
        home = Path(os.environ.get("TUSK_HOME") or Path.home() / ".tusk").expanduser()
        return cls(
            address=addr or DEFAULT_ADDRESS,
            token=os.environ.get("TUSK_AUTH_TOKEN"),
            home=home,
            explicit_address=bool(addr),
            project=os.environ.get("TUSK_PROJECT") or os.environ.get("PACH_PROJECT") or None,
        )
