"""``pfs_v2.API``: projects, repos, commits and commit sets, branches and files."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import grpc
from betterproto.lib.google.protobuf import Empty
from pachyderm_sdk.api import pfs

from tusk.api.models import FileInfo, ProjectInfo
from tusk.api.projects import split
from tusk.errors import InvalidArgument, NotFound
from tusk.grpc import convert as cv
from tusk.grpc.base import Service, Unimplemented
from tusk.grpc.files import Modify, Prefetch, RawBytes, chunks, file_ref, tar_stream
from tusk.grpc.wire import parse_modify_file
from tusk.runtime import Engine

WAIT_POLL = 0.5  # seconds between checks of a waiting call's cancellation


def build(engine: Engine, token: str | None) -> Service:
    svc = Service("pfs_v2.API", token)
    e = engine

    # -- projects ---------------------------------------------------------------------------
    def project_info(info: ProjectInfo) -> pfs.ProjectInfo:
        return pfs.ProjectInfo(
            project=cv.project(info.name), description=info.description, created_at=info.created
        )

    @svc.unary("InspectProject", pfs.InspectProjectRequest)
    def inspect_project(req: pfs.InspectProjectRequest, _ctx: Any) -> pfs.ProjectInfo:
        return project_info(e.projects.inspect(cv.project_name(req.project)))

    @svc.unary("InspectProjectV2", pfs.InspectProjectV2Request)
    def inspect_project_v2(req: pfs.InspectProjectV2Request, _ctx: Any) -> Any:
        info = project_info(e.projects.inspect(cv.project_name(req.project)))
        return pfs.InspectProjectV2Response(info=info, defaults_json="{}")

    @svc.stream("ListProject", pfs.ListProjectRequest)
    def list_project(_req: pfs.ListProjectRequest, _ctx: Any) -> Iterator[pfs.ProjectInfo]:
        for info in e.projects.list():
            yield project_info(info)

    @svc.unary("CreateProject", pfs.CreateProjectRequest)
    def create_project(req: pfs.CreateProjectRequest, _ctx: Any) -> Empty:
        if req.project is None or not req.project.name:
            raise InvalidArgument("a project name is required", hint="e.g. Project(name='lab')")
        e.projects.create(req.project.name, req.description, update=req.update)
        return Empty()

    @svc.unary("DeleteProject", pfs.DeleteProjectRequest)
    def delete_project(req: pfs.DeleteProjectRequest, _ctx: Any) -> Empty:
        e.projects.delete(cv.project_name(req.project), force=req.force)
        return Empty()

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
        if req.type not in ("", "user", "all"):
            return
        names = {cv.project_name(p) for p in req.projects}
        for info in e.repos.list():
            if not names or split(info.name)[0] in names:
                yield cv.repo_info(info)

    @svc.unary("ReposSummary", pfs.ReposSummaryRequest)
    def repos_summary(req: pfs.ReposSummaryRequest, _ctx: Any) -> pfs.ReposSummaryResponse:
        wanted = [p.name for p in req.projects if p.name] or [p.name for p in e.projects.list()]
        out = []
        for project in wanted:
            repos = [r for r in e.repos.list(project=project) if r.kind in ("user", "output")]
            out.append(
                pfs.ReposSummary(
                    project=cv.project(project),
                    user_repo_count=len(repos),
                    size_bytes=sum(r.size_bytes for r in repos),
                )
            )
        return pfs.ReposSummaryResponse(summaries=out)

    @svc.unary("DeleteRepo", pfs.DeleteRepoRequest)
    def delete_repo(req: pfs.DeleteRepoRequest, _ctx: Any) -> pfs.DeleteRepoResponse:
        e.repos.delete(cv.repo_name(req.repo), force=req.force)
        return pfs.DeleteRepoResponse(deleted=True)

    @svc.unary("DeleteRepos", pfs.DeleteReposRequest)
    def delete_repos(req: pfs.DeleteReposRequest, _ctx: Any) -> pfs.DeleteReposResponse:
        names: list[str] = []
        if req.all or not req.projects:  # no project named: all (as pre-project clients mean)
            names = e.repos.delete(None, all=True, force=req.force)
        for p in req.projects if not req.all else []:
            names += e.repos.delete(None, all=True, force=req.force, project=cv.project_name(p))
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

    @svc.unary("ClearCommit", pfs.ClearCommitRequest)
    def clear_commit(req: pfs.ClearCommitRequest, _ctx: Any) -> Empty:
        e.files.clear(*cv.commit_ref(req.commit))
        return Empty()

    @svc.stream("FindCommits", pfs.FindCommitsRequest)
    def find_commits(req: pfs.FindCommitsRequest, ctx: Any) -> Iterator[pfs.FindCommitsResponse]:
        # the commits that changed a path, newest first from ``start``, at most ``limit`` (0:
        # all); the last answer names the last commit searched and how many were
        repo, ref = cv.commit_ref(req.start)
        searched, found, last = 0, 0, ""
        for cid, changed in e.files.changes(repo, ref, req.file_path or "/"):
            if not ctx.is_active():
                return
            searched, last = searched + 1, cid
            if changed:
                found += 1
                yield pfs.FindCommitsResponse(found_commit=cv.commit_msg(repo, cid))
                if req.limit and found >= req.limit:
                    break
        yield pfs.FindCommitsResponse(
            last_searched_commit=cv.commit_msg(repo, last), commits_searched=searched
        )

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
        sets: dict[str, list[Any]] = {}
        for repo in e.repos.list(project=cv.project_name(req.project)):
            for info in e.commits.list(repo.name):
                sets.setdefault(info.commit.id, []).append(info)
        ordered = sorted(sets.items(), key=lambda kv: min(i.started for i in kv[1]), reverse=True)
        for cid, infos in ordered:
            yield pfs.CommitSetInfo(
                commit_set=pfs.CommitSet(id=cid), commits=[cv.commit_info(i) for i in infos]
            )

    # -- branches ---------------------------------------------------------------------------
    @svc.unary("SquashCommitSet", pfs.SquashCommitSetRequest)
    def squash_commit_set(req: pfs.SquashCommitSetRequest, _ctx: Any) -> Empty:
        e.commits.squash(_commit_set_id(req.commit_set))
        return Empty()

    @svc.unary("DropCommitSet", pfs.DropCommitSetRequest)
    def drop_commit_set(req: pfs.DropCommitSetRequest, _ctx: Any) -> Empty:
        e.drop_commit_set(_commit_set_id(req.commit_set))
        return Empty()

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
        with Prefetch(reqs) as ahead:
            Modify(e).run(iter(ahead))
        return Empty()

    @svc.stream("GetFile", pfs.GetFileRequest)
    def get_file(req: pfs.GetFileRequest, _ctx: Any) -> Iterator[RawBytes]:
        repo, ref, path = file_ref(req.file)
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
        yield from chunks(e.files.get(repo, ref, path, req.offset, headers=False))

    @svc.stream("GetFileTAR", pfs.GetFileRequest)
    def get_file_tar(req: pfs.GetFileRequest, _ctx: Any) -> Iterator[RawBytes]:
        repo, ref, path = file_ref(req.file)
        if _has_glob(path):
            infos = e.files.glob(repo, ref, path)
        else:
            top = e.files.inspect(repo, ref, path)
            infos = [top] if top.type == "file" else e.files.walk(repo, ref, path)
        yield from chunks(tar_stream(e, repo, ref, infos))

    @svc.unary("InspectFile", pfs.InspectFileRequest)
    def inspect_file(req: pfs.InspectFileRequest, _ctx: Any) -> pfs.FileInfo:
        repo, ref, path = file_ref(req.file)
        return cv.file_info(e.files.inspect(repo, ref, path), req.file.commit)

    @svc.stream("ListFile", pfs.ListFileRequest)
    def list_file(req: pfs.ListFileRequest, _ctx: Any) -> Iterator[pfs.FileInfo]:
        repo, ref, path = file_ref(req.file)
        infos = e.files.list(repo, ref, path)
        yield from _page(infos, req.file.commit, req.pagination_marker, req.number, req.reverse)

    @svc.stream("WalkFile", pfs.WalkFileRequest)
    def walk_file(req: pfs.WalkFileRequest, _ctx: Any) -> Iterator[pfs.FileInfo]:
        repo, ref, path = file_ref(req.file)
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
        repo, ref, path = file_ref(req.new_file)
        old_repo = old_ref = old_path = None
        if req.old_file and req.old_file.commit:
            old_repo, old_ref, old_path = file_ref(req.old_file)
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


def _commit_set_id(commit_set: pfs.CommitSet | None) -> str:
    if commit_set is None or not commit_set.id:
        raise InvalidArgument("a commit set id is required", hint="e.g. CommitSet(id=...)")
    return commit_set.id


def _set(commit: pfs.Commit) -> bool:
    return bool(commit.id or (commit.branch and commit.branch.name))


def _has_glob(path: str) -> bool:
    return any(c in path for c in "*?[")


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
