"""inspect-job, list-pipeline, list-datum, get-logs, list-commit and list-job through the real CLI
on the plain reader (no httpx, pydantic or yaml on their path), against a real tuskd: byte for
byte what the typed client's answers print, in 1.7's layouts, ``--raw`` and 2.x's layouts; the
listings block by block as they arrive, and ``get-logs -f`` as lines are stored."""

from __future__ import annotations

import difflib
import json
import os
import re
import selectors
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tusk.api.pps import LogLine
from tusk.api.projects import bare
from tusk.cli import v2_tables
from tusk.cli.job_cmds import JOB_HEADER, job_row
from tusk.cli.jsonpb import proto_timestamp_json, render_json
from tusk.cli.pps_details import job_details
from tusk.cli.rows import COMMIT_HEADER, commit_row
from tusk.cli.tables import Table, print_table
from tusk.cli.units import ago, from_timestamp, human_duration
from tusk.cli.v2_raw import message, render
from tusk.client import Client, PutSource
from tusk.testing import clean_env

from .conftest import CLI, Tusk, atom, ok, run, spec
from .test_cli_streaming import assert_light

DATUMS = 130  # more than two blocks of the 50-line tables
COMMITS = 120
ENDED = ("success", "skipped", "failed", "recovered")


@pytest.fixture(scope="module")
def piped(tusk_server: dict[str, str]) -> tuple[str, str]:
    """Pipeline ``lp`` over repo ``lx``: a first job of DATUMS datums (one fails), then a second
    that skips most of them. (pipeline, the second job's id)."""
    with Client(tusk_server["TUSK_ADDRESS"], timeout=120) as c:
        c.create_repo("lx")
        c.put_files(
            "lx", "master", [PutSource(f"/f{i:03d}", str(i).encode()) for i in range(DATUMS)]
        )
    cmd = (
        "echo seen $(ls /pfs/lx); case $(ls /pfs/lx) in f007) exit 1;; esac; cp /pfs/lx/* /pfs/out/"
    )
    lp = spec("lp", cmd, atom("lx", "/*"), datum_tries=1)
    ok(run("create-pipeline", input=lp, env=tusk_server))
    ok(run("flush-commit", "lx/master", env=tusk_server, timeout=300))
    with Client(tusk_server["TUSK_ADDRESS"], timeout=120) as c:
        c.put_files("lx", "master", [PutSource("/g000", b"g")])
    ok(run("flush-commit", "lx/master", env=tusk_server, timeout=300))
    with Client(tusk_server["TUSK_ADDRESS"], timeout=60) as c:
        jobs = c.list_job("lp")
    assert len(jobs) == 2
    return "lp", jobs[0].id


@pytest.fixture(scope="module")
def commits(tusk_server: dict[str, str]) -> str:
    """Repo ``lc`` with COMMITS commits."""
    with Client(tusk_server["TUSK_ADDRESS"], timeout=120) as c:
        c.create_repo("lc")
        for i in range(COMMITS):
            c.put_files("lc", "master", [PutSource(f"/f{i}", b"x" * i)])
    return "lc"


AGO = re.compile(r"(Less than a second|About a minute|About an hour|\d+ [a-z]+) ago")


def timeless(table: str) -> str:
    """A table with each "9 seconds ago" as one token and the padding of cells as one space: rows
    made a moment apart may be a second older in one of two renderings (and the columns wider)."""
    return "\n".join(" ".join(AGO.sub("AGO", line).split()) for line in table.splitlines())


def printed(
    call: Callable[[], tuple[int, Any, str]], expect: Callable[..., str], *args: Any
) -> str:
    """The output of ``call`` (a CLI run), asserted to be ``expect(*args)``: the text the typed
    answer prints. Times print as "9 seconds ago", so the expected text is made just before and
    just after the run: the output must be one of the two, or (rows made at different moments
    may each turn a second older) the same table but for those times. Byte for byte layouts
    are checked with absolute times (2.x's --full-timestamps)."""
    before = expect(*args)
    got: str = ok(call())
    after = expect(*args)
    if got not in (before, after):
        assert timeless(got) == timeless(before), "\n".join(
            difflib.unified_diff(before.splitlines(), got.splitlines(), lineterm="", n=0)
        )
        assert got.count("\n") == before.count("\n")
    return got


