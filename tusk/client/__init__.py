"""The Python client of tuskd; speaks only the HTTP contract in :mod:`tusk.api`."""

from tusk.client.client import Client
from tusk.client.pfs import OpenCommit, PfsClient, PutSource
from tusk.client.pps import PpsClient

__all__ = ["Client", "OpenCommit", "PfsClient", "PpsClient", "PutSource"]
