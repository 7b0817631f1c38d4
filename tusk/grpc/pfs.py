"""``pfs_v2.API``: projects, repos, commits and commit sets, branches and files."""

from __future__ import annotations

import contextlib
import queue
import tarfile
import threading
import time
from collections.abc import Iterator
from typing import Any, cast

import betterproto
import grpc
from betterproto.lib.google.protobuf import BytesValue, Empty
from pachyderm_sdk.api import pfs

from tusk.api.models import FileInfo
from tusk.errors import AlreadyExists, InvalidArgument, NotFound
from tusk.grpc import convert as cv
from tusk.grpc.base import Service, Unimplemented
from tusk.grpc.wire import encode_bytes_value, parse_modify_file
from tusk.pfs.put import PutBatch
from tusk.runtime import Engine

CHUNK = 2 << 20  # bytes of a GetFile message (clients accept up to 20 MiB)
WAIT_POLL = 0.5  # seconds between checks of a waiting call's cancellation


class RawBytes(BytesValue):
    """A ``BytesValue`` whose bytes are encoded without betterproto's copies."""

    def __bytes__(self) -> bytes:
        return encode_bytes_value(self.value)


def chunks(it: Iterator[bytes]) -> Iterator[RawBytes]:
    buf: list[bytes] = []
    size = 0
    for piece in it:
        buf.append(piece)
        size += len(piece)
        if size >= CHUNK:
            yield RawBytes(value=b"".join(buf))
            buf, size = [], 0
    if buf:
        yield RawBytes(value=b"".join(buf))


