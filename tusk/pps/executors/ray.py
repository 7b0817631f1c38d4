"""The Ray executor: per pipeline version, long-lived named Ray actors that each hold a datum
:class:`~tusk.worker.Worker`; datums go to whichever actor is free, one call in flight per actor.

A Ray actor call costs a few milliseconds on its own, more than a short datum. So a call carries
a group of datums: one at first, then as many as fill about ``GROUP_SECONDS`` at the rate the
actor has shown (at most twice the last group, at most ``MAX_GROUP``), and never more than the
actor's fair share of what is left of the job, so the last datums still spread over every actor.
Datums of ``GROUP_SECONDS`` or more go one per call, as before.

Addresses (``make_executor``):

- ``ray://host:port`` -- with Ray Client installed (``grpcio``, as ``ray[client]`` or
  ``ray[default]`` bring), the Ray Client server at that address (port 10001 by default);
  without it, the GCS address of a cluster this machine reaches directly (port 6379 by default),
  which is how tusk joins a cluster started with ``ray start --head`` on the same network.
- ``ray`` -- whatever ``ray.init()`` picks: the cluster named by ``RAY_ADDRESS``, else a Ray
  instance started for this process.

Ray is global to a process: one RayExecutor per process. Actors are owned by this process (not
detached), so a tuskd that exits takes its workers with it.

Workers must be able to import tusk (install it in the cluster's image) and reach the object
store named in each task: a ``file://`` store works only while every node sees the same disk, as
nodes on one machine do; a cluster of several machines needs an ``s3://`` store.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import RayActorError, RayError

from tusk.errors import InvalidArgument, ServerUnavailable
from tusk.pps.executors.base import PooledExecutor, WorkerInfo, worker_name
from tusk.pps.spec import parse_quantity
from tusk.worker import worker_from_environ
from tusk.worker.__main__ import run_line
from tusk.worker.protocol import (
    DatumResult,
    DatumTask,
    TaskDecoder,
    TaskEncoder,
    parse_result,
    result_line,
)

NAMESPACE = "tusk"
CONNECT_ATTEMPTS = 3  # Ray Client answers "Starting Ray client server failed" when busy
# A worker is long-lived and idle between jobs, yet holds its CPU reservation all the while: a
# whole CPU each would let a 3-CPU cluster hold three workers across all pipelines. A quarter still
# bounds the user processes per CPU, so parallelism 10 fits a 3-CPU cluster with room for other
# pipelines. Workers that do not fit stay Pending and get no datums (see RayPool.run).
DEFAULT_NUM_CPUS = 0.25
RESPAWN_TIMEOUT = 10.0
GROUP_SECONDS = 0.1  # what one actor call should take: its fixed cost is then a few percent
MAX_GROUP = 64
ABORT_GRACE = 5.0  # for an aborted datum to end before its actor is killed
_POLL = 0.5


class RayWorker:
    """The actor body: one :class:`~tusk.worker.Worker` running one datum task at a time."""

    def __init__(self, name: str) -> None:
        self.worker = worker_from_environ(name)
        self.stopped = 0  # the latest run generation cancelled (RayPool.run numbers its runs)

    def ready(self) -> dict[str, Any]:
        """The actor's process id and node: a cheap call to wait on until it is up."""
        return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()}

    def run(self, generation: int, tasks_json: list[str]) -> list[str]:
        """Run a group of datum tasks in this actor, one after another; a task of a run that was
        cancelled meanwhile is not started (its result says so)."""
        results = []
        decoder = TaskDecoder()  # the group's lines: its first task in full, follow-ups after
        for line in tasks_json:
            if self.stopped >= generation:
                task_id = json.loads(line).get("task_id", "")
                result = DatumResult(task_id, False, reason="cancelled", worker=self.worker.name)
            else:
                result = run_line(self.worker, line.encode(), decoder)
            results.append(result_line(result).decode())
        return results

    def abort(self, generation: int) -> int:
        """Kill the running datum's user processes and start none of run ``generation``'s other
        tasks (runs beside ``run``: a threaded actor).

        Each user command leads a session of its own, so killing a child's process group takes
        its whole tree; killing the actor instead would orphan grandchildren."""
        self.stopped = max(self.stopped, generation)
        killed = 0
        for pid in _children(os.getpid()):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
                killed += 1
        return killed


