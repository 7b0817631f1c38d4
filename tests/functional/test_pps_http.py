"""The PPS HTTP contract: typed JSON that keeps every key clients read, plus what the server now
computes for them (input summary, durations and timeouts in seconds, warnings)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from conftest import COPY, Pps, atom

from tusk.server.app import create_app

PIPELINE_KEYS = {
    "name",
    "version",
    "spec",
    "salt",
    "spec_commit",
    "state",
    "stopped",
    "reason",
    "created",
    "job_counts",
}
JOB_KEYS = {
    "pipeline",
    "id",
    "version",
    "spec_commit",
    "state",
    "created",
    "started",
    "finished",
    "processed",
    "skipped",
    "failed",
    "total",
    "bytes_down",
    "bytes_up",
    "seconds_download",
    "seconds_process",
    "seconds_upload",
    "restarts",
    "reason",
    "output_commit",
    "inputs",
}
DATUM_KEYS = {
    "id",
    "state",
    "tries",
    "reason",
    "inputs",
    "bytes_down",
    "bytes_up",
    "seconds",
    "worker",
    "job_id",
    "pipeline",
    "seconds_download",
    "seconds_upload",
    "stats_commit",
}
LOG_KEYS = {"pk", "pipeline", "job_id", "datum_id", "worker", "ts", "stream", "user", "master"}


class Http:
    """Requests to the app in-process, through ``httpx.ASGITransport``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
                return await c.request(method, url, **kw)

        return asyncio.run(send())

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)


@pytest.fixture
def http(pps: Pps) -> Http:
    return Http(create_app(pps.engine))


def _ok(resp: Any) -> Any:
    assert resp.status_code == 200, resp.text
    return resp.json()


def _spec(cmd: list[str], **fields: Any) -> str:
    spec = {"pipeline": {"name": "p"}, "transform": {"cmd": cmd}, "input": atom("x", name="in")}
    return json.dumps({**spec, **fields})


def test_pipeline_job_datum_and_log_json(pps: Pps, http: Http) -> None:
    pps.repo("x")
    pps.put("x", {"/a": "a"})
    body = {"specs": _spec(COPY, datum_timeout="1m"), "source": "test"}
    (created,) = _ok(http.post("/v1/pipelines", json=body))
    assert set(created) >= PIPELINE_KEYS and created["warnings"] == []
    assert created["input_summary"] == "x:/*"
    assert (created["datum_timeout_seconds"], created["job_timeout_seconds"]) == (60.0, None)
    (job,) = pps.wait_jobs("p", 1)

    (listed,) = _ok(http.get("/v1/pipelines"))
    assert set(listed) >= PIPELINE_KEYS and listed["state"] == "running"
    assert listed["job_counts"] == {"success": 1}
    assert _ok(http.get("/v1/pipelines/p/extract"))["salt"] == listed["salt"]

    (got,) = _ok(http.get("/v1/jobs", params={"pipeline": "p"}))
    assert set(got) >= JOB_KEYS and got["state"] == "success"
    assert got["output_commit"] == {"repo": "p", "id": job.id}
    assert got["duration_seconds"] == got["finished"] - got["started"]
    inspected = _ok(http.get(f"/v1/jobs/{job.id}", params={"pipeline": "p"}))
    assert inspected["spec"]["transform"]["cmd"] == COPY
    assert inspected["datum_timeout_seconds"] == 60.0

    (datum,) = _ok(http.get(f"/v1/jobs/{job.id}/datums", params={"pipeline": "p"}))
    assert set(datum) >= DATUM_KEYS and datum["state"] == "success"
    assert datum["inputs"][0]["path"] == "/a" and datum["inputs"][0]["repo"] == "x"

    logs = _ok(http.get("/v1/logs", params={"pipeline": "p", "master": True}))
    assert logs and all(LOG_KEYS | {"message"} <= set(r) for r in logs)
    after = _ok(
        http.get("/v1/logs", params={"pipeline": "p", "master": True, "after": logs[0]["pk"]})
    )
    assert [r["pk"] for r in after] == [r["pk"] for r in logs[1:]]

    (worker,) = _ok(http.get("/v1/workers", params={"pipeline": "p"}))
    assert {"name", "pipeline", "version", "state", "restarts", "started"} <= set(worker)
    assert 0 <= worker["age_seconds"] < 600
    (flushed,) = _ok(http.post("/v1/flush/jobs", json={"commits": [["x", "master"]]}))
    assert flushed["id"] == job.id


def test_update_warns_when_the_transform_changed(pps: Pps, http: Http) -> None:
    pps.repo("x")
    _ok(http.post("/v1/pipelines", json={"specs": _spec(COPY)}))
    same = {"specs": _spec(COPY, parallelism_spec={"constant": 2}), "update": True}
    assert _ok(http.post("/v1/pipelines", json=same))[0]["warnings"] == []
    changed = {"specs": _spec(["true"]), "update": True}
    (info,) = _ok(http.post("/v1/pipelines", json=changed))
    assert info["version"] == 3 and len(info["warnings"]) == 1
    assert "old results were kept" in info["warnings"][0]
    again = {"specs": _spec(COPY), "update": True, "reprocess": True}
    assert _ok(http.post("/v1/pipelines", json=again))[0]["warnings"] == []
