"""Pachyderm's official Python clients, unmodified from PyPI, against a real tuskd over gRPC.

Each client lives in a venv of its own under ``.venv-clients/`` (``scripts/setup-clients.sh``
creates them; ``scripts/test.sh`` runs it): python-pachyderm 7.6.0 pins protobuf<4, so it can
never share tusk's venv. Each test runs a small client script in that venv and checks what it
printed (one JSON document)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tusk.faults import CRASH_EXIT_CODE
from tusk.testing import Tuskd, clean_env, free_port

from .conftest import run
from .test_scaleout import postgres_database

ROOT = Path(__file__).resolve().parents[2]
SDK = "pachyderm-sdk"
PP = "python-pachyderm"


def client_python(client: str) -> Path:
    python = ROOT / ".venv-clients" / client / "bin" / "python"
    if not python.exists():
        pytest.fail(f"{python} is missing: run scripts/setup-clients.sh (scripts/test.sh does)")
    return python


def run_client(client: str, port: int, script: str, token: str | None = None) -> Any:
    """Run ``script`` with the client's venv; ``PORT`` (and ``TOKEN``) are defined for it, and
    whatever it passes to ``out(...)`` comes back. ``code(name, call)`` records in ``codes``
    how a call ended: "OK" or its gRPC status code and details."""
    prelude = (
        "import json, sys\nimport grpc\n"
        f"PORT = {port}\nTOKEN = {token!r}\n"
        "def out(value):\n    print(json.dumps(value, default=str))\n"
        "codes = {}\n"
        "def code(name, call):\n"
        "    try:\n        call()\n        codes[name] = 'OK'\n"
        "    except grpc.RpcError as e:\n        codes[name] = [e.code().name, e.details()]\n"
    )
    proc = subprocess.run(
        [str(client_python(client)), "-c", prelude + textwrap.dedent(script)],
        capture_output=True,
        env=clean_env({}),
        timeout=240,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuskd]:
    # host runtime: the pipelines below run sh on the host
    with Tuskd(tmp_path_factory.mktemp("grpc-home"), {"TUSK_RUNTIME": "host"}) as tuskd:
        yield tuskd


def test_sdk_version_health_and_not_activated_services(server: Tuskd) -> None:
    got = run_client(
        SDK,
        server.port,
        """
        import grpc
        from pachyderm_sdk import Client
        from pachyderm_sdk.api import admin, auth, enterprise, identity, license
        from pachyderm_sdk.errors import AuthServiceNotActivated
        c = Client(host="localhost", port=PORT)
        v = c.get_version()
        failures = {}
        for name, call in [
            ("who_am_i", lambda: c.auth.who_am_i()),
            ("identity", lambda: c.identity.list_idp_connectors()),
            ("license", lambda: c.license.get_activation_code()),
        ]:
            try:
                call()
                failures[name] = "no error"
            except AuthServiceNotActivated as e:
                failures[name] = "not activated: " + str(e)
            except grpc.RpcError as e:
                failures[name] = f"{e.code().name}: {e.details()}"
        state = c.enterprise.get_state().state
        cluster = c.admin.inspect_cluster()
        out({"version": [v.major, v.minor], "failures": failures, "state": int(state),
             "cluster": cluster.id})
        """,
    )
    assert got["version"] == [2, 12]
    for name in ("who_am_i", "identity", "license"):
        assert got["failures"][name] == "not activated: the auth service is not activated"
    assert got["state"] == 0  # State.NONE
    assert got["cluster"]


def test_sdk_files_commits_and_branches(server: Tuskd) -> None:
    got = run_client(
        SDK,
        server.port,
        """
        import grpc, io, tarfile
        from pachyderm_sdk import Client
        from pachyderm_sdk.api import pfs
        c = Client(host="localhost", port=PORT)
        res = {}
        c.pfs.create_repo(repo=pfs.Repo(name="data"), description="some data")
        res["repos"] = [(r.repo.name, r.repo.project.name, r.description)
                        for r in c.pfs.list_repo()]
        master = pfs.Branch.from_uri("data@master")
        with c.pfs.commit(branch=master, description="first") as c1:
            c1.put_file_from_bytes(path="/a.txt", data=b"one\\n")
            c1.put_file_from_bytes(path="/dir/b.csv", data=b"x,y\\n")
            c1.put_file_from_bytes(path="/dir/c.csv", data=b"1,2\\n")
        c1.wait()
        with c.pfs.commit(branch=master) as c2:
            c2.put_file_from_bytes(path="/a.txt", data=b"two\\n", append=True)
            c2.put_file_from_bytes(path="/dir/b.csv", data=b"overwritten\\n")
            c2.copy_file(src=pfs.File.from_uri(f"data@{c1.id}:/dir/c.csv"), dst="/copy.csv")
            c2.delete_file(path="/dir/c.csv")
        info = c.pfs.wait_commit(c2)
        res["finished"] = info.finished is not None
        res["parent"] = info.parent_commit.id == c1.id
        read = lambda uri: c.pfs.pfs_file(file=pfs.File.from_uri(uri)).read()
        res["a"] = read("data@master:/a.txt").decode()
        res["b"] = read("data@master:/dir/b.csv").decode()
        res["copy"] = read("data@master:/copy.csv").decode()
        res["old_a"] = read(f"data@{c1.id}:/a.txt").decode()
        res["parent_ref"] = read("data@master^:/a.txt").decode()
        ls = lambda uri: [(f.file.path, pfs.FileType(f.file_type).name, f.size_bytes)
                          for f in c.pfs.list_file(file=pfs.File.from_uri(uri))]
        res["list"] = ls("data@master:/")
        res["glob"] = [f.file.path for f in c.pfs.glob_file(
            commit=pfs.Commit.from_uri("data@master"), pattern="/**.csv")]
        res["walk"] = [f.file.path for f in c.pfs.walk_file(
            file=pfs.File.from_uri("data@master:/"))]
        res["inspect"] = c.pfs.inspect_file(file=pfs.File.from_uri("data@master:/a.txt")).size_bytes
        res["diff"] = sorted(
            (d.new_file.file.path if d.new_file else "", d.old_file.file.path if d.old_file else "")
            for d in c.pfs.diff_file(new_file=pfs.File.from_uri("data@master:/")))
        with c.pfs.pfs_tar_file(file=pfs.File.from_uri("data@master:/dir")) as tar:
            res["tar"] = {m.name: tar.extractfile(m).read().decode() for m in tar if m.isfile()}
        res["commits"] = [ci.commit.id for ci in c.pfs.list_commit(repo=pfs.Repo(name="data"))]
        res["ids"] = [c2.id, c1.id]
        c.pfs.create_branch(branch=pfs.Branch.from_uri("data@v1"),
                            head=pfs.Commit.from_uri(f"data@{c1.id}"))
        res["branches"] = sorted(b.branch.name for b in c.pfs.list_branch(repo=pfs.Repo(name="data")))
        res["v1_head"] = c.pfs.inspect_branch(branch=pfs.Branch.from_uri("data@v1")).head.id == c1.id
        c.pfs.delete_branch(branch=pfs.Branch.from_uri("data@v1"))
        res["exists"] = [c.pfs.branch_exists(pfs.Branch.from_uri("data@v1")),
                         c.pfs.path_exists(pfs.File.from_uri("data@master:/copy.csv")),
                         c.pfs.repo_exists(pfs.Repo(name="nope"))]
        res["set"] = [ci.commit.repo.name for ci in c.pfs.inspect_commit_set(
            commit_set=pfs.CommitSet(id=c2.id))]
        sub = c.pfs.subscribe_commit(repo=pfs.Repo(name="data"), branch="master")
        res["subscribed"] = [next(sub).commit.id, next(sub).commit.id]
        sub.close()
        code("missing_file", lambda: list(c.pfs.get_file(
            file=pfs.File.from_uri("data@master:/nope.txt"))))
        code("missing_repo", lambda: c.pfs.inspect_repo(repo=pfs.Repo(name="nope")))
        code("missing_commit", lambda: c.pfs.inspect_commit(
            commit=pfs.Commit.from_uri("data@0123456789abcdef0123456789abcdef")))
        code("exists", lambda: c.pfs.create_repo(repo=pfs.Repo(name="data")))
        code("bad_name", lambda: c.pfs.create_repo(repo=pfs.Repo(name="bad name!")))
        code("project", lambda: c.pfs.inspect_repo(repo=pfs.Repo.from_uri("other/data")))
        code("finished", lambda: c.pfs.put_file_from_bytes(commit=c1, path="/z", data=b"z"))
        res["codes"] = codes
        out(res)
        """,
    )
    assert got["repos"] == [["data", "default", "some data"]]
    assert got["finished"] and got["parent"]
    assert got["a"] == "one\ntwo\n" and got["b"] == "overwritten\n" and got["copy"] == "1,2\n"
    assert got["old_a"] == "one\n" and got["parent_ref"] == "one\n"
    assert got["list"] == [["/a.txt", "FILE", 8], ["/copy.csv", "FILE", 4], ["/dir/", "DIR", 12]]
    assert got["glob"] == ["/copy.csv", "/dir/b.csv"]
    assert got["walk"] == ["/", "/a.txt", "/copy.csv", "/dir/", "/dir/b.csv"]
    assert got["inspect"] == 8
    assert ["/a.txt", "/a.txt"] in got["diff"] and ["", "/dir/c.csv"] in got["diff"]
    assert got["tar"] == {"dir/b.csv": "overwritten\n"}
    assert got["commits"] == got["ids"]
    assert got["branches"] == ["master", "v1"] and got["v1_head"]
    assert got["exists"] == [False, True, False]
    assert got["set"] == ["data"]
    assert got["subscribed"] == list(reversed(got["ids"]))
    codes = got["codes"]
    assert codes["missing_file"][0] == "NOT_FOUND"
    assert codes["missing_file"][1].startswith("file /nope.txt not found in repo data at commit")
    assert codes["missing_repo"] == ["NOT_FOUND", "repo nope not found"]
    assert codes["missing_commit"][0] == "NOT_FOUND"
    assert codes["exists"][0] == "ALREADY_EXISTS"
    assert codes["bad_name"][0] == "INVALID_ARGUMENT"
    assert codes["project"] == ["NOT_FOUND", 'project "other" not found']
    assert codes["finished"][0] == "FAILED_PRECONDITION"


PIPELINE_SCRIPT = """
import grpc, time
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs, pps
c = Client(host="localhost", port=PORT)
res = {}
c.pfs.create_repo(repo=pfs.Repo(name="words"))
c.pps.create_pipeline(
    pipeline=pps.Pipeline(name="upper"),
    input=pps.Input(pfs=pps.PfsInput(repo="words", glob="/*")),
    transform=pps.Transform(cmd=["sh", "-c",
        "for f in /pfs/words/*; do tr a-z A-Z < $f > /pfs/out/$(basename $f); "
        "echo upper-did-$(basename $f); done"]),
)
with c.pfs.commit(branch=pfs.Branch.from_uri("words@master")) as commit:
    commit.put_file_from_bytes(path="/one.txt", data=b"hello")
    commit.put_file_from_bytes(path="/two.txt", data=b"world")
