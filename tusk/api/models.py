"""Wire models shared by the server and the client (the one seam both sides import)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Wire(BaseModel):
    # defer_build: a model's validator is built when it is first used, not at import, so a
    # command that reads repos does not pay for every model of the API (the server builds them
    # all at start: build_all)
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)


def build_all() -> None:
    """Build every model of the API now (the server, before its routes use them)."""
    import tusk.api.framing
    import tusk.api.pps  # noqa: F401 - its models are Wire subclasses

    todo: list[type[BaseModel]] = [
        Wire,
        tusk.api.framing.FileHeader,
        tusk.api.framing.CommitTrailer,
    ]
    while todo:
        cls = todo.pop()
        # also what adapters made of it later see (FastAPI's, for request bodies)
        cls.model_config["defer_build"] = False
        cls.model_rebuild()
        todo.extend(cls.__subclasses__())


class CommitKey(Wire):
    repo: str
    id: str

    def __str__(self) -> str:
        return f"{self.repo}/{self.id}"


class BranchKey(Wire):
    repo: str
    name: str

    def __str__(self) -> str:
        return f"{self.repo}/{self.name}"


class ProjectInfo(Wire):
    name: str
    description: str = ""
    created: datetime


class CreateProject(Wire):
    name: str
    description: str = ""
    update: bool = False


class RepoInfo(Wire):
    name: str
    created: datetime
    size_bytes: int = 0
    description: str = ""
    branches: list[str] = Field(default_factory=list)
    kind: str = "user"  # user | output | spec


class ProvenanceEntry(Wire):
    commit: CommitKey
    branch: str | None = None


class CommitInfo(Wire):
    commit: CommitKey
    branch: str | None = None
    parent: str | None = None
    children: list[str] = Field(default_factory=list)
    started: datetime
    finished: datetime | None = None
    size_bytes: int = 0
    description: str = ""
    origin: str = "user"  # user | auto | spec
    failed: bool = False
    reason: str = ""
    provenance: list[ProvenanceEntry] = Field(default_factory=list)
    subvenance: list[CommitKey] = Field(default_factory=list)


class BranchInfo(Wire):
    branch: BranchKey
    head: str | None = None
    provenance: list[BranchKey] = Field(default_factory=list)
    subvenance: list[BranchKey] = Field(default_factory=list)
    # when the branch was made (kept when its head moves); None from a server that did not send
    # it, which the 2.x tables print as "-"
    created: datetime | None = None


class FileInfo(Wire):
    path: str
    type: str  # file | dir
    size_bytes: int
    hash: str
    children: list[str] = Field(default_factory=list)
    file_count: int = 0


class DiffResult(Wire):
    new_files: list[FileInfo]
    old_files: list[FileInfo]


class PutResult(Wire):
    commit: CommitKey
    files: int
    bytes: int
    stored_bytes: int


class CreateRepo(Wire):
    name: str
    description: str = ""
    update: bool = False


class StartCommit(Wire):
    branch: str | None = None
    parent: str | None = None
    description: str = ""
    provenance: list[BranchKey] = Field(default_factory=list)


class FinishCommit(Wire):
    description: str | None = None


class CreateBranch(Wire):
    name: str
    head: str | None = None
    provenance: list[BranchKey] | None = None


class DeleteFiles(Wire):
    paths: list[str]


class CopyFile(Wire):
    src_repo: str
    src_ref: str
    src_path: str
    dst_path: str
    overwrite: bool = False


class ServerInfo(Wire):
    version: str
    home: str
    pid: int
    metadata_url: str
    object_url: str
    executor: str
    machine_id: str = ""
    uid: int = -1


class ErrorDetail(Wire):
    """What went wrong: a stable code (see :mod:`tusk.errors`), a message and the fix."""

    code: str
    message: str
    hint: str | None = None
    fields: dict[str, Any] = Field(default_factory=dict)


class ErrorBody(Wire):
    """The body of every error answer (4xx and 5xx)."""

    error: ErrorDetail
