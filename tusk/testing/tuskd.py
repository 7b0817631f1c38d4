"""A real tuskd process (``python -m tusk.server.daemon``) for tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from tusk.client import Client
from tusk.testing.process import (
    clean_env,
    descendants,
    free_port,
    kill_tree,
    log_tail,
    stop_process,
)


class Tuskd:
    """tuskd over ``home`` on a free 127.0.0.1 port; its output goes to ``<home>-tuskd.log``
    beside ``home``. ``start`` returns once ``/v1/info`` answers and may be called again after
    ``stop`` or ``kill`` to restart on the same home (on a new port).

    ``env`` is added to a clean environment (see ``clean_env``); ``args`` to the daemon's command
    line. With ``new_session`` the server leads a session of its own, and ``kill`` and ``stop``
    also end everything it started (its workers), as when its machine goes away."""

    def __init__(
        self,
        home: Path,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        *,
        token: str | None = None,
        new_session: bool = False,
    ) -> None:
        self.home = home
        self.extra_env = dict(env or {})
        self.args = list(args)
        self.token = token
        self.new_session = new_session
        self.log = home.parent / f"{home.name}-tuskd.log"
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    # -- where it is ------------------------------------------------------------------------------
    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise RuntimeError("tuskd is not started")
        return self._proc

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def env(self) -> dict[str, str]:
        """What the CLI needs to talk to this server: address, home (and token)."""
        env = {"TUSK_ADDRESS": self.address, "TUSK_HOME": str(self.home)}
        if self.token:
            env["TUSK_AUTH_TOKEN"] = self.token
        return env

    def client(self, timeout: float = 300.0) -> Client:
        """A new ``tusk.Client`` for this server (the caller closes it)."""
        return Client(self.address, token=self.token, timeout=timeout)

    def info(self) -> dict[str, Any]:
        """``GET /v1/info``."""
        response = httpx.get(self.address + "/v1/info", headers=self._headers(), timeout=5)
        response.raise_for_status()
        return dict(response.json())

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log, lines)

    # -- life cycle -------------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> Tuskd:
        """Spawn the server and wait until it answers; a server that exits or stays silent is
        stopped and reported with the tail of its log."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        env = clean_env(self.extra_env, TUSK_HOME=str(self.home))
        if self.token:
            env["TUSK_AUTH_TOKEN"] = self.token
        argv = [sys.executable, "-m", "tusk.server.daemon", "--host", "127.0.0.1"]
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                [*argv, "--port", str(self.port), *self.args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=self.new_session,
            )
        try:
            self._wait_answering(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_answering(self, timeout: float) -> None:
        proc = self.proc
        with httpx.Client(headers=self._headers(), timeout=0.5) as http:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"tuskd exited with {proc.returncode}; its log:\n{self.log_tail()}"
                    )
                try:
                    if http.get(self.address + "/v1/info").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"tuskd did not answer at {self.address} in {timeout:g}s; its log:\n"
                        f"{self.log_tail()}"
                    )
                time.sleep(0.05)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; with ``new_session``, whatever the
        server started and left behind is killed too."""
        proc = self._proc
        if proc is None:
            return
        started = descendants(proc.pid) if self.new_session and proc.poll() is None else set()
        stop_process(proc, timeout)
        for pid in started:  # stragglers only; a clean stop has already ended them
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL the server (with ``new_session``, its whole session and descendants)."""
        proc = self.proc
        if proc.poll() is None:
            if self.new_session:
                kill_tree(proc.pid, group=True)
            else:
                proc.kill()
        proc.wait(30)

    def __enter__(self) -> Tuskd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
