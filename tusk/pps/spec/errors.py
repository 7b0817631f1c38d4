"""Pydantic's validation errors turned into :class:`~tusk.errors.InvalidSpec`: one message that
names the field (``input.cross[1].atom.glob``), the fix, and for an unknown key the known key it
was probably meant to be.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, Union

from pydantic import BaseModel, ValidationError

from tusk.errors import InvalidSpec
from tusk.pps.spec.base import SpecProblem


def to_invalid_spec(exc: ValidationError, root: type[BaseModel]) -> InvalidSpec:
    """The :class:`InvalidSpec` for the first problem of validating a ``root`` model."""
    errors = exc.errors()
    # A misspelt key also makes the real one "missing"; the misspelling is the news.
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(err["loc"])
    rest = len(errors) - 1
    if err["type"] == "extra_forbidden":
        rest = sum(e["type"] != "missing" for e in errors) - 1
    more = f" (and {rest} more problem{'s' if rest > 1 else ''})" if rest else ""
    if err["type"] == "extra_forbidden":
        key = str(loc[-1])
        parent = _format_loc(loc[:-1])
        cls = _model_at(root, tuple(s for s in loc[:-1] if not _is_union_tag(s)))
        known: list[str] = []
        if cls is not None:
            for fname, finfo in cls.model_fields.items():
                known += [fname] + ([finfo.alias] if finfo.alias else [])
        close = difflib.get_close_matches(key, known, n=1)
        where = f" in {parent}" if parent else ""
        return InvalidSpec(
            f'malformed pipeline spec: unknown field "{key}"{where}{more}',
            hint=f'did you mean "{close[0]}"?' if close else "remove the field",
            field=_join(parent, key),
        )
    ctx = err.get("ctx") or {}
    problem = ctx.get("error")
    field = _format_loc(loc)
    if isinstance(problem, SpecProblem):
        field = _join(field, problem.field)
        msg = f"{field}: {problem.message}" if field else problem.message
        return InvalidSpec(f"invalid pipeline spec: {msg}{more}", hint=problem.hint, field=field)
    if err["type"] in ("model_type", "model_attributes_type") and not loc:
        return InvalidSpec(
            "malformed pipeline spec: expected an object",
            hint="a spec is a JSON object or YAML mapping",
        )
    text = err["msg"]
    if err["type"] == "missing":
        text = "missing required field"
    return InvalidSpec(
        f"malformed pipeline spec: {field}: {text}{more}" if field else f"malformed spec: {text}",
        hint="check the field against the pipeline spec reference",
        field=field,
    )


def _model_at(root: type[BaseModel], path: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model class a (field-name) error location points into."""
    cls: type[BaseModel] | None = root
    for seg in path:
        if isinstance(seg, int) or cls is None:
            continue
        field = cls.model_fields.get(seg)
        cls = _model_in(field.annotation) if field is not None else None
    return cls


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (Union, types.UnionType, tuple, list):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _is_union_tag(seg: str | int) -> bool:
    """Pydantic puts union member names (``int``, ``GPUSpec``) into error locations."""
    if isinstance(seg, int):
        return False
    return seg in ("int", "float", "str", "bool") or (seg[:1].isupper() and seg != "URL")


def _format_loc(loc: tuple[str | int, ...]) -> str:
    out = ""
    for seg in loc:
        if isinstance(seg, int):
            out += f"[{seg}]"
        elif _is_union_tag(seg):
            continue
        else:
            out += f".{seg}" if out else seg
    return out


def _join(base: str, rel: str) -> str:
    if not rel:
        return base
    if not base:
        return rel
    return base + rel if rel.startswith("[") else f"{base}.{rel}"
