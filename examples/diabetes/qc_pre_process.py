#!/usr/bin/env python3
"""Pre-process the holdout set for quality control: one JSON file per observation.

    qc_pre_process.py -inFile=/pfs/qc_data/holdout.csv -outDir=/pfs/out

Reads a CSV file with a header line that includes the target column ``y``.  For the k-th data
row (k = 1, 2, ...) it writes ``<outDir>/<k>.json``::

    {
      "independent_variables": [
        {"name": "age", "value": f},
        ...                              (every column but y, in header order)
      ],
      "dependent_variable": f            (the observed y)
    }

pretty-printed with a two-space indent (Go's ``json.MarshalIndent``), as the Go program of the
workshop did.  ``qcontrol`` reads these files.  Standard library only.
"""

from __future__ import annotations

import csv
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from diabetes_common import Flag, die, dumps_go, finite_float, parse_flags, write_text  # noqa: E402

PROG = "qc_pre_process"
TARGET = "y"


def main(argv: list[str] | None = None) -> int:
    opts = parse_flags(
        PROG,
        [
            Flag("inFile", "The file containing the qc data."),
            Flag("outDir", "The output directory"),
        ],
        argv,
    )
    in_file, out_dir = opts["inFile"], opts["outDir"]
    try:
        with open(in_file, newline="", encoding="utf-8") as fh:
            rows = [row for row in csv.reader(fh) if any(cell.strip() for cell in row)]
    except OSError as e:
        die(PROG, f"cannot read {in_file}: {e.strerror or e}")
    except (csv.Error, UnicodeDecodeError) as e:
        die(PROG, f"{in_file} is not a readable CSV file: {e}")
    if not rows:
        die(PROG, f"{in_file} is empty (expected a header line)")
    header = [h.strip() for h in rows[0]]
    if TARGET not in header:
        die(PROG, f"{in_file}: header {','.join(header)!r} lacks the column {TARGET}")
    if len(set(header)) != len(header) or "" in header:
        die(PROG, f"{in_file}: header {','.join(header)!r} has empty or repeated column names")
    target = header.index(TARGET)
    docs = []
    for lineno, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            die(
                PROG,
                f"{in_file}: record {lineno} has {len(row)} fields, the header has {len(header)}",
            )
        values = []
        for name, cell in zip(header, row, strict=True):
            try:
                values.append(finite_float(cell.strip()))
            except ValueError:
                die(PROG, f"{in_file}: record {lineno}, column {name}: {cell!r} is not a number")
        docs.append(
            {
                "independent_variables": [
                    {"name": name, "value": v}
                    for i, (name, v) in enumerate(zip(header, values, strict=True))
                    if i != target
                ],
                "dependent_variable": values[target],
            }
        )
    if not docs:
        die(PROG, f"{in_file} has a header but no observations")
    for k, doc in enumerate(docs, start=1):
        out = os.path.join(out_dir, f"{k}.json")
        try:
            write_text(out, dumps_go(doc))
        except OSError as e:
            die(PROG, f"cannot write {out}: {e.strerror or e}")
    print(
        f"{PROG}: wrote {len(docs)} files (1.json .. {len(docs)}.json) from {in_file} to {out_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
