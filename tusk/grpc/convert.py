"""tusk's wire models as Pachyderm 2.x messages, and Pachyderm's references as tusk's."""

from __future__ import annotations

from datetime import datetime

from pachyderm_sdk.api import pfs

from tusk.api import models
from tusk.api.origins import origin_2x
from tusk.api.projects import DEFAULT_PROJECT, qualify, split
from tusk.errors import InvalidArgument, NotFound


def project_name(project: pfs.Project | None) -> str:
    """The name a Pachyderm ``Project`` gives (an unset project means ``default``)."""
    name = project.name if project is not None else ""
    return name or DEFAULT_PROJECT


def project(name: str = DEFAULT_PROJECT) -> pfs.Project:
    return pfs.Project(name=name)


def repo_name(repo: pfs.Repo | None) -> str:
    """The stored key of the repo a Pachyderm ``Repo`` names (``<project>/<name>`` outside
    ``default``; user repos only)."""
    if repo is None or not repo.name:
        raise InvalidArgument("a repo is required", hint="name the repo, e.g. images")
    proj = project_name(repo.project)
    if repo.type not in ("", "user"):
        raise NotFound(
            f"repo {proj}/{repo.name}.{repo.type} not found",
            hint="this server keeps user repos only (spec and meta repos are internal)",
        )
    return qualify(proj, repo.name)


def commit_ref(commit: pfs.Commit | None) -> tuple[str, str]:
    """(repo, ref) of a Pachyderm ``Commit``: its id (a global id, or ``master^``-style
    ancestry) or else its branch's name."""
    if commit is None:
        raise InvalidArgument("a commit is required", hint="give a commit as repo@branch or id")
    branch = commit.branch.name if commit.branch else ""
    repo = commit.repo if commit.repo and commit.repo.name else None
    if repo is None and commit.branch:
        repo = commit.branch.repo
    name = repo_name(repo)
    ref = commit.id
    if ref and ref[0] in "^~" and branch:
        ref = branch + ref
    ref = ref or branch
    if not ref:
        raise InvalidArgument(
            f"a commit of repo {name} needs a branch or an id", hint="e.g. images@master"
        )
    return name, ref


def branch_ref(branch: pfs.Branch | None) -> tuple[str, str]:
    if branch is None or not branch.name:
        raise InvalidArgument("a branch is required", hint="e.g. images@master")
    return repo_name(branch.repo), branch.name


def repo_msg(key: str, kind: str = "user") -> pfs.Repo:
    proj, name = split(key)
    return pfs.Repo(name=name, type="spec" if kind == "spec" else "user", project=project(proj))


def branch_msg(repo: str, name: str) -> pfs.Branch:
    return pfs.Branch(repo=repo_msg(repo), name=name)


def commit_msg(repo: str, commit_id: str, branch: str | None = None) -> pfs.Commit:
    return pfs.Commit(
        repo=repo_msg(repo),
        id=commit_id,
        branch=branch_msg(repo, branch) if branch else None,
    )


def repo_info(info: models.RepoInfo) -> pfs.RepoInfo:
    return pfs.RepoInfo(
        repo=repo_msg(info.name, info.kind),
        created=info.created,
        size_bytes_upper_bound=info.size_bytes,
        description=info.description,
        branches=[branch_msg(info.name, b) for b in info.branches],
        details=pfs.RepoInfoDetails(size_bytes=info.size_bytes),
    )


def commit_info(info: models.CommitInfo) -> pfs.CommitInfo:
    repo = info.commit.repo
    finished: datetime | None = info.finished
    return pfs.CommitInfo(
        commit=commit_msg(repo, info.commit.id, info.branch),
        origin=pfs.CommitOrigin(
            kind=pfs.OriginKind.USER
            if origin_2x(info.origin, bool(info.provenance)) == "USER"
            else pfs.OriginKind.AUTO
        ),
        description=info.description,
        parent_commit=commit_msg(repo, info.parent) if info.parent else None,
        child_commits=[commit_msg(repo, c) for c in info.children],
        started=info.started,
        finishing=finished,
        finished=finished,
        direct_provenance=[
            commit_msg(p.commit.repo, p.commit.id, p.branch) for p in info.provenance
        ],
        direct_subvenance=[commit_msg(s.repo, s.id) for s in info.subvenance],
        error=info.reason if info.failed else "",
        size_bytes_upper_bound=info.size_bytes,
        details=pfs.CommitInfoDetails(size_bytes=info.size_bytes),
        created_at=info.started,
    )


def branch_info(info: models.BranchInfo) -> pfs.BranchInfo:
    repo = info.branch.repo
    return pfs.BranchInfo(
        branch=branch_msg(repo, info.branch.name),
        head=commit_msg(repo, info.head, info.branch.name) if info.head else None,
        provenance=[branch_msg(b.repo, b.name) for b in info.provenance],
        direct_provenance=[branch_msg(b.repo, b.name) for b in info.provenance],
        subvenance=[branch_msg(b.repo, b.name) for b in info.subvenance],
        created_at=info.created,
    )


def file_hash(text: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        return text.encode()


def file_info(info: models.FileInfo, commit: pfs.Commit) -> pfs.FileInfo:
    path = info.path if info.type == "file" or info.path.endswith("/") else info.path + "/"
    return pfs.FileInfo(
        file=pfs.File(commit=commit, path=path),
        file_type=pfs.FileType.FILE if info.type == "file" else pfs.FileType.DIR,
        size_bytes=info.size_bytes,
        hash=file_hash(info.hash),
    )


def file_info_of(repo: str, commit: str, path: str, size: int, hash_: str) -> pfs.FileInfo:
    """A datum's input file as a Pachyderm ``FileInfo``."""
    return pfs.FileInfo(
        file=pfs.File(commit=commit_msg(repo, commit), path=path),
        file_type=pfs.FileType.FILE,
        size_bytes=size,
        hash=file_hash(hash_),
    )
