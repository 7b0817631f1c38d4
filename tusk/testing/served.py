"""A server subprocess (an S3, GCS or Azure Blob Storage emulator) on a free 127.0.0.1 port:
``start`` returns once it answers HTTP, and a server that cannot start raises with its log."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from tusk.testing.process import clean_env, free_port, log_tail, stop_process, wait_for


class ServedProcess(ABC):
    """One server process; subclasses say how to run it and which path answers once it serves."""

    name: ClassVar[str]  # its log is ``<log_dir>/<name>.log``
    probe: ClassVar[str] = "/"

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.log_path = log_dir / f"{self.name}.log"
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @abstractmethod
    def command(self) -> list[str]:
        """The command line that serves on ``self.port``."""

    def process_env(self) -> dict[str, str]:
        """The server's environment."""
        return clean_env()

    def start(self, timeout: float = 30.0) -> None:
        # The port may be taken between choosing and binding it; then try another.
        for _ in range(3):
            self.port = free_port()
            with open(self.log_path, "ab") as log:
                self._proc = subprocess.Popen(
                    self.command(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=self.process_env(),
                    cwd=self.log_dir,  # whatever it writes beside its log stays there
                )
            try:
                if wait_for(f"{self.name} to answer", self._answering_or_exited, timeout) == "up":
                    return
            except AssertionError:
                pass
            self.stop()
        raise RuntimeError(f"{self.name} did not start; its log:\n{log_tail(self.log_path)}")

    def _answering_or_exited(self) -> str | None:
        assert self._proc is not None
        if self._proc.poll() is not None:
            return "exited"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            opener.open(self.endpoint + self.probe, timeout=1).close()
        except urllib.error.HTTPError:
            pass  # any HTTP answer means it is serving
        except OSError:
            return None
        return "up"

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process(proc, timeout=10)

    def __enter__(self) -> ServedProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
