"""PPS commands in pachctl 1.7's grammar: pipelines, jobs, datums, logs, flush and workers.

The server returns plain JSON dicts for PPS (see ``tusk.client.client.PpsMixin``); this module
turns them into 1.7's layouts. Job ids are global (one change, one id, shared by every job it
caused), so the commands that take a job id also take ``--pipeline`` to pick one.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click
import httpx
import yaml

from tusk.cli.common import client, out, print_raw, raw_option, warn
from tusk.cli.format import (
    Table,
    TabWriter,
    ago,
    bytes_size,
    format_duration_go,
    human_duration,
    print_table,
    proto_timestamp_json,
    render_json,
)
from tusk.cli.pfs_cmds import COMMIT_HEADER, commit_row
from tusk.errors import InvalidArgument, NotFound, SourceUnavailable

JOB_HEADER = (
    "ID",
    "OUTPUT COMMIT",
    "STARTED",
    "DURATION",
    "RESTART",
    "PROGRESS",
    "DL",
    "UL",
    "STATE",
)
PIPELINE_HEADER = ("NAME", "INPUT", "OUTPUT", "CREATED", "STATE")
DATUM_HEADER = ("ID", "STATUS", "TIME")
WORKER_HEADER = ("NAME", "READY", "STATUS", "RESTARTS", "AGE")
JOB_COUNT_STATES = ("starting", "running", "failure", "success")  # 1.7 leaves out killed


# -- small helpers ------------------------------------------------------------------------------
def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _echo_json(obj: Any) -> None:
    click.echo(render_json(obj))


def _commit_arg(text: str) -> tuple[str, str]:
    """``repo/commit`` (the commit may be a branch, or an id)."""
    repo, sep, ref = text.partition("/")
    if not sep or not repo or not ref:
        raise InvalidArgument(
            f"invalid commit {text!r}: expected repo/commit", hint="e.g. images/master"
        )
    return repo, ref


def input_shorthand(inp: dict[str, Any] | None) -> str:
    """The INPUT column of list-pipeline: ``repo:glob``, ``(a ⨯ b)``, ``(a ∪ b)``, ``tick:spec``."""
    if not inp:
        return "none"
    for kind in ("atom", "pfs"):
        if kind in inp:
            return f"{inp[kind].get('repo', '')}:{inp[kind].get('glob', '')}"
    if "cron" in inp:
        return f"{inp['cron'].get('name', '')}:{inp['cron'].get('spec', '')}"
    if "git" in inp:
        git = inp["git"]
        return f"{git.get('name') or git.get('URL', '')}:{git.get('URL', '')}"
    for kind, sep in (("cross", " ⨯ "), ("union", " ∪ "), ("join", " ⋈ "), ("group", ", ")):
        if kind in inp:
            inner = sep.join(input_shorthand(k) for k in inp[kind])
            return f"group({inner})" if kind == "group" else f"({inner})"
    return ""


_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def _proto_duration(text: str | None) -> str:
    """A spec duration (``"1m"``) as Go prints a ``*types.Duration``: ``seconds:60 `` (or <nil>)."""
    if not text:
        return "<nil>"
    parts = _GO_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.lstrip("+"):
        return text
    total_ns = round(sum(float(n) * _GO_UNITS[u] for n, u in parts) * 1e9)
    secs, nanos = divmod(total_ns, 1_000_000_000)
    fields = ([f"seconds:{secs}"] if secs else []) + ([f"nanos:{nanos}"] if nanos else [])
    return "".join(f"{f} " for f in fields)


def _parallelism(spec: dict[str, Any]) -> str:
    """The parallelism spec in proto text form, as 1.7 prints it (``constant:1 ``)."""
    ps = spec.get("parallelism_spec") or {}
    if ps.get("coefficient"):
        return f"coefficient:{ps['coefficient']} "
    return f"constant:{ps.get('constant') or 1} "


def _resources(title: str, res: dict[str, Any] | None) -> list[str]:
    if not res:
        return []
    lines = [f"{title}:", f"  CPU: {res.get('cpu', 0)}", f"  Memory: {res.get('memory', '')} "]
    if res.get("gpu"):
        lines.append(f"  GPU: {res['gpu']} ")
    return lines


_ATOM_ORDER = ("name", "repo", "branch", "commit", "glob", "lazy", "from_commit")


def _input_json(inp: dict[str, Any] | None, commits: dict[tuple[str, str], str]) -> Any:
    """A spec input in Go struct order, with each atom's ``commit`` filled from ``commits``."""
    if inp is None:
        return None
    result: dict[str, Any] = {}
    for kind, value in inp.items():
        if kind in ("atom", "pfs"):
            atom = dict(value)
            cid = commits.get((atom.get("repo", ""), atom.get("branch", "master")))
            if cid and not atom.get("commit"):
                atom["commit"] = cid
            ordered = {k: atom[k] for k in _ATOM_ORDER if k in atom}
            result[kind] = {**ordered, **{k: v for k, v in atom.items() if k not in ordered}}
        elif isinstance(value, list):
            result[kind] = [_input_json(k, commits) for k in value]
        else:
            result[kind] = value
    return result


