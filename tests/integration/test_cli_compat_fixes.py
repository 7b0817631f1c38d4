"""pachctl 1.7 behaviours through the real CLI against a real server: put-file from S3 (a real
moto endpoint) and --split sql, list-job -i, list-datum pages, inspect-datum's times, stats
branches, the RESTART column across a server restart, get-logs, inspect-commit of a missing id,
subscribe-commit's layout, delete-repo --all x and hints under the pachctl name."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from s3server import moto_server_fixture

from tusk import testing
from tusk.testing import Tuskd, clean_env
from tusk.testing.moto import MotoServer

from .conftest import CLI, Tusk, atom, fails, ok, raw_objects, rows, run, spec

moto_server = moto_server_fixture()


@pytest.fixture(scope="module")
def tusk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A tuskd of this module's own: its failing pipelines stay out of the other CLI tests'."""
    with Tuskd(tmp_path_factory.mktemp("compat-home"), {"TUSK_RUNTIME": "host"}) as server:
        yield server.env


# -- helpers ------------------------------------------------------------------------------------


def head(tusk: Tusk, repo: str) -> str:
    return rows(ok(tusk("list-commit", repo)))[1][1]


def commit_count(tusk: Tusk, repo: str) -> int:
    return len(rows(ok(tusk("list-commit", repo)))) - 1


def jobs(tusk: Tusk, pipeline: str) -> list[dict[str, Any]]:
    return raw_objects(ok(tusk("list-job", "-p", pipeline, "--raw")))


def job_ended(tusk: Tusk, pipeline: str, n: int = 1) -> list[dict[str, Any]]:
    """The pipeline's jobs once ``n`` of them have ended."""

    def met() -> list[dict[str, Any]] | None:
        js = jobs(tusk, pipeline)
        ended = [j for j in js if j["state"] in ("success", "failure", "killed")]
        return js if len(ended) >= n else None

    return testing.wait_for(f"{n} ended jobs of {pipeline}", met, 90, interval=0.2)


def restart_cell(row: list[str]) -> str:
    """RESTART of a list-job row split on whitespace (just before PROGRESS's ``N + M / T``)."""
    return row[row.index("+") - 2]


# -- put-file from S3 ---------------------------------------------------------------------------
def test_put_file_from_s3_with_the_cli_users_credentials(
    tusk: Tusk, moto_server: MotoServer
) -> None:
    s3 = moto_server.client()
    bucket = moto_server.create_bucket()
    try:
        s3.put_object(Bucket=bucket, Key="data/a.txt", Body=b"alpha\n")
        s3.put_object(Bucket=bucket, Key="data/sub/b.txt", Body=b"beta\n")
        s3.put_object(Bucket=bucket, Key="other.txt", Body=b"other\n")
        aws = moto_server.env()  # only the CLI has them: the server never reads S3 itself
        ok(tusk("create-repo", "s3in"))

        ok(tusk("put-file", "s3in", "master", "/one", "-f", f"s3://{bucket}/data/a.txt", env=aws))
        assert ok(tusk("get-file", "s3in", "master", "/one")) == "alpha\n"
        # no path: the URL's path, as 1.7
        ok(tusk("put-file", "s3in", "master", "-f", f"s3://{bucket}/other.txt", env=aws))
        assert ok(tusk("get-file", "s3in", "master", "/other.txt")) == "other\n"
        # -r: every object under the prefix, relative to it
        ok(tusk("put-file", "s3in", "master", "/imp", "-r", "-f", f"s3://{bucket}/data/", env=aws))
        assert ok(tusk("get-file", "s3in", "master", "/imp/a.txt")) == "alpha\n"
        assert ok(tusk("get-file", "s3in", "master", "/imp/sub/b.txt")) == "beta\n"

        before = commit_count(tusk, "s3in")
        missing = f"s3://{bucket}/data/nope.txt"
        fails(tusk("put-file", "s3in", "master", "/x", "-f", missing, env=aws), 7, "NoSuchKey")
        no_creds = {"AWS_ENDPOINT_URL": moto_server.endpoint, "AWS_EC2_METADATA_DISABLED": "true"}
        no_creds |= {
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_CONFIG_FILE": "/nonexistent",
        }
        other = f"s3://{bucket}/other.txt"
        fails(
            tusk("put-file", "s3in", "master", "/x", "-f", other, env=no_creds),
            7,
            "no AWS credentials",
        )
        err = fails(
            tusk("put-file", "s3in", "master", "/x", "-f", "pfs://b/k"), 7, "unsupported URL scheme"
        )
        assert "tusk get-file on the source server" in err
        assert commit_count(tusk, "s3in") == before  # nothing stored by the failures
    finally:
        moto_server.remove_bucket(bucket)


