"""Where data came from (tusk only): ``lineage`` (the datums and input files behind an output
file) and ``wave`` (every commit, job and spec version behind a global ID)."""

from __future__ import annotations

import click

from tusk.api.pps import CommitWave, FileLineage
from tusk.cli.common import client, out, print_raw, raw_option
from tusk.cli.tables import print_table
from tusk.cli.units import ago, from_timestamp
from tusk.errors import InvalidArgument

LINEAGE_HEADER = ("DATUM", "JOB", "STATE", "INPUT")
WAVE_COMMIT_HEADER = ("REPO", "BRANCH", "COMMIT", "FINISHED", "ORIGIN")
WAVE_JOB_HEADER = ("PIPELINE", "JOB", "VERSION", "STATE")

_FILE_HINT = "e.g. tusk lineage edges@master:/a.png, or tusk lineage edges master /a.png"


def file_ref(args: tuple[str, ...]) -> tuple[str, str, str]:
    """``repo@commit:/path`` (or ``repo commit path``) from the command line."""
    if len(args) == 3:
        repo, commit, path = args
    elif len(args) == 1:
        repo, at, rest = args[0].partition("@")
        commit, colon, path = rest.partition(":")
        if not at or not colon:
            raise InvalidArgument(
                f"invalid file {args[0]!r}: expected repo@commit:/path", hint=_FILE_HINT
            )
    else:
        raise InvalidArgument(
            f"lineage takes repo@commit:/path or repo commit path, not {len(args)} arguments",
            hint=_FILE_HINT,
        )
    if not repo or not commit or not path:
        raise InvalidArgument(
            "the repo, the commit and the path must all be given", hint=_FILE_HINT
        )
    return repo, commit, path


def lineage_table(lin: FileLineage) -> str:
    """The text form: a line naming the file and its job, then one row per datum input."""
    head = f"{lin.repo}@{lin.commit}:{lin.path}"
    if lin.pipeline is None:
        return f"{head}: not written by a pipeline (no datums)\n"
    if lin.job_id is None:
        return f"{head}: pipeline {lin.pipeline}, no job wrote this commit (no datums)\n"
    rows = []
    for d in lin.datums:
        inputs = [f"{i.repo}@{i.commit}:{i.path}" for i in d.inputs] or ["-"]
        rows.append((d.datum_id, d.job_id, str(d.state), inputs[0]))
        rows.extend(("", "", "", i) for i in inputs[1:])
    title = f"{head}: pipeline {lin.pipeline}, job {lin.job_id}, {len(lin.datums)} datum(s)\n"
    return title + print_table(LINEAGE_HEADER, rows)


@click.command("lineage")
@click.argument("file", nargs=-1, required=True, metavar="repo@commit:/path")
@raw_option
def lineage(file: tuple[str, ...], raw: bool) -> None:
    """Show the datums, and the input files at the commits they read, that wrote an output file.

    The commit may be a branch or a commit id; `repo commit path` (three arguments) works too. A
    datum that an earlier job processed and a later job reused shows that earlier job.
    """
    repo, commit, path = file_ref(file)
    lin = client().lineage(repo, commit, path)
    if raw:
        print_raw(lin)
    else:
        out(lineage_table(lin))


def wave_text(w: CommitWave) -> str:
    """The commits of a wave, then its jobs with their spec versions."""
    commits = [
        (
            c.repo,
            c.branch or "-",
            c.id,
            ago(from_timestamp(c.finished)) if c.finished else "-",
            c.origin + (" (failed)" if c.failed else ""),
        )
        for c in w.commits
    ]
    jobs = [(j.pipeline, j.job_id, str(j.spec_version), str(j.state)) for j in w.jobs]
    text = f"Wave {w.id}\n" + print_table(WAVE_COMMIT_HEADER, commits)
    if jobs:
        text += "\n" + print_table(WAVE_JOB_HEADER, jobs)
    return text


@click.command("wave")
@click.argument("commit", metavar="commit-id|repo@commit")
@raw_option
def wave(commit: str, raw: bool) -> None:
    """Show the whole wave behind a commit: the commits of its global ID and every commit up
    their provenance, the jobs, and the spec version each pipeline ran."""
    repo, at, ref = commit.partition("@")
    if at and not (repo and ref):
        raise InvalidArgument(
            f"invalid commit {commit!r}: expected a commit id or repo@commit",
            hint="e.g. tusk wave edges@master",
        )
    w = client().wave(ref, repo=repo) if at else client().wave(commit)
    if raw:
        print_raw(w)
    else:
        out(wave_text(w))


COMMANDS = [lineage, wave]
