"""``client.admin``: operations on the whole deployment (cluster id, delete-all, garbage
collection, extract and restore, objects and tags by id)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from tusk.api.admin import (
    EXTRACT_MEDIA_TYPE,
    ClusterInfo,
    DeleteAllResult,
    GcResult,
    RestoreResult,
)
from tusk.client.http import Http

READ_BLOCK = 1 << 20


class AdminClient:
    """The whole-deployment operations of a :class:`tusk.Client` (``client.admin``)."""

    def __init__(self, http: Http) -> None:
        self._http = http

    def inspect_cluster(self) -> ClusterInfo:
        """The deployment's id."""
        return self._http.get("/cluster", ClusterInfo)

    def delete_all(self) -> DeleteAllResult:
        """Delete every pipeline, repo, commit, file and job."""
        return self._http.call("DELETE", "/all", DeleteAllResult)

    def garbage_collect(self) -> GcResult:
        """Delete the objects nothing uses any more."""
        return self._http.post("/gc", None, GcResult)

    def _blocks(self, url: str, **params: object) -> Iterator[bytes]:
        with self._http.stream("GET", url, params=params) as resp, self._http.mapped_errors():
            yield from resp.iter_bytes(READ_BLOCK)

    def get_object(self, object_id: str) -> Iterator[bytes]:
        """The bytes of one object of the object store."""
        return self._blocks("/object", id=object_id)

    def get_tag(self, tag: str) -> bytes:
        """The stored output (JSON) of the datum whose hash is ``tag``."""
        return b"".join(self._blocks("/tag", tag=tag))

    def extract(self, objects: bool = True) -> Iterator[bytes]:
        """Everything the deployment holds, as one stream (``objects=False``: metadata only)."""
        return self._blocks("/extract", objects=objects)

    def restore(self, stream: Iterable[bytes]) -> RestoreResult:
        """Recreate an extract in this deployment, which must be empty."""
        self._http.call("GET", "/restore/ready", None)  # refused before the stream is sent
        return self._http.call(
            "POST",
            "/restore",
            RestoreResult,
            content=stream,
            headers={"Content-Type": EXTRACT_MEDIA_TYPE},
            timeout=None,
        )
