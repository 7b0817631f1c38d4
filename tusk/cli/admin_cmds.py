"""pachctl 1.7's whole-deployment commands: version, inspect-cluster, delete-all,
garbage-collect, extract and restore."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from typing import Any

import click

from tusk import __version__
from tusk.cli.common import client, echo_json, out, raw_option
from tusk.cli.tables import TabWriter
from tusk.cli.units import bytes_size
from tusk.client import Client
from tusk.client.config import ClientConfig
from tusk.errors import InvalidArgument, ServerUnavailable, SourceUnavailable

READ_BLOCK = 1 << 20


def _components() -> tuple[str, str]:
    """(client, server) names as the user called the CLI: pachctl/pachd or tusk/tuskd."""
    prog = click.get_current_context().find_root().info_name or "tusk"
    return ("pachctl", "pachd") if prog == "pachctl" else ("tusk", "tuskd")


def version_json(text: str) -> dict[str, Any]:
    """A version string as 1.7's Version message (``major``, ``minor``, ``micro``,
    ``additional``; zero values left out, as jsonpb does)."""
    m = re.match(r"(\d+)\.(\d+)\.(\d+)(.*)", text)
    major, minor, micro, extra = m.groups() if m else ("0", "0", "0", text)
    doc = {"major": int(major), "minor": int(minor), "micro": int(micro), "additional": extra}
    return {k: v for k, v in doc.items() if v}


@click.command("version")
@click.option(
    "--client-only",
    is_flag=True,
    help="If set, only print the CLI's version, but don't ask the server. Useful if the server "
    "is unavailable.",
)
@raw_option
def version(client_only: bool, raw: bool) -> None:
    """Return version information.

    Prints a COMPONENT VERSION table: the CLI (pachctl, or tusk) and the server (pachd, or
    tuskd). Unlike other commands, version never starts a local server.
    """
    cli_name, server_name = _components()
    if client_only:
        if raw:
            echo_json(version_json(__version__))
        else:
            click.echo(__version__)
        return
    writer = TabWriter(20, 1, 3)
    if raw:
        echo_json(version_json(__version__))
    else:
        writer.write(f"COMPONENT\tVERSION\t\n{cli_name}\t{__version__}\t\n")
        out(writer.flush())
    cfg = ClientConfig.from_env()
    try:
        with Client(cfg.address, token=cfg.token, timeout=10) as c:
            info = c.info()
    except ServerUnavailable as err:
        raise ServerUnavailable(
            f"{server_name} (version unknown): {err.message}",
            hint="make sure the server is up (`tusk status`, `tusk up`) and TUSK_ADDRESS is right",
        ) from None
    if raw:
        echo_json(version_json(info.version))
    else:
        writer.write(f"{server_name}\t{info.version}\t\n")
        out(writer.flush())


@click.command("inspect-cluster")
def inspect_cluster() -> None:
    """Returns info about the pachyderm cluster (its id)."""
    click.echo(client().admin.inspect_cluster().id)


@click.command("delete-all")
@click.option(
    "-f", "--force", is_flag=True, help="Don't ask for confirmation (tusk addition, for scripts)."
)
def delete_all(force: bool) -> None:
    """Delete everything.

    Delete all repos, commits, files, pipelines and jobs. This resets the cluster to its initial
    state. Asks for confirmation on stdin (y or Y) unless --force. The data stays in the object
    store until garbage-collect.
    """
    c = client()
    if not force:
        repos = [r.name for r in c.list_repo()]
        pipelines = [p.name for p in c.list_pipeline()]
        red = [click.style(n, fg="red") for n in repos]
        click.echo(
            "Are you sure you want to delete all ACLs, repos, commits, files, pipelines and "
            "jobs?\nyN"
        )
        if repos:
            click.echo(f"Repos to delete: {', '.join(red)}")
        if pipelines:
            click.echo(
                f"Pipelines to delete: {', '.join(click.style(n, fg='red') for n in pipelines)}"
            )
        answer = sys.stdin.readline()
        if not answer:
            raise InvalidArgument(
                "no answer on stdin; nothing was deleted",
                hint="answer y to confirm, or pass --force",
            )
        if answer[:1] not in ("y", "Y"):
            return
    c.admin.delete_all()


@click.command("garbage-collect")
@click.option(
    "-m",
    "--memory",
    default="0",
    help="The amount of memory to use during garbage collection (accepted; tusk keeps an "
    "exact set of the objects in use, not a bloom filter).",
)
def garbage_collect(memory: str) -> None:
    """Garbage collect unused data.

    Deletes the objects that no commit, file or stored datum output uses any more (left behind
    by delete-commit, delete-repo, delete-pipeline and delete-all). Refused while jobs run; as in
    Pachyderm, do not run put-file at the same time.
    """
    result = client().admin.garbage_collect()
    click.echo(
        f"deleted {result.objects_deleted} unused objects ({bytes_size(result.bytes_deleted)}), "
        f"kept {result.objects_kept}",
        err=True,
    )


@click.command("extract")
@click.option(
    "--no-objects",
    is_flag=True,
    help="Don't extract from object storage, only extract the metadata (repos, commits, "
    "branches, pipelines, jobs); restore it into a server that shares this object store.",
)
@click.option(
    "-u",
    "--url",
    default="",
    help="An object storage url, i.e. s3://bucket/path (or gs://, wasb://, as://, file:///path), to extract to.",
)
@click.option(
    "-f", "--file", "path", default="", help="Write to this file instead of stdout (tusk addition)."
)
def extract(no_objects: bool, url: str, path: str) -> None:
    """Extract Pachyderm state to stdout or a file.

    Everything the server holds is written as one stream: repos, commits with their files,
    branches, provenance, pipelines with every version, and job history. The format is tusk's
    own (docs/extract.md), not 1.7's; `restore` reads it into an empty tusk server.

    \b
    # Extract into a local file:
    tusk extract > backup
    tusk extract -f backup

    \b
    # Extract to s3 (with the CLI's AWS credentials; the upload completes only when the
    # whole stream is sent; gs:// and wasb:// alike):
    tusk extract -u s3://bucket/backup
    """
    from tusk.cli import url_streams

    if url and path:
        raise InvalidArgument("extract takes -u or -f, not both", hint="pick one destination")
    if url:
        url_streams.check_destination(url)  # a bad URL fails before the server is asked
    blocks = client().admin.extract(objects=not no_objects)
    if url:
        url_streams.write_url(url, blocks)
    elif path:
        url_streams.write_file(path, blocks)
    else:
        stdout = sys.stdout.buffer
        for block in blocks:
            stdout.write(block)
        stdout.flush()


def _read_blocks(path: str) -> Iterator[bytes]:
    if path in ("", "-"):
        stdin = sys.stdin.buffer
        while block := stdin.read(READ_BLOCK):
            yield block
        return
    with open(path, "rb") as fh:
        while block := fh.read(READ_BLOCK):
            yield block


@click.command("restore")
@click.option(
    "-u",
    "--url",
    default="",
    help="An object storage url, i.e. s3://bucket/path (or gs://, wasb://, as://, file:///path), to restore from.",
)
@click.option(
    "-f", "--file", "path", default="", help="Read from this file instead of stdin (tusk addition)."
)
def restore(url: str, path: str) -> None:
    """Restore Pachyderm state from stdin or a file.

    Recreates what `extract` wrote in an empty tusk server (a fresh TUSK_HOME, or after
    delete-all); a server holding anything is refused and left as it was.

    \b
    # Restore from a local file:
    tusk restore < backup
    tusk restore -f backup

    \b
    # Restore from s3 (with the CLI's AWS credentials; gs:// and wasb:// alike):
    tusk restore -u s3://bucket/backup
    """
    from tusk.cli import url_streams

    if url and path:
        raise InvalidArgument("restore takes -u or -f, not both", hint="pick one source")
    if path and not os.path.isfile(path):
        raise SourceUnavailable(f"open {path}: no such file", hint="check the -f path")
    blocks = url_streams.read_url(url) if url else _read_blocks(path)
    result = client().admin.restore(blocks)
    rows = result.rows
    click.echo(
        f"restored {rows.get('repos', 0)} repos, {rows.get('commits', 0)} commits, "
        f"{rows.get('pipelines', 0)} pipelines, {rows.get('jobs', 0)} jobs and "
        f"{result.objects} objects",
        err=True,
    )


COMMANDS = [version, inspect_cluster, delete_all, garbage_collect, extract, restore]