_TRANSFORM_ORDER = ("image", "cmd", "env", "secrets", "image_pull_secrets", "stdin")


def _transform_json(transform: dict[str, Any] | None) -> str:
    t = dict(transform or {})
    ordered = {k: t[k] for k in _TRANSFORM_ORDER if k in t}
    ordered.update({k: v for k, v in t.items() if k not in ordered})
    return json.dumps(ordered, indent=2, ensure_ascii=False)


# -- pipelines: create / update / edit ----------------------------------------------------------
def _read_spec(path: str) -> tuple[str, str]:
    """The text of ``-f`` (a file, an http(s) URL or ``-`` for stdin) and a name for errors."""
    if path == "-":
        warn("Reading from stdin.")
        return sys.stdin.read(), "stdin"
    if path.startswith(("http://", "https://")):
        try:
            resp = httpx.get(path, follow_redirects=True, timeout=60)
            resp.raise_for_status()
        except httpx.HTTPError as exc:
            raise SourceUnavailable(
                f"could not read pipeline spec from {path}: {exc}", hint="check the URL"
            ) from None
        return resp.text, path
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read(), path
    except OSError as exc:
        raise SourceUnavailable(
            f"could not read pipeline spec {path}: {exc.strerror}",
            hint="pass the spec with -f <file>, -f <url>, or on stdin",
        ) from None


def _spec_names(text: str) -> list[str]:
    """Best-effort pipeline names in a spec text (the server does the real parsing)."""
    docs: list[Any] = []
    try:
        if text.lstrip().startswith("{"):
            dec, pos = json.JSONDecoder(), 0
            while True:
                while pos < len(text) and text[pos].isspace():
                    pos += 1
                if pos >= len(text):
                    break
                doc, pos = dec.raw_decode(text, pos)
                docs.append(doc)
        else:
            docs = list(yaml.safe_load_all(text))
    except (ValueError, yaml.YAMLError):
        return []
    names = []
    for doc in docs:
        if isinstance(doc, dict) and isinstance(doc.get("pipeline"), dict):
            name = doc["pipeline"].get("name")
            if isinstance(name, str) and name:
                names.append(name)
    return names


def _send_specs(text: str, source: str, *, update: bool, reprocess: bool) -> None:
    c = client()
    before: dict[str, dict[str, Any]] = {}
    if update and not reprocess:
        for name in _spec_names(text):
            try:
                before[name] = c.extract_pipeline(name)
            except NotFound:  # the update itself reports it
                continue
    infos = c.create_pipeline(text, source=source, update=update, reprocess=reprocess)
    for info in infos:
        old = before.get(info["name"])
        if old is not None and old.get("transform") != info["spec"].get("transform"):
            warn(
                f"The transform of pipeline {info['name']} changed: its old results were kept, "
                "and datums whose inputs didn't change won't be rerun (use --reprocess to rerun "
                "them)."
            )


