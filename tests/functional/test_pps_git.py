"""Git inputs by polling: a real local git repository (file:// URL, no network), each new git
commit imported as one commit of the input repo (checkout without .git, SHA in the description),
jobs running on it, and URLs refused at create-pipeline."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Pps

from tusk.errors import InvalidSpec
from tusk.pfs.context import SPEC_REPO
from tusk.pps.scheduling import git as git_inputs
from tusk.pps.scheduling.git import imported_sha

COPY_ALL = ["sh", "-c", "cp -r /pfs/site/. /pfs/out/ && ls -R /pfs/site > /pfs/out/listing"]


def git(repo: Path, *args: str) -> str:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(repo.parent),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    out = subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, timeout=30
    )
    return out.stdout.decode().strip()


@pytest.fixture
def gpps(tmp_path: Path) -> Iterator[Pps]:
    """An engine that polls git every 0.5 s and allows file:// URLs (the tests' repositories)."""
    p = Pps(tmp_path / "home", git_poll_seconds=0.5, git_file_urls=True)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A git repository named site.git with one commit on master."""
    repo = tmp_path / "site.git"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "master")
    (repo / "index.html").write_text("<h1>v1</h1>\n")
    (repo / "docs").mkdir()
    (repo / "docs" / "old.txt").write_text("old\n")
    os.symlink("/etc/hostname", repo / "link")  # never imported: it would read the server's file
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v1")
    return repo


def test_git_commits_become_input_commits_and_jobs(gpps: Pps, site: Path) -> None:
    pps = gpps
    url = f"file://{site}"
    created = pps.create("web", {"git": {"URL": url}}, COPY_ALL)
    assert created.input_summary == f"site:{url}"
    assert "site" in [r.name for r in pps.engine.repos.list()]  # named after the git repository
    first_sha = git(site, "rev-parse", "HEAD")
    (job,) = pps.wait_jobs("web", 1, timeout=60)
    assert job.state == "success", job.reason
    head = pps.engine.commits.inspect("site", "master")
    assert imported_sha(head.description) == first_sha
    assert pps.tree("site") == {"/index.html": b"<h1>v1</h1>\n", "/docs/old.txt": b"old\n"}
    out = pps.tree("web")
    assert out["/index.html"] == b"<h1>v1</h1>\n" and out["/docs/old.txt"] == b"old\n"
    assert "/link" not in out and ".git" not in out["/listing"].decode()

    # a new git commit (a change, a new file, a deletion) is imported as exactly that tree
    (site / "index.html").write_text("<h1>v2</h1>\n")
    (site / "new.txt").write_text("new\n")
    git(site, "rm", "-q", "docs/old.txt")
    git(site, "add", "-A")
    git(site, "commit", "-q", "-m", "v2")
    second_sha = git(site, "rev-parse", "HEAD")
    jobs = pps.wait_jobs("web", 2, timeout=60)
    assert jobs[-1].state == "success", jobs[-1].reason
    assert imported_sha(pps.engine.commits.inspect("site", "master").description) == second_sha
    assert pps.tree("site") == {"/index.html": b"<h1>v2</h1>\n", "/new.txt": b"new\n"}
    out = pps.tree("web")
    assert out["/index.html"] == b"<h1>v2</h1>\n" and "/docs/old.txt" not in out

    # nothing new in git: polling writes nothing
    commits = len(pps.engine.commits.list("site"))
    assert pps.engine.git.poll(1e12) == 0
    assert len(pps.engine.commits.list("site")) == commits


def _nothing_created(pps: Pps, name: str) -> None:
    assert name not in [p.name for p in pps.engine.pipelines.list()]
    assert name not in [b.branch.name for b in pps.engine.commits.list_branches(SPEC_REPO)]


def test_unusable_git_urls_are_refused_at_create(gpps: Pps, site: Path, tmp_path: Path) -> None:
    pps = gpps
    missing = tmp_path / "missing.git"
    with pytest.raises(InvalidSpec) as e:
        pps.create("web", {"git": {"URL": f"file://{missing}"}}, ["true"])
    assert "git ls-remote failed" in e.value.message and e.value.hint
    with pytest.raises(InvalidSpec) as e:
        pps.create("web", {"git": {"URL": f"file://{site}", "branch": "nope"}}, ["true"])
    assert "branch nope not found" in e.value.message
    with pytest.raises(InvalidSpec) as info:  # ssh would use the server's own keys
        pps.create("web", {"git": {"URL": "git@github.com:o/site.git"}}, ["true"])
    assert "not supported" in info.value.message
    _nothing_created(pps, "web")
    assert "site" not in [r.name for r in pps.engine.repos.list()]


def test_file_urls_are_refused_unless_the_server_allows_them(pps: Pps, site: Path) -> None:
    with pytest.raises(InvalidSpec) as e:
        pps.create("web", {"git": {"URL": f"file://{site}"}}, ["true"])
    assert e.value.hint and "TUSK_GIT_ALLOW_FILE_URLS" in e.value.hint
    _nothing_created(pps, "web")


def test_git_input_name_taken_by_a_user_repo_is_refused(gpps: Pps, site: Path) -> None:
    pps = gpps
    pps.repo("site")
    pps.put("site", {"/mine": "keep"})
    with pytest.raises(Exception, match="not a git input's repo"):
        pps.create("web", {"git": {"URL": f"file://{site}"}}, ["true"])
    assert pps.tree("site") == {"/mine": b"keep"}
    _nothing_created(pps, "web")


@pytest.fixture
def silent_server() -> Iterator[str]:
    """An HTTP address that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/site.git"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        sock.close()


def test_a_url_that_never_answers_is_refused_within_its_time_limit(
    pps: Pps, silent_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:  # an http:// URL: allowed by default
    monkeypatch.setattr(git_inputs, "LS_REMOTE_TIMEOUT", 1.5)
    started = time.monotonic()
    with pytest.raises(InvalidSpec) as e:
        pps.create("web", {"git": {"URL": silent_server}}, ["true"])
    assert "did not answer within 1.5 s" in e.value.message
    assert time.monotonic() - started < 15  # git's helper processes were killed with it
    _nothing_created(pps, "web")
