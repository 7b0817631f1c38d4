"""Commits, jobs and datums as JSON lines: the same values in the same order as the JSON array
answers, read page by page (pages made small here, so that a few rows cross many of them),
against the FastAPI app served by uvicorn in a thread over a started engine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import Pps, atom

from tusk.pfs import commits as commit_service
from tusk.pps import jobs as job_service
from tusk.testing.inprocess import serve_in_thread

COMMITS = 23
FILES = 12


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of a few rows: a short listing crosses many page boundaries."""
    monkeypatch.setattr(commit_service, "COMMIT_PAGE", 4)
    monkeypatch.setattr(job_service, "JOB_PAGE", 1)
    monkeypatch.setattr(job_service, "DATUM_PAGE", 3)


@pytest.fixture
def address(pps: Pps) -> Iterator[str]:
    with serve_in_thread(pps.engine) as address:
        yield address


def _array(address: str, route: str, **params: Any) -> list[Any]:
    resp = httpx.get(f"{address}/v1{route}", params=params, timeout=60)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    value: list[Any] = resp.json()
    return value


def _lines(address: str, route: str, **params: Any) -> list[Any]:
    resp = httpx.get(
        f"{address}/v1{route}",
        params=params,
        headers={"Accept": "application/x-ndjson"},
        timeout=60,
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in resp.text.splitlines() if line.strip()]


def _same(address: str, route: str, **params: Any) -> list[Any]:
    whole = _array(address, route, **params)
    assert _lines(address, route, **params) == whole, (route, params)
    return whole


def test_commits_as_lines_are_the_array_page_by_page(
    pps: Pps, address: str, small_pages: None
) -> None:
    pps.repo("c")
    ids = [pps.put("c", {f"/f{i}": str(i)}) for i in range(COMMITS)]
    pps.repo("other")
    pps.put("other", {"/o": "o"})  # another repo's commits are not in c's pages
    every = _same(address, "/repos/c/commits")
    assert [c["commit"]["id"] for c in every] == ids[::-1]
    for params in (
        {"number": 5},
        {"number": 4},
        {"number": 9},
        {"number": COMMITS + 3},
        {"to": "master"},
        {"to": "master", "number": 6},
        {"to": "master", "from_": ids[10]},
        {"to": ids[15], "from_": ids[2]},
        {"to": ids[15], "from_": ids[2], "number": 5},
        {"to": ids[0]},
        {"to": "master", "from_": "master"},
    ):
        _same(address, "/repos/c/commits", **params)
    ancestry = _lines(address, "/repos/c/commits", to=ids[15], from_=ids[2])
    assert [c["commit"]["id"] for c in ancestry] == ids[15:2:-1]


def test_bad_commit_listings_are_error_answers_not_streams(pps: Pps, address: str) -> None:
    pps.repo("c")
    pps.put("c", {"/a": "a"})
    for params, route, status in (
        ({}, "/repos/nope/commits", 404),
        ({"to": "nobranch"}, "/repos/c/commits", 404),
        ({"from_": "master"}, "/repos/c/commits", 400),
        ({"to": "master", "from_": "nocommit"}, "/repos/c/commits", 404),
    ):
        resp = httpx.get(
            f"{address}/v1{route}",
            params=params,
            headers={"Accept": "application/x-ndjson"},
            timeout=60,
        )
        assert resp.status_code == status, (params, resp.text)
        assert resp.headers["content-type"] == "application/json"
        assert "error" in resp.json()


def _mixed_datums(pps: Pps) -> tuple[str, str, str]:
    """A pipeline whose second job has failed, successful and skipped datums (the skipped ones
    without rows of their own): (pipeline, first commit, second job id)."""
    pps.repo("x")
    first = pps.put("x", {f"/f{i:02d}": str(i) for i in range(FILES)})
    fail_7 = "case $(ls /pfs/in) in *7*) exit 1;; esac; cp -r /pfs/in/* /pfs/out/"
    pps.create("p", atom("x", name="in"), ["sh", "-c", fail_7], datum_tries=1)
    pps.wait_jobs("p", 1)
    pps.put("x", {f"/f{i:02d}": str(i) for i in range(FILES, FILES + 9)})
    second = pps.wait_jobs("p", 2)[-1]
    return "p", first, second.id


def test_jobs_and_datums_as_lines_are_the_arrays_page_by_page(
    pps: Pps, address: str, small_pages: None
) -> None:
    pipeline, first, job_id = _mixed_datums(pps)
    pps.repo("y")
    pps.put("y", {"/a": "a"})
    pps.create("q", atom("y", name="in"), ["sh", "-c", "cp -r /pfs/in/* /pfs/out/"])
    pps.wait_jobs("q", 1)

    every = _same(address, "/jobs")
    assert len(every) == 3
    assert [j["pipeline"] for j in _same(address, "/jobs", pipeline=pipeline)] == [pipeline] * 2
    (one,) = _same(address, "/jobs", output=f"{pipeline}/{job_id}")
    assert one["id"] == job_id
    (by_input,) = _same(address, "/jobs", input=f"x/{first}")
    assert by_input["pipeline"] == pipeline and by_input["id"] != job_id
    _same(address, "/jobs", input=["x/master", "y/master"])  # no job read both: none

    datums = _same(address, f"/jobs/{job_id}/datums", pipeline=pipeline)
    states = [d["state"] for d in datums]
    assert len(datums) == FILES + 9
    assert {"failed", "success", "skipped"} <= set(states)
    order = ["failed", "recovered", "success", "skipped"]
    assert states == sorted(states, key=order.index)  # failed first, as 1.7 lists them
    for size, page in ((4, 0), (4, 1), (5, 3), (7, 2), (50, 0), (4, 9)):
        _same(address, f"/jobs/{job_id}/datums", pipeline=pipeline, page_size=size, page=page)


def test_bad_job_listings_are_error_answers_not_streams(pps: Pps, address: str) -> None:
    for route, params, status in (
        ("/jobs", {"pipeline": "nope"}, 404),
        ("/jobs", {"output": "no-slash"}, 400),
        ("/jobs/abc/datums", {}, 404),
    ):
        resp = httpx.get(
            f"{address}/v1{route}",
            params=params,
            headers={"Accept": "application/x-ndjson"},
            timeout=60,
        )
        assert resp.status_code == status, (route, resp.text)
        assert "error" in resp.json()
