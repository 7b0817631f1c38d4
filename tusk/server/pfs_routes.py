"""PFS routes: repos, commits, branches, files."""

from __future__ import annotations

import queue
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from tusk.api.framing import DATA, END, FRAMES_MEDIA_TYPE, HEADER, FileHeader, PutStream
from tusk.api.host import same_user_local_peer
from tusk.api.models import (
    BranchInfo,
    CommitInfo,
    CommitKey,
    CopyFile,
    CreateBranch,
    CreateRepo,
    DeleteFiles,
    DiffResult,
    FileInfo,
    FinishCommit,
    PutResult,
    RepoInfo,
    StartCommit,
)
from tusk.api.pps import CommitWave, FileLineage
from tusk.api.projects import DEFAULT_PROJECT, qualify
from tusk.errors import InvalidArgument, SourceUnavailable
from tusk.pfs.files import node_dict, node_info
from tusk.pfs.put import PutBatch
from tusk.pfs.tree import Node
from tusk.runtime import Engine
from tusk.server.ndjson import NDJSON, lines_response, models_response, wants_lines
from tusk.server.params import MAX_COUNT, Count, RepoKey

router = APIRouter()
STREAM_BLOCK = 1 << 20
INGEST_BLOCK = 4 << 20
# Frames handed to the ingest thread at once at most: a put of tiny files is mostly header
# frames (a parsed model each), and the thread's queue holds four such blocks; counted by bytes
# alone, a block of 8-byte files held 65,000 headers and the queue a third of a million.
INGEST_FRAMES = 2_000
SUBSCRIBE_POLL = 0.5  # seconds a subscription waits between checks of its stop flag
# A parsed frame of a put stream: (H, FileHeader), (D, bytes) or (E, None).
Frame = tuple[bytes, Any]


