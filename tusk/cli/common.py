"""What every command module shares: the client of this invocation, ``repo/ref`` arguments,
``--raw`` and JSON output."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import click
from pydantic import BaseModel

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
        obj = Client(cfg.address, token=cfg.token)
        root.meta["tusk.client"] = obj
        root.call_on_close(obj.close)
    assert isinstance(obj, Client)
    return obj


def raw_option(f: F) -> F:
    """``--raw``: print the wire model(s) as JSON instead of the 1.7 text layout."""
    return click.option("--raw", is_flag=True, help="disable pretty printing, print raw json")(f)


@dataclass(frozen=True)
class Grammar2:
    """The root context's ``obj`` when the command line was in pachctl 2.x's grammar, with 2.x's
    display options: ``--full-timestamps`` and ``-o json|yaml`` (the form of ``--raw``)."""

    full_timestamps: bool = False
    output: str = "json"


def v2_grammar() -> Grammar2 | None:
    """2.x's display options when this invocation was spelled in pachctl 2.x's grammar
    (``list repo``); None for 1.7's grammar."""
    ctx = click.get_current_context(silent=True)
    obj = None if ctx is None else ctx.find_root().obj
    return obj if isinstance(obj, Grammar2) else None


def full_timestamps() -> bool:
    """Whether 2.x's ``--full-timestamps`` was given."""
    g = v2_grammar()
    return g is not None and g.full_timestamps


def print_raw(models: BaseModel | Iterable[BaseModel]) -> None:
    """One indented JSON object per model (pachctl concatenates them; we end each with a newline):
    1.7's jsonpb form, or 2.x's protojson form when the command was spelled in 2.x's grammar."""
    items = [models] if isinstance(models, BaseModel) else list(models)
    grammar = v2_grammar()
    if grammar is not None:
        from tusk.cli.v2_raw import print_messages

        print_messages(items, grammar.output)
        return
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


DEFAULT_PROJECT = "default"


def project_of(name: str) -> str:
    """The project a repo or pipeline is in, for 2.x's PROJECT column: always ``default`` on
    this server (the one place to connect once projects exist)."""
    del name
    return DEFAULT_PROJECT


def qualify(project: str | None, repo: str) -> str:
    """The repo (or pipeline) ``repo`` of ``project`` as this server names it. tusk has one
    project, ``default``; any other is refused here (the one place a project is resolved)."""
    if project in (None, "", DEFAULT_PROJECT):
        return repo
    raise InvalidArgument(
        f'project "{project}" not found: this server has one project, "{DEFAULT_PROJECT}"',
        hint=f"leave out --project, or pass --project {DEFAULT_PROJECT}",
    )
