"""What every spec model shares: the strict base model, the problem a validator raises (a
message, the field it is about and a fix), and the field checks and value types the models use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainValidator
from pydantic.alias_generators import to_camel

from tusk.errors import InvalidArgument
from tusk.pfs.glob import compile_glob
from tusk.pps.spec.units import parse_duration

DEFAULT_BRANCH = "master"

_DURATION_HINT = 'write durations as Go duration strings, e.g. "30s", "5m", "1h30m"'


class SpecProblem(ValueError):
    """A validation failure that knows its field path (relative to where it is raised) and fix."""

    def __init__(self, message: str, *, field: str = "", hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.hint = hint


class SpecModel(BaseModel):
    """Base of the spec models: frozen, unknown keys refused, snake_case or lowerCamel keys."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        loc_by_alias=False,
    )


def _duration(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise SpecProblem(f"expected a duration string, got {value!r}", hint=_DURATION_HINT)
    try:
        seconds = parse_duration(value)
    except ValueError as e:
        raise SpecProblem(str(e), hint=_DURATION_HINT) from None
    if seconds < 0:
        raise SpecProblem(f'duration "{value}" is negative', hint="use a positive duration")
    return value


def _quantity(value: Any) -> int | float | str:
    # Resource amounts are kept exactly as given (1.7 takes cpu as a float, memory as a string).
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise SpecProblem(
            f"expected a number or a quantity string, got {value!r}",
            hint='e.g. "cpu": 0.5, "memory": "64M", "disk": "1G"',
        )
    return value


Duration = Annotated[str | None, PlainValidator(_duration)]
Quantity = Annotated[int | float | str, PlainValidator(_quantity)]


def check_glob(glob: str) -> None:
    """Raise a problem on ``glob`` unless it is a valid input glob."""
    try:
        compile_glob(glob)
    except InvalidArgument as e:
        raise SpecProblem(e.message, field="glob", hint=e.hint) from None


def check_name(check: Callable[[str], str], value: str, field: str) -> None:
    """Run a repo or branch name check, raising its complaint as a problem on ``field``."""
    try:
        check(value)
    except InvalidArgument as e:
        raise SpecProblem(e.message, field=field, hint=e.hint) from None
