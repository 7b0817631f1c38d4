"""The scheduler: one runner thread per pipeline, running its jobs one at a time in commit order
once their input commits are finished; jobs left running by a killed server resume on start."""

from __future__ import annotations

import logging
import threading
import traceback

from tusk.meta import schema as s
from tusk.pfs.context import PfsContext
from tusk.pps.executor import Executor
from tusk.pps.runner import TERMINAL, JobRunner

log = logging.getLogger("tusk.scheduler")
POLL_SECONDS = 1.0


class PipelineLoop:
    def __init__(self, name: str, ctx: PfsContext, runner: JobRunner) -> None:
        self.name = name
        self.ctx = ctx
        self.runner = runner
        self.stop_event = threading.Event()
        self.cancel_job = threading.Event()
        self.current: str | None = None
        self.thread = threading.Thread(target=self._loop, name=f"pipeline-{name}", daemon=True)

    def _next_job(self) -> dict[str, object] | None:
        with self.ctx.meta.transaction(write=False) as tx:
            pipe = tx.row(s.pipelines, name=self.name)
            if pipe is None or pipe["stopped"]:
                return None
            for job in tx.rows(s.jobs, {"pipeline": self.name}, order_by=[s.jobs.c.pk]):
                if job["state"] not in TERMINAL:
                    return job
        return None

    def _loop(self) -> None:
        version = self.ctx.feed.version
        while not self.stop_event.is_set():
            try:
                worked = self._step()
            except Exception:  # noqa: BLE001 - a bug must not kill the loop; the job restarts
                log.error("pipeline %s: %s", self.name, traceback.format_exc())
                if self.current:
                    with self.ctx.meta.transaction() as tx:
                        job = tx.row(s.jobs, pipeline=self.name, id=self.current)
                        if job is not None:
                            tx.update_rows(
                                s.jobs,
                                {"pipeline": self.name, "id": self.current},
                                restarts=int(job["restarts"]) + 1,
                            )
                worked = False
                self.stop_event.wait(POLL_SECONDS)
            if not worked:
                version = self.ctx.feed.wait(version, POLL_SECONDS)

    def _step(self) -> bool:
        job = self._next_job()
        if job is None:
            return False
        job_id = str(job["id"])
        state, failed = self.runner.input_state(self.name, job_id)
        if state == "waiting":
            return False
        if state == "failed":
            self.runner.fail(self.name, job_id, f"input {', '.join(failed)} failed")
            return True
        self.current = job_id
        self.cancel_job.clear()
        try:
            self.runner.run(self.name, job_id, self.cancel_job)
        finally:
            self.current = None
        return True

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.cancel_job.set()
        self.ctx.feed.publish("jobs", self.name, "")  # wake the loop from its wait on the feed


class Scheduler:
    def __init__(self, ctx: PfsContext, executor: Executor, runner: JobRunner) -> None:
        self.ctx = ctx
        self.executor = executor
        self.runner = runner
        self.loops: dict[str, PipelineLoop] = {}
        self._lock = threading.Lock()
        self.running = False

    def start(self) -> None:
        self.running = True
        with self.ctx.meta.transaction(write=False) as tx:
            names = [str(p["name"]) for p in tx.rows(s.pipelines)]
        for n in names:
            self.add(n)

    def add(self, name: str) -> None:
        if not self.running:
            return
        with self._lock:
            if name in self.loops:
                return
            loop = PipelineLoop(name, self.ctx, self.runner)
            self.loops[name] = loop
        loop.start()

    def remove(self, name: str) -> None:
        with self._lock:
            loop = self.loops.pop(name, None)
        if loop is not None:
            loop.stop()
            self.executor.cancel(name)
            loop.thread.join(timeout=30)

    def kill_job(self, pipeline: str, job_id: str) -> None:
        loop = self.loops.get(pipeline)
        if loop is not None and loop.current == job_id:
            loop.cancel_job.set()
            self.executor.cancel(pipeline)

    def stop(self) -> None:
        self.running = False
        with self._lock:
            loops = list(self.loops.values())
            self.loops.clear()
        for loop in loops:
            loop.stop()
            if loop.current is not None:
                # a running datum would hold shutdown until it ends; it runs again on restart
                self.executor.cancel(loop.name)
        for loop in loops:
            loop.thread.join(timeout=30)
