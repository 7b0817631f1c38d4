"""Scale-out with real processes: several tuskd on one PostgreSQL and one S3 bucket (moto), one of
them holding the scheduler lease; and the workshop on PostgreSQL + S3 + a real two-node Ray cluster.

Every backend is real and must be reachable: a test that cannot reach PostgreSQL, moto or Ray fails.
Each test gets a PostgreSQL database of its own (not just a schema: the scheduler lease is an
advisory lock, and advisory locks are per database, so a schema would share the lease with any
other deployment on that database).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from s3server import MotoServer, S3Bucket, moto_server_fixture, s3_bucket_fixture

from tusk.testing import Tuskd, wait_for
from tusk.testing.process import descendants
from tusk.testing.ray import ray_cluster

from .conftest import atom, fails, ok, raw_objects, run
from .conftest import spec as pipeline_spec
from .test_workshop import EXAMPLE, TERMINAL, Pachctl, progress

POSTGRES_URL = os.environ.get("TUSK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
FAILOVER_DEADLINE = 10.0
DATUMS = 30

moto_server = moto_server_fixture(scope="module")
s3_bucket = s3_bucket_fixture()


# -- PostgreSQL ---------------------------------------------------------------------------------
@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on the test PostgreSQL; yields its URL, drops it (and its sessions) after."""
    name = "tusk_scaleout_" + uuid.uuid4().hex[:12]
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    base, _, query = POSTGRES_URL.partition("?")
    url = base.rsplit("/", 1)[0] + "/" + name + (f"?{query}" if query else "")
    try:
        yield url
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# -- tuskd processes ----------------------------------------------------------------------------
def start_tuskd(home: Path, env: dict[str, str]) -> Tuskd:
    """tuskd with ``env`` in a session of its own: ``kill`` takes its workers with it."""
    return Tuskd(home, {"TUSK_RUNTIME": "host", **env}, new_session=True).start()


def worker_processes(server: Tuskd) -> list[int]:
    """The server's ``python -m tusk.worker`` processes (the local executor's workers)."""
    found = []
    for pid in descendants(server.pid):
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"tusk.worker" in cmdline:
                found.append(pid)
    return found


def backend_env(
    metadata_url: str, bucket: S3Bucket, moto: MotoServer, **extra: str
) -> dict[str, str]:
    return {
        "TUSK_METADATA_URL": metadata_url,
        "TUSK_OBJECT_URL": bucket.url("tusk"),
        "TUSK_RUNTIME": "host",
        **moto.env(),
        **extra,
    }


def sleeper_spec(name: str, repo: str, sleep: float) -> dict[str, Any]:
    """One datum per file; each copies its file to the output after ``sleep`` seconds."""
    return {
        "pipeline": {"name": name},
        "transform": {
            "cmd": ["sh", "-c", f"sleep {sleep}; for f in /pfs/{repo}/*; do cp $f /pfs/out/; done"]
        },
        "parallelism_spec": {"constant": 1},
        "input": {"atom": {"repo": repo, "glob": "/*"}},
    }


# -- test 1: two servers, failover of the scheduler lease ----------------------------------------
def test_two_servers_share_state_and_fail_over_mid_job(
    tmp_path: Path, moto_server: MotoServer, s3_bucket: S3Bucket
) -> None:
    servers: list[Tuskd] = []
    with postgres_database() as db_url:
        env = backend_env(db_url, s3_bucket, moto_server, TUSK_EXECUTOR="local")
        try:
            # A starts first and so takes the lease (Engine.start tries before serving).
            a = start_tuskd(tmp_path / "home-a", env)
            servers.append(a)
            b = start_tuskd(tmp_path / "home-b", env)
            servers.append(b)
            _run_failover_scenario(tmp_path, a, b)
        finally:
            for server in servers:
                server.stop()
            for server in servers:
                print(f"--- {server.home.name} log ---\n{server.log_tail()}")


