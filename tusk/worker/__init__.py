"""The stateless datum worker: runs one datum task at a time, in-process or as a process.

``python -m tusk.worker --name pipeline-<name>-v<version>-<xxxxx>`` reads one
:class:`DatumTask` per line (JSON) on stdin and writes one :class:`DatumResult` per line on stdout;
:func:`run_datum` does the same in-process.
"""

from __future__ import annotations

import os

from tusk.worker.datum import Worker
from tusk.worker.protocol import (
    DatumInput,
    DatumResult,
    DatumTask,
    InputFile,
    LogLine,
    OutputFile,
)

__all__ = [
    "DatumInput",
    "DatumResult",
    "DatumTask",
    "InputFile",
    "LogLine",
    "OutputFile",
    "Worker",
    "run_datum",
    "worker_from_environ",
]

SCRATCH_ENV = "TUSK_WORKER_SCRATCH"

_default: Worker | None = None


def worker_from_environ(name: str = "") -> Worker:
    """A worker whose scratch dirs go under ``$TUSK_WORKER_SCRATCH`` (else the temp dir)."""
    return Worker(name, scratch_root=os.environ.get(SCRATCH_ENV) or None)


def run_datum(task: DatumTask) -> DatumResult:
    """Run one datum task in this process (object stores are opened once and reused)."""
    global _default
    if _default is None:
        _default = worker_from_environ()
    return _default.run(task)
