"""Idle workers: ``standby`` stops a pipeline's workers when it has no job and starts them on new
data (the pipeline shows ``standby`` meanwhile); ``scale_down_threshold`` stops them after that
much idleness. The worker processes really end (checked in the OS), and come back. Also the
warnings of spec fields that cannot work here, as create-pipeline and inspect-pipeline give them."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import COPY, Pps, atom

from tusk.api.pps import PipelineState
from tusk.errors import InvalidArgument
from tusk.pps.executors.local import LocalExecutor
from tusk.runtime import Settings


def _pids(pps: Pps, pipeline: str) -> list[int]:
    executor = pps.engine.executor
    assert isinstance(executor, LocalExecutor)
    with executor._lock:
        pool = executor._pools.get(pipeline)
    if pool is None:
        return []
    return [w.proc.pid for w in pool.workers if w.proc is not None]  # type: ignore[attr-defined]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def _state(pps: Pps, pipeline: str) -> PipelineState:
    return pps.engine.pipelines.inspect(pipeline).state


def _wait_standby(pps: Pps, pipeline: str, timeout: float = 30.0) -> None:
    pps.wait_for(
        f"{pipeline} in standby with no workers",
        lambda: (
            _state(pps, pipeline) is PipelineState.STANDBY
            and pps.engine.jobs.workers(pipeline) == []
        ),
        timeout,
    )


def test_standby_stops_workers_when_idle_and_starts_them_on_new_data(pps: Pps) -> None:
    pps.repo("in")
    pps.put("in", {"/a": "1"})
    pps.create("sb", atom("in"), COPY, standby=True, parallelism_spec={"constant": 2})
    pps.wait_jobs("sb", 1)
    _wait_standby(pps, "sb")
    assert _pids(pps, "sb") == []

    pps.put("in", {"/b": "2"})
    # the job runs on workers started for it
    seen: list[int] = []

    def running() -> bool:
        seen.extend(p for p in _pids(pps, "sb") if p not in seen)
        return len(pps.jobs("sb")) == 2 and pps.jobs("sb")[-1].state.terminal

    pps.wait_for("the second job", running, 60)
    assert pps.jobs("sb")[-1].state == "success"
    assert pps.tree("sb") == {"/a": b"1", "/b": b"2"}
    _wait_standby(pps, "sb")
    # every worker process started for the job has ended
    pps.wait_for("workers gone", lambda: not any(_alive(p) for p in seen), 15)


def test_a_standby_pipeline_without_data_starts_no_worker(pps: Pps) -> None:
    pps.repo("in")
    pps.create("idle", atom("in"), COPY, standby=True)
    _wait_standby(pps, "idle")
    assert pps.engine.jobs.workers("idle") == []


def test_scale_down_threshold_stops_workers_after_that_much_idleness(pps: Pps) -> None:
    pps.repo("in")
    pps.put("in", {"/a": "1"})
    pps.create("sd", atom("in"), COPY, scale_down_threshold="3s")
    pps.wait_jobs("sd", 1)
    pids = _pids(pps, "sd")
    assert pids and all(_alive(p) for p in pids)
    assert _state(pps, "sd") is PipelineState.RUNNING  # not idle long enough yet
    _wait_standby(pps, "sd", 30)
    pps.wait_for("workers gone", lambda: not any(_alive(p) for p in pids), 15)

    pps.put("in", {"/b": "2"})
    pps.wait_jobs("sd", 2)
    assert pps.jobs("sd")[-1].state == "success"
    assert pps.tree("sd") == {"/a": b"1", "/b": b"2"}
    # the workers are back for a while after the job
    assert _state(pps, "sd") is PipelineState.RUNNING
    assert pps.engine.jobs.workers("sd") != []


def test_idle_workers_of_any_pipeline_stop_after_the_server_limit(tmp_path: Path) -> None:
    """A pipeline with neither standby nor scale_down_threshold: its worker processes end after
    TUSK_WORKER_IDLE_SECONDS with no job (the pipeline still shows running), and its next job
    starts them again."""
    pps = Pps(tmp_path / "home", worker_idle_seconds=3.0)
    try:
        pps.repo("in")
        pps.put("in", {"/a": "1"})
        pps.create("plain", atom("in"), COPY, parallelism_spec={"constant": 2})
        pps.wait_jobs("plain", 1)
        pids = _pids(pps, "plain")
        assert pids and all(_alive(p) for p in pids)
        pps.wait_for("idle workers stopped", lambda: pps.engine.jobs.workers("plain") == [], 30)
        pps.wait_for("worker processes gone", lambda: not any(_alive(p) for p in pids), 15)
        assert _state(pps, "plain") is PipelineState.RUNNING

        pps.put("in", {"/b": "2"})
        pps.wait_jobs("plain", 2)
        assert pps.jobs("plain")[-1].state == "success"
        assert pps.tree("plain") == {"/a": b"1", "/b": b"2"}
        assert pps.engine.jobs.workers("plain") != []  # back for the job, until idle again
    finally:
        pps.close()


def test_the_server_idle_limit_must_be_positive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUSK_WORKER_IDLE_SECONDS", "0")
    with pytest.raises(InvalidArgument, match="TUSK_WORKER_IDLE_SECONDS"):
        Settings.from_env("/nonexistent-home")
    monkeypatch.setenv("TUSK_WORKER_IDLE_SECONDS", "2.5")
    assert Settings.from_env("/nonexistent-home").worker_idle_seconds == 2.5
    monkeypatch.delenv("TUSK_WORKER_IDLE_SECONDS")
    assert Settings.from_env("/nonexistent-home").worker_idle_seconds == 600.0


def test_stop_of_a_standby_pipeline_shows_paused_and_start_goes_back(pps: Pps) -> None:
    pps.repo("in")
    pps.create("st", atom("in"), COPY, standby=True)
    _wait_standby(pps, "st")
    pps.engine.pipelines.set_stopped("st", True)
    assert _state(pps, "st") is PipelineState.PAUSED
    pps.engine.pipelines.set_stopped("st", False)
    _wait_standby(pps, "st")
    pps.put("in", {"/a": "1"})
    pps.wait_jobs("st", 1)
    assert pps.tree("st") == {"/a": b"1"}


def test_unsupported_fields_warn_at_create_and_in_inspect(pps: Pps) -> None:
    pps.repo("in")
    created = pps.create(
        "w",
        atom("in"),
        COPY,
        pod_spec='{"hostNetwork": true}',
        scheduling_spec={"node_selector": {"disk": "ssd"}},
        transform={"image_pull_secrets": ["regcred"]},
    )
    expected = [
        "transform.image_pull_secrets is ignored here: images come from the local podman store",
        "scheduling_spec.node_selector is ignored here: no Kubernetes nodes to select",
        "pod_spec is ignored here: workers are not pods",
    ]
    assert created.warnings == expected
    assert pps.engine.pipelines.inspect("w").warnings == expected
    # update-pipeline says it again, and a spec without them has none
    updated = pps.create("w", atom("in"), COPY, update=True)
    assert [w for w in updated.warnings if "ignored here" in w] == []
    assert pps.engine.pipelines.inspect("w").warnings == []
