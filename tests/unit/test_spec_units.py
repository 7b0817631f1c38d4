"""The value syntaxes specs borrow from Go: durations, Kubernetes quantities, cron schedules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tusk.errors import InvalidArgument
from tusk.pps.spec import parse_duration, parse_quantity, validate_cron_spec
from tusk.pps.spec.units import is_quantity

# ------------------------------------------------------------------------------ durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0),
        ("-0", 0),
        ("+5s", 5),
        ("-5s", -5),
        (" 2m ", 120),
        ("1ns", 1e-9),
        ("1us", 1e-6),
        ("1µs", 1e-6),
        ("1μs", 1e-6),
        (".5s", 0.5),
        ("5.s", 5),
        ("1h1m1s1ms", 3661.001),
        ("2h45m", 9900),
    ],
)
def test_durations_at_the_edges(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", " ", "-", "5", "s", "5 s", "5sec", "1d", "1.2.3s", "5s5", "--5s"]
)
def test_invalid_durations(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@given(
    st.lists(
        st.tuples(st.integers(0, 10_000), st.sampled_from(["h", "m", "s", "ms", "us", "ns"])),
        min_size=1,
        max_size=6,
    )
)
def test_a_duration_is_the_sum_of_its_parts(parts: list[tuple[int, str]]) -> None:
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
    text = "".join(f"{n}{unit}" for n, unit in parts)
    assert parse_duration(text) == pytest.approx(sum(n * scale[u] for n, u in parts))


# ------------------------------------------------------------------------------ quantities


@pytest.mark.parametrize(
    ("value", "number"),
    [
        (2, 2.0),
        (0.5, 0.5),
        ("2", 2.0),
        ("500m", 0.5),
        ("64M", 64e6),
        ("64Mi", 64 << 20),
        ("1.5Gi", 1.5 * 2**30),
        ("1e3", 1000.0),
        ("1E-3", 0.001),
        (".5", 0.5),
        ("5.", 5.0),
        ("+1k", 1000.0),
        ("-1", -1.0),
        ("100n", 1e-7),
        ("3u", 3e-6),
        ("2Ei", 2.0 * 2**60),
    ],
)
def test_quantities_as_numbers(value: int | float | str, number: float) -> None:
    assert parse_quantity(value) == pytest.approx(number)
    assert isinstance(value, int | float) or is_quantity(value)


@pytest.mark.parametrize(
    "text", ["", "lots", "M", "1K", "1ki", "64 M", " 1G", "1Gi ", "1e3M", "1.2.3", "0x10", "inf"]
)
def test_invalid_quantities(text: str) -> None:
    assert not is_quantity(text)
    with pytest.raises(InvalidArgument, match="invalid resource quantity") as info:
        parse_quantity(text)
    assert info.value.hint


_SCALES = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "m": 1e-3}


@given(st.integers(0, 10**6), st.sampled_from(sorted(_SCALES)))
def test_a_quantity_is_its_number_times_its_suffix(n: int, suffix: str) -> None:
    assert parse_quantity(f"{n}{suffix}") == pytest.approx(n * _SCALES[suffix])


# ------------------------------------------------------------------------------ cron schedules


@pytest.mark.parametrize(
    "spec", ["@every 1s", "@weekly", "@midnight", "* * * * *", "0-59/15 0 1,15 * SUN", "? * * * ?"]
)
def test_cron_schedules_accepted(spec: str) -> None:
    assert validate_cron_spec(spec) == spec


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("@every 0s", "must be a positive duration"),
        ("@every soon", "failed to parse duration"),
        ("@fortnightly", "unrecognized descriptor"),
        ("* * * *", "expected exactly 5 fields"),
        ("*/0 * * * *", "invalid step"),
        ("5-1 * * * *", "out of range"),
        ("* 24 * * *", "out of range"),
        ("* * 0 * *", "out of range"),
        ("* * * foo *", "failed to parse month"),
    ],
)
def test_cron_schedules_refused(spec: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        validate_cron_spec(spec)
