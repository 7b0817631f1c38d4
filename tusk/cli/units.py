"""Sizes, durations and times as pachctl 1.7 prints them (Go and docker/go-units ports).

* ``bytes_size``        -- docker/go-units ``BytesSize`` (``"%.4g%s"``, base 1024).
* ``human_duration``    -- docker/go-units ``HumanDuration``.
* ``ago`` / ``time_difference`` -- pachyderm ``pretty.Ago`` / ``pretty.TimeDifference``.
* ``format_duration_go`` -- Go ``time.Duration.String()`` (``1m5s``, ``150ms``, ``3.2s``).
"""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime, timedelta

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
    if isinstance(n, int):
        return _bytes_size_of_int(n)  # listings repeat sizes: each is formatted once
    return _bytes_size(n)


@functools.lru_cache(maxsize=4096)
def _bytes_size_of_int(n: int) -> str:
    return _bytes_size(n)


def _bytes_size(n: float) -> str:
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


def go_seconds(ns: int) -> float:
    return _go_trunc_div(ns, SECOND) + _go_rem(ns, SECOND) / 1e9


def _go_minutes(ns: int) -> float:
    return _go_trunc_div(ns, MINUTE) + _go_rem(ns, MINUTE) / (60 * 1e9)


def _go_hours(ns: int) -> float:
    return _go_trunc_div(ns, HOUR) + _go_rem(ns, HOUR) / (60 * 60 * 1e9)


def human_duration_ns(ns: int) -> str:
    """docker/go-units ``HumanDuration`` for a duration in nanoseconds."""
    seconds = _go_int(go_seconds(ns))
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


def as_utc(ts: datetime | None) -> datetime:
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
    t = as_utc(ts)
    n = datetime.now(UTC) if now is None else as_utc(now)
    return human_duration(n - t) + " ago"


def time_difference(start: datetime | None, end: datetime | None) -> str:
    """pachyderm ``pretty.TimeDifference``: ``HumanDuration(end - start)``."""
    return human_duration(as_utc(end) - as_utc(start))


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


def from_timestamp(ts: float | None) -> datetime | None:
    """A wire timestamp (seconds since the epoch) as an aware datetime (``None`` stays)."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def rfc3339(ts: datetime, local: bool = False) -> str:
    """Go's ``Format(time.RFC3339)``: whole seconds (truncated), ``Z`` for a zero offset; in the
    local time zone (Go's ``In(time.Local)``, from ``TZ`` or the system's) when ``local``, else
    in UTC."""
    t = as_utc(ts)
    text = (t.astimezone() if local else t.astimezone(UTC)).isoformat(timespec="seconds")
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text


def parse_time(text: str | None) -> datetime | None:
    """A wire time as the plain reader gets it (ISO 8601 text, as the models serialize it) back
    as a datetime (``None`` stays)."""
    return None if text is None else datetime.fromisoformat(text)


def progress_bar(width: int, green: int, yellow: int, red: int) -> str:
    """pachyderm 2.x ``pretty.ProgressBar`` as pachctl prints it off a terminal, without colour:
    2.x shares the ``width`` cells out between green, yellow and red in proportion, each a full
    block; with the colours gone every share looks alike, so the bar is full as soon as any
    count is not zero, and empty (spaces) when all are."""
    return ("\u2587" if green + yellow + red else " ") * width
