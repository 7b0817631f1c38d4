"""Repos: create, update, inspect, list, delete."""

from __future__ import annotations

import builtins

from tusk.api.models import RepoInfo
from tusk.api.projects import split
from tusk.errors import HasDependents, InvalidArgument, NotFound
from tusk.meta import RepoRow, Tx
from tusk.pfs.context import SPEC_REPO, PfsContext, to_datetime
from tusk.pfs.paths import validate_repo_name
from tusk.pfs.projects import in_project, require_project


def repo_not_found(name: str) -> NotFound:
    """The error for a repo that does not exist."""
    return NotFound(f"repo {name} not found", hint="list repos with `tusk list-repo`", repo=name)


def require_repo(tx: Tx, name: str) -> RepoRow:
    """The repo row of ``name``, or NotFound."""
    row = tx.get_repo(name)
    if row is None:
        require_project(tx, split(name)[0])  # a missing project is named as such
        raise repo_not_found(name)
    return row


class RepoService:
    """Repos: create, update, inspect, list, delete."""

    def __init__(self, ctx: PfsContext) -> None:
        self.ctx = ctx

    def create(self, name: str, description: str = "", *, kind: str = "user") -> RepoInfo:
        """Create a repo."""
        project, bare = split(name)
        if name != SPEC_REPO:
            validate_repo_name(bare)
        with self.ctx.meta.transaction() as tx:
            require_project(tx, project)
            tx.insert_repo(RepoRow(name, self.ctx.clock(), description, 0, kind))
            return self._info(tx, require_repo(tx, name))

    def ensure(self, name: str, *, kind: str) -> None:
        """Create a repo of ``kind`` unless it exists; an existing one takes any ``kind`` but user."""
        with self.ctx.meta.transaction() as tx:
            require_project(tx, split(name)[0])
            row = tx.get_repo(name)
            if row is None:
                tx.insert_repo(RepoRow(name, self.ctx.clock(), "", 0, kind))
            elif row.kind != kind and kind != "user":
                tx.update_repo(name, kind=kind)

    def update(self, name: str, description: str) -> RepoInfo:
        """Change a repo's description."""
        with self.ctx.meta.transaction() as tx:
            require_repo(tx, name)
            tx.update_repo(name, description=description)
            return self._info(tx, require_repo(tx, name))

    def inspect(self, name: str) -> RepoInfo:
        """One repo, with its size and branches."""
        with self.ctx.meta.transaction(write=False) as tx:
            return self._info(tx, require_repo(tx, name))

    def list(
        self, include_hidden: bool = False, *, project: str | None = None
    ) -> builtins.list[RepoInfo]:
        """Every repo of ``project`` (None: of every project; the hidden spec repo only with
        ``include_hidden``)."""
        with self.ctx.meta.transaction(write=False) as tx:
            if project is not None:
                require_project(tx, project)
            return [
                self._info(tx, r)
                for r in tx.list_repos()
                if (include_hidden or r.name != SPEC_REPO)
                and (project is None or in_project(r.name, project))
            ]

    def delete(
        self,
        name: str | None,
        *,
        all: bool = False,
        force: bool = False,
        project: str | None = None,
    ) -> builtins.list[str]:
        """Delete one repo (one that pipelines read only with ``force``), or all of them (of
        ``project``, or of every project when it is None)."""
        if bool(name) == bool(all):
            raise InvalidArgument(
                "either a repo name or the --all flag needs to be provided",
                hint="tusk delete-repo <repo>  or  tusk delete-repo --all",
            )
        with self.ctx.meta.transaction() as tx:
            names = (
                [
                    r.name
                    for r in tx.list_repos()
                    if r.name != SPEC_REPO and (project is None or in_project(r.name, project))
                ]
                if all
                else [require_repo(tx, name or "").name]
            )
            if not force and not all:
                for n in names:
                    self._check_no_subvenance(tx, n, names)
            for n in names:
                tx.delete_repo(n)
        for n in names:
            self.ctx.feed.publish("delete", n, "")
        return names

    def _check_no_subvenance(self, tx: Tx, repo: str, deleting: builtins.list[str]) -> None:
        for b in tx.list_branches(repo):
            sub = [f"{r}/{br}" for r, br in tx.branch_subvenance(repo, b.name) if r not in deleting]
            if sub:
                raise HasDependents(
                    f"branch {b.name} has [{' '.join(sub)}] as subvenance, deleting it would "
                    "break those branches",
                    hint="delete the pipelines that read it first, or pass --force",
                )

    def _info(self, tx: Tx, row: RepoRow) -> RepoInfo:
        created = to_datetime(row.created)
        assert created is not None
        return RepoInfo(
            name=row.name,
            created=created,
            size_bytes=row.size_bytes,
            description=row.description,
            branches=[b.name for b in tx.list_branches(row.name)],
            kind=row.kind,
        )
