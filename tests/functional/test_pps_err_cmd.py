"""2.x ``err_cmd``: when cmd fails on a datum, err_cmd (fed ``err_stdin``) runs in the same
sandbox; exit 0 makes the datum ``recovered`` (its output left out, the job not failed), as
list-job, inspect-job and list-datum show; otherwise the datum failed."""

from __future__ import annotations

from conftest import Pps, atom

from tusk.api.pps import DatumState
from tusk.cli.job_cmds import job_row
from tusk.cli.pps_details import job_details

# Copies each input file, but fails (after writing a partial output) on the one holding "bad".
FAILS_ON_BAD = [
    "sh",
    "-c",
    'for f in /pfs/in/*; do n=$(basename "$f"); cp "$f" /pfs/out/$n; '
    'if grep -q bad "$f"; then echo "cannot process $n" >&2; exit 3; fi; done',
]


def test_err_cmd_exit_0_recovers_the_datum_and_the_job_succeeds(pps: Pps) -> None:
    pps.repo("in")
    pps.put("in", {"/a": "good\n", "/b": "bad\n", "/c": "good too\n"})
    pps.create(
        "p",
        atom("in"),
        FAILS_ON_BAD,
        transform={"err_cmd": ["sh"], "err_stdin": ["echo recovering $PACH_DATUM_ID", "exit 0"]},
        datum_tries=2,
    )
    (job,) = pps.wait_jobs("p", 1)
    assert job.state == "success", job.reason
    assert (job.processed, job.skipped, job.failed, job.recovered, job.total) == (2, 0, 0, 1, 3)
    # the recovered datum's output (its partial /b) is not in the output commit
    assert pps.tree("p") == {"/a": b"good\n", "/c": b"good too\n"}

    datums = pps.engine.jobs.datums(job.id, "p")
    assert [d.state for d in datums] == [
        DatumState.RECOVERED,
        DatumState.SUCCESS,
        DatumState.SUCCESS,
    ]
    recovered = datums[0]
    assert recovered.tries == 2  # err_cmd ran on every try; the last one decided
    assert recovered.reason == "exit code 3: cannot process b"
    logs = pps.user_logs("p", job.id)
    assert logs.count(f"recovering {recovered.id}") == 2

    assert "1 recovered" in job_row(job)[5]
    assert "Recovered: 1\n" in job_details(pps.engine.jobs.inspect(job.id, "p"))

    # a recovered datum has no stored output: the next job runs it again
    pps.put("in", {"/d": "good\n"})
    second = pps.wait_jobs("p", 2)[1]
    assert (second.processed, second.skipped, second.recovered) == (1, 2, 1)


def test_err_cmd_that_fails_leaves_the_datum_failed(pps: Pps) -> None:
    pps.repo("in")
    pps.put("in", {"/a": "good\n", "/b": "bad\n"})
    pps.create(
        "p", atom("in"), FAILS_ON_BAD, transform={"err_cmd": ["sh", "-c", "exit 1"]}, datum_tries=1
    )
    (job,) = pps.wait_jobs("p", 1)
    assert job.state == "failure"
    assert (job.failed, job.recovered) == (1, 0)
    states = {d.state for d in pps.engine.jobs.datums(job.id, "p")}
    assert states == {DatumState.FAILED, DatumState.SUCCESS}
    master = [r.message for r in pps.engine.jobs.logs("p", job.id)]
    assert any(m.startswith("err_cmd failed: exit code 1") for m in master)


def test_without_err_cmd_a_failing_datum_fails_the_job(pps: Pps) -> None:
    pps.repo("in")
    pps.put("in", {"/b": "bad\n"})
    pps.create("p", atom("in"), FAILS_ON_BAD, datum_tries=1)
    (job,) = pps.wait_jobs("p", 1)
    assert (job.state, job.recovered) == ("failure", 0)
