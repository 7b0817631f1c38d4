"""The workshop, end to end, through the `pachctl` entry point against a real server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tusk.testing import Tuskd, clean_env, wait_for

from .conftest import raw_objects

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "diabetes"
PACHCTL = Path(sys.executable).parent / "pachctl"
TERMINAL = {"success", "failure", "killed"}


class Pachctl:
    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        path = f"{PACHCTL.parent}{os.pathsep}{os.environ['PATH']}"
        self.env = clean_env(env, PATH=path)
        self.cwd = cwd

    def __call__(self, *args: str) -> str:
        proc = subprocess.run(
            [str(PACHCTL), *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, f"pachctl {' '.join(args)}: {proc.stderr}"
        return proc.stdout

    def binary(self, *args: str) -> bytes:
        proc = subprocess.run(
            [str(PACHCTL), *args], cwd=self.cwd, env=self.env, capture_output=True, timeout=120
        )
        assert proc.returncode == 0, f"pachctl {' '.join(args)}: {proc.stderr.decode()}"
        return proc.stdout

    def raw(self, *args: str) -> list[Any]:
        return raw_objects(self(*args, "--raw"))

    def jobs(self, pipeline: str | None = None) -> list[dict[str, Any]]:
        return self.raw("list-job", *(["-p", pipeline] if pipeline else []))

    def settle(self, timeout: float = 120) -> list[dict[str, Any]]:
        def finished() -> list[dict[str, Any]] | None:
            jobs = self.jobs()
            return jobs if all(j["state"] in TERMINAL for j in jobs) else None

        return wait_for("every job to finish", finished, timeout, interval=0.1)

    def head(self, repo: str) -> str:
        return str(self.raw("inspect-commit", repo, "master")[0]["commit"]["id"])

    def replace_training_set(self, name: str) -> None:
        """The seed's exercise 2: edit data/training_prod.csv, then put it with -o."""
        shutil.copy(self.cwd / "data" / name, self.cwd / "data" / "training_prod.csv")
        self(
            "put-file",
            "training_data",
            "master",
            "training_prod.csv",
            "-o",
            "-f",
            "data/training_prod.csv",
        )

    def get_json(self, repo: str, ref: str, path: str) -> Any:
        return json.loads(self("get-file", repo, ref, path))


def progress(job: dict[str, Any]) -> str:
    return f"{job['processed']} + {job['skipped']} / {job['total']}"


@pytest.fixture(scope="module")
def pachctl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pachctl]:
    images = sorted({json.loads((EXAMPLE / f"{s}.json").read_text())["transform"]["image"]
                     for s in ("model", "qc_pre_process", "qcontrol", "infer")})  # fmt: skip
    podman = shutil.which("podman")
    assert podman, "podman is not installed: run scripts/setup.sh (it says what to install)"
    missing = [i for i in images if subprocess.run([podman, "image", "exists", i]).returncode]
    assert not missing, f"images {missing} are not built: run scripts/build-images.sh"
    home = tmp_path_factory.mktemp("workshop-home")
    work = tmp_path_factory.mktemp("workshop")
    shutil.copytree(EXAMPLE / "data", work / "data")
    for spec in ("model", "qc_pre_process", "qcontrol", "infer", "infer_parallel"):
        shutil.copy(EXAMPLE / f"{spec}.json", work / f"{spec}.json")
    # The specs name the workshop's images (scripts/build-images.sh builds them): the workers run
    # /train, /qcpre, /qcontrol and /infer inside them, not programs of the host.
    with Tuskd(home) as server:
        yield Pachctl(server.env, work)