infos = commit.wait_all()
res["set"] = sorted((i.commit.repo.name, i.commit.id == commit.id, i.finished is not None)
                    for i in infos)
res["out"] = c.pfs.pfs_file(file=pfs.File.from_uri("upper@master:/one.txt")).read().decode()
pipe = c.pps.inspect_pipeline(pipeline=pps.Pipeline(name="upper"))
res["pipeline"] = [pipe.pipeline.name, pps.PipelineState(pipe.state).name, pipe.details.transform.cmd[0],
                   pipe.details.input.pfs.glob]
res["pipelines"] = [p.pipeline.name for p in c.pps.list_pipeline()]
jobs = list(c.pps.list_job(pipeline=pps.Pipeline(name="upper")))
job = c.pps.inspect_job(job=jobs[0].job, wait=True)
res["job"] = [job.job.id == commit.id, pps.JobState(job.state).name, job.data_processed, job.data_total]
res["job_set"] = [pps.JobState(j.state).name for j in c.pps.inspect_job_set(
    job_set=pps.JobSet(id=commit.id), wait=True)]
datums = list(c.pps.list_datum(job=job.job))
res["datums"] = sorted(pps.DatumState(d.state).name for d in datums)
res["datum"] = c.pps.inspect_datum(datum=datums[0].datum).state
res["datum"] = pps.DatumState(res["datum"]).name
res["logs"] = sorted(m.message for m in c.pps.get_logs(pipeline=pps.Pipeline(name="upper"))
                     if m.message.startswith("upper-did"))
c.pps.stop_pipeline(pipeline=pps.Pipeline(name="upper"))
res["stopped"] = c.pps.inspect_pipeline(pipeline=pps.Pipeline(name="upper")).stopped
c.pps.start_pipeline(pipeline=pps.Pipeline(name="upper"))
code("missing", lambda: c.pps.inspect_pipeline(pipeline=pps.Pipeline(name="nope")))
code("exists", lambda: c.pps.create_pipeline(
    pipeline=pps.Pipeline(name="upper"), transform=pps.Transform(cmd=["true"]),
    input=pps.Input(pfs=pps.PfsInput(repo="words", glob="/*"))))
code("no_input", lambda: c.pps.create_pipeline(
    pipeline=pps.Pipeline(name="bad"), transform=pps.Transform(cmd=["true"])))
code("missing_job", lambda: c.pps.inspect_job(
    job=pps.Job(pipeline=pps.Pipeline(name="upper"), id="0123456789abcdef0123456789abcdef")))
