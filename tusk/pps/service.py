"""Service pipelines (1.7 ``service: {internal_port, external_port}``): the user code runs on,
not per datum, over the whole of the job's input commits, and answers on a port.

A service's job is one datum holding every input whole (each glob taken as ``/``). It stays
``running`` while the code serves; when newer input arrives the pipeline's loop stops it, the job
ends ``success`` with an empty output commit, and the next job serves the new data (as 1.7
restarts its service on each new input commit). Code that exits is started again with back-off
(1 s, doubling, at most 30 s), and each exit is a line of the job's log (``get-logs``).

The sandbox of a service shares the host's network (its other isolation stays), and the server
forwards ``<service host>:external_port`` to ``127.0.0.1:internal_port``; docs/sandbox.md says
why.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time
from collections.abc import Callable

from tusk.errors import CommitFinished
from tusk.meta import JobFilter, LogRecord
from tusk.pfs.commits import CommitService
from tusk.pfs.context import PfsContext
from tusk.pfs.tree import EMPTY_ROOT
from tusk.pps.datums import Datum, datum_hash, datum_id, enumerate_datums
from tusk.pps.executors.base import Executor
from tusk.pps.running.datum_tasks import TaskBuilder, master_log, prepare_datums
from tusk.pps.running.image import Provenance
from tusk.pps.running.job_inputs import input_commits
from tusk.pps.running.output import end_job, settle_finished_output
from tusk.pps.spec import PipelineSpec
from tusk.pps.spec.inputs import Input
from tusk.worker.protocol import DatumResult

MAX_BACKOFF_SECONDS = 30.0


def service_url(spec: PipelineSpec, host: str) -> str:
    """Where a service pipeline (or a spout with ``spout.service``) answers ("" for others)."""
    service = spec.service or (spec.spout.service if spec.spout is not None else None)
    if service is None or not service.external_port:
        return ""
    return f"http://{host}:{service.external_port}"


def whole_inputs(inp: Input) -> Input:
    """The same input with every glob ``/``: a service sees each input commit whole."""
    if inp.pfs_input is not None:
        atom = inp.pfs_input.model_copy(update={"glob": "/"})
        return inp.model_copy(update={inp.kind: atom})
    kids = getattr(inp, inp.kind)
    if isinstance(kids, tuple):
        return inp.model_copy(update={inp.kind: tuple(whole_inputs(k) for k in kids)})
    return inp


class PortForwarder:
    """Accepts connections on ``host:port`` and relays each to ``127.0.0.1:target``."""

    def __init__(self, host: str, port: int, target: int) -> None:
        self.target = target
        self.sock = socket.create_server((host, port), reuse_port=False)
        self.sock.settimeout(0.5)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, name=f"service-{port}", daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _addr = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
        except OSError:
            client.close()  # the service is not listening (yet): the caller sees a reset
            return
        upstream.settimeout(None)
        client.settimeout(None)

        def pump(src: socket.socket, dst: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while data := src.recv(65536):
                    dst.sendall(data)
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

        back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
        back.start()
        pump(client, upstream)
        back.join()
        client.close()
        upstream.close()

    def close(self) -> None:
        """Stop accepting (connections in flight end with the service)."""
        self._stop.set()
        self.sock.close()
        self.thread.join(timeout=5)


def serve(
    ctx: PfsContext,
    executor: Executor,
    tasks: TaskBuilder,
    host: str,
    pipeline: str,
    job_id: str,
    spec: PipelineSpec,
    salt: str,
    provenance: Provenance,
    cancelled: threading.Event,
) -> None:
    """Run a service job until ``cancelled`` (newer input, stop, delete, shutdown)."""
    assert spec.service is not None and spec.input is not None
    inputs = input_commits(ctx, pipeline, job_id)
    datums = enumerate_datums(whole_inputs(spec.input), inputs, ctx.tree)
    # the service never counts as processed: its hash is the job's own
    hashes = [datum_hash(d, pipeline, f"{salt}-{job_id}") for d in datums]
    if not prepare_datums(ctx, pipeline, job_id, datums, hashes):
        return
    port = spec.service.external_port
    try:
        forwarder = PortForwarder(host, port, spec.service.internal_port) if port else None
    except OSError as e:
        end_job(ctx, pipeline, job_id, f"cannot publish service port {host}:{port}: {e.strerror}")
        return
    unlimited = spec.model_copy(update={"datum_timeout": None})
    try:
        _run_until_cancelled(
            ctx, executor, tasks, pipeline, job_id, unlimited, provenance, datums, cancelled
        )
    finally:
        if forwarder is not None:
            forwarder.close()
    if superseded(ctx, pipeline, job_id)():
        _end_served(ctx, pipeline, job_id)  # else stopped: it ended already, or resumes later


def _run_until_cancelled(
    ctx: PfsContext,
    executor: Executor,
    tasks: TaskBuilder,
    pipeline: str,
    job_id: str,
    spec: PipelineSpec,
    provenance: Provenance,
    datums: list[Datum],
    cancelled: threading.Event,
) -> None:
    delay = 1.0
    attempt = 0
    while not cancelled.is_set():
        with ctx.meta.transaction(write=False) as tx:
            pipe = tx.get_pipeline(pipeline)
        if pipe is None or pipe.stopped:
            return  # its workers are gone; the job serves again when the pipeline starts
        attempt += 1
        task = tasks.task(spec, provenance, pipeline, job_id, 0, datums[0], attempt)
        task = dataclasses.replace(task, network=True)  # its port must be reachable
        started = time.monotonic()
        results = list(executor.run(pipeline, [task]))
        if cancelled.is_set():
            return
        reason = results[0].reason if results and results[0].reason else "exit code 0"
        if time.monotonic() - started > 60:
            delay = 1.0  # it served a while: this is a new failure, not the same one again
        _log(
            ctx,
            pipeline,
            job_id,
            [*results[:1]],
            datum_id(datums[0]),
            f"service exited ({reason}); restarting in {delay:g}s",
        )
        cancelled.wait(delay)
        delay = min(MAX_BACKOFF_SECONDS, delay * 2)


def _log(
    ctx: PfsContext,
    pipeline: str,
    job_id: str,
    results: list[DatumResult],
    datum: str,
    message: str,
) -> None:
    """Store what the service printed (the worker hands it over when the code exits) and why
    it is restarted."""
    lines = [
        LogRecord(
            pipeline=pipeline,
            job_id=job_id,
            datum_id=datum,
            worker=res.worker,
            ts=ts,
            stream=stream,
            user=stream != "system",
            message=line,
        )
        for res in results
        for ts, stream, line in res.logs
    ]
    with ctx.meta.transaction() as tx:
        tx.insert_logs([*lines, master_log(pipeline, job_id, message)])


def _end_served(ctx: PfsContext, pipeline: str, job_id: str) -> None:
    """A service job that was replaced ends ``success`` with an empty output commit (a job
    killed by stop-job or a pipeline update has ended already)."""
    with ctx.meta.transaction(write=False) as tx:
        job = tx.get_job(pipeline, job_id)
    if job is None or job.state.terminal:
        return
    with contextlib.suppress(CommitFinished):
        CommitService(ctx).finish(pipeline, job_id, tree=EMPTY_ROOT, internal=True)
    settle_finished_output(ctx, pipeline, job_id)


def watch(
    ctx: PfsContext, pipeline: str, job_id: str, done: threading.Event, stop: Callable[[], None]
) -> threading.Thread:
    """While a service job runs, stop it (``stop``) once the pipeline has a newer job."""
    newer = superseded(ctx, pipeline, job_id)

    def loop() -> None:
        while not done.wait(1.0):
            if newer():
                stop()
                return

    thread = threading.Thread(target=loop, name=f"service-watch-{pipeline}", daemon=True)
    thread.start()
    return thread


def superseded(ctx: PfsContext, pipeline: str, job_id: str) -> Callable[[], bool]:
    """A check: does the pipeline have a job newer than ``job_id`` to run?"""

    def check() -> bool:
        with ctx.meta.transaction(write=False) as tx:
            jobs = tx.list_jobs(JobFilter(pipeline=pipeline, unfinished=True, newest_first=False))
        return any(j.id != job_id for j in jobs)

    return check
