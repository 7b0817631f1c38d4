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


def frame(kind: bytes, payload: bytes | memoryview = b"") -> bytes:
    return _HEAD.pack(kind, len(payload)) + bytes(payload)


def header_frame(path: str, **options: Any) -> bytes:
    return frame(HEADER, json.dumps({"path": path, **options}).encode())


def commit_frame(description: str = "") -> bytes:
    return frame(COMMIT, json.dumps({"description": description}).encode())


class FrameParser:
    """Incremental parser: feed it the body as it arrives, get complete frames back."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[tuple[bytes, bytes]]:
        self._buf += data
        pos = 0
        buf = self._buf
        while len(buf) - pos >= _HEAD.size:
            kind, length = _HEAD.unpack_from(buf, pos)
            if kind not in (HEADER, DATA, END, COMMIT) or length > MAX_FRAME:
                raise InvalidArgument("malformed put-file stream", hint="use the tusk client")
            end = pos + _HEAD.size + length
            if end > len(buf):
                break
            yield kind, bytes(buf[pos + _HEAD.size : end])
            pos = end
        del self._buf[:pos]

    @property
    def pending(self) -> int:
        return len(self._buf)
