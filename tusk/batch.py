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
process per datum, and keeps its connection from one datum to the next.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Callable, Iterator
from typing import Any

SOCKET_VARIABLE = "TUSK_NEXT_DATUM_SOCKET"
MAX_REQUEST = 65532  # bytes of a request the agent reads (a longer error message is cut)


class NoDatumLeft(Exception):
    """The worker answered without a datum (it ends the process right after)."""


class _Connection:
    """The connection to the agent, kept from one datum to the next (one per process: a child
    made by fork opens its own)."""

    sock: socket.socket | None = None
    pid = 0

    @classmethod
    def open(cls, path: str) -> socket.socket:
        if cls.sock is not None and cls.pid == os.getpid():
            return cls.sock
        cls.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            sock.sendall(b"P")  # a kept connection: framed requests and answers
        except OSError:
            sock.close()
            raise
        cls.sock, cls.pid = sock, os.getpid()
        return sock

    @classmethod
    def close(cls) -> None:
        sock, cls.sock = cls.sock, None
        if sock is not None and cls.pid == os.getpid():
            sock.close()


def _ask(path: str, request: bytes) -> bytes | None:
    """Send ``request`` on the kept connection and return the answer; None when the agent
    closed the connection before answering (it took no request from it)."""
    sock = _Connection.open(path)
    try:
        sock.sendall(request)
        reply = sock.recv(65536)
        if len(reply) < 4:
            while reply and len(reply) < 4:
                part = sock.recv(65536)
                if not part:
                    break
                reply += part
            if len(reply) < 4:
                raise ConnectionResetError
        want = 4 + int.from_bytes(reply[:4], "little")
        while len(reply) < want:
            part = sock.recv(65536)
            if not part:
                raise ConnectionResetError
            reply += part
    except (ConnectionResetError, BrokenPipeError):
        _Connection.close()
        return None
    return reply[4:want]


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
    body = (b"e" + error.encode("utf-8", "replace"))[:MAX_REQUEST] if error else b"n"
    request = len(body).to_bytes(4, "little") + body
    cpus = os.sched_getaffinity(0)
    # The agent closes a connection waiting between requests when another client connects
    # (`pachctl next datum` in a subprocess, say): the request was not taken, so it goes again.
    reply = _ask(path, request)
    if reply is None:
        reply = _ask(path, request)
    if reply is None or reply[:1] not in (b"d", b"D"):
        raise NoDatumLeft("no datum left")
    if reply[:1] == b"D":  # held on the agent's CPU to be woken there (a quick datum)
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, cpus)  # its CPUs back before the datum's code runs
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