# -- put-file --split sql -----------------------------------------------------------------------
PG_DUMP = """--
-- PostgreSQL database dump
--
SET statement_timeout = 0;
CREATE TABLE public.cars (id integer, name text);
COPY public.cars (id, name) FROM stdin;
1\tbeetle
2\tmini
3\tfiat
\\.
ALTER TABLE ONLY public.cars ADD CONSTRAINT cars_pkey PRIMARY KEY (id);
--
-- PostgreSQL database dump complete
--
"""
HEADER, _, REST = PG_DUMP.partition("1\tbeetle\n")
FOOTER = REST[REST.index("\\.\n") :]


def test_split_sql_keeps_header_and_footer_in_every_file(tusk: Tusk) -> None:
    ok(tusk("create-repo", "dumps"))
    ok(tusk("put-file", "dumps", "master", "/cars", "--split", "sql", input=PG_DUMP))
    names = [r[0] for r in rows(ok(tusk("list-file", "dumps", "master", "/cars")))[1:]]
    assert names == [f"/cars/{i:016x}" for i in range(3)]
    for i, row in enumerate(["1\tbeetle\n", "2\tmini\n", "3\tfiat\n"]):
        assert ok(tusk("get-file", "dumps", "master", f"/cars/{i:016x}")) == HEADER + row + FOOTER

    ok(
        tusk(
            "put-file",
            "dumps",
            "master",
            "/two",
            "--split",
            "sql",
            "--target-file-datums",
            "2",
            input=PG_DUMP,
        )
    )
    files = [r[0] for r in rows(ok(tusk("list-file", "dumps", "master", "/two")))[1:]]
    assert len(files) == 2
    assert (
        ok(tusk("get-file", "dumps", "master", files[0]))
        == HEADER + "1\tbeetle\n2\tmini\n" + FOOTER
    )

    before = commit_count(tusk, "dumps")
    fails(
        tusk("put-file", "dumps", "master", "/bad", "--split", "sql", input="SELECT 1;\n"),
        2,
        "missing row inserts",
    )
    fails(
        tusk("put-file", "dumps", "master", "/bad", "--split", "sql", input=HEADER + "1\tx\n"),
        2,
        "missing footer",
    )
    assert commit_count(tusk, "dumps") == before


# -- list-job -i ----------------------------------------------------------------------------------
def test_list_job_input_filter_keeps_only_the_jobs_of_that_commit(tusk: Tusk) -> None:
    ok(tusk("create-repo", "lji"))
    ok(tusk("put-file", "lji", "master", "/f1", input="one\n"))
    first = head(tusk, "lji")
    ok(tusk("create-pipeline", input=spec("ljp", "cp -r /pfs/lji/. /pfs/out/", atom("lji", "/*"))))
    ok(tusk("put-file", "lji", "master", "/f2", input="two\n"))
    second = head(tusk, "lji")
    ok(tusk("flush-commit", f"lji/{second}"))
    by_input = {  # job id -> its input commit of lji, from the job records themselves
        j["id"]: next(i["id"] for i in j["inputs"] if i["repo"] == "lji") for j in jobs(tusk, "ljp")
    }
    assert sorted(by_input.values()) == sorted([first, second])
    for commit in (first, second):
        table = rows(ok(tusk("list-job", "-i", f"lji/{commit}")))[1:]
        (job_id,) = (j for j, c in by_input.items() if c == commit)
        assert [(r[0], r[1]) for r in table] == [(job_id, f"ljp/{job_id}")]
    assert len(rows(ok(tusk("list-job", "-p", "ljp")))[1:]) == 2