def eng(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


# -- repos ------------------------------------------------------------------------------------
@router.post("/repos")
def create_repo(body: CreateRepo, request: Request, project: str | None = None) -> RepoInfo:
    e = eng(request)
    name = qualify(project, body.name)
    if body.update:
        try:
            return e.repos.update(name, body.description)
        except Exception:  # noqa: BLE001 - fall through to create when it does not exist
            pass
    return e.repos.create(name, body.description)


@router.get("/repos")
def list_repos(
    request: Request,
    hidden: bool = False,
    project: str = DEFAULT_PROJECT,
    all_projects: bool = False,
) -> list[RepoInfo]:
    return eng(request).repos.list(include_hidden=hidden, project=None if all_projects else project)


@router.get("/repos/{repo}")
def inspect_repo(repo: RepoKey, request: Request) -> RepoInfo:
    return eng(request).repos.inspect(repo)


@router.put("/repos/{repo}")
def update_repo(repo: RepoKey, body: CreateRepo, request: Request) -> RepoInfo:
    return eng(request).repos.update(repo, body.description)


@router.delete("/repos/{repo}")
def delete_repo(repo: RepoKey, request: Request, force: bool = False) -> list[str]:
    return eng(request).repos.delete(repo, force=force)


@router.delete("/repos")
def delete_all_repos(
    request: Request, force: bool = False, project: str = DEFAULT_PROJECT
) -> list[str]:
    return eng(request).repos.delete(None, all=True, force=force, project=project)


# -- commits ----------------------------------------------------------------------------------
@router.post("/repos/{repo}/commits")
def start_commit(repo: RepoKey, body: StartCommit, request: Request) -> CommitInfo:
    return eng(request).commits.start(
        repo,
        body.branch,
        parent=body.parent,
        description=body.description,
        provenance=[(p.repo, p.name, None) for p in body.provenance],
    )


@router.get(
    "/repos/{repo}/commits",
    response_model=list[CommitInfo],
    responses={200: {"content": {NDJSON: {}}, "description": "one CommitInfo per line"}},
)
def list_commits(
    repo: RepoKey,
    request: Request,
    to: str | None = None,
    from_: str | None = None,
    number: Count = 0,
) -> Any:
    commits = eng(request).commits
    if wants_lines(request):  # read page by page as it is sent (see tusk.server.ndjson)
        return models_response(commits.iter_list(repo, to, from_, number))
    return commits.list(repo, to=to, from_=from_, number=number)


@router.get("/repos/{repo}/commit")
def inspect_commit(repo: RepoKey, ref: str, request: Request) -> CommitInfo:
    return eng(request).commits.inspect(repo, ref)


@router.post("/repos/{repo}/commit/finish")
def finish_commit(repo: RepoKey, ref: str, body: FinishCommit, request: Request) -> CommitInfo:
    return eng(request).commits.finish(repo, ref, body.description)


@router.delete("/repos/{repo}/commit")
def delete_commit(repo: RepoKey, ref: str, request: Request) -> list[CommitKey]:
    return eng(request).commits.delete(repo, ref)


@router.get("/commitsets/{commit_id}")
def commit_set(commit_id: str, request: Request) -> list[CommitInfo]:
    return eng(request).commits.with_id(commit_id)


@router.post("/commitsets/{commit_id}/squash")
def squash_commit_set(commit_id: str, request: Request) -> list[CommitKey]:
    return eng(request).commits.squash(commit_id)


@router.post("/commitsets/{commit_id}/drop")
def drop_commit_set(commit_id: str, request: Request) -> list[CommitKey]:
    return eng(request).drop_commit_set(commit_id)


@router.get("/commitsets/{commit_id}/wave")
def commit_wave(commit_id: str, request: Request, repo: str | None = None) -> CommitWave:
    return eng(request).lineage.wave(commit_id, repo)


@router.get("/lineage")
def file_lineage(repo: str, commit: str, path: str, request: Request) -> FileLineage:
    return eng(request).lineage.file(repo, commit, path)


@router.get("/repos/{repo}/subscribe")
def subscribe(
    repo: RepoKey, branch: str, request: Request, from_: str | None = None, new: bool = False
) -> StreamingResponse:
    e = eng(request)
    stop = threading.Event()
    it = e.commits.subscribe(repo, branch, from_=from_, new=new, stop=stop, poll=SUBSCRIBE_POLL)

    async def lines() -> AsyncIterator[bytes]:
        # When the client goes away Starlette cancels this generator; the thread waiting for
        # the next commit is abandoned and ``stop`` ends it within one poll, so abandoned
        # subscriptions do not pile up in (and finally exhaust) the server's thread pool.
        try:
            while True:
                info = await anyio.to_thread.run_sync(next, it, None, abandon_on_cancel=True)
                if info is None:
                    return
                yield (info.model_dump_json() + "\n").encode()
        finally:
            stop.set()

    return StreamingResponse(lines(), media_type="application/x-ndjson")


# -- branches ---------------------------------------------------------------------------------
@router.post("/repos/{repo}/branches")
def create_branch(repo: RepoKey, body: CreateBranch, request: Request) -> BranchInfo:
    prov = None if body.provenance is None else [(p.repo, p.name) for p in body.provenance]
    return eng(request).commits.create_branch(repo, body.name, body.head, prov)


@router.get("/repos/{repo}/branches")
def list_branches(repo: RepoKey, request: Request) -> list[BranchInfo]:
    return eng(request).commits.list_branches(repo)


@router.get("/repos/{repo}/branches/{name}")
def inspect_branch(repo: RepoKey, name: str, request: Request) -> BranchInfo:
    return eng(request).commits.inspect_branch(repo, name)


@router.delete("/repos/{repo}/branches/{name}")
def delete_branch(repo: RepoKey, name: str, request: Request, force: bool = False) -> None:
    eng(request).commits.delete_branch(repo, name, force)


# -- files ------------------------------------------------------------------------------------
@router.post(
    "/repos/{repo}/put",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "header, data and end frames of each file, then a commit frame "
            "(see tusk.api.framing)",
            "content": {FRAMES_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def put_files(repo: RepoKey, ref: str, request: Request) -> PutResult:
    e = eng(request)
    batch: PutBatch = await anyio.to_thread.run_sync(e.files.open_put, repo, ref)
    stream = PutStream()
    ingest = _IngestThread(batch)
    pending: list[Frame] = []
    pending_bytes = 0
    try:
        async for chunk in request.stream():
            for kind, item in stream.feed(chunk):
                if kind == HEADER and item.local_path is not None:
                    _check_local_ingest(request)
                pending.append((kind, item))
                pending_bytes += (len(item) if kind == DATA else 0) + 64
            if pending_bytes >= INGEST_BLOCK or len(pending) >= INGEST_FRAMES:
                await ingest.submit(pending)
                pending, pending_bytes = [], 0
        await ingest.submit(pending)
    finally:
        await ingest.close()
    if stream.trailer is None or not stream.complete:
        raise InvalidArgument(
            "the put-file stream ended before it was complete; nothing was stored",
            hint="run the command again",
        )
    if await request.is_disconnected():
        # the client gave up (Ctrl-C) while files it named were still being read here
        raise InvalidArgument("the client went away before the put finished; nothing was stored")
    return await anyio.to_thread.run_sync(batch.commit, stream.trailer.description)


class _IngestThread:
    """Chunks, hashes and stores frames on one thread while the event loop keeps receiving the
    body, so network, hashing and disk overlap instead of taking turns."""

    def __init__(self, batch: PutBatch) -> None:
        self.batch = batch
        self.queue: queue.Queue[list[Frame] | None] = queue.Queue(maxsize=4)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="put-ingest", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (frames := self.queue.get()) is not None:
            if self.error is None:
                try:
                    _apply_frames(self.batch, frames)
                except BaseException as exc:  # noqa: BLE001 - re-raised on the request's side
                    self.error = exc

    async def submit(self, frames: list[Frame] | None) -> None:
        if self.error is not None:
            raise self.error
        try:
            self.queue.put_nowait(frames)
        except queue.Full:
            await anyio.to_thread.run_sync(self.queue.put, frames)

    async def close(self) -> None:
        if self.thread.is_alive():
            await anyio.to_thread.run_sync(self.queue.put, None)
            await anyio.to_thread.run_sync(self.thread.join)
        if self.error is not None:
            raise self.error


def _check_local_ingest(request: Request) -> None:
    peer = request.client
    if peer is None or not same_user_local_peer(peer.host, peer.port):
        raise InvalidArgument(
            "this server reads local files only for clients of its own user on its own machine",
            hint="send the file's bytes instead (the tusk client does when the server is remote)",
        )


def _ingest_local(batch: PutBatch, path: str) -> None:
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below, read in blocks
    except OSError as exc:
        raise SourceUnavailable(f"open {path}: {exc.strerror}") from None
    with fh:
        while block := fh.read(INGEST_BLOCK):
            batch.write(block)


def _apply_frames(batch: PutBatch, frames: list[Frame]) -> None:
    data: list[bytes | memoryview] = []  # consecutive data pieces, written as one block
    for kind, item in frames:
        if kind == DATA:
            data.append(item)
            continue
        if data:
            batch.write(data[0] if len(data) == 1 else b"".join(data))
            data = []
        if kind == HEADER:
            h: FileHeader = item
            batch.begin_file(
                h.path,
                overwrite=h.overwrite,
                split=h.split or None,
                target_datums=h.target_datums,
                target_bytes=h.target_bytes,
                shared=h.shared,
            )
            if h.local_path:
                _ingest_local(batch, h.local_path)
        elif kind == END:
            batch.end_file()
    if data:
        batch.write(data[0] if len(data) == 1 else b"".join(data))


def _blocks(it: Iterator[bytes]) -> Iterator[bytes]:
    buf: list[bytes] = []
    size = 0
    for piece in it:
        buf.append(piece)
        size += len(piece)
        if size >= STREAM_BLOCK:
            yield b"".join(buf)
            buf, size = [], 0
    if buf:
        yield b"".join(buf)


@router.get("/repos/{repo}/file")
def get_file(
    repo: RepoKey,
    ref: str,
    path: str,
    request: Request,
    offset: Count = 0,
    length: Annotated[int, Query(ge=-1, le=MAX_COUNT, description="bytes; -1: to the end")] = -1,
    headers: Annotated[
        bool, Query(description="read files inside their directory's header and footer")
    ] = True,
) -> StreamingResponse:
    it = eng(request).files.get(repo, ref, path, offset, length, headers=headers)
    return StreamingResponse(_blocks(it), media_type="application/octet-stream")


# Listings of any size: JSON lines as they are read when the client accepts them (see
# tusk.server.ndjson), else one JSON array.
LISTING: dict[int | str, dict[str, Any]] = {
    200: {"content": {NDJSON: {}}, "description": "one FileInfo per line (Accept: ndjson)"}
}


def _listing(request: Request, nodes: Iterator[Node]) -> Any:
    if wants_lines(request):
        return lines_response(nodes, node_dict)
    return [node_info(n) for n in nodes]


@router.get("/repos/{repo}/files", response_model=list[FileInfo], responses=LISTING)
def list_files(repo: RepoKey, ref: str, request: Request, path: str = "/") -> Any:
    return _listing(request, eng(request).files.list_nodes(repo, ref, path))


@router.get("/repos/{repo}/glob", response_model=list[FileInfo], responses=LISTING)
def glob_files(repo: RepoKey, ref: str, pattern: str, request: Request) -> Any:
    return _listing(request, eng(request).files.glob_nodes(repo, ref, pattern))


@router.get("/repos/{repo}/inspect-file")
def inspect_file(repo: RepoKey, ref: str, path: str, request: Request) -> FileInfo:
    return eng(request).files.inspect(repo, ref, path)


@router.get("/repos/{repo}/walk", response_model=list[FileInfo], responses=LISTING)
def walk_files(repo: RepoKey, ref: str, request: Request, path: str = "/") -> Any:
    return _listing(request, eng(request).files.walk_nodes(repo, ref, path))


@router.get("/repos/{repo}/diff")
def diff_files(
    repo: RepoKey,
    ref: str,
    path: str,
    request: Request,
    old_repo: str | None = None,
    old_ref: str | None = None,
    old_path: str | None = None,
    shallow: bool = False,
) -> DiffResult:
    return eng(request).files.diff(repo, ref, path, old_repo, old_ref, old_path, shallow)


@router.post("/repos/{repo}/delete-files")
def delete_files(repo: RepoKey, ref: str, body: DeleteFiles, request: Request) -> CommitKey:
    return eng(request).files.delete(repo, ref, body.paths)


@router.post("/repos/{repo}/copy")
def copy_file(repo: RepoKey, ref: str, body: CopyFile, request: Request) -> CommitKey:
    return eng(request).files.copy(
        body.src_repo, body.src_ref, body.src_path, repo, ref, body.dst_path, body.overwrite
    )
