"""Framing of the put-file request body, so one HTTP request streams any number of files.

A frame is one type byte, a 4-byte big-endian length and the payload:

    H  header (JSON: path, overwrite, split, target_datums, target_bytes) - starts a file
    D  data of the current file (any number of frames)
    E  end of the current file
    Z  commit (JSON: description) - the last frame; a stream without it stores nothing
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from typing import Any

from tusk.errors import InvalidArgument

_HEAD = struct.Struct(">cI")
HEADER, DATA, END, COMMIT = b"H", b"D", b"E", b"Z"
MAX_FRAME = 64 << 20


def frame_head(kind: bytes, length: int) -> bytes:
    """The 5 header bytes of a frame, for senders that write a large payload without copying."""
    return _HEAD.pack(kind, length)


def frame(kind: bytes, payload: bytes | memoryview = b"") -> bytes:
    return _HEAD.pack(kind, len(payload)) + bytes(payload)


def header_frame(path: str, **options: Any) -> bytes:
    return frame(HEADER, json.dumps({"path": path, **options}).encode())


def commit_frame(description: str = "") -> bytes:
    return frame(COMMIT, json.dumps({"description": description}).encode())


class FrameParser:
    """Incremental parser: feed it the body as it arrives, get frames back.

    Data frames are passed through in pieces as they arrive (views of the received bytes, never
    copied); consecutive ``D`` pieces simply continue the current file. Other frames are small and
    are returned whole.
    """

    def __init__(self) -> None:
        self._head = bytearray()
        self._kind = b""
        self._length = 0
        self._payload = bytearray()
        self._data_left = 0

    def feed(self, data: bytes) -> Iterator[tuple[bytes, bytes | memoryview]]:
        view = memoryview(data)
        pos, n = 0, len(view)
        while pos < n:
            if self._data_left:
                take = min(self._data_left, n - pos)
                yield DATA, view[pos : pos + take]
                self._data_left -= take
                pos += take
                continue
            if not self._kind:
                take = min(_HEAD.size - len(self._head), n - pos)
                self._head += view[pos : pos + take]
                pos += take
                if len(self._head) < _HEAD.size:
                    break
                kind, length = _HEAD.unpack(self._head)
                self._head.clear()
                if kind not in (HEADER, DATA, END, COMMIT) or length > MAX_FRAME:
                    raise InvalidArgument("malformed put-file stream", hint="use the tusk client")
                if kind == DATA:
                    self._data_left = length
                    continue
                self._kind, self._length = kind, length
            take = min(self._length - len(self._payload), n - pos)
            self._payload += view[pos : pos + take]
            pos += take
            if len(self._payload) == self._length:
                yield self._kind, bytes(self._payload)
                self._kind, self._length = b"", 0
                self._payload.clear()

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame (0 when the stream ended on a frame boundary)."""
        return len(self._head) + len(self._payload) + self._data_left + (1 if self._kind else 0)
