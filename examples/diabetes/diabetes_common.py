"""Helpers shared by the four programs of the diabetes example (standard library only).

* ``parse_flags``: command-line flags the way Go's ``flag`` package reads them
  (``-name=value``, ``-name value``, ``--name=value``, ``--name value``).
* ``dumps_go``: JSON text as Go's ``json.MarshalIndent(v, "", "  ")`` writes it (two-space
  indent, no trailing newline, floats in Go's notation: ``151`` rather than ``151.0``,
  ``0.00005`` rather than ``5e-05``), so file sizes match the Go programs of the workshop.
* ``die``: print an error to stderr and exit non-zero.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NoReturn

__all__ = [
    "Flag",
    "check_model",
    "die",
    "dumps_go",
    "finite_float",
    "iter_files",
    "load_json",
    "parse_flags",
    "predict",
    "write_text",
]


@dataclass(frozen=True)
class Flag:
    name: str
    help: str
    kind: type = str  # str or float
    default: Any = None  # None: the flag is required


def die(prog: str, message: str, code: int = 1) -> NoReturn:
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def _usage(prog: str, flags: list[Flag]) -> str:
    lines = [f"Usage of {prog}:"]
    for f in flags:
        kind = "float" if f.kind is float else "string"
        default = "" if f.default is None else f" (default {f.default})"
        lines.append(f"  -{f.name} {kind}\n    \t{f.help}{default}")
    return "\n".join(lines)


def parse_flags(prog: str, flags: list[Flag], argv: list[str] | None = None) -> dict[str, Any]:
    """Parse Go-style flags; exit 2 with a message on any error, 0 after ``-h``."""
    args = list(sys.argv[1:] if argv is None else argv)
    by_name = {f.name: f for f in flags}
    raw: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            break
        if not arg.startswith("-") or arg == "-":
            die(prog, f"unexpected argument {arg!r}\n{_usage(prog, flags)}", 2)
        body = arg[2:] if arg.startswith("--") else arg[1:]
        name, eq, value = body.partition("=")
        if name in ("h", "help"):
            print(_usage(prog, flags))
            raise SystemExit(0)
        if name not in by_name:
            die(prog, f"flag provided but not defined: -{name}\n{_usage(prog, flags)}", 2)
        if not eq:
            if i >= len(args):
                die(prog, f"flag needs an argument: -{name}", 2)
            value = args[i]
            i += 1
        raw[name] = value
    if i < len(args):
        die(prog, f"unexpected argument {args[i]!r}", 2)
    out: dict[str, Any] = {}
    for f in flags:
        if f.name not in raw:
            if f.default is None:
                die(prog, f"missing required flag -{f.name}\n{_usage(prog, flags)}", 2)
            out[f.name] = f.default
            continue
        value = raw[f.name]
        if f.kind is float:
            try:
                out[f.name] = finite_float(value)
            except ValueError:
                die(prog, f"invalid value {value!r} for flag -{f.name}: not a number", 2)
        else:
            if value == "":
                die(prog, f"flag -{f.name} must not be empty", 2)
            out[f.name] = value
    return out


def finite_float(text: Any) -> float:
    """``float(text)``, refusing NaN, infinities and booleans (ValueError)."""
    if isinstance(text, bool):
        raise ValueError(f"not a number: {text!r}")
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {text!r}")
    return value


def _go_float(x: float) -> str:
    if not math.isfinite(x):
        raise ValueError(f"JSON cannot hold {x!r}")
    r = repr(float(x))
    a = abs(x)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        mantissa, _, exp = r.partition("e")
        if not exp:  # repr chose fixed notation; Go wants an exponent
            mantissa, _, exp = f"{Decimal(r):e}".partition("e")
        if mantissa.endswith(".0"):
            mantissa = mantissa[:-2]
        digits = exp.lstrip("+-").lstrip("0") or "0"
        if exp.startswith("-"):  # Go writes e-7 (it trims e-07) but e+21
            return f"{mantissa}e-{digits}"
        return f"{mantissa}e+{digits.zfill(2)}"
    text = format(Decimal(r), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _dump(v: Any, indent: str, out: list[str]) -> None:
    if isinstance(v, bool) or v is None:
        out.append(json.dumps(v))
    elif isinstance(v, float):
        out.append(_go_float(v))
    elif isinstance(v, int):
        out.append(str(v))
    elif isinstance(v, str):
        out.append(json.dumps(v))
    elif isinstance(v, dict):
        if not v:
            out.append("{}")
            return
        inner = indent + "  "
        out.append("{\n")
        for n, (key, val) in enumerate(v.items()):
            out.append(f"{inner}{json.dumps(str(key))}: ")
            _dump(val, inner, out)
            out.append(",\n" if n < len(v) - 1 else "\n")
        out.append(indent + "}")
    elif isinstance(v, list | tuple):
        if not v:
            out.append("[]")
            return
        inner = indent + "  "
        out.append("[\n")
        for n, val in enumerate(v):
            out.append(inner)
            _dump(val, inner, out)
            out.append(",\n" if n < len(v) - 1 else "\n")
        out.append(indent + "]")
    else:
        raise TypeError(f"cannot encode {type(v).__name__} as JSON")


def dumps_go(v: Any) -> str:
    out: list[str] = []
    _dump(v, "", out)
    return "".join(out)


def write_text(path: str, text: str) -> None:
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def load_json(prog: str, path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except OSError as e:
        die(prog, f"cannot read {path}: {e.strerror or e}")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        die(prog, f"{path} is not valid JSON: {e}")


def iter_files(root: str) -> Iterator[tuple[str, str]]:
    """Yield ``(path, path relative to root)`` for every regular file under ``root``, sorted."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if os.path.isfile(path):
                yield path, os.path.relpath(path, root)


def predict(model: dict[str, Any], variables: Any) -> float:
    """intercept + sum(coefficient * value) over the model's coefficients (ValueError if unusable)."""
    if not isinstance(variables, list):
        raise ValueError('"independent_variables" must be a list')
    values: dict[str, float] = {}
    for var in variables:
        if not isinstance(var, dict) or not isinstance(var.get("name"), str) or "value" not in var:
            raise ValueError('each independent variable must be {"name": str, "value": number}')
        values[var["name"]] = finite_float(var["value"])
    prediction = finite_float(model["intercept"])
    for coef in model["coefficients"]:
        name = coef["name"]
        if name not in values:
            raise ValueError(f"expected a value for variable {name!r}")
        prediction += finite_float(coef["coefficient"]) * values[name]
    return prediction


def check_model(model: Any) -> str | None:
    """Return a description of what is wrong with a model document, or None if it is usable."""
    if not isinstance(model, dict):
        return "the model must be a JSON object"
    if "intercept" not in model or "coefficients" not in model:
        return 'the model needs "intercept" and "coefficients"'
    try:
        finite_float(model["intercept"])
    except ValueError:
        return '"intercept" must be a number'
    coefs = model["coefficients"]
    if not isinstance(coefs, list):
        return '"coefficients" must be a list'
    for c in coefs:
        if not isinstance(c, dict) or not isinstance(c.get("name"), str):
            return 'each coefficient must be {"name": str, "coefficient": number}'
        try:
            finite_float(c.get("coefficient"))
        except ValueError:
            return f"coefficient of {c['name']!r} must be a number"
    return None
