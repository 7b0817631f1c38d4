"""Real processes: a tuskd server on a free port and the real CLI (``python -m tusk.cli.main``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

CLI = [sys.executable, "-m", "tusk.cli.main"]
CLEAN_ENV_KEYS = ("TUSK_ADDRESS", "PACHD_ADDRESS", "TUSK_AUTH_TOKEN", "TUSK_PROGRESS", "TUSK_HOME")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV_KEYS}
    env.update(extra)
    return env


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
        env=base_env(**(env or {})),
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


def wait_up(address: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"tuskd exited with {proc.returncode}")
        try:
            if httpx.get(address + "/v1/info", timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"tuskd did not answer at {address}")


def start_daemon(
    home: Path, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    port = free_port()
    address = f"http://127.0.0.1:{port}"
    env = {"TUSK_ADDRESS": address, "TUSK_HOME": str(home)}
    log = (home.parent / f"{home.name}-tuskd.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tusk.server.daemon", "--host", "127.0.0.1", "--port", str(port)],
        env=base_env(**env, **(extra_env or {})),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    log.close()
    try:
        wait_up(address, proc)
    except BaseException:
        stop_daemon(proc)
        raise
    return proc, env


def stop_daemon(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def tusk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real tuskd for the whole session; yields the env (TUSK_ADDRESS, TUSK_HOME) for the CLI."""
    home = tmp_path_factory.mktemp("tusk-home")
    proc, env = start_daemon(home)
    try:
        yield env
    finally:
        stop_daemon(proc)


Tusk = Callable[..., tuple[int, Any, str]]


@pytest.fixture
def tusk(tusk_server: dict[str, str]) -> Tusk:
    """``tusk("list-repo")`` -> (exit code, stdout, stderr) against the session server."""

    def call(*args: str, **kw: Any) -> tuple[int, Any, str]:
        env = {**tusk_server, **kw.pop("env", {})}
        return run(*args, env=env, **kw)

    return call
