"""The PPS commands through the real CLI against a real server: pipelines, jobs, logs, workers.

Every test builds its own repos and pipelines (names are unique across the session server) and
waits for jobs with ``flush-commit``/``flush-job`` or by polling ``list-job --raw`` against a
deadline, never with bare sleeps.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tusk import testing

from .conftest import Tusk, atom, fails, ok, raw_objects, rows, spec

ID = re.compile(r"^[0-9a-f]{32}$")
WORKER = re.compile(r"^pipeline-([a-z0-9-]+)-v(\d+)-[a-z0-9]{5}$")


# -- helpers ------------------------------------------------------------------------------------


def put(tusk: Tusk, repo: str, path: str, data: str, *flags: str) -> None:
    ok(tusk("put-file", repo, "master", path, *flags, input=data))


def jobs(tusk: Tusk, pipeline: str) -> list[dict[str, Any]]:
    return raw_objects(ok(tusk("list-job", "-p", pipeline, "--raw")))


def job_table(tusk: Tusk, *args: str) -> dict[str, list[str]]:
    """list-job rows keyed by output repo (the newest job of each pipeline wins)."""
    table = rows(ok(tusk("list-job", *args)))
    by_repo: dict[str, list[str]] = {}
    for r in table[1:]:
        by_repo.setdefault(r[1].split("/")[0], r)
    return by_repo


def progress(row: list[str]) -> str:
    """PROGRESS of a list-job row split on whitespace (``N + M / T`` spans five cells)."""
    i = row.index("+") - 1
    return " ".join(row[i : i + 5])


def wait_for(tusk: Tusk, pipeline: str, check: Any, timeout: float = 60) -> list[dict[str, Any]]:
    """The jobs of ``pipeline`` (newest first) once ``check(jobs)`` holds."""

    def met() -> list[dict[str, Any]] | None:
        js = jobs(tusk, pipeline)
        return js if check(js) else None

    return testing.wait_for(f"the jobs of {pipeline}", met, timeout, interval=0.2)


def head(tusk: Tusk, repo: str) -> str:
    return rows(ok(tusk("list-commit", repo)))[1][1]


@pytest.fixture
def spec_url(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A local HTTP server over a directory; yields (directory, base URL)."""
    www = tmp_path / "www"
    www.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(www)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield www, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


# -- the three-stage DAG ------------------------------------------------------------------------
S1 = "cp -r /pfs/ia/* /pfs/out/; for f in /pfs/ia/*; do echo copied $(basename $f); done"
S2 = "cat /pfs/s1/* /pfs/ib/* > /pfs/out/$(ls /pfs/s1)"
S3 = (
    "for n in s2 ia; do if [ -d /pfs/$n ]; then mkdir -p /pfs/out/$n; "
    "cp -r /pfs/$n/* /pfs/out/$n/; fi; done"
)


