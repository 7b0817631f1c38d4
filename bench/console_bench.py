"""The console on big data: a repo of 100,000 files and a job of 10,000 datums stay usable.

    python bench/console_bench.py                          # 100,000 files, 10,000 datums
    python bench/console_bench.py --files 10000 --datums 1000 --rounds 3

A real tuskd (runtime ``host``) gets a repo of N files in one directory and a pipeline (glob
``/*``, ``cp``) that has processed M datums. Then, ``--rounds`` times, it times the console's JSON
routes over HTTP (each answer is one page: its size in bytes is printed too) and, in Chromium
driven by Playwright (the system's ``/usr/bin/chromium``), the time from navigation to the first
drawn page: the DAG, the file browser of the big repo, the datums of the big job. Medians
(min–max) over the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from tusk.client.pfs import PutSource
from tusk.testing import Tuskd, wait_for

CHROMIUM = "/usr/bin/chromium"
# Where a page's time goes, from the browser's Performance timeline: each request of the page
# (its path without the query, and its start and end in ms after navigation start), and
# "drawn", the moment the first rows were there.
TIMING = """() => [
  ...performance.getEntriesByType("navigation").map((e) => ["document", 0, e.responseEnd]),
  ...performance.getEntriesByType("resource").filter((e) => e.name.includes("/console/"))
    .map((e) => [new URL(e.name).pathname.replace(/[0-9a-f]{32}/g, "{id}"), e.startTime,
                 e.responseEnd]),
  ["drawn", performance.now(), performance.now()]]"""


def med(xs: list[float]) -> str:
    return f"{statistics.median(xs):.0f} ({min(xs):.0f}–{max(xs):.0f})"


def build(server: Tuskd, files: int, datums: int) -> tuple[str, float]:
    """The big repo and the big job; returns the job's id and its wall time."""
    with server.client() as c:
        c.create_repo("many")
        c.pfs.put_files("many", "master", (PutSource(f"/f{i:06d}", f"file {i}\n".encode())
                                           for i in range(files)))  # fmt: skip
        c.create_repo("inputs")
        c.pfs.put_files("inputs", "master", (PutSource(f"/d{i:06d}", f"datum {i}\n".encode())
                                             for i in range(datums)))  # fmt: skip
        spec = {"pipeline": {"name": "copy"}, "transform": {"cmd": ["cp", "-r", "/pfs/inputs/.",
                "/pfs/out/"]}, "input": {"pfs": {"repo": "inputs", "glob": "/*"}},
                "parallelism_spec": {"constant": 2}}  # fmt: skip
        c.pps.create_pipeline(json.dumps(spec))
        job = wait_for("the big job", lambda: next((j for j in c.pps.list_job("copy")
                       if j.state.terminal), None), 3600, interval=1)  # fmt: skip
        assert job.state == "success", job
        return job.id, float(job.duration_seconds or 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--datums", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tusk-console-bench-"))
    load_before = os.getloadavg()
    with Tuskd(work / "home", {"TUSK_RUNTIME": "host"}) as server:
        t0 = time.perf_counter()
        job_id, job_wall = build(server, args.files, args.datums)
        print(f"built in {time.perf_counter() - t0:.0f} s (job of {args.datums} datums: "
              f"{job_wall:.0f} s)", flush=True)  # fmt: skip
        base = server.address
        first = httpx.get(f"{base}/console/api/jobs/copy/{job_id}/datums?limit=1").json()
        datum_id = first["items"][0]["id"]
        routes = {
            "DAG": "/console/api/dag",
            "files, first page (200)": "/console/api/repos/many/files?ref=master&path=/",
            "files, page at 50,000": "/console/api/repos/many/files?ref=master&path=/&offset=50000",
            "commits": "/console/api/repos/many/commits",
            "datums, first page (100)": f"/console/api/jobs/copy/{job_id}/datums",
            "datums, page at 5,000": f"/console/api/jobs/copy/{job_id}/datums?offset=5000",
            "one datum": f"/console/api/jobs/copy/{job_id}/datums/{datum_id}",
            "job logs (first 500 lines)": f"/console/api/logs?pipeline=copy&job={job_id}",
            "jobs": "/console/api/jobs?pipeline=copy",
        }
        api_ms: dict[str, list[float]] = {k: [] for k in routes}
        sizes: dict[str, int] = {}
        pages = {
            "DAG": ("", "svg.dag g.node"),
            "file browser of `many`": ("#/repo/many", "#files [data-file]"),
            "datums of the big job": (f"#/job/copy/{job_id}", "#datums a[data-datum]"),
        }
        page_ms: dict[str, list[float]] = {k: [] for k in pages}
        timing: dict[str, dict[str, list[tuple[float, float]]]] = {}
        with httpx.Client(base_url=base, timeout=120) as http, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            for _ in range(args.rounds):
                for name, path in routes.items():
                    t = time.perf_counter()
                    answer = http.get(path)
                    api_ms[name].append((time.perf_counter() - t) * 1000)
                    assert answer.status_code == 200, answer.text
                    sizes[name] = len(answer.content)
                for name, (where, ready) in pages.items():
                    page = browser.new_page(viewport={"width": 1280, "height": 800})
                    t = time.perf_counter()
                    page.goto(f"{base}/console/{where}")
                    page.locator(ready).first.wait_for(timeout=60_000)
                    page_ms[name].append((time.perf_counter() - t) * 1000)
                    for what, start, end in page.evaluate(TIMING):
                        timing.setdefault(name, {}).setdefault(what, []).append((start, end))
                    page.close()
            browser.close()
    load_after = os.getloadavg()
    shutil.rmtree(work, ignore_errors=True)
    print(f"\n{args.files:,} files, a job of {args.datums:,} datums; {args.rounds} rounds; "
          f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f} (2 cores)\n")  # fmt: skip
    print("| console route (HTTP) | ms, median (min–max) | answer bytes |")
    print("|---|---|---|")
    for name in routes:
        print(f"| {name} | {med(api_ms[name])} | {sizes[name]:,} |")
    print("\n| page in Chromium: navigation → first rows drawn | ms, median (min–max) |")
    print("|---|---|")
    for name in pages:
        print(f"| {name} | {med(page_ms[name])} |")
    for name in pages:
        print(f"\n{name}, in the browser (ms after navigation start, medians):\n")
        print("| request | starts | ends |")
        print("|---|---|---|")
        for what, spans in timing.get(name, {}).items():
            starts, ends = [a for a, _ in spans], [b for _, b in spans]
            print(f"| {what} | {statistics.median(starts):.0f} | {statistics.median(ends):.0f} |")


if __name__ == "__main__":
    main()
