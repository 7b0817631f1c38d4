"""Writing the frames of a put-file request body (standard library only).

A frame is one type byte, a 4-byte big-endian length and the payload (the whole format, and the
parser the server uses, are in :mod:`tusk.api.framing`). This half stays free of pydantic so
that the CLI can put small files without loading the typed client.
"""

from __future__ import annotations

import json
import struct
from typing import Any

_HEAD = struct.Struct(">cI")
HEADER, DATA, END, COMMIT = b"H", b"D", b"E", b"Z"
FRAMES_MEDIA_TYPE = "application/vnd.tusk.frames"


def frame_head(kind: bytes, length: int) -> bytes:
    """The 5 header bytes of a frame, for senders that write a large payload without copying."""
    return _HEAD.pack(kind, length)


def frame(kind: bytes, payload: bytes | memoryview = b"") -> bytes:
    return _HEAD.pack(kind, len(payload)) + bytes(payload)


def header_frame(path: str, **options: Any) -> bytes:
    return frame(HEADER, json.dumps({"path": path, **options}).encode())


def commit_frame(description: str = "") -> bytes:
    return frame(COMMIT, json.dumps({"description": description}).encode())


def file_options(
    overwrite: bool,
    split: str | None = None,
    target_datums: int = 0,
    target_bytes: int = 0,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The header options of one file of a put (``extra``: e.g. a directory header's part)."""
    opts: dict[str, Any] = {"overwrite": overwrite, **(extra or {})}
    if split:
        opts.update(split=split, target_datums=target_datums, target_bytes=target_bytes)
    return opts
