"""Output formatting helpers that reproduce pachctl 1.7's exact text.

Everything here is a pure function (or a small buffering class) mirroring the Go code that
pachctl 1.7.14 uses:

* ``bytes_size``        -- docker/go-units ``BytesSize`` (``"%.4g%s"``, base 1024).
* ``human_duration``    -- docker/go-units ``HumanDuration``.
* ``ago`` / ``time_difference`` -- pachyderm ``pretty.Ago`` / ``pretty.TimeDifference``.
* ``format_duration_go`` -- Go ``time.Duration.String()`` (``1m5s``, ``150ms``, ``3.2s``).
* ``TabWriter``         -- Go ``text/tabwriter`` (cells are tab-*terminated*).
* ``HeaderTabWriter``   -- pachyderm ``src/server/pkg/tabwriter``: a tabwriter(0, 1, 1, ' ', 0)
  that flushes and re-prints the header every 50 lines (header line included).
* ``Table`` / ``print_table`` -- convenience wrappers for the usual header + rows tables.
* ``render_json``       -- gogo ``jsonpb.Marshaler{Indent: "  "}`` layout for ``--raw``.
* ``proto_duration_json`` / ``proto_timestamp_json`` -- jsonpb's Duration/Timestamp strings.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TextIO

__all__ = [
    "HeaderTabWriter",
    "Table",
    "TabWriter",
    "ago",
    "bytes_size",
    "format_duration_go",
    "go_duration_string",
    "go_format_g",
    "human_duration",
    "human_duration_ns",
    "print_table",
    "proto_duration_json",
    "proto_timestamp_json",
    "render_json",
    "time_difference",
    "to_nanoseconds",
]

# ---------------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------------

NANOSECOND = 1
MICROSECOND = 1_000
MILLISECOND = 1_000_000
SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

_BINARY_ABBRS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _go_trunc_div(a: int, b: int) -> int:
    """Go integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _go_rem(a: int, b: int) -> int:
    """Go ``%`` (result has the sign of the dividend)."""
    return a - _go_trunc_div(a, b) * b


def _go_int(x: float) -> int:
    """Go ``int(float64)`` conversion: truncation toward zero."""
    return int(x)