def _children(parent: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == parent:
                found.append(int(entry.name))
    return found


def actor_options(
    resources: dict[str, Any] | None, image: str | None, containers: bool
) -> dict[str, Any]:
    """Ray actor options for a pipeline's ``resource_requests`` (``cpu``, ``memory``, ``gpu``) and
    ``transform.image`` (used only where the cluster runs containers)."""
    resources = resources or {}
    options: dict[str, Any] = {"num_cpus": DEFAULT_NUM_CPUS}
    if resources.get("cpu") is not None:
        options["num_cpus"] = parse_quantity(resources["cpu"])
    if resources.get("memory") is not None:
        options["memory"] = int(parse_quantity(resources["memory"]))
    gpu = resources.get("gpu")
    if isinstance(gpu, dict):
        gpu = gpu.get("number")
    if gpu:
        options["num_gpus"] = int(gpu)
    if containers and image:
        options["runtime_env"] = {"image_uri": image}
    return options


@dataclass
class _Actor:
    name: str
    handle: Any
    ready: Any  # the ObjectRef of its ready() call, until it resolves
    started: float = field(default_factory=time.time)
    state: str = "Pending"
    restarts: int = 0
    problem: str = ""
    per_task: float | None = None  # seconds per datum of its calls (a moving average)
    last_group: int = 0

    def group(self, fair: int) -> int:
        """How many datums its next call carries (see the module docstring)."""
        if self.per_task is None:
            return 1
        fit = int(GROUP_SECONDS / max(self.per_task, 1e-6))
        return max(1, min(fit, 2 * max(1, self.last_group), MAX_GROUP, fair))

    def timed(self, seconds: float, count: int) -> None:
        """Note how long a call of ``count`` datums took."""
        rate = seconds / max(1, count)
        self.per_task = rate if self.per_task is None else 0.5 * (self.per_task + rate)


@dataclass
class _Call:
    actor: _Actor
    handle: Any  # the handle the call went to (the actor's may be replaced meanwhile)
    tasks: list[DatumTask]
    generation: int
    started: float = field(default_factory=time.monotonic)


class _Backlog:
    """The tasks of a run not handed out yet: taken from the job's iterable as actors free up,
    no more made than the free actors' next groups need. A task that cannot be made ends the
    taking; the run raises its error once the calls in flight have their results.

    Tasks handed back (their group's actor was killed by restart-datum, or died) go out again
    before new ones; those of a group whose actor died go one per call (``suspects``), so a datum
    that kills its worker fails alone and its group's other datums run as if nothing happened."""

    def __init__(self, tasks: Iterable[DatumTask]) -> None:
        self._source = iter(tasks)
        self._left = len(tasks) if isinstance(tasks, Sized) else None  # not made yet
        self._ready: deque[DatumTask] = deque()
        self._suspects: deque[DatumTask] = deque()
        self._done = False
        self.error: BaseException | None = None

    def __bool__(self) -> bool:
        """Whether a task may still be handed out."""
        return bool(self._ready) or bool(self._suspects) or not self._done

    def left(self) -> int | None:
        """How many tasks are still to be handed out (None: the job's iterable has no length)."""
        if self._left is None and not self._done:
            return None
        return (self._left or 0) + len(self._ready) + len(self._suspects)

    def fill(self, ahead: int) -> None:
        """Make tasks until ``ahead`` are ready or there are no more."""
        while not self._done and len(self._ready) < ahead:
            try:
                self._ready.append(next(self._source))
                if self._left is not None:
                    self._left -= 1
            except StopIteration:
                self._done, self._left = True, 0
            except Exception as e:  # noqa: BLE001 - raised again by RayPool.run
                self.error, self._done, self._left = e, True, 0

    def take(self, count: int) -> list[DatumTask]:
        """The next group of at most ``count`` ready tasks (a suspect goes alone)."""
        if self._suspects:
            return [self._suspects.popleft()]
        return [self._ready.popleft() for _ in range(min(count, len(self._ready)))]

    def hand_back(self, tasks: list[DatumTask], suspect: bool = False) -> None:
        """Tasks whose call was lost: out again first (``suspect``: one per call)."""
        if suspect:
            self._suspects.extend(tasks)
        else:
            self._ready.extendleft(reversed(tasks))

    def stop(self) -> None:
        """Hand out nothing more (cancelled): the tasks not made yet never are."""
        self._ready.clear()
        self._suspects.clear()
        self._done, self._left = True, 0

    def rest(self) -> Iterator[DatumTask]:
        """Every task not handed out yet, made one at a time."""
        while True:
            self.fill(1)
            group = self.take(1)
            if not group:
                return
            yield group[0]


class RayPool:
    """The Ray actors of one pipeline version."""

    def __init__(
        self, pipeline: str, version: int, count: int, options: dict[str, Any], actor_class: Any
    ) -> None:
        self.pipeline = pipeline
        self.version = version
        self.options = options
        self._class = actor_class
        self.lock = threading.Lock()
        self.cancelled = threading.Event()
        self.calls: dict[Any, _Call] = {}
        self.restarted: dict[Any, set[str]] = {}  # calls restart-datum killed: its task ids
        self.generation = 0  # numbers the runs, so an abort stops only the run it was meant for
        self.closed = False
        self.actors = [self._spawn(worker_name(pipeline, version)) for _ in range(max(1, count))]

    def _spawn(self, name: str) -> _Actor:
        handle = self._create(name)
        return _Actor(name, handle, handle.ready.remote())

    def _create(self, name: str) -> Any:
        # A killed actor's name is released asynchronously: retry while it is still taken.
        deadline = time.monotonic() + RESPAWN_TIMEOUT
        while True:
            try:
                return self._class.options(
                    name=name,
                    namespace=NAMESPACE,
                    max_restarts=0,
                    max_task_retries=0,
                    max_concurrency=2,  # run() and abort()
                    scheduling_strategy="SPREAD",
                    **self.options,
                ).remote(name)
            except ValueError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _respawn(self, actor: _Actor) -> None:
        """Kill the actor (whatever it runs) and start a fresh one under the same name."""
        ray.kill(actor.handle, no_restart=True)
        actor.handle = self._create(actor.name)
        actor.ready = actor.handle.ready.remote()
        actor.state = "Pending"
        actor.problem = ""
        actor.restarts += 1

    # -- running datums --------------------------------------------------------------------------
    def run(self, tasks: Iterable[DatumTask]) -> Iterator[DatumResult]:
        """Hand the tasks to whichever actor is free, in groups; yield results as they arrive.

        Tasks are taken from ``tasks`` only as actors become free (the free actors' next groups
        made ahead, one call in flight per actor), so a job of 100,000 datums holds a few groups
        of tasks, not 100,000. Give ``tasks`` a length (a sized iterable) and the last groups are
        shared fairly among the actors."""
        backlog = _Backlog(tasks)
        self.cancelled.clear()
        with self.lock:
            self.generation += 1
            for actor in self.actors:
                if actor.state == "Failed":
                    self._respawn(actor)
        while True:
            if self.cancelled.is_set():
                backlog.stop()
            with self.lock:
                ahead = sum(a.group(MAX_GROUP) for a in self._free())
            backlog.fill(ahead)  # outside the lock: making a task reads the datum's input tree
            with self.lock:
                self._dispatch(backlog)
                if not backlog and not self.calls:
                    break
                waiting = list(self.calls) + [a.ready for a in self.actors if a.ready is not None]
            if not waiting:
                # No worker runs or may still start: fail the datums rather than wait forever.
                reasons = "; ".join(sorted({a.problem for a in self.actors}))
                for task in backlog.rest():
                    yield DatumResult(task.task_id, False, reason=f"no ray worker: {reasons}")
                break
            done, _ = ray.wait(waiting, num_returns=1, timeout=_POLL)
            for ref in done:
                yield from self._collect(ref, backlog)
        if backlog.error is not None:
            raise backlog.error

    def _free(self) -> list[_Actor]:
        busy = {id(c.actor) for c in self.calls.values()}
        return [a for a in self.actors if a.state == "Running" and id(a) not in busy]

    def _dispatch(self, backlog: _Backlog) -> None:
        free = self._free()
        for actor in free:
            left = backlog.left()
            fair = MAX_GROUP if left is None else max(1, -(-left // len(self.actors)))
            group = backlog.take(actor.group(fair))
            if not group:
                return
            actor.last_group = len(group)
            encoder = TaskEncoder()  # the same job's next datums as follow-up lines
            lines = [encoder.encode(t).decode().rstrip("\n") for t in group]
            ref = actor.handle.run.remote(self.generation, lines)
            self.calls[ref] = _Call(actor, actor.handle, group, self.generation)

    def _collect(self, ref: Any, backlog: _Backlog) -> list[DatumResult]:
        with self.lock:
            call = self.calls.pop(ref, None)
            if call is None:
                self._became_ready(ref)
                return []
            restarted = self.restarted.pop(ref, None)
            try:
                answers = ray.get(ref)
                if call.handle is call.actor.handle:
                    call.actor.timed(time.monotonic() - call.started, len(call.tasks))
                return [parse_result(a) for a in answers]
            except RayActorError as e:
                if call.handle is call.actor.handle and not self.closed:  # not replaced yet
                    self._respawn(call.actor)
                if restarted is not None:
                    # only the datums restart-datum named fail; the others go out again
                    backlog.hand_back([t for t in call.tasks if t.task_id not in restarted])
                    return self._failed(call, restarted, "restarted by restart-datum")
                if self.closed or self.cancelled.is_set():
                    why = "worker stopped" if self.closed else "cancelled"
                    return self._failed(call, {t.task_id for t in call.tasks}, why)
                if len(call.tasks) > 1:
                    # which datum killed the actor is unknown: each goes again, alone, untried
                    backlog.hand_back(call.tasks, suspect=True)
                    return []
                return self._failed(call, {call.tasks[0].task_id}, _died(e))
            except RayError as e:
                reason = f"ray task failed: {_first_line(e)}"
                return self._failed(call, {t.task_id for t in call.tasks}, reason)

    @staticmethod
    def _failed(call: _Call, task_ids: set[str], reason: str) -> list[DatumResult]:
        return [
            DatumResult(t.task_id, False, reason=reason, worker=call.actor.name)
            for t in call.tasks
            if t.task_id in task_ids
        ]

    def restart_datums(self, match: Callable[[DatumTask], bool]) -> list[str]:
        """Kill the actor of each running task ``match`` accepts and start a fresh one under the
        same name, as the local executor restarts its worker process: the task fails (a try of
        its datum, retried like any other) and the other datums of its group run again; return
        the datum ids."""
        hit: list[str] = []
        with self.lock:
            for ref, call in list(self.calls.items()):
                if call.handle is not call.actor.handle:
                    continue
                matched = [t for t in call.tasks if match(t)]
                if matched:
                    self.restarted[ref] = {t.task_id for t in matched}
                    self._respawn(call.actor)
                    hit.extend(t.datum_id for t in matched)
        return hit

    def running(self) -> list[DatumTask]:
        """The tasks the actors run now (not those of an actor being replaced): each call's
        group, whose first datums may have ended already (groups form of short datums only)."""
        with self.lock:
            return [t for c in self.calls.values() if c.handle is c.actor.handle for t in c.tasks]

    def infos(self) -> list[WorkerInfo]:
        """The actors as list-worker shows them."""
        self.refresh()
        return [
            WorkerInfo(a.name, self.pipeline, self.version, a.state, a.restarts, a.started)
            for a in self.actors
        ]

    def refresh(self) -> None:
        """Note the workers that have started (or failed to) since last asked."""
        with self.lock:
            starting = [a.ready for a in self.actors if a.ready is not None]
            if starting:
                done, _ = ray.wait(starting, num_returns=len(starting), timeout=0)
                for ref in done:
                    self._became_ready(ref)

    def _became_ready(self, ref: Any) -> None:
        for actor in self.actors:
            if actor.ready == ref:
                actor.ready = None
                try:
                    ray.get(ref)
                    actor.state = "Running"
                except RayError as e:
                    actor.state, actor.problem = "Failed", _first_line(e)

    def cancel(self) -> None:
        """Stop handing out datums and kill the running ones' user processes; an actor whose
        datum does not end within ``ABORT_GRACE`` (stuck outside user code) is killed and
        replaced by a fresh one of the same name."""
        self.cancelled.set()
        self._abort_busy(ABORT_GRACE)

    def _abort_busy(self, grace: float) -> None:
        with self.lock:
            calls = dict(self.calls)
            for call in calls.values():
                call.handle.abort.remote(call.generation)
        if not calls:
            return
        _, stuck = ray.wait(list(calls), num_returns=len(calls), timeout=grace)
        with self.lock:
            for ref in stuck:
                call = calls[ref]
                if ref in self.calls and call.handle is call.actor.handle and not self.closed:
                    self._respawn(call.actor)

    def close(self) -> None:
        """Kill every actor of the pool."""
        self.cancelled.set()
        self._abort_busy(1.0)
        with self.lock:
            self.closed = True
            for actor in self.actors:
                ray.kill(actor.handle, no_restart=True)
                actor.state = "Terminated"


def _first_line(e: BaseException) -> str:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return lines[0][:300] if lines else type(e).__name__


def _died(e: RayActorError) -> str:
    lines = [line.strip() for line in str(e).splitlines()]
    why = next((line for line in lines if line.startswith("The actor is dead because")), "")
    return f"ray actor died: {(why or _first_line(e))[:300]}; it was restarted"


class RayExecutor(PooledExecutor):
    """Runs datums on a Ray cluster (see the module docstring for addresses).

    ``supports_containers``: when the cluster can run container images (Ray's ``image_uri``
    runtime environment, which needs podman on every node), set it and each pipeline's
    ``transform.image`` becomes its actors' image; the image must hold the cluster's Python and
    Ray versions and tusk. Off by default: the image is then recorded only.
    """

    name = "ray"

    def __init__(
        self,
        url: str = "ray",
        *,
        supports_containers: bool = False,
        client: bool | None = None,
    ) -> None:
        self.url = url
        self.supports_containers = supports_containers
        self._client = client
        super().__init__()
        self._connected = False
        self._owns_ray = False
        self._actor_class: Any = None

    def address(self) -> str | None:
        """The Ray cluster address to connect to (None: start or join a local one)."""
        if self.url == "ray":
            return None
        if not self.url.startswith("ray://") or not self.url[len("ray://") :]:
            raise InvalidArgument(f"invalid Ray address {self.url!r}", hint="use ray://host:port")
        client = self._client
        if client is None:
            client = importlib.util.find_spec("grpc") is not None
        return self.url if client else self.url[len("ray://") :]

    def _connect(self) -> None:
        with self._lock:
            if self._connected:
                return
            if not ray.is_initialized():
                address = self.address()
                try:
                    self._init(address)
                except (ConnectionError, OSError, RuntimeError, TimeoutError) as e:
                    where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
                    raise ServerUnavailable(
                        f"cannot connect to {where}: {type(e).__name__}: {e}".rstrip(": "),
                        hint="check that the cluster is up and that --executor / TUSK_EXECUTOR "
                        "names its address (ray://host:10001 for Ray Client)",
                    ) from e
                self._owns_ray = True
            self._actor_class = ray.remote(RayWorker)
            self._connected = True

    @staticmethod
    def _init(address: str | None) -> None:
        """``ray.init``, tried again when a Ray Client server answers that it failed to start
        the connection's own server process (it does so when its machine is busy)."""
        for attempt in range(CONNECT_ATTEMPTS):
            try:
                ray.init(
                    address=address,
                    namespace=NAMESPACE,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                )
                return
            except ConnectionAbortedError:
                if attempt + 1 == CONNECT_ATTEMPTS:
                    raise
                if ray.is_initialized():
                    ray.shutdown()
                time.sleep(1.0 + attempt)

    def capacity(self) -> int:
        """Alive nodes that have CPUs (a KubeRay head often has none for work)."""
        self._connect()
        nodes = [n for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) > 0]
        return max(1, len(nodes))

    def ensure_pool(
        self,
        pipeline: str,
        version: int,
        workers: int,
        resources: dict[str, Any] | None = None,
        image: str | None = None,
    ) -> None:
        """Have exactly ``workers`` actors of this pipeline version."""
        self._connect()
        options = actor_options(resources, image, self.supports_containers)
        with self._lock:
            if self._older_than_pool(pipeline, version):
                return
            pool = self._pools.get(pipeline)
            if (
                isinstance(pool, RayPool)
                and pool.version == version
                and len(pool.actors) == max(1, workers)
                and pool.options == options
            ):
                return
            if pool is not None:
                pool.close()
            self._pools[pipeline] = RayPool(pipeline, version, workers, options, self._actor_class)

    def close(self) -> None:
        """Kill every actor and disconnect from the cluster."""
        self._close_pools()
        with self._lock:
            if self._owns_ray and ray.is_initialized():
                ray.shutdown()
            self._connected = self._owns_ray = False