def commit_table(infos: list[Any]) -> str:
    return print_table(COMMIT_HEADER, [commit_row(i) for i in infos])


def job_table(jobs: list[Any]) -> str:
    return print_table(JOB_HEADER, [job_row(j) for j in jobs])


def _client(env: dict[str, str]) -> Client:
    return Client(env["TUSK_ADDRESS"], timeout=60)


# -- inspect-job ---------------------------------------------------------------------------------
def test_inspect_job_is_the_typed_answer_printed(
    tusk: Tusk, tusk_server: dict[str, str], piped: tuple[str, str]
) -> None:
    pipeline, job_id = piped
    with _client(tusk_server) as c:
        job = c.inspect_job(job_id, pipeline=pipeline)
    text = printed(lambda: tusk("inspect-job", job_id, "--pipeline", pipeline), job_details, job)
    assert f"ID: {job_id} \nPipeline: lp \n" in text and f"Total: {DATUMS + 1}\n" in text
    raw = ok(tusk("inspect-job", job_id, "--pipeline", pipeline, "--raw"))
    assert raw == render_json(job.model_dump(mode="json")) + "\n"
    printed(lambda: tusk("inspect-job", job_id, "--pipeline", pipeline, "-b"), job_details, job)
    # 2.x: the same text, and the 2.x JobInfo message for --raw
    printed(lambda: tusk("inspect", "job", f"{pipeline}@{job_id}"), job_details, job)
    v2_raw = ok(tusk("inspect", "job", f"{pipeline}@{job_id}", "--raw"))
    assert v2_raw == render(message(job), "json") + "\n"


# -- list-pipeline -------------------------------------------------------------------------------
def test_list_pipeline_is_the_typed_answer_printed(
    tusk: Tusk, tusk_server: dict[str, str], piped: tuple[str, str]
) -> None:
    with _client(tusk_server) as c:
        infos = c.list_pipeline()
        jobs = c.list_job(None)
    assert "lp" in [i.name for i in infos]

    def table() -> str:
        rows = [
            (
                bare(i.name),
                i.input_summary,
                f"{bare(i.name)}/{i.spec.get('output_branch') or 'master'}",
                ago(from_timestamp(i.created)),
                str(i.state),
            )
            for i in infos
        ]
        return print_table(("NAME", "INPUT", "OUTPUT", "CREATED", "STATE"), rows)

    printed(lambda: tusk("list-pipeline"), table)
    raw = ok(tusk("list-pipeline", "--raw"))
    assert raw == "".join(render_json(i.model_dump(mode="json")) + "\n" for i in infos)
    specs = ok(tusk("list-pipeline", "--spec"))
    assert specs == "".join(render_json(i.spec) + "\n" for i in infos)
    last = v2_tables.last_job_states(jobs)

    def table_2() -> str:
        rows_2 = [v2_tables.pipeline_row(i, last.get(i.name, "-"), False) for i in infos]
        return print_table(v2_tables.PIPELINE_HEADER, rows_2)

    printed(lambda: tusk("list", "pipeline"), table_2)
    full = [v2_tables.pipeline_row(i, last.get(i.name, "-"), True) for i in infos]
    assert ok(tusk("list", "pipeline", "--full-timestamps")) == print_table(
        v2_tables.PIPELINE_HEADER, full
    )
    v2_raw = ok(tusk("list", "pipeline", "--raw"))
    assert v2_raw == "".join(render(message(i), "json") + "\n" for i in infos)


# -- list-datum ----------------------------------------------------------------------------------
def _datum_table(datums: list[Any], v2: bool) -> str:
    table = Table(("ID", "FILES", "STATUS", "TIME") if v2 else ("ID", "STATUS", "TIME"))
    for d in datums:
        state = d.state if d.state in ENDED else "-"
        took = human_duration(d.seconds) if d.seconds else "-"
        if v2:
            files = ", ".join(f"default/{i.repo}@{i.commit}:{i.path}" for i in d.inputs)
            table.add_raw(f"{d.id}\t{files}\t{state}\t{took}\t\n")
        else:
            table.add_raw(f"{d.id}\t{state}\t{took}\n")
    return table.render()