def build(engine: Engine, token: str | None) -> Service:
    svc = Service("pfs_v2.API", token)
    e = engine

    # -- projects: one, "default" ----------------------------------------------------------
    def project_info() -> pfs.ProjectInfo:
        return pfs.ProjectInfo(project=cv.project(), description="the default project")

    @svc.unary("InspectProject", pfs.InspectProjectRequest)
    def inspect_project(req: pfs.InspectProjectRequest, _ctx: Any) -> pfs.ProjectInfo:
        cv.check_project(req.project)
        return project_info()

    @svc.unary("InspectProjectV2", pfs.InspectProjectV2Request)
    def inspect_project_v2(req: pfs.InspectProjectV2Request, _ctx: Any) -> Any:
        cv.check_project(req.project)
        return pfs.InspectProjectV2Response(info=project_info(), defaults_json="{}")

    @svc.stream("ListProject", pfs.ListProjectRequest)
    def list_project(_req: pfs.ListProjectRequest, _ctx: Any) -> Iterator[pfs.ProjectInfo]:
        yield project_info()

    @svc.unary("CreateProject", pfs.CreateProjectRequest)
    def create_project(req: pfs.CreateProjectRequest, _ctx: Any) -> Empty:
        name = req.project.name if req.project else ""
        if name == cv.DEFAULT_PROJECT:
            raise AlreadyExists(f"project {name} already exists")
        raise Unimplemented(f"projects other than {cv.DEFAULT_PROJECT} are not supported by tusk")

    @svc.unary("DeleteProject", pfs.DeleteProjectRequest)
    def delete_project(req: pfs.DeleteProjectRequest, _ctx: Any) -> Empty:
        cv.check_project(req.project)
        raise InvalidArgument(f"the {cv.DEFAULT_PROJECT} project cannot be deleted")

    # -- repos ------------------------------------------------------------------------------
    @svc.unary("CreateRepo", pfs.CreateRepoRequest)
    def create_repo(req: pfs.CreateRepoRequest, _ctx: Any) -> Empty:
        name = cv.repo_name(req.repo)
        if req.update:
            try:
                e.repos.update(name, req.description)
                return Empty()
            except NotFound:
                pass
        e.repos.create(name, req.description)
        return Empty()

    @svc.unary("InspectRepo", pfs.InspectRepoRequest)
    def inspect_repo(req: pfs.InspectRepoRequest, _ctx: Any) -> pfs.RepoInfo:
        return cv.repo_info(e.repos.inspect(cv.repo_name(req.repo)))

    @svc.stream("ListRepo", pfs.ListRepoRequest)
    def list_repo(req: pfs.ListRepoRequest, _ctx: Any) -> Iterator[pfs.RepoInfo]:
        for p in req.projects:
            cv.check_project(p)
        if req.type not in ("", "user", "all"):
            return
        for info in e.repos.list():
            yield cv.repo_info(info)

    @svc.unary("DeleteRepo", pfs.DeleteRepoRequest)
    def delete_repo(req: pfs.DeleteRepoRequest, _ctx: Any) -> pfs.DeleteRepoResponse:
        e.repos.delete(cv.repo_name(req.repo), force=req.force)
        return pfs.DeleteRepoResponse(deleted=True)

    @svc.unary("DeleteRepos", pfs.DeleteReposRequest)
    def delete_repos(req: pfs.DeleteReposRequest, _ctx: Any) -> pfs.DeleteReposResponse:
        for p in req.projects:
            cv.check_project(p)
        names = e.repos.delete(None, all=True, force=req.force)
        return pfs.DeleteReposResponse(repos=[cv.repo_msg(n) for n in names])

    # -- commits ----------------------------------------------------------------------------
    @svc.unary("StartCommit", pfs.StartCommitRequest)
    def start_commit(req: pfs.StartCommitRequest, _ctx: Any) -> pfs.Commit:
        repo, branch = cv.branch_ref(req.branch)
        parent = None
        if req.parent and _set(req.parent):
            _, parent = cv.commit_ref(req.parent)
        info = e.commits.start(repo, branch, parent=parent, description=req.description)
        return cv.commit_msg(repo, info.commit.id, branch)

    @svc.unary("FinishCommit", pfs.FinishCommitRequest)
    def finish_commit(req: pfs.FinishCommitRequest, _ctx: Any) -> Empty:
        repo, ref = cv.commit_ref(req.commit)
        e.commits.finish(repo, ref, req.description or None)
        return Empty()

    def wait_finished(repo: str, ref: str, ctx: grpc.ServicerContext) -> pfs.CommitInfo:
        version = e.ctx.feed.version
        while True:
            info = e.commits.inspect(repo, ref)
            if info.finished is not None or not ctx.is_active():
                return cv.commit_info(info)
            version = e.ctx.feed.wait(version, WAIT_POLL)

    @svc.unary("InspectCommit", pfs.InspectCommitRequest)
    def inspect_commit(req: pfs.InspectCommitRequest, ctx: Any) -> pfs.CommitInfo:
        repo, ref = cv.commit_ref(req.commit)
        if req.wait in (pfs.CommitState.FINISHING, pfs.CommitState.FINISHED):
            return wait_finished(repo, ref, ctx)
        return cv.commit_info(e.commits.inspect(repo, ref))

    @svc.stream("ListCommit", pfs.ListCommitRequest)
    def list_commit(req: pfs.ListCommitRequest, _ctx: Any) -> Iterator[pfs.CommitInfo]:
        repo = cv.repo_name(req.repo)
        to = cv.commit_ref(req.to)[1] if req.to and _set(req.to) else None
        from_ = cv.commit_ref(req.from_)[1] if req.from_ and _set(req.from_) else None
        infos = e.commits.list(repo, to=to, from_=from_, number=req.number)
        if req.reverse:
            infos.reverse()
        for info in infos:
            yield cv.commit_info(info)

    @svc.stream("SubscribeCommit", pfs.SubscribeCommitRequest)
    def subscribe_commit(req: pfs.SubscribeCommitRequest, ctx: Any) -> Iterator[pfs.CommitInfo]:
        repo = cv.repo_name(req.repo)
        from_ = cv.commit_ref(req.from_)[1] if req.from_ and _set(req.from_) else None
        stop = threading.Event()
        ctx.add_callback(stop.set)
        branch = req.branch or "master"
        for info in e.commits.subscribe(repo, branch, from_=from_, stop=stop, poll=WAIT_POLL):
            if req.state == pfs.CommitState.FINISHED and info.finished is None:
                yield wait_finished(repo, info.commit.id, ctx)
            else:
                yield cv.commit_info(info)

    @svc.stream("InspectCommitSet", pfs.InspectCommitSetRequest)
    def inspect_commit_set(req: pfs.InspectCommitSetRequest, ctx: Any) -> Iterator[Any]:
        cid = req.commit_set.id if req.commit_set else ""
        infos = e.commits.with_id(cid)
        if not infos:
            raise NotFound(f"no commits found for commit set {cid}")
        if req.wait:
            for info in infos:
                if info.finished is None:
                    wait_finished(info.commit.repo, cid, ctx)
            e.jobs.flush_commits([(infos[0].commit.repo, cid)])
            infos = e.commits.with_id(cid)
        for info in infos:
            yield cv.commit_info(info)

    @svc.stream("ListCommitSet", pfs.ListCommitSetRequest)
    def list_commit_set(req: pfs.ListCommitSetRequest, _ctx: Any) -> Iterator[Any]:
        cv.check_project(req.project)
        sets: dict[str, list[Any]] = {}
        for repo in e.repos.list():
            for info in e.commits.list(repo.name):
                sets.setdefault(info.commit.id, []).append(info)
        ordered = sorted(sets.items(), key=lambda kv: min(i.started for i in kv[1]), reverse=True)
        for cid, infos in ordered:
            yield pfs.CommitSetInfo(
                commit_set=pfs.CommitSet(id=cid), commits=[cv.commit_info(i) for i in infos]
            )

    # -- branches ---------------------------------------------------------------------------
    @svc.unary("CreateBranch", pfs.CreateBranchRequest)
    def create_branch(req: pfs.CreateBranchRequest, _ctx: Any) -> Empty:
        repo, name = cv.branch_ref(req.branch)
        head = None
        if req.head and _set(req.head):
            head_repo, head = cv.commit_ref(req.head)
            if head_repo != repo:
                raise InvalidArgument(
                    f"branch and head commit must belong to the same repo ({repo} != {head_repo})"
                )
        prov = [cv.branch_ref(b) for b in req.provenance] or None
        e.commits.create_branch(repo, name, head, prov)
        return Empty()

    @svc.unary("InspectBranch", pfs.InspectBranchRequest)
    def inspect_branch(req: pfs.InspectBranchRequest, _ctx: Any) -> pfs.BranchInfo:
        return cv.branch_info(e.commits.inspect_branch(*cv.branch_ref(req.branch)))

    @svc.stream("ListBranch", pfs.ListBranchRequest)
    def list_branch(req: pfs.ListBranchRequest, _ctx: Any) -> Iterator[pfs.BranchInfo]:
        infos = e.commits.list_branches(cv.repo_name(req.repo))
        if req.reverse:
            infos.reverse()
        for info in infos:
            yield cv.branch_info(info)

    @svc.unary("DeleteBranch", pfs.DeleteBranchRequest)
    def delete_branch(req: pfs.DeleteBranchRequest, _ctx: Any) -> Empty:
        e.commits.delete_branch(*cv.branch_ref(req.branch), req.force)
        return Empty()

    # -- files ------------------------------------------------------------------------------
    @svc.client_stream("ModifyFile", pfs.ModifyFileRequest, parse_modify_file)
    def modify_file(reqs: Iterator[pfs.ModifyFileRequest], _ctx: Any) -> Empty:
        with _Prefetch(reqs) as ahead:
            _Modify(e).run(iter(ahead))
        return Empty()

    @svc.stream("GetFile", pfs.GetFileRequest)
    def get_file(req: pfs.GetFileRequest, _ctx: Any) -> Iterator[RawBytes]:
        repo, ref, path = _file_ref(req.file)
        if req.url:
            raise Unimplemented("GetFile to a URL is not supported by tusk")
        if req.offset < 0:
            raise InvalidArgument(f"offset {req.offset} is negative")
        info = e.files.inspect(repo, ref, path) if not _has_glob(path) else None
        if info is not None and info.type == "dir":
            raise InvalidArgument(
                f"{path} is a directory in repo {repo} at commit {ref}",
                hint="use GetFileTAR to read a directory",
            )
        yield from chunks(e.files.get(repo, ref, path, req.offset))

    @svc.stream("GetFileTAR", pfs.GetFileRequest)
    def get_file_tar(req: pfs.GetFileRequest, _ctx: Any) -> Iterator[RawBytes]:
        repo, ref, path = _file_ref(req.file)
        if _has_glob(path):
            infos = [i for i in e.files.glob(repo, ref, path)]
        else:
            top = e.files.inspect(repo, ref, path)
            infos = [top] if top.type == "file" else e.files.walk(repo, ref, path)
        yield from chunks(_tar(e, repo, ref, infos))

    @svc.unary("InspectFile", pfs.InspectFileRequest)
    def inspect_file(req: pfs.InspectFileRequest, _ctx: Any) -> pfs.FileInfo:
        repo, ref, path = _file_ref(req.file)
        return cv.file_info(e.files.inspect(repo, ref, path), req.file.commit)

    @svc.stream("ListFile", pfs.ListFileRequest)
    def list_file(req: pfs.ListFileRequest, _ctx: Any) -> Iterator[pfs.FileInfo]:
        repo, ref, path = _file_ref(req.file)
        infos = e.files.list(repo, ref, path)
        yield from _page(infos, req.file.commit, req.pagination_marker, req.number, req.reverse)

    @svc.stream("WalkFile", pfs.WalkFileRequest)
    def walk_file(req: pfs.WalkFileRequest, _ctx: Any) -> Iterator[pfs.FileInfo]:
        repo, ref, path = _file_ref(req.file)
        top = e.files.inspect(repo, ref, path)
        infos = e.files.walk(repo, ref, path) if top.type == "dir" else []
        if not infos or infos[0].path.rstrip("/") != top.path.rstrip("/"):
            infos.insert(0, top)  # pachd walks from the path itself
        yield from _page(infos, req.file.commit, req.pagination_marker, req.number, req.reverse)

    @svc.stream("GlobFile", pfs.GlobFileRequest)
    def glob_file(req: pfs.GlobFileRequest, _ctx: Any) -> Iterator[pfs.FileInfo]:
        repo, ref = cv.commit_ref(req.commit)
        for info in e.files.glob(repo, ref, req.pattern or "/"):
            yield cv.file_info(info, req.commit)

    @svc.stream("DiffFile", pfs.DiffFileRequest)
    def diff_file(req: pfs.DiffFileRequest, _ctx: Any) -> Iterator[pfs.DiffFileResponse]:
        repo, ref, path = _file_ref(req.new_file)
        old_repo = old_ref = old_path = None
        if req.old_file and req.old_file.commit:
            old_repo, old_ref, old_path = _file_ref(req.old_file)
        diff = e.files.diff(repo, ref, path, old_repo, old_ref, old_path, req.shallow)
        new = {i.path: i for i in diff.new_files}
        old = {i.path: i for i in diff.old_files}
        old_commit = req.old_file.commit if req.old_file else None
        for p in sorted(set(new) | set(old)):
            yield pfs.DiffFileResponse(
                new_file=cv.file_info(new[p], req.new_file.commit) if p in new else None,
                old_file=cv.file_info(old[p], old_commit or req.new_file.commit)
                if p in old
                else None,
            )

    @svc.unary("DeleteAll", Empty)
    def delete_all(_req: Empty, _ctx: Any) -> Empty:
        e.pipelines.delete(None, all=True, force=True)
        e.repos.delete(None, all=True, force=True)
        return Empty()

    return svc


