"""Datum batching for Python user code: many datums in one process (``transform.datum_batching``).

Standalone on purpose (the standard library only): tusk puts this file into every batching
sandbox as ``tusk_batch`` on ``PYTHONPATH``, so it works in any image that has python3, with or
without tusk installed (where tusk is installed, ``tusk.batch`` is the same module).

    import tusk_batch

    for datum in tusk_batch.datums():        # /pfs holds the next datum at each turn
        process(os.environ["images"])        # this datum's input path, as in Pachyderm
        # an exception ends the loop; to fail one datum and go on: datum.fail("why")

    @tusk_batch.batch_all_datums             # pachyderm_sdk's decorator, same behaviour
    def main() -> None: ...

Each call tells the worker that the previous datum is done (or failed, with its message) and
returns once the next datum's files are in /pfs, its variables in ``os.environ``. When no datum
is left the worker ends the process, so code after the loop does not run. It speaks the same
protocol as ``pachctl next datum`` in the sandbox (a unix socket of the sandbox), without a
process per datum.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Iterator
from typing import Any

SOCKET_VARIABLE = "TUSK_NEXT_DATUM_SOCKET"


class NoDatumLeft(Exception):
    """The worker answered without a datum (it ends the process right after)."""


def next_datum(error: str = "") -> dict[str, str]:
    """Report the current datum done (``error`` empty) or failed, and wait for the next one.

    Returns the next datum's variables (also set in ``os.environ``).
    """
    path = os.environ.get(SOCKET_VARIABLE)
    if not path:
        raise RuntimeError(
            f"{SOCKET_VARIABLE} is not set: next_datum works only in user code of a pipeline "
            "with transform.datum_batching"
        )
    for stream in (sys.stdout, sys.stderr):  # what this datum printed goes into its logs
        stream.flush()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(path)
        conn.sendall(b"e" + error.encode("utf-8", "replace") if error else b"n")
        conn.shutdown(socket.SHUT_WR)
        parts = []
        while True:
            part = conn.recv(65536)
            if not part:
                break
            parts.append(part)
    reply = b"".join(parts)
    if not reply.startswith(b"d"):
        raise NoDatumLeft("no datum left")
    env: dict[str, str] = {}
    for entry in reply[1:].split(b"\x00"):
        name, sep, value = entry.decode("utf-8", "replace").partition("=")
        if sep:
            env[name] = value
    os.environ.update(env)
    return env


class Datum:
    """The datum being processed: its variables; :meth:`fail` marks it failed."""

    __slots__ = ("env", "error")

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.error = ""

    @property
    def id(self) -> str:
        """Its id (``PACH_DATUM_ID``)."""
        return self.env.get("PACH_DATUM_ID", "")

    def fail(self, message: str) -> None:
        """Report this datum failed with ``message`` when the next one is asked for."""
        self.error = message or "failed"


def datums() -> Iterator[Datum]:
    """Every datum of this worker, one at a time; never returns (the worker ends the process
    when none is left)."""
    error = ""
    while True:
        datum = Datum(next_datum(error))
        yield datum
        error = datum.error


def batch_all_datums(user_code: Callable[..., Any]) -> Callable[..., None]:
    """Call ``user_code`` once per datum; an exception it raises fails that datum (its message
    is the datum's error) and the next datum follows."""

    def wrapper(*args: Any, **kwargs: Any) -> None:
        error = ""
        while True:
            next_datum(error)
            error = ""
            try:
                user_code(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - reported as the datum's failure
                print(f"{type(e).__name__}: {e}", file=sys.stderr)
                error = f"{type(e).__name__}: {e}"

    wrapper.__name__ = getattr(user_code, "__name__", "wrapper")
    wrapper.__doc__ = user_code.__doc__
    return wrapper
