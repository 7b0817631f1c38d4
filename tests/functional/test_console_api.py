"""The console's JSON API (``/console/api``) on tuskd's app in the test process: previews by kind,
raw files that no browser runs, paging bounds, diffs, spec versions, the DAG, CSRF."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Pps, atom

from tusk.client.inprocess import InProcessTransport
from tusk.console.routes import spec_changes
from tusk.server.app import create_app

ADDRESS = "http://localhost"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")


@pytest.fixture
def http(pps: Pps) -> Iterator[httpx.Client]:
    with httpx.Client(transport=InProcessTransport(create_app(pps.engine)), base_url=ADDRESS) as c:
        c.get("/console/api/session")  # sets the CSRF cookie
        yield c


def post(
    http: httpx.Client, path: str, content_type: str = "application/json", **kw: object
) -> httpx.Response:
    headers = {"X-Tusk-CSRF": http.cookies["tusk_csrf"], "Content-Type": content_type}
    return http.post(path, headers=headers, **kw)  # type: ignore[arg-type]


def test_previews_by_kind_and_raw_files(pps: Pps, http: httpx.Client) -> None:
    pps.repo("data")
    pps.put("data", {
        "/t.csv": "a,b\n1,2\n3,4\n", "/t.tsv": "a\tb\n1\t2\n", "/d.json": '{"x":[1,2]}',
        "/n.txt": "hello\n", "/p.png": PNG, "/b.bin": b"\x00\x01\x02", "/page.html": "<script>1</script>",
        "/dir/x.txt": "x",
    })  # fmt: skip

    def preview(path: str) -> dict[str, object]:
        r = http.get("/console/api/repos/data/preview", params={"ref": "master", "path": path})
        assert r.status_code == 200, r.text
        return dict(r.json())

    assert preview("/t.csv")["rows"] == [["a", "b"], ["1", "2"], ["3", "4"]]
    assert preview("/t.tsv")["rows"] == [["a", "b"], ["1", "2"]]
    assert preview("/d.json")["text"] == json.dumps({"x": [1, 2]}, indent=2)
    assert preview("/n.txt")["kind"] == "text" and preview("/n.txt")["text"] == "hello\n"
    assert preview("/p.png")["kind"] == "image" and preview("/b.bin")["kind"] == "binary"
    assert preview("/page.html")["kind"] == "text"  # shown as text, never as a page
    r = http.get("/console/api/repos/data/preview", params={"ref": "master", "path": "/dir"})
    assert r.status_code == 400 and "directory" in r.json()["error"]["message"]

    png = http.get("/console/api/repos/data/raw", params={"ref": "master", "path": "/p.png"})
    assert png.headers["content-type"] == "image/png" and png.content == PNG
    page = http.get("/console/api/repos/data/raw", params={"ref": "master", "path": "/page.html"})
    assert page.headers["content-type"] == "application/octet-stream"
    assert page.headers["content-disposition"].startswith("attachment")
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in page.headers["content-security-policy"]


def test_lists_are_paged_and_bounded(pps: Pps, http: httpx.Client) -> None:
    pps.repo("many")
    pps.put("many", {f"/f{i:03d}": str(i) for i in range(250)})
    first = http.get("/console/api/repos/many/files", params={"ref": "master"}).json()
    assert first["more"] and len(first["items"]) == 200
    rest = http.get("/console/api/repos/many/files", params={"ref": "master", "offset": 200})
    assert [f["path"] for f in rest.json()["items"]] == [f"/f{i:03d}" for i in range(200, 250)]
    assert not rest.json()["more"]
    one = http.get("/console/api/repos/many/files", params={"ref": "master", "path": "/f007"})
    assert [f["path"] for f in one.json()["items"]] == ["/f007"]
    too_many = http.get("/console/api/repos/many/files", params={"ref": "master", "limit": 10_000})
    assert too_many.status_code == 400 and "limit" in too_many.json()["error"]["message"]
    assert http.get("/console/api/repos", params={"offset": -1}).status_code == 400


def test_diff_between_commits(pps: Pps, http: httpx.Client) -> None:
    pps.repo("data")
    first = pps.put("data", {"/a": "1", "/b": "2"})
    pps.put("data", {"/a": "changed", "/c": "3"}, overwrite=True)
    pps.delete("data", "/b")
    rows = http.get("/console/api/repos/data/diff", params={"ref": "master", "old": first}).json()
    assert [(r["path"], r["change"]) for r in rows["items"]] == [
        ("/a", "changed"), ("/b", "removed"), ("/c", "added")]  # fmt: skip


def test_dag_versions_jobs_datums_and_logs(pps: Pps, http: httpx.Client) -> None:
    pps.repo("nums")
    pps.put("nums", {"/1": "1", "/2": "2"})
    cmd = [sys.executable, "-c", "import shutil,sys; print('copying'); "
           "shutil.copytree('/pfs/nums', '/pfs/out', dirs_exist_ok=True)"]  # fmt: skip
    pps.create("copy", atom("nums"), cmd)
    (job,) = pps.wait_jobs("copy", 1)
    pps.create("copy", atom("nums"), cmd, update=True, parallelism_spec={"constant": 2})

    dag = http.get("/console/api/dag").json()
    assert {n["id"]: n["kind"] for n in dag["nodes"]} == {"nums": "repo", "copy": "pipeline"}
    assert [(e["source"], e["target"]) for e in dag["edges"]] == [("nums", "copy")]
    (node,) = [n for n in dag["nodes"] if n["id"] == "copy"]
    assert node["last_job"]["state"] in ("success", "running", "starting")
    nums = next(n for n in dag["nodes"] if n["id"] == "nums")
    assert nums["y"] + nums["h"] <= node["y"]  # the input above the pipeline it feeds

    p = http.get("/console/api/pipelines/copy").json()
    assert [v["version"] for v in p["versions"]] == [2, 1]
    assert p["versions"][0]["changes"] == ['parallelism_spec: added {"constant": 2}']
    assert json.loads(p["raw_spec"])["pipeline"]["name"] == "copy"

    datums = http.get(f"/console/api/jobs/copy/{job.id}/datums", params={"limit": 1}).json()
    assert datums["total"] == 2 and len(datums["items"]) == 1
    assert datums["counts"] == {"success": 2}
    assert [(i["repo"], i["path"]) for i in datums["items"][0]["inputs"]] in ([("nums", "/1")],
                                                                              [("nums", "/2")])  # fmt: skip
    failed = http.get(f"/console/api/jobs/copy/{job.id}/datums", params={"state": "failed"})
    assert failed.json()["total"] == 0 and failed.json()["items"] == []
    second = pps.wait_jobs("copy", 2)[-1]  # the update's job: both datums skipped (no records)
    skipped = http.get(f"/console/api/jobs/copy/{second.id}/datums", params={"limit": 1}).json()
    assert skipped["counts"] == {"skipped": 2} and skipped["total"] == 2
    assert [d["state"] for d in skipped["items"]] == ["skipped"]
    every = pps.engine.jobs.logs("copy", job.id)
    seen, after = [], 0
    for _ in range(len(every) + 1):  # one line a page, following the cursor
        page = http.get("/console/api/logs", params={"pipeline": "copy", "job": job.id,
                                                     "after": after, "limit": 1}).json()  # fmt: skip
        assert len(page["lines"]) <= 1
        seen += page["lines"]
        after = page["after"]
        if not page["more"]:
            break
    assert [x["pk"] for x in seen] == [x.pk for x in every]
    assert [x["message"] for x in seen if x["user"]] == ["copying", "copying"]


def test_actions_need_the_csrf_token(pps: Pps, http: httpx.Client) -> None:
    refused = http.post("/console/api/repos", json={"name": "x"})
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]["message"]
    assert pps.engine.repos.list() == []
    made = post(http, "/console/api/repos", content=json.dumps({"name": "x"}))
    assert made.status_code == 200, made.text
    up = post(http, "/console/api/repos/x/upload", params={"branch": "master", "path": "/a.txt"},
              content=b"hi", content_type="application/octet-stream")  # fmt: skip
    assert up.status_code == 200, up.text
    assert pps.read("x", "master", "/a.txt") == b"hi"
    bad = post(http, "/console/api/repos/x/upload", params={"branch": "master", "path": "../a"},
               content=b"hi", content_type="application/octet-stream")  # fmt: skip
    assert bad.status_code == 400
    wrong_type = post(http, "/console/api/repos/x/upload", params={"branch": "master",
                      "path": "/b"}, content=b"hi", content_type="text/plain")  # fmt: skip
    assert wrong_type.status_code == 415


def test_spec_changes_names_each_field() -> None:
    old = {"transform": {"image": "a", "cmd": ["x"]}, "parallelism_spec": {"constant": 1}}
    new = {"transform": {"image": "b", "cmd": ["x"]}, "description": "d"}
    assert spec_changes(old, new) == [
        'description: added "d"', "parallelism_spec: removed", 'transform.image: "a" → "b"']  # fmt: skip


def test_stop_and_start_a_pipeline_and_stop_a_job(pps: Pps, http: httpx.Client) -> None:
    pps.repo("nums")
    pps.put("nums", {"/1": "1"})
    pps.create("slow", atom("nums"), [sys.executable, "-c", "import time; time.sleep(60)"])
    job = pps.wait_for("a job", lambda: next(iter(pps.engine.jobs.list("slow")), None))
    killed = post(http, f"/console/api/jobs/slow/{job.id}/stop")
    assert killed.status_code == 200 and killed.json()["job"]["state"] == "killed"
    assert pps.engine.jobs.inspect(job.id, "slow").state == "killed"
    stopped = post(http, "/console/api/pipelines/slow/stop")
    assert stopped.status_code == 200 and stopped.json()["pipeline"]["stopped"] is True
    assert pps.engine.pipelines.inspect("slow").stopped
    started = post(http, "/console/api/pipelines/slow/start")
    assert started.json()["pipeline"]["stopped"] is False
    assert not pps.engine.pipelines.inspect("slow").stopped
    missing = post(http, "/console/api/pipelines/nope/stop")
    assert missing.status_code == 404


def test_restart_a_running_datum(pps: Pps, http: httpx.Client, tmp_path: Path) -> None:
    """restart-datum through the console: the datum a worker runs now is shown ``running``; a
    POST without the CSRF header changes nothing; with it, the run is killed (one try) and the
    datum runs again. The first run hangs, the second (it finds the first's mark) finishes."""
    pps.repo("nums")
    pps.put("nums", {"/1": "1", "/2": "2"})
    mark = tmp_path / "first-run"
    code = (f"import os, sys, time; m = {str(mark)!r}\n"
            "if os.path.exists('/pfs/nums/2'): open('/pfs/out/2', 'w').write('quick'); sys.exit()\n"
            "if os.path.exists(m): print('second run'); open('/pfs/out/1', 'w').write('again')\n"
            "else: open(m, 'w').close(); print('first run', flush=True); time.sleep(600)")  # fmt: skip
    pps.create("hang", atom("nums"), [sys.executable, "-c", code], datum_tries=3)
    job = pps.wait_for("a job", lambda: next(iter(pps.engine.jobs.list("hang")), None))
    base = f"/console/api/jobs/hang/{job.id}"

    def hanging() -> dict[str, Any] | None:
        items = http.get(f"{base}/datums").json()["items"]
        return next((d for d in items if d["state"] == "running"), None)

    d = pps.wait_for("the hanging datum shown running", hanging)
    assert [i["path"] for i in d["inputs"]] == ["/1"]
    pps.wait_for("its first run to hang", mark.exists)
    assert http.get(f"{base}/datums/{d['id']}").json()["datum"]["state"] == "running"

    refused = http.post(f"{base}/restart-datum", json={"datum_id": d["id"]})
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]["message"]
    time.sleep(1)  # a restart would have failed the run by now
    assert pps.engine.jobs.datum(job.id, d["id"], "hang").tries == 0
    assert pps.engine.jobs.inspect(job.id, "hang").state == "running"

    done = post(http, f"{base}/restart-datum", content=json.dumps({"datum_id": d["id"]}))
    assert done.status_code == 200, done.text
    assert done.json()["restarted"] == [d["id"]]
    ended = pps.wait_job("hang", job.id)
    assert ended.state == "success" and ended.processed == 2
    again = http.get(f"{base}/datums/{d['id']}").json()["datum"]
    assert again["state"] == "success" and again["tries"] == 2
    assert pps.read("hang", job.id, "/1") == b"again"
    lines = [x.message for x in pps.engine.jobs.logs("hang", job.id, d["id"])]
    assert "failed processing datum: restarted by restart-datum, retrying" in lines
    assert "second run" in lines
    late = post(http, f"{base}/restart-datum", content=json.dumps({"datum_id": d["id"]}))
    assert late.status_code == 400 and "has ended" in late.json()["error"]["message"]


