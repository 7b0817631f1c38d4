"""What every command module shares: the client of this invocation (typed, for writes) and its
plain reader (for reads: no httpx, no pydantic), ``repo/ref`` arguments, ``--raw`` and JSON
output."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

from tusk.api.projects import DEFAULT_PROJECT
from tusk.api.projects import qualify as qualify_key
from tusk.cli.jsonpb import render_json
from tusk.client.config import ClientConfig
from tusk.client.local import ensure_server
from tusk.client.plain import PlainReader
from tusk.errors import InvalidArgument

if TYPE_CHECKING:
    from pydantic import BaseModel

    from tusk.client import Client

F = TypeVar("F", bound=Callable[..., Any])


def _config() -> ClientConfig:
    """The settings of this invocation; the local server is started (once) when none answers."""
    root = click.get_current_context().find_root()
    cfg = root.meta.get("tusk.config")
    if cfg is None:
        cfg = ClientConfig.from_env()
        ensure_server(cfg)
        root.meta["tusk.config"] = cfg
    assert isinstance(cfg, ClientConfig)
    return cfg


def client() -> Client:
    """The typed client of this invocation; starts a local server first when none answers."""
    from tusk.client import Client

    root = click.get_current_context().find_root()
    obj = root.meta.get("tusk.client")
    if obj is None:
        cfg = _config()
        obj = Client(cfg.address, token=cfg.token, project=current_project())
        root.meta["tusk.client"] = obj
        root.call_on_close(obj.close)
    assert isinstance(obj, Client)
    return obj


def reader() -> PlainReader:
    """The plain reader of this invocation (answers as JSON values, see
    :mod:`tusk.client.plain`). Its first request goes straight to the server; only when that
    connection is refused is a local server started (as :func:`client` does first)."""
    root = click.get_current_context().find_root()
    obj = root.meta.get("tusk.reader")
    if obj is None:
        cfg = ClientConfig.from_env()

        def start() -> None:
            if root.meta.get("tusk.config") is None:
                ensure_server(cfg)
                root.meta["tusk.config"] = cfg

        obj = PlainReader(cfg.address, token=cfg.token, when_refused=start)
        root.meta["tusk.reader"] = obj
        root.call_on_close(obj.close)
    assert isinstance(obj, PlainReader)
    return obj


def current_project() -> str:
    """The project of this invocation: ``--project`` (which sets ``TUSK_PROJECT``), else
    ``TUSK_PROJECT`` / ``PACH_PROJECT``, else ``default``."""
    return ClientConfig.from_env().project or DEFAULT_PROJECT


def qualify(project: str | None, repo: str) -> str:
    """The stored key of repo (or pipeline) ``repo`` in ``project`` (None: the invocation's
    current project): ``<project>/<repo>`` outside ``default``."""
    return qualify_key(project or current_project(), repo)


def repo_seg(repo: str) -> str:
    """Repo (or pipeline) ``repo`` of the current project as one segment of a route the plain
    reader is given (a project other than ``default`` is moved to the query there)."""
    return qualify(None, repo).replace("/", "%2F")


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


def print_raw(models: BaseModel | dict[str, Any] | Iterable[BaseModel | dict[str, Any]]) -> None:
    """One indented JSON object per model (pachctl concatenates them; we end each with a newline):
    1.7's jsonpb form, or 2.x's protojson form when the command was spelled in 2.x's grammar.

    A model may come as its JSON value already (a ``dict`` from the plain reader): the same text.
    Items of an iterable are printed as they come."""
    items: Iterable[Any] = (
        [models] if isinstance(models, dict) or hasattr(models, "model_dump") else models
    )
    grammar = v2_grammar()
    if grammar is not None:
        from tusk.cli.v2_raw import print_messages

        print_messages(items, grammar.output)
        return
    for m in items:
        value = m if isinstance(m, dict) else m.model_dump(mode="json")
        sys.stdout.write(render_json(value) + "\n")
    sys.stdout.flush()


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


def project_of(name: str) -> str:
    """The project a repo or pipeline (its stored key) is in, for 2.x's PROJECT column."""
    from tusk.api.projects import project_of as key_project

    return key_project(name)