def _run_failover_scenario(tmp_path: Path, a: Tuskd, b: Tuskd) -> None:
    info_a, info_b = a.info(), b.info()
    assert info_a["pid"] == a.pid and info_b["pid"] == b.pid
    for key in ("metadata_url", "object_url", "executor"):
        assert info_a[key] == info_b[key]
    assert info_a["metadata_url"].startswith("postgresql://")
    assert info_a["object_url"].startswith("s3://")
    assert info_a["home"] != info_b["home"]

    work = tmp_path / "work"
    work.mkdir()
    pa = Pachctl({"TUSK_ADDRESS": a.address}, work)
    pb = Pachctl({"TUSK_ADDRESS": b.address}, work)

    # A repo made through A is visible through B; puts through both servers land.
    pa("create-repo", "nums", "-d", "numbers")
    repos = pb.raw("list-repo")
    assert [r["name"] for r in repos] == ["nums"] and repos[0]["description"] == "numbers"
    expected = {f"n{i:02d}.txt": f"datum {i}\n" * (i + 1) for i in range(DATUMS)}
    halves = {"first": sorted(expected)[: DATUMS // 2], "second": sorted(expected)[DATUMS // 2 :]}
    for half, names in halves.items():
        (work / half).mkdir()
        for name in names:
            (work / half / name).write_text(expected[name])
    pa("put-file", "nums", "master", "/", "-r", "-f", "first")
    pb("put-file", "nums", "master", "/", "-r", "-f", "second")
    for p in (pa, pb):
        listed = {f["path"].lstrip("/") for f in p.raw("list-file", "nums", "master")}
        assert listed == set(expected)
    assert pa("get-file", "nums", "master", "n29.txt") == expected["n29.txt"]
    assert pb("get-file", "nums", "master", "n00.txt") == expected["n00.txt"]

    # The pipeline goes in through B, which is not the leader: the leader A runs it.
    (work / "copy.json").write_text(json.dumps(sleeper_spec("copy", "nums", 0.3)))
    pb("create-pipeline", "-f", "copy.json")
    wait_for("the leader A to start the pipeline's worker", lambda: pa.raw("list-worker"), 20)
    assert pb.raw("list-worker") == [], "B is not the leader yet reports workers"
    assert worker_processes(a) and not worker_processes(b)

    def running_job() -> dict[str, Any] | None:
        jobs = pb.jobs("copy")
        if jobs and jobs[0]["state"] in TERMINAL:
            raise AssertionError(f"the job ended before the leader could be killed: {jobs[0]}")
        return jobs[0] if jobs and jobs[0]["processed"] >= 3 else None

    before = wait_for("the job to make progress on the leader", running_job, 60)
    assert before["total"] == DATUMS

    # The leader dies mid-job; B takes the lease and finishes the job.
    a.kill()
    killed = time.monotonic()
    wait_for(
        "B to take the scheduler lease",
        lambda: pb.raw("list-worker"),
        FAILOVER_DEADLINE,
        interval=0.05,
    )
    failover = time.monotonic() - killed
    print(f"failover: B leads {failover:.2f}s after the leader was killed")
    assert failover < FAILOVER_DEADLINE
    assert worker_processes(b)

    jobs = pb.settle(timeout=120)
    copy_jobs = [j for j in jobs if j["pipeline"] == "copy"]
    assert len(copy_jobs) == 1, copy_jobs
    (job,) = copy_jobs
    assert job["id"] == before["id"]
    assert job["state"] == "success", job
    assert job["processed"] + job["skipped"] == job["total"] == DATUMS, progress(job)
    print(f"job after failover: {progress(job)} (killed at {progress(before)})")

    # Every datum's output exactly once: same-path outputs would concatenate.
    out = {f["path"].lstrip("/"): f for f in pb.raw("list-file", "copy", "master")}
    assert set(out) == set(expected)
    for name, content in expected.items():
        assert out[name]["size_bytes"] == len(content.encode()), name
        assert pb("get-file", "copy", "master", name) == content

    # A put through the survivor starts a new job that succeeds.
    extra = work / "n99.txt"
    extra.write_text("after failover\n")
    pb("put-file", "nums", "master", "n99.txt", "-f", str(extra))
    jobs = [j for j in pb.settle(timeout=60) if j["pipeline"] == "copy"]
    assert len(jobs) == 2 and jobs[0]["id"] != job["id"]
    assert jobs[0]["state"] == "success", jobs[0]
    assert progress(jobs[0]) == f"1 + {DATUMS} / {DATUMS + 1}"
    assert pb("get-file", "copy", "master", "n99.txt") == "after failover\n"


# -- test 2: the workshop on PostgreSQL + S3 + Ray -----------------------------------------------
def test_workshop_on_postgres_s3_and_ray(
    tmp_path: Path,
    moto_server: MotoServer,
    s3_bucket: S3Bucket,
) -> None:
    # Host mode on Ray: the specs' commands (/train, ... in the workshop's images) become the
    # example's programs run by this Python.
    programs = {"/train": "train.py", "/qcpre": "qc_pre_process.py"}
    programs |= {"/qcontrol": "qcontrol.py", "/infer": "infer.py"}
    work = tmp_path / "work"
    shutil.copytree(EXAMPLE / "data", work / "data")
    for spec in ("model", "qc_pre_process", "qcontrol", "infer", "infer_parallel"):
        doc = json.loads((EXAMPLE / f"{spec}.json").read_text())
        cmd = doc["transform"]["cmd"]
        doc["transform"]["cmd"] = [sys.executable, str(EXAMPLE / programs[cmd[0]]), *cmd[1:]]
        (work / f"{spec}.json").write_text(json.dumps(doc))
    # Ray's socket paths must stay under 107 bytes: a short temp dir, not pytest's.
    ray_dir = Path(tempfile.mkdtemp(prefix="tuskray"))
    with (
        contextlib.ExitStack() as cleanup,
        postgres_database() as db_url,
        ray_cluster(ray_dir) as cluster,
    ):
        cleanup.callback(shutil.rmtree, ray_dir, ignore_errors=True)
        env = backend_env(
            db_url,
            s3_bucket,
            moto_server,
            TUSK_EXECUTOR=cluster.client_url,
            RAY_AUTH_MODE="disabled",
        )
        server = start_tuskd(tmp_path / "home", env)
        try:
            assert server.info()["executor"] == cluster.client_url
            _run_workshop(Pachctl({"TUSK_ADDRESS": server.address}, work))
        finally:
            server.stop()
            print(f"tuskd exited with {server.proc.returncode}")
            print(f"--- tuskd log ---\n{server.log_tail()}")


# -- test 3: restart-datum on Ray -----------------------------------------------------------------
def test_restart_datum_on_ray(tmp_path: Path) -> None:
    """restart-datum replaces the Ray actor running the datum; the datum is tried again."""
    gate, runs = tmp_path / "gate", tmp_path / "runs"
    wait = (
        f"echo run >> {runs}; while [ ! -e {gate} ]; do sleep 0.1; done; "
        "cp /pfs/rdin/slow /pfs/out/"
    )
    ray_dir = Path(tempfile.mkdtemp(prefix="tuskray"))  # Ray's socket paths must stay short
    with contextlib.ExitStack() as cleanup, ray_cluster(ray_dir) as cluster:
        cleanup.callback(shutil.rmtree, ray_dir, ignore_errors=True)
        env = {"TUSK_EXECUTOR": cluster.client_url, "RAY_AUTH_MODE": "disabled"}
        server = start_tuskd(tmp_path / "home", env)
        cleanup.callback(gate.touch)  # never leave the datum waiting

        def tusk(*args: str, **kw: Any) -> Any:
            return run(*args, env=server.env, **kw)

        try:
            assert server.info()["executor"] == cluster.client_url
            ok(tusk("create-repo", "rdin"))
            ok(tusk("put-file", "rdin", "master", "/slow", input="s\n"))
            one = {"constant": 1}
            rdp = pipeline_spec("rdp", wait, atom("rdin", "/*"), parallelism_spec=one)
            ok(tusk("create-pipeline", input=rdp))
            wait_for("the first run", runs.exists, 180)
            [job] = raw_objects(ok(tusk("list-job", "-p", "rdp", "--raw")))
            fails(tusk("restart-datum", job["id"], "/other"), 3, "no running datum of job")
            ok(tusk("restart-datum", job["id"], "/slow"))
            wait_for("the second run", lambda: runs.read_text().count("run") == 2, 180)
            [worker] = raw_objects(ok(tusk("list-worker", "rdp", "--raw")))
            assert worker["restarts"] == 1, worker
            gate.touch()

            def ended() -> dict[str, Any] | None:
                [j] = raw_objects(ok(tusk("list-job", "-p", "rdp", "--raw")))
                return j if j["state"] in TERMINAL else None

            assert wait_for("the job", ended, 180)["state"] == "success"
            [datum] = raw_objects(ok(tusk("list-datum", job["id"], "--raw")))
            assert datum["tries"] == 2 and datum["state"] == "success"
            assert ok(tusk("get-file", "rdp", "master", "/slow")) == "s\n"
        finally:
            server.stop()
            print(f"--- tuskd log ---\n{server.log_tail()}")


def _run_workshop(p: Pachctl) -> None:
    for repo in ("training_data", "qc_data", "attributes"):
        p("create-repo", repo)
    p("put-file", "training_data", "master", "training_prod.csv", "-f", "data/training_prod.csv")
    p("put-file", "qc_data", "master", "holdout.csv", "-f", "data/holdout.csv")
    for spec in ("model", "qc_pre_process", "qcontrol"):
        p("create-pipeline", "-f", f"{spec}.json")
    assert all(j["state"] == "success" for j in p.settle(timeout=180))
    model = p.get_json("model", "master", "model.json")
    assert [c["name"] for c in model["coefficients"]] == ["bmi", "ltg"]
    assert len(p.raw("list-file", "qc_pre_process", "master")) == 44

    for n in ("1", "2"):
        p("put-file", "attributes", "master", f"{n}.json", "-f", f"data/test/{n}.json")
    p("create-pipeline", "-f", "infer.json")
    p.settle(timeout=120)
    (infer_job,) = p.jobs("infer")
    assert progress(infer_job) == "2 + 0 / 2" and infer_job["state"] == "success"
    assert {f["path"].lstrip("/") for f in p.raw("list-file", "infer", "master")} == {
        "1.json",
        "2.json",
    }

    p("update-pipeline", "-f", "infer_parallel.json")
    workers = [w["name"] for w in p.raw("list-worker", "infer")]
    assert len(workers) == 10 and all(w.startswith("pipeline-infer-v2-") for w in workers)
    p.settle(timeout=120)
    assert progress(p.jobs("infer")[0]) == "0 + 2 / 2"

    before = {(j["pipeline"], j["id"]) for j in p.jobs()}
    p.replace_training_set("training_prod_edited.csv")
    new = [j for j in p.settle(timeout=180) if (j["pipeline"], j["id"]) not in before]
    assert sorted(j["pipeline"] for j in new) == ["infer", "model", "qcontrol"]
    assert all(j["state"] == "success" for j in new), new

    info = p.raw("inspect-commit", "infer", p.head("infer"))[0]
    repos = sorted(e["commit"]["repo"] for e in info["provenance"])
    assert repos == sorted(
        ["training_data", "qc_data", "attributes", "model", "qc_pre_process", "qcontrol"]
        + ["__spec__"] * 4
    )
    assert p.get_json("model", "master", "model.json") != model