def _set(commit: pfs.Commit) -> bool:
    return bool(commit.id or (commit.branch and commit.branch.name))


def _has_glob(path: str) -> bool:
    return any(c in path for c in "*?[")


def _file_ref(file: pfs.File | None) -> tuple[str, str, str]:
    if file is None:
        raise InvalidArgument("a file is required", hint="e.g. images@master:/path")
    repo, ref = cv.commit_ref(file.commit)
    return repo, ref, file.path or "/"


def _page(
    infos: list[FileInfo], commit: pfs.Commit, marker: pfs.File | None, number: int, reverse: bool
) -> Iterator[pfs.FileInfo]:
    if reverse:
        infos = list(reversed(infos))
    if marker and marker.path:
        after = marker.path.rstrip("/")
        infos = [i for i in infos if (i.path < after if reverse else i.path > after)]
    if number > 0:
        infos = infos[:number]
    for info in infos:
        yield cv.file_info(info, commit)


def _tar(e: Engine, repo: str, ref: str, infos: list[FileInfo]) -> Iterator[bytes]:
    """A tar stream of the files (and directories) ``infos``, each file's bytes streamed."""
    for info in infos:
        entry = tarfile.TarInfo(info.path.rstrip("/") or "/")  # absolute, as pachd names them
        entry.mtime = int(time.time())
        if info.type == "dir":
            entry.type = tarfile.DIRTYPE
            entry.mode = 0o755
            yield entry.tobuf(format=tarfile.PAX_FORMAT)
            continue
        entry.size = info.size_bytes
        entry.mode = 0o644
        yield entry.tobuf(format=tarfile.PAX_FORMAT)
        yield from e.files.get(repo, ref, info.path)
        pad = -info.size_bytes % tarfile.BLOCKSIZE
        if pad:
            yield b"\0" * pad
    yield b"\0" * (2 * tarfile.BLOCKSIZE)


