"""pachctl 2.x's table layouts, printed when a command was spelled in 2.x's grammar
(``common.v2_grammar``); 1.7's spelling keeps 1.7's layouts. Each layout follows 2.x's
``pretty`` printers: the PROJECT column (``common.project_of``), ``STATE / LAST JOB`` for
pipelines, one row per global id for ``list job`` (``-x`` for one row per pipeline's job).
``full`` is ``--full-timestamps``: absolute RFC 3339 times instead of "3 minutes ago"."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tusk.api.models import origin_2x
from tusk.api.projects import bare
from tusk.cli.common import project_of
from tusk.cli.units import ago, as_utc, bytes_size, from_timestamp, human_duration, progress_bar

if TYPE_CHECKING:
    from tusk.api.models import BranchInfo, CommitInfo, ProjectInfo, RepoInfo
    from tusk.api.pps import JobInfo, PipelineInfo

REPO_HEADER = ("PROJECT", "NAME", "CREATED", "SIZE (MASTER)", "DESCRIPTION")
PIPELINE_HEADER = (
    "PROJECT",
    "NAME",
    "VERSION",
    "INPUT",
    "CREATED",
    "STATE / LAST JOB",
    "DESCRIPTION",
)
JOB_HEADER = (
    "PROJECT",
    "PIPELINE",
    "ID",
    "STARTED",
    "DURATION",
    "RESTART",
    "PROGRESS",
    "DL",
    "UL",
    "STATE",
)
COMMIT_HEADER = (
    "PROJECT",
    "REPO",
    "BRANCH",
    "COMMIT",
    "FINISHED",
    "SIZE",
    "ORIGIN",
    "DESCRIPTION",
)
COMMITSET_HEADER = ("ID", "SUBCOMMITS", "PROGRESS", "CREATED", "MODIFIED")
JOBSET_HEADER = ("ID", "SUBJOBS", "PROGRESS", "CREATED", "MODIFIED")
# list file / glob file: header and lines written as they are, without column alignment
FILE_HEADER = "SIZE   \tNAME\n"
PROJECT_HEADER = ("ACTIVE", "PROJECT", "CREATED", "DESCRIPTION")
PROGRESS_WIDTH = 8  # cells of 2.x's progress bar
REASON_WIDTH = 25  # how much of a job's reason 2.x's list job shows


def when(moment: datetime | None, full: bool) -> str:
    if moment is None:
        return "-"
    return as_utc(moment).isoformat().replace("+00:00", "Z") if full else ago(moment)


def file_line(info: Mapping[str, Any]) -> str:
    """One line of 2.x's ``list file``: the size, then the full path (``/dir/`` for a
    directory)."""
    path = info["path"]
    if info["type"] == "dir" and not path.endswith("/"):
        path += "/"
    return f"{bytes_size(info['size_bytes'])}\t{path}\n"


def project_row(info: ProjectInfo, active: str, full: bool) -> tuple[str, ...]:
    """One row of 2.x's ``list project``: ``*`` on the current project; "-" for no
    description."""
    return (
        "*" if info.name == active else " ",
        info.name,
        when(info.created, full),
        info.description or "-",
    )


def repo_row(info: RepoInfo, full: bool) -> tuple[str, ...]:
    return (
        project_of(info.name),
        bare(info.name),
        when(info.created, full),
        bytes_size(info.size_bytes),
        info.description,
    )


def pipeline_row(info: PipelineInfo, last_job: str, full: bool) -> tuple[str, ...]:
    return (
        project_of(info.name),
        bare(info.name),
        str(info.version),
        info.input_summary,
        when(from_timestamp(info.created), full),
        f"{info.state} / {last_job}",
        str(info.spec.get("description") or ""),
    )


def last_job_states(jobs: Sequence[JobInfo]) -> dict[str, str]:
    """The state of each pipeline's newest job (``jobs`` newest first)."""
    states: dict[str, str] = {}
    for job in jobs:
        states.setdefault(job.pipeline, str(job.state))
    return states


