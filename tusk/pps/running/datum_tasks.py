"""Preparing a job's datums: recording them once, skipping those already processed, and turning
each one still to run into a self-contained :class:`DatumTask` for a worker."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from tusk.api.pps import DatumState
from tusk.errors import InvalidArgument
from tusk.meta import DatumRecord, JobCounters, LogRecord, Tx
from tusk.pfs.context import PfsContext
from tusk.pfs.paths import parent_and_name
from tusk.pfs.tree import Node, Shared
from tusk.pps.datums import Datum, DatumInput, datum_id
from tusk.pps.running.image import Provenance
from tusk.pps.spec import PipelineSpec
from tusk.pps.spec.units import parse_quantity
from tusk.worker.protocol import DatumInput as TaskInput
from tusk.worker.protocol import DatumTask, InputFile
from tusk.worker.runtimes.gpus import requested as requested_gpus

INSERT_BLOCK = 5_000  # datum records per insert when a job is set up
DATUM_PAGE = 5_000  # datum records per read of a job's datums


@dataclass
class Progress:
    """What the job master keeps in memory while a job runs (it is the job's only writer):
    the job's datums (their ids are derived from them, as ``prepare_datums`` recorded them), the
    tries of the datums that have had one and are still to run (none kept per datum otherwise:
    a 100,000-datum job must not hold a dict over all of them), and the job's counters."""

    datums: Sequence[Datum]
    tries: dict[int, int]
    totals: JobCounters
    # the datum ids of the tasks made and not recorded yet (a task carries its datum's id)
    made: dict[int, str] = field(default_factory=dict)

    def datum_id(self, idx: int) -> str:
        """The id of datum ``idx`` (its task's, if one was made and not recorded yet)."""
        known = self.made.pop(idx, None)
        return known if known is not None else datum_id(self.datums[idx])

    def tried(self, idx: int, settled: bool) -> int:
        """Count one more try of datum ``idx`` and return its tries so far; a ``settled`` datum
        (no try follows) is forgotten."""
        n = self.tries.pop(idx, 0) + 1
        if not settled:
            self.tries[idx] = n
        return n


def master_log(pipeline: str, job_id: str, message: str) -> LogRecord:
    """A line of the job master's log."""
    return LogRecord(
        pipeline=pipeline,
        job_id=job_id,
        ts=time.time(),
        message=message,
        user=False,
        master=True,
    )


def prepare_datums(
    ctx: PfsContext,
    pipeline: str,
    job_id: str,
    datums: list[Datum],
    hashes: list[str],
    *,
    unchanged: int = 0,
) -> bool:
    """Record the job's datums still to run once (a resumed job keeps what it had); the ones
    whose hash any earlier job of the pipeline already processed are skipped and get no row, nor
    do the ``unchanged`` datums of an incremental job, which are not in ``datums``. False if the
    job has ended meanwhile (a killed job must not come back to life as running)."""
    with ctx.meta.transaction(durable=False) as tx:  # redone by a resumed job
        job = tx.get_job(pipeline, job_id)
        assert job is not None
        if job.state.terminal:
            return False
        existing = {d.idx: d.state for d in _pages(tx, pipeline, job_id)}
        fresh = [i for i in range(len(datums)) if i not in existing]
        cached = tx.cached_hashes(pipeline, [hashes[i] for i in fresh])
        # inserted a block at a time: 100,000 records (and the driver's parameters for them) at
        # once were the largest part of a big job's memory, kept by the allocator afterwards
        added = 0
        todo = [i for i in fresh if hashes[i] not in cached]
        for start in range(0, len(todo), INSERT_BLOCK):
            tx.insert_datums(
                [
                    DatumRecord(
                        pipeline=pipeline,
                        job_id=job_id,
                        idx=i,
                        datum_id=datum_id(datums[i]),
                        hash=hashes[i],
                        state=DatumState.PENDING,
                        inputs=orjson.dumps([c.to_json() for c in datums[i]]).decode(),
                    )
                    for i in todo[start : start + INSERT_BLOCK]
                ]
            )
            added += min(INSERT_BLOCK, len(todo) - start)
        skipped = unchanged + len(fresh) - added
        total = len(datums) + unchanged
        tx.start_job(
            pipeline,
            job_id,
            started=job.started or time.time(),
            total=total,
            skipped=skipped,
            processed=list(existing.values()).count(DatumState.SUCCESS),
        )
        tx.insert_logs(
            [master_log(pipeline, job_id, f"job running: {total} datums, {skipped} skipped")]
        )
    return True


def _pages(tx: Tx, pipeline: str, job_id: str) -> Iterator[DatumRecord]:
    """A job's datum records as :func:`job_datums` reads them, within the transaction ``tx``."""
    return _paged(lambda after: tx.datums_after(pipeline, job_id, after, DATUM_PAGE))


def _paged(read: Callable[[int], list[DatumRecord]]) -> Iterator[DatumRecord]:
    after = -1
    while True:
        page = read(after)
        yield from page
        if len(page) < DATUM_PAGE:
            return
        after = page[-1].idx


def pending_datums(
    ctx: PfsContext, pipeline: str, job_id: str, datums: Sequence[Datum]
) -> tuple[list[int], Progress]:
    """The datums still to run (of the job's ``datums``), and the job master's starting
    :class:`Progress`."""
    todo: list[int] = []
    tries: dict[int, int] = {}
    with ctx.meta.transaction(write=False) as tx:
        job = tx.get_job(pipeline, job_id)
        assert job is not None
        after = -1
        while page := tx.unsettled_after(pipeline, job_id, after, DATUM_PAGE):
            for idx, n in page:
                todo.append(idx)
                if n:
                    tries[idx] = n
            after = page[-1][0]
    return todo, Progress(datums, tries, job.counters)


@dataclass(frozen=True)
class SecretPayload:
    """A job's ``transform.secrets`` resolved to values, as its datum tasks carry them: variables
    (``env_var`` = the value of ``key``) and, per ``mount_path``, every key as base64. Never
    printed (repr=False), never recorded."""

    env: dict[str, str] = field(default_factory=dict, repr=False)
    files: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)


