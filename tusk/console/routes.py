"""The console's routes: the page and its static files (``/console``), and a JSON API
(``/console/api``) that composes the same services as the CLI's routes. Every list is paged
(``limit``/``offset``, or an ``after`` cursor for logs), so no answer grows with what is stored."""

from __future__ import annotations

import contextlib
import csv
import hmac
import io
import json
import mimetypes
from importlib.resources import files as package_files
from pathlib import PurePosixPath
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import (
    FileResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from pydantic import BaseModel

from tusk.api.models import CommitInfo
from tusk.api.pps import DatumState, JobInfo
from tusk.console import auth
from tusk.console.layout import layout
from tusk.errors import InvalidArgument, NotFound, TuskError, Unauthenticated
from tusk.pfs.context import SPEC_REPO
from tusk.pps.spec import parse_specs
from tusk.runtime import Engine

router = APIRouter()
STATIC = package_files("tusk.console") / "static"
MAX_LIMIT = 500
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0, le=1 << 62)]
PREVIEW_BYTES = 256 << 10  # what a preview reads of a file, at most
PREVIEW_ROWS = 200  # rows of a CSV/TSV preview
LOG_PAGE = 500  # log lines per answer
VERSIONS = 20  # spec versions a pipeline's page shows (the newest)
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".gif": "image/gif", ".webp": "image/webp", ".bmp": "image/bmp"}  # fmt: skip
# A stored file is the user's data, never a page of this site: it is sent so that no browser
# runs it (no sniffing, a sandbox without scripts) and, unless it is an image, as a download.
RAW_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self'",
}


