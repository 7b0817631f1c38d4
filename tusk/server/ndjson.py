"""Listings answered as JSON lines (``application/x-ndjson``) when the client asks for them.

A client that sends ``Accept: application/x-ndjson`` gets one JSON value per line, written as
the listing is read (in batches of lines), so neither side holds the whole listing. A failure
after the answer began cannot change its status any more: it ends the stream with one line
``{"error": {...}}`` (the error body of a failed request), which the client raises.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from tusk.errors import Internal, TuskError

NDJSON = "application/x-ndjson"
BATCH_LINES = 1000  # values per write: few thread hops, little memory

log = logging.getLogger(__name__)
T = TypeVar("T")


def wants_lines(request: Request) -> bool:
    """Whether the client asked for JSON lines (its ``Accept`` names ``application/x-ndjson``)."""
    return NDJSON in request.headers.get("accept", "")


def models_response(items: Iterable[BaseModel]) -> StreamingResponse:
    """Models as JSON lines, each serialized by pydantic itself (as the route's array answer is:
    no Python dict between the model and its text)."""
    return StreamingResponse(
        _encoded(iter(items), lambda m: m.model_dump_json(by_alias=True)), media_type=NDJSON
    )


def lines_response(items: Iterable[T], to_json: Callable[[T], Any]) -> StreamingResponse:
    """``items`` as JSON lines, each ``to_json(item)``, read and sent a batch at a time."""
    return StreamingResponse(_lines(iter(items), to_json), media_type=NDJSON)


def _lines(items: Iterator[T], to_json: Callable[[T], Any]) -> Iterator[bytes]:
    encode = json.JSONEncoder(separators=(",", ":")).encode
    return _encoded(items, lambda item: encode(to_json(item)))


def _encoded(items: Iterator[T], to_text: Callable[[T], str]) -> Iterator[bytes]:
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    batch: list[str] = []
    try:
        for item in items:
            batch.append(to_text(item))
            if len(batch) >= BATCH_LINES:
                yield ("\n".join(batch) + "\n").encode()
                batch = []
    except TuskError as exc:
        batch.append(dumps({"error": exc.to_wire()}))
    except Exception as exc:  # noqa: BLE001 - reported to the client, logged here
        log.error("a streamed listing failed", exc_info=exc)
        batch.append(dumps({"error": Internal(f"internal error: {type(exc).__name__}").to_wire()}))
    if batch:
        yield ("\n".join(batch) + "\n").encode()
