"""Pipelines: create, update, inspect, list, extract, delete, stop, start."""

from __future__ import annotations

import builtins
import functools
import json
import threading
import time
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from tusk.errors import AlreadyExists, HasDependents, InvalidSpec, NotFound
from tusk.ids import new_id
from tusk.meta import Tx
from tusk.meta import schema as s
from tusk.pfs.commits import CommitService
from tusk.pfs.context import SPEC_REPO, PfsContext
from tusk.pfs.files import FileService
from tusk.pfs.repos import RepoService
from tusk.pps.executor import Executor
from tusk.pps.runner import TERMINAL
from tusk.pps.scheduler import Scheduler
from tusk.pps.spec import PipelineSpec
from tusk.pps.trigger import upstream

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


def start_workers(executor: Executor, name: str, version: int, spec: PipelineSpec) -> None:
    executor.ensure_pool(
        name,
        version,
        spec.worker_count(executor.capacity()),
        resources=spec.worker_resources(),
        image=spec.transform.image,
    )


def pipeline_not_found(name: str) -> NotFound:
    return NotFound(f"pipeline {name} not found", hint="list pipelines with `tusk list-pipeline`")


class PipelineService:
    def __init__(
        self,
        ctx: PfsContext,
        repos: RepoService,
        commits: CommitService,
        files: FileService,
        scheduler: Scheduler,
        executor: Executor,
    ) -> None:
        self.ctx = ctx
        self.repos = repos
        self.commits = commits
        self.files = files
        self.scheduler = scheduler
        self.executor = executor
        self.lock = threading.RLock()

    # -- create / update ---------------------------------------------------------------------
    @_serialized
    def create(
        self, spec: PipelineSpec, *, update: bool = False, reprocess: bool = False
    ) -> dict[str, Any]:
        spec = spec.normalized()
        name = spec.pipeline.name
        inputs = sorted(set(spec.input_repos()))
        with self.ctx.meta.transaction(write=False) as tx:
            existing = tx.row(s.pipelines, name=name)
            if existing is not None and not update:
                raise AlreadyExists(
                    f"pipeline {name} already exists",
                    hint=f"change it with `tusk update-pipeline -f <spec>` (or delete-pipeline {name})",
                )
            if existing is None and update:
                raise pipeline_not_found(name)
            for repo, _branch in inputs:
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
        version = int(existing["version"]) + 1 if existing else 1
        # --reprocess always takes a new salt, even when the spec (e.g. an extracted one) has one
        if reprocess and existing is not None:
            salt = new_id()
        else:
            salt = spec.salt or (str(existing["salt"]) if existing else new_id())
        stopped = bool(existing["stopped"]) if existing else False
        for repo, _b in inputs:
            if self._is_cron_repo(spec, repo):
                self.repos.ensure(repo, kind="cron")
        self.repos.ensure(name, kind="output")
        self.commits.create_branch(SPEC_REPO, name)
        now = time.time()
        if existing is not None:
            self._kill_unfinished(name)
        with self.ctx.meta.transaction() as tx:
            if existing is None:
                tx.insert(
                    s.pipelines,
                    name=name,
                    version=version,
                    salt=salt,
                    spec=spec.to_json(),
                    spec_commit="",
                    state="running" if not stopped else "paused",
                    reason="",
                    stopped=stopped,
                    created=now,
                    updated=now,
                )
            else:
                tx.update_rows(
                    s.pipelines,
                    {"name": name},
                    version=version,
                    salt=salt,
                    spec=spec.to_json(),
                    updated=now,
                    state="running" if not stopped else "paused",
                )
        if self.scheduler.running:  # only the scheduler's server keeps workers; others reconcile
            start_workers(self.executor, name, version, spec)
        self.commits.create_branch(
            name, spec.output_branch, provenance=[*inputs, (SPEC_REPO, name)]
        )
        spec_commit = self._write_spec(name, spec, version, salt, stopped)
        with self.ctx.meta.transaction() as tx:
            tx.update_rows(s.pipelines, {"name": name}, spec_commit=spec_commit)
        self.scheduler.add(name)
        return self.inspect(name)

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
        return repo in {c for c in getattr(spec, "cron_repos", lambda: [])()}

    def _downstream_of(self, tx: Tx, name: str) -> set[tuple[str, str]]:
        out: set[tuple[str, str]] = set()
        todo = [(name, "master")]
        while todo:
            for sub in tx.branch_subvenance(*todo.pop()):
                if sub not in out:
                    out.add(sub)
                    todo.append(sub)
        return out

    def _kill_unfinished(self, name: str) -> None:
        with self.ctx.meta.transaction(write=False) as tx:
            jobs = [j for j in tx.rows(s.jobs, {"pipeline": name}) if j["state"] not in TERMINAL]
        for j in jobs:
            self.scheduler.runner.fail(name, str(j["id"]), "pipeline was updated", "killed")
            self.scheduler.kill_job(name, str(j["id"]))

    # -- reads -------------------------------------------------------------------------------
    def _row(self, tx: Tx, name: str) -> dict[str, Any]:
        row = tx.row(s.pipelines, name=name)
        if row is None:
            raise pipeline_not_found(name)
        return row

    def inspect(self, name: str) -> dict[str, Any]:
        with self.ctx.meta.transaction(write=False) as tx:
            return self._info(tx, self._row(tx, name))

    def list(self) -> builtins.list[dict[str, Any]]:
        with self.ctx.meta.transaction(write=False) as tx:
            rows = tx.rows(s.pipelines, order_by=[s.pipelines.c.created.desc()])
            return [self._info(tx, r) for r in rows]

    def _info(self, tx: Tx, row: dict[str, Any]) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for j in tx.rows(s.jobs, {"pipeline": row["name"]}):
            counts[j["state"]] = counts.get(j["state"], 0) + 1
        state = row["state"]
        if not row["stopped"] and counts.get("failure") and not counts.get("running"):
            last = tx.rows(
                s.jobs, {"pipeline": row["name"]}, order_by=[s.jobs.c.pk.desc()], limit=1
            )
            if last and last[0]["state"] == "failure":
                state = "failure"
        return {
            "name": row["name"],
            "version": row["version"],
            "spec": json.loads(row["spec"]),
            "salt": row["salt"],
            "spec_commit": row["spec_commit"],
            "state": state,
            "stopped": bool(row["stopped"]),
            "reason": row["reason"],
            "created": row["created"],
            "job_counts": counts,
        }

    def extract(self, name: str) -> dict[str, Any]:
        info = self.inspect(name)
        spec: dict[str, Any] = dict(info["spec"])
        spec["salt"] = info["salt"]
        return spec

    # -- delete / stop / start ---------------------------------------------------------------
    @_serialized
    def delete(
        self, name: str | None, *, all: bool = False, force: bool = False
    ) -> builtins.list[str]:
        with self.ctx.meta.transaction(write=False) as tx:
            names = (
                [str(r["name"]) for r in tx.rows(s.pipelines)]
                if all
                else [str(self._row(tx, name or "")["name"])]
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
                tx.delete_rows(s.jobs, pipeline=n)
                tx.delete_rows(s.job_datums, pipeline=n)
                tx.delete_rows(s.datum_cache, pipeline=n)
                tx.delete_rows(s.pipelines, name=n)
                tx.delete_branch(SPEC_REPO, n)
                for b in tx.list_branches(n):
                    tx.delete_branch(n, b.name)
                tx.delete_repo(n)
        return names

    def _downstream_depth(self, name: str) -> set[tuple[str, str]]:
        with self.ctx.meta.transaction(write=False) as tx:
            return upstream(tx, (name, "master"))

    @_serialized
    def set_stopped(self, name: str, stopped: bool) -> dict[str, Any]:
        with self.ctx.meta.transaction() as tx:
            row = self._row(tx, name)
            tx.update_rows(
                s.pipelines,
                {"name": name},
                stopped=stopped,
                state="paused" if stopped else "running",
                updated=time.time(),
            )
        spec = PipelineSpec.model_validate(json.loads(row["spec"]))
        commit = self._write_spec(name, spec, int(row["version"]), str(row["salt"]), stopped)
        with self.ctx.meta.transaction() as tx:
            tx.update_rows(s.pipelines, {"name": name}, spec_commit=commit)
        if stopped:
            self.executor.drop_pool(name)
        else:
            if self.scheduler.running:
                start_workers(self.executor, name, int(row["version"]), spec)
            self.ctx.feed.publish("head", SPEC_REPO, name)
        return self.inspect(name)