def test_filter_datums_by_running(pps: Pps, http: httpx.Client) -> None:
    """The datum a worker runs now is its own state in the filter: counted as ``running``, not
    ``pending``; the ``running`` page holds it alone and the ``pending`` page the others."""
    pps.repo("nums")
    pps.put("nums", {"/1": "1", "/2": "2", "/3": "3"})
    pps.create(
        "sleepy",
        atom("nums"),
        [sys.executable, "-c", "import time; time.sleep(600)"],
        parallelism_spec={"constant": 1},
    )
    job = pps.wait_for("a job", lambda: next(iter(pps.engine.jobs.list("sleepy")), None))
    base = f"/console/api/jobs/sleepy/{job.id}/datums"

    def page() -> dict[str, Any]:
        p = http.get(base).json()  # counts and rows are one view, even while the job starts
        assert all(n > 0 for n in p["counts"].values()) and sum(p["counts"].values()) == p["total"]
        return p

    pg = pps.wait_for(
        "one datum running", lambda: (p := page())["counts"].get("running") == 1 and p
    )
    assert pg["counts"] == {"running": 1, "pending": 2} and pg["total"] == 3
    running = http.get(base, params={"state": "running"}).json()
    assert running["total"] == 1 and [d["state"] for d in running["items"]] == ["running"]
    pending = http.get(base, params={"state": "pending"}).json()
    assert pending["total"] == 2 and [d["state"] for d in pending["items"]] == ["pending"] * 2
    ids = {d["id"] for d in pending["items"]} | {running["items"][0]["id"]}
    assert ids == {d["id"] for d in pg["items"]}
    assert post(http, f"/console/api/jobs/sleepy/{job.id}/stop").status_code == 200
    ended = http.get(base, params={"state": "running"}).json()
    assert ended["total"] == 0 and "running" not in ended["counts"]
