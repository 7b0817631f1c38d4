"""``--raw`` in pachctl 2.x's form, for commands spelled in 2.x's grammar: each answer as the
Pachyderm 2.x message tusk's gRPC API returns for it (the converters of ``tusk.grpc``), printed
as pachctl 2.x prints them: protobuf JSON with the .proto field names (pachctl 2.x's encoder
asks for the original names), two-space indent, RFC 3339 timestamps, 64-bit integers as strings,
enums by name, fields at their zero value left out. An answer with no 2.x message keeps 1.7's
form. Imported only for such a command, since the converters pull in the gRPC layer."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
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


def job_set_message(set_id: str, jobs: Sequence[Any]) -> Any:
    """The Pachyderm 2.x ``JobSetInfo`` of the jobs sharing the global id ``set_id``."""
    from pachyderm_sdk.api import pps as pps_msg

    from tusk.grpc import pps

    return pps_msg.JobSetInfo(
        job_set=pps_msg.JobSet(id=set_id), jobs=[pps.job_info(j) for j in jobs]
    )


def commit_set_message(set_id: str, commits: Sequence[Any]) -> Any:
    """The Pachyderm 2.x ``CommitSetInfo`` of the commits sharing the global id ``set_id``."""
    from pachyderm_sdk.api import pfs as pfs_msg

    from tusk.grpc import convert as cv

    return pfs_msg.CommitSetInfo(
        commit_set=pfs_msg.CommitSet(id=set_id), commits=[cv.commit_info(c) for c in commits]
    )


def render(msg: Any, output: str = "json") -> str:
    """One message as pachctl 2.x's ``--raw`` prints it (``-o yaml``: as a YAML document)."""
    from betterproto import Casing

    data = msg.to_dict(casing=Casing.SNAKE)
    if output == "yaml":
        return _yaml(data)
    return json.dumps(data, indent=2, ensure_ascii=False)


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
    "inspect-job": "JobInfo",
    "list-pipeline": "PipelineInfo",
    "inspect-pipeline": "PipelineInfo",
    "list-datum": "DatumInfo",
    "inspect-datum": "DatumInfo",
    "flush-commit": "CommitInfo",
    "flush-job": "JobInfo",
    "list-commitset": "CommitInfo",
    "list-commitsets": "CommitInfo",
    "list-jobset": "JobInfo",
    "list-jobsets": "JobInfo",
}


def typed_one(item: BaseModel | dict[str, Any]) -> BaseModel | dict[str, Any]:
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


def _yaml(data: Any) -> str:
    import yaml

    text: str = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return "---\n" + text.rstrip("\n")


def typed(items: Iterable[Any]) -> list[Any]:
    """Answers read as JSON values (the plain reader) as the typed models 2.x's layouts take."""
    return [typed_one(i) for i in items]


def print_messages(items: Iterable[BaseModel | dict[str, Any]], output: str = "json") -> None:
    """Each answer as 2.x prints it, as the answers come."""
    for item in items:
        m = typed_one(item)
        if isinstance(m, dict):
            click.echo(_yaml(m) if output == "yaml" else render_json(m))
            continue
        msg = message(m)
        if msg is not None:
            click.echo(render(msg, output))
        elif output == "yaml":
            click.echo(_yaml(m.model_dump(mode="json")))
        else:
            click.echo(render_json(m.model_dump(mode="json")))
