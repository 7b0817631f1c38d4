"""The Python client of tuskd; speaks only the HTTP contract in :mod:`tusk.api`.

The names load on first use, so that importing a light part (``tusk.client.plain``,
``tusk.client.config``) does not import httpx and pydantic."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tusk.client.client import Client
    from tusk.client.pfs import OpenCommit, PfsClient, PutSource
    from tusk.client.pps import PpsClient

__all__ = ["Client", "OpenCommit", "PfsClient", "PpsClient", "PutSource"]

_WHERE = {
    "Client": "tusk.client.client",
    "OpenCommit": "tusk.client.pfs",
    "PfsClient": "tusk.client.pfs",
    "PutSource": "tusk.client.pfs",
    "PpsClient": "tusk.client.pps",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(module), name)
