"""The diabetes example (examples/diabetes): shipped data, the four stage programs, the specs.

The programs run as subprocesses on the shipped data; tmp directories stand in for /pfs.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

EX = Path(__file__).resolve().parents[2] / "examples" / "diabetes"
DATA = EX / "data"
HEADER = ["age", "sex", "bmi", "map", "tc", "ldl", "hdl", "tch", "ltg", "glu", "y"]
IMAGES = EX.parents[1] / "images" / "gc2018"
# The spec, the program its image runs (as in the workshop's specs).
SPEC_PROGRAMS = {
    "model.json": "train.py",
    "qc_pre_process.json": "qc_pre_process.py",
    "qcontrol.json": "qcontrol.py",
    "infer.json": "infer.py",
    "infer_parallel.json": "infer.py",
}


def run(script: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, str(EX / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def exact_ols(path: Path) -> tuple[Fraction, Fraction, Fraction]:
    """Solve the 3x3 normal equations X'X b = X'y exactly (Fractions, Cramer's rule)."""
    header, rows = read_rows(path)
    ib, il, iy = header.index("bmi"), header.index("ltg"), header.index("y")
    xs = [(Fraction(1), Fraction(r[ib]), Fraction(r[il])) for r in rows]
    ys = [Fraction(r[iy]) for r in rows]
    a = [[sum(x[i] * x[j] for x in xs) for j in range(3)] for i in range(3)]
    v = [sum(x[i] * y for x, y in zip(xs, ys, strict=True)) for i in range(3)]

    def det(m: list[list[Fraction]]) -> Fraction:
        return (
            m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
        )

    d = det(a)
    assert d != 0
    sol = []
    for k in range(3):
        mk = [[v[i] if j == k else a[i][j] for j in range(3)] for i in range(3)]
        sol.append(det(mk) / d)
    return sol[0], sol[1], sol[2]


def close(a: float, b: float | Fraction) -> bool:
    return math.isclose(a, float(b), rel_tol=1e-9, abs_tol=1e-9)


def train(tmp_path: Path, training: str) -> Path:
    out = tmp_path / "pfs" / "model"
    out.mkdir(parents=True)
    run("train.py", f"-inFile={DATA / training}", f"-outDir={out}")
    return out / "model.json"


def qc_files(tmp_path: Path) -> Path:
    out = tmp_path / "pfs" / "qc_pre_process"
    out.mkdir(parents=True)
    run("qc_pre_process.py", f"-inFile={DATA / 'holdout.csv'}", f"-outDir={out}")
    return out


def qcontrol(tmp_path: Path, model: Path, qc: Path) -> tuple[Path, str]:
    out = tmp_path / "pfs" / "qcontrol"
    out.mkdir(parents=True)
    proc = run(
        "qcontrol.py",
        f"-inModelFile={model}",
        f"-inTestDir={qc}",
        "-threshold=60.0",
        f"-outDir={out}",
    )
    return out, proc.stdout


def holdout_rmse(intercept: float, b_bmi: float, b_ltg: float) -> float:
    header, rows = read_rows(DATA / "holdout.csv")
    ib, il, iy = header.index("bmi"), header.index("ltg"), header.index("y")
    errs = [
        (intercept + b_bmi * float(r[ib]) + b_ltg * float(r[il]) - float(r[iy])) ** 2 for r in rows
    ]
    return math.sqrt(sum(errs) / len(errs))


# ---------------------------------------------------------------------------------------- data


def test_split_sizes_and_rows() -> None:
    n = 442
    train_n, test_n = round(n * 4 / 5), round(n / 10)
    holdout_n = n - train_n - test_n
    assert (train_n, test_n, holdout_n) == (354, 44, 44)

    header, everything = read_rows(DATA / "diabetes.csv")
    assert header == HEADER and len(everything) == n
    h1, prod = read_rows(DATA / "training_prod.csv")
    h2, holdout = read_rows(DATA / "holdout.csv")
    assert h1 == HEADER and h2 == HEADER
    assert len(prod) == train_n + test_n == 398
    assert len(holdout) == holdout_n == 44
    assert prod == everything[:398]
    assert holdout == everything[398:]
    assert prod[0] == everything[0] and prod[-1] == everything[397]
    assert holdout[0] == everything[398] and holdout[-1] == everything[-1]
    for row in everything:
        assert len(row) == 11
        assert all(math.isfinite(float(v)) for v in row)
    # the scaled data set: first patient, as scikit-learn ships it
    assert float(everything[0][2]) == pytest.approx(0.0616962065187, abs=1e-12)
    assert float(everything[0][10]) == 151.0


def test_edited_and_bad_training_sets() -> None:
    _, prod = read_rows(DATA / "training_prod.csv")
    h, edited = read_rows(DATA / "training_prod_edited.csv")
    assert h == HEADER
    assert 0 < len(prod) - len(edited) <= 5
    it = iter(prod)
    assert all(any(row == other for other in it) for row in edited)  # order-preserving subset
    h, bad = read_rows(DATA / "training_bad.csv")
    assert h == HEADER and len(bad) == len(prod)
    assert sorted(float(r[10]) for r in bad) == sorted(float(r[10]) for r in prod)
    assert [r[:10] for r in bad] == [r[:10] for r in prod]


def test_attribute_files_are_holdout_rows() -> None:
    header, holdout = read_rows(DATA / "holdout.csv")
    ib, il = header.index("bmi"), header.index("ltg")
    for k in (1, 2, 3):
        doc = json.loads((DATA / "test" / f"{k}.json").read_text())
        assert list(doc) == ["independent_variables"]
        assert [v["name"] for v in doc["independent_variables"]] == ["bmi", "ltg"]
        assert [sorted(v) for v in doc["independent_variables"]] == [["name", "value"]] * 2
        bmi, ltg = (v["value"] for v in doc["independent_variables"])
        assert bmi == float(holdout[k - 1][ib]) and ltg == float(holdout[k - 1][il])


# ---------------------------------------------------------------------------------------- train


@pytest.mark.parametrize("training", ["training_prod.csv", "training_prod_edited.csv"])
def test_train_matches_exact_ols(tmp_path: Path, training: str) -> None:
    model_file = train(tmp_path, training)
    text = model_file.read_text()
    model = json.loads(text)
    assert list(model) == ["intercept", "coefficients"]
    assert [c["name"] for c in model["coefficients"]] == ["bmi", "ltg"]
    a, b1, b2 = exact_ols(DATA / training)
    assert close(model["intercept"], a)
    assert close(model["coefficients"][0]["coefficient"], b1)
    assert close(model["coefficients"][1]["coefficient"], b2)
    # pretty-printed like Go's json.MarshalIndent(v, "", "  ")
    assert text.startswith('{\n  "intercept": ') and text.endswith("\n}")
    assert '\n  "coefficients": [\n    {\n      "name": "bmi",\n' in text


def test_train_flag_spellings(tmp_path: Path) -> None:
    for n, style in enumerate(("-{k}={v}", "-{k} {v}", "--{k}={v}", "--{k} {v}")):
        out = tmp_path / str(n)
        args: list[str] = []
        for k, v in (("inFile", str(DATA / "training_prod.csv")), ("outDir", str(out))):
            args += style.format(k=k, v=v).split(" ", 1)
        run("train.py", *args)
        assert (out / "model.json").is_file()
    assert len({(tmp_path / str(n) / "model.json").read_text() for n in range(4)}) == 1


def test_bad_input_fails_clearly(tmp_path: Path) -> None:
    out = str(tmp_path / "out")
    p = run("train.py", f"-outDir={out}", ok=False)
    assert p.returncode == 2 and "inFile" in p.stderr
    p = run("train.py", "-inFile=x.csv", f"-outDir={out}", "-bogus=1", ok=False)
    assert p.returncode == 2 and "bogus" in p.stderr
    p = run("train.py", f"-inFile={tmp_path / 'missing.csv'}", f"-outDir={out}", ok=False)
    assert p.returncode == 1 and "missing.csv" in p.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("bmi,ltg,y\n0.1,0.2,3\n0.2,oops,4\n0.3,0.1,5\n")
    p = run("train.py", f"-inFile={bad}", f"-outDir={out}", ok=False)
    assert p.returncode == 1 and "oops" in p.stderr
    bad.write_text("bmi,y\n0.1,3\n0.2,4\n0.3,5\n")
    p = run("train.py", f"-inFile={bad}", f"-outDir={out}", ok=False)
    assert p.returncode == 1 and "ltg" in p.stderr
    bad.write_text("bmi,ltg,y\n0.1,0.2,3\n0.2,0.4,4\n0.3,0.6,5\n")  # collinear
    p = run("train.py", f"-inFile={bad}", f"-outDir={out}", ok=False)
    assert p.returncode == 1 and "collinear" in p.stderr
    p = run("qc_pre_process.py", f"-inFile={bad}", ok=False)
    assert p.returncode == 2
    p = run(
        "qcontrol.py",
        "-inModelFile=m.json",
        "-inTestDir=t",
        "-threshold=high",
        f"-outDir={out}",
        ok=False,
    )
    assert p.returncode == 2 and "threshold" in p.stderr
    assert not Path(out).exists() or not any(Path(out).iterdir())


# ------------------------------------------------------------------------------ qc_pre_process


def test_qc_pre_process_one_file_per_holdout_row(tmp_path: Path) -> None:
    qc = qc_files(tmp_path)
    header, holdout = read_rows(DATA / "holdout.csv")
    assert sorted(p.name for p in qc.iterdir()) == sorted(f"{k}.json" for k in range(1, 45))
    for k, row in enumerate(holdout, start=1):
        doc = json.loads((qc / f"{k}.json").read_text())
        assert list(doc) == ["independent_variables", "dependent_variable"]
        assert doc["dependent_variable"] == float(row[10])
        assert [v["name"] for v in doc["independent_variables"]] == HEADER[:10]
        assert [v["value"] for v in doc["independent_variables"]] == [float(x) for x in row[:10]]


# ----------------------------------------------------------------------------------- qcontrol


def test_qcontrol_passes_real_model(tmp_path: Path) -> None:
    model_file = train(tmp_path, "training_prod.csv")
    model = json.loads(model_file.read_text())
    out, stdout = qcontrol(tmp_path, model_file, qc_files(tmp_path))
    assert "PASS" in stdout
    assert [p.name for p in out.iterdir()] == ["model.json"]
    checked = json.loads((out / "model.json").read_text())
    assert list(checked) == ["rmse", "intercept", "coefficients"]
    assert checked["intercept"] == model["intercept"]
    assert checked["coefficients"] == model["coefficients"]
    coefs = [c["coefficient"] for c in model["coefficients"]]
    expected = holdout_rmse(model["intercept"], *coefs)
    assert close(checked["rmse"], expected)
    assert checked["rmse"] < 60


@pytest.mark.parametrize("training", ["training_bad.csv"])
def test_qcontrol_rejects_bad_model(tmp_path: Path, training: str) -> None:
    model_file = train(tmp_path, training)
    model = json.loads(model_file.read_text())
    coefs = [c["coefficient"] for c in model["coefficients"]]
    assert holdout_rmse(model["intercept"], *coefs) > 60
    out, stdout = qcontrol(tmp_path, model_file, qc_files(tmp_path))
    assert "FAIL" in stdout
    assert list(out.iterdir()) == []
    # and infer then writes nothing
    inferred = tmp_path / "pfs" / "infer"
    p = run("infer.py", f"-inModelDir={out}", f"-inVarDir={DATA / 'test'}", f"-outDir={inferred}")
    assert "model.json" in p.stdout
    assert not inferred.exists() or list(inferred.iterdir()) == []


# -------------------------------------------------------------------------------------- infer


def test_infer_one_output_per_attribute_file(tmp_path: Path) -> None:
    model_file = train(tmp_path, "training_prod.csv")
    out, _ = qcontrol(tmp_path, model_file, qc_files(tmp_path))
    model = json.loads((out / "model.json").read_text())
    a = model["intercept"]
    b = {c["name"]: c["coefficient"] for c in model["coefficients"]}

    inferred = tmp_path / "pfs" / "infer"
    run("infer.py", f"-inModelDir={out}", f"-inVarDir={DATA / 'test'}", f"-outDir={inferred}")
    inputs = sorted(p.name for p in (DATA / "test").iterdir())
    assert sorted(p.name for p in inferred.iterdir()) == inputs
    for name in inputs:
        given = json.loads((DATA / "test" / name).read_text())
        doc = json.loads((inferred / name).read_text())
        assert list(doc) == ["predicted_diabetes_progression", "independent_variables"]
        assert doc["independent_variables"] == given["independent_variables"]
        v = {x["name"]: x["value"] for x in given["independent_variables"]}
        assert close(
            doc["predicted_diabetes_progression"], a + b["bmi"] * v["bmi"] + b["ltg"] * v["ltg"]
        )


def test_infer_single_datum_mount(tmp_path: Path) -> None:
    """With glob /* the datum's file is mounted alone, at its full path under /pfs/attributes."""
    model_file = train(tmp_path, "training_prod.csv")
    out, _ = qcontrol(tmp_path, model_file, qc_files(tmp_path))
    attrs = tmp_path / "pfs" / "attributes"
    attrs.mkdir()
    (attrs / "2.json").write_bytes((DATA / "test" / "2.json").read_bytes())
    inferred = tmp_path / "pfs" / "out"
    p = run("infer.py", f"-inModelDir={out}", f"-inVarDir={attrs}", f"-outDir={inferred}")
    assert "2.json" in p.stdout
    assert [x.name for x in inferred.iterdir()] == ["2.json"]


def test_infer_rejects_bad_attribute_file(tmp_path: Path) -> None:
    model_file = train(tmp_path, "training_prod.csv")
    attrs = tmp_path / "attrs"
    attrs.mkdir()
    (attrs / "1.json").write_text('{"independent_variables": [{"name": "bmi", "value": 0.1}]}')
    p = run(
        "infer.py",
        f"-inModelDir={model_file.parent}",
        f"-inVarDir={attrs}",
        f"-outDir={tmp_path / 'o'}",
        ok=False,
    )
    assert p.returncode == 1 and "ltg" in p.stderr


# ------------------------------------------------------------------------------ launchers/specs


def _containerfile(tag: str) -> tuple[list[str], dict[str, str]]:
    """The image tags and the COPY destinations (source -> path) of a workshop Containerfile."""
    text = (IMAGES / f"{tag}.Containerfile").read_text()
    tags = next(line.split(":", 1)[1].split() for line in text.splitlines()
                if line.startswith("# tags:"))  # fmt: skip
    copies = {}
    for line in text.splitlines():
        if line.startswith("COPY "):
            *_, src, dest = line.split()
            copies[src] = dest
    return tags, copies


def test_images_hold_the_programs_at_the_specs_paths() -> None:
    """Each spec's image is built from a Containerfile that puts its program at cmd[0]."""
    for spec, script in SPEC_PROGRAMS.items():
        doc = json.loads((EX / spec).read_text())
        image, command = doc["transform"]["image"], doc["transform"]["cmd"][0]
        tags, copies = _containerfile(image.split(":")[1])
        assert image in tags
        assert copies == {"diabetes_common.py": "/diabetes_common.py", script: command}
        assert (EX / script).read_text().startswith("#!/usr/bin/env python3\n")


def _atom(repo: str, glob: str) -> dict:
    return {"atom": {"repo": repo, "glob": glob}}


@pytest.mark.parametrize(
    ("spec", "name", "image", "program", "parallelism", "input_"),
    [
        ("model.json", "model", "gopherdata/gc2018:training", "/train", "1",
         _atom("training_data", "/")),
        ("qc_pre_process.json", "qc_pre_process", "gopherdata/gc2018:qcpre", "/qcpre", 1,
         _atom("qc_data", "/")),
        ("qcontrol.json", "qcontrol", "gopherdata/gc2018:qc", "/qcontrol", 1,
         {"cross": [_atom("qc_pre_process", "/"), _atom("model", "/")]}),
        ("infer.json", "infer", "gopherdata/gc2018:inference", "/infer", 1,
         {"cross": [_atom("attributes", "/*"), _atom("qcontrol", "/")]}),
        ("infer_parallel.json", "infer", "gopherdata/gc2018:inference", "/infer", "10",
         {"cross": [_atom("attributes", "/*"), _atom("qcontrol", "/")]}),
    ],
)  # fmt: skip
def test_pipeline_specs(
    spec: str, name: str, image: str, program: str, parallelism: object, input_: dict
) -> None:
    doc = json.loads((EX / spec).read_text())
    assert doc["pipeline"] == {"name": name}
    assert doc["transform"]["image"] == image
    cmd = doc["transform"]["cmd"]
    assert cmd[0] == program
    assert all(a.startswith("-") and "=" in a for a in cmd[1:])
    assert "-outDir=/pfs/out" in cmd
    assert doc["parallelism_spec"] == {"constant": parallelism}
    assert doc["input"] == input_


def test_spec_flags_match_workshop() -> None:
    cmds = {s: json.loads((EX / s).read_text())["transform"]["cmd"][1:] for s in
            ("model.json", "qc_pre_process.json", "qcontrol.json", "infer.json")}  # fmt: skip
    assert cmds["model.json"] == [
        "-inFile=/pfs/training_data/training_prod.csv",
        "-outDir=/pfs/out",
    ]
    assert cmds["qc_pre_process.json"] == ["-inFile=/pfs/qc_data/holdout.csv", "-outDir=/pfs/out"]
    assert cmds["qcontrol.json"] == [
        "-inModelFile=/pfs/model/model.json",
        "-inTestDir=/pfs/qc_pre_process",
        "-threshold=60.0",
        "-outDir=/pfs/out",
    ]
    assert cmds["infer.json"] == [
        "-inModelDir=/pfs/qcontrol",
        "-inVarDir=/pfs/attributes",
        "-outDir=/pfs/out",
    ]
    infer = json.loads((EX / "infer.json").read_text())
    parallel = json.loads((EX / "infer_parallel.json").read_text())
    infer.pop("parallelism_spec")
    parallel.pop("parallelism_spec")
    assert infer == parallel


# --------------------------------------------------------------------------- JSON number format


def test_go_style_float_format(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("diabetes_common", EX / "diabetes_common.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "diabetes_common", mod)
    spec.loader.exec_module(mod)
    cases = {
        151.0: "151",
        5e-05: "0.00005",
        1e-07: "1e-7",
        1.5e-10: "1.5e-10",
        1e21: "1e+21",
        0.1: "0.1",
        -2.5e-06: "-0.0000025",
        676.7442087119301: "676.7442087119301",
    }
    for value, text in cases.items():
        assert mod._go_float(value) == text
        assert float(text) == value
    assert mod.dumps_go({"a": [1.0, {"b": "c"}], "d": []}) == (
        '{\n  "a": [\n    1,\n    {\n      "b": "c"\n    }\n  ],\n  "d": []\n}'
    )