def go_format_g(value: float, prec: int) -> str:
    """Go ``fmt.Sprintf("%.<prec>g", value)``.

    strconv rounds the exact binary value to ``prec`` significant digits (ties to even, like
    Python), drops trailing zeros, and uses exponent form only when ``exp < -4 || exp >= eprec``
    where ``eprec`` is ``prec`` (or the digit count when all digits are integral).
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Inf" if value > 0 else "-Inf"  # fmt drops strconv's leading '+'
    if prec == 0:
        prec = 1
    neg = math.copysign(1.0, value) < 0
    a = abs(value)
    if a == 0:
        digits, dp = "", 0
    else:
        # Python's %e is correctly rounded (round-half-even on exact ties), like strconv.
        mant, exp_s = f"{a:.{prec - 1}e}".split("e")
        digits = mant.replace(".", "").rstrip("0")
        dp = int(exp_s) + 1
    nd = len(digits)
    eprec = prec
    if eprec > nd and nd >= dp:
        eprec = nd
    exp = dp - 1
    sign = "-" if neg else ""
    if exp < -4 or exp >= eprec:
        # %e form with (min(prec, nd) - 1) fractional digits, exponent at least two digits.
        p = min(prec, nd) - 1
        first = digits[0] if digits else "0"
        out = first
        if p > 0:
            out += "." + digits[1 : 1 + p].ljust(p, "0")
        e = exp if digits else 0
        esign = "-" if e < 0 else "+"
        return f"{sign}{out}e{esign}{abs(e):02d}"
    # %f form
    p = nd if prec > dp else prec
    frac_digits = max(p - dp, 0)
    out = digits[:dp].ljust(dp, "0") if dp > 0 else "0"
    if frac_digits > 0:
        frac = ""
        for i in range(frac_digits):
            k = dp + i
            frac += digits[k] if 0 <= k < nd else "0"
        out += "." + frac
    return sign + out


def bytes_size(n: float) -> str:
    """docker/go-units ``BytesSize``: ``"%.4g%s"`` with base 1024 (``0B``, ``27.99KiB``)."""
    size = float(n)
    i = 0
    limit = len(_BINARY_ABBRS) - 1
    while size >= 1024.0 and i < limit:
        size = size / 1024.0
        i += 1
    return go_format_g(size, 4) + _BINARY_ABBRS[i]


# ---------------------------------------------------------------------------------------------
# Durations
# ---------------------------------------------------------------------------------------------


def to_nanoseconds(d: float | timedelta) -> int:
    """Convert seconds (float/int) or a timedelta into integer nanoseconds (Go ``time.Duration``)."""
    if isinstance(d, timedelta):
        return (d.days * 86400 + d.seconds) * SECOND + d.microseconds * MICROSECOND
    if isinstance(d, int):
        return d * SECOND
    return round(d * SECOND)


def _go_seconds(ns: int) -> float:
    return _go_trunc_div(ns, SECOND) + _go_rem(ns, SECOND) / 1e9


def _go_minutes(ns: int) -> float:
    return _go_trunc_div(ns, MINUTE) + _go_rem(ns, MINUTE) / (60 * 1e9)


def _go_hours(ns: int) -> float:
    return _go_trunc_div(ns, HOUR) + _go_rem(ns, HOUR) / (60 * 60 * 1e9)


def human_duration_ns(ns: int) -> str:
    """docker/go-units ``HumanDuration`` for a duration in nanoseconds."""
    seconds = _go_int(_go_seconds(ns))
    if seconds < 1:
        return "Less than a second"
    if seconds == 1:
        return "1 second"
    if seconds < 60:
        return f"{seconds} seconds"
    minutes = _go_int(_go_minutes(ns))
    if minutes == 1:
        return "About a minute"
    if minutes < 46:
        return f"{minutes} minutes"
    hours = _go_int(_go_hours(ns) + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{_go_int(_go_hours(ns)) // 24 // 365} years"


def human_duration(seconds: float | timedelta) -> str:
    """docker/go-units ``HumanDuration`` (``Less than a second``, ``About a minute``, ...)."""
    return human_duration_ns(to_nanoseconds(seconds))


def _as_utc(ts: datetime | None) -> datetime:
    # gogo types.TimestampFromProto(nil) yields the Unix epoch, so a missing timestamp is the
    # epoch (pretty.Ago only returns "" for Go's zero time, which never comes out of a proto).
    if ts is None:
        return _EPOCH
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts


def ago(ts: datetime | None, now: datetime | None = None) -> str:
    """pachyderm ``pretty.Ago``: ``HumanDuration(now - ts) + " ago"``.

    Naive datetimes are taken to be UTC. ``now`` defaults to the current time.
    """
    t = _as_utc(ts)
    n = datetime.now(UTC) if now is None else _as_utc(now)
    return human_duration(n - t) + " ago"


def time_difference(start: datetime | None, end: datetime | None) -> str:
    """pachyderm ``pretty.TimeDifference``: ``HumanDuration(end - start)``."""
    return human_duration(_as_utc(end) - _as_utc(start))


def _fmt_frac(v: int, prec: int) -> tuple[str, int]:
    """Go time.fmtFrac: fraction of v/10**prec without trailing zeros (and no '.' if zero)."""
    out = ""
    printed = False
    for _ in range(prec):
        digit = v % 10
        printed = printed or digit != 0
        if printed:
            out = str(digit) + out
        v //= 10
    if printed:
        out = "." + out
    return out, v


def go_duration_string(ns: int) -> str:
    """Go ``time.Duration(ns).String()``: ``0s``, ``150ms``, ``1.5µs``, ``3.2s``, ``1h0m5s``."""
    neg = ns < 0
    u = -ns if neg else ns
    if u < SECOND:
        if u == 0:
            return "0s"
        if u < MICROSECOND:
            prec, unit = 0, "ns"
        elif u < MILLISECOND:
            prec, unit = 3, "µs"  # U+00B5 MICRO SIGN, as Go prints it
        else:
            prec, unit = 6, "ms"
        frac, u = _fmt_frac(u, prec)
        out = f"{u}{frac}{unit}"
    else:
        frac, u = _fmt_frac(u, 9)
        out = f"{u % 60}{frac}s"
        u //= 60
        if u > 0:
            out = f"{u % 60}m" + out
            u //= 60
            if u > 0:
                out = f"{u}h" + out
    return "-" + out if neg else out


def format_duration_go(seconds: float | timedelta) -> str:
    """Go ``time.Duration.String()`` for a duration given in seconds or as a timedelta."""
    return go_duration_string(to_nanoseconds(seconds))


def proto_duration_json(seconds: float | timedelta) -> str:
    """jsonpb (gogo, as vendored in 1.7) Duration text, without quotes: ``300.000s``, ``1.5s``..

    Go: ``fmt.Sprintf("%.9f", d.Seconds())`` then ``TrimSuffix("000")`` twice, plus ``s``.
    """
    x = f"{_go_seconds(to_nanoseconds(seconds)):.9f}"
    x = x.removesuffix("000").removesuffix("000")
    return x + "s"


def proto_timestamp_json(ts: datetime) -> str:
    """jsonpb (gogo, as vendored in 1.7) Timestamp text, without quotes.

    Always UTC with 3, 6 or 9 fractional digits: ``2018-05-01T12:00:00.000Z``.
    """
    t = _as_utc(ts).astimezone(UTC)
    x = t.strftime("%Y-%m-%dT%H:%M:%S") + f".{t.microsecond * 1000:09d}"
    x = x.removesuffix("000").removesuffix("000")
    return x + "Z"


# ---------------------------------------------------------------------------------------------
# text/tabwriter
# ---------------------------------------------------------------------------------------------


@dataclass
class _Cell:
    text: str
    htab: bool  # terminated by '\t' (vs '\v' or end of line)

    @property
    def width(self) -> int:
        # Go counts runes (utf8.RuneCount); len() of a str counts code points.
        return len(self.text)


class TabWriter:
    """Go ``text/tabwriter.Writer`` (no Debug/FilterHTML/TabIndent/escape support).

    Text is split into cells by ``\\t`` / ``\\v``; a cell is part of a column only if it is
    *terminated* by a tab, so the last (unterminated) cell of a line is never padded. Columns are
    formatted per block of consecutive lines that have that column. ``\\f`` forces a flush, and a
    line with a single cell flushes too (as in Go). ``write`` returns nothing; formatted text is
    collected and handed back by ``flush``.
    """

    def __init__(
        self,
        minwidth: int = 0,
        tabwidth: int = 1,
        padding: int = 1,
        padchar: str = " ",
        *,
        align_right: bool = False,
        discard_empty_columns: bool = False,
    ) -> None:
        self.minwidth = minwidth
        self.tabwidth = tabwidth
        self.padding = padding
        self.padchar = padchar
        self.align_right = align_right
        self.discard_empty_columns = discard_empty_columns
        self._out: list[str] = []
        self._reset()

    def _reset(self) -> None:
        self._lines: list[list[_Cell]] = [[]]
        self._cell: list[str] = []
        self._widths: list[int] = []

    def _terminate_cell(self, htab: bool) -> int:
        line = self._lines[-1]
        line.append(_Cell("".join(self._cell), htab))
        self._cell = []
        return len(line)

    def write(self, text: str) -> None:
        start = 0
        for i, ch in enumerate(text):
            if ch in "\t\v\n\f":
                self._cell.append(text[start:i])
                start = i + 1
                ncells = self._terminate_cell(ch == "\t")
                if ch in "\n\f":
                    self._lines.append([])
                    if ch == "\f" or ncells == 1:
                        self._flush_internal()
        self._cell.append(text[start:])

    def _flush_internal(self) -> None:
        if any(self._cell):
            self._terminate_cell(False)
        self._format(0, len(self._lines))
        self._reset()

    def flush(self) -> str:
        """Format everything buffered; return all output produced since the last ``flush``."""
        self._flush_internal()
        out = "".join(self._out)
        self._out = []
        return out

    # -- formatting (direct port of tabwriter.format / writeLines / writePadding) --

    def _write_padding(self, textw: int, cellw: int) -> None:
        if self.padchar == "\t":
            if self.tabwidth == 0:
                return
            cellw = (cellw + self.tabwidth - 1) // self.tabwidth * self.tabwidth
            n = cellw - textw
            self._out.append("\t" * ((n + self.tabwidth - 1) // self.tabwidth))
            return
        self._out.append(self.padchar * (cellw - textw))

    def _write_lines(self, line0: int, line1: int) -> None:
        widths = self._widths
        for i in range(line0, line1):
            line = self._lines[i]
            for j, c in enumerate(line):
                if not c.text:
                    if j < len(widths):
                        self._write_padding(c.width, widths[j])
                elif not self.align_right:
                    self._out.append(c.text)
                    if j < len(widths):
                        self._write_padding(c.width, widths[j])
                else:
                    if j < len(widths):
                        self._write_padding(c.width, widths[j])
                    self._out.append(c.text)
            if i + 1 == len(self._lines):
                # last buffered line: no newline, just any outstanding partial cell
                self._out.append("".join(self._cell))
            else:
                self._out.append("\n")

    def _format(self, line0: int, line1: int) -> None:
        column = len(self._widths)
        this = line0
        while this < line1:
            line = self._lines[this]
            if column >= len(line) - 1:
                this += 1
                continue
            # print unprinted lines until beginning of block
            self._write_lines(line0, this)
            line0 = this
            # column block
            width = self.minwidth
            discardable = True
            while this < line1:
                line = self._lines[this]
                if column >= len(line) - 1:
                    break
                c = line[column]
                w = c.width + self.padding
                if w > width:
                    width = w
                if c.width > 0 or c.htab:
                    discardable = False
                this += 1
            if discardable and self.discard_empty_columns:
                width = 0
            self._widths.append(width)
            self._format(line0, this)
            self._widths.pop()
            line0 = this
        self._write_lines(line0, line1)


class HeaderTabWriter:
    """pachyderm ``src/server/pkg/tabwriter.Writer`` (used by every 1.7 list command).

    A ``TabWriter(0, 1, 1, ' ')`` that starts with ``header`` and, once ``term_height`` lines
    (header included) have been written, flushes and re-prints the header before the next write.
    So each block is the header plus ``term_height - 1`` rows, and column widths are computed
    per block. ``term_height=None`` (or 0) disables the re-printing (one block).
    """

    def __init__(self, header: str, term_height: int | None = 50) -> None:
        if not header.endswith("\n"):
            raise ValueError("header must end in a new line")
        self._tw = TabWriter(0, 1, 1, " ")
        self._header = header
        self._term_height = term_height
        self._out: list[str] = []
        self._tw.write(header)
        self._lines = 1

    def write(self, text: str) -> None:
        if self._term_height and self._lines >= self._term_height:
            self._flush_block()
            self._tw.write(self._header)
            self._lines += 1
        self._lines += text.count("\n")
        self._tw.write(text)

    def _flush_block(self) -> None:
        self._lines = 0
        self._out.append(self._tw.flush())

    def flush(self) -> str:
        """Flush the tabwriter; return all text produced since the previous ``flush``."""
        self._flush_block()
        out = "".join(self._out)
        self._out = []
        return out


def _row_line(cells: Iterable[str]) -> str:
    return "".join(f"{c}\t" for c in cells) + "\n"


class Table:
    """Header + rows rendered like pachctl: every cell (the last too) is tab-terminated.

    ``add(row)`` writes ``"c1\\tc2\\t...\\tcN\\t\\n"`` (the Go ``Fprintf(w, "%s\\t", ...)`` pattern),
    so every column, including the last, is padded to its widest cell + 1 and lines carry
    trailing spaces. ``add_raw(text)`` writes text verbatim for layouts that don't follow that
    pattern (e.g. 1.7's datum rows ``"%s\\t%s\\t%s\\n"``). The header is re-printed every
    ``page_lines`` lines (header included) when ``repeat_header`` is set, as pachctl does.
    """

    def __init__(
        self, headers: Sequence[str], *, repeat_header: bool = True, page_lines: int = 50
    ) -> None:
        self.headers = list(headers)
        self.repeat_header = repeat_header
        self.page_lines = page_lines
        self._chunks: list[str] = []

    @property
    def header_line(self) -> str:
        return _row_line(self.headers)

    def add(self, row: Sequence[str]) -> None:
        self._chunks.append(_row_line(str(c) for c in row))

    def add_raw(self, text: str) -> None:
        self._chunks.append(text)

    def render(self) -> str:
        w = HeaderTabWriter(self.header_line, self.page_lines if self.repeat_header else None)
        for chunk in self._chunks:
            w.write(chunk)
        return w.flush()


def print_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    file: TextIO | None = None,
    *,
    repeat_header: bool = True,
    page_lines: int = 50,
) -> str:
    """Render ``headers`` + ``rows`` as a pachctl table, write it to ``file`` (if given), return it."""
    table = Table(headers, repeat_header=repeat_header, page_lines=page_lines)
    for row in rows:
        table.add(row)
    text = table.render()
    if file is not None:
        file.write(text)
    return text


# ---------------------------------------------------------------------------------------------
# JSON (jsonpb.Marshaler{Indent: "  "})
# ---------------------------------------------------------------------------------------------

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
