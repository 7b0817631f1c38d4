"""Git inputs, by polling: every ``git_poll_seconds`` (default 60) the leader asks each
running pipeline's git URL for the head of its branch (``git ls-remote``); a new git commit is
fetched shallowly into a scratch directory and becomes one commit of the input repo holding the
checkout (without ``.git``), its description naming the git SHA. The pipeline then runs on it as
on any put. Create-pipeline asks the URL once first and refuses one that does not answer.

Git runs with a bounded time, no terminal prompt, no credentials helper and an empty home, so a
URL can neither hang the server nor use its identity; symlinks in a checkout are not imported.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from tusk.errors import InvalidSpec, TuskError
from tusk.pfs.commits import CommitService
from tusk.pfs.context import PfsContext
from tusk.pfs.files import FileService
from tusk.pps.scheduling.ticker import Ticker
from tusk.pps.spec import PipelineSpec
from tusk.pps.spec.inputs import GitInput

log = logging.getLogger("tusk.git")
LS_REMOTE_TIMEOUT = 20.0
FETCH_TIMEOUT = 300.0
_SCHEMES = ("https", "http", "git")
_DESCRIPTION = "git "


def check_url(url: str, *, file_urls: bool = False) -> None:
    """Refuse URLs that are not plain remote git URLs (ssh would use the server's keys); a
    ``file://`` URL only when the server allows them."""
    scheme = urlsplit(url).scheme
    if scheme == "file" and file_urls:
        return
    if scheme not in _SCHEMES or not urlsplit(url).netloc:
        hint = "use an https:// clone URL, e.g. https://github.com/<owner>/<repo>.git"
        if scheme == "file":
            hint = (
                "file:// URLs read repositories on the server's machine and are off unless the "
                "server runs with TUSK_GIT_ALLOW_FILE_URLS=1"
            )
        raise InvalidSpec(f"git input URL {url!r} is not supported", hint=hint, url=url)


def _git_env(home: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
        "LC_ALL": "C",
    }


def _git(args: list[str], home: str, timeout: float, cwd: str | None = None) -> str:
    """Run git; its failure (or time running out) raises InvalidSpec with git's own message. Git
    runs in a session of its own so that, on timeout, its helpers (``git-remote-https``, ...)
    are killed with it and cannot keep the call waiting on their pipes."""
    cmd = ["git", "-c", "protocol.file.allow=always", "-c", "credential.helper=", *args]
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=_git_env(home),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise InvalidSpec(
            "git is not installed on the server", hint="install git (apt-get install git)"
        ) from None
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise InvalidSpec(
            f"git {args[0]} did not answer within {timeout:g} s",
            hint="check that the URL is reachable from the server",
        ) from None
    if proc.returncode != 0:
        text = err.decode(errors="replace").strip().splitlines()
        detail = text[-1] if text else f"exit status {proc.returncode}"
        raise InvalidSpec(
            f"git {args[0]} failed: {detail}",
            hint="check the URL and that the repository is public",
        )
    return out.decode(errors="replace")


def remote_head(git: GitInput, *, file_urls: bool = False, timeout: float | None = None) -> str:
    """The SHA the git input's branch points at; InvalidSpec when the URL or branch is not there."""
    timeout = LS_REMOTE_TIMEOUT if timeout is None else timeout
    check_url(git.URL, file_urls=file_urls)
    branch = git.branch or "master"
    with tempfile.TemporaryDirectory(prefix="tusk-git-") as home:
        out = _git(["ls-remote", "--heads", "--", git.URL, f"refs/heads/{branch}"], home, timeout)
    for line in out.splitlines():
        sha, _, ref = line.partition("\t")
        if ref == f"refs/heads/{branch}":
            return sha
    raise InvalidSpec(
        f"branch {branch} not found at {git.URL}",
        hint='name an existing branch in the git input\'s "branch" (default master)',
    )


@dataclass
class Checkout:
    """A fetched commit: its SHA and where its files are."""

    sha: str
    path: str


def fetch(
    git: GitInput, scratch: str, *, file_urls: bool = False, timeout: float | None = None
) -> Checkout:
    """A shallow checkout of the input's branch into ``scratch``."""
    timeout = FETCH_TIMEOUT if timeout is None else timeout
    check_url(git.URL, file_urls=file_urls)
    branch = git.branch or "master"
    work = os.path.join(scratch, "checkout")
    home = os.path.join(scratch, "home")
    os.mkdir(home)
    _git(
        ["clone", "--quiet", "--depth", "1", "--single-branch", "--branch", branch, "--", git.URL,
         work],
        home,
        timeout,
    )  # fmt: skip
    sha = _git(["rev-parse", "HEAD"], home, 30, cwd=work).strip()
    return Checkout(sha, work)


def imported_sha(description: str) -> str | None:
    """The git SHA a commit of a git input repo was imported from."""
    if description.startswith(_DESCRIPTION):
        return description[len(_DESCRIPTION) :].split()[0]
    return None


class GitPoller(Ticker):
    """Runs on the scheduler's server: imports new commits of every running pipeline's git
    inputs into their repos."""

    thread_name = "git-poll"
    log = logging.getLogger("tusk.git")

    def __init__(
        self,
        ctx: PfsContext,
        files: FileService,
        commits: CommitService,
        *,
        poll_seconds: float = 60.0,
        file_urls: bool = False,
    ) -> None:
        self.ctx = ctx
        self.files = files
        self.commits = commits
        self.poll_seconds = poll_seconds
        self.file_urls = file_urls
        super().__init__()
        self._polled: dict[tuple[str, str, str], float] = {}
        self.errors: dict[str, str] = {}  # repo -> the last poll's failure, for the logs

    def step(self) -> None:
        self.poll(time.monotonic())

    def check(self, git: GitInput) -> str:
        """What create-pipeline asks: the branch head, or InvalidSpec when the URL is unusable."""
        return remote_head(git, file_urls=self.file_urls)

    def due(self, now: float) -> list[GitInput]:
        """The git inputs of running pipelines whose poll is due at ``now``."""
        every = self.poll_seconds
        with self.ctx.meta.transaction(write=False) as tx:
            pipes = [p for p in tx.list_pipelines() if not p.stopped]
        out: dict[tuple[str, str, str], GitInput] = {}
        for pipe in pipes:
            spec = PipelineSpec.model_validate_json(pipe.spec)
            for leaf in spec.input.leaves() if spec.input else ():
                if leaf.git is None:
                    continue
                key = (leaf.git.input_name, leaf.git.branch or "master", leaf.git.URL)
                last = self._polled.get(key)
                if last is None or now - last >= every:
                    out[key] = leaf.git
        return list(out.values())

    def poll(self, now: float) -> int:
        """Import every due git input that has moved; return how many commits were written."""
        written = 0
        for git in self.due(now):
            key = (git.input_name, git.branch or "master", git.URL)
            self._polled[key] = now
            try:
                if self.sync(git):
                    written += 1
                self.errors.pop(git.input_name, None)
            except TuskError as e:
                if self.errors.get(git.input_name) != e.message:
                    log.warning("git input %s: %s", git.input_name, e.message)
                self.errors[git.input_name] = e.message
        return written

    def _last_imported(self, repo: str, branch: str) -> str | None:
        try:
            info = self.commits.inspect(repo, branch)
        except TuskError:
            return None
        return imported_sha(info.description)

    def sync(self, git: GitInput) -> bool:
        """Import the branch's head unless it is already the input repo's head."""
        repo, branch = git.input_name, git.branch or "master"
        sha = remote_head(git, file_urls=self.file_urls)
        if self._last_imported(repo, branch) == sha:
            return False
        with tempfile.TemporaryDirectory(prefix="tusk-git-") as scratch:
            checkout = fetch(git, scratch, file_urls=self.file_urls)
            if self._last_imported(repo, branch) == checkout.sha:
                return False
            self._write(repo, branch, git.URL, checkout)
        return True

    def _write(self, repo: str, branch: str, url: str, checkout: Checkout) -> None:
        """One commit holding exactly the checkout's regular files."""
        commit = self.commits.start(repo, branch)
        try:
            self.files.delete(repo, commit.commit.id, ["/*"])
            batch = self.files.open_put(repo, commit.commit.id)
            for rel in _regular_files(checkout.path):
                batch.begin_file("/" + rel, overwrite=True)
                with open(os.path.join(checkout.path, rel), "rb") as f:
                    while chunk := f.read(1 << 20):
                        batch.write(chunk)
                batch.end_file()
            batch.commit()
        except BaseException:
            self.commits.finish(repo, commit.commit.id, failed=True, reason="git import failed")
            raise
        self.commits.finish(repo, commit.commit.id, f"{_DESCRIPTION}{checkout.sha} {url}")


def _regular_files(root: str) -> list[str]:
    """Paths (relative, sorted) of the regular files under ``root``, ``.git`` and links left out."""
    out: list[str] = []
    for top, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not (top == root and d == ".git"))
        for name in files:
            path = os.path.join(top, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                out.append(os.path.relpath(path, root))
    return sorted(out)