def _pipeline_file_options(f: Any) -> Any:
    f = click.option("--password", default="", help="Registry password (accepted; unused).")(f)
    f = click.option("-u", "--username", default="", help="Registry user (accepted; unused).")(f)
    f = click.option(
        "-r", "--registry", default="docker.io", help="Image registry (accepted; unused)."
    )(f)
    f = click.option(
        "-p", "--push-images", is_flag=True, help="Not supported by tusk (no registry)."
    )(f)
    return click.option(
        "-f", "--file", "path", default="-", help="The spec: a file, a URL, or - for stdin."
    )(f)


def _warn_push(push_images: bool) -> None:
    if push_images:
        warn("--push-images is not supported by tusk (there is no image registry); continuing.")


@click.command("create-pipeline")
@_pipeline_file_options
def create_pipeline(
    path: str, push_images: bool, registry: str, username: str, password: str
) -> None:
    """Create a new pipeline from a spec (several specs may stand in one file)."""
    _warn_push(push_images)
    text, source = _read_spec(path)
    _send_specs(text, source, update=False, reprocess=False)


@click.command("update-pipeline")
@_pipeline_file_options
@click.option("--reprocess", is_flag=True, help="Reprocess datums that were already processed.")
def update_pipeline(
    path: str, push_images: bool, registry: str, username: str, password: str, reprocess: bool
) -> None:
    """Update an existing pipeline from a spec."""
    _warn_push(push_images)
    text, source = _read_spec(path)
    _send_specs(text, source, update=True, reprocess=reprocess)


