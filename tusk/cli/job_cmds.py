"""Job and datum commands in pachctl 1.7's grammar, with flush-job and flush-commit.

Job ids are global (one change, one id, shared by every job it caused), so the commands that take
a job id also take ``--pipeline`` to pick one.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import click

from tusk.cli.common import (
    current_project,
    out,
    print_raw,
    project_of,
    qualify,
    raw_option,
    reader,
    repo_ref,
    v2_grammar,
)
from tusk.cli.pps_details import job_details
from tusk.cli.rows import COMMIT_HEADER, commit_row
from tusk.cli.tables import TabWriter, print_table, stream_lines, stream_table
from tusk.cli.units import ago, bytes_size, format_duration_go, from_timestamp, human_duration
from tusk.errors import InvalidArgument

if TYPE_CHECKING:
    from tusk.api.pps import JobInfo

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
DATUM_HEADER = ("ID", "STATUS", "TIME")
DATUM_HEADER_2X = ("ID", "FILES", "STATUS", "TIME")


# -- jobs ---------------------------------------------------------------------------------------
def job_row(info: JobInfo | dict[str, Any]) -> tuple[str, ...]:
    """One row of list-job (from the job's JSON value, or its model)."""
    job = info if isinstance(info, dict) else info.model_dump(mode="json")
    duration = job.get("duration_seconds")
    output = job.get("output_commit")
    recovered = job.get("recovered", 0)
    return (
        job["id"],
        f"{output['repo']}/{output['id']}" if output else f"{job['pipeline']}/-",
        ago(from_timestamp(job.get("started"))),
        human_duration(duration) if duration is not None else "-",
        str(job.get("restarts", 0)),
        f"{job.get('processed', 0)} + {job.get('skipped', 0)} / {job.get('total', 0)}"
        + (f" ({recovered} recovered)" if recovered else ""),
        bytes_size(job.get("bytes_down", 0)),
        bytes_size(job.get("bytes_up", 0)),
        job["state"],
    )


def print_jobs(jobs: Iterable[JobInfo] | Iterable[dict[str, Any]], raw: bool) -> None:
    """Jobs as they come: ``--raw`` objects one by one, or the table block by block (pachctl
    sizes its columns per block of 50 lines, so no block waits for later rows)."""
    if raw:
        print_raw(jobs)
        return
    grammar = v2_grammar()
    if grammar is not None:
        from tusk.cli import v2_tables

        full = grammar.full_timestamps
        header: tuple[str, ...] = v2_tables.JOB_HEADER
        rows: Iterator[tuple[str, ...]] = (v2_tables.job_row(j, full) for j in jobs)
    else:
        header, rows = JOB_HEADER, (job_row(j) for j in jobs)
    stream_table(header, rows, sys.stdout.write)
    sys.stdout.flush()


@click.command("list-job")
@click.option("-p", "--pipeline", default="", help="Limit to jobs made by pipeline.")
@click.option(
    "-i",
    "--input",
    "inputs",
    multiple=True,
    help="List jobs with a specific set of input commits (repo/commit).",
)
@click.option(
    "-o", "--output", default="", help="List jobs with a specific output commit (repo/commit)."
)
@raw_option
def list_job(pipeline: str, inputs: Sequence[str], output: str, raw: bool) -> None:
    """Return info about jobs.

    Newest first. Job ids are global in tusk: the jobs one change caused share one id.
    """
    for text in [*inputs, *([output] if output else [])]:
        repo_ref(text)
    jobs = reader().lines(
        "/jobs",
        pipeline=qualify(None, pipeline) if pipeline else None,
        input=list(inputs) or None,
        output=output or None,
    )
    print_jobs(jobs, raw)


@click.command("flush-job")
@click.argument("commits", metavar="commit [commit ...]", nargs=-1, required=True)
@click.option(
    "-p",
    "--pipeline",
    "pipelines",
    multiple=True,
    help="Wait only for jobs leading to a specific set of pipelines",
)
@raw_option
def flush_job(commits: Sequence[str], pipelines: Sequence[str], raw: bool) -> None:
    """Wait for all jobs caused by the specified commits to finish and return them.

    Commits are given as repo/commit (or repo/branch).
    """
    body = {
        "commits": flush_refs(commits),
        "pipelines": [qualify(None, p) for p in pipelines] if pipelines else None,
    }
    print_jobs(reader().send("POST", "/flush/jobs", body, timeout=None), raw)


def flush_refs(commits: Sequence[str]) -> list[tuple[str, str]]:
    """The ``repo/commit`` (or ``repo/branch``) arguments of a flush, repos in the project."""
    return [(qualify(None, repo), ref) for repo, ref in (repo_ref(c) for c in commits)]


@click.command("inspect-job")
@click.argument("job_id", metavar="job-id")
@click.option(
    "-b", "--block", is_flag=True, help="block until the job has either succeeded or failed"
)
@click.option("--pipeline", default="", help="The pipeline, when the id is shared by several.")
@raw_option
def inspect_job(job_id: str, block: bool, pipeline: str, raw: bool) -> None:
    """Return info about a job."""
    job = reader().get(
        f"/jobs/{job_id}",
        pipeline=qualify(None, pipeline) if pipeline else None,
        block=block or None,
        timeout=None if block else -1.0,
    )
    if raw:
        print_raw(job)
    else:
        out(job_details(job))


@click.command("stop-job")
@click.argument("job_id", metavar="job-id")
@click.option("--pipeline", default="", help="The pipeline, when the id is shared by several.")
def stop_job(job_id: str, pipeline: str) -> None:
    """Stop a job.

    Its output commit is finished without data and the job is killed.
    """
    reader().send("POST", f"/jobs/{job_id}/stop", pipeline=pipeline or None)


@click.command("delete-job")
@click.argument("job_id", metavar="job-id")
@click.option("--pipeline", default="", help="The pipeline, when the id is shared by several.")
def delete_job(job_id: str, pipeline: str) -> None:
    """Delete a job.

    Its output commit stays.
    """
    reader().send("DELETE", f"/jobs/{job_id}", pipeline=pipeline or None)


_ENDED = ("success", "skipped", "failed", "recovered")  # DatumState values


def datum_line(d: dict[str, Any], v2: bool) -> str:
    """One line of list-datum's table (from the datum's JSON value); 2.x adds FILES: each input
    file as project/repo@commit:/path."""
    state = d["state"] if d["state"] in _ENDED else "-"
    seconds = d.get("seconds", 0.0)
    took = human_duration(seconds) if seconds else "-"
    if v2:
        files = ", ".join(
            f"{project_of(i['repo'])}/{i['repo']}@{i['commit']}:{i['path']}"
            for i in d.get("inputs", [])
        )
        return f"{d['id']}\t{files}\t{state}\t{took}\t\n"
    return f"{d['id']}\t{state}\t{took}\n"


@click.command("list-datum")
@click.argument("job_id", metavar="job-id", required=False)
@click.option("--pipeline", default="", help="The pipeline, when the job id is shared by several.")
@click.option(
    "-f",
    "--file",
    "spec_file",
    default="",
    help="The datums a pipeline with this spec's input would run now (no job-id).",
)
@click.option(
    "--pageSize",
    "page_size",
    default=0,
    type=int,
    help="Specify the number of results sent back in a single page",
)
@click.option("--page", default=0, type=int, help="Specify the page of results to send")
@raw_option
def list_datum(
    job_id: str | None, pipeline: str, spec_file: str, page_size: int, page: int, raw: bool
) -> None:
    """Return the datums in a job.

    Failed datums first. The table is printed block by block as the datums arrive. With -f, the
    datums of the spec's input over its branches' heads, before any pipeline has it."""
    if bool(job_id) == bool(spec_file):
        raise InvalidArgument(
            "list-datum needs a job-id or -f <pipeline spec>, not both",
            hint="e.g. `tusk list-datum <job-id>` or `tusk list-datum -f pipeline.json`",
        )
    if page_size < 0 or page < 0:
        raise InvalidArgument(
            "--pageSize and --page must be >= 0", hint="e.g. --pageSize 10 --page 0"
        )
    if page and not page_size:
        raise InvalidArgument("--page needs --pageSize", hint="e.g. --pageSize 10 --page 1")
    if spec_file:
        datums = _datums_of_spec(spec_file, page_size, page)
    else:
        datums = reader().lines(
            f"/jobs/{job_id}/datums",
            pipeline=qualify(None, pipeline) if pipeline else None,
            page_size=page_size or None,
            page=page or None,
        )
    if raw:
        print_raw(datums)
        return
    v2 = v2_grammar() is not None
    header = DATUM_HEADER_2X if v2 else DATUM_HEADER
    stream_lines(header, (datum_line(d, v2) for d in datums), sys.stdout.write)
    sys.stdout.flush()


def _datums_of_spec(path: str, page_size: int, page: int) -> Iterator[dict[str, Any]]:
    """The datums of the input of the spec in ``path`` (as -f of create-pipeline reads it)."""
    from tusk.cli.pipeline_cmds import read_spec

    text, source = read_spec(path)
    body = {"specs": text, "source": source, "project": current_project()}
    found: list[dict[str, Any]] = reader().send("POST", "/datums/preview", body)
    if page_size:
        found = found[page * page_size : (page + 1) * page_size]
    return iter(found)


@click.command("inspect-datum")
@click.argument("job_id", metavar="job-id")
@click.argument("datum_id", metavar="datum-id")
@click.option("--pipeline", default="", help="The pipeline, when the job id is shared by several.")
@raw_option
def inspect_datum(job_id: str, datum_id: str, pipeline: str, raw: bool) -> None:
    """Display detailed info about a single datum."""
    d = reader().get(
        f"/jobs/{job_id}/datums/{datum_id}",
        pipeline=qualify(None, pipeline) if pipeline else None,
    )
    if raw:
        print_raw(d)
        return
    state = d["state"].upper() if d["state"] in _ENDED else "STARTING"
    w = TabWriter(20, 1, 3)
    w.write(f"ID\t{d['id']}\nJob ID\t{d['job_id']}\nState\t{state}\n")
    if d["state"] in ("failed", "recovered") and d.get("reason"):
        w.write(f"Reason\t{d['reason']}\n")
    down, up = d.get("seconds_download", 0.0), d.get("seconds_upload", 0.0)
    seconds = d.get("seconds", 0.0)
    w.write(f"Data Downloaded\t{bytes_size(d.get('bytes_down', 0))}\n")
    w.write(f"Data Uploaded\t{bytes_size(d.get('bytes_up', 0))}\n")
    w.write(f"Total Time\t{format_duration_go(down + seconds + up)}\n")
    w.write(f"Download Time\t{format_duration_go(down)}\n")
    w.write(f"Process Time\t{format_duration_go(seconds)}\n")
    w.write(f"Upload Time\t{format_duration_go(up)}\n")
    # 1.7's PFS State is the datum's snapshot on the stats branch (with enable_stats)
    pfs_state = TabWriter(10, 1, 3)
    pfs_state.write("  REPO\tCOMMIT\tPATH\t\n")
    if d.get("stats_commit"):
        pfs_state.write(f"  {d['pipeline']}\t{d['stats_commit']}\t/{d['id']}/pfs\t\n")
    tables = TabWriter(10, 1, 3)
    tables.write("  REPO\tCOMMIT\tPATH\t\n")
    for f in d.get("inputs") or ():
        tables.write(f"  {f['repo']}\t{f['commit']}\t{f['path']}\t\n")
    out(w.flush() + "PFS State:\n" + pfs_state.flush() + "Inputs:\n" + tables.flush())


@click.command("restart-datum")
@click.argument("job_id", metavar="job-id")
@click.argument("datum_filter", metavar="datum-path1,datum-path2")
@click.option("--pipeline", default="", help="The pipeline, when the job id is shared by several.")
def restart_datum(job_id: str, datum_filter: str, pipeline: str) -> None:
    """Restart a datum: stop the running datum whose input files match all the given paths; it
    is tried again (the stopped run counts as one of its datum_tries)."""
    filters = [f for f in datum_filter.split(",") if f]
    route = f"/jobs/{job_id}/datums/restart"
    reader().send("POST", route, data=",".join(filters), pipeline=pipeline or None)


# -- flush-commit ------------------------------------------------------------------------------
@click.command("flush-commit")
@click.argument("commits", metavar="commit [commit ...]", nargs=-1, required=True)
@click.option(
    "-r",
    "--repos",
    multiple=True,
    help="Wait only for commits leading to a specific set of repos",
)
@raw_option
def flush_commit(commits: Sequence[str], repos: Sequence[str], raw: bool) -> None:
    """Wait for all commits caused by the specified commits to finish and return them.

    Commits are given as repo/commit (or repo/branch).
    """
    body = {
        "commits": flush_refs(commits),
        "repos": [qualify(None, r) for r in repos] if repos else None,
    }
    infos = reader().send("POST", "/flush/commits", body, timeout=None)
    if raw:
        print_raw(infos)
    else:
        out(print_table(COMMIT_HEADER, [commit_row(i) for i in infos]))


COMMANDS = [
    list_job,
    flush_job,
    inspect_job,
    stop_job,
    delete_job,
    list_datum,
    inspect_datum,
    restart_datum,
    flush_commit,
]
