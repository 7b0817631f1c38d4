#!/usr/bin/env python3
"""Quality-control a trained model against the pre-processed holdout set.

    qcontrol.py -inModelFile=/pfs/model/model.json -inTestDir=/pfs/qc_pre_process \
                -threshold=60.0 -outDir=/pfs/out

Predicts ``dependent_variable`` for every file under ``inTestDir`` (recursively; the files
``qc_pre_process`` writes) and computes the root-mean-square error.  If RMSE <= threshold it
writes ``<outDir>/model.json``: the model with ``"rmse"`` added (as the first key, as the Go
program of the workshop did); otherwise it writes nothing, so nothing downstream sees a bad
model.  Either way it prints the RMSE and the verdict.  Standard library only.
"""

from __future__ import annotations

import math
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

PROG = "qcontrol"


def observed_value(doc: dict) -> float:
    dv = doc["dependent_variable"]
    if isinstance(dv, dict):  # also accept {"name": "y", "value": f}
        dv = dv.get("value")
    return finite_float(dv)


def main(argv: list[str] | None = None) -> int:
    opts = parse_flags(
        PROG,
        [
            Flag("inModelFile", "The file containing the model."),
            Flag("inTestDir", "The directory containing files to be used in qc evaluation."),
            Flag("threshold", "The threshold for allowing a model to pass QC", float, 60.0),
            Flag("outDir", "The output directory"),
        ],
        argv,
    )
    model_file, test_dir = opts["inModelFile"], opts["inTestDir"]
    threshold, out_dir = opts["threshold"], opts["outDir"]

    model = load_json(PROG, model_file)
    problem = check_model(model)
    if problem:
        die(PROG, f"{model_file}: {problem}")
    if not os.path.isdir(test_dir):
        die(PROG, f"{test_dir} is not a directory")

    squares = []
    for path, _rel in iter_files(test_dir):
        doc = load_json(PROG, path)
        if not isinstance(doc, dict) or "dependent_variable" not in doc:
            die(
                PROG,
                f'{path}: expected an object with "independent_variables" and "dependent_variable"',
            )
        try:
            err = predict(model, doc.get("independent_variables")) - observed_value(doc)
        except (ValueError, KeyError) as e:
            die(PROG, f"{path}: {e}")
        squares.append(err * err)
    if not squares:
        die(PROG, f"no test files under {test_dir}")

    rmse = math.sqrt(math.fsum(squares) / len(squares))
    passed = rmse <= threshold
    verdict = "PASS" if passed else "FAIL"
    cmp = "<=" if passed else ">"
    print(f"{PROG}: RMSE {rmse!r} over {len(squares)} observations")
    print(f"{PROG}: {verdict} (RMSE {cmp} threshold {threshold!r})")
    if passed:
        out = os.path.join(out_dir, "model.json")
        try:
            write_text(
                out, dumps_go({"rmse": rmse, **{k: v for k, v in model.items() if k != "rmse"}})
            )
        except OSError as e:
            die(PROG, f"cannot write {out}: {e.strerror or e}")
        print(f"{PROG}: wrote {out}")
    else:
        print(f"{PROG}: the model is not passed on; nothing written to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
