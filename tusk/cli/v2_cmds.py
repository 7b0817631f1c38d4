"""The few pachctl 2.x commands that have no 1.7 command to translate to (``tusk.cli.v2``):
``wait commit repo@commit``, ``list commit <global id>`` and ``list job <global id>``. They are
reached only through the 2.x grammar, so they are in a group of their own, not in the root's
list of 1.7 commands."""

from __future__ import annotations

import time
from collections.abc import Sequence

import click

from tusk.cli.common import client, out, print_raw, raw_option
from tusk.cli.rows import COMMIT_HEADER, commit_row
from tusk.cli.tables import print_table
from tusk.errors import NotFound

POLL_FIRST, POLL_MAX = 0.05, 1.0  # seconds between looks at an unfinished commit


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def group() -> None:
    """pachctl 2.x commands without a 1.7 spelling."""


@group.command("wait-commit")
@click.argument("repo", metavar="repo")
@click.argument("commit", metavar="branch-or-commit")
@raw_option
def wait_commit(repo: str, commit: str, raw: bool) -> None:
    """Wait for the specified commit to finish and return it."""
    from tusk.cli.pfs_cmds import commit_details

    c = client()
    pause = POLL_FIRST
    info = c.inspect_commit(repo, commit)
    commit = info.commit.id  # a branch moves on; wait for the commit it named now
    while info.finished is None:
        time.sleep(pause)
        pause = min(pause * 2, POLL_MAX)
        info = c.inspect_commit(repo, commit)
    if raw:
        print_raw(info)
    else:
        out(commit_details(info.model_dump(mode="json")))


@group.command("list-commitset")
@click.argument("commit_id", metavar="<global id>")
@raw_option
def list_commitset(commit_id: str, raw: bool) -> None:
    """Return the commits of a global id: the commit that started a change and every commit
    it caused downstream."""
    commits = client().commit_set(commit_id)
    if not commits:
        raise NotFound(
            f"no commits with the global id {commit_id}",
            hint="list a repo's commits with: tusk list commit <repo>",
        )
    if raw:
        print_raw(commits)
    else:
        out(print_table(COMMIT_HEADER, [commit_row(c) for c in commits]))


@group.command("list-jobset")
@click.argument("job_id", metavar="<job-id>")
@click.option("-p", "--pipeline", default="", help="Limit to jobs made by pipeline.")
@click.option("-i", "--input", "inputs", multiple=True, help="List jobs with these inputs.")
@raw_option
def list_jobset(job_id: str, pipeline: str, inputs: Sequence[str], raw: bool) -> None:
    """Return the jobs of a global id: one per pipeline the change reached."""
    from tusk.cli.job_cmds import print_jobs

    jobs = [
        j
        for j in client().list_job(pipeline or None, inputs=list(inputs) or None)
        if j.id == job_id
    ]
    if not jobs:
        raise NotFound(f"no jobs with the global id {job_id}", hint="list jobs with: tusk list job")
    print_jobs(jobs, raw)
