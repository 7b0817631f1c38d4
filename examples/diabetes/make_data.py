#!/usr/bin/env python3
"""Regenerate the data files of the diabetes example from scikit-learn.

This script is *not* run by the tests or by the pipelines: the files it writes are committed
under ``data/``.  It needs scikit-learn (``pip install scikit-learn`` into a throwaway
virtualenv) and only exists so that anyone can check where the data came from::

    python3 -m venv sk-venv && sk-venv/bin/pip install scikit-learn
    sk-venv/bin/python examples/diabetes/make_data.py

It writes, next to itself, in ``data/``:

* ``diabetes.csv``           all 442 rows of ``load_diabetes(scaled=True)``
* ``training_prod.csv``      rows 1-398 (training 1-354 + test 355-398)
* ``holdout.csv``            rows 399-442
* ``training_prod_edited.csv`` training_prod.csv without two observations (EDITED_DROP)
* ``training_bad.csv``       training_prod.csv with ``y`` shuffled (fails QC)
* ``test/1.json`` ``test/2.json`` ``test/3.json``  attributes of holdout rows 1, 2 and 3

Floats are written with ``repr`` so that they round-trip exactly.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HEADER = ["age", "sex", "bmi", "map", "tc", "ldl", "hdl", "tch", "ltg", "glu", "y"]

N_ROWS = 442
N_TRAIN = round(N_ROWS * 4 / 5)  # 353.6 -> 354
N_TEST = round(N_ROWS / 10)  # 44.2 -> 44
N_HOLDOUT = N_ROWS - N_TRAIN - N_TEST  # 44; the three parts cover every row
N_PROD = N_TRAIN + N_TEST  # 398

# 0-based indexes (into training_prod.csv's data rows) of the observations removed in
# training_prod_edited.csv (the seed's exercise 2, "remove a couple of the observations").
EDITED_DROP = (26, 68)

# Seed of the shuffle of y that makes training_bad.csv.
BAD_SEED = 1701

ATTRIBUTE_FILES = 3  # data/test/1.json .. 3.json from holdout rows 1..3


def fmt(v: float) -> str:
    return repr(float(v))


def write_csv(path: Path, rows: list[list[float]]) -> None:
    lines = [",".join(HEADER)] + [",".join(fmt(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    from sklearn.datasets import load_diabetes

    ds = load_diabetes(scaled=True)
    assert list(ds.feature_names) == ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
    rows = [[float(v) for v in x] + [float(t)] for x, t in zip(ds.data, ds.target, strict=True)]
    assert len(rows) == N_ROWS

    data = Path(__file__).resolve().parent / "data"
    (data / "test").mkdir(parents=True, exist_ok=True)

    prod = rows[:N_PROD]
    holdout = rows[N_PROD:]
    assert len(holdout) == N_HOLDOUT

    write_csv(data / "diabetes.csv", rows)
    write_csv(data / "training_prod.csv", prod)
    write_csv(data / "holdout.csv", holdout)
    write_csv(
        data / "training_prod_edited.csv", [r for i, r in enumerate(prod) if i not in EDITED_DROP]
    )

    ys = [r[-1] for r in prod]
    random.Random(BAD_SEED).shuffle(ys)
    write_csv(data / "training_bad.csv", [r[:-1] + [y] for r, y in zip(prod, ys, strict=True)])

    bmi, ltg = HEADER.index("bmi"), HEADER.index("ltg")
    for n in range(1, ATTRIBUTE_FILES + 1):
        row = holdout[n - 1]
        doc = {
            "independent_variables": [
                {"name": "bmi", "value": row[bmi]},
                {"name": "ltg", "value": row[ltg]},
            ]
        }
        (data / "test" / f"{n}.json").write_text(json.dumps(doc) + "\n")


if __name__ == "__main__":
    main()
