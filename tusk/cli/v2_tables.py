"""pachctl 2.x's table layouts, printed when a command was spelled in 2.x's grammar
(``common.v2_grammar``); 1.7's spelling keeps 1.7's layouts. Each layout follows 2.x's
``pretty`` printers: the PROJECT column (``common.project_of``), ``STATE / LAST JOB`` for
pipelines, one row per global id for ``list job`` (``-x`` for one row per pipeline's job).
``full`` is ``--full-timestamps``: absolute RFC 3339 times instead of "3 minutes ago"."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tusk.api.origins import origin_2x
from tusk.api.projects import bare
from tusk.cli.common import project_of
from tusk.cli.units import (
    ago,
    as_utc,
    bytes_size,
    from_timestamp,
    human_duration,
    parse_time,
    progress_bar,
    rfc3339,
)

if TYPE_CHECKING:
    from tusk.api.models import BranchInfo, CommitInfo, RepoInfo
    from tusk.api.pps import JobInfo, PipelineInfo

REPO_HEADER = ("PROJECT", "NAME", "CREATED", "SIZE (MASTER)", "DESCRIPTION")
PIPELINE_HEADER = (
    "PROJECT",
    "NAME",
    "VERSION",
    "INPUT",
    "CREATED",
    "STATE / LAST JOB",
    "ALERTS",
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
    "COMMIT",
    "FINISHED",
    "SIZE",
    "ORIGIN",
    "CREATOR",
    "DESCRIPTION",
)
BRANCH_HEADER = ("BRANCH", "HEAD", "TRIGGER", "CREATOR", "CREATED")
# pachctl 2.12 prints who made a commit or branch ("-" without auth, as always here) and a
# pipeline's alerts ("" when it has none; tusk raises none)
NO_CREATOR, NO_ALERTS = "-", ""
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


def project_row(info: Mapping[str, Any], active: str, full: bool) -> tuple[str, ...]:
    """One row of 2.x's ``list project`` (from the project's JSON value): ``*`` on the current
    project; "-" for no description."""
    return (
        "*" if info["name"] == active else " ",
        info["name"],
        when(parse_time(info["created"]), full),
        info.get("description") or "-",
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
        NO_ALERTS,
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


# tusk's job states that end a job (``JobState.terminal``), as the plain reader's values name them
ENDED_JOB_STATES = ("success", "failure", "killed")

# A job or commit: the typed model, or its JSON value as the plain reader answers it
Item = Any


def plain(item: Item) -> Mapping[str, Any]:
    """A model, or the plain reader's JSON value of it, as that JSON value."""
    return item if isinstance(item, Mapping) else item.model_dump(mode="json")


def job_row(job: JobInfo | Mapping[str, Any], full: bool) -> tuple[str, ...]:
    """One row of 2.x's ``list job -x``."""
    j = plain(job)
    if j.get("recovered"):
        progress = f"{j['processed']} + {j['skipped']} + {j['recovered']} / {j['total']}"
    else:
        progress = f"{j['processed']} + {j['skipped']} / {j['total']}"
    started, finished = j.get("started"), j.get("finished")
    done = finished is not None and started is not None
    reason, state = j.get("reason") or "", str(j["state"])
    return (
        project_of(j["pipeline"]),
        bare(j["pipeline"]),
        j["id"],
        when(from_timestamp(started), full),
        human_duration((finished or 0) - (started or 0)) if done else "-",
        str(j.get("restarts", 0)),
        progress,
        bytes_size(j.get("bytes_down", 0)),
        bytes_size(j.get("bytes_up", 0)),
        f"{state}: {_trim(reason)}" if reason else state,
    )


def job_sets(jobs: Iterable[Item]) -> list[tuple[str, list[Mapping[str, Any]]]]:
    """``jobs`` grouped by global id, in the order each id first appears (newest first)."""
    sets: dict[str, list[Mapping[str, Any]]] = {}
    for job in jobs:
        j = plain(job)
        sets.setdefault(j["id"], []).append(j)
    return list(sets.items())


