"""``python -m tusk.worker --name NAME``: run datum tasks read as JSON lines from stdin."""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from typing import IO, Any, NoReturn

from tusk.worker import worker_from_environ
from tusk.worker.datum import Worker
from tusk.worker.protocol import DatumResult, DatumTask


def main(argv: list[str] | None = None) -> int:
    """Run a worker process: tasks on stdin, results on stdout."""
    parser = argparse.ArgumentParser(prog="python -m tusk.worker", description=__doc__)
    parser.add_argument("--name", required=True, help="worker name, pipeline-<name>-v<N>-<xxxxx>")
    parser.add_argument("--warm-runtime", help="the runtime of the datums to come (bwrap, podman)")
    parser.add_argument("--warm-image", help="their image, made ready while no task has come")
    args = parser.parse_args(argv)
    results = _private_stdout()
    signal.signal(signal.SIGTERM, _exit_on_signal)
    if args.warm_runtime and args.warm_image:
        threading.Thread(
            target=warm_image, args=(args.warm_runtime, args.warm_image), daemon=True
        ).start()
    worker = worker_from_environ(args.name)
    try:
        serve(worker, sys.stdin.buffer, results)
    finally:
        worker.close()  # ends the sandbox and removes its directories
    return 0


# How long datum batching's user code waits in `next datum` for another datum of its job before
# the worker ends it (Pachyderm ends it when its worker has no datum left).
BATCH_IDLE_SECONDS = 2.0


def serve(worker: Worker, tasks: IO[bytes], results: IO[bytes]) -> None:
    """One result line per task line, in order, until EOF."""
    for line in _lines(worker, tasks):
        if not line.strip():
            continue
        result = run_line(worker, line)
        results.write(json.dumps(result.to_json(), separators=(",", ":")).encode() + b"\n")
        results.flush()


def _lines(worker: Worker, tasks: IO[bytes]) -> Iterator[bytes]:
    """The task lines; while datum batching's user code waits and no task comes for
    BATCH_IDLE_SECONDS, the worker ends that code."""
    try:
        fd = tasks.fileno()
    except (OSError, ValueError):
        yield from tasks
        return
    buffer = b""
    while True:
        end = buffer.find(b"\n")
        if end >= 0:
            line, buffer = buffer[: end + 1], buffer[end + 1 :]
            yield line
            continue
        if worker.batch is not None:
            ready, _, _ = select.select([fd], [], [], BATCH_IDLE_SECONDS)
            if not ready:
                worker.end_batch()
                continue
        data = os.read(fd, 1 << 20)
        if not data:
            if buffer:
                yield buffer
            return
        buffer += data


def warm_image(runtime: str, image: str) -> None:
    """Ask podman now (in the background) what the first datum would wait for: the image's
    config and, for bwrap, its root filesystem (together ~0.15 s). A problem is left for that
    datum to report."""
    from tusk.worker.runtimes.images import inspect_image, mount_image

    try:
        inspect_image(image)
        if runtime == "bwrap":
            mount_image(image)
    except Exception:  # noqa: BLE001 - the datum that needs the image says what is wrong
        return


def run_line(worker: Worker, line: bytes) -> DatumResult:
    """The result of one task line; a bad line or a worker error is a failed result."""
    raw: Any = None
    try:
        raw = json.loads(line)
        task = DatumTask.from_json(raw)
    except Exception as e:
        task_id = raw.get("task_id", "") if isinstance(raw, dict) else ""
        return DatumResult(str(task_id), False, reason=f"invalid task: {e!r}", worker=worker.name)
    try:
        return worker.run(task)
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        return DatumResult(task.task_id, False, reason=f"worker error: {e!r}", worker=worker.name)


def _private_stdout() -> IO[bytes]:
    """Keep fd 1 for results alone: anything else written to stdout goes to stderr."""
    results = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return results


def _exit_on_signal(signum: int, frame: object) -> NoReturn:
    # SystemExit unwinds a running datum, which kills the user's process group on the way out.
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