def eng(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def page(items: list[Any], total: int, limit: int, offset: int) -> dict[str, Any]:
    """One page of a list: its items (JSON-ready) and where it is in the whole."""
    return {"items": [_jsonable(i) for i in items], "total": total, "limit": limit,
            "offset": offset}  # fmt: skip


def _jsonable(item: Any) -> Any:
    return item.model_dump(mode="json") if isinstance(item, BaseModel) else item


# -- the page, its files, the session ------------------------------------------------------------
@router.get("/console", include_in_schema=False)
def console_redirect() -> RedirectResponse:
    return RedirectResponse("/console/")


@router.get("/console/", include_in_schema=False)
def console_page() -> Response:
    return _static("index.html")


@router.get("/console/static/{name:path}", include_in_schema=False)
def console_static(name: str) -> Response:
    return _static(name)


def _static(name: str) -> Response:
    parts = PurePosixPath(name).parts
    if not parts or any(p in ("..", "") or p.startswith(".") for p in parts):
        raise NotFound(f"no console file {name}")
    node = STATIC.joinpath(*parts)
    if not node.is_file():
        raise NotFound(f"no console file {name}")
    kind = "text/javascript" if name.endswith(".js") else mimetypes.guess_type(name)[0]
    headers = {
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
        "style-src 'self'; script-src 'self'; frame-ancestors 'none'",
        "X-Frame-Options": "DENY",
    }
    return FileResponse(str(node), media_type=kind or "application/octet-stream", headers=headers)


LINEAGE_URL = "/v1/lineage"  # file-level lineage (tusk/server/pfs_routes.py)


@router.get("/console/api/session")
def session(request: Request) -> JSONResponse:
    """Whether a login is needed and done; gives the browser its CSRF cookie."""
    token = eng(request).settings.auth_token
    jar = auth.cookies(request.headers.get("cookie", "").encode("latin-1"))
    signed_in = token is None or auth.session_ok(jar, token)
    answer = JSONResponse({"auth_required": token is not None, "signed_in": signed_in,
                           "lineage_url": LINEAGE_URL if signed_in else None})  # fmt: skip
    if auth.CSRF_COOKIE not in jar:
        answer.set_cookie(auth.CSRF_COOKIE, auth.new_csrf(), samesite="strict", path="/")
    return answer


class Login(BaseModel):
    token: str


@router.post("/console/api/login")
def login(body: Login, request: Request) -> JSONResponse:
    token = eng(request).settings.auth_token
    if token is None:
        return JSONResponse({"signed_in": True})
    if not hmac.compare_digest(body.token.encode(), token.encode()):
        raise Unauthenticated("wrong auth token", hint="give the server's TUSK_AUTH_TOKEN")
    answer = JSONResponse({"signed_in": True})
    answer.set_cookie(auth.SESSION_COOKIE, auth.session_value(token), httponly=True,
                      samesite="strict", path="/")  # fmt: skip
    return answer


@router.post("/console/api/logout")
def logout() -> JSONResponse:
    answer = JSONResponse({"signed_in": False})
    answer.delete_cookie(auth.SESSION_COOKIE, path="/")
    return answer


# -- the DAG -------------------------------------------------------------------------------------
@router.get("/console/api/dag")
def dag(request: Request) -> dict[str, Any]:
    """Repos and pipelines with their states and last jobs, placed by grandalf."""
    e = eng(request)
    pipelines = {p.name: p for p in e.pipelines.list()}
    repos = [r for r in e.repos.list() if r.name not in pipelines]
    edges: list[tuple[str, str]] = []
    last: dict[str, JobInfo | None] = {}
    for name, p in pipelines.items():
        branch = str(p.spec.get("output_branch") or "master")
        try:
            info = e.commits.inspect_branch(name, branch)
            edges.extend((b.repo, name) for b in info.provenance if b.repo != SPEC_REPO)
        except TuskError:
            pass
        jobs = e.jobs.list(name, limit=1)
        last[name] = jobs[0] if jobs else None
    # room for the line under a pipeline's name: "running · job success 10000/10000"
    labels = {name: "x" * 30 for name in pipelines}
    placed = layout([r.name for r in repos] + list(pipelines), sorted(set(edges)), labels)
    nodes = []
    for n in placed.nodes:
        box = {"id": n.id, "x": n.x, "y": n.y, "w": n.w, "h": n.h}
        if n.id in pipelines:
            p, j = pipelines[n.id], last[n.id]
            box |= {"kind": "pipeline", "state": p.state.value, "stopped": p.stopped,
                    "last_job": {"id": j.id, "state": j.state.value, "processed": j.processed,
                                 "skipped": j.skipped, "failed": j.failed, "total": j.total}
                    if j else None}  # fmt: skip
        else:
            r = next(r for r in repos if r.name == n.id)
            box |= {"kind": "repo", "size_bytes": r.size_bytes, "state": "repo"}
        nodes.append(box)
    return {
        "nodes": nodes,
        "edges": [
            {"source": r.source, "target": r.target, "points": r.points} for r in placed.edges
        ],  # fmt: skip
        "width": placed.width,
        "height": placed.height,
    }


# -- repos, commits, files -----------------------------------------------------------------------
@router.get("/console/api/repos")
def repos(request: Request, limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
    items = eng(request).repos.list()
    return page(items[offset : offset + limit], len(items), limit, offset)


@router.get("/console/api/repos/{repo}")
def repo(repo: str, request: Request) -> dict[str, Any]:
    e = eng(request)
    info = e.repos.inspect(repo)
    branches = e.commits.list_branches(repo)
    pipeline = None
    with contextlib.suppress(TuskError):
        pipeline = e.pipelines.inspect(repo).name
    return {"repo": _jsonable(info), "branches": [_jsonable(b) for b in branches[:MAX_LIMIT]],
            "pipeline": pipeline}  # fmt: skip


@router.get("/console/api/repos/{repo}/commits")
def commits(
    repo: str, request: Request, branch: str | None = None, limit: Limit = 50, offset: Offset = 0
) -> dict[str, Any]:
    rows = eng(request).commits.list(repo, to=branch or None, number=offset + limit + 1)
    more = len(rows) > offset + limit
    out = page(rows[offset : offset + limit], offset + len(rows[offset : offset + limit]),
               limit, offset)  # fmt: skip
    out["more"] = more
    return out


@router.get("/console/api/repos/{repo}/commits/{ref}")
def commit(repo: str, ref: str, request: Request) -> dict[str, Any]:
    info = eng(request).commits.inspect(repo, ref)
    return {"commit": _jsonable(info)}


@router.get("/console/api/repos/{repo}/files")
def file_list(
    repo: str, ref: str, request: Request, path: str = "/", limit: Limit = 200, offset: Offset = 0
) -> dict[str, Any]:
    items, more = eng(request).files.list_page(repo, ref, path, offset, limit)
    out = page(items, offset + len(items), limit, offset)
    out["more"] = more
    return out


@router.get("/console/api/repos/{repo}/preview")
def preview(repo: str, ref: str, path: str, request: Request) -> dict[str, Any]:
    """The start of a file, shaped by its kind: text, a table (CSV/TSV), pretty JSON, an image
    (shown from the raw route) or, for anything else, nothing but a download."""
    e = eng(request)
    info = e.files.inspect(repo, ref, path)
    if info.type != "file":
        raise InvalidArgument(f"{path} is a directory", hint="open it to list its files")
    out: dict[str, Any] = {"path": info.path, "size_bytes": info.size_bytes, "hash": info.hash}
    suffix = PurePosixPath(info.path).suffix.lower()
    if suffix in IMAGE_TYPES:
        return out | {"kind": "image"}
    data = b"".join(e.files.get(repo, ref, path, 0, PREVIEW_BYTES + 1))
    truncated = len(data) > PREVIEW_BYTES
    data = data[:PREVIEW_BYTES]
    if b"\0" in data:
        return out | {"kind": "binary"}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        if not truncated or err.start < len(data) - 4:
            return out | {"kind": "binary"}
        text = data[: err.start].decode("utf-8")
    out["truncated"] = truncated
    if suffix in (".csv", ".tsv"):
        reader = csv.reader(io.StringIO(text), delimiter="\t" if suffix == ".tsv" else ",")
        rows: list[list[str]] = []
        for row in reader:
            if len(rows) >= PREVIEW_ROWS:
                out["truncated"] = True
                break
            rows.append(row)
        return out | {"kind": "table", "rows": rows}
    if suffix == ".json" and not truncated:
        try:
            return out | {"kind": "json", "text": json.dumps(json.loads(text), indent=2)}
        except ValueError:
            pass
    return out | {"kind": "text", "text": text}


@router.get("/console/api/repos/{repo}/raw")
def raw(repo: str, ref: str, path: str, request: Request) -> Response:
    """A file's bytes: an image inline, anything else as a download (see RAW_HEADERS)."""
    e = eng(request)
    info = e.files.inspect(repo, ref, path)
    if info.type != "file":
        raise InvalidArgument(f"{path} is a directory", hint="download its files one by one")
    name = PurePosixPath(info.path).name
    kind = IMAGE_TYPES.get(PurePosixPath(name).suffix.lower())
    headers = dict(RAW_HEADERS)
    if kind is None:
        quoted = name.replace('"', "").replace("\\", "")
        headers["Content-Disposition"] = f'attachment; filename="{quoted}"'
    return StreamingResponse(e.files.get(repo, ref, path), media_type=kind or
                             "application/octet-stream", headers=headers)  # fmt: skip


@router.get("/console/api/repos/{repo}/diff")
def diff(
    repo: str,
    ref: str,
    request: Request,
    old: str | None = None,
    limit: Limit = 200,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Files added, removed and changed from ``old`` (default: the parent) to ``ref``."""
    result = eng(request).files.diff(repo, ref, "/", None, old or None, None, False)
    new = {f.path: f for f in result.new_files if f.type == "file"}
    before = {f.path: f for f in result.old_files if f.type == "file"}
    rows = []
    for p in sorted(new.keys() | before.keys()):
        a, b = before.get(p), new.get(p)
        change = "added" if a is None else "removed" if b is None else "changed"
        rows.append({"path": p, "change": change, "old_size": a.size_bytes if a else None,
                     "new_size": b.size_bytes if b else None})  # fmt: skip
    return page(rows[offset : offset + limit], len(rows), limit, offset)


# -- commit sets (global IDs) --------------------------------------------------------------------
@router.get("/console/api/commitsets/{commit_id}")
def wave(commit_id: str, request: Request) -> dict[str, Any]:
    """Everything one change made: every commit with this global ID (inputs, spec versions,
    outputs), its provenance, and the jobs of that ID."""
    e = eng(request)
    commits: list[CommitInfo] = e.commits.with_id(commit_id)
    if not commits:
        raise NotFound(f"no commit has the global ID {commit_id}")
    seen = {(c.commit.repo, c.commit.id) for c in commits}
    provenance: list[dict[str, Any]] = []
    for c in commits:
        for p in c.provenance:
            key = (p.commit.repo, p.commit.id)
            if key not in seen:
                seen.add(key)
                provenance.append({"repo": p.commit.repo, "id": p.commit.id, "branch": p.branch,
                                   "spec": p.commit.repo == SPEC_REPO})  # fmt: skip
    jobs = [j for j in (_job_or_none(e, commit_id, c.commit.repo) for c in commits) if j]
    return {
        "id": commit_id,
        "commits": [_jsonable(c) for c in commits[:MAX_LIMIT]],
        "provenance": provenance[:MAX_LIMIT],
        "jobs": [_jsonable(j) for j in jobs[:MAX_LIMIT]],
    }


def _job_or_none(e: Engine, job_id: str, pipeline: str) -> JobInfo | None:
    try:
        return e.jobs.inspect(job_id, pipeline)
    except TuskError:
        return None


# -- pipelines -----------------------------------------------------------------------------------
@router.get("/console/api/pipelines")
def pipelines(request: Request, limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
    items = eng(request).pipelines.list()
    return page(items[offset : offset + limit], len(items), limit, offset)


@router.get("/console/api/pipelines/{name}")
def pipeline(name: str, request: Request) -> dict[str, Any]:
    """A pipeline: its state, spec (as written), newest versions with what each changed, and
    its workers."""
    e = eng(request)
    info = e.pipelines.inspect(name)
    spec_commits = e.commits.list(SPEC_REPO, to=name, number=VERSIONS + 1)
    docs = [_spec_doc(e, c.commit.id) for c in spec_commits]
    versions = []
    for i, c in enumerate(spec_commits[:VERSIONS]):
        older = docs[i + 1] if i + 1 < len(docs) else None
        versions.append({
            "version": info.version - i,
            "spec_commit": c.commit.id,
            "created": c.started.isoformat(),
            "changes": spec_changes(older, docs[i]) if older is not None else ["created"],
        })  # fmt: skip
    workers = e.jobs.workers(name)
    return {
        "pipeline": _jsonable(info),
        "raw_spec": json.dumps(e.pipelines.extract(name).root, indent=2),
        "versions": versions,
        "workers": [_jsonable(w) for w in workers[:MAX_LIMIT]],
    }


def _spec_doc(e: Engine, spec_commit: str) -> dict[str, Any]:
    try:
        doc = json.loads(b"".join(e.files.get(SPEC_REPO, spec_commit, "/spec")))
    except (TuskError, ValueError):
        return {}
    spec = doc.get("spec", {}) if isinstance(doc, dict) else {}
    return spec if isinstance(spec, dict) else {}


def spec_changes(old: Any, new: Any, where: str = "") -> list[str]:
    """The fields that differ between two spec documents, as ``a.b[2].c: old → new`` lines."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(old.keys() | new.keys(), key=str):
            path = f"{where}.{k}" if where else str(k)
            if k not in old:
                out.append(f"{path}: added {_short(new[k])}")
            elif k not in new:
                out.append(f"{path}: removed")
            else:
                out.extend(spec_changes(old[k], new[k], path))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [c for i, (a, b) in enumerate(zip(old, new, strict=True))
                for c in spec_changes(a, b, f"{where}[{i}]")]  # fmt: skip
    if old != new:
        return [f"{where or 'spec'}: {_short(old)} → {_short(new)}"]
    return []


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


class SpecBody(BaseModel):
    spec: str
    update: bool = False
    reprocess: bool = False


@router.post("/console/api/pipelines")
def create_pipeline(body: SpecBody, request: Request) -> dict[str, Any]:
    e = eng(request)
    specs = parse_specs(body.spec, "console")
    made = [e.pipelines.create(s, update=body.update, reprocess=body.reprocess) for s in specs]
    return {"items": [_jsonable(p) for p in made]}


@router.post("/console/api/pipelines/{name}/stop")
def stop_pipeline(name: str, request: Request) -> dict[str, Any]:
    return {"pipeline": _jsonable(eng(request).pipelines.set_stopped(name, True))}


@router.post("/console/api/pipelines/{name}/start")
def start_pipeline(name: str, request: Request) -> dict[str, Any]:
    return {"pipeline": _jsonable(eng(request).pipelines.set_stopped(name, False))}


# -- jobs, datums, logs --------------------------------------------------------------------------
@router.get("/console/api/jobs")
def jobs(
    request: Request, pipeline: str | None = None, limit: Limit = 50, offset: Offset = 0
) -> dict[str, Any]:
    e = eng(request)
    rows = e.jobs.list(pipeline or None, limit=offset + limit + 1)
    shown = rows[offset : offset + limit]
    out = page(shown, offset + len(shown), limit, offset)
    out["more"] = len(rows) > offset + limit
    return out


@router.get("/console/api/jobs/{pipeline}/{job_id}")
def job(pipeline: str, job_id: str, request: Request) -> dict[str, Any]:
    return {"job": _jsonable(eng(request).jobs.inspect(job_id, pipeline))}


@router.get("/console/api/jobs/{pipeline}/{job_id}/datums")
def datums(
    pipeline: str,
    job_id: str,
    request: Request,
    state: DatumState | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """A page of a job's datums (failed first), optionally of one state, with the counts of
    each state."""
    items, total, counts = eng(request).jobs.datums_page(job_id, pipeline, state, offset, limit)
    out = page(items, total, limit, offset)
    out["counts"] = counts
    return out


@router.get("/console/api/jobs/{pipeline}/{job_id}/datums/{datum_id}")
def datum(pipeline: str, job_id: str, datum_id: str, request: Request) -> dict[str, Any]:
    return {"datum": _jsonable(eng(request).jobs.datum(job_id, datum_id, pipeline))}


@router.get("/console/api/logs")
def logs(
    request: Request,
    pipeline: str,
    job: str | None = None,
    datum: str | None = None,
    after: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=LOG_PAGE)] = LOG_PAGE,
) -> dict[str, Any]:
    """Log lines after the cursor ``after`` (a line's ``pk``), oldest first; the answer's
    ``after`` is the cursor of the next call (follow a log by calling again)."""
    lines = eng(request).jobs.logs(pipeline, job or None, datum or None, False, after,
                                   limit=limit + 1)  # fmt: skip
    shown = lines[:limit]
    return {"lines": [_jsonable(x) for x in shown], "after": shown[-1].pk if shown else after,
            "more": len(lines) > limit}  # fmt: skip


@router.post("/console/api/jobs/{pipeline}/{job_id}/stop")
def stop_job(pipeline: str, job_id: str, request: Request) -> dict[str, Any]:
    e = eng(request)
    e.jobs.stop(job_id, pipeline)
    return {"job": _jsonable(e.jobs.inspect(job_id, pipeline))}


class RestartDatum(BaseModel):
    datum_id: str


@router.post("/console/api/jobs/{pipeline}/{job_id}/restart-datum")
def restart_datum(
    pipeline: str, job_id: str, body: RestartDatum, request: Request
) -> dict[str, Any]:
    """restart-datum of one datum: its input files are the filter, as on the command line."""
    e = eng(request)
    d = e.jobs.datum(job_id, body.datum_id, pipeline)
    filters = [i.path for i in d.inputs]
    return {"restarted": e.jobs.restart_datums(job_id, filters, pipeline)}


# -- repos: actions ------------------------------------------------------------------------------
class NewRepo(BaseModel):
    name: str
    description: str = ""


@router.post("/console/api/repos")
def create_repo(body: NewRepo, request: Request) -> dict[str, Any]:
    return {"repo": _jsonable(eng(request).repos.create(body.name, body.description))}


@router.post("/console/api/repos/{repo}/upload")
async def upload(repo: str, branch: str, path: str, request: Request) -> dict[str, Any]:
    """put-file of the request's body (application/octet-stream) at ``path`` on ``branch``,
    replacing a file that is there (``put-file -o``)."""
    e = eng(request)
    batch = await anyio.to_thread.run_sync(e.files.open_put, repo, branch)
    await anyio.to_thread.run_sync(lambda: batch.begin_file(path, overwrite=True))
    async for chunk in request.stream():
        if chunk:
            await anyio.to_thread.run_sync(batch.write, chunk)
    await anyio.to_thread.run_sync(batch.end_file)
    result = await anyio.to_thread.run_sync(batch.commit, "uploaded from the console")
    return {"result": _jsonable(result)}