def jobset_row(set_id: str, jobs: Sequence[Item], full: bool) -> tuple[str, ...]:
    """One row of 2.x's ``list job``: how many sub-jobs, a bar of how many succeeded / are
    still going / failed, and when the first and the last sub-job were created."""
    states = [str(plain(j)["state"]) for j in jobs]
    success = states.count("success")
    failure = sum(1 for s in states if s != "success" and s in ENDED_JOB_STATES)
    created = [plain(j)["created"] for j in jobs]
    return (
        set_id,
        str(len(jobs)),
        progress_bar(PROGRESS_WIDTH, success, len(jobs) - success - failure, failure),
        when(from_timestamp(min(created)), full) if created else "-",
        when(from_timestamp(max(created)), full) if created else "-",
    )


def commit_row(info: CommitInfo | Mapping[str, Any], full: bool) -> tuple[str, ...]:
    """One row of 2.x's ``list commit repo``."""
    c = plain(info)
    return (
        project_of(c["commit"]["repo"]),
        bare(c["commit"]["repo"]),
        c["commit"]["id"],
        when(parse_time(c.get("finished")), full),
        bytes_size(c.get("size_bytes", 0)),
        origin_2x(c.get("origin", "user"), bool(c.get("provenance"))),
        NO_CREATOR,
        c.get("description", ""),
    )


def commit_sets(commits: Iterable[Item]) -> list[tuple[str, list[Mapping[str, Any]]]]:
    """``commits`` grouped by global id, newest set first (by its first commit's start)."""
    sets: dict[str, list[Mapping[str, Any]]] = {}
    for commit in commits:
        c = plain(commit)
        sets.setdefault(c["commit"]["id"], []).append(c)
    return sorted(sets.items(), key=lambda kv: min(_started(c) for c in kv[1]), reverse=True)


def commitset_row(set_id: str, commits: Sequence[Item], full: bool) -> tuple[str, ...]:
    """One row of 2.x's ``list commit``: how many commits share the global id, a bar of how
    many finished well / are open / finished failed, and the first and the last start."""
    cs = [plain(c) for c in commits]
    success = sum(1 for c in cs if c.get("finished") is not None and not c.get("failed"))
    failure = sum(1 for c in cs if c.get("finished") is not None and c.get("failed"))
    started = [_started(c) for c in cs]
    return (
        set_id,
        str(len(cs)),
        progress_bar(PROGRESS_WIDTH, success, len(cs) - success - failure, failure),
        when(min(started), full) if started else "-",
        when(max(started), full) if started else "-",
    )


def _started(commit: Mapping[str, Any]) -> datetime:
    return as_utc(parse_time(commit["started"]))


def branch_row(info: Mapping[str, Any]) -> tuple[str, ...]:
    """One row of 2.12's ``list branch`` (a branch as the plain reader answers it). TRIGGER and
    CREATOR are "-": no branch triggers and no users here. CREATED is absolute, in the local
    time zone, as pachctl 2.12 prints it (its ``list branch`` has no relative times and no
    ``--full-timestamps``); "-" for a branch whose creation time the server did not send."""
    created = parse_time(info.get("created"))
    return (
        info["branch"]["name"],
        info.get("head") or "-",
        "-",
        NO_CREATOR,
        rfc3339(created, local=True) if created else "-",
    )


def branch_details(info: BranchInfo) -> str:
    """2.12's ``inspect branch``: bare repo names (no project), then a line for who made the
    branch (empty: no users here) and one for when, in UTC whatever ``--full-timestamps`` says
    (empty when the server did not send the time), as pachctl's template leaves them."""
    repo = bare(info.branch.repo)
    text = f"Name: {repo}@{info.branch.name}"
    if info.head:
        text += f"\nHead Commit: {repo}@{info.head} "
    if info.provenance:
        text += "\nProvenance: " + "".join(f"{bare(b.repo)}@{b.name} " for b in info.provenance)
    created = f"Created at: {rfc3339(info.created)}" if info.created else ""
    return f"{text}\n\n{created}\n"