def test_workshop_scenario(pachctl: Pachctl) -> None:
    p = pachctl
    for repo in ("training_data", "qc_data", "attributes"):
        p("create-repo", repo)
    p("put-file", "training_data", "master", "training_prod.csv", "-f", "data/training_prod.csv")
    p("put-file", "qc_data", "master", "holdout.csv", "-f", "data/holdout.csv")
    assert "training_prod.csv" in p("list-file", "training_data", "master")
    for spec in ("model", "qc_pre_process", "qcontrol"):
        p("create-pipeline", "-f", f"{spec}.json")
    p.settle()

    model = p.get_json("model", "master", "model.json")
    assert set(model) == {"intercept", "coefficients"}
    assert [c["name"] for c in model["coefficients"]] == ["bmi", "ltg"]
    qc_files = [f["path"] for f in p.raw("list-file", "qc_pre_process", "master")]
    assert len(qc_files) == 44
    checked = p.get_json("qcontrol", "master", "model.json")
    assert checked["rmse"] < 60 and checked["intercept"] == model["intercept"]

    for n in ("1", "2"):
        p("put-file", "attributes", "master", f"{n}.json", "-f", f"data/test/{n}.json")
    p("create-pipeline", "-f", "infer.json")
    p.settle()
    (infer_job,) = p.jobs("infer")
    assert progress(infer_job) == "2 + 0 / 2" and infer_job["state"] == "success"
    coef = {c["name"]: c["coefficient"] for c in model["coefficients"]}
    for n in ("1", "2"):
        attrs = json.loads((p.cwd / "data" / "test" / f"{n}.json").read_text())
        pred = p.get_json("infer", "master", f"{n}.json")
        assert pred["independent_variables"] == attrs["independent_variables"]
        values = {v["name"]: v["value"] for v in attrs["independent_variables"]}
        expected = model["intercept"] + sum(coef[k] * values[k] for k in coef)
        assert pred["predicted_diabetes_progression"] == pytest.approx(expected)

    # Exercise 1: parallelism 10 -> one job that skips both datums, ten v2 workers.
    p("update-pipeline", "-f", "infer_parallel.json")
    workers = [w["name"] for w in p.raw("list-worker", "infer")]
    assert len(workers) == 10 and all(w.startswith("pipeline-infer-v2-") for w in workers)
    p.settle()
    assert progress(p.jobs("infer")[0]) == "0 + 2 / 2"

    # Exercise 2: an edited training set re-runs model, qcontrol and infer, not qc_pre_process.
    old_model_commit = p.head("model")
    before = {(j["pipeline"], j["id"]) for j in p.jobs()}
    p.replace_training_set("training_prod_edited.csv")
    new = [j for j in p.settle() if (j["pipeline"], j["id"]) not in before]
    assert sorted(j["pipeline"] for j in new) == ["infer", "model", "qcontrol"]
    assert all(j["state"] == "success" for j in new)
    assert len({j["id"] for j in new}) == 1  # one change, one global id

    # Exercise 3: provenance of the newest infer commit.
    info = p.raw("inspect-commit", "infer", p.head("infer"))[0]
    repos = sorted(e["commit"]["repo"] for e in info["provenance"])
    assert repos == sorted(
        ["training_data", "qc_data", "attributes", "model", "qc_pre_process", "qcontrol"]
        + ["__spec__"] * 4
    )
    old_model = p.get_json("model", old_model_commit, "model.json")
    new_model = p.get_json("model", "master", "model.json")
    assert old_model == model and new_model != old_model

    # A third attribute file runs exactly one new datum.
    p("put-file", "attributes", "master", "3.json", "-f", "data/test/3.json")
    p.settle()
    assert progress(p.jobs("infer")[0]) == "1 + 2 / 3"
    assert len(p.raw("list-file", "infer", "master")) == 3

    # A training set that fails QC leaves qcontrol and infer without a model or predictions.
    p.replace_training_set("training_bad.csv")
    p.settle()
    assert p.raw("list-file", "qcontrol", "master") == []
    assert p.raw("list-file", "infer", "master") == []
    logs = p("get-logs", "--pipeline", "qcontrol")
    assert "FAIL" in logs or "fail" in logs.lower()
