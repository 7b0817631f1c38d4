"""The console in a real browser: Playwright driving the system's Chromium against a real tuskd
that ran the workshop (its real CLI, images and sandboxes).

Screenshots go to the test's temporary directory; with TUSK_UPDATE_SCREENSHOTS=1 the few that the
docs show are written to docs/ too."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, expect, sync_playwright

from tusk.testing import Tuskd, wait_for

from .conftest import Tusk, ok
from .test_workshop import EXAMPLE, Pachctl

CHROMIUM = "/usr/bin/chromium"
DOCS = Path(__file__).resolve().parents[2] / "docs"
WORKSHOP_NODES = {"training_data", "qc_data", "attributes", "model", "qc_pre_process", "qcontrol",
                  "infer"}  # fmt: skip
WORKSHOP_EDGES = {"training_data->model", "qc_data->qc_pre_process", "model->qcontrol",
                  "qc_pre_process->qcontrol", "attributes->infer", "qcontrol->infer"}  # fmt: skip
INFER_IMAGE = json.loads((EXAMPLE / "infer.json").read_text())["transform"]["image"]
# A pipeline whose every datum fails, saying why on stderr (the workshop's own never fail).
FAILING = {
    "pipeline": {"name": "check_attributes"},
    "transform": {
        "image": INFER_IMAGE,
        "cmd": [
            "sh",
            "-c",
            "echo checking /pfs/attributes/*; echo 'attributes rejected' >&2; exit 3",
        ],  # fmt: skip
    },
    "input": {"atom": {"repo": "attributes", "glob": "/*"}},
    "datum_tries": 1,
}


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    assert shutil.which(CHROMIUM), "chromium is not installed: apt-get install chromium"
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # Playwright's own browser builds are not downloaded: the system's Chromium is driven
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    yield b
    b.close()


class Console:
    """A page of the console, remembering every error the page logged or threw."""

    def __init__(self, page: Page, base: str, shots: Path) -> None:
        self.page = page
        self.base = base
        self.shots = shots
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))

    def _console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            self.errors.append(f"console error: {msg.text}")

    def go(self, hash_: str = "") -> None:
        self.page.goto(f"{self.base}/console/{hash_}")

    def shot(self, name: str, docs: bool = False) -> None:
        path = self.shots / name
        self.page.screenshot(path=str(path))
        if docs and os.environ.get("TUSK_UPDATE_SCREENSHOTS") == "1":
            shutil.copy(path, DOCS / name)


@pytest.fixture(scope="module")
def workshop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Tuskd, Pachctl]]:
    home = tmp_path_factory.mktemp("console-home")
    work = tmp_path_factory.mktemp("console-work")
    shutil.copytree(EXAMPLE / "data", work / "data")
    for s in ("model", "qc_pre_process", "qcontrol", "infer"):
        shutil.copy(EXAMPLE / f"{s}.json", work / f"{s}.json")
    # sandboxes in a scratch directory of this test's own (searchable by the sandbox's uid), so
    # that other servers on the machine sharing the default one cannot get in the way
    scratch = Path(tempfile.mkdtemp(prefix="tusk-console-scratch-", dir="/var/tmp"))
    scratch.chmod(0o711)
    env = {"TUSK_WORKER_SCRATCH": str(scratch)}
    with Tuskd(home, env) as server:
        p = Pachctl(server.env, work)
        for repo in ("training_data", "qc_data", "attributes"):
            p("create-repo", repo)
        p("put-file", "training_data", "master", "training_prod.csv", "-f",
          "data/training_prod.csv")  # fmt: skip
        p("put-file", "qc_data", "master", "holdout.csv", "-f", "data/holdout.csv")
        for s in ("model", "qc_pre_process", "qcontrol"):
            p("create-pipeline", "-f", f"{s}.json")
        p.settle()
        for n in ("1", "2"):
            p("put-file", "attributes", "master", f"{n}.json", "-f", f"data/test/{n}.json")
        p("create-pipeline", "-f", "infer.json")  # as in the workshop: once there is a model
        p.settle()
        yield server, p
    shutil.rmtree(scratch, ignore_errors=True)


def test_console_workshop(
    workshop: tuple[Tuskd, Pachctl], browser: Browser, tmp_path: Path
) -> None:
    server, p = workshop
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    c = Console(context.new_page(), server.address, tmp_path)
    page = c.page

    # The DAG: 7 nodes laid out by the server, each pipeline with its state and last job.
    c.go()
    nodes = page.locator("svg.dag g.node")
    expect(nodes).to_have_count(7)
    first_render_ms = page.evaluate("performance.getEntriesByName('tusk-dag-drawn')[0].startTime")
    assert {nodes.nth(i).get_attribute("data-node") for i in range(7)} == WORKSHOP_NODES
    edges = page.locator("svg.dag polyline.edge")
    expect(edges).to_have_count(len(WORKSHOP_EDGES))
    assert {edges.nth(i).get_attribute("data-edge") for i in range(6)} == WORKSHOP_EDGES
    assert page.locator('g.node[data-node="infer"]').get_attribute("data-state") == "running"
    expect(page.locator('g.node[data-node="infer"] text.sub')).to_contain_text("job success 2/2")
    c.shot("console-dag.png", docs=True)
    print(f"console: first DAG render {first_render_ms:.0f} ms after navigation start")

    # infer's latest job and its datums.
    page.locator('g.node[data-node="infer"]').click()
    expect(page.locator("h1")).to_contain_text("Pipeline infer")
    (infer_job,) = p.jobs("infer")
    page.locator(f'#jobs a[data-job="{infer_job["id"]}"]').click()
    expect(page.locator("#job-head .badge").first).to_have_text("success")
    expect(page.locator("#datums a[data-datum]")).to_have_count(2)
    expect(page.locator('#datums [data-datum-state="success"]')).to_have_count(2)
    expect(page.locator("#datums")).to_contain_text("attributes:/1.json")
    c.shot("console-job.png", docs=True)

    # model.json of the model repo, previewed as JSON.
    c.go("#/repo/model")
    page.locator('#files [data-file="/model.json"]').click()
    preview = page.locator('#preview [data-preview="json"]')
    expect(preview).to_contain_text('"intercept"')
    model = p.get_json("model", "master", "model.json")
    assert json.loads(preview.inner_text()) == model

    # Provenance: from infer's output commit back to the training_data commit, and the wave.
    c.go(f"#/job/infer/{infer_job['id']}")
    page.locator("#output-commit").click()
    expect(page.locator("h1")).to_contain_text("Commit infer@")
    page.locator("#wave-link").click()  # the wave: this change's commits, inputs and jobs
    expect(page.locator('#wave a[data-wave-job="infer"]')).to_be_visible()
    for repo in ("training_data", "attributes", "model", "qcontrol"):
        expect(page.locator(f'#wave a[data-wave-input="{repo}"]')).to_be_visible()
    page.go_back()
    training_head = p.head("training_data")
    page.locator('#provenance a[data-provenance="training_data"]').click()
    expect(page.locator("h1")).to_contain_text(f"training_data@{training_head}")

    # File-level lineage: from infer's output file to the datum's input files.
    session = httpx.get(server.address + "/console/api/session").json()
    assert session["lineage_url"] == "/v1/lineage", session
    c.go("#/repo/infer")
    page.locator('#files [data-file="/1.json"]').click()
    page.locator("#preview a", has_text="Lineage").click()
    expect(page.locator('#lineage a[data-lineage-input="attributes"]').first).to_contain_text(
        "/1.json"
    )

    # Upload a file in the browser: it triggers an infer job that runs one new datum.
    c.go("#/repo/attributes")
    page.locator('#upload input[name="upload-file"]').set_input_files(
        str(p.cwd / "data" / "test" / "3.json")
    )
    page.locator("#upload button").click()
    expect(page.locator('#preview [data-preview="json"]')).to_contain_text("independent_variables")
    new_job = wait_for("the upload's infer job", lambda: next(
        (j for j in p.jobs("infer") if j["id"] != infer_job["id"]), None), 60)  # fmt: skip
    c.go("#/pipeline/infer")
    row = page.locator(f'#jobs tr:has(a[data-job="{new_job["id"]}"])')
    expect(row).to_contain_text("1 + 2 / 3", timeout=60_000)
    expect(row.locator(".badge")).to_have_text("success", timeout=60_000)

    # A failing datum, followed to its reason and its logs.
    spec = p.cwd / "check.json"
    spec.write_text(json.dumps(FAILING))
    p("create-pipeline", "-f", str(spec))
    (failed,) = wait_for("the failing job", lambda: [j for j in p.jobs("check_attributes")
                         if j["state"] == "failure"] or None, 120)  # fmt: skip
    c.go()
    expect(page.locator('g.node[data-node="check_attributes"]')).to_have_attribute(
        "data-state", "failure"
    )
    page.locator('g.node[data-node="check_attributes"]').click()
    page.locator(f'#jobs a[data-job="{failed["id"]}"]').click()
    expect(page.locator("#job-reason")).to_be_visible()
    page.locator('#datums a[data-datum-state="failed"]').first.click()
    expect(page.locator("#datum-reason")).to_be_visible()
    expect(page.locator("#datum-head .badge").first).to_have_text("failed")
    expect(page.locator("#logs")).to_contain_text("attributes rejected", timeout=30_000)

    # A narrow screen: every page fits 400 px (wide tables scroll inside their cards).
    narrow = context.new_page()
    n = Console(narrow, server.address, tmp_path)
    narrow.set_viewport_size({"width": 400, "height": 800})
    for where, ready in (("", "svg.dag g.node"), (f"#/job/infer/{infer_job['id']}", "#datums a"),
                         ("#/repo/model", "#files [data-file]")):  # fmt: skip
        n.go(where)
        narrow.locator(ready).first.wait_for()
        width = narrow.evaluate("document.documentElement.scrollWidth")
        assert width <= 400, f"{where or 'DAG'} is {width} px wide at 400 px"
    n.shot("console-narrow.png")
    assert c.errors == [] and n.errors == []
    context.close()


# One datum (the whole attributes repo) that runs until it is restarted or its job stopped.
HANGING = {
    "pipeline": {"name": "hang"},
    "transform": {"image": INFER_IMAGE, "cmd": ["sh", "-c", "sleep 600"]},
    "input": {"atom": {"repo": "attributes", "glob": "/"}},
    "datum_tries": 3,
}


def test_console_actions_on_a_running_job(
    workshop: tuple[Tuskd, Pachctl], browser: Browser, tmp_path: Path
) -> None:
    """Clicked in the browser: restart a running datum (its run is killed, counted as a try and
    started again), stop the job, stop and start the pipeline; each checked on the page and on
    the server."""
    server, p = workshop
    spec = p.cwd / "hang.json"
    spec.write_text(json.dumps(HANGING))
    p("create-pipeline", "-f", str(spec))
    (job,) = wait_for("hang's job", lambda: p.jobs("hang") or None, 60)
    api = f"{server.address}/console/api/jobs/hang/{job['id']}"

    def running_datum() -> str | None:
        items = httpx.get(f"{api}/datums").json()["items"]
        return next((d["id"] for d in items if d["state"] == "running"), None)

    datum_id = wait_for("the datum to run", running_datum, 120)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    c = Console(context.new_page(), server.address, tmp_path)
    page = c.page

    # Restart the datum from its page: the run is killed (a try, with its reason in the log) and
    # the datum runs again.
    c.go(f"#/job/hang/{job['id']}")
    page.locator(f'#datums a[data-datum="{datum_id}"][data-datum-state="running"]').click()
    expect(page.locator("#datum-head .badge").first).to_have_text("running")
    page.locator("#restart-datum").click()
    expect(page.locator("#flash")).to_have_text("datum restarted")
    expect(page.locator("#logs")).to_contain_text("restarted by restart-datum, retrying",
                                                  timeout=30_000)  # fmt: skip
    expect(page.locator("#datum-tries")).to_have_text("1", timeout=30_000)
    expect(page.locator("#datum-head .badge").first).to_have_text("running", timeout=60_000)
    after = httpx.get(f"{api}/datums/{datum_id}").json()["datum"]
    assert after["tries"] == 1 and after["reason"] == "restarted by restart-datum", after
    assert wait_for("the second run", running_datum, 60) == datum_id

    # Stop the job from its page.
    page.locator("h1 a", has_text=job["id"][:12]).click()
    page.locator("#stop-job").click()
    expect(page.locator("#job-head .badge").first).to_have_text("killed", timeout=30_000)
    expect(page.locator("#stop-job")).to_have_count(0)
    assert [j["state"] for j in p.jobs("hang")] == ["killed"]

    # Stop, then start, the pipeline from its page.
    page.locator("h1 a", has_text="hang").click()
    page.locator("#stop-pipeline").click()
    expect(page.locator("#pipeline-head .badge").first).to_have_text("paused")
    pipeline = f"{server.address}/console/api/pipelines/hang"
    assert httpx.get(pipeline).json()["pipeline"]["stopped"] is True
    page.locator("#start-pipeline").click()
    expect(page.locator("#stop-pipeline")).to_be_visible()
    expect(page.locator("#pipeline-head .badge").first).not_to_have_text("paused")
    assert httpx.get(pipeline).json()["pipeline"]["stopped"] is False
    p("delete-pipeline", "hang")  # no hanging datum left for the module's other tests
    assert c.errors == [], c.errors
    context.close()


def test_console_auth(browser: Browser, tmp_path: Path) -> None:
    """With a token: nothing is readable without it, the browser keeps an HttpOnly session
    cookie, and a change without the CSRF token is refused."""
    token = "console-secret-token"
    with Tuskd(tmp_path / "home", token=token) as server:
        base = server.address
        # without the token: the page loads (it is the login form), the data does not
        assert httpx.get(base + "/console/").status_code == 200
        for path in ("/console/api/dag", "/console/api/repos", "/v1/repos"):
            assert httpx.get(base + path).status_code == 401, path
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        c = Console(context.new_page(), base, tmp_path)
        page = c.page
        c.go()
        page.locator('#login input[name="token"]').fill("wrong")
        page.locator("#login button").click()
        expect(page.locator("#flash")).to_contain_text("wrong auth token")
        page.locator('#login input[name="token"]').fill(token)
        page.locator("#login button").click()
        expect(page.locator("#create-repo")).to_be_visible()
        cookies = {x["name"]: x for x in context.cookies()}
        session = cookies["tusk_session"]
        assert session["httpOnly"] and session["value"] != token and token not in session["value"]
        assert not cookies["tusk_csrf"]["httpOnly"]
        assert page.evaluate("document.cookie").find("tusk_session") == -1

        # an action through the form: a repo is created, as the CLI would
        page.locator('#create-repo input[name="repo-name"]').fill("images")
        page.locator("#create-repo button").click()
        expect(page.locator("h1")).to_contain_text("Repo images")
        with server.client() as client:
            assert [r.name for r in client.list_repo()] == ["images"]

        # the session cookie alone does not make a change: the CSRF token must come twice
        jar = {"tusk_session": session["value"], "tusk_csrf": cookies["tusk_csrf"]["value"]}
        with httpx.Client(base_url=base, cookies=jar) as http:
            assert http.get("/console/api/repos").status_code == 200
            refused = http.post("/console/api/repos", json={"name": "evil"})
            assert refused.status_code == 403, refused.text
            assert "CSRF" in refused.json()["error"]["message"]
            forged = http.post("/console/api/repos", json={"name": "evil"},
                               headers={"X-Tusk-CSRF": "guess"})  # fmt: skip
            assert forged.status_code == 403
            made = http.post("/console/api/repos", json={"name": "fine"},
                             headers={"X-Tusk-CSRF": jar["tusk_csrf"]})  # fmt: skip
            assert made.status_code == 200, made.text
        with server.client() as client:
            assert sorted(r.name for r in client.list_repo()) == ["fine", "images"]
        # the browser logs the refused wrong token (a 401), and nothing else
        assert all("401" in e for e in c.errors), c.errors
        context.close()


def test_tusk_console_prints_the_url(tusk: Tusk, tusk_server: dict[str, str]) -> None:
    out = ok(tusk("console", "--no-browser"))
    url = f"{tusk_server['TUSK_ADDRESS']}/console/"
    assert out.splitlines()[0] == f"tusk console: {url}"
    page = httpx.get(url)
    assert page.status_code == 200 and '<script type="module"' in page.text
    for name in ("app.js", "console.css"):
        assert httpx.get(f"{url}static/{name}").status_code == 200
    assert httpx.get(f"{url}static/../routes.py").status_code == 404
