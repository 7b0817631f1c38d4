"""Bounds of the numbers routes take in their queries: a number out of range (negative, NaN,
infinite, beyond what the database stores) is a 400 naming the parameter, never a hang or a
500."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from tusk.api.projects import qualify

MAX_COUNT = 1 << 62  # counts, offsets and lengths: any real one, and it fits a SQL BIGINT
MAX_WAIT = 3600.0  # seconds a request may block; a client waiting longer asks again

Count = Annotated[int, Query(ge=0, le=MAX_COUNT)]
Seconds = Annotated[float, Query(ge=0, le=MAX_WAIT, allow_inf_nan=False)]


def _repo_key(repo: str, project: str | None = None) -> str:
    return qualify(project, repo)


def _pipeline_key(name: str, project: str | None = None) -> str:
    return qualify(project, name)


# A repo or pipeline named in the path, in the project of the optional ``project`` query
# parameter (default: ``default``): its stored key (tusk/api/projects.py).
RepoKey = Annotated[str, Depends(_repo_key)]
PipelineKey = Annotated[str, Depends(_pipeline_key)]
