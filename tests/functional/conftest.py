"""An in-process tusk (``tusk.Engine``) on SQLite and a local object store, with the few verbs the
pipeline tests need: put files, create pipelines, wait for jobs, read outputs."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tusk.api.pps import JobInfo, PipelineCreated
from tusk.pps.spec import parse_specs
from tusk.runtime import Engine, Settings
from tusk.testing import wait_for

PY = sys.executable


class Pps:
    """A started engine plus helpers; every wait has a deadline."""

    def __init__(self, home: Path, runtime: str = "host", **settings: Any) -> None:
        """``runtime`` host by default: these tests run host programs (``sys.executable``)."""
        self.home = home
        self.engine = Engine(Settings.for_home(home, runtime=runtime, **settings))
        self.engine.start()

    def close(self) -> None:
        self.engine.close()

    # -- data ----------------------------------------------------------------------------------
    def repo(self, *names: str) -> None:
        for name in names:
            self.engine.repos.create(name)

    def put(
        self,
        repo: str,
        files: dict[str, bytes | str],
        *,
        overwrite: bool = False,
        ref: str = "master",
    ) -> str:
        """One commit with ``files``; returns its id."""
        batch = self.engine.files.open_put(repo, ref)
        for path, data in files.items():
            batch.begin_file(path, overwrite=overwrite)
            batch.write(data.encode() if isinstance(data, str) else data)
            batch.end_file()
        return batch.commit().commit.id

    def delete(self, repo: str, *paths: str, ref: str = "master") -> str:
        return self.engine.files.delete(repo, ref, list(paths)).id

    def read(self, repo: str, ref: str, path: str) -> bytes:
        return b"".join(self.engine.files.get(repo, ref, path))

    def tree(self, repo: str, ref: str = "master") -> dict[str, bytes]:
        """Every file of a commit: path -> content."""
        return {
            f.path: self.read(repo, ref, f.path)
            for f in self.engine.files.walk(repo, ref, "/")
            if f.type == "file"
        }

    # -- pipelines -----------------------------------------------------------------------------
    def create(
        self,
        name: str,
        input: dict[str, Any],
        cmd: list[str],
        *,
        update: bool = False,
        reprocess: bool = False,
        **fields: Any,
    ) -> PipelineCreated:
        spec = {"pipeline": {"name": name}, "transform": {"cmd": cmd}, "input": input}
        transform = fields.pop("transform", {})
        spec["transform"].update(transform)
        spec.update(fields)
        (parsed,) = parse_specs(json.dumps(spec), "test")
        return self.engine.pipelines.create(parsed, update=update, reprocess=reprocess)

    # -- jobs ----------------------------------------------------------------------------------
    def jobs(self, pipeline: str | None = None) -> list[JobInfo]:
        """Jobs, oldest first."""
        return list(reversed(self.engine.jobs.list(pipeline)))

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
        """Wait (on the change feed, re-checking at least every 0.1 s) until ``check()`` is truthy."""
        feed = self.engine.ctx.feed
        seen = feed.version  # taken before each check, so no change between the two is missed

        def pause() -> None:
            nonlocal seen
            feed.wait(seen, 0.1)
            seen = feed.version

        return wait_for(what, check, timeout, pause=pause)

    def wait_jobs(self, pipeline: str, count: int, timeout: float = 60.0) -> list[JobInfo]:
        """Wait until ``pipeline`` has ``count`` jobs and all are done; return them oldest first."""

        def done() -> list[JobInfo] | None:
            jobs = self.jobs(pipeline)
            if len(jobs) >= count and all(j.state.terminal for j in jobs):
                return jobs
            return None

        jobs: list[JobInfo] = self.wait_for(f"{count} finished jobs of {pipeline}", done, timeout)
        assert len(jobs) == count, [(j.id, j.state) for j in jobs]
        return jobs

    def wait_job(self, pipeline: str, job_id: str, timeout: float = 60.0) -> JobInfo:
        def done() -> JobInfo | None:
            job = self.engine.jobs.inspect(job_id, pipeline)
            return job if job.state.terminal else None

        result: JobInfo = self.wait_for(f"job {pipeline}/{job_id}", done, timeout)
        return result

    def wait_state(self, pipeline: str, job_id: str, state: str, timeout: float = 60.0) -> None:
        self.wait_for(
            f"job {pipeline}/{job_id} to be {state}",
            lambda: self.engine.jobs.inspect(job_id, pipeline).state == state,
            timeout,
        )

    def user_logs(self, pipeline: str, job_id: str | None = None) -> list[str]:
        return [
            r.message
            for r in self.engine.jobs.logs(pipeline, job_id)
            if r.stream in ("stdout", "stderr")
        ]


def progress(job: JobInfo) -> tuple[int, int, int]:
    """(processed, skipped, total), as list-job's PROGRESS shows ``p + s / t``."""
    return job.processed, job.skipped, job.total


def atom(repo: str, glob: str = "/*", **extra: Any) -> dict[str, Any]:
    return {"atom": {"repo": repo, "glob": glob, **extra}}


COPY = ["sh", "-c", "cp -r /pfs/in/* /pfs/out/"]


@pytest.fixture
def pps(tmp_path: Path) -> Iterator[Pps]:
    p = Pps(tmp_path / "home")
    try:
        yield p
    finally:
        p.close()


@pytest.fixture(params=["host"])
def sandboxed_pps(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pps]:
    """The engine in host mode (/pfs bound by bubblewrap: required, never skipped, CI installs
    it); tests of pipelines in images are in test_sandbox_pipelines.py."""
    p = Pps(tmp_path / "home", runtime=request.param)
    try:
        yield p
    finally:
        p.close()
