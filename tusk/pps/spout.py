"""Spout pipelines (1.9-1.12 ``spout: {overwrite, service}``): code with no input that runs on
and writes tar streams to ``/pfs/out``, a named pipe; each whole stream becomes one commit of the
output branch, with the pipeline's spec commit as its provenance.

A spout has no jobs. Its pipeline's loop runs the code of the current version here until the
pipeline is stopped, updated or deleted (or the server stops): it asks its worker for the next
stream again and again (:mod:`tusk.worker.spout` keeps the code running between asks). A stream
that is not a valid tar archive is dropped with a line in the pipeline's log (``get-logs
--pipeline <name> --master``); code that exits is started again with back-off (1 s, doubling,
at most 30 s). Each commit is written in one transaction, so a stream is committed whole or not
at all, and its new head starts the jobs of the pipelines downstream.

With ``spout.overwrite`` a file of a stream replaces the file of the same path in the previous
commit; without it, it is appended to it (Pachyderm's put-file). Files the stream does not name
stay as they were.

Pachyderm 2.x spouts write through the API instead, with the credentials of the cluster; code
in tusk's sandbox gets no address or token of the server, so a spout here is always the 1.x
kind, whichever form its spec has.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

from tusk.errors import InvalidArgument, NotFound, TuskError
from tusk.meta import LogRecord, Tx
from tusk.pfs.commits import CommitService
from tusk.pfs.context import SPEC_REPO, PfsContext
from tusk.pfs.tree import EMPTY_ROOT
from tusk.pfs.tree.write import MakeDir, Op, PutFile
from tusk.pps.executors.base import Executor
from tusk.pps.running.datum_tasks import SecretPayload, TaskBuilder, master_log, resolve_secrets
from tusk.pps.running.image import CodeRuntime
from tusk.pps.running.job_inputs import load_spec
from tusk.pps.service import PortForwarder
from tusk.pps.spec import PipelineSpec
from tusk.storage import file_hash
from tusk.worker.protocol import DatumResult
from tusk.worker.runtimes import ImageNotFound
from tusk.worker.spout import BAD_STREAM

MAX_BACKOFF_SECONDS = 30.0
WATCH_SECONDS = 1.0


@dataclasses.dataclass(frozen=True)
class SpoutVersion:
    """The version of a spout pipeline that runs now."""

    pipeline: str
    version: int
    spec: PipelineSpec
    spec_commit: str


def current(ctx: PfsContext, pipeline: str) -> SpoutVersion | None:
    """The spout version to run now; None if the pipeline is gone, stopped or not a spout.

    The spec and version are those of the pipeline's spec commit, the provenance its commits
    cite: an update bumps the pipeline's version before it writes the new spec commit, and in
    between the new spec must not run under the old spec commit's name (its streams are not
    committed then: the pipeline's version is not the spec commit's)."""
    with ctx.meta.transaction(write=False) as tx:
        pipe = tx.get_pipeline(pipeline)
    if pipe is None or pipe.stopped or not pipe.spec_commit:
        return None
    spec, doc = load_spec(ctx, pipe.spec_commit)
    if spec.spout is None:
        return None
    return SpoutVersion(pipeline, int(doc.get("version", pipe.version)), spec, pipe.spec_commit)


@dataclasses.dataclass
class SpoutContext:
    """What running a spout needs of the server (the job runner's parts)."""

    ctx: PfsContext
    executor: Executor
    tasks: TaskBuilder
    code: CodeRuntime
    host: str
    secret_values: Callable[[str], dict[str, bytes]] | None


def run(sc: SpoutContext, pipeline: str, cancelled: threading.Event) -> None:
    """Run the spout's current version until ``cancelled`` is set or the pipeline is stopped,
    updated or deleted."""
    this = current(sc.ctx, pipeline)
    if this is None:
        return
    done = threading.Event()
    watcher = threading.Thread(
        target=_watch,
        args=(sc, this, cancelled, done),
        name=f"spout-watch-{pipeline}",
        daemon=True,
    )
    watcher.start()
    try:
        _run(sc, this, cancelled)
    finally:
        done.set()
        watcher.join(timeout=5)


def _watch(
    sc: SpoutContext, this: SpoutVersion, cancelled: threading.Event, done: threading.Event
) -> None:
    """Stop the running stream task once the spout should end (it waits for a writer)."""
    while not done.wait(WATCH_SECONDS):
        now = current(sc.ctx, this.pipeline)
        if cancelled.is_set() or now is None or now.version != this.version:
            cancelled.set()
            sc.executor.cancel(this.pipeline)
            return


def _run(sc: SpoutContext, this: SpoutVersion, cancelled: threading.Event) -> None:
    spec = this.spec
    assert spec.spout is not None
    service = spec.spout.service
    forwarder: PortForwarder | None = None
    delay = 1.0
    attempt = 0

    def back_off(message: str) -> None:
        nonlocal delay
        log(sc.ctx, this.pipeline, f"{message}; trying again in {delay:g}s")
        cancelled.wait(delay)
        delay = min(MAX_BACKOFF_SECONDS, delay * 2)

    try:
        while not cancelled.is_set():
            attempt += 1
            try:
                provenance = sc.code.provenance(spec)
                secrets = _secrets(sc, spec)
            except ImageNotFound as e:
                back_off(f"the spout cannot start: {e}")
                continue
            except (InvalidArgument, NotFound) as e:
                back_off(f"the spout cannot start: {e.message}")
                continue
            if service is not None and service.external_port and forwarder is None:
                try:
                    forwarder = PortForwarder(sc.host, service.external_port, service.internal_port)
                except OSError as e:
                    back_off(
                        f"cannot publish the spout's port {sc.host}:{service.external_port}: "
                        f"{e.strerror}"
                    )
                    continue
            task = sc.tasks.task(spec, provenance, this.pipeline, this.spec_commit, 0, (), attempt)
            task = dataclasses.replace(
                task,
                spout=True,
                timeout_seconds=None,
                network=task.network or service is not None,
                secret_env=secrets.env,
                secret_files=secrets.files,
            )
            try:
                results = list(sc.executor.run(this.pipeline, [task]))
            except KeyError:  # its workers were stopped (stop-pipeline) and not started yet
                results = []
            if cancelled.is_set():
                return
            if not results:
                cancelled.wait(1.0)  # its workers were replaced: ask again
                continue
            res = results[0]
            if res.ok:
                _commit_stream(sc.ctx, this, res)
                delay = 1.0
            elif res.reason.startswith(BAD_STREAM):
                log(sc.ctx, this.pipeline, f"{res.reason}: no commit", res)
            else:
                _store_logs(sc.ctx, this.pipeline, res)
                back_off(f"the spout ended ({res.reason or 'no reason'})")
    finally:
        if forwarder is not None:
            forwarder.close()


def _secrets(sc: SpoutContext, spec: PipelineSpec) -> SecretPayload:
    if not spec.transform.secrets:
        return SecretPayload()

    def missing(name: str) -> dict[str, bytes]:
        raise NotFound(f"secret {name} not found", hint="create it with tusk create-secret")

    return resolve_secrets(spec, sc.secret_values or missing)


def _commit_stream(ctx: PfsContext, this: SpoutVersion, res: DatumResult) -> None:
    """One stream, one commit (or a log line saying why not)."""
    assert this.spec.spout is not None
    overwrite = this.spec.spout.overwrite
    branch = this.spec.output_branch
    commits = CommitService(ctx)
    replaced = False

    def still_this_version(tx: Tx) -> bool:
        """A stream of a version that was updated, stopped or deleted meanwhile is not
        committed: the new version's commits must not be followed by an old one."""
        nonlocal replaced
        pipe = tx.get_pipeline(this.pipeline)
        replaced = pipe is None or pipe.stopped or pipe.version != this.version
        return not replaced

    for _try in range(3):
        with ctx.meta.transaction(write=False) as tx:
            b = tx.get_branch(this.pipeline, branch)
            head = b.head if b is not None else None
            row = tx.get_commit(this.pipeline, head) if head else None
        base = row.tree if row is not None and row.tree else EMPTY_ROOT
        ops: list[Op] = [MakeDir(d) for d in res.dirs]
        for f in res.outputs:
            chunks = tuple(f.chunks)
            old = None if overwrite else ctx.tree.get(base, f.path)
            if old is not None and old.kind == "file":
                chunks = old.chunks + chunks
            ops.append(PutFile(f.path, chunks, sum(c.length for c in chunks), file_hash(chunks)))
        try:
            root = ctx.tree.apply(base, ops)
            info = commits.commit_tree(
                this.pipeline,
                branch,
                root,
                parent=head,
                provenance=[(SPEC_REPO, this.spec_commit, this.pipeline)],
                still=still_this_version,
            )
        except TuskError as e:
            log(ctx, this.pipeline, f"cannot commit the tar stream: {e.message}: no commit", res)
            return
        if replaced:
            log(ctx, this.pipeline, "the spout was updated or stopped: its last stream was dropped")
            return
        if info is not None:
            what = f"{len(res.outputs)} file{'s' if len(res.outputs) != 1 else ''}"
            log(ctx, this.pipeline, f"tar stream of {what} committed as {info.commit.id}", res)
            return
    log(ctx, this.pipeline, f"the head of {branch} kept moving: the tar stream was not committed")


def log(ctx: PfsContext, pipeline: str, message: str, res: DatumResult | None = None) -> None:
    """A line of the spout's log (with what its code printed meanwhile)."""
    with ctx.meta.transaction() as tx:
        tx.insert_logs([*_user_lines(pipeline, res), master_log(pipeline, "", message)])


def _store_logs(ctx: PfsContext, pipeline: str, res: DatumResult) -> None:
    lines = _user_lines(pipeline, res)
    if lines:
        with ctx.meta.transaction() as tx:
            tx.insert_logs(lines)


def _user_lines(pipeline: str, res: DatumResult | None) -> list[LogRecord]:
    if res is None:
        return []
    return [
        LogRecord(
            pipeline=pipeline,
            ts=ts,
            stream=stream,
            user=stream != "system",
            message=line,
            worker=res.worker,
        )
        for ts, stream, line in res.logs
    ]
