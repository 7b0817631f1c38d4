"""``tusk.Client``: a connection to tuskd composed of its services, ``client.pfs`` and
``client.pps``; the flat names (``client.create_repo(...)``) call the same methods."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx

from tusk.api.models import ServerInfo
from tusk.client.admin import AdminClient
from tusk.client.config import ClientConfig
from tusk.client.http import Http
from tusk.client.pfs import PfsClient
from tusk.client.pps import PpsClient

P = ParamSpec("P")
R = TypeVar("R")


def _via(
    part: str, method: Callable[Concatenate[Any, P], R]
) -> Callable[Concatenate[Client, P], R]:
    """A method of :class:`Client` that calls ``method`` on the service ``part``."""

    @functools.wraps(method)
    def delegate(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return method(getattr(self, part), *args, **kwargs)

    return delegate


def _pfs(method: Callable[Concatenate[PfsClient, P], R]) -> Callable[Concatenate[Client, P], R]:
    return _via("pfs", method)


def _pps(method: Callable[Concatenate[PpsClient, P], R]) -> Callable[Concatenate[Client, P], R]:
    return _via("pps", method)


class Client:
    """A connection to tuskd. ``Client()`` uses ``TUSK_ADDRESS`` or the default local address.

    ``project`` (default ``TUSK_PROJECT``, else ``default``) is the project of the bare repo and
    pipeline names the client is given; ``"<project>/<name>"`` names one in any project.

    ``transport`` replaces the network, e.g. to serve requests from an app in the same process.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        token: str | None = None,
        timeout: float = 300.0,
        transport: httpx.BaseTransport | None = None,
        project: str | None = None,
    ) -> None:
        cfg = ClientConfig.from_env()
        # the project bare repo and pipeline names are in (``TUSK_PROJECT``; else ``default``)
        self.project = project or cfg.project
        self._http = Http(
            address or cfg.address, token=token or cfg.token, timeout=timeout, transport=transport
        )
        self.address = self._http.address
        self.pfs = PfsClient(self._http, self.project)
        self.pps = PpsClient(self._http, self.project)
        self.admin = AdminClient(self._http)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def info(self) -> ServerInfo:
        """The server's version, process, data location and backends."""
        return self._http.get("/info", ServerInfo)

    # -- PFS ---------------------------------------------------------------------------------
    create_repo = _pfs(PfsClient.create_repo)
    update_repo = _pfs(PfsClient.update_repo)
    inspect_repo = _pfs(PfsClient.inspect_repo)
    list_repo = _pfs(PfsClient.list_repo)
    delete_repo = _pfs(PfsClient.delete_repo)
    start_commit = _pfs(PfsClient.start_commit)
    finish_commit = _pfs(PfsClient.finish_commit)
    inspect_commit = _pfs(PfsClient.inspect_commit)
    list_commit = _pfs(PfsClient.list_commit)
    delete_commit = _pfs(PfsClient.delete_commit)
    commit_set = _pfs(PfsClient.commit_set)
    squash_commit_set = _pfs(PfsClient.squash_commit_set)
    drop_commit_set = _pfs(PfsClient.drop_commit_set)
    subscribe_commit = _pfs(PfsClient.subscribe_commit)
    commit = _pfs(PfsClient.commit)
    create_branch = _pfs(PfsClient.create_branch)
    list_branch = _pfs(PfsClient.list_branch)
    inspect_branch = _pfs(PfsClient.inspect_branch)
    delete_branch = _pfs(PfsClient.delete_branch)
    put_files = _pfs(PfsClient.put_files)
    put_file = _pfs(PfsClient.put_file)
    put_header = _pfs(PfsClient.put_header)
    get_file = _pfs(PfsClient.get_file)
    get_file_bytes = _pfs(PfsClient.get_file_bytes)
    list_file = _pfs(PfsClient.list_file)
    glob_file = _pfs(PfsClient.glob_file)
    inspect_file = _pfs(PfsClient.inspect_file)
    walk_file = _pfs(PfsClient.walk_file)
    diff_file = _pfs(PfsClient.diff_file)
    delete_file = _pfs(PfsClient.delete_file)
    copy_file = _pfs(PfsClient.copy_file)

    # -- PPS ---------------------------------------------------------------------------------
    create_pipeline = _pps(PpsClient.create_pipeline)
    list_pipeline = _pps(PpsClient.list_pipeline)
    inspect_pipeline = _pps(PpsClient.inspect_pipeline)
    extract_pipeline = _pps(PpsClient.extract_pipeline)
    delete_pipeline = _pps(PpsClient.delete_pipeline)
    stop_pipeline = _pps(PpsClient.stop_pipeline)
    start_pipeline = _pps(PpsClient.start_pipeline)
    list_job = _pps(PpsClient.list_job)
    inspect_job = _pps(PpsClient.inspect_job)
    stop_job = _pps(PpsClient.stop_job)
    delete_job = _pps(PpsClient.delete_job)
    list_datum = _pps(PpsClient.list_datum)
    restart_datum = _pps(PpsClient.restart_datum)
    inspect_datum = _pps(PpsClient.inspect_datum)
    lineage = _pps(PpsClient.lineage)
    wave = _pps(PpsClient.wave)
    get_logs = _pps(PpsClient.get_logs)
    flush_commit = _pps(PpsClient.flush_commit)
    flush_job = _pps(PpsClient.flush_job)
    list_worker = _pps(PpsClient.list_worker)
    create_secret = _pps(PpsClient.create_secret)
    list_secret = _pps(PpsClient.list_secret)
    inspect_secret = _pps(PpsClient.inspect_secret)
    delete_secret = _pps(PpsClient.delete_secret)
