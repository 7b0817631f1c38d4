"""pachctl 1.7's ``--raw`` output: gogo ``jsonpb.Marshaler{Indent: "  "}`` layout, and jsonpb's
Duration and Timestamp strings (and the proto text of a Duration)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from tusk.cli.units import as_utc, go_seconds, to_nanoseconds


def proto_duration_json(seconds: float | timedelta) -> str:
    """jsonpb (gogo, as vendored in 1.7) Duration text, without quotes: ``300.000s``, ``1.5s``..

    Go: ``fmt.Sprintf("%.9f", d.Seconds())`` then ``TrimSuffix("000")`` twice, plus ``s``.
    """
    x = f"{go_seconds(to_nanoseconds(seconds)):.9f}"
    x = x.removesuffix("000").removesuffix("000")
    return x + "s"


def proto_duration_text(seconds: float | None) -> str:
    """A ``*types.Duration`` as Go's ``%v`` prints it (proto text): ``seconds:90 nanos:500000000 ``;
    ``<nil>`` when there is none."""
    if seconds is None:
        return "<nil>"
    secs, nanos = divmod(round(seconds * 1e9), 1_000_000_000)
    fields = ([f"seconds:{secs}"] if secs else []) + ([f"nanos:{nanos}"] if nanos else [])
    return "".join(f"{f} " for f in fields)


def proto_timestamp_json(ts: datetime) -> str:
    """jsonpb (gogo, as vendored in 1.7) Timestamp text, without quotes.

    Always UTC with 3, 6 or 9 fractional digits: ``2018-05-01T12:00:00.000Z``.
    """
    t = as_utc(ts).astimezone(UTC)
    x = t.strftime("%Y-%m-%dT%H:%M:%S") + f".{t.microsecond * 1000:09d}"
    x = x.removesuffix("000").removesuffix("000")
    return x + "Z"


_HEX = "0123456789abcdef"


def _go_json_string(s: str) -> str:
    """Go encoding/json string encoding with HTML escaping (Go <= 1.21 escapes \\b, \\f as \\u00XX)."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20 or ch in "<>&":
            out.append("\\u00" + _HEX[o >> 4] + _HEX[o & 0xF])
        elif o in (0x2028, 0x2029):
            out.append("\\u202" + _HEX[o & 0xF])
        elif 0xD800 <= o <= 0xDFFF:
            out.append("\\ufffd")  # not valid UTF-8 -> replacement char, as Go does
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _go_json_float(f: float) -> str:
    """Go encoding/json float64 encoding ('f' shortest, 'e' for <1e-6 or >=1e21)."""
    if math.isnan(f) or math.isinf(f):
        raise ValueError(f"json: unsupported value: {f!r}")
    a = abs(f)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        s = repr(f)  # shortest digits, exponent form with >= 2 exponent digits, like Go 'e', -1
        mant, _, exp = s.partition("e")
        if exp.startswith("-0"):
            exp = "-" + exp[2:]
        return f"{mant}e{exp}"
    from decimal import Decimal  # here: only floats need it, and every CLI start would pay

    s = format(Decimal(repr(f)), "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def _render(obj: Any, indent: str, step: str, out: list[str]) -> None:
    if obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, int):
        out.append(str(obj))
    elif isinstance(obj, float):
        out.append(_go_json_float(obj))
    elif isinstance(obj, str):
        out.append(_go_json_string(obj))
    elif isinstance(obj, Mapping):
        out.append("{")
        inner = indent + step
        first = True
        for k, v in obj.items():
            out.append("\n" if first else ",\n")
            first = False
            out.append(inner + _go_json_string(str(k)) + ": ")
            _render(v, inner, step, out)
        out.append("\n" + indent + "}")
    elif isinstance(obj, list | tuple):
        out.append("[")
        inner = indent + step
        for i, v in enumerate(obj):
            out.append(",\n" if i else "\n")
            out.append(inner)
            _render(v, inner, step, out)
        out.append("\n" + indent + "]")
    else:
        raise TypeError(f"render_json: unsupported type {type(obj).__name__}")


def render_json(obj: Any, indent: str = "  ") -> str:
    """Render ``obj`` the way gogo ``jsonpb.Marshaler{Indent: "  "}`` lays out a message.

    Keys keep the given order (callers supply camelCase names, int64/uint64 values as strings,
    timestamps/durations via ``proto_timestamp_json``/``proto_duration_json``, and omit
    zero-valued fields, as jsonpb does). Strings use Go's HTML-safe escaping (``<`` ->
    ``\\u003c``). Empty objects/lists render as ``{`` newline indent ``}`` like jsonpb. No
    trailing newline: pachctl writes consecutive objects back to back (``}{``).
    """
    out: list[str] = []
    _render(obj, "", indent, out)
    return "".join(out)
