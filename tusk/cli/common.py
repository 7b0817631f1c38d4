"""What every command module shares: the client of this invocation, ``repo/ref`` arguments,
``--raw`` and JSON output."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click
from pydantic import BaseModel

from tusk.api.projects import DEFAULT_PROJECT
from tusk.api.projects import qualify as qualify_key
from tusk.cli.jsonpb import render_json
from tusk.client import Client
from tusk.client.config import ClientConfig
from tusk.client.local import ensure_server
from tusk.errors import InvalidArgument

F = TypeVar("F", bound=Callable[..., Any])


def client() -> Client:
    """The client of this invocation; starts a local server first when none answers."""
    ctx = click.get_current_context()
    root = ctx.find_root()
    obj = root.meta.get("tusk.client")
    if obj is None:
        cfg = ClientConfig.from_env()
        ensure_server(cfg)
        obj = Client(cfg.address, token=cfg.token, project=current_project())
        root.meta["tusk.client"] = obj
        root.call_on_close(obj.close)
    assert isinstance(obj, Client)
    return obj


def current_project() -> str:
    """The project of this invocation: ``--project`` (which sets ``TUSK_PROJECT``), else
    ``TUSK_PROJECT`` / ``PACH_PROJECT``, else ``default``."""
    return ClientConfig.from_env().project or DEFAULT_PROJECT


def qualify(project: str | None, repo: str) -> str:
    """The stored key of repo (or pipeline) ``repo`` in ``project`` (None: the invocation's
    current project): ``<project>/<repo>`` outside ``default``."""
    return qualify_key(project or current_project(), repo)


def raw_option(f: F) -> F:
    """``--raw``: print the wire model(s) as JSON instead of the 1.7 text layout."""
    return click.option("--raw", is_flag=True, help="disable pretty printing, print raw json")(f)


def print_raw(models: BaseModel | Iterable[BaseModel]) -> None:
    """One indented JSON object per model (pachctl concatenates them; we end each with a newline)."""
    items = [models] if isinstance(models, BaseModel) else list(models)
    for m in items:
        click.echo(render_json(m.model_dump(mode="json")))


def echo_json(obj: Any) -> None:
    """One plain JSON value (a PPS answer) in the ``--raw`` layout."""
    click.echo(render_json(obj))


def repo_ref(
    text: str, *, what: str = "commit", ref: str = "commit", hint: str = "e.g. images/master"
) -> tuple[str, str]:
    """``repo/<ref>`` from the command line (the ref a branch or a commit id)."""
    repo, sep, name = text.partition("/")
    if not sep or not repo or not name:
        raise InvalidArgument(f"invalid {what} {text!r}: expected repo/{ref}", hint=hint)
    return repo, name


def out(text: str) -> None:
    """Write already formatted text (tables end in a newline) to stdout."""
    sys.stdout.write(text)
    sys.stdout.flush()


def warn(message: str) -> None:
    click.echo(message, err=True)


def program_name() -> str:
    """``pachctl`` when the user ran the CLI under that name, else ``tusk``."""
    name = os.path.basename(sys.argv[0])
    return "pachctl" if name == "pachctl" else "tusk"


_TUSK_COMMAND = re.compile(r"(^|[`'\"(]|\s)tusk(?= [a-z])")


def for_program(text: str) -> str:
    """A hint's ``tusk <command>`` spelled with the program the user ran (``pachctl …``)."""
    prog = program_name()
    if prog == "tusk":
        return text
    return _TUSK_COMMAND.sub(lambda m: f"{m.group(1)}{prog}", text)