class _Prefetch:
    """Receives (and parses) the next requests of a stream on a thread of its own while the
    current one is being stored, as the HTTP put route overlaps receiving and ingesting."""

    DEPTH = 2  # messages held ahead (each up to the clients' 19 MiB)

    def __init__(self, reqs: Iterator[Any]) -> None:
        self.reqs = reqs
        self.queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=self.DEPTH)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="grpc-prefetch", daemon=True)

    def __enter__(self) -> _Prefetch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=WAIT_POLL * 4)

    def _put(self, item: tuple[str, Any]) -> None:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=WAIT_POLL)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        try:
            for req in self.reqs:
                self._put(("item", req))
                if self.stop.is_set():
                    return
            self._put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - raised again on the handler's side
            self._put(("error", exc))

    def __iter__(self) -> Iterator[Any]:
        while True:
            kind, value = self.queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value


class _Modify:
    """One ModifyFile stream, applied in order to its commit. Consecutive adds share one put
    batch; AddFile appends to the file as the commit has it, and a DeleteFile of the path just
    before its AddFile makes the add an overwrite (clients send a put without append so)."""

    def __init__(self, e: Engine) -> None:
        self.e = e
        self.repo = ""
        self.ref = ""
        self.batch: PutBatch | None = None
        self.current: str | None = None
        self.deletes: list[str] = []

    def run(self, reqs: Iterator[pfs.ModifyFileRequest]) -> None:
        for req in reqs:
            kind, body = betterproto.which_one_of(req, "body")
            body = cast(Any, body)
            if kind == "set_commit":
                self.flush()
                self.repo, self.ref = cv.commit_ref(body)
                self.e.files.check_writable(self.repo, self.ref)
            elif not self.repo:
                raise InvalidArgument(
                    "ModifyFile needs its commit first", hint="send set_commit before the files"
                )
            elif kind == "add_file":
                self.add(body)
            elif kind == "delete_file":
                self.end_file()
                self.deletes.append(body.path)
            elif kind == "copy_file":
                self.flush()
                src_repo, src_ref, src_path = _file_ref(body.src)
                self.e.files.copy(
                    src_repo, src_ref, src_path, self.repo, self.ref, body.dst, not body.append
                )
        self.flush()

    def add(self, add: pfs.AddFile) -> None:
        kind, _ = betterproto.which_one_of(add, "source")
        if kind == "url":
            raise Unimplemented("AddFile from a URL is not supported by tusk; send the bytes")
        path = add.path
        if path != self.current or self.batch is None:
            self.end_file()
            overwrite = path in self.deletes
            self.deletes = [d for d in self.deletes if d != path]
            if self.deletes:
                self.flush()
            if self.batch is None:
                self.batch = self.e.files.open_put(self.repo, self.ref)
            self.batch.begin_file(path, overwrite=overwrite)
            self.current = path
        if add.raw:
            self.batch.write(add.raw)

    def end_file(self) -> None:
        if self.batch is not None and self.current is not None:
            self.batch.end_file()
        self.current = None

    def flush(self) -> None:
        """Write the open batch, then the pending deletes."""
        self.end_file()
        if self.batch is not None:
            self.batch.commit()
            self.batch = None
        if self.deletes:
            with contextlib.suppress(NotFound):
                self.e.files.delete(self.repo, self.ref, self.deletes)
            self.deletes = []
