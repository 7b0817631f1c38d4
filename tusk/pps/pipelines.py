"""Pipelines: create, update, inspect, list, extract, delete, stop, start."""

from __future__ import annotations

import builtins
import functools
import json
import threading
import time
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from tusk.api.pps import JobState, PipelineCreated, PipelineInfo, PipelineSpecDoc, PipelineState
from tusk.errors import AlreadyExists, HasDependents, InvalidSpec, NotFound
from tusk.ids import new_id
from tusk.meta import JobFilter, PipelineRecord, Tx, after_commit
from tusk.pfs.commits import CommitService, downstream_branches, upstream_branches
from tusk.pfs.context import SPEC_REPO, PfsContext
from tusk.pfs.files import FileService
from tusk.pfs.projects import in_project, require_project
from tusk.pfs.repos import RepoService
from tusk.pps.executors.base import Executor
from tusk.pps.scheduling.git import remote_head
from tusk.pps.scheduling.scheduler import Scheduler, idle_limit
from tusk.pps.service import service_url
from tusk.pps.spec import PipelineSpec
from tusk.pps.spec.inputs import GitInput
from tusk.pps.spec.support import check_supported, spec_warnings

P = ParamSpec("P")
R = TypeVar("R")


def _serialized(
    method: Callable[Concatenate[PipelineService, P], R],
) -> Callable[Concatenate[PipelineService, P], R]:
    """Changes to pipelines and the leader's reconciliation of workers take turns."""

    @functools.wraps(method)
    def wrapper(self: PipelineService, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.lock:
            return method(self, *args, **kwargs)

    return wrapper


def start_workers(
    executor: Executor, name: str, version: int, spec: PipelineSpec, limit: int | None = None
) -> None:
    """Have the executor keep the workers this pipeline version asks for (at most ``limit``)."""
    count = spec.worker_count(executor.capacity())
    executor.ensure_pool(
        name,
        version,
        count if limit is None else min(count, limit),
        resources=spec.worker_resources(),
        image=spec.transform.image,
    )


def default_max_parallelism(executor: Executor) -> int:
    """The workers a pipeline may have when the server sets no limit: 4 per unit of capacity,
    and at least 16 (a laptop still runs the workshop's parallelism of 10)."""
    return max(16, 4 * executor.capacity())


def _git_repos(spec: PipelineSpec) -> set[str]:
    """The repos the pipeline's git inputs import into (named after the input)."""
    return (
        {leaf.git.input_name for leaf in spec.input.leaves() if leaf.git} if spec.input else set()
    )


def pipeline_not_found(name: str) -> NotFound:
    """The error for a pipeline name that does not exist."""
    return NotFound(f"pipeline {name} not found", hint="list pipelines with `tusk list-pipeline`")


def transform_changed_warning(name: str) -> str:
    """What update-pipeline says when the transform changed but old results were kept."""
    return (
        f"The transform of pipeline {name} changed: its old results were kept, and datums whose "
        "inputs didn't change won't be rerun (use --reprocess to rerun them)."
    )


class PipelineService:
    """Creates, updates, reads, stops and deletes pipelines (each version's spec is a commit in
    ``__spec__``)."""

    def __init__(
        self,
        ctx: PfsContext,
        repos: RepoService,
        commits: CommitService,
        files: FileService,
        scheduler: Scheduler,
        executor: Executor,
        code_check: Callable[[PipelineSpec], list[str]] | None = None,
        max_parallelism: int | None = None,
        git_check: Callable[[GitInput], object] = remote_head,
        service_host: str = "127.0.0.1",
    ) -> None:
        """``code_check`` says what the server can tell about a spec's code (its image) and
        refuses specs that nothing here can run; ``git_check`` refuses a git input's URL that
        does not answer."""
        self.code_check = code_check
        self.git_check = git_check
        self.service_host = service_host
        self.ctx = ctx
        self._max_parallelism = max_parallelism
        self.repos = repos
        self.commits = commits
        self.files = files
        self.scheduler = scheduler
        self.executor = executor
        self.lock = threading.RLock()
        scheduler.start_pool = self._start_current_workers

    @property
    def max_parallelism(self) -> int:
        """The most workers one pipeline gets on this server."""
        return self._max_parallelism or default_max_parallelism(self.executor)

    def start_workers(self, name: str, version: int, spec: PipelineSpec) -> None:
        """Have the executor keep this pipeline version's workers, within the server's limit
        (a standby pipeline's start when it has a job: its loop asks for them)."""
        if idle_limit(spec) == 0 or self.scheduler.is_scaled_down(name):
            return
        start_workers(self.executor, name, version, spec, self.max_parallelism)

    def _start_current_workers(self, name: str) -> None:
        # called by the pipeline's loop before a job; no self.lock (delete waits for the loop)
        with self.ctx.meta.transaction(write=False) as tx:
            row = tx.get_pipeline(name)
        if row is None or row.stopped:
            return
        spec = PipelineSpec.model_validate(json.loads(row.spec))
        start_workers(self.executor, name, row.version, spec, self.max_parallelism)

    def _parallelism_warning(self, spec: PipelineSpec) -> str | None:
        asked = spec.worker_count(self.executor.capacity())
        limit = self.max_parallelism
        if asked <= limit:
            return None
        return (
            f"Pipeline {spec.pipeline.name} asks for {asked} workers; this server runs at most "
            f"{limit} per pipeline (TUSK_MAX_PARALLELISM), so it will run {limit}."
        )

    # -- create / update ---------------------------------------------------------------------
    @_serialized
    def create(
        self, spec: PipelineSpec, *, update: bool = False, reprocess: bool = False
    ) -> PipelineCreated:
        """Create a pipeline (or, with ``update``, its next version); ``reprocess`` takes a new
        salt so every datum runs again."""
        spec = spec.normalized()
        name = spec.name
        inputs = sorted(set(spec.input_repos()))
        check_supported(spec)
        for leaf in spec.input.leaves() if spec.input else ():
            if leaf.git is not None:
                self.git_check(leaf.git)  # a URL that does not answer is refused now, not later
        code_warnings = self.code_check(spec) if self.code_check else []
        with self.ctx.meta.transaction(write=False) as tx:
            require_project(tx, spec.project)
            existing = tx.get_pipeline(name)
            if existing is not None and not update:
                raise AlreadyExists(
                    f"pipeline {name} already exists",
                    hint=f"change it with `tusk update-pipeline -f <spec>` (or delete-pipeline {name})",
                )
            if existing is None and update:
                raise pipeline_not_found(name)
            for repo, _branch in inputs:
                row = tx.get_repo(repo)
                if row is not None and row.kind != "git" and repo in _git_repos(spec):
                    raise AlreadyExists(
                        f"repo {repo} already exists and is not a git input's repo",
                        hint='give the git input another "name" (its repo is named after it)',
                    )
                if tx.get_repo(repo) is None and not self._is_cron_repo(spec, repo):
                    raise NotFound(
                        f"repo {repo} not found (input of pipeline {name})",
                        hint=f"create it first: tusk create-repo {repo}",
                    )
                if repo == name or (repo, "master") in self._downstream_of(tx, name):
                    raise InvalidSpec(
                        f"pipeline {name} would read its own output through {repo} (a cycle)",
                        hint="a pipeline's inputs must come from upstream of it",
                    )
            repo_row = tx.get_repo(name)
            if (
                existing is None
                and repo_row is not None
                and repo_row.kind == "user"
                and tx.list_branches(name)
            ):
                for b in tx.list_branches(name):
                    if b.name == spec.output_branch and b.head is not None:
                        raise AlreadyExists(
                            f"repo {name} already exists and has data on {spec.output_branch}",
                            hint="pick another pipeline name or delete the repo",
                        )
        version = existing.version + 1 if existing else 1
        # --reprocess always takes a new salt, even when the spec (e.g. an extracted one) has one
        if reprocess and existing is not None:
            salt = new_id()
        else:
            salt = spec.salt or (existing.salt if existing else new_id())
        stopped = existing.stopped if existing else False
        warnings = list(code_warnings)
        if existing is not None and not reprocess:
            old = json.loads(existing.spec).get("transform")
            if old != json.loads(spec.to_json()).get("transform"):
                warnings.append(transform_changed_warning(name))
        too_many = self._parallelism_warning(spec)
        if too_many:
            warnings.append(too_many)
        for repo, _b in inputs:
            if self._is_cron_repo(spec, repo):
                self.repos.ensure(repo, kind="cron")
            elif repo in _git_repos(spec):
                self.repos.ensure(repo, kind="git")
        self.repos.ensure(name, kind="output")
        self.commits.create_branch(SPEC_REPO, name)
        now = time.time()
        if existing is not None:
            self._kill_unfinished(name)
        state = PipelineState.PAUSED if stopped else PipelineState.RUNNING
        with self.ctx.meta.transaction() as tx:
            if existing is None:
                tx.insert_pipeline(
                    PipelineRecord(
                        name=name,
                        version=version,
                        salt=salt,
                        spec=spec.to_json(),
                        spec_commit="",
                        state=state,
                        stopped=stopped,
                        created=now,
                        updated=now,
                    )
                )
            else:
                tx.update_pipeline(
                    name, version=version, salt=salt, spec=spec.to_json(), updated=now, state=state
                )
        if self.scheduler.running:  # only the scheduler's server keeps workers; others reconcile
            after_commit(lambda: self.start_workers(name, version, spec))
        self.commits.create_branch(
            name, spec.output_branch, provenance=[*inputs, (SPEC_REPO, name)]
        )
        spec_commit = self._write_spec(name, spec, version, salt, stopped)
        with self.ctx.meta.transaction() as tx:
            tx.update_pipeline(name, spec_commit=spec_commit)
        after_commit(lambda: self.scheduler.add(name))
        info = self.inspect(name)
        return PipelineCreated(**{**dict(info), "warnings": [*info.warnings, *warnings]})

    def _write_spec(
        self, name: str, spec: PipelineSpec, version: int, salt: str, stopped: bool
    ) -> str:
        doc = {
            "spec": json.loads(spec.to_json()),
            "version": version,
            "salt": salt,
            "stopped": stopped,
        }
        batch = self.files.open_put(SPEC_REPO, name)
        batch.begin_file("/spec", overwrite=True)
        batch.write(json.dumps(doc, indent=2, sort_keys=True).encode())
        batch.end_file()
        return batch.commit(f"{name} v{version}").commit.id

    def _is_cron_repo(self, spec: PipelineSpec, repo: str) -> bool:
        """Whether the pipeline itself makes ``repo`` (the ticks of a cron input, the imports
        of a git input), so it need not exist yet."""
        cron = {c for c in getattr(spec, "cron_repos", lambda: [])()}
        return repo in cron or repo in _git_repos(spec)

    def _downstream_of(self, tx: Tx, name: str) -> set[tuple[str, str]]:
        return downstream_branches(tx, (name, "master"))

    def _kill_unfinished(self, name: str) -> None:
        with self.ctx.meta.transaction(write=False) as tx:
            jobs = tx.list_jobs(JobFilter(pipeline=name, unfinished=True, newest_first=False))
        for j in jobs:
            self.scheduler.runner.fail(name, j.id, "pipeline was updated", JobState.KILLED)
            after_commit(functools.partial(self.scheduler.kill_job, name, j.id))

    # -- reads -------------------------------------------------------------------------------
    def _row(self, tx: Tx, name: str) -> PipelineRecord:
        row = tx.get_pipeline(name)
        if row is None:
            raise pipeline_not_found(name)
        return row

    def inspect(self, name: str) -> PipelineInfo:
        """One pipeline."""
        with self.ctx.meta.transaction(write=False) as tx:
            return self._info(tx, self._row(tx, name))

    def list(self, *, project: str | None = None) -> builtins.list[PipelineInfo]:
        """Every pipeline of ``project`` (None: of every project), newest first."""
        with self.ctx.meta.transaction(write=False) as tx:
            if project is not None:
                require_project(tx, project)
            return [
                self._info(tx, r)
                for r in tx.list_pipelines()
                if project is None or in_project(r.name, project)
            ]

    def _info(self, tx: Tx, row: PipelineRecord) -> PipelineInfo:
        counts = tx.job_counts(row.name)
        state = row.state
        if not row.stopped and counts.get(JobState.FAILURE) and not counts.get(JobState.RUNNING):
            last = tx.list_jobs(JobFilter(pipeline=row.name, limit=1))
            if last and last[0].state is JobState.FAILURE:
                state = PipelineState.FAILURE
        doc = json.loads(row.spec)
        spec = PipelineSpec.model_validate(doc)
        return PipelineInfo(
            name=row.name,
            version=row.version,
            spec=doc,
            salt=row.salt,
            spec_commit=row.spec_commit,
            state=state,
            stopped=row.stopped,
            reason=row.reason,
            created=row.created,
            job_counts=counts,
            input_summary=spec.input_shorthand(),
            datum_timeout_seconds=spec.datum_timeout_seconds,
            job_timeout_seconds=spec.job_timeout_seconds,
            warnings=spec_warnings(spec),
            service_url=service_url(spec, self.service_host),
        )

    def extract(self, name: str) -> PipelineSpecDoc:
        """The spec the pipeline was created from, with its salt (so a re-create keeps it)."""
        info = self.inspect(name)
        return PipelineSpecDoc({**info.spec, "salt": info.salt})

    # -- delete / stop / start ---------------------------------------------------------------
    @_serialized
    def delete(
        self,
        name: str | None,
        *,
        all: bool = False,
        force: bool = False,
        project: str | None = None,
    ) -> builtins.list[str]:
        """Delete a pipeline (or ``all``, of ``project`` or of every project when it is None)
        with its output repo and jobs; return the names."""
        with self.ctx.meta.transaction(write=False) as tx:
            names = (
                [
                    r.name
                    for r in tx.list_pipelines()
                    if project is None or in_project(r.name, project)
                ]
                if all
                else [self._row(tx, name or "").name]
            )
            if not force and not all:
                for n in names:
                    users = [
                        f"{r}/{b}" for r, b in tx.branch_subvenance(n, "master") if r not in names
                    ]
                    if users:
                        raise HasDependents(
                            f"pipeline {n} is read by {', '.join(users)}",
                            hint="delete those pipelines first, or pass --force",
                        )
        # downstream pipelines first, so --all never trips over subvenance
        order = sorted(names, key=lambda n: -len(self._downstream_depth(n)))
        for n in order:
            self.scheduler.remove(n)
            self.executor.drop_pool(n)
            with self.ctx.meta.transaction() as tx:
                tx.delete_pipeline(n)
                tx.delete_branch(SPEC_REPO, n)
                for b in tx.list_branches(n):
                    tx.delete_branch(n, b.name)
                tx.delete_repo(n)
        return names

    def _downstream_depth(self, name: str) -> set[tuple[str, str]]:
        with self.ctx.meta.transaction(write=False) as tx:
            return upstream_branches(tx, (name, "master"))

    @_serialized
    def set_stopped(self, name: str, stopped: bool) -> PipelineInfo:
        """Stop a pipeline (no new jobs, no workers) or start it again."""
        with self.ctx.meta.transaction() as tx:
            row = self._row(tx, name)
            tx.update_pipeline(
                name,
                stopped=stopped,
                state=PipelineState.PAUSED if stopped else PipelineState.RUNNING,
                updated=time.time(),
            )
        spec = PipelineSpec.model_validate(json.loads(row.spec))
        commit = self._write_spec(name, spec, row.version, row.salt, stopped)
        with self.ctx.meta.transaction() as tx:
            tx.update_pipeline(name, spec_commit=commit)
        if stopped:
            self.executor.drop_pool(name)
        else:
            if self.scheduler.running:
                self.start_workers(name, row.version, spec)
            self.ctx.feed.publish("head", SPEC_REPO, name)
        return self.inspect(name)
