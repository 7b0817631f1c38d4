"""The Python client of tuskd; speaks only the HTTP contract in :mod:`tusk.api`."""

from tusk.client.client import Client, OpenCommit, PutSource

__all__ = ["Client", "OpenCommit", "PutSource"]
