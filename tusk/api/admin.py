"""Wire models of the whole-deployment operations (cluster id, delete-all, garbage collection,
extract and restore)."""

from __future__ import annotations

from pydantic import Field

from tusk.api.models import Wire

# The content type of an extract stream (the body of a restore, the answer of an extract).
EXTRACT_MEDIA_TYPE = "application/x-tusk-extract"


class ClusterInfo(Wire):
    """The deployment's id, made when it is first asked for (``inspect-cluster``)."""

    id: str


class DeleteAllResult(Wire):
    repos: list[str] = Field(default_factory=list)
    pipelines: list[str] = Field(default_factory=list)


class GcResult(Wire):
    """What ``garbage-collect`` found: objects still used, objects deleted and their bytes."""

    objects_kept: int
    objects_deleted: int
    bytes_deleted: int


class RestoreResult(Wire):
    """What ``restore`` recreated: objects stored and rows per table."""

    objects: int
    rows: dict[str, int] = Field(default_factory=dict)
