"""A job never waits forever in ``starting``: every way it can stay there either ends in a clear
failure within bounded time, or is a wait whose reason inspect-job shows (an open input commit,
a stopped pipeline). The image-not-found case is in test_sandbox.py
(``test_missing_image_warns_at_create_and_fails_each_job``)."""

from __future__ import annotations

import os
import time

from conftest import COPY, Pps, atom

from tusk.api.pps import JobState
from tusk.pfs.context import SPEC_REPO
from tusk.pps.running import job_inputs


def _only_job(pps: Pps, pipeline: str) -> str:
    jobs = pps.wait_for(f"a job of {pipeline}", lambda: pps.jobs(pipeline), 30)
    assert len(jobs) == 1
    return str(jobs[0].id)


def _reason(pps: Pps, pipeline: str, job_id: str) -> str:
    return pps.engine.jobs.inspect(job_id, pipeline).reason


def test_a_job_waiting_for_an_open_input_commit_says_so(pps: Pps) -> None:
    pps.repo("in")
    pps.create("p", atom("in"), COPY)
    commit = pps.engine.commits.start("in", "master")
    job_id = _only_job(pps, "p")
    want = f"waiting for input commit in@{commit.commit.id} to be finished"
    pps.wait_for("the waiting reason", lambda: _reason(pps, "p", job_id) == want, 15)
    assert pps.engine.jobs.inspect(job_id, "p").state is JobState.STARTING
    pps.engine.commits.finish("in", commit.commit.id)
    job = pps.wait_job("p", job_id)
    assert (job.state, job.reason) == (JobState.SUCCESS, "")


def test_a_job_of_a_stopped_pipeline_says_so_and_runs_once_started(pps: Pps) -> None:
    pps.repo("in")
    pps.create("p", atom("in"), COPY)
    commit = pps.engine.commits.start("in", "master")
    job_id = _only_job(pps, "p")
    pps.engine.pipelines.set_stopped("p", True)
    pps.engine.commits.finish("in", commit.commit.id)
    want = "waiting: pipeline p is stopped (start it with `tusk start-pipeline p`)"
    pps.wait_for("the waiting reason", lambda: _reason(pps, "p", job_id) == want, 15)
    assert pps.engine.jobs.inspect(job_id, "p").state is JobState.STARTING
    pps.engine.pipelines.set_stopped("p", False)
    job = pps.wait_job("p", job_id)
    assert (job.state, job.reason) == (JobState.SUCCESS, "")


def test_deleting_the_input_commit_of_a_waiting_job_ends_it(pps: Pps) -> None:
    pps.repo("in")
    pps.create("p", atom("in"), COPY)
    commit = pps.engine.commits.start("in", "master")
    job_id = _only_job(pps, "p")
    pps.wait_for("the wait", lambda: _reason(pps, "p", job_id).startswith("waiting"), 15)
    pps.engine.commits.delete("in", commit.commit.id)
    job = pps.wait_job("p", job_id, 20)
    assert job.state is JobState.KILLED
    assert job.reason == (
        "its output commit was deleted (delete-commit of one of its input commits)"
    )
    # the pipeline goes on with new data
    pps.put("in", {"/a": "1"})
    pps.wait_for("the next job", lambda: pps.jobs("p")[-1].state is JobState.SUCCESS, 30)
    assert pps.tree("p") == {"/a": b"1"}


def test_a_job_that_cannot_start_fails_in_bounded_time_with_the_error(pps: Pps) -> None:
    # the object holding the pipeline's spec is lost from the object store: the job cannot
    # read what to run; it is retried with back-off, then fails naming the error
    pps.repo("in")
    pps.create("p", atom("in"), COPY)
    commit = pps.engine.commits.start("in", "master")
    job_id = _only_job(pps, "p")
    spec_commit = pps.engine.jobs.inspect(job_id, "p").spec_commit
    with pps.engine.ctx.meta.transaction(write=False) as tx:
        row = tx.get_commit(SPEC_REPO, spec_commit)
    assert row is not None and row.tree is not None
    node = pps.engine.ctx.tree.get(row.tree, "/spec")
    assert node is not None
    lost = {pps.engine.store._path(c.object) for c in node.chunks}  # type: ignore[attr-defined]
    for path in lost:
        os.unlink(path)
    job_inputs._SPECS.clear()  # as after a restart: the spec is not in this server's memory
    started = time.monotonic()
    pps.engine.commits.finish("in", commit.commit.id)
    # (inspect-job would need the lost spec too: list-job shows the job)
    (job,) = pps.wait_for(
        "the job to end", lambda: [j for j in pps.jobs("p") if j.state.terminal], 60
    )
    assert time.monotonic() - started < 40
    assert job.state is JobState.FAILURE
    assert job.reason.startswith("the job could not start (4 tries): "), job.reason
    assert job.restarts == 3  # four tries: the first is no restart


def test_updating_the_pipeline_of_a_waiting_job_kills_it_and_runs_the_new_version(
    pps: Pps,
) -> None:
    pps.repo("in")
    pps.create("p", atom("in"), COPY)
    commit = pps.engine.commits.start("in", "master")
    job_id = _only_job(pps, "p")
    pps.create("p", atom("in"), ["sh", "-c", "echo v2 > /pfs/out/v"], update=True)
    job = pps.wait_job("p", job_id, 20)
    assert (job.state, job.reason) == (JobState.KILLED, "pipeline was updated")
    pps.engine.commits.finish("in", commit.commit.id)
    pps.put("in", {"/a": "1"})
    pps.wait_for("the new version's job", lambda: pps.jobs("p")[-1].state is JobState.SUCCESS, 30)
    assert pps.jobs("p")[-1].version == 2
    assert pps.tree("p") == {"/v": b"v2\n"}


def test_force_deleting_the_input_repo_of_a_waiting_job_ends_it(pps: Pps) -> None:
    pps.repo("in")
    pps.create("p", atom("in"), COPY)
    pps.engine.commits.start("in", "master")
    job_id = _only_job(pps, "p")
    pps.wait_for("the wait", lambda: _reason(pps, "p", job_id).startswith("waiting"), 15)
    pps.engine.repos.delete("in", force=True)
    job = pps.wait_for(
        "the job to end",
        lambda: next((j for j in pps.jobs("p") if j.id == job_id and j.state.terminal), None),
        20,
    )
    assert job.state in (JobState.KILLED, JobState.FAILURE)
    assert "deleted" in job.reason, job.reason