def test_list_datum_is_the_typed_answer_printed(
    tusk: Tusk, tusk_server: dict[str, str], piped: tuple[str, str]
) -> None:
    pipeline, job_id = piped
    with _client(tusk_server) as c:
        datums = c.list_datum(job_id, pipeline=pipeline)
        page = c.list_datum(job_id, pipeline=pipeline, page_size=20, page=2)
    assert len(datums) == DATUMS + 1
    assert {d.state for d in datums} == {"failed", "success", "skipped"}
    text = ok(tusk("list-datum", job_id, "--pipeline", pipeline))
    assert text == _datum_table(datums, v2=False)
    assert text.count("STATUS") == -(-(DATUMS + 1) // 49)  # the header every 50 lines
    raw = ok(tusk("list-datum", job_id, "--pipeline", pipeline, "--raw"))
    assert raw == "".join(render_json(d.model_dump(mode="json")) + "\n" for d in datums)
    paged = ok(
        tusk("list-datum", job_id, "--pipeline", pipeline, "--pageSize", "20", "--page", "2")
    )
    assert paged == _datum_table(page, v2=False)
    v2 = ok(tusk("list", "datum", f"{pipeline}@{job_id}"))
    assert v2 == _datum_table(datums, v2=True)
    v2_raw = ok(tusk("list", "datum", f"{pipeline}@{job_id}", "--raw"))
    assert v2_raw == "".join(render(message(d), "json") + "\n" for d in datums)


def test_list_datum_errors_keep_their_messages(tusk: Tusk, piped: tuple[str, str]) -> None:
    code, _, err = tusk("list-datum", "0123abc", "--pipeline", "lp")
    assert code == 3 and "job 0123abc not found" in err and "Traceback" not in err


# -- get-logs ------------------------------------------------------------------------------------
def _log_json(line: LogLine) -> str:
    msg = {
        "pipelineName": line.pipeline,
        "jobId": line.job_id,
        "workerId": line.worker,
        "datumId": line.datum_id,
        "master": line.master,
        "user": line.user,
        "ts": proto_timestamp_json(datetime.fromtimestamp(line.ts, UTC)) if line.ts else None,
        "message": line.message,
    }
    return json.dumps(
        {k: v for k, v in msg.items() if v}, ensure_ascii=False, separators=(",", ":")
    )


def test_get_logs_is_the_typed_answer_printed(
    tusk: Tusk, tusk_server: dict[str, str], piped: tuple[str, str]
) -> None:
    pipeline, job_id = piped
    with _client(tusk_server) as c:
        lines = list(c.get_logs(pipeline=pipeline))
        of_job = list(c.get_logs(pipeline=pipeline, job=job_id))
        master = list(c.get_logs(pipeline=pipeline, master=True))
    user = [ln.message.rstrip("\n") + "\n" for ln in lines if ln.user]
    assert any("seen f007" in u for u in user)
    assert ok(tusk("get-logs", "-p", pipeline)) == "".join(user)
    assert ok(tusk("get-logs", "-p", pipeline, "-t", "3")) == "".join(user[-3:])
    assert ok(tusk("get-logs", "-p", pipeline, "--raw")) == "".join(
        _log_json(ln) + "\n" for ln in lines
    )
    assert ok(tusk("get-logs", "--job", job_id, "-p", pipeline)) == "".join(
        ln.message.rstrip("\n") + "\n" for ln in of_job if ln.user
    )
    assert ok(tusk("get-logs", "-p", pipeline, "--master")) == "".join(
        ln.message.rstrip("\n") + "\n" for ln in master if ln.user or ln.master
    )
    assert ok(tusk("logs", "-p", pipeline)) == "".join(user)  # 2.x's spelling


def test_get_logs_follow_prints_lines_as_they_are_stored(
    tusk_server: dict[str, str], piped: tuple[str, str]
) -> None:
    pipeline, _ = piped
    proc = subprocess.Popen(
        [*CLI, "get-logs", "-p", pipeline, "-f"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(tusk_server),
    )
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    seen = b""

    def read_until(needle: bytes, timeout: float) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while needle not in seen:
            left = deadline - time.monotonic()
            assert left > 0, (needle, seen[-500:])
            if sel.select(left):
                seen += proc.stdout.read() or b""  # type: ignore[union-attr]

    try:
        read_until(b"seen f007", 60)  # the stored lines first
        with _client(tusk_server) as c:
            c.put_files("lx", "master", [PutSource("/h-follow", b"h")])
        read_until(b"seen h-follow", 90)  # then a line stored after the command started
        assert proc.poll() is None  # still following
    finally:
        proc.terminate()
        proc.wait(10)
        sel.close()
        proc.stdout.close()
        proc.stderr.close()  # type: ignore[union-attr]


# -- list-commit and list-job ----------------------------------------------------------------------
def test_list_commit_prints_the_typed_answer_block_by_block(
    tusk: Tusk, tusk_server: dict[str, str], commits: str
) -> None:
    with _client(tusk_server) as c:
        infos = c.list_commit(commits)
        some = c.list_commit(commits, "master", number=7)
    assert len(infos) == COMMITS
    text = printed(lambda: tusk("list-commit", commits), commit_table, infos)
    assert text.count("REPO") == -(-COMMITS // 49)
    printed(lambda: tusk("list-commit", commits, "master", "-n", "7"), commit_table, some)
    raw = ok(tusk("list-commit", commits, "--raw"))
    assert raw == "".join(render_json(i.model_dump(mode="json")) + "\n" for i in infos)
    full = ok(tusk("list", "commit", commits, "--full-timestamps"))
    assert full == print_table(
        v2_tables.COMMIT_HEADER, [v2_tables.commit_row(i, True) for i in infos]
    )
    assert full.count("REPO") == -(-COMMITS // 49)
    printed(
        lambda: tusk("list", "commit", commits),
        lambda: print_table(
            v2_tables.COMMIT_HEADER, [v2_tables.commit_row(i, False) for i in infos]
        ),
    )
    v2_raw = ok(tusk("list", "commit", commits, "--raw"))
    assert v2_raw == "".join(render(message(i), "json") + "\n" for i in infos)


def test_list_job_prints_the_typed_answer(
    tusk: Tusk, tusk_server: dict[str, str], piped: tuple[str, str]
) -> None:
    pipeline, _ = piped
    with _client(tusk_server) as c:
        jobs = c.list_job(pipeline)
        every = c.list_job(None)
    printed(lambda: tusk("list-job", "-p", pipeline), job_table, jobs)
    printed(lambda: tusk("list-job"), job_table, every)
    raw = ok(tusk("list-job", "-p", pipeline, "--raw"))
    assert raw == "".join(render_json(j.model_dump(mode="json")) + "\n" for j in jobs)
    full = ok(tusk("list", "job", "-x", "--full-timestamps"))
    assert full == print_table(v2_tables.JOB_HEADER, [v2_tables.job_row(j, True) for j in every])
    printed(
        lambda: tusk("list", "job", "-x"),
        lambda: print_table(v2_tables.JOB_HEADER, [v2_tables.job_row(j, False) for j in every]),
    )


# -- what the moved commands import ---------------------------------------------------------------
def test_the_moved_reads_import_no_httpx_pydantic_or_yaml(
    tusk_server: dict[str, str], piped: tuple[str, str], commits: str
) -> None:
    pipeline, job_id = piped
    for argv in (
        ["inspect-job", job_id, "--pipeline", pipeline],
        ["inspect-job", job_id, "--pipeline", pipeline, "--raw"],
        ["list-pipeline"],
        ["list-pipeline", "--raw"],
        ["list-datum", job_id, "--pipeline", pipeline],
        ["list-datum", job_id, "--pipeline", pipeline, "--raw"],
        ["get-logs", "-p", pipeline],
        ["get-logs", "-p", pipeline, "--raw"],
        ["list-commit", commits],
        ["list-job", "-p", pipeline],
        # pachctl 2.x's listings, of sets too
        ["list", "job"],
        ["list", "job", job_id],
        ["list", "job", "-x"],
        ["list", "commit"],
        ["list", "commit", job_id],
        ["list", "commit", commits],
    ):
        assert_light(tusk_server, argv)
