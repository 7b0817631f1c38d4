"""The Go-flavoured value syntaxes a spec borrows: Go durations (``"1h30m"``), Kubernetes
quantities (``"64M"``, ``"500m"``, ``"1Gi"``) and robfig/cron schedules (``"*/5 * * * *"``).

Each has one parse function here; the spec models validate with them and the executors and the
server turn values into numbers and texts with them.
"""

from __future__ import annotations

import re

from tusk.errors import InvalidArgument

# ------------------------------------------------------------------------------ Go durations

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string (``"300ms"``, ``"1h30m"``, ``"-5s"``, ``"0"``)."""
    s = text.strip()
    sign = -1.0 if s.startswith("-") else 1.0
    body = s[1:] if s[:1] in "+-" else s
    if body == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(body):
        m = _DURATION_PART.match(body, pos)
        if m is None:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if not body or pos != len(body):
        raise ValueError(f'invalid duration "{text}"')
    return sign * total


# ------------------------------------------------------------------------------ quantities

_QUANTITY = re.compile(
    r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+|(?P<suffix>[KMGTPE]i|[numkMGTPE]))?"
)
_QUANTITY_SCALE = {
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


def parse_quantity(value: int | float | str) -> float:
    """A Kubernetes quantity (``0.5``, ``"500m"``, ``"64M"``, ``"1Gi"``, ``"1e3"``) as a number."""
    if isinstance(value, int | float):
        return float(value)
    m = _QUANTITY.fullmatch(value)
    if m is None:
        raise InvalidArgument(
            f"invalid resource quantity {value!r}", hint='e.g. "cpu": 0.5, "memory": "64M"'
        )
    suffix = m.group("suffix")
    if suffix is None:
        return float(value)
    return float(value[: -len(suffix)]) * _QUANTITY_SCALE[suffix]


def is_quantity(text: str) -> bool:
    """Whether ``text`` is a Kubernetes quantity string (what ``cache_size`` must be)."""
    try:
        parse_quantity(text)
    except InvalidArgument:
        return False
    return True


# ------------------------------------------------------------------------------ cron schedules

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CRON_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (  # as robfig ParseStandard
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 6, _WEEKDAYS),
)
_CRON_DESCRIPTORS = {
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
}


def validate_cron_spec(spec: str) -> str:
    """Check a cron schedule the way robfig/cron's ``ParseStandard`` does; return it unchanged."""
    text = spec.strip()
    if text.startswith("@every"):
        arg = text[len("@every") :].strip()
        try:
            every = parse_duration(arg)
        except ValueError as e:
            raise ValueError(f'failed to parse duration "@every {arg}": {e}') from None
        if every <= 0:
            raise ValueError(f'"@every {arg}" must be a positive duration')
        return spec
    if text.startswith("@"):
        if text not in _CRON_DESCRIPTORS:
            raise ValueError(f"unrecognized descriptor: {text}")
        return spec
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"expected exactly 5 fields, found {len(fields)}: {text}")
    for part, (what, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        for expr in part.split(","):
            _check_cron_range(expr, what, low, high, names)
    return spec


def _check_cron_range(expr: str, what: str, low: int, high: int, names: tuple[str, ...]) -> None:
    def value(tok: str) -> int:
        if tok.lower() in names:
            return names.index(tok.lower()) + low
        if not tok.isdigit():
            raise ValueError(f"failed to parse {what} {tok!r} in {expr!r}")
        return int(tok)

    rng, _, step = expr.partition("/")
    if step and (not step.isdigit() or int(step) == 0):
        raise ValueError(f"invalid step {step!r} in {what} {expr!r}")
    if rng in ("*", "?"):
        return
    first, _, last = rng.partition("-")
    start = value(first)
    end = value(last) if last else start
    if start < low or end > high or start > end:
        raise ValueError(f"{what} {expr!r} is out of range ({low}-{high})")