def resolve_secrets(
    spec: PipelineSpec, values_of: Callable[[str], dict[str, bytes]]
) -> SecretPayload:
    """The values the spec's secrets name (``values_of`` raises NotFound for a missing
    secret); InvalidArgument for a missing key or a value no environment variable can hold."""
    env: dict[str, str] = {}
    files: dict[str, dict[str, str]] = {}
    for entry in spec.transform.secrets:
        values = values_of(entry.name)
        if entry.env_var and entry.key:
            if entry.key not in values:
                raise InvalidArgument(
                    f"secret {entry.name} has no key {entry.key}",
                    hint="create the secret again with that key, or change transform.secrets",
                )
            try:
                text = values[entry.key].decode()
            except UnicodeDecodeError:
                text = "\x00"
            if "\x00" in text:
                raise InvalidArgument(
                    f"secret {entry.name} key {entry.key} is not text, so it cannot be the "
                    f"value of {entry.env_var}",
                    hint="mount the secret as files (mount_path) instead",
                )
            env[entry.env_var] = text
        if entry.mount_path:
            files[os.path.normpath(entry.mount_path)] = {
                k: base64.b64encode(v).decode() for k, v in values.items()
            }
    return SecretPayload(env, files)


_DIR_SHARED_MAX = 4096  # directories whose header and footer a TaskBuilder keeps
FileNodes = dict[tuple[str, str], Node | None]  # (tree root, path) → the file's node


