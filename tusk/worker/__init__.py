"""The stateless datum worker: runs one datum task at a time, in-process or as a process.

``python -m tusk.worker --name pipeline-<name>-v<version>-<xxxxx>`` reads one
:class:`DatumTask` per line (JSON) on stdin and writes one :class:`DatumResult` per line on stdout;
:func:`run_datum` does the same in-process. A worker's settings come from its own environment,
read in one place: :mod:`tusk.worker.settings`.
"""

from __future__ import annotations

import atexit
from typing import Any

from tusk.worker.datum import Worker
from tusk.worker.protocol import (
    DatumInput,
    DatumResult,
    DatumTask,
    InputFile,
    LogLine,
    OutputFile,
)
from tusk.worker.settings import WorkerSettings

__all__ = [
    "DatumInput",
    "DatumResult",
    "DatumTask",
    "InputFile",
    "LogLine",
    "OutputFile",
    "Worker",
    "WorkerSettings",
    "run_datum",
    "worker_from_environ",
]

_default: Worker | None = None


def worker_from_environ(name: str = "", **overrides: Any) -> Worker:
    """A worker set up from this process's environment (see :mod:`tusk.worker.settings`),
    then ``overrides`` of its settings."""
    return Worker(name, settings=WorkerSettings.from_environ(**overrides))


def run_datum(task: DatumTask) -> DatumResult:
    """Run one datum task in this process (object stores are opened once and reused)."""
    global _default
    if _default is None:
        _default = worker_from_environ()
        atexit.register(_default.close)
    return _default.run(task)
