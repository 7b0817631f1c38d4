"""Framing of the put-file request body, so one HTTP request streams any number of files.

A frame is one type byte, a 4-byte big-endian length and the payload:

    H  header (JSON: path, overwrite, split, target_datums, target_bytes) - starts a file
    D  data of the current file (any number of frames)
    E  end of the current file
    Z  commit (JSON: description) - the last frame; a stream without it stores nothing

The body is sent as ``application/vnd.tusk.frames`` (:data:`FRAMES_MEDIA_TYPE`): a type no web
page can send to another site without the server's consent. :class:`PutStream` checks the order
of the frames and parses headers into :class:`FileHeader`, so a malformed stream is refused with
the reason before anything is stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tusk.api.frames import (  # the writing half (standard library only), re-exported here
    _HEAD,
    COMMIT,
    DATA,
    END,
    FRAMES_MEDIA_TYPE,
    HEADER,
    commit_frame,
    frame,
    frame_head,
    header_frame,
)
from tusk.errors import InvalidArgument

MAX_FRAME = 64 << 20
MAX_TARGET = 1 << 62  # target_datums / target_bytes: any real count, and it fits a SQL BIGINT

__all__ = [
    "COMMIT",
    "DATA",
    "END",
    "FRAMES_MEDIA_TYPE",
    "HEADER",
    "MAX_FRAME",
    "MAX_TARGET",
    "FileHeader",
    "FrameParser",
    "PutStream",
    "commit_frame",
    "frame",
    "frame_head",
    "header_frame",
]


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


class FileHeader(BaseModel):
    """The header frame of one file: where it goes and how its bytes are taken."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    path: str
    overwrite: bool = False
    split: str | None = None
    target_datums: int = Field(0, ge=0, le=MAX_TARGET)
    target_bytes: int = Field(0, ge=0, le=MAX_TARGET)
    local_path: str | None = None  # the server reads this file itself (same machine and user)
    # the bytes are the header or footer of the directory ``path`` (put-header / put-footer)
    shared: Literal["header", "footer"] | None = None


class CommitTrailer(BaseModel):
    """The commit frame that ends a put stream."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    description: str = ""


def _parse(model: type[BaseModel], kind: str, payload: bytes) -> Any:
    try:
        return model.model_validate_json(payload or b"{}")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "frame"
        raise InvalidArgument(
            f"malformed put-file stream: {kind} frame: {where}: {first['msg']}",
            hint="send a JSON object such as "
            + ('{"path": "/dir/file"}' if kind == "header" else '{"description": ""}'),
        ) from None


class PutStream:
    """The frames of a put stream in order: ``(H D* E)* Z``. Header and commit frames come out
    parsed (:class:`FileHeader`, :class:`CommitTrailer`); a frame out of place raises
    InvalidArgument naming it."""

    def __init__(self) -> None:
        self._parser = FrameParser()
        self._in_file = False
        self.trailer: CommitTrailer | None = None

    def feed(self, data: bytes) -> Iterator[tuple[bytes, Any]]:
        for kind, payload in self._parser.feed(data):
            if self.trailer is not None:
                self._bad("a frame after the commit frame", "the commit frame must be the last")
            if kind == HEADER:
                if self._in_file:
                    self._bad("a header before the previous file's end frame", "send E first")
                self._in_file = True
                yield kind, _parse(FileHeader, "header", bytes(payload))
            elif kind == DATA:
                if not self._in_file:
                    self._bad("data before a header frame", "start each file with an H frame")
                yield kind, payload
            elif kind == END:
                if not self._in_file:
                    self._bad("an end frame before a header frame", "end only a started file")
                self._in_file = False
                yield kind, None
            else:
                if self._in_file:
                    self._bad("the commit frame before the last file's end frame", "send E first")
                self.trailer = _parse(CommitTrailer, "commit", bytes(payload))

    @property
    def complete(self) -> bool:
        """True once the commit frame ended the stream on a frame boundary."""
        return self.trailer is not None and not self._parser.pending

    @staticmethod
    def _bad(what: str, fix: str) -> None:
        raise InvalidArgument(f"malformed put-file stream: {what}", hint=fix)
