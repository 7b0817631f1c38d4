"""When user code fails (reference §2.5, §3.2; DESIGN "Failures", "Running user code"): retries,
kept results, failed output commits, timeouts, stop-job, and user code that misbehaves with its
/pfs — with bubblewrap (required: it must fail, not skip, where bwrap is missing) and without."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import COPY, Pps, atom, progress

from tusk.errors import CommitFailed

# Counts its attempts per file in $COUNTS (outside /pfs: the host fs is writable in the sandbox),
# copies each input file, and fails (exit 3, "boom <name>" on stderr) on a file whose content is "bad".
FLAKY = [
    "sh",
    "-c",
    'for f in /pfs/in/*; do n=$(basename "$f"); echo "$n" >> "$COUNTS/attempts"; '
    'if [ "$(cat "$f")" = bad ]; then echo "boom $n" >&2; exit 3; fi; '
    'cp "$f" /pfs/out/; done',
]


def attempts(counts: Path) -> dict[str, int]:
    path = counts / "attempts"
    lines = path.read_text().split() if path.exists() else []
    return {n: lines.count(n) for n in sorted(set(lines))}


def test_a_failing_datum_fails_the_job_and_the_next_good_input_succeeds(
    sandboxed_pps: Pps, tmp_path: Path
) -> None:
    pps = sandboxed_pps
    counts = tmp_path / "counts"
    counts.mkdir()
    pps.repo("x")
    pps.put("x", {"/a": "a", "/b": "bad", "/c": "c"})
    pps.create("p", atom("x", name="in"), FLAKY, transform={"env": {"COUNTS": str(counts)}})
    pps.create("down", atom("p", name="in"), COPY)
    (job,) = pps.wait_jobs("p", 1)
    datums = {d.inputs[0].path: d for d in pps.engine.jobs.datums(job.id, "p")}

    assert job.state == "failure"
    assert f"failed to process datum: {datums['/b'].id}" in job.reason
    assert "exit code 3: boom b" in job.reason
    assert attempts(counts) == {"a": 1, "b": 3, "c": 1}  # datum_tries defaults to 3
    assert (datums["/b"].state, datums["/b"].tries) == ("failed", 3)
    assert {datums[p].state for p in ("/a", "/c")} == {"success"}
    assert progress(job) == (2, 0, 3) and job.failed == 1
    # the runtime asked for is the one used, and the job says so
    assert job.runtime == pps.engine.settings.runtime == "host"
    started = [r.message for r in pps.engine.jobs.logs("p", job.id) if r.stream == "system"]
    assert any(m.startswith("beginning to run user code (runtime: host") for m in started), started
    assert pps.user_logs("p", job.id).count("boom b") == 3

    output = pps.engine.commits.inspect("p", job.id)
    assert output.finished is not None and output.failed
    assert datums["/b"].id in output.reason
    with pytest.raises(CommitFailed):
        pps.read("p", job.id, "/a")
    (down,) = pps.wait_jobs("down", 1)
    assert (down.state, down.reason) == ("failure", "input p failed")

    fixed = pps.put("x", {"/b": "b"}, overwrite=True)
    job = pps.wait_jobs("p", 2)[-1]
    assert job.id == fixed and job.state == "success"
    assert progress(job) == (1, 2, 3)  # a and c were kept from the failed job
    assert attempts(counts) == {"a": 1, "b": 4, "c": 1}
    assert pps.tree("p") == {"/a": b"a", "/b": b"b", "/c": b"c"}
    down = pps.wait_jobs("down", 2)[-1]
    assert down.state == "success"
    assert pps.tree("down") == {"/a": b"a", "/b": b"b", "/c": b"c"}


def test_datum_tries_counts_attempts(pps: Pps, tmp_path: Path) -> None:
    pps.repo("x")
    pps.put("x", {"/b": "bad"})
    pps.create(
        "p",
        atom("x", name="in"),
        FLAKY,
        transform={"env": {"COUNTS": str(tmp_path)}},
        datum_tries=1,
    )
    (job,) = pps.wait_jobs("p", 1)
    assert job.state == "failure"
    assert attempts(tmp_path) == {"b": 1}


def test_accept_return_code(pps: Pps) -> None:
    pps.repo("x")
    pps.put("x", {"/a": "a"})
    code7 = ["sh", "-c", "cp /pfs/in/* /pfs/out/; exit 7"]
    pps.create("ok", atom("x", name="in"), code7, transform={"accept_return_code": [7]})
    pps.create("bad", atom("x", name="in"), code7, datum_tries=1)
    (job,) = pps.wait_jobs("ok", 1)
    assert job.state == "success", job.reason
    assert pps.tree("ok") == {"/a": b"a"}
    (job,) = pps.wait_jobs("bad", 1)
    assert job.state == "failure" and "exit code 7" in job.reason


def test_a_command_not_on_path_fails_the_datum_saying_so(pps: Pps) -> None:
    pps.repo("x")
    pps.put("x", {"/a": "a"})
    pps.create("p", atom("x", name="in"), ["no-such-command-tusk", "arg"])
    (job,) = pps.wait_jobs("p", 1)
    assert job.state == "failure"
    (datum,) = pps.engine.jobs.datums(job.id, "p")
    assert datum.state == "failed" and datum.tries == 3
    assert datum.reason == "command not found: no-such-command-tusk"
    assert "command not found: no-such-command-tusk" in job.reason


def test_datum_timeout_kills_a_hanging_datum(sandboxed_pps: Pps) -> None:
    pps = sandboxed_pps
    pps.repo("x")
    pps.put("x", {"/fast": "f", "/hang": "h"})
    hang = ["sh", "-c", "cp /pfs/in/* /pfs/out/; [ -e /pfs/in/hang ] && exec sleep 60; true"]
    t0 = time.monotonic()
    pps.create("p", atom("x", name="in"), hang, datum_timeout="1s", datum_tries=2)
    (job,) = pps.wait_jobs("p", 1, timeout=30)
    assert time.monotonic() - t0 < 20
    datums = {d.inputs[0].path: d for d in pps.engine.jobs.datums(job.id, "p")}
    assert job.state == "failure"
    assert (datums["/hang"].state, datums["/hang"].tries) == ("failed", 2)
    assert datums["/hang"].reason == "datum timed out after 1s"
    assert datums["/fast"].state == "success"
    assert "timed out" in job.reason


def test_job_timeout_kills_the_job(pps: Pps) -> None:
    pps.repo("x")
    pps.put("x", {"/a": "a"})
    t0 = time.monotonic()
    created = pps.create("p", atom("x", name="in"), ["sleep", "60"], job_timeout="2s")
    # the server gives clients the timeouts in seconds
    assert (created.job_timeout_seconds, created.datum_timeout_seconds) == (2.0, None)
    (job,) = pps.wait_jobs("p", 1, timeout=30)
    assert time.monotonic() - t0 < 20
    assert job.state == "killed"
    assert "timeout" in job.reason
    inspected = pps.engine.jobs.inspect(job.id, "p")
    assert inspected.job_timeout_seconds == 2.0
    assert inspected.started is not None and inspected.finished is not None
    assert inspected.duration_seconds == inspected.finished - inspected.started
    output = pps.engine.commits.inspect("p", job.id)
    assert output.finished is not None
    # the pipeline is not stuck behind the killed job
    pps.create("p", atom("x", name="in"), COPY, update=True)
    assert pps.wait_jobs("p", 2)[-1].state == "success"


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_stop_job_kills_the_running_job(sandboxed_pps: Pps, tmp_path: Path) -> None:
    pps = sandboxed_pps
    pps.repo("x")
    starts = tmp_path / "starts"
    # records its host pid (from /proc, whatever pid namespace it runs in) for each start; exec
    # so that the pid is the one that sleeps
    slow = ["sh", "-c", f"read -r pid rest < /proc/self/stat; echo $pid >> {starts}; exec sleep 60"]
    pps.put("x", {"/a": "a"})
    pps.create("p", atom("x", name="in"), slow)
    (job,) = pps.wait_for("a job", lambda: pps.jobs("p"))
    pps.wait_for("the datum to start", lambda: starts.exists() and starts.read_text(), 30)
    (pid,) = map(int, starts.read_text().split())
    assert pps.engine.jobs.inspect(job.id, "p").state == "running"
    t0 = time.monotonic()
    pps.engine.jobs.stop(job.id, "p")
    job = pps.wait_job("p", job.id, timeout=10)
    assert (job.state, job.reason) == ("killed", "stopped by the user")
    output = pps.engine.commits.inspect("p", job.id)
    assert output.finished is not None
    pps.wait_for("the user process to end", lambda: not _alive(pid), timeout=10)
    # the pipeline goes on at once with its next job; the stopped one stays stopped
    pps.create("p", atom("x", name="in"), COPY, update=True)
    stopped, new = pps.wait_jobs("p", 2, timeout=20)
    assert new.state == "success"
    assert time.monotonic() - t0 < 20
    assert (stopped.state, stopped.reason) == ("killed", "stopped by the user")
    assert starts.read_text().split() == [str(pid)]  # never started again


def test_a_symlink_out_of_pfs_fails_the_datum(sandboxed_pps: Pps, tmp_path: Path) -> None:
    pps = sandboxed_pps
    secret = tmp_path / "secret"
    secret.write_text("do not upload")
    pps.repo("x")
    pps.put("x", {"/a": "a"})
    pps.create("p", atom("x", name="in"), ["ln", "-s", str(secret), "/pfs/out/leak"], datum_tries=1)
    (job,) = pps.wait_jobs("p", 1)
    assert job.state == "failure"
    (datum,) = pps.engine.jobs.datums(job.id, "p")
    assert datum.reason == f"output /leak is a symlink to {secret}, outside /pfs/out"


def test_a_symlink_to_an_input_is_an_output(sandboxed_pps: Pps) -> None:
    pps = sandboxed_pps
    pps.repo("x")
    pps.put("x", {"/a": "a"})
    pps.create("p", atom("x", name="in"), ["ln", "-s", "/pfs/in/a", "/pfs/out/a"])
    (job,) = pps.wait_jobs("p", 1)
    assert job.state == "success", job.reason
    assert pps.tree("p") == {"/a": b"a"}


def test_user_code_cannot_change_stored_input(sandboxed_pps: Pps) -> None:
    pps = sandboxed_pps
    pps.repo("x")
    original = {"/f": b"original\n", "/dir/g": b"other\n"}
    commit = pps.put("x", original)
    before = {f.path: f.hash for f in pps.engine.files.walk("x", commit) if f.type == "file"}
    vandal = [
        "sh",
        "-c",
        "chmod -R u+w /pfs/in 2>/dev/null; echo evil >> /pfs/in/f; echo evil > /pfs/in/dir/g; "
        "rm -rf /pfs/in/dir; mv /pfs/in/f /pfs/in/moved; true",
    ]
    pps.create("p", atom("x", name="in", glob="/"), vandal)
    (job,) = pps.wait_jobs("p", 1)
    assert job.state == "success", job.reason
    assert pps.tree("x", commit) == original
    assert {
        f.path: f.hash for f in pps.engine.files.walk("x", commit) if f.type == "file"
    } == before
    # a second pipeline still gets the original bytes
    pps.create("copy", atom("x", name="in", glob="/"), COPY)
    (job,) = pps.wait_jobs("copy", 1)
    assert pps.tree("copy") == original


def test_inputs_are_read_only_in_the_sandbox(sandboxed_pps: Pps) -> None:
    pps = sandboxed_pps
    pps.repo("x")
    pps.put("x", {"/f": "data"})
    probe = [
        "sh",
        "-c",
        "if { echo evil >> /pfs/in/f; } 2>/dev/null; then echo writable; else echo read-only; fi",
    ]
    pps.create("p", atom("x", name="in"), probe)
    (job,) = pps.wait_jobs("p", 1)
    assert job.state == "success", job.reason
    # root ignores file modes; the bwrap mount is read-only even for root
    if pps.engine.settings.runtime == "host":
        assert pps.user_logs("p") == ["read-only"]


def test_a_shutdown_mid_datum_is_quick_and_the_datum_runs_again_after_start(
    tmp_path: Path,
) -> None:
    first_run = tmp_path / "first-run"
    once = [
        "sh",
        "-c",
        f"[ -e {first_run} ] || {{ touch {first_run}; sleep 60; }}; cp /pfs/in/* /pfs/out/",
    ]
    pps = Pps(tmp_path / "home")
    try:
        pps.repo("x")
        pps.put("x", {"/a": "a"})
        pps.create("p", atom("x", name="in"), once, datum_tries=1)
        (job,) = pps.wait_for("a job", lambda: pps.jobs("p"))
        pps.wait_for("the datum to start", first_run.exists)
        t0 = time.monotonic()
    finally:
        pps.close()
    assert time.monotonic() - t0 < 10
    pps = Pps(tmp_path / "home")
    try:
        job = pps.wait_job("p", job.id)
        # the interrupted attempt was not the datum's fault: with datum_tries 1 it still succeeds
        assert job.state == "success", job.reason
        (datum,) = pps.engine.jobs.datums(job.id, "p")
        assert datum.tries == 1
        assert pps.tree("p") == {"/a": b"a"}
    finally:
        pps.close()