def test_dag_cross_union_jobs_and_provenance(
    tusk: Tusk, tmp_path: Path, spec_url: tuple[Path, str]
) -> None:
    ok(tusk("create-repo", "ia"))
    ok(tusk("create-repo", "ib"))
    put(tusk, "ia", "/f1", "one\n")
    put(tusk, "ia", "/f2", "two\n")
    put(tusk, "ib", "/y", "B\n")

    # three ways to hand over a spec: a file, stdin, a URL
    (tmp_path / "s1.json").write_text(spec("s1", S1, atom("ia", "/*")))
    assert "Reading from stdin." not in ok(tusk("create-pipeline", "-f", str(tmp_path / "s1.json")))
    cross = {"cross": [atom("s1", "/*"), atom("ib", "/")]}
    code, _, err = tusk("create-pipeline", input=spec("s2", S2, cross))
    assert code == 0 and "Reading from stdin." in err, err
    www, base = spec_url
    (www / "s3.json").write_text(spec("s3", S3, {"union": [atom("s2", "/*"), atom("ia", "/*")]}))
    ok(tusk("create-pipeline", "-f", f"{base}/s3.json"))

    # flush-commit waits for the whole DAG and prints the downstream commits as list-commit does
    flushed = rows(ok(tusk("flush-commit", "ia/master")))
    assert flushed[0] == ["REPO", "ID", "PARENT", "STARTED", "DURATION", "SIZE"]
    assert {r[0] for r in flushed[1:]} == {"s1", "s2", "s3"}
    assert all(r[-1] != "-" for r in flushed[1:])  # finished: a size, not "-"

    table = job_table(tusk)
    assert rows(ok(tusk("list-job")))[0] == [
        "ID", "OUTPUT", "COMMIT", "STARTED", "DURATION", "RESTART", "PROGRESS", "DL", "UL", "STATE"
    ]  # fmt: skip
    assert progress(table["s1"]) == "2 + 0 / 2"
    assert progress(table["s2"]) == "2 + 0 / 2"  # 2 s1 files x the whole of ib
    assert progress(table["s3"]) == "4 + 0 / 4"  # 2 s2 files + 2 ia files
    assert all(table[p][-1] == "success" for p in ("s1", "s2", "s3"))

    pipelines = rows(ok(tusk("list-pipeline")))
    assert pipelines[0] == ["NAME", "INPUT", "OUTPUT", "CREATED", "STATE"]
    shorthand = {r[0]: r for r in pipelines[1:]}
    assert "(ib:/ ⨯ s1:/*)" in " ".join(shorthand["s2"])
    assert "(ia:/* ∪ s2:/*)" in " ".join(shorthand["s3"])
    assert shorthand["s1"][1:3] == ["ia:/*", "s1/master"]

    # one new input file: one new datum in every stage, and one id for the whole wave
    put(tusk, "ia", "/f3", "three\n")
    change = head(tusk, "ia")
    ok(tusk("flush-commit", f"ia/{change}"))
    table = job_table(tusk)
    assert {table[p][0] for p in ("s1", "s2", "s3")} == {change}
    assert table["s1"][1] == f"s1/{change}"
    assert progress(table["s1"]) == "1 + 2 / 3"
    assert progress(table["s2"]) == "1 + 2 / 3"
    assert progress(table["s3"]) == "2 + 4 / 6"
    assert ok(tusk("get-file", "s2", change, "/f3")) == "three\nB\n"
    assert ok(tusk("get-file", "s3", change, "/s2/f1")) == "one\nB\n"
    assert ok(tusk("get-file", "s3", change, "/ia/f3")) == "three\n"

    # provenance of the last stage: the input commits and the __spec__ commits
    details = ok(tusk("inspect-commit", "s3", change))
    prov = next(line for line in details.splitlines() if line.startswith("Provenance:"))
    for entry in (f"ia/{change}", f"s1/{change}", f"s2/{change}", f"ib/{head(tusk, 'ib')}"):
        assert entry in prov
    assert prov.count("__spec__/") == 3

    # list-job filters
    assert {r[1].split("/")[0] for r in rows(ok(tusk("list-job", "-i", f"ia/{change}")))[1:]} == {
        "s1",
        "s2",
        "s3",
    }
    only = rows(ok(tusk("list-job", "-o", f"s2/{change}")))[1:]
    assert [r[1] for r in only] == [f"s2/{change}"]
    assert len(rows(ok(tusk("list-job", "-p", "s1")))) == 3  # header + 2 jobs
    fails(tusk("list-job", "-i", "ia"), 2, "expected repo/commit")
    fails(tusk("list-job", "-p", "nope"), 3, "pipeline nope not found")

    # a bare id shared by several jobs: the command says which pipelines and takes --pipeline
    err = fails(tusk("inspect-job", change), 2, "s1, s2, s3")
    assert "--pipeline" in err
    job = ok(tusk("inspect-job", change, "--pipeline", "s2"))
    assert f"ID: {change} \nPipeline: s2 \n" in job
    assert "State: success\n" in job and "Processed: 1\nFailed: 0\nSkipped: 2\nTotal: 3\n" in job
    assert f'"commit": "{change}"' in job  # the job's input, with commits filled in
    assert job.endswith(f"Output Commit: {change} \n")
    assert json.loads(ok(tusk("inspect-job", change, "--pipeline", "s2", "--raw")))["id"] == change
    fails(tusk("inspect-job", "0" * 32), 3, "not found")

    # datums of one job
    datums = rows(ok(tusk("list-datum", change, "--pipeline", "s1")))
    assert datums[0] == ["ID", "STATUS", "TIME"]
    states = sorted(r[1] for r in datums[1:])
    assert states == ["skipped", "skipped", "success"]
    new = next(r[0] for r in datums[1:] if r[1] == "success")
    datum = ok(tusk("inspect-datum", change, new, "--pipeline", "s1"))
    assert re.search(r"^State\s+SUCCESS$", datum, re.M)
    assert re.search(rf"^\s+ia\s+{change}\s+/f3\s*$", datum, re.M)

    # logs: only user output lines; --job alone finds every job of the id
    logs = ok(tusk("get-logs", "-p", "s1")).splitlines()
    assert "copied f3" in logs and "copied f1" in logs
    assert all(not line.startswith("starting") for line in logs)
    assert ok(tusk("get-logs", "--job", change)).splitlines() == ["copied f3"]
    raw = [json.loads(line) for line in ok(tusk("get-logs", "--job", change, "--raw")).splitlines()]
    assert {r["pipelineName"] for r in raw} == {"s1", "s2", "s3"}
    assert any(r.get("user") and r["message"] == "copied f3" for r in raw)
    fails(tusk("get-logs", "-p", "nope"), 3, "pipeline nope not found")
    fails(tusk("get-logs", "--job", "f" * 32), 3, "not found")

    # flush-job prints the finished jobs of a change
    flushed_jobs = rows(ok(tusk("flush-job", f"ia/{change}", "-p", "s3")))
    assert [r[1] for r in flushed_jobs[1:]] == [f"s3/{change}"]

    ok(tusk("delete-pipeline", "s3"))
    ok(tusk("delete-pipeline", "s2"))
    ok(tusk("delete-pipeline", "s1"))