code("restart", lambda: c.pps.restart_datum(job=job.job))
code("output_branch", lambda: c.pfs.start_commit(branch=pfs.Branch.from_uri("upper@master")))
res["codes"] = codes
c.pps.delete_pipeline(pipeline=pps.Pipeline(name="upper"))
res["after_delete"] = [p.pipeline.name for p in c.pps.list_pipeline()]
out(res)
"""


def test_sdk_branch_creation_time(server: Tuskd) -> None:
    """BranchInfo.created_at: when the branch was made, the same through InspectBranch and
    ListBranch, kept while its head moves, new when the branch is deleted and made again."""
    got = run_client(
        SDK,
        server.port,
        """
        import time
        from pachyderm_sdk import Client
        from pachyderm_sdk.api import pfs
        c = Client(host="localhost", port=PORT)
        dev = pfs.Branch.from_uri("made@dev")
        c.pfs.create_repo(repo=pfs.Repo(name="made"))
        before = time.time()
        c.pfs.create_branch(branch=dev)
        after = time.time()
        made = c.pfs.inspect_branch(branch=dev).created_at
        time.sleep(1.1)
        with c.pfs.commit(branch=dev) as commit:  # moves dev's head
            commit.put_file_from_bytes(path="/a", data=b"a")
        commit.wait()
        moved = c.pfs.inspect_branch(branch=dev)
        listed = [b.created_at for b in c.pfs.list_branch(repo=pfs.Repo(name="made"))]
        c.pfs.delete_branch(branch=dev)
        c.pfs.create_branch(branch=dev, head=commit)
        again = c.pfs.inspect_branch(branch=dev).created_at
        out({"window": [before, made.timestamp(), after], "head_moved": moved.head.id == commit.id,
             "moved": moved.created_at.timestamp(), "listed": [t.timestamp() for t in listed],
             "again": again.timestamp()})
        """,
    )
    before, made, after = got["window"]
    assert before <= made <= after
    assert got["head_moved"] and got["moved"] == made and got["listed"] == [made]
    assert got["again"] >= made + 1


def test_sdk_pipeline_jobs_datums_and_logs(server: Tuskd) -> None:
    got = run_client(SDK, server.port, PIPELINE_SCRIPT)
    assert got["set"] == [["upper", True, True], ["words", True, True]]
    assert got["out"] == "HELLO"
    assert got["pipeline"] == ["upper", "PIPELINE_RUNNING", "sh", "/*"]
    assert got["pipelines"] == ["upper"]
    assert got["job"] == [True, "JOB_SUCCESS", 2, 2]
    assert got["job_set"] == ["JOB_SUCCESS"]
    assert got["datums"] == ["SUCCESS", "SUCCESS"] and got["datum"] == "SUCCESS"
    assert got["logs"] == ["upper-did-one.txt", "upper-did-two.txt"]
    assert got["stopped"] is True
    codes = got["codes"]
    assert codes["missing"] == ["NOT_FOUND", "pipeline nope not found"]
    assert codes["exists"][0] == "ALREADY_EXISTS"
    assert codes["no_input"][0] == "INVALID_ARGUMENT"
    assert codes["missing_job"][0] == "NOT_FOUND"
    assert codes["restart"][0] == "INVALID_ARGUMENT"  # no datum filter
    assert codes["output_branch"][0] == "FAILED_PRECONDITION"
    assert got["after_delete"] == []


def test_sdk_datums_of_an_input_before_any_pipeline(server: Tuskd) -> None:
    # 2.x `list datum -f spec`: the datums a pipeline with this input would run now, in batches
    # (the SDK's generate_datums) or paged (ListDatum with an input); nothing is stored or run
    got = run_client(
        SDK,
        server.port,
        """
        from pachyderm_sdk import Client
        from pachyderm_sdk.api import pfs, pps
        c = Client(host="localhost", port=PORT)
        for repo in ("pre_a", "pre_b"):
            c.pfs.create_repo(repo=pfs.Repo(name=repo))
        with c.pfs.commit(branch=pfs.Branch.from_uri("pre_a@master")) as commit:
            for i in range(5):
                commit.put_file_from_bytes(path=f"/f{i}", data=b"x" * (i + 1))
        with c.pfs.commit(branch=pfs.Branch.from_uri("pre_b@master")) as commit:
            commit.put_file_from_bytes(path="/one", data=b"1")
            commit.put_file_from_bytes(path="/two", data=b"2")
        cross = pps.Input(cross=[
            pps.Input(pfs=pps.PfsInput(repo="pre_a", glob="/*")),
            pps.Input(pfs=pps.PfsInput(repo="pre_b", glob="/*")),
        ])
        gen = c.pps.generate_datums(input_spec=cross, batch_size=4)
        batches = [next(gen)]
        batches.append(gen.send(3))
        batches.extend(gen)
        sizes = [len(b) for b in batches]
        ids = [d.datum.id for b in batches for d in b]
        files = sorted(
            tuple(sorted(f.file.path for f in d.data)) for b in batches for d in b
        )
        plain = pps.Input(pfs=pps.PfsInput(repo="pre_a", glob="/*"))
        listed = [d.datum.id for d in c.pps.list_datum(input=plain)]
        page = [d.datum.id for d in c.pps.list_datum(input=plain, number=2)]
        after = [
            d.datum.id
            for d in c.pps.list_datum(input=plain, number=2, pagination_marker=page[-1])
        ]
        state = pps.DatumState(next(iter(c.pps.list_datum(input=plain))).state).name
        code("missing", lambda: list(c.pps.list_datum(
            input=pps.Input(pfs=pps.PfsInput(repo="nope", glob="/*")))))
        code("bad_glob", lambda: list(c.pps.list_datum(
            input=pps.Input(pfs=pps.PfsInput(repo="pre_a")))))
        jobs = [j.job.id for j in c.pps.list_job()]
        out({"sizes": sizes, "ids": len(set(ids)), "files": files, "listed": listed,
             "page": page, "after": after, "state": state, "codes": codes, "jobs": jobs,
             "pipelines": [p.pipeline.name for p in c.pps.list_pipeline()]})
        """,
    )
    assert got["sizes"][:2] == [4, 3] and sum(got["sizes"]) == 10  # 5 x 2
    assert got["ids"] == 10
    assert got["files"][0] == ["/f0", "/one"] and len(got["files"]) == 10
    assert len(got["listed"]) == 5
    assert got["page"] == got["listed"][:2] and got["after"] == got["listed"][2:4]
    assert got["state"] == "UNKNOWN"
    assert got["codes"]["missing"] == ["NOT_FOUND", "repo nope not found"]
    assert got["codes"]["bad_glob"][0] == "INVALID_ARGUMENT"
    assert got["jobs"] == [] or "pre_a" not in got["pipelines"]


def test_sdk_rerun_subscribe_summaries_find_and_clear(server: Tuskd) -> None:
    got = run_client(
        SDK,
        server.port,
        """
        import itertools
        from pachyderm_sdk import Client
        from pachyderm_sdk.api import pfs, pps
        c = Client(host="localhost", port=PORT)
        res = {}
        c.pfs.create_repo(repo=pfs.Repo(name="rr_in"))
        with c.pfs.commit(branch=pfs.Branch.from_uri("rr_in@master")) as commit:
            commit.put_file_from_bytes(path="/a", data=b"a")
            commit.put_file_from_bytes(path="/b", data=b"b")
        c.pps.create_pipeline(
            pipeline=pps.Pipeline(name="rr"),
            input=pps.Input(pfs=pps.PfsInput(repo="rr_in", glob="/*")),
            transform=pps.Transform(cmd=["sh", "-c", "cp /pfs/rr_in/* /pfs/out/"]),
        )
        rr = pps.Pipeline(name="rr")
        def newest():
            job = next(iter(c.pps.list_job(pipeline=rr)))
            return c.pps.inspect_job(job=job.job, wait=True)
        first = newest()
        c.pps.rerun_pipeline(pipeline=rr)
        second = newest()
        c.pps.rerun_pipeline(pipeline=rr, reprocess=True)
        third = newest()
        res["jobs"] = [
            [pps.JobState(j.state).name, j.data_processed, j.data_skipped]
            for j in (first, second, third)
        ]
        res["distinct"] = len({first.job.id, second.job.id, third.job.id})
        seen = list(itertools.islice(c.pps.subscribe_job(pipeline=rr), 3))
        res["subscribed"] = [j.job.id for j in seen] == [first.job.id, second.job.id, third.job.id]
        summary = c.pps.pipelines_summary(projects=[pfs.ProjectPicker(name="default")])
        s = summary.summaries[0]
        res["pipelines_summary"] = [s.project.name, s.active_pipelines >= 1, s.paused_pipelines]
        repos = c.pfs.repos_summary().summaries
        res["repos_summary"] = [
            [r.project.name, r.user_repo_count >= 2, r.size_bytes >= 2]
            for r in repos if r.project.name == "default"
        ]
        res["cluster_defaults"] = c.pps.get_cluster_defaults().cluster_defaults_json
        code("set_defaults", lambda: c.pps.set_cluster_defaults(cluster_defaults_json="{}"))
        code("rerun_missing", lambda: c.pps.rerun_pipeline(pipeline=pps.Pipeline(name="nope")))
        code("subscribe_missing", lambda: next(iter(
            c.pps.subscribe_job(pipeline=pps.Pipeline(name="nope")))))
        # FindCommits: the commits that changed /a, newest first
        c.pfs.create_repo(repo=pfs.Repo(name="fc"))
        ids = []
        for path, data in (("/a", b"1"), ("/b", b"2"), ("/a", b"3"), ("/c/d", b"4")):
            with c.pfs.commit(branch=pfs.Branch.from_uri("fc@master")) as commit:
                commit.put_file_from_bytes(path=path, data=data)
            ids.append(commit.id)
        head = pfs.Commit.from_uri("fc@master")
        def find(path, limit=0):
            found, last = [], None
            for r in c.pfs.find_commits(start=head, file_path=path, limit=limit):
                if r.found_commit:
                    found.append(ids.index(r.found_commit.id))
                else:
                    last = [ids.index(r.last_searched_commit.id), r.commits_searched]
            return [found, last]
        res["find_a"] = find("/a")
        res["find_a_1"] = find("/a", 1)
        res["find_dir"] = find("/c")
        # ClearCommit: an open commit drops its own changes (it reads as its parent again); a
        # finished one is refused
        open_commit = c.pfs.start_commit(branch=pfs.Branch.from_uri("fc@master"))
        c.pfs.put_file_from_bytes(commit=open_commit, path="/new", data=b"x")
        c.pfs.delete_file(commit=open_commit, path="/b")
        c.pfs.clear_commit(commit=open_commit)
        c.pfs.finish_commit(commit=open_commit)
        res["cleared"] = [f.file.path for f in c.pfs.list_file(
            file=pfs.File.from_uri(f"fc@{open_commit.id}:/"))]
        code("clear_finished", lambda: c.pfs.clear_commit(commit=open_commit))
        res["codes"] = codes
        c.pps.delete_pipeline(pipeline=rr)
        out(res)
        """,
    )
    assert got["jobs"] == [["JOB_SUCCESS", 2, 0], ["JOB_SUCCESS", 0, 2], ["JOB_SUCCESS", 2, 0]]
    assert got["distinct"] == 3 and got["subscribed"] is True
    assert got["pipelines_summary"] == ["default", True, 0]
    assert got["repos_summary"] == [["default", True, True]]
    assert got["cluster_defaults"] == '{"createPipelineRequest": {}}'
    codes = got["codes"]
    assert codes["set_defaults"][0] == "UNIMPLEMENTED"
    assert codes["rerun_missing"][0] == "NOT_FOUND"
    assert codes["subscribe_missing"][0] == "NOT_FOUND"
    assert got["find_a"] == [[2, 0], [0, 4]]
    assert got["find_a_1"] == [[2], [2, 2]]
    assert got["find_dir"] == [[3], [0, 4]]
    assert got["cleared"] == ["/a", "/b", "/c/"]
    assert codes["clear_finished"][0] == "FAILED_PRECONDITION"


def test_python_pachyderm_workflow(server: Tuskd) -> None:
    got = run_client(
        PP,
        server.port,
        """
        import grpc
        import python_pachyderm
        from python_pachyderm.service import pps_proto
        c = python_pachyderm.Client(port=PORT)
        res = {}
        c.health_check()
        res["version"] = c.get_remote_version().major
        c.create_repo("pp-in")
        with c.commit("pp-in", "master") as commit:
            c.put_file_bytes(commit, "/x.txt", b"abc")
            c.put_file_bytes(commit, "/y.txt", b"def")
        c.wait_commit(commit.id)
        res["get"] = c.get_file(("pp-in", "master"), "/x.txt").read().decode()
        res["list"] = [f.file.path for f in c.list_file(("pp-in", "master"), "/")]
        res["glob"] = [f.file.path for f in c.glob_file(("pp-in", "master"), "/y*")]
        res["repos"] = sorted(r.repo.name for r in c.list_repo())
        c.create_pipeline(
            "pp-cat",
            transform=pps_proto.Transform(cmd=["sh", "-c", "cat /pfs/pp-in/* > /pfs/out/all"]),
            input=pps_proto.Input(pfs=pps_proto.PFSInput(repo="pp-in", glob="/")),
        )
        c.wait_commit(("pp-cat", "master"))
        for _ in range(600):
            jobs = list(c.list_job("pp-cat"))
            if jobs and jobs[0].state == pps_proto.JobState.JOB_SUCCESS:
                break
            import time; time.sleep(0.2)
        res["out"] = c.get_file(("pp-cat", "master"), "/all").read().decode()
        res["jobs"] = [j.state for j in c.list_job("pp-cat")]
        try:
            c.inspect_repo("nope")
        except grpc.RpcError as e:
            res["missing"] = e.code().name
        try:
            c.who_am_i()
        except Exception as e:
            res["auth"] = str(e)
        c.delete_pipeline("pp-cat")
        c.delete_repo("pp-in")
        out(res)
        """,
    )
    assert got["version"] == 2
    assert got["get"] == "abc" and got["list"] == ["/x.txt", "/y.txt"] and got["glob"] == ["/y.txt"]
    assert "pp-in" in got["repos"]
    assert got["out"] == "abcdef"
    assert got["jobs"] == [5]  # JOB_SUCCESS
    assert got["missing"] == "NOT_FOUND"
    assert "the auth service is not activated" in got["auth"]


def test_tusk_http_client_shares_the_port(server: Tuskd) -> None:
    run_client(
        SDK,
        server.port,
        """
        from pachyderm_sdk import Client
        from pachyderm_sdk.api import pfs
        c = Client(host="localhost", port=PORT)
        c.pfs.create_repo(repo=pfs.Repo(name="shared"))
        c.pfs.put_file_from_bytes(commit=pfs.Commit.from_uri("shared@master"), path="/f",
                                  data=b"via grpc")
        out(True)
        """,
    )
    with server.client() as tusk:
        assert tusk.pfs.get_file_bytes("shared", "master", "/f") == b"via grpc"
        tusk.pfs.delete_repo("shared")


def test_large_file_round_trip(server: Tuskd) -> None:
    """A 45 MiB file: more than one 19 MiB ModifyFile message from the client, and many
    GetFile messages back."""
    got = run_client(
        SDK,
        server.port,
        """
        import hashlib, os
        from pachyderm_sdk import Client
        from pachyderm_sdk.api import pfs
        c = Client(host="localhost", port=PORT)
        data = os.urandom(45 << 20)
        c.pfs.create_repo(repo=pfs.Repo(name="big"))
        with c.pfs.commit(branch=pfs.Branch.from_uri("big@master")) as commit:
            commit.put_file_from_bytes(path="/blob", data=data)
        back = c.pfs.pfs_file(file=pfs.File.from_uri("big@master:/blob")).read()
        c.pfs.delete_repo(repo=pfs.Repo(name="big"))
        out([hashlib.sha256(data).hexdigest(), hashlib.sha256(back).hexdigest(), len(back)])
        """,
    )
    assert got[0] == got[1] and got[2] == 45 << 20


def test_auth_token_and_own_grpc_port(tmp_path: Path) -> None:
    """With an auth token, a call without it is UNAUTHENTICATED and one with it works; with
    --grpc-port the gRPC API listens on that port of its own."""
    grpc_port = free_port()
    home = tmp_path / "home"
    with Tuskd(home, token="s3cret", args=["--grpc-port", str(grpc_port)]) as tuskd:
        script = """
        import grpc
        from pachyderm_sdk import Client
        from pachyderm_sdk.api import pfs
        res = {}
        try:
            list(Client(host="localhost", port=PORT).pfs.list_repo())
            res["without"] = "OK"
        except grpc.RpcError as e:
            res["without"] = e.code().name
        res["with"] = [r.repo.name for r in Client(host="localhost", port=PORT,
                                                   auth_token=TOKEN).pfs.list_repo()]
        out(res)
        """
        got = run_client(SDK, grpc_port, script, token="s3cret")
        assert got == {"without": "UNAUTHENTICATED", "with": []}
        with tuskd.client() as tusk:
            assert tusk.pfs.list_repo() == []


def test_tusk_up_serves_grpc_on_its_port_or_on_grpc_port(tmp_path: Path) -> None:
    """`tusk up` serves gRPC on the HTTP port; `tusk up --grpc-port` on a port of its own."""
    script = """
    from pachyderm_sdk import Client
    out(Client(host="localhost", port=PORT).get_version().major)
    """
    for extra in ([], ["--grpc-port", str(free_port())]):
        port = free_port()
        env = {
            "TUSK_HOME": str(tmp_path / f"home{port}"),
            "TUSK_ADDRESS": f"http://127.0.0.1:{port}",
        }
        try:
            code, out, err = run("up", *extra, env=env)
            assert code == 0, err
            grpc_port = int(extra[1]) if extra else port
            assert out.splitlines()[1] == (
                f"Pachyderm 2.x clients (gRPC) connect to 127.0.0.1:{grpc_port}"
            )
            assert run_client(SDK, grpc_port, script) == 2
            assert run("list-repo", env=env)[0] == 0  # the HTTP API, unchanged
        finally:
            assert run("down", env=env)[0] == 0


def test_malformed_and_unknown_calls_get_clear_status(server: Tuskd) -> None:
    """Bytes that are no message: INVALID_ARGUMENT; a method tusk does not have: UNIMPLEMENTED
    (never UNKNOWN, and the server keeps answering)."""
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        inspect = channel.unary_unary("/pfs_v2.API/InspectRepo")
        with pytest.raises(grpc.RpcError) as bad:
            inspect(b"\x0a\xff\xff\xff\xff\xff", timeout=30)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
        missing = channel.unary_unary("/pfs_v2.API/NoSuchMethod")
        with pytest.raises(grpc.RpcError) as unknown:
            missing(b"", timeout=30)
        assert unknown.value.code() == grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined]
        version = channel.unary_unary("/versionpb_v2.API/GetVersion")
        assert version(b"", timeout=30)[:2] == b"\x08\x02"  # major: 2


def test_held_streams_do_not_wedge_the_server(server: Tuskd) -> None:
    """More waiting subscriptions than the server has call threads: the excess is refused
    RESOURCE_EXHAUSTED at once, and once the clients go away the server answers again."""
    from pachyderm_sdk.api import pfs

    from tusk.grpc.server import WORKERS

    with server.client() as tusk:
        tusk.pfs.create_repo("waits")
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        subscribe = channel.unary_stream(
            "/pfs_v2.API/SubscribeCommit",
            request_serializer=bytes,
            response_deserializer=pfs.CommitInfo.FromString,
        )
        request = pfs.SubscribeCommitRequest(repo=pfs.Repo(name="waits"), branch="master")
        streams = [subscribe(request, timeout=120) for _ in range(WORKERS + 8)]
        version = channel.unary_unary("/versionpb_v2.API/GetVersion")
        with pytest.raises(grpc.RpcError) as full:
            version(b"", timeout=60)
        assert full.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
        for stream in streams:
            stream.cancel()
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        version = channel.unary_unary("/versionpb_v2.API/GetVersion")
        deadline = time.monotonic() + 60
        while True:
            try:
                assert version(b"", timeout=30)[:2] == b"\x08\x02"
                break
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
                assert time.monotonic() < deadline, "the server still refuses calls"
                time.sleep(0.2)
    with server.client() as tusk:
        tusk.pfs.delete_repo("waits")


def test_sdk_projects(server: Tuskd) -> None:
    """Projects with pachyderm-sdk: the same repo name in two projects, a pipeline of one
    project reading a repo of another (its output in its own project), listing by project,
    and the refusals (a non-empty project, the default project, an unknown one)."""
    got = run_client(
        SDK,
        server.port,
        """
        import grpc, time
        from pachyderm_sdk import Client
        from pachyderm_sdk.api import pfs, pps
        c = Client(host="localhost", port=PORT)
        res = {}
        lab = pfs.Project(name="sdk-lab")
        c.pfs.create_project(project=lab, description="the lab")
        res["projects"] = [(p.project.name, p.description) for p in c.pfs.list_project()]
        res["inspect"] = c.pfs.inspect_project(project=lab).description
        res["created"] = c.pfs.inspect_project(project=lab).created_at is not None
        for uri, text in (("sdk-lab/raw", b"lab's"), ("default/sdk-raw", b"default's")):
            c.pfs.create_repo(repo=pfs.Repo.from_uri(uri))
            c.pfs.put_file_from_bytes(commit=pfs.Commit.from_uri(uri + "@master"), path="/f",
                                      data=text)
        c.pfs.create_repo(repo=pfs.Repo.from_uri("sdk-lab/sdk-raw"))
        res["lab_repos"] = sorted((r.repo.project.name, r.repo.name)
                                  for r in c.pfs.list_repo(projects=[lab]))
        c.pps.create_pipeline(
            pipeline=pps.Pipeline(name="cat", project=lab),
            transform=pps.Transform(cmd=["sh", "-c",
                                         "cat /pfs/raw/f /pfs/sdk-raw/f > /pfs/out/both"]),
            input=pps.Input(cross=[
                pps.Input(pfs=pps.PfsInput(repo="raw", glob="/")),
                pps.Input(pfs=pps.PfsInput(project="default", repo="sdk-raw", glob="/")),
            ]),
        )
        c.pfs.wait_commit(pfs.Commit.from_uri("sdk-lab/cat@master"))
        res["out"] = c.pfs.pfs_file(file=pfs.File.from_uri("sdk-lab/cat@master:/both")).read().decode()
        res["pipelines"] = [(p.pipeline.project.name, p.pipeline.name)
                            for p in c.pps.list_pipeline(projects=[lab])]
        res["jobs"] = [(j.job.pipeline.project.name, j.job.pipeline.name, pps.JobState(j.state).name)
                       for j in c.pps.list_job(projects=[lab])]
        res["default_pipelines"] = [p.pipeline.name for p in c.pps.list_pipeline(
            projects=[pfs.Project(name="default")])]
        code("non_empty", lambda: c.pfs.delete_project(project=lab, force=True))
        code("default", lambda: c.pfs.delete_project(project=pfs.Project(name="default")))
        code("unknown", lambda: c.pfs.create_repo(repo=pfs.Repo.from_uri("ghost/r")))
        code("exists", lambda: c.pfs.create_project(project=lab))
        code("bad", lambda: c.pfs.create_project(project=pfs.Project(name="bad name")))
        code("pipeline", lambda: c.pps.inspect_pipeline(
            pipeline=pps.Pipeline(name="cat", project=pfs.Project(name="default"))))
        c.pps.delete_pipelines(projects=[lab])
        c.pfs.delete_repos(projects=[lab])
        res["default_left"] = sorted(r.repo.name for r in c.pfs.list_repo(
            projects=[pfs.Project(name="default")]))
        c.pfs.delete_project(project=lab)
        c.pfs.delete_repo(repo=pfs.Repo.from_uri("default/sdk-raw"))
        res["after"] = [p.project.name for p in c.pfs.list_project()]
        res["codes"] = codes
        out(res)
        """,
    )
    assert got["projects"] == [["default", ""], ["sdk-lab", "the lab"]]
    assert got["inspect"] == "the lab" and got["created"]
    assert got["lab_repos"] == [["sdk-lab", "raw"], ["sdk-lab", "sdk-raw"]]
    assert got["out"] == "lab'sdefault's"
    assert got["pipelines"] == [["sdk-lab", "cat"]]
    assert [j[:2] for j in got["jobs"]] == [["sdk-lab", "cat"]]
    assert got["jobs"][0][2] == "JOB_SUCCESS"
    assert got["default_pipelines"] == []
    codes = got["codes"]
    assert codes["non_empty"][0] == "FAILED_PRECONDITION"
    assert codes["non_empty"][1].startswith("cannot delete project sdk-lab: it still has repos")
    assert codes["default"] == ["INVALID_ARGUMENT", "the default project cannot be deleted"]
    assert codes["unknown"] == ["NOT_FOUND", 'project "ghost" not found']
    assert codes["exists"] == ["ALREADY_EXISTS", "project sdk-lab already exists"]
    assert codes["bad"][0] == "INVALID_ARGUMENT"
    assert codes["pipeline"][0] == "NOT_FOUND"
    assert "sdk-raw" in got["default_left"]
    assert got["after"] == ["default"]


def test_python_pachyderm_projects(server: Tuskd) -> None:
    got = run_client(
        PP,
        server.port,
        """
        import grpc, time
        import python_pachyderm
        from python_pachyderm.pfs import Commit
        from python_pachyderm.service import pps_proto, pfs_proto
        c = python_pachyderm.Client(port=PORT)
        res = {}
        c.create_project("pp-lab", description="pp's")
        res["projects"] = sorted(p.project.name for p in c.list_project())
        res["inspect"] = c.inspect_project("pp-lab").description
        c.create_repo("in", project_name="pp-lab")
        with c.commit("in", "master", project_name="pp-lab") as commit:
            c.put_file_bytes(commit, "/x", b"xyz")
        c.create_pipeline(
            "up",
            transform=pps_proto.Transform(cmd=["sh", "-c", "tr a-z A-Z < /pfs/in/x > /pfs/out/x"]),
            input=pps_proto.Input(pfs=pps_proto.PFSInput(repo="in", glob="/",
                                                          project="pp-lab")),
            project_name="pp-lab",
        )
        c.wait_commit(Commit(repo="up", branch="master", project="pp-lab"))
        res["out"] = c.get_file(Commit(repo="up", branch="master", project="pp-lab"),
                                "/x").read().decode()
        res["repos"] = sorted((r.repo.project.name, r.repo.name) for r in c.list_repo(
            projects_filter=[pfs_proto.Project(name="pp-lab")]))
        try:
            c.delete_project("pp-lab")
        except grpc.RpcError as e:
            res["refused"] = e.code().name
        c.delete_pipeline("up", project_name="pp-lab")
        c.delete_repo("in", project_name="pp-lab")
        c.delete_project("pp-lab")
        res["after"] = sorted(p.project.name for p in c.list_project())
        out(res)
        """,
    )
    assert got["projects"] == ["default", "pp-lab"]
    assert got["inspect"] == "pp's"
    assert got["out"] == "XYZ"
    assert got["repos"] == [["pp-lab", "in"], ["pp-lab", "up"]]
    assert got["refused"] == "FAILED_PRECONDITION"
    assert got["after"] == ["default"]


def test_sdk_transactions(server: Tuskd) -> None:
    """pachyderm-sdk's transaction(): the calls inside are recorded and applied together at
    the end (commits share the transaction's id); a failing transaction changes nothing; file
    operations inside one are refused; BatchTransaction, Inspect/List/DeleteTransaction."""
    got = run_client(
        SDK,
        server.port,
        """
        import grpc, time
        from pachyderm_sdk import Client
        from pachyderm_sdk.api import pfs, pps, transaction as tx
        c = Client(host="localhost", port=PORT)
        res = {}
        names = lambda: sorted(r.repo.name for r in c.pfs.list_repo())
        with c.transaction.transaction() as t:
            c.pfs.create_repo(repo=pfs.Repo(name="tx-in"))
            c.pfs.create_repo(repo=pfs.Repo(name="tx-other"))
            c1 = c.pfs.start_commit(branch=pfs.Branch.from_uri("tx-in@master"))
            c2 = c.pfs.start_commit(branch=pfs.Branch.from_uri("tx-other@master"))
            c.pfs.finish_commit(commit=c2)
            c.pps.create_pipeline(
                pipeline=pps.Pipeline(name="tx-copy"),
                transform=pps.Transform(cmd=["sh", "-c", "cp /pfs/tx-in/* /pfs/out/"]),
                input=pps.Input(pfs=pps.PfsInput(repo="tx-in", glob="/*")),
            )
            res["inside"] = [n for n in names() if n.startswith("tx-")]
            res["recorded"] = len(c.transaction.inspect_transaction(transaction=t).requests)
            res["listed"] = [i.transaction.id for i in
                             c.transaction.list_transaction().transaction_info] == [t.id]
        res["after"] = [n for n in names() if n.startswith("tx-")]
        res["same_id"] = c1.id == c2.id
        res["c2_finished"] = c.pfs.inspect_commit(commit=c2).finished is not None
        c.pfs.put_file_from_bytes(commit=c1, path="/f", data=b"in a transaction")
        c.pfs.finish_commit(commit=c1)
        c.pfs.wait_commit(pfs.Commit.from_uri("tx-copy@master"))
        res["out"] = c.pfs.pfs_file(file=pfs.File.from_uri("tx-copy@master:/f")).read().decode()
        def duplicate():
            with c.transaction.transaction():
                c.pfs.create_repo(repo=pfs.Repo(name="tx-new"))
                c.pfs.create_repo(repo=pfs.Repo(name="tx-in"))
        code("duplicate", duplicate)
        def late_failure():
            with c.transaction.transaction():
                c.pfs.create_repo(repo=pfs.Repo(name="tx-late"))
                c.pfs.create_branch(branch=pfs.Branch.from_uri("tx-late@dev"),
                                    head=pfs.Commit.from_uri("tx-late@" + "0" * 32))
        code("late", late_failure)
        def files_inside():  # the client refuses it itself; a raw call reaches the server
            with c.transaction.transaction():
                raw = pfs.ApiStub(c._channel)
                raw.modify_file(iter([pfs.ModifyFileRequest(set_commit=c1),
                                      pfs.ModifyFileRequest(add_file=pfs.AddFile(
                                          path="/g", raw=b"no"))]))
        code("files", files_inside)
        code("unknown", lambda: c.transaction.inspect_transaction(
            transaction=tx.Transaction(id="nope")))
        res["left"] = [n for n in names() if n.startswith("tx-")]
        res["open"] = len(c.transaction.list_transaction().transaction_info)
        t2 = c.transaction.start_transaction()
        c.pfs.create_repo(repo=pfs.Repo(name="tx-dropped"))
        c.transaction.delete_transaction(transaction=t2)
        c.transaction_id = ""
        info = c.transaction.batch_transaction(requests=[
            tx.TransactionRequest(create_repo=pfs.CreateRepoRequest(
                repo=pfs.Repo(name="tx-batch"))),
            tx.TransactionRequest(create_branch=pfs.CreateBranchRequest(
                branch=pfs.Branch.from_uri("tx-batch@dev"))),
        ])
        res["batch"] = len(info.responses)
        res["batch_branches"] = [b.branch.name for b in c.pfs.list_branch(
            repo=pfs.Repo(name="tx-batch"))]
        res["final"] = [n for n in names() if n.startswith("tx-")]
        c.pps.delete_pipeline(pipeline=pps.Pipeline(name="tx-copy"))
        for n in ("tx-in", "tx-other", "tx-batch"):
            c.pfs.delete_repo(repo=pfs.Repo(name=n))
        res["codes"] = codes
        out(res)
        """,
    )
    assert got["inside"] == []
    assert got["recorded"] == 6 and got["listed"]
    assert got["after"] == ["tx-copy", "tx-in", "tx-other"]
    assert got["same_id"] and got["c2_finished"]
    assert got["out"] == "in a transaction"
    codes = got["codes"]
    assert codes["duplicate"] == ["ALREADY_EXISTS", "repo tx-in already exists"]
    assert codes["late"][0] == "NOT_FOUND"
    assert codes["files"][0] == "FAILED_PRECONDITION"
    assert codes["files"][1] == "file operations cannot run inside a transaction"
    assert codes["unknown"][0] == "NOT_FOUND"
    assert got["left"] == ["tx-copy", "tx-in", "tx-other"]  # nothing of the failed ones
    assert got["open"] == 0
    assert got["batch"] == 2 and got["batch_branches"] == ["dev"]
    assert got["final"] == ["tx-batch", "tx-copy", "tx-in", "tx-other"]


def test_python_pachyderm_transactions(server: Tuskd) -> None:
    got = run_client(
        PP,
        server.port,
        """
        import python_pachyderm
        c = python_pachyderm.Client(port=PORT)
        res = {}
        with c.transaction() as t:
            c.create_repo("ptx-a")
            c.create_repo("ptx-b")
            c1 = c.start_commit("ptx-a", "master")
            c2 = c.start_commit("ptx-b", "master")
            res["inside"] = [r.repo.name for r in c.list_repo() if r.repo.name.startswith("ptx")]
        c.put_file_bytes(c1, "/a", b"A")
        c.put_file_bytes(c2, "/b", b"B")
        c.finish_commit(c1)
        c.finish_commit(c2)
        res["ids"] = c1.id == c2.id
        res["a"] = c.get_file(("ptx-a", "master"), "/a").read().decode()
        res["b"] = c.get_file(("ptx-b", "master"), "/b").read().decode()
        c.delete_repo("ptx-a")
        c.delete_repo("ptx-b")
        out(res)
        """,
    )
    assert got == {"inside": [], "ids": True, "a": "A", "b": "B"}


def test_sdk_restart_datum_and_secrets(server: Tuskd, tmp_path: Path) -> None:
    """RestartDatum stops a running datum of a running job and tries it again; secrets are
    created from a manifest, listed, inspected and deleted, their values never answered."""
    gate, runs = tmp_path / "gate", tmp_path / "runs"
    script = """
        import base64, json, os, time, grpc
        from pachyderm_sdk import Client
        from pachyderm_sdk.api import pfs, pps
        c = Client(host="localhost", port=PORT)
        res = {}
        GATE, RUNS = "@GATE@", "@RUNS@"
        def wait(what, check):
            for _ in range(600):
                if check():
                    return
                time.sleep(0.1)
            raise SystemExit("timed out waiting for " + what)
        c.pfs.create_repo(repo=pfs.Repo(name="rd-in"))
        c.pfs.put_file_from_bytes(commit=pfs.Commit.from_uri("rd-in@master"), path="/slow",
                                  data=b"s")
        cmd = ("echo run >> " + RUNS + "; while [ ! -e " + GATE + " ]; do sleep 0.1; done; "
               "cp /pfs/rd-in/slow /pfs/out/")
        c.pps.create_pipeline(pipeline=pps.Pipeline(name="rd"),
                              transform=pps.Transform(cmd=["sh", "-c", cmd]),
                              input=pps.Input(pfs=pps.PfsInput(repo="rd-in", glob="/*")))
        wait("the first run", lambda: os.path.exists(RUNS))
        job = list(c.pps.list_job(pipeline=pps.Pipeline(name="rd")))[0]
        code("no_match", lambda: c.pps.restart_datum(job=job.job, data_filters=["/other"]))
        c.pps.restart_datum(job=job.job, data_filters=["/slow"])
        wait("the second run", lambda: open(RUNS).read().count("run") == 2)
        open(GATE, "w").close()
        done = c.pps.inspect_job(job=job.job, wait=True)
        res["job"] = pps.JobState(done.state).name
        res["out"] = c.pfs.pfs_file(file=pfs.File.from_uri("rd@master:/slow")).read().decode()
        code("ended", lambda: c.pps.restart_datum(job=job.job, data_filters=["/slow"]))
        c.pps.delete_pipeline(pipeline=pps.Pipeline(name="rd"))
        c.pfs.delete_repo(repo=pfs.Repo(name="rd-in"))
        c.pps.create_secret(name="sdk-creds", data={"password": b"hunter2"})
        raw = pps.ApiStub(c._channel)  # the generated stub: a manifest as it is sent
        info = c.pps.inspect_secret(secret=pps.Secret(name="sdk-creds"))
        res["secret"] = [info.secret.name, info.type, info.creation_timestamp is not None]
        res["secrets"] = [i.secret.name for i in c.pps.list_secret().secret_info]
        res["wire"] = "hunter2" not in repr(info) + repr(c.pps.list_secret())
        code("dup", lambda: c.pps.create_secret(name="sdk-creds", data={"password": b"x"}))
        code("bad", lambda: raw.create_secret(file=b"not a manifest"))
        code("binary", lambda: raw.create_secret(file=bytes([255, 254])))
        c.pps.delete_secret(secret=pps.Secret(name="sdk-creds"))
        code("gone", lambda: c.pps.inspect_secret(secret=pps.Secret(name="sdk-creds")))
        res["codes"] = codes
        out(res)
        """.replace("@GATE@", str(gate)).replace("@RUNS@", str(runs))
    got = run_client(SDK, server.port, script)
    codes = got["codes"]
    assert codes["no_match"][0] == "NOT_FOUND"
    assert got["job"] == "JOB_SUCCESS" and got["out"] == "s"
    assert runs.read_text().count("run") == 2
    assert codes["ended"][0] == "INVALID_ARGUMENT"
    assert got["secret"] == ["sdk-creds", "Opaque", True]
    assert got["secrets"] == ["sdk-creds"] and got["wire"]
    assert codes["dup"][0] == "ALREADY_EXISTS"
    assert codes["bad"][0] == "INVALID_ARGUMENT"
    assert codes["binary"] == ["INVALID_ARGUMENT", "the secret manifest is not UTF-8 text"]
    assert codes["gone"][0] == "NOT_FOUND"


def test_python_pachyderm_secrets(server: Tuskd) -> None:
    got = run_client(
        PP,
        server.port,
        """
        import python_pachyderm
        c = python_pachyderm.Client(port=PORT)
        c.create_secret("pp-creds", {"user": "me", "token": b"t0k"})
        info = c.inspect_secret("pp-creds")
        listed = [i.secret.name for i in c.list_secret()]
        c.delete_secret("pp-creds")
        out({"name": info.secret.name, "listed": listed,
             "after": [i.secret.name for i in c.list_secret()]})
        """,
    )
    assert got == {"name": "pp-creds", "listed": ["pp-creds"], "after": []}


def test_open_transaction_survives_a_restart(tmp_path: Path) -> None:
    """A transaction started and filled through pachyderm-sdk, then tuskd SIGKILLed and started
    again on the same home: the transaction is still listed with its requests, and
    FinishTransaction applies them (the repos, the commit with the transaction's id, the
    branch)."""
    with Tuskd(tmp_path / "home") as tuskd:
        before = run_client(
            SDK,
            tuskd.port,
            """
            from pachyderm_sdk import Client
            from pachyderm_sdk.api import pfs
            c = Client(host="localhost", port=PORT)
            t = c.transaction.start_transaction()
            c.transaction_id = t.id
            c.pfs.create_repo(repo=pfs.Repo(name="rtx-a"))
            c.pfs.create_repo(repo=pfs.Repo(name="rtx-b"))
            commit = c.pfs.start_commit(branch=pfs.Branch.from_uri("rtx-a@master"))
            c.pfs.create_branch(branch=pfs.Branch.from_uri("rtx-b@dev"))
            c.transaction_id = ""
            out({"id": t.id, "commit": commit.id,
                 "repos": [r.repo.name for r in c.pfs.list_repo()]})
            """,
        )
        assert before["repos"] == []  # recorded, not applied
        tuskd.kill()
        tuskd.start()
        after = run_client(
            SDK,
            tuskd.port,
            f"""
            from pachyderm_sdk import Client
            from pachyderm_sdk.api import pfs, transaction as tx
            c = Client(host="localhost", port=PORT)
            t = tx.Transaction(id={before["id"]!r})
            res = {{}}
            info = c.transaction.inspect_transaction(transaction=t)
            res["recorded"] = len(info.requests)
            res["started_commit"] = info.responses[2].commit.id
            res["listed"] = [i.transaction.id for i in
                             c.transaction.list_transaction().transaction_info]
            res["repos_before"] = [r.repo.name for r in c.pfs.list_repo()]
            c.transaction.finish_transaction(transaction=t)
            res["repos"] = sorted(r.repo.name for r in c.pfs.list_repo())
            head = c.pfs.inspect_commit(commit=pfs.Commit.from_uri("rtx-a@master"))
            res["head"] = head.commit.id
            c.pfs.put_file_from_bytes(commit=head.commit, path="/f", data=b"after")  # still open
            c.pfs.finish_commit(commit=head.commit)
            res["file"] = c.pfs.pfs_file(
                file=pfs.File.from_uri("rtx-a@master:/f")).read().decode()
            res["branches"] = [b.branch.name for b in
                               c.pfs.list_branch(repo=pfs.Repo(name="rtx-b"))]
            res["left"] = len(c.transaction.list_transaction().transaction_info)
            out(res)
            """,
        )
    assert after["recorded"] == 4 and after["started_commit"] == before["commit"]
    assert after["listed"] == [before["id"]]
    assert after["repos_before"] == []
    assert after["repos"] == ["rtx-a", "rtx-b"]
    assert after["head"] == before["commit"] and after["file"] == "after"
    assert after["branches"] == ["dev"]
    assert after["left"] == 0


def test_sdk_squash_commit_set(server: Tuskd) -> None:
    """SquashCommitSet on its own and inside a transaction: the commits leave the history, the
    data stays in their children; a head commit is refused with nothing changed, and so is a
    transaction whose UpdateJobState names no job. DropCommitSet deletes a head commit set,
    its data with it, and refuses one with children."""
    got = run_client(
        SDK,
        server.port,
        """
        import grpc
        from pachyderm_sdk import Client
        from pachyderm_sdk.api import pfs, pps, transaction as tx
        c = Client(host="localhost", port=PORT)
        repo = pfs.Repo(name="sq")
        c.pfs.create_repo(repo=repo)
        ids = []
        for text in (b"a", b"b", b"c", b"d"):
            with c.pfs.commit(branch=pfs.Branch.from_uri("sq@master")) as commit:
                commit.put_file_from_bytes(path="/f", data=text, append=True)
            ids.append(commit.id)
        history = lambda: [i.commit.id for i in c.pfs.list_commit(repo=repo)]
        res = {"ids": ids}
        code("head", lambda: c.pfs.squash_commit_set(commit_set=pfs.CommitSet(id=ids[3])))
        res["after_refused"] = history()
        c.pfs.squash_commit_set(commit_set=pfs.CommitSet(id=ids[1]))
        res["after_squash"] = history()
        with c.transaction.transaction():
            c.pfs.squash_commit_set(commit_set=pfs.CommitSet(id=ids[2]))
            res["inside"] = history()
        res["after_tx"] = history()
        res["data"] = c.pfs.pfs_file(file=pfs.File.from_uri("sq@master:/f")).read().decode()
        res["parent"] = c.pfs.inspect_commit(
            commit=pfs.Commit.from_uri("sq@master")).parent_commit.id
        def job_state():
            c.transaction.batch_transaction(requests=[tx.TransactionRequest(
                update_job_state=pps.UpdateJobStateRequest(
                    job=pps.Job(pipeline=pps.Pipeline(name="x"), id=ids[0]),
                    state=pps.JobState.JOB_FAILURE))])
        code("job_state", job_state)
        code("unknown", lambda: c.transaction.batch_transaction(requests=[
            tx.TransactionRequest(squash_commit_set=pfs.SquashCommitSetRequest(
                commit_set=pfs.CommitSet(id="0" * 32)))]))
        code("drop_parent", lambda: c.pfs.drop_commit_set(commit_set=pfs.CommitSet(id=ids[0])))
        res["after_drop_refused"] = history()
        c.pfs.drop_commit_set(commit_set=pfs.CommitSet(id=ids[3]))
        res["after_drop"] = history()
        res["data_after_drop"] = c.pfs.pfs_file(
            file=pfs.File.from_uri("sq@master:/f")).read().decode()
        code("drop_gone", lambda: c.pfs.drop_commit_set(commit_set=pfs.CommitSet(id=ids[3])))
        c.pfs.delete_repo(repo=repo)
        res["codes"] = codes
        out(res)
        """,
    )
    a, b, cc, d = got["ids"]
    codes = got["codes"]
    assert codes["head"][0] == "FAILED_PRECONDITION" and "has no children" in codes["head"][1]
    assert got["after_refused"] == [d, cc, b, a]
    assert got["after_squash"] == [d, cc, a]
    assert got["inside"] == [d, cc, a]  # recorded, not applied yet
    assert got["after_tx"] == [d, a]
    assert got["data"] == "abcd" and got["parent"] == a
    assert codes["job_state"][0] == "NOT_FOUND"
    assert codes["unknown"][0] == "NOT_FOUND"
    # DropCommitSet: only commits without children, their data lost
    assert codes["drop_parent"] == [
        "FAILED_PRECONDITION",
        f"cannot drop a commit that has children: sq@{a}",
    ]
    assert got["after_drop_refused"] == [d, a]
    assert got["after_drop"] == [a] and got["data_after_drop"] == "a"
    assert codes["drop_gone"][0] == "NOT_FOUND"


def test_sdk_update_job_state(server: Tuskd, tmp_path: Path) -> None:
    """UpdateJobState, on its own and inside a transaction (as pachd allows): a running job is
    ended as killed or failed with the reason given, its output commit finished without data;
    inside a transaction it takes effect when the transaction finishes. States tusk's runner
    sets itself, and a job that has ended, are refused with nothing changed."""
    gate = tmp_path / "gate"
    script = """
        import os, time
        from pachyderm_sdk import Client
        from pachyderm_sdk.api import pfs, pps, transaction as tx
        c = Client(host="localhost", port=PORT)
        res = {}
        c.pfs.create_repo(repo=pfs.Repo(name="ujs-in"))
        cmd = "while [ ! -e @GATE@ ]; do sleep 0.1; done; cp /pfs/ujs-in/* /pfs/out/"
        c.pps.create_pipeline(pipeline=pps.Pipeline(name="ujs"),
                              transform=pps.Transform(cmd=["sh", "-c", cmd]),
                              input=pps.Input(pfs=pps.PfsInput(repo="ujs-in", glob="/*")))
        def running_job(name):
            c.pfs.put_file_from_bytes(commit=pfs.Commit.from_uri("ujs-in@master"),
                                      path="/" + name, data=b"x")
            for _ in range(600):
                jobs = [j for j in c.pps.list_job(pipeline=pps.Pipeline(name="ujs"))
                        if j.state == pps.JobState.JOB_RUNNING]
                if jobs:
                    return jobs[0].job
                time.sleep(0.1)
            raise SystemExit("no running job")
        def state(job):
            info = c.pps.inspect_job(job=job)
            return [pps.JobState(info.state).name, info.reason]
        job = running_job("a")
        code("success", lambda: c.pps.update_job_state(job=job, state=pps.JobState.JOB_SUCCESS))
        res["after_refused"] = state(job)[0]
        with c.transaction.transaction():
            c.pps.update_job_state(job=job, state=pps.JobState.JOB_KILLED, reason="from tx")
            res["inside"] = state(job)[0]
        res["after_tx"] = state(job)
        res["output"] = c.pfs.inspect_commit(
            commit=pfs.Commit(repo=pfs.Repo(name="ujs"), id=job.id)).error
        code("ended", lambda: c.pps.update_job_state(job=job, state=pps.JobState.JOB_FAILURE))
        job2 = running_job("b")
        c.pps.update_job_state(job=job2, state=pps.JobState.JOB_FAILURE, reason="by hand")
        res["direct"] = state(job2)
        c.pps.delete_pipeline(pipeline=pps.Pipeline(name="ujs"))
        c.pfs.delete_repo(repo=pfs.Repo(name="ujs-in"))
        res["codes"] = codes
        out(res)
        """.replace("@GATE@", str(gate))
    got = run_client(SDK, server.port, script)
    codes = got["codes"]
    assert codes["success"][0] == "INVALID_ARGUMENT" and "JOB_SUCCESS" in codes["success"][1]
    assert got["after_refused"] == "JOB_RUNNING"
    assert got["inside"] == "JOB_RUNNING"  # recorded, not applied yet
    assert got["after_tx"] == ["JOB_KILLED", "from tx"]
    assert got["output"] == "from tx"
    assert (
        codes["ended"][0] == "FAILED_PRECONDITION" and "has already finished" in codes["ended"][1]
    )
    assert got["direct"] == ["JOB_FAILURE", "by hand"]


@pytest.mark.parametrize("metadata", ["sqlite", "postgresql"])
def test_a_crash_during_finish_transaction_applies_nothing(tmp_path: Path, metadata: str) -> None:
    """tuskd dying half way through FinishTransaction (after the first of its requests ran)
    leaves none of them applied and the transaction open, as pachd (one database transaction);
    FinishTransaction after the restart applies them all. On both metadata stores."""
    with contextlib.ExitStack() as stack:
        env = {}
        if metadata == "postgresql":
            env["TUSK_METADATA_URL"] = stack.enter_context(postgres_database())
        _crash_during_finish_transaction(tmp_path / "home", env)


def _crash_during_finish_transaction(home: Path, env: dict[str, str]) -> None:
    fill = """
        from pachyderm_sdk import Client
        from pachyderm_sdk.api import pfs
        c = Client(host="localhost", port=PORT)
        c.pfs.create_repo(repo=pfs.Repo(name="ctx-old"))
        with c.pfs.commit(branch=pfs.Branch.from_uri("ctx-old@master")) as old:
            old.put_file_from_bytes(path="/f", data=b"old")
        t = c.transaction.start_transaction()
        c.transaction_id = t.id
        c.pfs.create_repo(repo=pfs.Repo(name="ctx-a"))
        commit = c.pfs.start_commit(branch=pfs.Branch.from_uri("ctx-a@master"))
        c.pfs.create_branch(branch=pfs.Branch.from_uri("ctx-old@dev"), head=old)
        c.pfs.delete_branch(branch=pfs.Branch.from_uri("ctx-old@master"))
        c.transaction_id = ""
        out({"id": t.id, "commit": commit.id})
        """
    state = """
        from pachyderm_sdk import Client
        from pachyderm_sdk.api import pfs, transaction as tx
        c = Client(host="localhost", port=PORT)
        def look():
            return {"repos": sorted(r.repo.name for r in c.pfs.list_repo()),
                    "branches": sorted(b.branch.name for b in
                                       c.pfs.list_branch(repo=pfs.Repo(name="ctx-old"))),
                    "open": [i.transaction.id for i in
                             c.transaction.list_transaction().transaction_info]}
        t = tx.Transaction(id=@ID@)
        res = {"before": look()}
        if @FINISH@:
            info = c.transaction.finish_transaction(transaction=t)
            res["started"] = info.responses[1].commit.id
            res["after"] = look()
        out(res)
        """
    with Tuskd(home, env) as tuskd:
        before = run_client(SDK, tuskd.port, fill)
        tuskd.kill()
    crashing = Tuskd(home, {**env, "TUSK_TEST_CRASH_AT": "transaction-request"})
    crashing.start()
    try:
        proc = subprocess.run(
            [
                str(client_python(SDK)),
                "-c",
                textwrap.dedent(f"""
                from pachyderm_sdk import Client
                from pachyderm_sdk.api import transaction as tx
                c = Client(host="localhost", port={crashing.port})
                c.transaction.finish_transaction(transaction=tx.Transaction(id={before["id"]!r}))
                """),
            ],
            capture_output=True,
            env=clean_env({}),
            timeout=240,
        )
        assert proc.returncode != 0 and b"UNAVAILABLE" in proc.stderr
        assert crashing.proc is not None
        assert crashing.proc.wait(timeout=60) == CRASH_EXIT_CODE
    finally:
        crashing.stop()
    script = state.replace("@ID@", repr(before["id"]))
    with Tuskd(home, env) as tuskd:
        got = run_client(SDK, tuskd.port, script.replace("@FINISH@", "True"))
    untouched = {"repos": ["ctx-old"], "branches": ["master"], "open": [before["id"]]}
    assert got["before"] == untouched
    assert got["after"] == {"repos": ["ctx-a", "ctx-old"], "branches": ["dev"], "open": []}
    assert got["started"] == before["commit"]
