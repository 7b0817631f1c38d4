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


def model_json(model: BaseModel) -> Any:
    """A model's JSON value as the route's array answer would hold it."""
    return model.model_dump(mode="json", by_alias=True)


def lines_response(items: Iterable[T], to_json: Callable[[T], Any]) -> StreamingResponse:
    """``items`` as JSON lines, each ``to_json(item)``, read and sent a batch at a time."""
    return StreamingResponse(_lines(iter(items), to_json), media_type=NDJSON)


def _lines(items: Iterator[T], to_json: Callable[[T], Any]) -> Iterator[bytes]:
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    batch: list[str] = []
    try:
        for item in items:
            batch.append(dumps(to_json(item)))
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