class TaskBuilder:
    """Turns a datum into a :class:`DatumTask`: everything a stateless worker needs to run it."""

    def __init__(self, ctx: PfsContext, store_url: str, *, network: bool = False) -> None:
        self.ctx = ctx
        self.store_url = store_url
        self.network = network
        # The fields every task of one job shares, made once per job (a job makes a task per
        # datum, and these are most of one): (spec, provenance, secrets, pipeline, job), fields.
        self._job: tuple[tuple[object, ...], dict[str, Any], frozenset[str]] | None = None
        # Headers and footers of the input directories of the job's datums, by (tree root,
        # directory): the datums of a glob like /* share one directory, looked up once.
        self._dir_shared: dict[tuple[str, str], Shared] = {}

    def task(
        self,
        spec: PipelineSpec,
        provenance: Provenance,
        pipeline: str,
        job_id: str,
        idx: int,
        datum: Datum,
        attempt: int,
        secrets: SecretPayload | None = None,
        nodes: FileNodes | None = None,
    ) -> DatumTask:
        """The task of one try of datum ``idx`` (its id ``job-datum-attempt`` never collides);
        ``nodes``: its input files, looked up beforehand (``file_nodes``)."""
        shared, empty_file_inputs = self._shared(spec, provenance, pipeline, job_id, secrets)
        return DatumTask(
            task_id=f"{job_id}-{idx}-{attempt}",
            datum_id=datum_id(datum),
            inputs=tuple(self._input(c, empty_file_inputs, nodes) for c in datum),
            **shared,
        )

    def file_nodes(self, datums: Iterable[Datum]) -> FileNodes:
        """The tree nodes of the datums' file inputs, looked up in path order. A job makes its
        tasks largest datum first, which in a big directory is a random order of its paths:
        looked up one by one, most lookups read and parse a page of the directory that the
        tree's cache no longer holds; in path order each page is read once."""
        keys = sorted({(c.root, c.path) for datum in datums for c in datum if c.kind == "file"})
        tree = self.ctx.tree
        return {(root, path): tree.get(root, path) for root, path in keys}

    def _shared(
        self,
        spec: PipelineSpec,
        provenance: Provenance,
        pipeline: str,
        job_id: str,
        secrets: SecretPayload | None,
    ) -> tuple[dict[str, Any], frozenset[str]]:
        key = (spec, provenance, secrets, pipeline, job_id)
        known = self._job
        if known is not None and all(a is b or a == b for a, b in zip(known[0], key, strict=True)):
            return known[1], known[2]
        t = spec.transform
        limits = spec.resource_limits
        shared: dict[str, Any] = {
            "job_id": job_id,
            "output_commit_id": job_id,
            "pipeline": pipeline,
            "store_url": self.store_url,
            "cmd": tuple(t.cmd or ()),
            "stdin": tuple(t.stdin or ()),
            "env": dict(t.env or {}),
            "accept_return_code": tuple(t.accept_return_code or ()),
            "working_dir": t.working_dir or "",
            "timeout_seconds": spec.datum_timeout_seconds,
            "runtime": provenance.runtime,
            "image": provenance.image,
            "user": t.user or "",
            "cpu": _number(limits.cpu if limits else None),
            "memory": _bytes(limits.memory if limits else None),
            "disk": _disk(spec),
            "gpus": _gpus(spec),
            "network": self.network,
            "err_cmd": tuple(t.err_cmd or ()),
            "err_stdin": tuple(t.err_stdin or ()),
            "datum_batching": bool(t.datum_batching),
            "secret_env": dict(secrets.env) if secrets else {},
            "secret_files": {p: dict(keys) for p, keys in secrets.files.items()} if secrets else {},
        }
        empty_file_inputs = _empty_file_inputs(spec)
        self._job = (key, shared, empty_file_inputs)
        self._dir_shared = {}
        return shared, empty_file_inputs

    def _input(
        self, c: DatumInput, empty_file_inputs: frozenset[str], found: FileNodes | None
    ) -> TaskInput:
        files: list[InputFile] = []
        dirs: list[str] = []
        tree = self.ctx.tree
        if c.kind == "file":
            key = (c.root, c.path)
            node = found[key] if found is not None and key in found else tree.get(*key)
            nodes = [node] if node is not None else []
        else:
            nodes = list(tree.walk(c.root, c.path))
            if not nodes:
                dirs.append(c.path)
        # Files read inside their directory's header and footer (put-header, --split sql), as
        # get-file reads them; one lookup per directory and job.
        shared = self._dir_shared
        if len(shared) > _DIR_SHARED_MAX:
            shared.clear()
        for n in nodes:
            if n.kind == "dir":
                assert n.id is not None
                shared[c.root, n.path] = tree.shared_of(n.id)
                if n.file_count == 0:
                    dirs.append(n.path)
                continue
            parent = parent_and_name(n.path)[0]
            sh = shared.get((c.root, parent))
            if sh is None:
                sh = shared[c.root, parent] = tree.shared(c.root, parent)
            if sh:
                chunks = (*sh.header, *n.chunks, *sh.footer)
                files.append(InputFile(n.path, chunks, sum(ch.length for ch in chunks)))
            else:
                files.append(InputFile(n.path, tuple(n.chunks), n.size))
        return TaskInput(
            name=c.name,
            commit=c.commit,
            glob_path=c.path,
            files=tuple(files),
            dirs=tuple(dirs),
            empty_files=c.name in empty_file_inputs,
        )


def _empty_file_inputs(spec: PipelineSpec) -> frozenset[str]:
    """Names of the inputs whose files user code sees empty (``empty_files``: names only)."""
    if spec.input is None:
        return frozenset()
    return frozenset(
        leaf.leaf_name or ""
        for leaf in spec.input.leaves()
        if (atom := leaf.pfs_input) is not None and atom.empty_files
    )


def _number(quantity: int | float | str | None) -> float | None:
    return None if quantity is None else parse_quantity(quantity)


def _disk(spec: PipelineSpec) -> int | None:
    """``resource_limits.disk`` in bytes; None: the worker's default."""
    limits = spec.resource_limits
    quantity = limits.disk if limits else None
    return None if quantity is None else int(parse_quantity(quantity))


def _gpus(spec: PipelineSpec) -> int:
    """How many GPUs a datum gets: ``resource_limits.gpu``, else ``resource_requests.gpu``."""
    for resources in (spec.resource_limits, spec.resource_requests):
        if resources is not None and resources.gpu is not None:
            return requested_gpus(resources.gpu)[1]
    return 0


def _bytes(quantity: int | float | str | None) -> str | None:
    """A memory quantity as a byte count (what ``podman run --memory`` takes)."""
    return None if quantity is None else str(int(parse_quantity(quantity)))
