"""``client.pfs``: repos, commits, branches and files over HTTP, with streamed puts and gets."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import httpx
from pydantic import TypeAdapter

from tusk.api.frames import (
    DATA,
    END,
    FRAMES_MEDIA_TYPE,
    commit_frame,
    file_options,
    frame,
    frame_head,
    header_frame,
)
from tusk.api.host import is_loopback, machine_identity
from tusk.api.models import (
    BranchInfo,
    BranchKey,
    CommitInfo,
    CommitKey,
    CopyFile,
    CreateBranch,
    CreateProject,
    CreateRepo,
    DeleteFiles,
    DiffResult,
    FileInfo,
    FinishCommit,
    ProjectInfo,
    PutResult,
    RepoInfo,
    ServerInfo,
    StartCommit,
)
from tusk.api.projects import qualify
from tusk.client.http import Http, clean, seg
from tusk.errors import TuskError

BLOCK = 4 << 20  # upload block
READ_BLOCK = 1 << 20  # download pieces handed to the caller
LOCAL_INGEST_MIN = 8 << 20  # smaller files are cheaper to send than to hand over


@dataclass
class PutSource:
    """One file of a put: its destination path and where its bytes come from."""

    path: str
    data: bytes | Path | IO[bytes] | Callable[[], Iterable[bytes]]
    overwrite: bool = False
    split: str | None = None
    target_datums: int = 0
    target_bytes: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    local_path: str | None = None  # a local file the server may read itself (same machine)

    def local_file(self) -> str | None:
        """The local file holding the bytes, when there is one."""
        if self.local_path is not None:
            return self.local_path
        return str(self.data) if isinstance(self.data, Path) else None

    def chunks(self) -> Iterator[bytes]:
        """The bytes to send, in blocks."""
        d = self.data
        if isinstance(d, bytes):
            for i in range(0, len(d), BLOCK):
                yield d[i : i + BLOCK]
        elif isinstance(d, Path):
            with d.open("rb") as f:
                while block := f.read(BLOCK):
                    yield block
        elif callable(d):
            yield from d()
        else:
            while block := d.read(BLOCK):
                yield block


class PfsClient:
    """The PFS operations of a :class:`tusk.Client` (``client.pfs``), answered as typed models."""

    def __init__(self, http: Http, project: str | None = None) -> None:
        self._http = http
        # the project of the bare repo and pipeline names this client is given (None: default)
        self.project = project
        self._local: bool | None = None

    def _key(self, name: str | None) -> str | None:
        """The stored key of a repo or pipeline name (bare names are in this client's project)."""
        return None if name is None else qualify(self.project, name)

    def _seg(self, name: str) -> str:
        return seg(qualify(self.project, name))

    # -- repos -------------------------------------------------------------------------------
    def create_repo(self, name: str, description: str = "", *, update: bool = False) -> RepoInfo:
        """Create a repo (``update=True``: change the description of an existing one)."""
        body = CreateRepo(name=qualify(self.project, name), description=description, update=update)
        return self._http.post("/repos", body, RepoInfo)

    def update_repo(self, name: str, description: str) -> RepoInfo:
        """Change a repo's description."""
        body = CreateRepo(name=name, description=description)
        return self._http.call("PUT", f"/repos/{self._seg(name)}", RepoInfo, body=body)

    def inspect_repo(self, name: str) -> RepoInfo:
        """One repo."""
        return self._http.get(f"/repos/{self._seg(name)}", RepoInfo)

    def list_repo(
        self, *, include_hidden: bool = False, project: str | None = None
    ) -> list[RepoInfo]:
        """The repos of ``project`` (default: ``default``; ``"*"``: every project);
        ``include_hidden``: the internal ones too. Names outside ``default`` are
        ``<project>/<repo>``."""
        project = project or self.project
        params = {"project": project} if project and project != "*" else {}
        return self._http.get(
            "/repos",
            list[RepoInfo],
            hidden=include_hidden or None,
            all_projects=(project == "*") or None,
            **params,
        )

    def delete_repo(
        self,
        name: str | None = None,
        *,
        all: bool = False,
        force: bool = False,
        project: str | None = None,
    ) -> list[str]:
        """Delete a repo (or every repo of ``project`` with ``all``); returns the deleted
        names. A repo of another project than ``default`` is named ``<project>/<repo>``, or
        by ``project``."""
        project = project or self.project
        if name is not None:
            name = qualify(project, name)
        url = "/repos" if all and not name else f"/repos/{seg(name or '')}"
        params = clean({"force": force or None, "project": project if all else None})
        resp = self._http.send("DELETE", url, params=params)
        return list(resp.json())

    # -- projects ----------------------------------------------------------------------------
    def create_project(
        self, name: str, description: str = "", *, update: bool = False
    ) -> ProjectInfo:
        """Create a project (``update=True``: change an existing one's description)."""
        body = CreateProject(name=name, description=description, update=update)
        return self._http.post("/projects", body, ProjectInfo)

    def inspect_project(self, name: str) -> ProjectInfo:
        return self._http.get(f"/projects/{name}", ProjectInfo)

    def list_project(self) -> list[ProjectInfo]:
        """Every project, ``default`` first."""
        return self._http.get("/projects", list[ProjectInfo])

    def delete_project(self, name: str, *, force: bool = False) -> None:
        """Delete an empty project."""
        self._http.send("DELETE", f"/projects/{name}", params=clean({"force": force or None}))

    # -- commits -----------------------------------------------------------------------------
    def start_commit(
        self,
        repo: str,
        branch: str | None = None,
        *,
        parent: str | None = None,
        description: str = "",
    ) -> CommitInfo:
        """Open a commit on ``branch`` (or after ``parent``)."""
        body = StartCommit(branch=branch, parent=parent, description=description)
        return self._http.post(f"/repos/{self._seg(repo)}/commits", body, CommitInfo)

    def finish_commit(self, repo: str, ref: str, *, description: str | None = None) -> CommitInfo:
        """Finish an open commit."""
        body = FinishCommit(description=description)
        return self._http.post(f"/repos/{self._seg(repo)}/commit/finish", body, CommitInfo, ref=ref)

    def inspect_commit(self, repo: str, ref: str) -> CommitInfo:
        """One commit, by id, branch or ``branch^n``."""
        return self._http.get(f"/repos/{self._seg(repo)}/commit", CommitInfo, ref=ref)

    def list_commit(
        self, repo: str, to: str | None = None, *, from_: str | None = None, number: int = 0
    ) -> list[CommitInfo]:
        """A repo's commits (or the ancestors of ``to``), newest first."""
        return self._http.get(
            f"/repos/{self._seg(repo)}/commits",
            list[CommitInfo],
            to=to,
            from_=from_,
            number=number or None,
        )

    def delete_commit(self, repo: str, ref: str) -> list[CommitKey]:
        """Delete an input commit and everything downstream of it; returns what went."""
        resp = self._http.send("DELETE", f"/repos/{self._seg(repo)}/commit", params={"ref": ref})
        return TypeAdapter(list[CommitKey]).validate_json(resp.content)

    def commit_set(self, commit_id: str) -> list[CommitInfo]:
        """Every commit that shares a global id (one change and all it caused)."""
        return self._http.get(f"/commitsets/{commit_id}", list[CommitInfo])

    def squash_commit_set(self, commit_id: str) -> list[CommitKey]:
        """Remove the commits of a global id, their data kept by their children (2.x's
        ``squash commit``); returns the commits removed."""
        resp = self._http.send("POST", f"/commitsets/{commit_id}/squash")
        return TypeAdapter(list[CommitKey]).validate_json(resp.content)

    def drop_commit_set(self, commit_id: str) -> list[CommitKey]:
        """Delete the commits of a global id, their data lost, and kill its unfinished jobs
        (2.x's ``delete commit <id>``); returns the commits removed."""
        resp = self._http.send("POST", f"/commitsets/{commit_id}/drop")
        return TypeAdapter(list[CommitKey]).validate_json(resp.content)

    def subscribe_commit(
        self, repo: str, branch: str, *, from_: str | None = None, new: bool = False
    ) -> Generator[CommitInfo, None, None]:
        """The commits of a branch as they are made (runs until closed)."""
        params = clean({"branch": branch, "from_": from_, "new": new or None})
        with self._http.stream(
            "GET", f"/repos/{self._seg(repo)}/subscribe", params=params, timeout=None
        ) as resp:
            for line in resp.iter_lines():
                if line.strip():
                    yield CommitInfo.model_validate_json(line)

    @contextmanager
    def commit(self, repo: str, branch: str, *, description: str = "") -> Iterator[OpenCommit]:
        """Start a commit; finish it when the block ends, delete it if the block raises."""
        info = self.start_commit(repo, branch, description=description)
        oc = OpenCommit(self, repo, info.commit.id)
        try:
            yield oc
        except BaseException:
            with suppress(TuskError):
                self.delete_commit(repo, info.commit.id)
            raise
        oc.info = self.finish_commit(repo, info.commit.id)

    # -- branches ----------------------------------------------------------------------------
    def create_branch(
        self,
        repo: str,
        name: str,
        *,
        head: str | None = None,
        provenance: list[tuple[str, str]] | None = None,
    ) -> BranchInfo:
        """Create or move a branch; ``provenance`` lists ``(repo, branch)`` it depends on."""
        prov = None if provenance is None else [BranchKey(repo=r, name=b) for r, b in provenance]
        body = CreateBranch(name=name, head=head, provenance=prov)
        return self._http.post(f"/repos/{self._seg(repo)}/branches", body, BranchInfo)

    def list_branch(self, repo: str) -> list[BranchInfo]:
        """A repo's branches."""
        return self._http.get(f"/repos/{self._seg(repo)}/branches", list[BranchInfo])

    def inspect_branch(self, repo: str, name: str) -> BranchInfo:
        """One branch."""
        return self._http.get(f"/repos/{self._seg(repo)}/branches/{name}", BranchInfo)

    def delete_branch(self, repo: str, name: str, *, force: bool = False) -> None:
        """Delete a branch (its commits stay)."""
        params = clean({"force": force or None})
        self._http.send("DELETE", f"/repos/{self._seg(repo)}/branches/{name}", params=params)

    # -- files -------------------------------------------------------------------------------
    def put_files(
        self,
        repo: str,
        ref: str,
        sources: Iterable[PutSource],
        *,
        description: str = "",
        on_bytes: Callable[[int], None] | None = None,
    ) -> PutResult:
        """Put any number of files in one request; on a branch this makes one commit."""

        local = self.server_is_local()

        def body() -> Iterator[bytes]:
            for src in sources:
                opts = file_options(
                    src.overwrite, src.split, src.target_datums, src.target_bytes, src.options
                )
                size = _local_size(src) if local else None
                if size is not None and size >= LOCAL_INGEST_MIN:
                    # Same machine, same user: the server reads the file itself.
                    path = os.path.abspath(src.local_file() or "")
                    yield header_frame(src.path, **opts, local_path=path, size=size)
                    if on_bytes is not None:
                        on_bytes(size)
                    yield frame(END)
                    continue
                yield header_frame(src.path, **opts)
                for block in src.chunks():
                    yield frame_head(DATA, len(block))
                    yield block
                    if on_bytes is not None:
                        on_bytes(len(block))
                yield frame(END)
            yield commit_frame(description)

        resp = self._http.send(
            "POST",
            f"/repos/{self._seg(repo)}/put",
            params={"ref": ref},
            content=_coalesce(body()),
            headers={"Content-Type": FRAMES_MEDIA_TYPE},
        )
        return PutResult.model_validate_json(resp.content)

    def server_is_local(self) -> bool:
        """Whether the server runs on this machine as this user (it may then read files here)."""
        if self._local is None:
            host = httpx.URL(self._http.address).host
            if not is_loopback(host):
                self._local = False
            else:
                info: ServerInfo = self._http.get("/info", ServerInfo)
                self._local = info.machine_id == machine_identity() and info.uid == os.getuid()
        return self._local

    def put_file(
        self,
        repo: str,
        ref: str,
        path: str,
        data: bytes | str | Path | IO[bytes],
        *,
        overwrite: bool = False,
        split: str | None = None,
        target_datums: int = 0,
        target_bytes: int = 0,
        description: str = "",
    ) -> PutResult:
        """Put one file (appends unless ``overwrite``; ``split`` cuts it into records)."""
        if isinstance(data, str):
            data = data.encode()
        src = PutSource(path, data, overwrite, split, target_datums, target_bytes)
        return self.put_files(repo, ref, [src], description=description)

    def put_header(
        self,
        repo: str,
        ref: str,
        path: str,
        data: bytes | str | Path | IO[bytes],
        *,
        part: Literal["header", "footer"] = "header",
        description: str = "",
    ) -> PutResult:
        """Set the header (or footer) of the directory ``path``; empty content or a lone new
        line removes it. Files below the directory read inside it, as in 1.7."""
        if isinstance(data, str):
            data = data.encode()
        src = PutSource(path, data, options={"shared": part})
        return self.put_files(repo, ref, [src], description=description)

    def get_file(
        self,
        repo: str,
        ref: str,
        path: str,
        *,
        offset: int = 0,
        length: int = -1,
        headers: bool = True,
    ) -> Iterator[bytes]:
        """A file's contents (or a glob's, concatenated) as they arrive, optionally a range;
        ``headers=False``: the stored bytes, without directory headers and footers."""
        params = clean(
            {
                "ref": ref,
                "path": path,
                "offset": offset or None,
                "length": None if length < 0 else length,
                "headers": None if headers else "false",
            }
        )
        with self._http.stream("GET", f"/repos/{self._seg(repo)}/file", params=params) as resp:
            yield from resp.iter_bytes(READ_BLOCK)

    def get_file_bytes(self, repo: str, ref: str, path: str) -> bytes:
        """A file's contents, whole."""
        return b"".join(self.get_file(repo, ref, path))

    def list_file(self, repo: str, ref: str, path: str = "/") -> list[FileInfo]:
        """The entries of a directory (or a glob's matches)."""
        return self._http.get(f"/repos/{self._seg(repo)}/files", list[FileInfo], ref=ref, path=path)

    def glob_file(self, repo: str, ref: str, pattern: str) -> list[FileInfo]:
        """The files and directories that match a glob."""
        return self._http.get(
            f"/repos/{self._seg(repo)}/glob", list[FileInfo], ref=ref, pattern=pattern
        )

    def inspect_file(self, repo: str, ref: str, path: str) -> FileInfo:
        """One file or directory."""
        return self._http.get(
            f"/repos/{self._seg(repo)}/inspect-file", FileInfo, ref=ref, path=path
        )

    def walk_file(self, repo: str, ref: str, path: str = "/") -> list[FileInfo]:
        """Everything under a path, depth first."""
        return self._http.get(f"/repos/{self._seg(repo)}/walk", list[FileInfo], ref=ref, path=path)

    def diff_file(
        self,
        repo: str,
        ref: str,
        path: str,
        old_repo: str | None = None,
        old_ref: str | None = None,
        old_path: str | None = None,
        *,
        shallow: bool = False,
    ) -> DiffResult:
        """What changed under a path against another commit (default: the parent)."""
        return self._http.get(
            f"/repos/{self._seg(repo)}/diff",
            DiffResult,
            ref=ref,
            path=path,
            old_repo=old_repo,
            old_ref=old_ref,
            old_path=old_path,
            shallow=shallow or None,
        )

    def delete_file(self, repo: str, ref: str, paths: str | list[str]) -> CommitKey:
        """Delete files, directories or glob matches (on a branch: one commit)."""
        paths = [paths] if isinstance(paths, str) else paths
        body = DeleteFiles(paths=paths)
        return self._http.post(f"/repos/{self._seg(repo)}/delete-files", body, CommitKey, ref=ref)

    def copy_file(
        self,
        src_repo: str,
        src_ref: str,
        src_path: str,
        dst_repo: str,
        dst_ref: str,
        dst_path: str,
        *,
        overwrite: bool = False,
    ) -> CommitKey:
        """Copy files between commits without sending their bytes again."""
        body = CopyFile(
            src_repo=src_repo,
            src_ref=src_ref,
            src_path=src_path,
            dst_path=dst_path,
            overwrite=overwrite,
        )
        return self._http.post(f"/repos/{self._seg(dst_repo)}/copy", body, CommitKey, ref=dst_ref)


class OpenCommit:
    """An open commit inside ``with client.commit(...)``."""

    def __init__(self, pfs: PfsClient, repo: str, commit_id: str) -> None:
        self.pfs = pfs
        self.repo = repo
        self.id = commit_id
        self.info: CommitInfo | None = None

    def put_file(self, path: str, data: bytes | str | Path | IO[bytes], **kw: Any) -> PutResult:
        """Put one file into this commit."""
        return self.pfs.put_file(self.repo, self.id, path, data, **kw)

    def delete_file(self, path: str) -> CommitKey:
        """Delete a file from this commit."""
        return self.pfs.delete_file(self.repo, self.id, path)


def _coalesce(frames: Iterator[bytes]) -> Iterator[bytes]:
    """Join small frames so 10,000 tiny files do not cost 30,000 socket writes."""
    buf: list[bytes] = []
    size = 0
    for f in frames:
        if len(f) >= 1 << 16:  # big payloads go out as they are, never copied into a join
            if buf:
                yield b"".join(buf)
                buf, size = [], 0
            yield f
            continue
        buf.append(f)
        size += len(f)
        if size >= 1 << 20:
            yield b"".join(buf)
            buf, size = [], 0
    if buf:
        yield b"".join(buf)


def _local_size(src: PutSource) -> int | None:
    path = src.local_file()
    if path is None or src.split:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None