# -- datums: pages, times, stats, DL of the last try, logs ---------------------------------------
def test_datum_pages_times_and_stats_branch(tusk: Tusk) -> None:
    ok(tusk("create-repo", "dsin"))
    for name in ("a", "b", "c"):
        ok(tusk("put-file", "dsin", "master", f"/{name}", input=f"{name * 10}\n"))
    cmd = 'for f in /pfs/dsin/*; do echo "saw $f"; cp "$f" /pfs/out/; done'
    ok(tusk("create-pipeline", input=spec("dsp", cmd, atom("dsin", "/*"), enable_stats=True)))
    ok(tusk("flush-commit", f"dsin/{head(tusk, 'dsin')}"))
    job = job_ended(tusk, "dsp")[0]
    assert job["state"] == "success"
    job_id = job["id"]

    every = rows(ok(tusk("list-datum", job_id)))
    assert every[0] == ["ID", "STATUS", "TIME"] and len(every) == 4
    page0 = rows(ok(tusk("list-datum", job_id, "--pageSize", "2", "--page", "0")))[1:]
    page1 = rows(ok(tusk("list-datum", job_id, "--pageSize", "2", "--page", "1")))[1:]
    assert len(page0) == 2 and len(page1) == 1
    assert {r[0] for r in page0 + page1} == {r[0] for r in every[1:]}

    datum = every[1][0]
    details = ok(tusk("inspect-datum", job_id, datum))
    labels = [line.split("  ")[0] for line in details.splitlines()]
    for label in ("Total Time", "Download Time", "Process Time", "Upload Time"):
        assert label in labels, details
    branches = {r[0]: r[1] for r in rows(ok(tusk("list-branch", "dsp")))[1:]}
    assert "stats" in branches and "master" in branches
    stats_commit = branches["stats"]
    pfs_state = details.split("PFS State:\n")[1].split("Inputs:\n")[0]
    assert rows(pfs_state)[1] == ["dsp", stats_commit, f"/{datum}/pfs"]

    # what 1.7 writes on the stats branch, for every datum
    top = sorted(r[0] for r in rows(ok(tusk("list-file", "dsp", "stats")))[1:])
    assert top == sorted(r[0] for r in every[1:])
    names = {r[0] for r in rows(ok(tusk("list-file", "dsp", "stats", f"/{datum}")))[1:]}
    assert {f"/{datum}/{n}" for n in ("job:" + job_id, "index", "stats", "logs", "pfs")} <= names
    stats = json.loads(ok(tusk("get-file", "dsp", "stats", f"/{datum}/stats")))
    assert set(stats) == {
        "downloadTime",
        "processTime",
        "uploadTime",
        "downloadBytes",
        "uploadBytes",
    }
    assert stats["downloadBytes"] == "11" and stats["uploadBytes"] == "11"
    logs = ok(tusk("get-file", "dsp", "stats", f"/{datum}/logs"))
    assert logs.startswith("saw /pfs/dsin/")
    seen = logs.split()[-1].rsplit("/", 1)[-1]  # the input file this datum read
    pfs = f"/{datum}/pfs"
    assert ok(tusk("get-file", "dsp", "stats", f"{pfs}/dsin/{seen}")) == f"{seen * 10}\n"
    assert ok(tusk("get-file", "dsp", "stats", f"{pfs}/out/{seen}")) == f"{seen * 10}\n"
    # the output branch is untouched by the stats
    assert ok(tusk("get-file", "dsp", "master", "/a")) == "aaaaaaaaaa\n"