# -- updates, workers ---------------------------------------------------------------------------
def test_update_parallelism_reprocess_edit_and_workers(tusk: Tusk, tmp_path: Path) -> None:
    ok(tusk("create-repo", "ua"))
    for i in range(3):
        put(tusk, "ua", f"/f{i}", f"{i}\n")
    path = tmp_path / "u1.json"
    path.write_text(spec("u1", "cp /pfs/ua/* /pfs/out/", atom("ua", "/*")))
    ok(tusk("create-pipeline", "-f", str(path)))
    ok(tusk("flush-commit", "ua/master"))
    assert [progress(r) for r in job_table(tusk, "-p", "u1").values()] == ["3 + 0 / 3"]

    # parallelism only: a new job that skips everything, and two v2 workers
    par = {"parallelism_spec": {"constant": 2}}
    path.write_text(spec("u1", "cp /pfs/ua/* /pfs/out/", atom("ua", "/*"), **par))
    code, _, err = tusk("update-pipeline", "-f", str(path))
    assert code == 0 and "transform" not in err, err
    js = wait_for(tusk, "u1", lambda js: len(js) == 2 and js[0]["state"] == "success")
    assert (js[0]["processed"], js[0]["skipped"], js[0]["total"]) == (0, 3, 3)
    assert progress(job_table(tusk, "-p", "u1")["u1"]) == "0 + 3 / 3"
    assert "Parallelism Spec: constant:2 " in ok(tusk("inspect-pipeline", "u1"))

    workers = rows(ok(tusk("list-worker", "u1")))
    assert workers[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert len(workers) == 3
    for w in workers[1:]:
        m = WORKER.match(w[0])
        assert m and m.groups() == ("u1", "2"), w
        assert re.fullmatch(r"\d+[smhdy]", w[4])
    fails(tusk("list-worker", "nope"), 3, "pipeline nope not found")

    # a changed transform without --reprocess keeps old results and says so
    cmd = "for f in /pfs/ua/*; do tr 0-9 a-j < $f > /pfs/out/$(basename $f); done"
    path.write_text(spec("u1", cmd, atom("ua", "/*"), **par))
    code, _, err = tusk("update-pipeline", "-f", str(path))
    assert code == 0, err
    assert "old results were kept" in err and "--reprocess" in err
    js = wait_for(tusk, "u1", lambda js: len(js) == 3 and js[0]["state"] == "success")
    assert (js[0]["processed"], js[0]["skipped"]) == (0, 3)
    assert ok(tusk("get-file", "u1", "master", "/f1")) == "1\n"

    # --reprocess: everything runs again with the new code
    code, _, err = tusk("update-pipeline", "-f", str(path), "--reprocess")
    assert code == 0 and "old results" not in err, err
    js = wait_for(tusk, "u1", lambda js: len(js) == 4 and js[0]["state"] == "success")
    assert (js[0]["processed"], js[0]["skipped"], js[0]["total"]) == (3, 0, 3)
    assert ok(tusk("get-file", "u1", "master", "/f1")) == "b\n"

    # edit-pipeline: unchanged, then a parallelism edit through a scripted "editor"
    assert ok(tusk("edit-pipeline", "u1", "--editor", "true")) == (
        "Pipeline unchanged, no update will be performed.\n"
    )
    extracted = json.loads(ok(tusk("extract-pipeline", "u1")))
    assert extracted["parallelism_spec"] == {"constant": 2} and ID.match(extracted["salt"])
    editor = 'sed -i -e s/\\"constant\\":\\ 2/\\"constant\\":\\ 1/'
    ok(tusk("edit-pipeline", "u1", "--editor", editor))
    js = wait_for(tusk, "u1", lambda js: len(js) == 5 and js[0]["state"] == "success")
    assert (js[0]["processed"], js[0]["skipped"]) == (0, 3)  # the extracted salt was kept

    def v5_only() -> list[list[str]]:
        return rows(ok(tusk("list-worker", "u1")))[1:]

    testing.wait_for(
        "only the v5 worker",
        lambda: [WORKER.match(w[0]).group(2) for w in v5_only()] == ["5"],  # type: ignore[union-attr]
        30,
        interval=0.2,
    )
    ok(tusk("delete-pipeline", "u1"))


# -- failures -----------------------------------------------------------------------------------
def test_failing_transform_fails_job_commit_and_downstream(tusk: Tusk) -> None:
    ok(tusk("create-repo", "fa"))
    put(tusk, "fa", "/data", "good\n")
    check = "if grep -q bad /pfs/fa/data; then echo boom >&2; exit 1; fi; cp /pfs/fa/data /pfs/out/"
    ok(tusk("create-pipeline", input=spec("f1", check, atom("fa", "/*"))))
    ok(tusk("create-pipeline", input=spec("f2", "cp /pfs/f1/* /pfs/out/", atom("f1", "/*"))))
    ok(tusk("flush-commit", "fa/master"))

    put(tusk, "fa", "/data", "bad\n", "-o")
    bad = head(tusk, "fa")
    ok(tusk("flush-commit", f"fa/{bad}"))
    table = job_table(tusk)
    assert table["f1"][0] == bad and table["f1"][-1] == "failure"
    assert table["f2"][-1] == "failure"
    f1 = ok(tusk("inspect-job", bad, "--pipeline", "f1"))
    assert "State: failure\n" in f1 and "Reason: failed to process datum" in f1
    assert "Failed: 1\n" in f1
    f2 = ok(tusk("inspect-job", bad, "--pipeline", "f2"))
    assert "Reason: input f1 failed" in f2
    assert "Failed:" in ok(tusk("inspect-commit", "f1", bad))
    fails(tusk("get-file", "f1", bad, "/data"), 6, "failed")
    assert "boom" in ok(tusk("get-logs", "-p", "f1")).splitlines()
    assert "State: failure" in ok(tusk("inspect-pipeline", "f1"))
    datums = rows(ok(tusk("list-datum", bad, "--pipeline", "f1")))
    assert datums[1][1] == "failed"
    datum = ok(tusk("inspect-datum", bad, datums[1][0], "--pipeline", "f1"))
    assert re.search(r"^State\s+FAILED$", datum, re.M) and re.search(r"^Reason\s", datum, re.M)
    fails(tusk("restart-datum", bad, "/data", "--pipeline", "f1"), 2, "has ended")

    # the next good input succeeds all the way down
    put(tusk, "fa", "/data", "fine\n", "-o")
    good = head(tusk, "fa")
    ok(tusk("flush-commit", f"fa/{good}"))
    table = job_table(tusk)
    assert (table["f1"][0], table["f1"][-1], table["f2"][-1]) == (good, "success", "success")
    assert ok(tusk("get-file", "f2", "master", "/data")) == "fine\n"
    ok(tusk("delete-pipeline", "f2"))
    ok(tusk("delete-pipeline", "f1"))


# -- stop, start, delete ------------------------------------------------------------------------
def test_stop_start_delete_pipeline(tusk: Tusk) -> None:
    ok(tusk("create-repo", "sa"))
    put(tusk, "sa", "/x", "x\n")
    ok(tusk("create-pipeline", input=spec("sp", "cp /pfs/sa/* /pfs/out/", atom("sa", "/*"))))
    ok(tusk("flush-commit", "sa/master"))

    ok(tusk("stop-pipeline", "sp"))
    details = ok(tusk("inspect-pipeline", "sp"))
    assert "State: paused\nStopped: true\n" in details
    assert [r[-1] for r in rows(ok(tusk("list-pipeline")))[1:] if r[0] == "sp"] == ["paused"]
    assert rows(ok(tusk("list-worker", "sp"))) == [["NAME", "READY", "STATUS", "RESTARTS", "AGE"]]
    put(tusk, "sa", "/y", "y\n")
    latest = head(tusk, "sa")
    assert all(j["state"] != "success" for j in jobs(tusk, "sp") if j["id"] == latest)

    ok(tusk("start-pipeline", "sp"))
    ok(tusk("flush-commit", f"sa/{latest}"))
    js = wait_for(tusk, "sp", lambda js: js[0]["state"] == "success" and js[0]["total"] == 2)
    assert (js[0]["processed"], js[0]["skipped"]) == (1, 1)
    assert "Stopped: false" in ok(tusk("inspect-pipeline", "sp"))
    assert ok(tusk("get-file", "sp", "master", "/y")) == "y\n"

    # stop-job kills a running job; delete-job removes its record
    ok(tusk("create-pipeline", input=spec("slow", "sleep 60", atom("sa", "/"))))
    running = wait_for(tusk, "slow", lambda js: js and js[0]["state"] == "running")[0]["id"]
    ok(tusk("stop-job", running, "--pipeline", "slow"))
    js = wait_for(tusk, "slow", lambda js: js[0]["state"] == "killed")
    assert "Reason: stopped by the user" in ok(tusk("inspect-job", running, "--pipeline", "slow"))
    ok(tusk("delete-job", running, "--pipeline", "slow"))
    assert jobs(tusk, "slow") == []
    fails(tusk("stop-job", running, "--pipeline", "slow"), 3, "not found")
    ok(tusk("delete-pipeline", "slow"))

    fails(tusk("delete-pipeline"), 2, "either a pipeline name or the --all flag")
    ok(tusk("create-pipeline", input=spec("sp2", "cp /pfs/sp/* /pfs/out/", atom("sp", "/*"))))
    fails(tusk("delete-pipeline", "sp"), 5, "sp2")  # still read by sp2
    ok(tusk("delete-pipeline", "sp2"))
    ok(tusk("delete-pipeline", "sp"))
    assert "sp" not in [r[0] for r in rows(ok(tusk("list-pipeline")))]
    assert "sp" not in [r[0] for r in rows(ok(tusk("list-repo")))]
    assert jobs_gone(tusk, "sp")
    fails(tusk("inspect-pipeline", "sp"), 3, "pipeline sp not found")


def jobs_gone(tusk: Tusk, pipeline: str) -> bool:
    return all(not r[1].startswith(f"{pipeline}/") for r in rows(ok(tusk("list-job")))[1:])


# -- bad specs ----------------------------------------------------------------------------------
def test_bad_specs_create_nothing(tusk: Tusk, tmp_path: Path) -> None:
    ok(tusk("create-repo", "ba"))
    before_repos = ok(tusk("list-repo"))
    before_pipelines = ok(tusk("list-pipeline"))

    unknown = spec("b1", "true", atom("ba", "/*"), parallelism={"constant": 2})
    fails(tusk("create-pipeline", input=unknown), 2, "parallelism")
    missing = spec("b2", "true", atom("nope", "/*"))
    fails(tusk("create-pipeline", input=missing), 3, "repo nope not found")
    fails(tusk("create-pipeline", input="{not json"), 2, "malformed pipeline spec")
    fails(tusk("create-pipeline", "-f", str(tmp_path / "absent.json")), 7, "absent.json")
    fails(tusk("update-pipeline", input=spec("b3", "true", atom("ba", "/*"))), 3, "b3 not found")
    assert [r[0] for r in rows(ok(tusk("list-repo")))] == [r[0] for r in rows(before_repos)]
    names = [r[0] for r in rows(ok(tusk("list-pipeline")))[1:]]
    assert not {"b1", "b2", "b3"} & set(names)
    assert len(names) == len(rows(before_pipelines)[1:])

    # --push-images is accepted and explained; the pipeline is created anyway
    code, _, err = tusk("create-pipeline", "-p", input=spec("b4", "true", atom("ba", "/*")))
    assert code == 0 and "not supported by tusk" in err, err
    assert "b4" in [r[0] for r in rows(ok(tusk("list-pipeline")))]
    ok(tusk("delete-pipeline", "b4"))
