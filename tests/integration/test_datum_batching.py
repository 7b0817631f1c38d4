"""Datum batching through the real CLI against a real tuskd whose datums run under bubblewrap
and under podman (the tiny test image): one shell process takes 100 datums with ``pachctl next
datum``; a datum it reports failed and a datum past its timeout fail alone, each with its own
state, reason and logs."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tusk import testing
from tusk.testing import Tuskd
from tusk.testing.images import build_tiny_image

from .conftest import Tusk, atom, raw_objects, rows, run
from .test_cli_pps import ok

SCRIPT = """
echo starting
pachctl next datum || exit 1
while true; do
  for f in /pfs/in/*; do n=${f##*/}; done
  case "$n" in
    bad) echo "cannot read $n" >&2; pachctl next datum --error "bad input $n" || exit 1; continue;;
    slow) sleep 60;;
  esac
  cp "/pfs/in/$n" "/pfs/out/$n"
  echo "$n by $$"
  pachctl next datum || exit 1
done
"""


@pytest.fixture(scope="module", params=["bwrap", "podman"])
def sandboxed(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Tuskd]:
    # sandbox directories of its own (reachable by the sandbox's uid), whatever other servers
    # on this machine do with the shared default
    with tempfile.TemporaryDirectory(prefix="tusk-batching-", dir="/var/tmp") as scratch:
        os.chmod(scratch, 0o711)
        env = {"TUSK_RUNTIME": request.param, "TUSK_WORKER_SCRATCH": scratch}
        with Tuskd(tmp_path_factory.mktemp("tusk-batching") / "home", env) as server:
            yield server


@pytest.fixture
def tusk(sandboxed: Tuskd) -> Tusk:
    def call(*args: str, **kw: Any) -> tuple[int, Any, str]:
        return run(*args, env=sandboxed.env, **kw)

    return call


def job_done(tusk: Tusk, pipeline: str, count: int) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        js = raw_objects(ok(tusk("list-job", "-p", pipeline, "--raw")))
        finished = [j for j in js if j["state"] in ("success", "failure", "killed")]
        return finished[0] if len(finished) >= count else None

    job: dict[str, Any] = testing.wait_for(f"job {count} of {pipeline}", done, 300, interval=0.3)
    return job


def test_a_batching_pipeline_runs_100_datums_in_one_process(tusk: Tusk, tmp_path: Path) -> None:
    image = build_tiny_image()
    ok(tusk("create-repo", "in"))
    tree = tmp_path / "tree"
    tree.mkdir()
    for i in range(100):
        (tree / f"f{i:03}").write_text(f"{i}\n")
    ok(tusk("put-file", "-r", "in", "master", "/", "-f", str(tree)))
    spec = {
        "pipeline": {"name": "batched"},
        "transform": {"image": image, "cmd": ["sh", "-c", SCRIPT], "datum_batching": True},
        "input": atom("in", "/*"),
        "parallelism_spec": {"constant": 1},
        "datum_timeout": "3s",
        "datum_tries": 1,
    }
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(spec))
    code, _, err = tusk("create-pipeline", "-f", str(spec_file))
    assert code == 0, err
    assert "datum_batching" not in err  # no warning: it is implemented

    job = job_done(tusk, "batched", 1)
    assert job["state"] == "success", (job, ok(tusk("get-logs", "-p", "batched", "--master")))
    assert (job["processed"], job["failed"]) == (100, 0)
    files = [r[0] for r in rows(ok(tusk("list-file", "batched", "master", "/"))) if r[1] == "file"]
    assert sorted(files) == [f"f{i:03}" for i in range(100)], files
    assert ok(tusk("get-file", "batched", "master", "/f042")) == "42\n"
    logs = ok(tusk("get-logs", "-p", "batched", "--job", job["id"])).splitlines()
    made = [line for line in logs if " by " in line]
    assert len(made) == 100
    assert len({line.split()[-1] for line in made}) == 1  # one process
    assert logs.count("starting") == 1

    # a datum reported failed and one past its timeout fail alone, with their own logs
    (tmp_path / "bad").write_text("x\n")
    (tmp_path / "slow").write_text("y\n")
    (tmp_path / "g").write_text("z\n")
    ok(tusk("start-commit", "in", "master"))
    for name in ("bad", "slow", "g"):
        ok(tusk("put-file", "in", "master", f"/{name}", "-f", str(tmp_path / name)))
    ok(tusk("finish-commit", "in", "master"))
    job = job_done(tusk, "batched", 2)
    assert job["state"] == "failure", job
    assert (job["processed"], job["failed"], job["skipped"]) == (1, 2, 100)
    datums = raw_objects(ok(tusk("list-datum", job["id"], "--raw")))
    failed = {d["inputs"][0]["path"]: d for d in datums if d["state"] == "failed"}
    assert sorted(failed) == ["/bad", "/slow"], datums
    bad = ok(tusk("inspect-datum", job["id"], failed["/bad"]["id"]))
    assert "user code reported an error: bad input bad" in bad
    slow = ok(tusk("inspect-datum", job["id"], failed["/slow"]["id"]))
    assert "datum timed out after 3s" in slow
    bad_logs = ok(tusk("get-logs", "--job", job["id"], "--datum", failed["/bad"]["id"]))
    # its own lines (and the start-up line when it came first in its job's session)
    assert bad_logs.splitlines()[-1] == "cannot read bad"
    assert not [line for line in bad_logs.splitlines() if " by " in line]
    good_logs = ok(tusk("get-logs", "--job", job["id"])).splitlines()
    assert "g by" in " ".join(good_logs)
