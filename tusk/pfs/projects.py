"""Projects (Pachyderm 2.x): namespaces of repos and pipelines.

``default`` always exists and has no row; every other project is a row of ``projects``. A repo or
pipeline of project P is stored under the key ``P/<name>`` (tusk/api/projects.py).
"""

from __future__ import annotations

import builtins
from datetime import datetime

from tusk.api.models import ProjectInfo
from tusk.api.projects import DEFAULT_PROJECT, split
from tusk.errors import AlreadyExists, HasDependents, InvalidArgument, InvalidName, NotFound
from tusk.meta import ProjectRow, Tx
from tusk.pfs.context import SPEC_REPO, PfsContext, to_datetime
from tusk.pfs.paths import _NAME, MAX_NAME


def validate_project_name(name: str) -> str:
    """``name`` if it is a valid project name, else InvalidName."""
    if not name or len(name) > MAX_NAME or not _NAME.match(name):
        raise InvalidName(
            f"project name ({name[:MAX_NAME]}) invalid: only alphanumeric characters, "
            f"underscores, and dashes are allowed, at most {MAX_NAME} characters",
            hint="name the project using only a-z, A-Z, 0-9, _ and -",
            name=name[:200],
        )
    return name


def project_not_found(name: str) -> NotFound:
    return NotFound(
        f'project "{name}" not found',
        hint="list projects with `tusk list-project`, or create it with `tusk create-project`",
        project=name,
    )


def require_project(tx: Tx, name: str) -> None:
    """NotFound unless project ``name`` exists (``default`` always does)."""
    if name != DEFAULT_PROJECT and tx.get_project(name) is None:
        raise project_not_found(name)


def in_project(key: str, project: str) -> bool:
    """Whether the stored key of a repo or pipeline belongs to ``project``."""
    return split(key)[0] == project


class ProjectService:
    """Create, inspect, list, update and delete projects."""

    def __init__(self, ctx: PfsContext) -> None:
        self.ctx = ctx

    def create(self, name: str, description: str = "", *, update: bool = False) -> ProjectInfo:
        validate_project_name(name)
        with self.ctx.meta.transaction() as tx:
            if name == DEFAULT_PROJECT:
                if not update:
                    raise AlreadyExists(f"project {name} already exists", project=name)
                raise InvalidArgument(
                    f"the {DEFAULT_PROJECT} project cannot be changed",
                    hint="create a project of your own with `tusk create-project <name>`",
                )
            if update and tx.get_project(name) is not None:
                tx.update_project(name, description)
            else:
                tx.insert_project(ProjectRow(name, self.ctx.clock(), description))
            return self._info(tx, name)

    def inspect(self, name: str) -> ProjectInfo:
        with self.ctx.meta.transaction(write=False) as tx:
            return self._info(tx, name)

    def list(self) -> builtins.list[ProjectInfo]:
        """``default`` first, then the others by name."""
        with self.ctx.meta.transaction(write=False) as tx:
            rows = tx.list_projects()
            return [self._info(tx, DEFAULT_PROJECT)] + [self._info(tx, r.name) for r in rows]

    def delete(self, name: str, *, force: bool = False) -> None:
        """Delete an empty project. pachd refuses one that still has repos (and so pipelines),
        with or without ``force``; so does tusk."""
        with self.ctx.meta.transaction() as tx:
            if name == DEFAULT_PROJECT:
                raise InvalidArgument(
                    f"the {DEFAULT_PROJECT} project cannot be deleted",
                    hint="delete its pipelines and repos instead",
                )
            require_project(tx, name)
            repos = [split(r.name)[1] for r in tx.list_repos() if in_project(r.name, name)]
            if repos:
                raise HasDependents(
                    f"cannot delete project {name}: it still has repos [{' '.join(repos)}]",
                    hint=f"delete its pipelines and repos first (tusk delete-pipeline --all "
                    f"--project {name}; tusk delete-repo --all --project {name})",
                    project=name,
                )
            tx.delete_project(name)

    def _info(self, tx: Tx, name: str) -> ProjectInfo:
        if name == DEFAULT_PROJECT:
            # as old as the deployment: its hidden spec repo is made at the first start
            spec = tx.get_repo(SPEC_REPO)
            created = spec.created if spec is not None else 0.0
            description = ""
        else:
            row = tx.get_project(name)
            if row is None:
                raise project_not_found(name)
            created, description = row.created, row.description
        when = to_datetime(created)
        assert isinstance(when, datetime)
        return ProjectInfo(name=name, description=description, created=when)
