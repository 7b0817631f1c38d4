"""Secret commands (pachctl 2.x's, as 1.7 left secrets to kubectl): create-secret, list-secret,
inspect-secret and delete-secret; ``pachctl create secret`` and the other two-word spellings
reach the same commands. No command prints a secret's values."""

from __future__ import annotations

import sys

import click

from tusk.cli.common import out, print_raw, raw_option, reader
from tusk.cli.tables import print_table
from tusk.cli.units import ago, from_timestamp
from tusk.errors import SourceUnavailable

SECRET_HEADER = ("NAME", "TYPE", "CREATED")


def _read_manifest(path: str) -> tuple[str, str]:
    if path == "-":
        return sys.stdin.read(), "stdin"
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read(), path
    except OSError as exc:
        raise SourceUnavailable(
            f"could not read secret manifest {path}: {exc.strerror}",
            hint="pass a Kubernetes Secret manifest with -f <file> (or - for stdin)",
        ) from None


@click.command("create-secret")
@click.option(
    "-f", "--file", "path", required=True, help="A Kubernetes Secret manifest (JSON or YAML)."
)
def create_secret(path: str) -> None:
    """Create a secret from a Kubernetes Secret manifest."""
    text, source = _read_manifest(path)
    reader().send("POST", "/secrets", {"manifest": text, "source": source})


@click.command("list-secret")
@raw_option
def list_secret(raw: bool) -> None:
    """List every secret: its name, type and creation time."""
    infos = reader().get("/secrets")
    if raw:
        print_raw(infos)
        return
    rows = [(i["name"], i["type"], ago(from_timestamp(i["created"]))) for i in infos]
    out(print_table(SECRET_HEADER, rows))


@click.command("inspect-secret")
@click.argument("name")
@raw_option
def inspect_secret(name: str, raw: bool) -> None:
    """Show a secret's name, type, creation time and key names (never its values)."""
    info = reader().get(f"/secrets/{name}")
    if raw:
        print_raw(info)
        return
    keys = ", ".join(info.get("keys") or ())
    created = ago(from_timestamp(info["created"]))
    out(f"Name: {info['name']}\nType: {info['type']}\nCreated: {created}\nKeys: {keys}\n")


@click.command("delete-secret")
@click.argument("name")
def delete_secret(name: str) -> None:
    """Delete a secret."""
    reader().send("DELETE", f"/secrets/{name}")


COMMANDS = [create_secret, list_secret, inspect_secret, delete_secret]