def test_failed_datum_counts_the_bytes_of_its_last_try_and_logs_a_missing_command(
    tusk: Tusk,
) -> None:
    ok(tusk("create-repo", "dlin"))
    ok(tusk("put-file", "dlin", "master", "/big", input="x" * 873 + "\n"))
    ok(tusk("create-pipeline", input=spec("dlp", "cat /pfs/dlin/big; exit 1", atom("dlin", "/*"))))
    missing = {
        "pipeline": {"name": "dlnf"},
        "transform": {"cmd": ["no-such-command-here"]},
        "input": atom("dlin", "/*"),
    }
    ok(tusk("create-pipeline", input=json.dumps(missing)))
    job = job_ended(tusk, "dlp")[0]
    assert job["state"] == "failure"
    assert job["bytes_down"] == 874  # three tries, one download counted
    assert rows(ok(tusk("list-job", "-p", "dlp")))[1][-3] == "874B"

    job_ended(tusk, "dlnf")
    user_lines = ok(tusk("get-logs", "-p", "dlnf")).splitlines()
    assert user_lines and all("command not found" in line for line in user_lines), user_lines
    assert "no-such-command-here" in user_lines[0]


def test_get_logs_tail_keeps_user_lines_and_no_filter_shows_the_server_log(tusk: Tusk) -> None:
    ok(tusk("create-repo", "gtin"))
    ok(tusk("put-file", "gtin", "master", "/f", input="x\n"))
    ok(
        tusk(
            "create-pipeline",
            input=spec("gtp", "echo first; echo second; echo third", atom("gtin", "/*")),
        )
    )
    job_ended(tusk, "gtp")
    assert ok(tusk("get-logs", "-p", "gtp")).splitlines() == ["first", "second", "third"]
    assert ok(tusk("get-logs", "-p", "gtp", "-t", "1")) == "third\n"
    assert ok(tusk("get-logs", "-p", "gtp", "-t", "2")) == "second\nthird\n"
    server = ok(tusk("get-logs"))
    assert "tuskd started" in server
    assert "first" not in server  # user code's lines are not the server's
    fails(tusk("get-logs", "-t", "-1"), 2, "--tail must be >= 0")


