"""Pipeline commands in pachctl 1.7's grammar: create, update, edit, extract, inspect, list,
delete, start and stop."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
from typing import Any

import click

from tusk.api.projects import bare
from tusk.cli.common import (
    current_project,
    echo_json,
    out,
    print_raw,
    raw_option,
    reader,
    repo_seg,
    v2_grammar,
    warn,
)
from tusk.cli.jsonpb import render_json
from tusk.cli.pps_details import pipeline_details
from tusk.cli.tables import print_table
from tusk.cli.units import ago, from_timestamp
from tusk.errors import InvalidArgument, SourceUnavailable

PIPELINE_HEADER = ("NAME", "INPUT", "OUTPUT", "CREATED", "STATE")


# -- pipelines: create / update / edit ----------------------------------------------------------
def read_spec(path: str) -> tuple[str, str]:
    """The text of ``-f`` (a file, an http(s) URL or ``-`` for stdin) and a name for errors."""
    if path == "-":
        warn("Reading from stdin.")
        return sys.stdin.read(), "stdin"
    if path.startswith(("http://", "https://")):
        import httpx  # here: the read commands of this module start without it

        try:
            resp = httpx.get(path, follow_redirects=True, timeout=60)
            resp.raise_for_status()
        except httpx.HTTPError as exc:
            raise SourceUnavailable(
                f"could not read pipeline spec from {path}: {exc}", hint="check the URL"
            ) from None
        return resp.text, path
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read(), path
    except OSError as exc:
        raise SourceUnavailable(
            f"could not read pipeline spec {path}: {exc.strerror}",
            hint="pass the spec with -f <file>, -f <url>, or on stdin",
        ) from None


def _send_specs(text: str, source: str, *, update: bool, reprocess: bool) -> None:
    """Hand the spec text to the server; print the warnings it answers with."""
    body = {
        "specs": text,
        "source": source,
        "update": update,
        "reprocess": reprocess,
        "project": current_project(),
    }
    for info in reader().send("POST", "/pipelines", body):
        for warning in info.get("warnings") or ():
            warn(warning)


def _pipeline_file_options(f: Any) -> Any:
    f = click.option(
        "--password",
        default="",
        help="Your password for the registry being pushed to (accepted; unused).",
    )(f)
    f = click.option(
        "-u",
        "--username",
        default="",
        help="The username to push images as, defaults to your OS username (accepted; unused).",
    )(f)
    f = click.option(
        "-r",
        "--registry",
        default="docker.io",
        help="The registry to push images to (accepted; unused).",
    )(f)
    f = click.option(
        "-p",
        "--push-images",
        is_flag=True,
        help="If true, push local docker images into the cluster registry (not supported by tusk: "
        "it warns and goes on).",
    )(f)
    return click.option(
        "-f",
        "--file",
        "path",
        default="-",
        help="The file containing the pipeline, it can be a url or local file. - reads from stdin.",
    )(f)


def _warn_push(push_images: bool) -> None:
    if push_images:
        warn("--push-images is not supported by tusk (there is no image registry); continuing.")


@click.command("create-pipeline")
@_pipeline_file_options
def create_pipeline(
    path: str, push_images: bool, registry: str, username: str, password: str
) -> None:
    """Create a new pipeline.

    From a pipeline spec (JSON or YAML; several specs may stand in one file).
    """
    _warn_push(push_images)
    text, source = read_spec(path)
    _send_specs(text, source, update=False, reprocess=False)


@click.command("update-pipeline")
@_pipeline_file_options
@click.option(
    "--reprocess",
    is_flag=True,
    help="If true, reprocess datums that were already processed by previous version of the "
    "pipeline.",
)
def update_pipeline(
    path: str, push_images: bool, registry: str, username: str, password: str, reprocess: bool
) -> None:
    """Update an existing Pachyderm pipeline."""
    _warn_push(push_images)
    text, source = read_spec(path)
    _send_specs(text, source, update=True, reprocess=reprocess)


@click.command("edit-pipeline")
@click.argument("pipeline", metavar="pipeline-name")
@click.option(
    "--editor", default="", help="Editor to use for modifying the manifest ($EDITOR, else vi)."
)
@click.option(
    "--reprocess",
    is_flag=True,
    help="If true, reprocess datums that were already processed by previous version of the "
    "pipeline.",
)
def edit_pipeline(pipeline: str, editor: str, reprocess: bool) -> None:
    """Edit the manifest for a pipeline in your text editor."""
    original = render_json(reader().get(f"/pipelines/{repo_seg(pipeline)}/extract")) + "\n"
    fd, path = tempfile.mkstemp(prefix=f"{pipeline}-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(original)
        command = shlex.split(editor or os.environ.get("EDITOR") or "vi")
        try:
            code = subprocess.call([*command, path])
        except OSError as exc:
            raise InvalidArgument(
                f"could not start editor {command[0]}: {exc.strerror}",
                hint="pass --editor <program> or set $EDITOR",
            ) from None
        if code != 0:
            raise InvalidArgument(f"editor {command[0]} exited with {code}; nothing was changed")
        with open(path, encoding="utf-8") as fh:
            edited = fh.read()
    finally:
        os.unlink(path)
    if edited == original or _same_json(edited, original):
        click.echo("Pipeline unchanged, no update will be performed.")
        return
    _send_specs(edited, f"edit-pipeline {pipeline}", update=True, reprocess=reprocess)


def _same_json(a: str, b: str) -> bool:
    try:
        return bool(json.loads(a) == json.loads(b))
    except ValueError:
        return False


# -- pipelines: read ----------------------------------------------------------------------------
@click.command("extract-pipeline")
@click.argument("pipeline", metavar="pipeline-name")
def extract_pipeline(pipeline: str) -> None:
    """Return the manifest used to create a pipeline.

    As JSON, with the pipeline's salt.
    """
    echo_json(reader().get(f"/pipelines/{repo_seg(pipeline)}/extract"))


@click.command("inspect-pipeline")
@click.argument("pipeline", metavar="pipeline-name")
@raw_option
def inspect_pipeline(pipeline: str, raw: bool) -> None:
    """Return info about a pipeline."""
    info = reader().get(f"/pipelines/{repo_seg(pipeline)}")
    if raw:
        print_raw(info)
    else:
        out(pipeline_details(info))


@click.command("list-pipeline")
@click.option("-s", "--spec", is_flag=True, help="Output create-pipeline compatibility specs.")
@raw_option
def list_pipeline(spec: bool, raw: bool) -> None:
    """Return info about all pipelines."""
    infos: list[dict[str, Any]] = reader().get("/pipelines", project=current_project())
    if spec:
        for info in infos:
            echo_json(info["spec"])
        return
    if raw:
        print_raw(infos)
        return
    grammar = v2_grammar()
    if grammar is not None:
        from tusk.cli import v2_tables
        from tusk.cli.v2_raw import typed

        last: dict[str, str] = {}
        if infos:  # each pipeline's newest job (jobs come newest first)
            for job in reader().lines("/jobs"):
                last.setdefault(job["pipeline"], job["state"])
        full = grammar.full_timestamps
        rows_2 = [v2_tables.pipeline_row(i, last.get(i.name, "-"), full) for i in typed(infos)]
        out(print_table(v2_tables.PIPELINE_HEADER, rows_2))
        return
    rows = [
        (
            bare(i["name"]),
            i.get("input_summary", ""),
            f"{bare(i['name'])}/{i['spec'].get('output_branch') or 'master'}",
            ago(from_timestamp(i.get("created"))),
            i["state"],
        )
        for i in infos
    ]
    out(print_table(PIPELINE_HEADER, rows))


# -- pipelines: delete / start / stop -----------------------------------------------------------
@click.command("delete-pipeline")
@click.argument("pipeline", metavar="pipeline-name", required=False)
@click.option("--all", "all_", is_flag=True, help="delete all pipelines")
@click.option(
    "-f", "--force", is_flag=True, help="delete the pipeline regardless of errors; use with care"
)
def delete_pipeline(pipeline: str | None, all_: bool, force: bool) -> None:
    """Delete a pipeline.

    Its output repo and its jobs are deleted with it.
    """
    if pipeline and all_:
        raise InvalidArgument(
            "cannot use the --all flag with an argument",
            hint="tusk delete-pipeline <pipeline>, or tusk delete-pipeline --all",
        )
    if not pipeline and not all_:
        raise InvalidArgument(
            "either a pipeline name or the --all flag needs to be provided",
            hint="tusk delete-pipeline <pipeline>, or tusk delete-pipeline --all",
        )
    if pipeline:
        reader().send("DELETE", f"/pipelines/{repo_seg(pipeline)}", force=force or None)
    else:
        reader().send("DELETE", "/pipelines", force=force or None, project=current_project())


@click.command("start-pipeline")
@click.argument("pipeline", metavar="pipeline-name")
def start_pipeline(pipeline: str) -> None:
    """Restart a stopped pipeline.

    One job runs over the current inputs.
    """
    reader().send("POST", f"/pipelines/{repo_seg(pipeline)}/start")


@click.command("stop-pipeline")
@click.argument("pipeline", metavar="pipeline-name")
def stop_pipeline(pipeline: str) -> None:
    """Stop a running pipeline.

    No new jobs start until start-pipeline.
    """
    reader().send("POST", f"/pipelines/{repo_seg(pipeline)}/stop")


COMMANDS = [
    create_pipeline,
    update_pipeline,
    edit_pipeline,
    extract_pipeline,
    inspect_pipeline,
    list_pipeline,
    delete_pipeline,
    start_pipeline,
    stop_pipeline,
]