def _trim(reason: str) -> str:
    return reason if len(reason) < REASON_WIDTH else reason[:REASON_WIDTH].strip() + "..."


def job_row(job: JobInfo, full: bool) -> tuple[str, ...]:
    """One row of 2.x's ``list job -x``."""
    if job.recovered:
        progress = f"{job.processed} + {job.skipped} + {job.recovered} / {job.total}"
    else:
        progress = f"{job.processed} + {job.skipped} / {job.total}"
    done = job.finished is not None and job.started is not None
    return (
        project_of(job.pipeline),
        bare(job.pipeline),
        job.id,
        when(from_timestamp(job.started), full),
        human_duration((job.finished or 0) - (job.started or 0)) if done else "-",
        str(job.restarts),
        progress,
        bytes_size(job.bytes_down),
        bytes_size(job.bytes_up),
        f"{job.state}: {_trim(job.reason)}" if job.reason else str(job.state),
    )


def job_sets(jobs: Sequence[JobInfo]) -> list[tuple[str, list[JobInfo]]]:
    """``jobs`` grouped by global id, in the order each id first appears (newest first)."""
    sets: dict[str, list[JobInfo]] = {}
    for job in jobs:
        sets.setdefault(job.id, []).append(job)
    return list(sets.items())


def jobset_row(set_id: str, jobs: Sequence[JobInfo], full: bool) -> tuple[str, ...]:
    """One row of 2.x's ``list job``: how many sub-jobs, a bar of how many succeeded / are
    still going / failed, and when the first and the last sub-job were created."""
    from tusk.api.pps import JobState

    success = sum(1 for j in jobs if j.state == JobState.SUCCESS)
    failure = sum(1 for j in jobs if j.state != JobState.SUCCESS and j.state.terminal)
    created = [j.created for j in jobs]
    return (
        set_id,
        str(len(jobs)),
        progress_bar(PROGRESS_WIDTH, success, len(jobs) - success - failure, failure),
        when(from_timestamp(min(created)), full) if created else "-",
        when(from_timestamp(max(created)), full) if created else "-",
    )


def commit_row(info: CommitInfo, full: bool) -> tuple[str, ...]:
    """One row of 2.x's ``list commit repo``."""
    return (
        project_of(info.commit.repo),
        bare(info.commit.repo),
        info.branch or "-",
        info.commit.id,
        when(info.finished, full),
        bytes_size(info.size_bytes),
        origin_2x(info.origin, bool(info.provenance)),
        info.description,
    )


def commit_sets(commits: Sequence[CommitInfo]) -> list[tuple[str, list[CommitInfo]]]:
    """``commits`` grouped by global id, newest set first (by its first commit's start)."""
    sets: dict[str, list[CommitInfo]] = {}
    for c in commits:
        sets.setdefault(c.commit.id, []).append(c)
    return sorted(sets.items(), key=lambda kv: min(c.started for c in kv[1]), reverse=True)


def commitset_row(set_id: str, commits: Sequence[CommitInfo], full: bool) -> tuple[str, ...]:
    """One row of 2.x's ``list commit``: how many commits share the global id, a bar of how
    many finished well / are open / finished failed, and the first and the last start."""
    success = sum(1 for c in commits if c.finished is not None and not c.failed)
    failure = sum(1 for c in commits if c.finished is not None and c.failed)
    started = [c.started for c in commits]
    return (
        set_id,
        str(len(commits)),
        progress_bar(PROGRESS_WIDTH, success, len(commits) - success - failure, failure),
        when(min(started), full) if started else "-",
        when(max(started), full) if started else "-",
    )


def branch_details(info: BranchInfo) -> str:
    """2.x's ``inspect branch``."""
    repo = info.branch.repo
    text = f"Name: {repo}@{info.branch.name}"
    if info.head:
        text += f"\nHead Commit: {repo}@{info.head} "
    if info.provenance:
        text += "\nProvenance: " + "".join(f" {b.repo}@{b.name} " for b in info.provenance) + " "
    return text + "\n"