# -- RESTART ------------------------------------------------------------------------------------
def test_restart_column_counts_a_job_taken_up_again_after_down_and_up(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    started = tmp_path / "started"
    server = Tuskd(tmp_path / "home", {"TUSK_RUNTIME": "host"})
    server.start()
    try:

        def tusk(*args: str, **kw: Any) -> tuple[int, Any, str]:
            return run(*args, env=server.env, **kw)

        ok(tusk("create-repo", "rin"))
        ok(tusk("put-file", "rin", "master", "/f", input="x\n"))
        wait = (
            f"touch {started}; while [ ! -e {gate} ]; do sleep 0.1; done; cp /pfs/rin/f /pfs/out/"
        )
        ok(tusk("create-pipeline", input=spec("rp", wait, atom("rin", "/*"))))
        testing.wait_for("the datum to start", started.exists, 60)
        assert restart_cell(rows(ok(tusk("list-job", "-p", "rp")))[1]) == "0"
        server.stop()  # as `tusk down`: mid-job
        server.start()
        gate.touch()
        job = job_ended(tusk, "rp")[0]
        assert job["state"] == "success" and job["restarts"] == 1
        assert restart_cell(rows(ok(tusk("list-job", "-p", "rp")))[1]) == "1"
    finally:
        gate.touch()
        server.stop()


# -- PFS commands -------------------------------------------------------------------------------
def test_inspect_commit_of_a_missing_id_or_prefix_says_commit_not_found(tusk: Tusk) -> None:
    ok(tusk("create-repo", "icm"))
    ok(tusk("put-file", "icm", "master", "/f", input="x\n"))
    full = head(tusk, "icm")
    fails(tusk("inspect-commit", "icm", "deadbeef"), 3, "commit deadbeef not found in repo icm")
    # ids are matched whole, as in 1.7: a prefix is not found either
    fails(tusk("inspect-commit", "icm", full[:8]), 3, f"commit {full[:8]} not found in repo icm")
    fails(tusk("inspect-commit", "icm", "nobranch"), 3, "branch nobranch not found in repo icm")
    assert f"Commit: icm/{full}" in ok(tusk("inspect-commit", "icm", full))


def test_subscribe_commit_rows_line_up_with_the_header(
    tusk_server: dict[str, str], tusk: Tusk
) -> None:
    ok(tusk("create-repo", "subs_aligned"))
    ok(tusk("put-file", "subs_aligned", "master", "/f", input="x\n"))
    proc = subprocess.Popen(
        [*CLI, "subscribe-commit", "subs_aligned", "master"],
        env=clean_env(tusk_server),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        header = proc.stdout.readline()
        first = proc.stdout.readline()  # printed as it comes, before any later commit
        ok(tusk("put-file", "subs_aligned", "master", "/g", input="yy\n"))
        second = proc.stdout.readline()
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    columns = ("REPO", "ID", "PARENT", "STARTED", "DURATION", "SIZE")
    starts = [header.index(c) for c in columns]
    assert starts == sorted(starts)
    for line in (first, second):
        cells = line.split()
        assert cells[0] == "subs_aligned" and len(cells[1]) == 32
        assert line.index(cells[1]) == starts[1]  # ID
        assert line.index(cells[2], starts[2]) == starts[2]  # PARENT
        assert line[starts[3] - 1] == " " and line[starts[3]] != " "  # STARTED
        assert line.rstrip().endswith("B")
        assert line.rstrip().rsplit(" ", 1)[1][0].isdigit() and line[starts[5]].isdigit()


def test_delete_repo_all_with_a_name_and_hints_under_the_pachctl_name(
    tusk_server: dict[str, str], tusk: Tusk
) -> None:
    fails(tusk("delete-repo", "--all", "x"), 2, "cannot use the --all flag with an argument")
    fails(tusk("delete-repo"), 2, "either a repo name or the --all flag needs to be provided")
    fails(tusk("delete-pipeline", "--all", "x"), 2, "cannot use the --all flag with an argument")
    ok(tusk("create-repo", "hints"))
    err = fails(tusk("inspect-commit", "hints", "nobranch"), 3, "branch nobranch not found")
    assert "`tusk list-branch hints`" in err
    # the same CLI run as pachctl (its entry point beside this Python) speaks of pachctl
    pachctl = str(Path(sys.executable).parent / "pachctl")
    proc = subprocess.run(
        [pachctl, "inspect-commit", "hints", "nobranch"],
        env=clean_env(tusk_server),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 3, proc.stderr
    assert "`pachctl list-branch hints`" in proc.stderr
    assert "tusk" not in proc.stderr


def test_restart_datum_tries_a_running_datum_again(tusk: Tusk, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    runs = tmp_path / "runs"
    ok(tusk("create-repo", "rdin"))
    ok(tusk("put-file", "rdin", "master", "/slow", input="s\n"))
    wait = (
        f"echo run >> {runs}; while [ ! -e {gate} ]; do sleep 0.1; done; "
        "cp /pfs/rdin/slow /pfs/out/"
    )
    ok(tusk("create-pipeline", input=spec("rdp", wait, atom("rdin", "/*"))))
    try:
        testing.wait_for("the first run", lambda: runs.exists(), 60)
        job_id = jobs(tusk, "rdp")[0]["id"]
        fails(tusk("restart-datum", job_id, "/other"), 3, "no running datum of job")
        ok(tusk("restart-datum", job_id, "/slow"))
        testing.wait_for("the second run", lambda: runs.read_text().count("run") == 2, 60)
    finally:
        gate.touch()
    job = job_ended(tusk, "rdp")[0]
    assert job["state"] == "success"
    (datum,) = raw_objects(ok(tusk("list-datum", job_id, "--raw")))
    assert datum["tries"] == 2 and datum["state"] == "success"
    assert ok(tusk("get-file", "rdp", "master", "/slow")) == "s\n"
    fails(tusk("restart-datum", job_id, "/slow"), 2, "has ended")
