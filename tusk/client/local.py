"""Finding, starting and stopping the local server for the CLI (``tusk up/down/status``)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from tusk.client.config import DEFAULT_ADDRESS, ClientConfig
from tusk.client.plain import is_up
from tusk.errors import ServerUnavailable

__all__ = ["ensure_server", "is_up", "pid_of", "start_server", "stop_server"]


def start_server(cfg: ClientConfig, wait: float = 60.0, grpc_port: int | None = None) -> int:
    """Start tuskd in the background for ``cfg``'s local address (its gRPC API on the same
    port, or on ``grpc_port``); return its pid."""
    import subprocess  # here: only starting a server needs it, and every CLI start would pay

    url = urlparse(cfg.address)
    host, port = url.hostname or "127.0.0.1", url.port or 30650
    cfg.home.mkdir(parents=True, exist_ok=True)
    log = (cfg.home / "tuskd.log").open("ab")
    env = {**os.environ, "TUSK_HOME": str(cfg.home)}
    proc = subprocess.Popen(
        # -P and the home as cwd: a tusk/ folder where the user stands must not shadow tusk
        [sys.executable, "-P", "-m", "tusk.server.daemon", "--host", host, "--port", str(port)]
        + (["--grpc-port", str(grpc_port)] if grpc_port else []),
        cwd=cfg.home,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            said = _last_line(cfg.home / "tuskd.log")
            raise ServerUnavailable(
                f"tuskd exited at start (code {proc.returncode})" + (f": {said}" if said else ""),
                hint=f"see {cfg.home / 'tuskd.log'}",
            )
        if is_up(cfg.address, cfg.token, timeout=2.0):
            return proc.pid
        time.sleep(0.05)
    raise ServerUnavailable("tuskd did not answer in time", hint=f"see {cfg.home / 'tuskd.log'}")


def _last_line(log: Path) -> str:
    try:
        with log.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            lines = f.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].removeprefix("tuskd: ") if lines else ""


def ensure_server(cfg: ClientConfig, announce: bool = True) -> None:
    """Start a local server when none answers at the default local address."""
    if is_up(cfg.address, cfg.token):
        return
    if cfg.explicit_address and cfg.address.rstrip("/") != DEFAULT_ADDRESS:
        raise ServerUnavailable(
            f"no tusk server answers at {cfg.address}",
            hint="check TUSK_ADDRESS, or unset it to use a local server",
        )
    start_server(cfg)
    if announce:
        print(
            f"tusk: started a local server at {cfg.address} (data in {cfg.home})",
            file=sys.stderr,
        )


def pid_of(home: Path) -> int | None:
    """The pid the server of ``home`` recorded, if any."""
    try:
        return int((home / "tuskd.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def stop_server(cfg: ClientConfig, wait: float = 30.0) -> bool:
    """Stop the server of ``cfg.home`` (SIGTERM, then SIGKILL after ``wait``); False if none ran."""
    import signal  # here: every CLI command imports this module, few stop a server

    pid = pid_of(cfg.home)
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return True
