#!/usr/bin/env python3
"""Train the diabetes model: ordinary least squares of ``y`` on ``bmi`` and ``ltg``.

    train.py -inFile=/pfs/training_data/training_prod.csv -outDir=/pfs/out

Reads a CSV file whose header names at least the columns ``bmi``, ``ltg`` and ``y`` and writes
``<outDir>/model.json``::

    {
      "intercept": f,
      "coefficients": [
        {"name": "bmi", "coefficient": f},
        {"name": "ltg", "coefficient": f}
      ]
    }

(pretty-printed with a two-space indent, as Go's ``json.MarshalIndent``).  Standard library only.
"""

from __future__ import annotations

import csv
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from diabetes_common import Flag, die, dumps_go, finite_float, parse_flags, write_text  # noqa: E402

PROG = "train"
REGRESSORS = ("bmi", "ltg")
TARGET = "y"


def read_columns(path: str, names: tuple[str, ...]) -> list[list[float]]:
    """Return one list of floats per requested column of the CSV file at ``path``."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = [row for row in csv.reader(fh) if any(cell.strip() for cell in row)]
    except OSError as e:
        die(PROG, f"cannot read {path}: {e.strerror or e}")
    except (csv.Error, UnicodeDecodeError) as e:
        die(PROG, f"{path} is not a readable CSV file: {e}")
    if not rows:
        die(PROG, f"{path} is empty (expected a header line)")
    header = [h.strip() for h in rows[0]]
    missing = [n for n in names if n not in header]
    if missing:
        die(PROG, f"{path}: header {','.join(header)!r} lacks column(s) {', '.join(missing)}")
    index = [header.index(n) for n in names]
    cols: list[list[float]] = [[] for _ in names]
    for lineno, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            die(
                PROG, f"{path}: record {lineno} has {len(row)} fields, the header has {len(header)}"
            )
        for col, i in zip(cols, index, strict=True):
            try:
                col.append(finite_float(row[i].strip()))
            except ValueError:
                die(
                    PROG, f"{path}: record {lineno}, column {header[i]}: {row[i]!r} is not a number"
                )
    return cols


def ols2(x1: list[float], x2: list[float], y: list[float]) -> tuple[float, float, float]:
    """Intercept and the two slopes of the least-squares plane y = a + b1*x1 + b2*x2."""
    n = len(y)
    m1, m2, my = math.fsum(x1) / n, math.fsum(x2) / n, math.fsum(y) / n
    d1 = [v - m1 for v in x1]
    d2 = [v - m2 for v in x2]
    dy = [v - my for v in y]
    s11 = math.fsum(a * a for a in d1)
    s22 = math.fsum(b * b for b in d2)
    s12 = math.fsum(a * b for a, b in zip(d1, d2, strict=True))
    s1y = math.fsum(a * c for a, c in zip(d1, dy, strict=True))
    s2y = math.fsum(b * c for b, c in zip(d2, dy, strict=True))
    det = s11 * s22 - s12 * s12
    if not det > 1e-12 * s11 * s22 or det == 0:
        raise ValueError("the regressors are constant or collinear; the fit is not unique")
    b1 = (s22 * s1y - s12 * s2y) / det
    b2 = (s11 * s2y - s12 * s1y) / det
    return my - b1 * m1 - b2 * m2, b1, b2


def main(argv: list[str] | None = None) -> int:
    opts = parse_flags(
        PROG,
        [
            Flag("inFile", "The file containing the training data."),
            Flag("outDir", "The output directory"),
        ],
        argv,
    )
    in_file, out_dir = opts["inFile"], opts["outDir"]
    x1, x2, y = read_columns(in_file, (*REGRESSORS, TARGET))
    if len(y) < 3:
        die(PROG, f"{in_file}: need at least 3 observations, found {len(y)}")
    print(f"{PROG}: read {len(y)} observations from {in_file}")
    try:
        intercept, b1, b2 = ols2(x1, x2, y)
    except ValueError as e:
        die(PROG, f"{in_file}: {e}")
    model = {
        "intercept": intercept,
        "coefficients": [
            {"name": REGRESSORS[0], "coefficient": b1},
            {"name": REGRESSORS[1], "coefficient": b2},
        ],
    }
    out = os.path.join(out_dir, "model.json")
    try:
        write_text(out, dumps_go(model))
    except OSError as e:
        die(PROG, f"cannot write {out}: {e.strerror or e}")
    print(f"{PROG}: y = {intercept!r} + {b1!r}*bmi + {b2!r}*ltg -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
