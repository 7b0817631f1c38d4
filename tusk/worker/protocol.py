"""Datum tasks and results: the JSON-lines messages between an executor and a worker.

A task carries everything a stateless worker needs to run one datum (the transform, the input
file references, the object store's URL); a result carries the output manifest, logs and timings.
``to_json`` gives a JSON-ready dict and ``from_json`` parses one, as for :class:`ChunkRef`.
"""

from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from tusk.errors import InvalidArgument
from tusk.storage import ChunkRef

LogStream = Literal["stdout", "stderr", "system"]

RUNTIME_NAMES = ("bwrap", "podman", "docker", "host")
DEFAULT_MAX_OUTPUT_BYTES = 10 << 30


def _chunks_to_json(chunks: tuple[ChunkRef, ...]) -> list[list[str | int]]:
    return [c.to_json() for c in chunks]


def _chunks_from_json(raw: list[list[str | int]]) -> tuple[ChunkRef, ...]:
    return tuple(ChunkRef.from_json(c) for c in raw)


@dataclass(frozen=True, slots=True)
class InputFile:
    """One input file of a datum, at its full repo path (``/dir/a.json``)."""

    path: str
    chunks: tuple[ChunkRef, ...]
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "chunks": _chunks_to_json(self.chunks), "size": self.size}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> InputFile:
        return cls(str(raw["path"]), _chunks_from_json(raw["chunks"]), int(raw["size"]))


@dataclass(frozen=True, slots=True)
class DatumInput:
    """One input of a datum: its files (those under the matched ``glob_path``) and empty dirs."""

    name: str
    commit: str
    glob_path: str
    files: tuple[InputFile, ...] = ()
    dirs: tuple[str, ...] = ()
    empty_files: bool = False  # user code sees each file empty (its name only), as in Pachyderm

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "commit": self.commit,
            "glob_path": self.glob_path,
            "files": [f.to_json() for f in self.files],
            "dirs": list(self.dirs),
            "empty_files": self.empty_files,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> DatumInput:
        return cls(
            name=str(raw["name"]),
            commit=str(raw["commit"]),
            glob_path=str(raw["glob_path"]),
            files=tuple(InputFile.from_json(f) for f in raw.get("files", ())),
            dirs=tuple(str(d) for d in raw.get("dirs", ())),
            empty_files=bool(raw.get("empty_files", False)),
        )


