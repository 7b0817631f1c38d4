"""The executor interface: what the job runner asks of any executor (run datum tasks on a
pipeline version's workers, list and stop them), the worker pool interface, and the pooled base
that the local and Ray executors share."""

from __future__ import annotations

import random
import string
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from tusk.errors import InvalidArgument
from tusk.worker.protocol import DatumResult, DatumTask


@dataclass(frozen=True)
class WorkerInfo:
    """One worker as an executor reports it."""

    name: str
    pipeline: str
    version: int
    state: str
    restarts: int
    started: float


class Executor(Protocol):
    """Runs datum tasks on workers kept per pipeline version (local processes or Ray)."""

    name: str
    supports_containers: bool

    def ensure_pool(
        self,
        pipeline: str,
        version: int,
        workers: int,
        resources: dict[str, Any] | None = None,
        image: str | None = None,
    ) -> None:
        """Have exactly ``workers`` workers of this pipeline version (replacing older ones)."""
        ...

    def drop_pool(self, pipeline: str) -> None:
        """Stop and forget every worker of the pipeline."""

    def pipelines(self) -> list[str]:
        """The pipelines this executor keeps workers for."""
        ...

    def run(self, pipeline: str, tasks: Iterable[DatumTask]) -> Iterator[DatumResult]:
        """Run the tasks on the pipeline's workers; yield each result as it arrives."""

    def cancel(self, pipeline: str) -> None:
        """Stop the pipeline's running tasks (its workers stay)."""

    def restart_datums(self, pipeline: str, match: Callable[[DatumTask], bool]) -> list[str]:
        """Kill the running tasks ``match`` accepts, so they are tried again; their datum ids."""
        ...

    def workers(self, pipeline: str | None = None) -> list[WorkerInfo]:
        """The workers of one pipeline, or of all."""

    def running(self, pipeline: str) -> list[DatumTask]:
        """The tasks the pipeline's workers run now (what restart-datum can restart)."""
        ...

    def capacity(self) -> int:
        """How many workers a parallelism coefficient of 1 means."""

    def close(self) -> None:
        """Stop every worker."""


class WorkerPool(Protocol):
    """The workers of one pipeline version."""

    version: int

    def run(self, tasks: Iterable[DatumTask]) -> Iterator[DatumResult]:
        """Run the tasks on these workers; yield each result as it arrives."""

    def cancel(self) -> None:
        """Stop the running tasks."""

    def close(self) -> None:
        """Stop the workers."""

    def infos(self) -> list[WorkerInfo]:
        """The workers as list-worker shows them."""


class PooledExecutor:
    """What executors with one worker pool per pipeline share: the pool table and the calls that
    only look a pool up. Subclasses create pools in ``ensure_pool``."""

    def __init__(self) -> None:
        self._pools: dict[str, WorkerPool] = {}
        self._lock = threading.Lock()

    def _older_than_pool(self, pipeline: str, version: int) -> bool:
        """Under the lock: a request for an older version than the pool's is ignored (a late
        caller must never bring back an older version's workers)."""
        pool = self._pools.get(pipeline)
        return pool is not None and pool.version > version

    def pipelines(self) -> list[str]:
        """The pipelines this executor keeps workers for."""
        with self._lock:
            return list(self._pools)

    def drop_pool(self, pipeline: str) -> None:
        """Stop and forget every worker of the pipeline."""
        with self._lock:
            pool = self._pools.pop(pipeline, None)
        if pool is not None:
            pool.close()

    def run(self, pipeline: str, tasks: Iterable[DatumTask]) -> Iterator[DatumResult]:
        """Run the tasks on the pipeline's pool."""
        with self._lock:
            pool = self._pools[pipeline]
        return pool.run(tasks)

    def cancel(self, pipeline: str) -> None:
        """Stop the pipeline's running tasks."""
        with self._lock:
            pool = self._pools.get(pipeline)
        if pool is not None:
            pool.cancel()

    def restart_datums(self, pipeline: str, match: Callable[[DatumTask], bool]) -> list[str]:
        """Kill the running tasks of the pipeline that ``match`` accepts, so they are tried
        again (``restart-datum``); return their datum ids."""
        with self._lock:
            pool = self._pools.get(pipeline)
        restart = getattr(pool, "restart_datums", None)
        if pool is None:
            return []
        if restart is None:
            raise InvalidArgument(
                f"restart-datum is not supported by the {getattr(self, 'name', '')} executor",
                hint="stop-job and a new input commit run the datum again",
            )
        hit: list[str] = restart(match)
        return hit

    def running(self, pipeline: str) -> list[DatumTask]:
        """The tasks the pipeline's workers run now (none for a pool that cannot say)."""
        with self._lock:
            pool = self._pools.get(pipeline)
        current = getattr(pool, "running", None)
        if current is None:
            return []
        tasks: list[DatumTask] = current()
        return tasks

    def workers(self, pipeline: str | None = None) -> list[WorkerInfo]:
        """The workers of one pipeline, or of all."""
        with self._lock:
            pools = [p for n, p in self._pools.items() if pipeline in (None, n)]
        return [info for p in pools for info in p.infos()]

    def _close_pools(self) -> None:
        with self._lock:
            pools = list(self._pools.values())
            self._pools.clear()
        for p in pools:
            p.close()


def worker_name(pipeline: str, version: int) -> str:
    """A worker's name: ``pipeline-<name>-v<version>-<5 chars>``, as list-worker shows."""
    suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
    name = pipeline.lower().replace("_", "-").replace("/", "-")
    return f"pipeline-{name}-v{version}-{suffix}"


class CountedTasks:
    """A job's datum tasks, made one at a time as an executor takes them, with their number known
    ahead (``len``), so an executor can share the last of them fairly among its workers."""

    def __init__(self, tasks: Iterable[DatumTask], count: int) -> None:
        self._tasks = tasks
        self._count = count

    def __iter__(self) -> Iterator[DatumTask]:
        return iter(self._tasks)

    def __len__(self) -> int:
        return self._count


class WorkerDied(Exception):
    """A worker process ended while it ran a datum."""

    pass
