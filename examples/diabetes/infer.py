#!/usr/bin/env python3
"""Predict diabetes progression for patient attribute files with a quality-controlled model.

    infer.py -inModelDir=/pfs/qcontrol -inVarDir=/pfs/attributes -outDir=/pfs/out

Reads ``<inModelDir>/model.json`` and, for every file under ``inVarDir`` (recursively: the
pipeline mounts only the datum's file, at its full path) such as::

    {"independent_variables": [{"name": "bmi", "value": f}, {"name": "ltg", "value": f}]}

writes a file of the same relative path under ``outDir``::

    {
      "predicted_diabetes_progression": f,
      "independent_variables": [ ...the input variables, echoed... ]
    }

If there is no ``model.json`` (the model failed QC) it writes nothing and says so.
Standard library only.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from diabetes_common import (  # noqa: E402
    Flag,
    check_model,
    die,
    dumps_go,
    finite_float,
    iter_files,
    load_json,
    parse_flags,
    predict,
    write_text,
)

PROG = "infer"


def main(argv: list[str] | None = None) -> int:
    opts = parse_flags(
        PROG,
        [
            Flag("inModelDir", "The directory containing the model."),
            Flag("inVarDir", "The directory containing the independent variables."),
            Flag("outDir", "The output directory"),
        ],
        argv,
    )
    model_dir, var_dir, out_dir = opts["inModelDir"], opts["inVarDir"], opts["outDir"]

    model_file = os.path.join(model_dir, "model.json")
    if not os.path.isfile(model_file):
        print(f"{PROG}: no model.json in {model_dir} (no model passed QC); nothing to infer")
        return 0
    model = load_json(PROG, model_file)
    problem = check_model(model)
    if problem:
        die(PROG, f"{model_file}: {problem}")

    if os.path.isfile(var_dir):
        files = [(var_dir, os.path.basename(var_dir))]
    elif os.path.isdir(var_dir):
        files = list(iter_files(var_dir))
    else:
        die(PROG, f"{var_dir} does not exist")

    for path, rel in files:
        doc = load_json(PROG, path)
        if not isinstance(doc, dict) or "independent_variables" not in doc:
            die(PROG, f'{path}: expected an object with "independent_variables"')
        try:
            prediction = predict(model, doc["independent_variables"])
            echoed = [
                {"name": v["name"], "value": finite_float(v["value"])}
                for v in doc["independent_variables"]
            ]
        except ValueError as e:
            die(PROG, f"{path}: {e}")
        out = os.path.join(out_dir, rel)
        try:
            write_text(
                out,
                dumps_go(
                    {"predicted_diabetes_progression": prediction, "independent_variables": echoed}
                ),
            )
        except OSError as e:
            die(PROG, f"cannot write {out}: {e.strerror or e}")
        print(f"{PROG}: {rel}: predicted diabetes progression {prediction!r}")
    if not files:
        print(f"{PROG}: no attribute files under {var_dir}; nothing to infer")
    return 0


if __name__ == "__main__":
    sys.exit(main())