@dataclass(frozen=True, slots=True)
class DatumTask:
    """Run one datum: ``task_id`` is ``<job>-<datum index>-<attempt>`` so retries never collide."""

    task_id: str
    job_id: str
    datum_id: str
    output_commit_id: str
    pipeline: str
    store_url: str
    cmd: tuple[str, ...]
    stdin: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    accept_return_code: tuple[int, ...] = ()
    working_dir: str = ""
    timeout_seconds: float | None = None
    runtime: str = "host"  # where the command runs: bwrap, podman, docker or host
    image: str = ""
    user: str = ""
    cpu: float | None = None
    memory: str | None = None
    disk: int | None = None  # bytes of /pfs/out and /tmp (None: the worker's default)
    gpus: int = 0  # GPUs the datum gets
    network: bool = False  # the sandbox shares the host's network (else loopback only)
    inputs: tuple[DatumInput, ...] = ()
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    err_cmd: tuple[str, ...] = ()  # 2.x: runs when cmd fails; exit 0 recovers the datum
    err_stdin: tuple[str, ...] = ()
    spout: bool = False  # the next tar stream of a spout's running code (tusk.worker.spout)
    datum_batching: bool = False  # 2.x: user code runs on, asking `next datum` for each datum
    # transform.secrets, resolved: never printed (repr=False), never logged or recorded
    secret_env: dict[str, str] = field(default_factory=dict, repr=False)
    secret_files: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)

    @property
    def secret_mounts(self) -> tuple[str, ...]:
        """The directories where secrets' keys appear as files, in a fixed order."""
        return tuple(sorted(self.secret_files))

    def to_json(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "job_id": self.job_id,
            "datum_id": self.datum_id,
            "output_commit_id": self.output_commit_id,
            "pipeline": self.pipeline,
            "store_url": self.store_url,
            "cmd": list(self.cmd),
            "stdin": list(self.stdin),
            "env": dict(self.env),
            "accept_return_code": list(self.accept_return_code),
            "working_dir": self.working_dir,
            "timeout_seconds": self.timeout_seconds,
            "runtime": self.runtime,
            "image": self.image,
            "user": self.user,
            "cpu": self.cpu,
            "memory": self.memory,
            "disk": self.disk,
            "gpus": self.gpus,
            "network": self.network,
            "inputs": [i.to_json() for i in self.inputs],
            "max_output_bytes": self.max_output_bytes,
            "err_cmd": list(self.err_cmd),
            "err_stdin": list(self.err_stdin),
            "spout": self.spout,
            "datum_batching": self.datum_batching,
            "secret_env": dict(self.secret_env),
            "secret_files": {path: dict(keys) for path, keys in self.secret_files.items()},
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> DatumTask:
        runtime = str(raw.get("runtime") or "host")
        if runtime not in RUNTIME_NAMES:
            raise InvalidArgument(
                f"invalid runtime {runtime!r}", hint="use one of " + ", ".join(RUNTIME_NAMES)
            )
        cpu = raw.get("cpu")
        for key in ("cmd", "stdin", "accept_return_code", "inputs", "err_cmd", "err_stdin"):
            if not isinstance(raw.get(key) or [], list):
                raise InvalidArgument(f"task field {key!r} must be a list")
        timeout = raw.get("timeout_seconds")
        return cls(
            task_id=str(raw["task_id"]),
            job_id=str(raw["job_id"]),
            datum_id=str(raw["datum_id"]),
            output_commit_id=str(raw["output_commit_id"]),
            pipeline=str(raw["pipeline"]),
            store_url=str(raw["store_url"]),
            cmd=tuple(str(c) for c in raw["cmd"]),
            stdin=tuple(str(s) for s in raw.get("stdin") or ()),
            env={str(k): str(v) for k, v in (raw.get("env") or {}).items()},
            accept_return_code=tuple(int(c) for c in raw.get("accept_return_code") or ()),
            working_dir=str(raw.get("working_dir") or ""),
            timeout_seconds=None if timeout is None else float(timeout),
            runtime=runtime,
            image=str(raw.get("image") or ""),
            user=str(raw.get("user") or ""),
            cpu=None if cpu is None else float(cpu),
            memory=None if raw.get("memory") is None else str(raw["memory"]),
            disk=None if raw.get("disk") is None else int(raw["disk"]),
            gpus=int(raw.get("gpus") or 0),
            network=bool(raw.get("network", False)),
            inputs=tuple(DatumInput.from_json(i) for i in raw.get("inputs") or ()),
            max_output_bytes=int(raw.get("max_output_bytes", DEFAULT_MAX_OUTPUT_BYTES)),
            err_cmd=tuple(str(c) for c in raw.get("err_cmd") or ()),
            err_stdin=tuple(str(s) for s in raw.get("err_stdin") or ()),
            spout=bool(raw.get("spout", False)),
            datum_batching=bool(raw.get("datum_batching", False)),
            secret_env={str(k): str(v) for k, v in (raw.get("secret_env") or {}).items()},
            secret_files={
                str(path): {str(k): str(v) for k, v in keys.items()}
                for path, keys in (raw.get("secret_files") or {}).items()
            },
        )


# A task's own fields: every other field is the same for all datums of a job (its command,
# image, environment, limits, ...); ``shared_fields(task)`` is the tuple of those others.
PER_DATUM_FIELDS = ("task_id", "datum_id", "inputs")
SHARED_FIELDS = tuple(
    f.name for f in dataclasses.fields(DatumTask) if f.name not in PER_DATUM_FIELDS
)
shared_fields = operator.attrgetter(*SHARED_FIELDS)
FOLLOWS = "follows"  # a task line's key: only the datum's own fields, the rest as before


class LineBuffer:
    """Bytes read from a pipe, split into the JSON lines both ends of it speak: as many lines
    per read as have come, each whole line counted as it arrives (no rescanning)."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._start = 0  # where the lines not taken yet begin
        self.whole = 0  # the whole lines not taken yet

    def add(self, data: bytes) -> None:
        """What one read gave."""
        if self._start > len(self._data) // 2:
            del self._data[: self._start]
            self._start = 0
        self._data += data
        self.whole += data.count(b"\n")

    def take(self) -> bytes | None:
        """The next whole line (with its newline), or None until one has come."""
        if not self.whole:
            return None
        end = self._data.index(b"\n", self._start)
        line = bytes(self._data[self._start : end + 1])
        self._start = end + 1
        self.whole -= 1
        return line

    def rest(self) -> bytes:
        """What came after the last whole line (a line cut short)."""
        return bytes(self._data[self._start :])


class TaskEncoder:
    """The task lines for one worker process. A task whose other fields are those of the task
    before it (the next datum of the same job) goes as a follow-up line that holds only its
    datum's own fields: a job's datums do not send, nor parse, its command, image, environment
    and limits again each time."""

    def __init__(self) -> None:
        self._shared: tuple[object, ...] | None = None

    def encode(self, task: DatumTask) -> bytes:
        """``task`` as one JSON line, a follow-up when it can be."""
        shared = shared_fields(task)
        if shared != self._shared:
            self._shared = shared
            return encode_task(task)
        raw = {
            FOLLOWS: True,
            "task_id": task.task_id,
            "datum_id": task.datum_id,
            "inputs": [i.to_json() for i in task.inputs],
        }
        return orjson.dumps(raw) + b"\n"

    def reset(self) -> None:
        """A new worker process: its next task goes in full."""
        self._shared = None


class TaskDecoder:
    """The tasks of one stream of task lines (see :class:`TaskEncoder`)."""

    def __init__(self) -> None:
        # the shared fields of the last task, by name (None after a line that is no task)
        self._shared: dict[str, Any] | None = None

    def decode(self, raw: Any) -> DatumTask:
        """The task of one parsed line; InvalidArgument for a line that is none (a follow-up
        after it fails too)."""
        shared, self._shared = self._shared, None
        if not isinstance(raw, dict):
            raise InvalidArgument("a task line must hold a JSON object")
        if raw.get(FOLLOWS):
            if shared is None:
                raise InvalidArgument("a follow-up task line without a valid task line before it")
            inputs = raw.get("inputs", [])
            if not isinstance(inputs, list):
                raise InvalidArgument("task field 'inputs' must be a list")
            task = DatumTask(
                task_id=str(raw["task_id"]),
                datum_id=str(raw["datum_id"]),
                inputs=tuple(DatumInput.from_json(i) for i in inputs),
                **shared,
            )
        else:
            task = DatumTask.from_json(raw)
            shared = dict(zip(SHARED_FIELDS, shared_fields(task), strict=True))
        self._shared = shared
        return task


def encode_task(task: DatumTask) -> bytes:
    """A task as one full JSON line (what a worker reads without a line before it)."""
    return orjson.dumps(task.to_json()) + b"\n"


@dataclass(frozen=True, slots=True)
class OutputFile:
    """One file a datum wrote, at its path under ``/pfs/out`` (with a leading ``/``)."""

    path: str
    chunks: tuple[ChunkRef, ...]
    size: int
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "chunks": _chunks_to_json(self.chunks),
            "size": self.size,
            "hash": self.hash,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> OutputFile:
        return cls(
            str(raw["path"]), _chunks_from_json(raw["chunks"]), int(raw["size"]), str(raw["hash"])
        )


LogLine = tuple[float, LogStream, str]


@dataclass(frozen=True, slots=True)
class DatumResult:
    """What running a datum produced. User code failing is ``ok=False`` with a ``reason``."""

    task_id: str
    ok: bool
    exit_code: int | None = None
    reason: str = ""
    recovered: bool = False  # cmd failed, then err_cmd exited 0 (2.x)
    logs: tuple[LogLine, ...] = ()
    outputs: tuple[OutputFile, ...] = ()
    dirs: tuple[str, ...] = ()
    bytes_down: int = 0
    bytes_up: int = 0
    seconds_download: float = 0.0
    seconds_process: float = 0.0
    seconds_upload: float = 0.0
    worker: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "ok": self.ok,
            "exit_code": self.exit_code,
            "reason": self.reason,
            "recovered": self.recovered,
            "logs": [list(line) for line in self.logs],
            "outputs": [o.to_json() for o in self.outputs],
            "dirs": list(self.dirs),
            "bytes_down": self.bytes_down,
            "bytes_up": self.bytes_up,
            "seconds_download": self.seconds_download,
            "seconds_process": self.seconds_process,
            "seconds_upload": self.seconds_upload,
            "worker": self.worker,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> DatumResult:
        exit_code = raw.get("exit_code")
        return cls(
            task_id=str(raw["task_id"]),
            ok=bool(raw["ok"]),
            exit_code=None if exit_code is None else int(exit_code),
            reason=str(raw.get("reason") or ""),
            recovered=bool(raw.get("recovered", False)),
            logs=tuple(_log_line(line) for line in raw.get("logs") or ()),
            outputs=tuple(OutputFile.from_json(o) for o in raw.get("outputs") or ()),
            dirs=tuple(str(d) for d in raw.get("dirs") or ()),
            bytes_down=int(raw.get("bytes_down", 0)),
            bytes_up=int(raw.get("bytes_up", 0)),
            seconds_download=float(raw.get("seconds_download", 0.0)),
            seconds_process=float(raw.get("seconds_process", 0.0)),
            seconds_upload=float(raw.get("seconds_upload", 0.0)),
            worker=str(raw.get("worker") or ""),
        )


def result_line(result: DatumResult) -> bytes:
    """A result as one JSON line."""
    return orjson.dumps(result.to_json()) + b"\n"


def parse_result(line: bytes | str) -> DatumResult:
    """The result of one line a worker wrote."""
    return DatumResult.from_json(orjson.loads(line))


def _log_line(raw: list[Any]) -> LogLine:
    ts, stream, line = raw
    if stream not in ("stdout", "stderr", "system"):
        raise InvalidArgument(f"invalid log stream {stream!r}")
    return (float(ts), stream, str(line))
