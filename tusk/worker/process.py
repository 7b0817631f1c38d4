"""A user command's output as log lines: bytes of stdout or stderr, split into timestamped lines.

The agent in the sandbox streams the command's output as it comes (see
:mod:`tusk.worker.runtimes.agent`); the worker splits it here, keeping at most MAX_LINE_BYTES of
each line.
"""

from __future__ import annotations

from tusk.worker.protocol import LogLine, LogStream

MAX_LINE_BYTES = 64 << 10


class LineSplitter:
    """Bytes of one stream → timestamped lines of at most MAX_LINE_BYTES (the rest is dropped)."""

    __slots__ = ("stream", "logs", "buf", "dropping")

    def __init__(self, stream: LogStream, logs: list[LogLine]) -> None:
        self.stream: LogStream = stream
        self.logs = logs
        self.buf = bytearray()
        self.dropping = False  # inside an over-long line, past its first MAX_LINE_BYTES

    def feed(self, data: bytes, now: float) -> None:
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            self._add(data[start:end])
            self._emit(now)
            self.dropping = False
            start = end + 1
        if start < len(data):
            self._add(data[start:])
            if len(self.buf) >= MAX_LINE_BYTES and not self.dropping:
                self._emit(now)
                self.dropping = True

    def _add(self, part: bytes) -> None:
        if not self.dropping:
            self.buf += part[: MAX_LINE_BYTES - len(self.buf)]

    def _emit(self, now: float) -> None:
        if self.dropping:
            return
        line = self.buf.decode("utf-8", "replace")
        self.buf.clear()
        self.logs.append((now, self.stream, line))

    def close(self, now: float) -> None:
        if self.buf and not self.dropping:
            self._emit(now)