@click.command("edit-pipeline")
@click.argument("pipeline")
@click.option("--editor", default="", help="Editor to use ($EDITOR, else vi).")
@click.option("--reprocess", is_flag=True, help="Reprocess datums that were already processed.")
def edit_pipeline(pipeline: str, editor: str, reprocess: bool) -> None:
    """Edit a pipeline's spec in an editor, then update the pipeline."""
    original = render_json(client().extract_pipeline(pipeline)) + "\n"
    fd, path = tempfile.mkstemp(prefix=f"{pipeline}-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(original)
        command = shlex.split(editor or os.environ.get("EDITOR") or "vi")
        try:
            code = subprocess.call([*command, path])
        except OSError as exc:
            raise InvalidArgument(
                f"could not start editor {command[0]}: {exc.strerror}",
                hint="pass --editor <program> or set $EDITOR",
            ) from None
        if code != 0:
            raise InvalidArgument(f"editor {command[0]} exited with {code}; nothing was changed")
        with open(path, encoding="utf-8") as fh:
            edited = fh.read()
    finally:
        os.unlink(path)
    if edited == original or _same_json(edited, original):
        click.echo("Pipeline unchanged, no update will be performed.")
        return
    _send_specs(edited, f"edit-pipeline {pipeline}", update=True, reprocess=reprocess)


def _same_json(a: str, b: str) -> bool:
    try:
        return bool(json.loads(a) == json.loads(b))
    except ValueError:
        return False


# -- pipelines: read ----------------------------------------------------------------------------
@click.command("extract-pipeline")
@click.argument("pipeline")
def extract_pipeline(pipeline: str) -> None:
    """Print the spec a pipeline was created from (with its salt), as JSON."""
    _echo_json(client().extract_pipeline(pipeline))


def pipeline_details(info: dict[str, Any]) -> str:
    spec: dict[str, Any] = info["spec"]
    lines = [f"Name: {info['name']}"]
    if spec.get("description"):
        lines.append(f"Description: {spec['description']}")
    lines += [
        f"Created: {ago(_dt(info['created']))}",
        f"State: {info['state']}",
        f"Stopped: {'true' if info['stopped'] else 'false'}",
        f"Reason: {info.get('reason') or ''}",
        f"Parallelism Spec: {_parallelism(spec)}",
        *_resources("ResourceRequests", spec.get("resource_requests")),
        *_resources("ResourceLimits", spec.get("resource_limits")),
        f"Datum Timeout: {_proto_duration(spec.get('datum_timeout'))}",
        f"Job Timeout: {_proto_duration(spec.get('job_timeout'))}",
        "Input:",
        render_json(_input_json(spec.get("input"), {})),
        f"Output Branch: {spec.get('output_branch') or 'master'}",
        "Transform:",
        _transform_json(spec.get("transform")),
    ]
    if (spec.get("egress") or {}).get("URL"):
        lines.append(f"Egress: {spec['egress']['URL']} ")
    counts = info.get("job_counts") or {}
    lines += ["Job Counts:", "".join(f"{s}: {counts.get(s, 0)}\t" for s in JOB_COUNT_STATES)]
    return "\n".join(lines) + "\n"


@click.command("inspect-pipeline")
@click.argument("pipeline")
@raw_option
def inspect_pipeline(pipeline: str, raw: bool) -> None:
    """Return info about a pipeline."""
    info = client().inspect_pipeline(pipeline)
    if raw:
        _echo_json(info)
    else:
        out(pipeline_details(info))


@click.command("list-pipeline")
@click.option("-s", "--spec", is_flag=True, help="Print the specs of the pipelines as JSON.")
@raw_option
def list_pipeline(spec: bool, raw: bool) -> None:
    """Return info about all pipelines, newest first."""
    infos = client().list_pipeline()
    if raw or spec:
        for info in infos:
            _echo_json(info["spec"] if spec else info)
        return
    rows = [
        (
            i["name"],
            input_shorthand(i["spec"].get("input")),
            f"{i['name']}/{i['spec'].get('output_branch') or 'master'}",
            ago(_dt(i["created"])),
            i["state"],
        )
        for i in infos
    ]
    out(print_table(PIPELINE_HEADER, rows))


# -- pipelines: delete / start / stop -----------------------------------------------------------
@click.command("delete-pipeline")
@click.argument("pipeline", required=False)
@click.option("--all", "all_", is_flag=True, help="Delete all pipelines.")
@click.option("-f", "--force", is_flag=True, help="Delete even if other pipelines read it.")
def delete_pipeline(pipeline: str | None, all_: bool, force: bool) -> None:
    """Delete a pipeline (its output repo and jobs go with it)."""
    if bool(pipeline) == all_:
        raise InvalidArgument(
            "either a pipeline name or the --all flag needs to be provided",
            hint="tusk delete-pipeline <pipeline>, or tusk delete-pipeline --all",
        )
    client().delete_pipeline(pipeline, all=all_, force=force)


@click.command("start-pipeline")
@click.argument("pipeline")
def start_pipeline(pipeline: str) -> None:
    """Restart a stopped pipeline (one job over the current inputs)."""
    client().start_pipeline(pipeline)


@click.command("stop-pipeline")
@click.argument("pipeline")
def stop_pipeline(pipeline: str) -> None:
    """Stop a pipeline: no new jobs start until start-pipeline."""
    client().stop_pipeline(pipeline)


# -- jobs ---------------------------------------------------------------------------------------
def job_row(job: dict[str, Any]) -> tuple[str, ...]:
    oc = job.get("output_commit")
    started, finished = job.get("started"), job.get("finished")
    return (
        job["id"],
        f"{oc['repo']}/{oc['id']}" if oc else f"{job['pipeline']}/-",
        ago(_dt(started)),
        human_duration(finished - started) if finished is not None and started else "-",
        str(job.get("restarts", 0)),
        f"{job.get('processed', 0)} + {job.get('skipped', 0)} / {job.get('total', 0)}",
        bytes_size(job.get("bytes_down", 0)),
        bytes_size(job.get("bytes_up", 0)),
        job["state"],
    )


def _print_jobs(jobs: Sequence[dict[str, Any]], raw: bool) -> None:
    if raw:
        for job in jobs:
            _echo_json(job)
    else:
        out(print_table(JOB_HEADER, [job_row(j) for j in jobs]))


@click.command("list-job")
@click.option("-p", "--pipeline", default="", help="Only the jobs of this pipeline.")
@click.option("-i", "--input", "inputs", multiple=True, help="Jobs with this input (repo/commit).")
@click.option("-o", "--output", default="", help="The job of this output commit (repo/commit).")
@raw_option
def list_job(pipeline: str, inputs: Sequence[str], output: str, raw: bool) -> None:
    """Return info about jobs, newest first."""
    for text in [*inputs, *([output] if output else [])]:
        _commit_arg(text)
    jobs = client().list_job(pipeline or None, inputs=list(inputs) or None, output=output or None)
    _print_jobs(jobs, raw)


@click.command("flush-job")
@click.argument("commits", nargs=-1, required=True)
@click.option("-p", "--pipeline", "pipelines", multiple=True, help="Only these pipelines' jobs.")
@raw_option
def flush_job(commits: Sequence[str], pipelines: Sequence[str], raw: bool) -> None:
    """Wait for the jobs caused by the given commits (repo/commit) to finish; print them."""
    refs = [_commit_arg(c) for c in commits]
    _print_jobs(client().flush_job(refs, pipelines=list(pipelines) or None), raw)


def _worker_status_header() -> str:
    # tusk has no per-worker datum queue to report, so the table is only its header
    w = TabWriter(20, 1, 3)
    w.write("WORKER\tJOB\tDATUM\tSTARTED\tQUEUE\t\n")
    return w.flush().rstrip("\n")


def job_details(job: dict[str, Any]) -> str:
    spec: dict[str, Any] = job.get("spec") or {}
    started, finished = job.get("started"), job.get("finished")
    lines = [f"ID: {job['id']} ", f"Pipeline: {job['pipeline']} ", f"Started: {ago(_dt(started))} "]
    if finished is not None and started:
        lines.append(f"Duration: {human_duration(finished - started)} ")
    lines += [
        f"State: {job['state']}",
        f"Reason: {job.get('reason') or ''}",
        f"Processed: {job.get('processed', 0)}",
        f"Failed: {job.get('failed', 0)}",
        f"Skipped: {job.get('skipped', 0)}",
        f"Total: {job.get('total', 0)}",
        f"Data Downloaded: {bytes_size(job.get('bytes_down', 0))}",
        f"Data Uploaded: {bytes_size(job.get('bytes_up', 0))}",
        f"Download Time: {human_duration(job.get('seconds_download') or 0)}",
        f"Process Time: {human_duration(job.get('seconds_process') or 0)}",
        f"Upload Time: {human_duration(job.get('seconds_upload') or 0)}",
        f"Datum Timeout: {_proto_duration(spec.get('datum_timeout'))}",
        f"Job Timeout: {_proto_duration(spec.get('job_timeout'))}",
        "Worker Status:",
        _worker_status_header(),
        f"Restarts: {job.get('restarts', 0)}",
        f"ParallelismSpec: {_parallelism(spec)}",
        *_resources("ResourceRequests", spec.get("resource_requests")),
        *_resources("ResourceLimits", spec.get("resource_limits")),
    ]
    commits = {(i["repo"], i.get("branch") or "master"): i["id"] for i in job.get("inputs", [])}
    lines += ["Input:", render_json(_input_json(spec.get("input"), commits))]
    lines += ["Transform:", _transform_json(spec.get("transform")) + " "]
    if job.get("output_commit"):
        lines.append(f"Output Commit: {job['output_commit']['id']} ")
    if (spec.get("egress") or {}).get("URL"):
        lines.append(f"Egress: {spec['egress']['URL']} ")
    return "\n".join(lines) + "\n"


@click.command("inspect-job")
@click.argument("job_id")
@click.option("-b", "--block", is_flag=True, help="Wait for the job to finish.")
@click.option("--pipeline", default="", help="The pipeline, when the id is shared by several.")
@raw_option
def inspect_job(job_id: str, block: bool, pipeline: str, raw: bool) -> None:
    """Return info about a job."""
    job = client().inspect_job(job_id, pipeline=pipeline or None, block=block)
    if raw:
        _echo_json(job)
    else:
        out(job_details(job))


@click.command("stop-job")
@click.argument("job_id")
@click.option("--pipeline", default="", help="The pipeline, when the id is shared by several.")
def stop_job(job_id: str, pipeline: str) -> None:
    """Stop a job; its output commit is finished without data (the job is killed)."""
    client().stop_job(job_id, pipeline=pipeline or None)


@click.command("delete-job")
@click.argument("job_id")
@click.option("--pipeline", default="", help="The pipeline, when the id is shared by several.")
def delete_job(job_id: str, pipeline: str) -> None:
    """Delete a job record (its output commit stays)."""
    client().delete_job(job_id, pipeline=pipeline or None)


# -- datums -------------------------------------------------------------------------------------
def _datum_time(d: dict[str, Any]) -> str:
    return human_duration(d["seconds"]) if d.get("seconds") else "-"


@click.command("list-datum")
@click.argument("job_id")
@click.option("--pipeline", default="", help="The pipeline, when the job id is shared by several.")
@click.option(
    "--pageSize", "page_size", default=0, type=int, help="Accepted for 1.7 compatibility."
)
@click.option("--page", default=0, type=int, help="Accepted for 1.7 compatibility.")
@raw_option
def list_datum(job_id: str, pipeline: str, page_size: int, page: int, raw: bool) -> None:
    """Return the datums of a job (failed first)."""
    datums = client().list_datum(job_id, pipeline=pipeline or None)
    if raw:
        for d in datums:
            _echo_json(d)
        return
    table = Table(DATUM_HEADER)
    for d in datums:
        state = d["state"] if d["state"] in ("success", "skipped", "failed") else "-"
        table.add_raw(f"{d['id']}\t{state}\t{_datum_time(d)}\n")
    out(table.render())


@click.command("inspect-datum")
@click.argument("job_id")
@click.argument("datum_id")
@click.option("--pipeline", default="", help="The pipeline, when the job id is shared by several.")
@raw_option
def inspect_datum(job_id: str, datum_id: str, pipeline: str, raw: bool) -> None:
    """Return info about one datum of a job."""
    d = client().inspect_datum(job_id, datum_id, pipeline=pipeline or None)
    if raw:
        _echo_json(d)
        return
    state = d["state"].upper() if d["state"] in ("success", "skipped", "failed") else "STARTING"
    w = TabWriter(20, 1, 3)
    w.write(f"ID\t{d['id']}\nJob ID\t{d['job_id']}\nState\t{state}\n")
    if d["state"] == "failed" and d.get("reason"):
        w.write(f"Reason\t{d['reason']}\n")
    w.write(f"Data Downloaded\t{bytes_size(d.get('bytes_down', 0))}\n")
    w.write(f"Data Uploaded\t{bytes_size(d.get('bytes_up', 0))}\n")
    w.write(f"Total Time\t{format_duration_go(d.get('seconds') or 0)}\n")
    tables = TabWriter(10, 1, 3)
    tables.write("  REPO\tCOMMIT\tPATH\t\n")
    for f in d.get("inputs", []):
        tables.write(f"  {f['repo']}\t{f['commit']}\t{f['path']}\t\n")
    out(w.flush() + "Inputs:\n" + tables.flush())


@click.command("restart-datum")
@click.argument("job_id")
@click.argument("datum_filter")
def restart_datum(job_id: str, datum_filter: str) -> None:
    """Not supported by tusk: failed datums are retried datum_tries times, and again next job."""
    raise InvalidArgument(
        "restart-datum is not supported by tusk",
        hint="failed datums are tried datum_tries times; a new input commit or "
        "`tusk update-pipeline --reprocess` runs them again",
    )


# -- logs ---------------------------------------------------------------------------------------
def _log_message(row: dict[str, Any]) -> dict[str, Any]:
    """A log row as 1.7's LogMessage JSON (zero-valued fields left out)."""
    msg = {
        "pipelineName": row.get("pipeline"),
        "jobId": row.get("job_id"),
        "workerId": row.get("worker"),
        "datumId": row.get("datum_id"),
        "master": row.get("master"),
        "user": row.get("user"),
        "ts": proto_timestamp_json(datetime.fromtimestamp(row["ts"], UTC))
        if row.get("ts")
        else None,
        "message": row.get("message"),
    }
    return {k: v for k, v in msg.items() if v}


@click.command("get-logs")
@click.option("-p", "--pipeline", default="", help="Only this pipeline's logs.")
@click.option("--job", default="", help="Only this job's logs.")
@click.option("--datum", default="", help="Only this datum's logs.")
@click.option("--inputs", default="", help="Only datums with these inputs (comma-separated).")
@click.option("--master", is_flag=True, help="The master process's logs (needs --pipeline).")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("-t", "--tail", default=0, type=int, help="Only the last N lines (0 = all).")
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
    """Return the logs of user code (and, with --master, of the pipeline master)."""
    if master and not pipeline:
        raise InvalidArgument("--master requires --pipeline", hint="tusk get-logs --master -p <p>")
    if not pipeline and not job:
        raise InvalidArgument(
            "get-logs needs --pipeline or --job",
            hint="tusk get-logs -p <pipeline>, or tusk get-logs --job <id>",
        )
    rows = client().get_logs(
        pipeline=pipeline or None,
        job=job or None,
        datum=datum or None,
        master=master,
        inputs=[i for i in inputs.split(",") if i] or None,
        follow=follow,
    )
    if tail > 0 and not follow:
        rows = iter(list(rows)[-tail:])
    try:
        for row in rows:
            if raw:
                out(json.dumps(_log_message(row), ensure_ascii=False, separators=(",", ":")) + "\n")
            elif row.get("user") or (master and row.get("master")):
                out(str(row.get("message", "")).rstrip("\n") + "\n")
    except KeyboardInterrupt:
        pass


# -- flush, workers -----------------------------------------------------------------------------
@click.command("flush-commit")
@click.argument("commits", nargs=-1, required=True)
@click.option("-r", "--repos", multiple=True, help="Only commits in these repos (repeatable).")
@raw_option
def flush_commit(commits: Sequence[str], repos: Sequence[str], raw: bool) -> None:
    """Wait for every commit downstream of the given commits (repo/commit) to finish."""
    refs = [_commit_arg(c) for c in commits]
    infos = client().flush_commit(refs, repos=list(repos) or None)
    if raw:
        print_raw(infos)
    else:
        out(print_table(COMMIT_HEADER, [commit_row(i) for i in infos]))


def kube_age(seconds: float) -> str:
    """kubectl's ``ShortHumanDuration``: ``4s``, ``1m``, ``16m``, ``1h``, ``2d``, ``1y``."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
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
        for w in workers:
            _echo_json(w)
        return
    now = datetime.now(UTC).timestamp()
    tw = TabWriter(10, 4, 3)
    tw.write("\t".join(WORKER_HEADER) + "\n")
    for w in sorted(workers, key=lambda w: str(w["name"])):
        ready = "1/1" if w["state"] == "Running" else "0/1"
        age = kube_age(now - float(w["started"]))
        tw.write(f"{w['name']}\t{ready}\t{w['state']}\t{w['restarts']}\t{age}\n")
    out(tw.flush())


COMMANDS = [
    create_pipeline,
    update_pipeline,
    edit_pipeline,
    extract_pipeline,
    inspect_pipeline,
    list_pipeline,
    delete_pipeline,
    start_pipeline,
    stop_pipeline,
    list_job,
    flush_job,
    inspect_job,
    stop_job,
    delete_job,
    list_datum,
    inspect_datum,
    restart_datum,
    get_logs,
    flush_commit,
    list_worker,
]
