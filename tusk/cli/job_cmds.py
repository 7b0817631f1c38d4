"""Job and datum commands in pachctl 1.7's grammar, with flush-job and flush-commit.

Job ids are global (one change, one id, shared by every job it caused), so the commands that take
a job id also take ``--pipeline`` to pick one.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from tusk.api.pps import DatumInfo, DatumState, JobInfo
from tusk.cli.common import client, out, print_raw, raw_option, repo_ref
from tusk.cli.pps_details import job_details
from tusk.cli.rows import COMMIT_HEADER, commit_row
from tusk.cli.tables import Table, TabWriter, print_table
from tusk.cli.units import ago, bytes_size, format_duration_go, from_timestamp, human_duration
from tusk.errors import InvalidArgument

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


# -- jobs ---------------------------------------------------------------------------------------
def job_row(job: JobInfo) -> tuple[str, ...]:
    """One row of list-job."""
    duration = job.duration_seconds
    return (
        job.id,
        str(job.output_commit) if job.output_commit else f"{job.pipeline}/-",
        ago(from_timestamp(job.started)),
        human_duration(duration) if duration is not None else "-",
        str(job.restarts),
        f"{job.processed} + {job.skipped} / {job.total}",
        bytes_size(job.bytes_down),
        bytes_size(job.bytes_up),
        job.state,
    )


def _print_jobs(jobs: Sequence[JobInfo], raw: bool) -> None:
    if raw:
        print_raw(jobs)
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
        repo_ref(text)
    jobs = client().list_job(pipeline or None, inputs=list(inputs) or None, output=output or None)
    _print_jobs(jobs, raw)


@click.command("flush-job")
@click.argument("commits", nargs=-1, required=True)
@click.option("-p", "--pipeline", "pipelines", multiple=True, help="Only these pipelines' jobs.")
@raw_option
def flush_job(commits: Sequence[str], pipelines: Sequence[str], raw: bool) -> None:
    """Wait for the jobs caused by the given commits (repo/commit) to finish; print them."""
    refs = [repo_ref(c) for c in commits]
    _print_jobs(client().flush_job(refs, pipelines=list(pipelines) or None), raw)


@click.command("inspect-job")
@click.argument("job_id")
@click.option("-b", "--block", is_flag=True, help="Wait for the job to finish.")
@click.option("--pipeline", default="", help="The pipeline, when the id is shared by several.")
@raw_option
def inspect_job(job_id: str, block: bool, pipeline: str, raw: bool) -> None:
    """Return info about a job."""
    job = client().inspect_job(job_id, pipeline=pipeline or None, block=block)
    if raw:
        print_raw(job)
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
_ENDED = (DatumState.SUCCESS, DatumState.SKIPPED, DatumState.FAILED)


def _datum_time(d: DatumInfo) -> str:
    return human_duration(d.seconds) if d.seconds else "-"


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
        print_raw(datums)
        return
    table = Table(DATUM_HEADER)
    for d in datums:
        state = d.state if d.state in _ENDED else "-"
        table.add_raw(f"{d.id}\t{state}\t{_datum_time(d)}\n")
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
        print_raw(d)
        return
    state = d.state.upper() if d.state in _ENDED else "STARTING"
    w = TabWriter(20, 1, 3)
    w.write(f"ID\t{d.id}\nJob ID\t{d.job_id}\nState\t{state}\n")
    if d.state is DatumState.FAILED and d.reason:
        w.write(f"Reason\t{d.reason}\n")
    w.write(f"Data Downloaded\t{bytes_size(d.bytes_down)}\n")
    w.write(f"Data Uploaded\t{bytes_size(d.bytes_up)}\n")
    w.write(f"Total Time\t{format_duration_go(d.seconds)}\n")
    tables = TabWriter(10, 1, 3)
    tables.write("  REPO\tCOMMIT\tPATH\t\n")
    for f in d.inputs:
        tables.write(f"  {f.repo}\t{f.commit}\t{f.path}\t\n")
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


# -- flush-commit ------------------------------------------------------------------------------
@click.command("flush-commit")
@click.argument("commits", nargs=-1, required=True)
@click.option("-r", "--repos", multiple=True, help="Only commits in these repos (repeatable).")
@raw_option
def flush_commit(commits: Sequence[str], repos: Sequence[str], raw: bool) -> None:
    """Wait for every commit downstream of the given commits (repo/commit) to finish."""
    refs = [repo_ref(c) for c in commits]
    infos = client().flush_commit(refs, repos=list(repos) or None)
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
