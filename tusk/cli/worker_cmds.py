"""What the workers of pipelines do, in pachctl 1.7's grammar: get-logs and list-worker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import click

from tusk.cli.common import client, out, print_raw, qualify, raw_option, reader
from tusk.cli.jsonpb import proto_timestamp_json
from tusk.cli.tables import TabWriter
from tusk.errors import InvalidArgument

WORKER_HEADER = ("NAME", "READY", "STATUS", "RESTARTS", "AGE")
FOLLOW_WAIT = 25  # seconds the server holds a request of get-logs -f for new lines


# -- logs ---------------------------------------------------------------------------------------
def _log_message(line: dict[str, Any]) -> dict[str, Any]:
    """A log line (its JSON value) as 1.7's LogMessage JSON (zero-valued fields left out)."""
    ts = line.get("ts")
    msg = {
        "pipelineName": line["pipeline"],
        "jobId": line.get("job_id", ""),
        "workerId": line.get("worker", ""),
        "datumId": line.get("datum_id", ""),
        "master": line.get("master", False),
        "user": line.get("user", True),
        "ts": proto_timestamp_json(datetime.fromtimestamp(ts, UTC)) if ts else None,
        "message": line["message"],
    }
    return {k: v for k, v in msg.items() if v}


def log_lines(
    *,
    pipeline: str | None,
    job: str | None,
    datum: str | None,
    master: bool,
    inputs: list[str],
    follow: bool,
) -> Iterator[dict[str, Any]]:
    """Stored log lines (JSON values), oldest first, a page per request; ``follow``: then each
    new one as it is stored (the server holds each request up to ``FOLLOW_WAIT`` seconds)."""
    r = reader()
    after = 0
    while True:
        lines: list[dict[str, Any]] = r.get(
            "/logs",
            pipeline=qualify(None, pipeline) if pipeline else None,
            job=job,
            datum=datum,
            master=master or None,
            after=after or None,
            inputs=",".join(inputs) if inputs else None,
            wait=FOLLOW_WAIT if follow else None,
        )
        yield from lines
        if lines:
            after = lines[-1]["pk"]
        if not follow:
            return


@click.command("get-logs")
@click.option(
    "-p",
    "--pipeline",
    default="",
    help="Filter the log for lines from this pipeline (accepts pipeline name)",
)
@click.option("--job", default="", help="Filter for log lines from this job (accepts job ID)")
@click.option("--datum", default="", help="Filter for log lines for this datum (accepts datum ID)")
@click.option(
    "--inputs",
    default="",
    help="Filter for log lines generated while processing these files (accepts PFS paths or file hashes)",
)
@click.option(
    "--master",
    is_flag=True,
    help="Return log messages from the master process (pipeline must be set).",
)
@click.option("-f", "--follow", is_flag=True, help="Follow logs as more are created.")
@click.option("-t", "--tail", default=0, type=int, help="Lines of recent logs to display.")
@raw_option
def get_logs(
    pipeline: str,
    job: str,
    datum: str,
    inputs: str,
    master: bool,
    follow: bool,
    tail: int,
    raw: bool,
) -> None:
    """Return logs from a job.

    The lines user code printed (and, with --master, the pipeline master's). tusk stores them,
    so they outlive the workers. With neither --pipeline nor --job: the server's own log.
    """
    if master and not pipeline:
        raise InvalidArgument("--master requires --pipeline", hint="tusk get-logs --master -p <p>")
    if tail < 0:
        raise InvalidArgument(f"--tail must be >= 0, not {tail}", hint="e.g. tusk get-logs -t 10")
    server = not pipeline and not job and not datum and not inputs
    lines = log_lines(
        pipeline=pipeline or None,
        job=job or None,
        datum=datum or None,
        master=master,
        inputs=[i for i in inputs.split(",") if i],
        follow=follow,
    )
    # the lines this command prints: raw prints every line, else user code's (the master's with
    # --master; everything for the server's own log)
    shown: Iterator[dict[str, Any]] = (
        line
        for line in lines
        if raw or server or line.get("user", True) or (master and line.get("master"))
    )
    if tail > 0 and not follow:
        shown = iter(list(shown)[-tail:])
    try:
        for line in shown:
            if raw:
                out(
                    json.dumps(_log_message(line), ensure_ascii=False, separators=(",", ":")) + "\n"
                )
            else:
                out(line["message"].rstrip("\n") + "\n")
    except KeyboardInterrupt:
        pass


# -- workers -----------------------------------------------------------------------------------
def kube_age(seconds: float) -> str:
    """kubectl's ``ShortHumanDuration``: ``4s``, ``1m``, ``16m``, ``1h``, ``2d``, ``1y``."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h"
    if s < 86400 * 365:
        return f"{s // 86400}d"
    return f"{s // (86400 * 365)}y"


@click.command("list-worker")
@click.argument("pipeline", required=False)
@raw_option
def list_worker(pipeline: str | None, raw: bool) -> None:
    """List the workers of every pipeline (or of one), like `kubectl get pods`."""
    workers = client().list_worker(pipeline or None)
    if raw:
        print_raw(workers)
        return
    tw = TabWriter(10, 4, 3)
    tw.write("\t".join(WORKER_HEADER) + "\n")
    for w in sorted(workers, key=lambda w: w.name):
        ready = "1/1" if w.state == "Running" else "0/1"
        tw.write(f"{w.name}\t{ready}\t{w.state}\t{w.restarts}\t{kube_age(w.age_seconds)}\n")
    out(tw.flush())


COMMANDS = [get_logs, list_worker]
