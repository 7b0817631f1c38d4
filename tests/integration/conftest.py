"""Real processes: a tuskd server (``tusk.testing.Tuskd``) and the real CLI
(``python -m tusk.cli.main``)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tusk.testing import Tuskd, clean_env

CLI = [sys.executable, "-m", "tusk.cli.main"]


def run(
    *args: str,
    input: bytes | str | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | str | None = None,
    binary: bool = False,
    timeout: float = 60,
) -> tuple[int, Any, str]:
    """Run the CLI; return (exit code, stdout (str, or bytes with ``binary``), stderr)."""
    data = input.encode() if isinstance(input, str) else input
    proc = subprocess.run(
        [*CLI, *args],
        input=data if data is not None else b"",
        capture_output=True,
        env=clean_env(env),
        cwd=cwd,
        timeout=timeout,
    )
    out = proc.stdout if binary else proc.stdout.decode()
    return proc.returncode, out, proc.stderr.decode()


def rows(table: str) -> list[list[str]]:
    """Split a tabwriter table into cells (header included)."""
    return [line.split() for line in table.splitlines() if line.strip()]


def raw_objects(text: str) -> list[Any]:
    """Parse the JSON objects that --raw prints one after another."""
    dec = json.JSONDecoder()
    objs: list[Any] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        obj, pos = dec.raw_decode(text, pos)
        objs.append(obj)
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return objs


def ok(result: tuple[int, Any, str]) -> Any:
    """Assert a command succeeded (no traceback); its output."""
    code, out, err = result
    assert code == 0, err
    assert "Traceback" not in err
    return out


def fails(result: tuple[int, Any, str], code: int, message: str) -> str:
    """Assert a user error: exit code, the message on stderr, no traceback."""
    got, _, err = result
    assert got == code, err
    assert message in err, err
    assert "Traceback" not in err
    return err


def spec(name: str, cmd: str, inp: dict[str, Any], **extra: Any) -> str:
    """A pipeline spec running ``sh -c cmd`` over ``inp``."""
    return json.dumps(
        {"pipeline": {"name": name}, "transform": {"cmd": ["sh", "-c", cmd]}, "input": inp, **extra}
    )


def atom(repo: str, glob: str) -> dict[str, Any]:
    """A 1.7 atom input."""
    return {"atom": {"repo": repo, "glob": glob}}


@pytest.fixture(scope="session")
def tusk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real tuskd for the whole session; yields the env (TUSK_ADDRESS, TUSK_HOME) for the CLI."""
    # host mode: the tests run host programs (python, sh) as their pipelines' commands
    with Tuskd(tmp_path_factory.mktemp("tusk-home"), {"TUSK_RUNTIME": "host"}) as server:
        yield server.env


Tusk = Callable[..., tuple[int, Any, str]]


@pytest.fixture
def tusk(tusk_server: dict[str, str]) -> Tusk:
    """``tusk("list-repo")`` -> (exit code, stdout, stderr) against the session server."""

    def call(*args: str, **kw: Any) -> tuple[int, Any, str]:
        env = {**tusk_server, **kw.pop("env", {})}
        return run(*args, env=env, **kw)

    return call
