"""``--raw`` in pachctl 2.x's form, for commands spelled in 2.x's grammar: each answer as the
Pachyderm 2.x message tusk's gRPC API returns for it (the converters of ``tusk.grpc``), printed
as pachctl 2.x prints them: protobuf JSON with the .proto field names (pachctl 2.x's encoder
asks for the original names), two-space indent, RFC 3339 timestamps, 64-bit integers as strings,
enums by name, fields at their zero value left out. An answer with no 2.x message keeps 1.7's
form. Imported only for such a command, since the converters pull in the gRPC layer."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click
from pydantic import BaseModel

from tusk.cli.jsonpb import render_json


def _file_commit() -> Any:
    """The commit of the file command being run, as a Pachyderm ``Commit`` (its id resolved)."""
    from tusk.cli.common import client
    from tusk.grpc import convert as cv

    ctx = click.get_current_context()
    cached = ctx.meta.get("tusk.v2_commit")
    if cached is None:
        repo, ref = ctx.params["repo"], ctx.params["commit"]
        info = client().inspect_commit(repo, ref)
        cached = cv.commit_msg(repo, info.commit.id, info.branch)
        ctx.meta["tusk.v2_commit"] = cached
    return cached


def message(model: BaseModel) -> Any | None:
    """The Pachyderm 2.x message for ``model``, or None when 2.x has none for it."""
    from tusk.grpc import convert as cv

    kind = type(model).__name__
    if kind == "RepoInfo":
        return cv.repo_info(model)  # type: ignore[arg-type]
    if kind == "CommitInfo":
        return cv.commit_info(model)  # type: ignore[arg-type]
    if kind == "BranchInfo":
        return cv.branch_info(model)  # type: ignore[arg-type]
    if kind == "FileInfo":
        return cv.file_info(model, _file_commit())  # type: ignore[arg-type]
    if kind in ("PipelineInfo", "JobInfo", "DatumInfo"):
        from tusk.grpc import pps

        convert = {
            "PipelineInfo": pps.pipeline_info,
            "JobInfo": pps.job_info,
            "DatumInfo": pps.datum_info,
        }[kind]
        return convert(model)  # type: ignore[operator]
    return None


def render(msg: Any) -> str:
    """One message as pachctl 2.x's ``--raw`` prints it."""
    from betterproto import Casing

    return json.dumps(msg.to_dict(casing=Casing.SNAKE), indent=2, ensure_ascii=False)


# The typed answer of each command the CLI reads through the plain reader (JSON values).
_READER_ANSWERS = {
    "list-repo": "RepoInfo",
    "inspect-repo": "RepoInfo",
    "list-commit": "CommitInfo",
    "inspect-commit": "CommitInfo",
    "subscribe-commit": "CommitInfo",
    "list-branch": "BranchInfo",
    "list-file": "FileInfo",
    "glob-file": "FileInfo",
    "inspect-file": "FileInfo",
    "list-job": "JobInfo",
}


def _typed(item: BaseModel | dict[str, Any]) -> BaseModel | dict[str, Any]:
    """A JSON value from the plain reader as the typed model of the command's answer."""
    if not isinstance(item, dict):
        return item
    kind = _READER_ANSWERS.get(click.get_current_context().command.name or "")
    if kind is None:
        return item
    from tusk.api import models as api_models
    from tusk.api import pps as api_pps

    cls = getattr(api_models, kind, None) or getattr(api_pps, kind)
    return cls.model_validate(item)


def print_messages(items: Sequence[BaseModel | dict[str, Any]]) -> None:
    for item in items:
        m = _typed(item)
        if isinstance(m, dict):
            click.echo(render_json(m))
            continue
        msg = message(m)
        click.echo(render_json(m.model_dump(mode="json")) if msg is None else render(msg))
