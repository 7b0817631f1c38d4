"""Pipelines end to end in one process (reference §2–§5, DESIGN "Pipelines"): specs checked at
create, the wave of jobs a put causes, datums and how they are mounted, incrementality, updates,
provenance, stop/start/delete and logs, as a user of list-job, get-file and get-logs sees them."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import COPY, PY, Pps, atom, progress

from tusk.api.pps import JobInfo
from tusk.errors import AlreadyExists, HasDependents, InvalidSpec, NotFound
from tusk.pfs.context import SPEC_REPO

# Each datum appends its file names to /pfs/out/all: concatenation shows the datum order.
APPEND_NAMES = [
    "sh",
    "-c",
    "for f in $(cd /pfs/in && find . -type f | sort); do echo $f >> /pfs/out/all; done",
]
# One upper-cased copy per input file, and a line on stdout naming it.
UPPER = [
    "sh",
    "-c",
    'for f in /pfs/in/*; do tr a-z A-Z < "$f" > /pfs/out/$(basename "$f"); '
    'echo "processed $(basename "$f")"; done',
]


def job_of(pps: Pps, pipeline: str, job_id: str) -> JobInfo:
    return pps.engine.jobs.inspect(job_id, pipeline)


# -- spec handling at create -----------------------------------------------------------------------


def _nothing_created(pps: Pps, name: str) -> None:
    assert [p.name for p in pps.engine.pipelines.list()] == []
    assert name not in [r.name for r in pps.engine.repos.list(include_hidden=True)]
    assert name not in [b.branch.name for b in pps.engine.commits.list_branches(SPEC_REPO)]
    assert pps.engine.jobs.workers() == []


def test_unknown_field_is_rejected_naming_the_field(pps: Pps) -> None:
    pps.repo("in")
    with pytest.raises(InvalidSpec) as e:
        pps.create("p", atom("in", name="in"), COPY, transform={"comand": ["true"]})
    assert "comand" in e.value.message
    _nothing_created(pps, "p")


def test_missing_input_repo_is_rejected(pps: Pps) -> None:
    with pytest.raises(NotFound) as e:
        pps.create("p", atom("nope"), COPY)
    assert "nope" in e.value.message
    _nothing_created(pps, "p")


def test_input_named_out_is_rejected(pps: Pps) -> None:
    pps.repo("in")
    with pytest.raises(InvalidSpec) as e:
        pps.create("p", atom("in", name="out"), COPY)
    assert '"out"' in e.value.message
    _nothing_created(pps, "p")


def test_input_name_used_twice_is_rejected(pps: Pps) -> None:
    pps.repo("in")
    with pytest.raises(InvalidSpec) as e:
        pps.create("p", {"cross": [atom("in"), atom("in", glob="/")]}, COPY)
    assert 'name "in" was used more than once' in e.value.message
    _nothing_created(pps, "p")


def test_creating_an_existing_pipeline_or_updating_a_missing_one_fails(pps: Pps) -> None:
    pps.repo("in")
    with pytest.raises(NotFound):
        pps.create("p", atom("in", name="in"), COPY, update=True)
    _nothing_created(pps, "p")
    pps.create("p", atom("in", name="in"), COPY)
    with pytest.raises(AlreadyExists) as e:
        pps.create("p", atom("in", name="in"), ["true"])
    assert "already exists" in e.value.message
    info = pps.engine.pipelines.inspect("p")
    assert info.version == 1
    assert info.spec["transform"]["cmd"] == COPY


def test_a_cycle_is_rejected_and_changes_nothing(pps: Pps) -> None:
    pps.repo("x", "loop")
    with pytest.raises(InvalidSpec):  # reads its own output repo
        pps.create("loop", atom("loop"), COPY)
    assert pps.engine.pipelines.list() == []
    pps.create("a", atom("x"), COPY)
    pps.create("b", atom("a"), COPY)
    with pytest.raises(InvalidSpec) as e:
        pps.create("a", atom("b"), COPY, update=True)
    assert "cycle" in e.value.message
    info = pps.engine.pipelines.inspect("a")
    assert info.version == 1
    assert info.spec["input"]["atom"]["repo"] == "x"


# -- triggering ------------------------------------------------------------------------------------


def test_a_put_creates_the_jobs_of_the_whole_dag_at_once(pps: Pps) -> None:
    pps.repo("x")
    pps.create("a", atom("x", name="in"), COPY)
    pps.create("b", atom("a", name="in"), COPY)
    pps.create("c", atom("b", name="in"), COPY)
    assert pps.engine.jobs.list() == []  # no data, no job
    commit = pps.put("x", {"/f": "hello"})
    wave = pps.engine.jobs.list()  # right after the put, before anything ran
    assert sorted(j.pipeline for j in wave) == ["a", "b", "c"]
    assert {j.id for j in wave} == {commit}
    assert {(j.output_commit.repo, j.output_commit.id) for j in wave} == {
        ("a", commit),
        ("b", commit),
        ("c", commit),
    }
    for name in "abc":
        (job,) = pps.wait_jobs(name, 1)
        assert job.state == "success"
    assert pps.read("c", commit, "/f") == b"hello"


def test_create_over_existing_data_runs_one_job_and_an_empty_repo_none(pps: Pps) -> None:
    pps.repo("full", "empty")
    pps.put("full", {"/1": "a"})
    pps.put("full", {"/2": "b"})
    pps.create("over_full", atom("full", name="in"), COPY)
    pps.create("over_empty", atom("empty", name="in"), COPY)
    (job,) = pps.wait_jobs("over_full", 1)
    assert progress(job) == (2, 0, 2)
    assert pps.tree("over_full") == {"/1": b"a", "/2": b"b"}
    assert pps.jobs("over_empty") == []
    commit = pps.put("empty", {"/3": "c"})
    (job,) = pps.wait_jobs("over_empty", 1)
    assert job.id == commit and job.state == "success"


def test_jobs_of_one_pipeline_run_one_at_a_time_in_commit_order(pps: Pps) -> None:
    pps.repo("x")
    slow = ["sh", "-c", "sleep 0.2; cp /pfs/in/* /pfs/out/"]
    pps.create("p", atom("x", name="in"), slow)
    commits = [pps.put("x", {f"/{i}": str(i)}) for i in range(4)]
    jobs = pps.wait_jobs("p", 4)
    assert [j.id for j in jobs] == commits
    assert all(j.state == "success" for j in jobs)
    # the master's log: each job runs and ends before the next one starts
    events = [
        (r.job_id, r.message.split(":")[0])
        for r in pps.engine.jobs.logs("p", master=True)
        if r.message.startswith(("job running", "job success"))
    ]
    assert events == [e for c in commits for e in ((c, "job running"), (c, "job success"))]
    assert [progress(j) for j in jobs] == [(1, 0, 1), (1, 1, 2), (1, 2, 3), (1, 3, 4)]


# -- datums ----------------------------------------------------------------------------------------


DESCRIBE = (
    "import json, os\n"
    "pfs = os.environ['PFS']\n"
    "env = {k: v.replace(pfs, '/pfs', 1) for k, v in os.environ.items()}\n"
    "files = sorted('/pfs' + os.path.join(r, f)[len(pfs):] for r, _, fs in os.walk(pfs) for f in fs)\n"
    "name = os.environ['PACH_DATUM_ID']\n"
    "with open(os.path.join(pfs, 'out', name), 'w') as out:\n"
    "    json.dump({'env': env, 'files': files}, out)\n"
)


def _described(pps: Pps, pipeline: str) -> list[dict[str, Any]]:
    return [json.loads(v) for v in pps.tree(pipeline).values()]


def test_glob_star_gives_one_datum_per_top_level_entry_at_its_full_path(pps: Pps) -> None:
    pps.repo("data")
    pps.put("data", {"/a.txt": "a", "/dir/b.txt": "bb", "/dir/sub/c.txt": "ccc"})
    pps.create("p", atom("data"), [PY, "-c", DESCRIBE])
    (job,) = pps.wait_jobs("p", 1)
    assert job.state == "success" and progress(job) == (2, 0, 2)
    seen = {d["env"]["data"]: d["files"] for d in _described(pps, "p")}
    assert seen == {
        "/pfs/data/a.txt": ["/pfs/data/a.txt"],
        "/pfs/data/dir": ["/pfs/data/dir/b.txt", "/pfs/data/dir/sub/c.txt"],
    }


def test_datum_environment(pps: Pps) -> None:
    pps.repo("data")
    commit = pps.put("data", {"/f": "x"})
    pps.create("p", atom("data", glob="/"), [PY, "-c", DESCRIBE], transform={"env": {"FOO": "bar"}})
    (job,) = pps.wait_jobs("p", 1)
    assert job.state == "success", job.reason
    (datum,) = pps.engine.jobs.datums(job.id, "p")
    (described,) = _described(pps, "p")
    env = described["env"]
    assert env["data"] == "/pfs/data"
    assert env["data_COMMIT"] == commit
    assert env["PACH_JOB_ID"] == job.id
    assert env["PACH_OUTPUT_COMMIT_ID"] == job.output_commit.id
    assert env["PACH_DATUM_ID"] == datum.id
    assert env["FOO"] == "bar"
    assert described["files"] == ["/pfs/data/f"]


def test_stdin_lines_are_fed_to_the_command(pps: Pps) -> None:
    pps.repo("data")
    pps.put("data", {"/f": "x"})
    stdin = [
        "echo one > /pfs/out/lines",
        "echo $GREETING >> /pfs/out/lines",
        "cat /pfs/data/f >> /pfs/out/lines",
    ]
    pps.create(
        "p", atom("data", glob="/"), ["sh"], transform={"stdin": stdin, "env": {"GREETING": "hi"}}
    )
    (job,) = pps.wait_jobs("p", 1)
    assert job.state == "success", job.reason
    assert pps.read("p", "master", "/lines") == b"one\nhi\nx"


PAIR = ["sh", "-c", "echo $(basename $a)$(basename $b) >> /pfs/out/pairs"]


def test_cross_varies_the_first_input_fastest(pps: Pps) -> None:
    pps.repo("a", "b")
    pps.put("a", {"/a1": "1", "/a2": "2"})
    pps.put("b", {"/b1": "1", "/b2": "2", "/b3": "3"})
    # given out of order: the stored spec sorts cross inputs by name
    created = pps.create("p", {"cross": [atom("b"), atom("a")]}, PAIR)
    assert created.input_summary == "(a:/* ⨯ b:/*)"  # list-pipeline's INPUT column
    jobs = pps.wait_jobs("p", 1)
    assert progress(jobs[-1]) == (6, 0, 6)
    pairs = pps.read("p", "master", "/pairs").decode().split()
    assert pairs == ["a1b1", "a2b1", "a1b2", "a2b2", "a1b3", "a2b3"]


def test_union_concatenates_its_inputs_in_name_order(pps: Pps) -> None:
    pps.repo("a", "b")
    pps.put("a", {"/a1": "1", "/a2": "2"})
    pps.put("b", {"/b1": "1"})
    # only the datum's own input is mounted: one of /pfs/a, /pfs/b
    names = [
        "sh",
        "-c",
        "for f in ${a:-} ${b:-}; do echo $(ls /pfs | grep -v out) $(basename $f) >> /pfs/out/all; done",
    ]
    # given out of order: the stored spec sorts union inputs by name
    pps.create("p", {"union": [atom("b"), atom("a")]}, names)
    (job,) = pps.wait_jobs("p", 1)
    assert progress(job) == (3, 0, 3)
    assert pps.read("p", "master", "/all").decode().splitlines() == ["a a1", "a a2", "b b1"]


# -- incrementality --------------------------------------------------------------------------------


def test_a_new_file_is_processed_alone_and_rolling_back_restores_old_outputs(pps: Pps) -> None:
    pps.repo("x")
    pps.put("x", {"/a": "a", "/b": "b", "/c": "c"})
    pps.create("p", atom("x", name="in"), UPPER)
    (first,) = pps.wait_jobs("p", 1)
    assert progress(first) == (3, 0, 3)
    before = pps.tree("p")
    assert before == {"/a": b"A", "/b": b"B", "/c": b"C"}

    added = pps.put("x", {"/d": "d"})
    job = pps.wait_jobs("p", 2)[-1]
    assert job.id == added and progress(job) == (1, 3, 4)
    assert pps.user_logs("p", added) == ["processed d"]
    assert pps.tree("p") == {**before, "/d": b"D"}

    removed = pps.delete("x", "/d")
    job = pps.wait_jobs("p", 3)[-1]
    assert job.id == removed and progress(job) == (0, 3, 3)
    assert pps.tree("p") == before  # the output of the vanished datum vanished too
    assert pps.user_logs("p", removed) == []

    again = pps.put("x", {"/d": "d"})
    job = pps.wait_jobs("p", 4)[-1]
    assert job.id == again and progress(job) == (0, 4, 4)
    assert pps.tree("p") == {**before, "/d": b"D"}


def test_a_changed_file_replaces_its_output(pps: Pps) -> None:
    pps.repo("x")
    pps.put("x", {"/a": "a", "/b": "b"})
    pps.create("p", atom("x", name="in"), UPPER)
    pps.wait_jobs("p", 1)
    pps.put("x", {"/b": "x"}, overwrite=True)
    job = pps.wait_jobs("p", 2)[-1]
    assert progress(job) == (1, 1, 2)
    assert pps.tree("p") == {"/a": b"A", "/b": b"X"}


def test_datums_writing_the_same_path_concatenate_in_datum_order(pps: Pps) -> None:
    pps.repo("x")
    # datum order: size descending, then path
    pps.put("x", {"/a": "1", "/b": "333", "/c": "22", "/d": "22"})
    pps.create("p", atom("x", name="in"), APPEND_NAMES, parallelism_spec={"constant": 2})
    (job,) = pps.wait_jobs("p", 1)
    assert job.state == "success", job.reason
    assert pps.read("p", "master", "/all") == b"./b\n./c\n./d\n./a\n"
    pps.create("p", atom("x", name="in"), APPEND_NAMES, update=True, reprocess=True)
    job = pps.wait_jobs("p", 2)[-1]
    assert progress(job) == (4, 0, 4)
    assert pps.read("p", "master", "/all") == b"./b\n./c\n./d\n./a\n"


# -- update-pipeline -------------------------------------------------------------------------------


def test_parallelism_only_update_skips_everything_and_replaces_the_workers(pps: Pps) -> None:
    pps.repo("x")
    pps.put("x", {"/a": "a", "/b": "b", "/c": "c"})
    pps.create("p", atom("x", name="in"), UPPER)
    pps.wait_jobs("p", 1)
    (v1,) = pps.engine.jobs.workers("p")
    assert re.fullmatch(r"pipeline-p-v1-[a-z0-9]{5}", v1.name)

    info = pps.create(
        "p", atom("x", name="in"), UPPER, update=True, parallelism_spec={"constant": 3}
    )
    assert info.version == 2
    jobs = pps.wait_jobs("p", 2)
    assert progress(jobs[-1]) == (0, 3, 3) and jobs[-1].state == "success"
    workers = pps.engine.jobs.workers("p")
    assert len(workers) == 3
    assert all(re.fullmatch(r"pipeline-p-v2-[a-z0-9]{5}", w.name) for w in workers)
    assert v1.name not in {w.name for w in workers}
    assert pps.tree("p") == {"/a": b"A", "/b": b"B", "/c": b"C"}


def test_reprocess_runs_every_datum_again(pps: Pps) -> None:
    pps.repo("x")
    pps.put("x", {"/a": "a", "/b": "b"})
    pps.create("p", atom("x", name="in"), UPPER)
    pps.wait_jobs("p", 1)
    salt = pps.engine.pipelines.inspect("p").salt
    assert pps.create("p", atom("x", name="in"), COPY, update=True, reprocess=True).warnings == []
    job = pps.wait_jobs("p", 2)[-1]
    assert progress(job) == (2, 0, 2)
    assert pps.engine.pipelines.inspect("p").salt != salt
    assert pps.tree("p") == {"/a": b"a", "/b": b"b"}


def test_a_transform_change_without_reprocess_keeps_old_outputs(pps: Pps) -> None:
    pps.repo("x")
    pps.put("x", {"/a": "a", "/b": "b"})
    pps.create("p", atom("x", name="in"), UPPER)
    pps.wait_jobs("p", 1)
    updated = pps.create("p", atom("x", name="in"), COPY, update=True)
    # every client hears that the old results were kept
    (warning,) = updated.warnings
    assert warning.startswith("The transform of pipeline p changed: its old results were kept")
    assert "--reprocess" in warning
    job = pps.wait_jobs("p", 2)[-1]
    assert progress(job) == (0, 2, 2)
    assert pps.tree("p") == {"/a": b"A", "/b": b"B"}  # made by the old code, kept
    pps.put("x", {"/c": "c"})
    job = pps.wait_jobs("p", 3)[-1]
    assert progress(job) == (1, 2, 3)
    assert pps.tree("p") == {"/a": b"A", "/b": b"B", "/c": b"c"}  # the new code for new data
    # each job reports the transform of the spec version it ran
    specs = [pps.engine.jobs.inspect(j.id, "p").spec["transform"]["cmd"] for j in pps.jobs("p")]
    assert specs == [UPPER, COPY, COPY]


def test_an_update_kills_the_running_job_and_runs_a_new_one(pps: Pps, tmp_path: Path) -> None:
    started = tmp_path / "started"
    pps.repo("x")
    pps.put("x", {"/a": "a"})
    pps.create("p", atom("x", name="in"), ["sh", "-c", f"touch {started}; sleep 60"])
    pps.wait_for("the datum to start", started.exists)
    t0 = time.monotonic()
    pps.create("p", atom("x", name="in"), COPY, update=True)
    old, new = pps.wait_jobs("p", 2, timeout=30)
    assert time.monotonic() - t0 < 20
    assert (old.state, old.reason) == ("killed", "pipeline was updated")
    assert new.state == "success" and progress(new) == (1, 0, 1)
    assert pps.tree("p") == {"/a": b"a"}


# -- provenance ------------------------------------------------------------------------------------


def test_provenance_of_a_three_stage_dag_and_flush(pps: Pps) -> None:
    pps.repo("x")
    slow = ["sh", "-c", "sleep 0.1; cp /pfs/in/* /pfs/out/"]
    for name, source in (("a", "x"), ("b", "a"), ("c", "b")):
        pps.create(name, atom(source, name="in"), slow)
    commit = pps.put("x", {"/f": "data"})
    flushed = pps.engine.jobs.flush_commits([("x", commit)], timeout=60)
    assert sorted((c.commit.repo, c.commit.id) for c in flushed) == [
        ("a", commit),
        ("b", commit),
        ("c", commit),
    ]
    assert all(c.finished is not None and not c.failed for c in flushed)
    # flush waited for the jobs too, not only for their commits
    assert [j.state for j in pps.engine.jobs.list()] == ["success"] * 3

    spec_commits = {n: pps.engine.pipelines.inspect(n).spec_commit for n in "abc"}
    prov = {
        (p.commit.repo, p.commit.id) for p in pps.engine.commits.inspect("c", commit).provenance
    }
    assert prov == {
        ("x", commit),
        ("a", commit),
        ("b", commit),
        *((SPEC_REPO, spec_commits[n]) for n in "abc"),
    }
    assert pps.read("c", commit, "/f") == b"data"


# -- stop / start / delete -------------------------------------------------------------------------


def test_a_stopped_pipeline_makes_no_jobs_and_start_runs_one_over_the_heads(pps: Pps) -> None:
    pps.repo("x")
    pps.put("x", {"/a": "a"})
    pps.create("p", atom("x", name="in"), UPPER)
    pps.wait_jobs("p", 1)
    info = pps.engine.pipelines.set_stopped("p", True)
    assert info.stopped and info.state == "paused"
    pps.put("x", {"/b": "b"})
    head = pps.put("x", {"/c": "c"})
    assert len(pps.jobs("p")) == 1
    assert pps.engine.jobs.workers("p") == []

    pps.engine.pipelines.set_stopped("p", False)
    jobs = pps.wait_jobs("p", 2)
    assert progress(jobs[-1]) == (2, 1, 3)
    assert {(i.repo, i.id) for i in jobs[-1].inputs if i.repo == "x"} == {("x", head)}
    assert pps.tree("p") == {"/a": b"A", "/b": b"B", "/c": b"C"}
    assert len(pps.engine.jobs.workers("p")) == 1


def test_delete_pipeline(pps: Pps) -> None:
    pps.repo("x")
    pps.put("x", {"/a": "a"})
    pps.create("a", atom("x", name="in"), COPY)
    pps.create("b", atom("a", name="in"), COPY)
    pps.wait_jobs("b", 1)
    with pytest.raises(HasDependents) as e:
        pps.engine.pipelines.delete("a")
    assert "b" in e.value.message
    assert {p.name for p in pps.engine.pipelines.list()} == {"a", "b"}

    assert pps.engine.pipelines.delete("b") == ["b"]
    assert [p.name for p in pps.engine.pipelines.list()] == ["a"]
    assert "b" not in [r.name for r in pps.engine.repos.list()]
    assert "b" not in [b.branch.name for b in pps.engine.commits.list_branches(SPEC_REPO)]
    assert [j.pipeline for j in pps.engine.jobs.list()] == ["a"]
    assert {w.pipeline for w in pps.engine.jobs.workers()} == {"a"}
    with pytest.raises(NotFound):
        pps.engine.pipelines.inspect("b")
    # the name is free again, and a put no longer makes jobs for it
    pps.put("x", {"/b": "b"})
    assert [j.pipeline for j in pps.engine.jobs.list()] == ["a", "a"]


# -- logs ------------------------------------------------------------------------------------------


def test_user_output_is_logged_and_outlives_the_workers(pps: Pps) -> None:
    pps.repo("x")
    pps.put("x", {"/a": "a", "/b": "b"})
    chatty = [
        "sh",
        "-c",
        'for f in /pfs/in/*; do echo "out $(basename $f)"; echo "err $(basename $f)" >&2; done',
    ]
    pps.create("p", atom("x", name="in"), chatty)
    (job,) = pps.wait_jobs("p", 1)
    datums = {d.inputs[0].path: d.id for d in pps.engine.jobs.datums(job.id, "p")}
    (worker,) = [w.name for w in pps.engine.jobs.workers("p")]

    def user_lines() -> set[tuple[str, str, str, str, str]]:
        return {
            (r.job_id, r.datum_id, r.worker, r.stream, r.message)
            for r in pps.engine.jobs.logs("p", job.id)
            if r.user
        }

    expected = {
        (job.id, datums[f"/{n}"], worker, stream, f"{word} {n}")
        for n in "ab"
        for stream, word in (("stdout", "out"), ("stderr", "err"))
    }
    assert user_lines() == expected
    # per datum
    only_a = {r.message for r in pps.engine.jobs.logs("p", datum_id=datums["/a"]) if r.user}
    assert only_a == {"out a", "err a"}

    pps.create("p", atom("x", name="in"), chatty, update=True)  # v2 workers replace v1
    pps.wait_jobs("p", 2)
    assert worker not in {w.name for w in pps.engine.jobs.workers("p")}
    pps.engine.pipelines.set_stopped("p", True)  # and then no workers at all
    assert pps.engine.jobs.workers("p") == []
    assert user_lines() == expected


def test_shutdown_waits_a_bounded_time_for_busy_pipeline_loops(pps: Pps) -> None:
    """A loop that does not end when asked (blocked in a slow call) holds a shutdown for at most
    STOP_SECONDS in all, not a timeout per loop: two stuck loops here, one deadline."""
    import threading

    from tusk.pps.scheduling.scheduler import STOP_SECONDS

    pps.repo("in")
    pps.create("a", atom("in"), COPY)
    pps.create("b", atom("in"), COPY)
    sched = pps.engine.scheduler
    pps.wait_for("both loops", lambda: {"a", "b"} <= set(sched.loops))
    release = threading.Event()
    for loop in list(sched.loops.values()):
        loop.thread = threading.Thread(target=release.wait, args=(60,), daemon=True)
        loop.thread.start()
    try:
        started = time.monotonic()
        sched.stop()
        took = time.monotonic() - started
    finally:
        release.set()
    assert STOP_SECONDS <= took < STOP_SECONDS + 3, took


def test_stats_commit_is_written_a_page_of_datums_at_a_time(
    pps: Pps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """enable_stats over more datums than a page: every datum's files are on the stats branch,
    each with its own logs and outputs, whatever page it was written in."""
    from tusk.pps.running import stats

    monkeypatch.setattr(stats, "STATS_PAGE", 2)
    pps.repo("in")
    pps.put("in", {f"/{n}": f"{n}" * 3 for n in "abcde"})
    cmd = ["sh", "-c", 'for f in /pfs/in/*; do echo "saw $(basename $f)"; cp $f /pfs/out/; done']
    pps.create("st", atom("in"), cmd, enable_stats=True)
    (job,) = pps.wait_jobs("st", 1)
    assert job.state == "success"
    tree = pps.tree("st", "stats")
    datums = {p.split("/")[1] for p in tree}
    assert len(datums) == 5
    seen = {}
    for d in datums:
        name = tree[f"/{d}/logs"].decode().removeprefix("saw ").strip()
        seen[name] = d
        assert tree[f"/{d}/pfs/out/{name}"] == tree[f"/{d}/pfs/in/{name}"] == name.encode() * 3
        assert f"/{d}/job:{job.id}" in tree
    assert sorted(seen) == list("abcde")
    indexes = sorted(int(tree[f"/{d}/index"]) for d in datums)
    assert indexes == [0, 1, 2, 3, 4]
