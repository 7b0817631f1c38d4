"""The extract format: one stream with everything a tusk deployment holds (docs/extract.md).

A stream is a magic line, then records. Each record is one line of JSON; an ``object`` record is
followed by exactly ``size`` bytes of the object and a newline::

    tusk-extract\\n
    {"kind": "header", "format": 1, "tusk": "0.1.0", "schema": 3, "objects": true, ...}\\n
    {"kind": "object", "id": "<object id>", "size": N}\\n <N bytes> \\n      (any number)
    {"kind": "rows", "table": "<table>", "rows": [{...}, ...]}\\n          (any number)
    {"kind": "end", "objects": <count>, "rows": {"<table>": <count>, ...}}\\n

Objects come before rows, so a restore never records metadata naming an object it has not
stored, and the ``end`` record's counts tell a complete stream from a cut one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from tusk.errors import InvalidArgument

MAGIC = b"tusk-extract\n"
FORMAT_VERSION = 1
ROWS_PER_RECORD = 500
MAX_RECORD_LINE = 256 << 20  # a rows record holds at most ROWS_PER_RECORD rows


def _line(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def header(tusk_version: str, schema: int, objects: bool, created: float) -> bytes:
    """The magic line and the header record."""
    doc = {
        "kind": "header",
        "format": FORMAT_VERSION,
        "tusk": tusk_version,
        "schema": schema,
        "objects": objects,
        "created": created,
    }
    return MAGIC + _line(doc)


def object_record(object_id: str, data: bytes) -> bytes:
    """One object with its bytes."""
    return _line({"kind": "object", "id": object_id, "size": len(data)}) + data + b"\n"


def rows_record(table: str, rows: list[dict[str, Any]]) -> bytes:
    """Some rows of one table."""
    return _line({"kind": "rows", "table": table, "rows": rows})


def end_record(objects: int, rows: dict[str, int]) -> bytes:
    """The last record: how many objects and rows came before it."""
    return _line({"kind": "end", "objects": objects, "rows": rows})


@dataclass
class Contents:
    """What a stream holds once read: its header, its rows by table, and its counts."""

    header: dict[str, Any]
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    objects: int = 0


def _bad(problem: str) -> InvalidArgument:
    return InvalidArgument(
        f"not a complete tusk extract: {problem}; nothing was restored",
        hint="restore the whole output of `tusk extract` (it may have been cut short)",
    )


def _record(fh: IO[bytes]) -> dict[str, Any]:
    line = fh.readline(MAX_RECORD_LINE)
    if not line.endswith(b"\n"):
        raise _bad("the stream ends in the middle of a record" if line else "it ends early")
    try:
        doc = json.loads(line)
    except ValueError:
        raise _bad("a record is not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("kind"), str):
        raise _bad("a record has no kind")
    return doc


def read_header(fh: IO[bytes], newest_schema: int) -> dict[str, Any]:
    """Check the magic line and the header; return the header."""
    if fh.read(len(MAGIC)) != MAGIC:
        raise InvalidArgument(
            "this is not a tusk extract (it does not start with the tusk-extract line)",
            hint="restore reads what `tusk extract` wrote; nothing was restored",
        )
    head = _record(fh)
    if head.get("kind") != "header" or head.get("format") != FORMAT_VERSION:
        raise InvalidArgument(
            f"this extract has format {head.get('format')!r}; this tusk reads format "
            f"{FORMAT_VERSION}",
            hint="restore it with the tusk version that made it; nothing was restored",
        )
    if not isinstance(head.get("schema"), int) or head["schema"] > newest_schema:
        raise InvalidArgument(
            f"this extract was made by a newer tusk ({head.get('tusk')}, schema "
            f"{head.get('schema')}); this one has schema {newest_schema}",
            hint="upgrade tusk, then restore; nothing was restored",
        )
    return head


def records(fh: IO[bytes]) -> Iterator[tuple[str, Any, Any]]:
    """After the header: ("object", id, bytes), ("rows", table, rows), then ("end", objects,
    rows per table) as the last item; a stream cut short or malformed raises InvalidArgument."""
    while True:
        doc = _record(fh)
        kind = doc["kind"]
        if kind == "object":
            oid, size = doc.get("id"), doc.get("size")
            if not isinstance(oid, str) or not isinstance(size, int) or size < 0:
                raise _bad("an object record has no id or size")
            data = fh.read(size)
            if len(data) != size or fh.read(1) != b"\n":
                raise _bad(f"object {oid} is cut short")
            yield "object", oid, data
        elif kind == "rows":
            if not isinstance(doc.get("table"), str) or not isinstance(doc.get("rows"), list):
                raise _bad("a rows record has no table or rows")
            yield "rows", doc["table"], doc["rows"]
        elif kind == "end":
            yield "end", doc.get("objects"), doc.get("rows")
            return
        else:
            raise _bad(f"unknown record kind {kind!r}")
