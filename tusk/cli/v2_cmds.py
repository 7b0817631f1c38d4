"""The few pachctl 2.x commands that have no 1.7 command to translate to (``tusk.cli.v2``):
``wait commit repo@commit``, ``list commit`` (one row per global id), ``list commit <global id>``,
``delete commit <global id>``, ``inspect branch repo@branch``, ``list job <global id>`` and ``list job`` without ``-x`` (one row
per global id). They are
reached only through the 2.x grammar, so they are in a group of their own, not in the root's
list of 1.7 commands."""

from __future__ import annotations

import time
from collections.abc import Sequence
from urllib.parse import quote

import click

from tusk.cli.common import (
    client,
    current_project,
    full_timestamps,
    out,
    print_raw,
    qualify,
    raw_option,
    reader,
    v2_grammar,
)
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
    commits = reader().get(f"/commitsets/{quote(commit_id, safe='')}")
    if not commits:
        raise NotFound(
            f"no commits with the global id {commit_id}",
            hint="list a repo's commits with: tusk list commit <repo>",
        )
    if raw:
        print_raw(commits)
    else:
        from tusk.cli import v2_tables

        full = full_timestamps()
        out(print_table(v2_tables.COMMIT_HEADER, [v2_tables.commit_row(c, full) for c in commits]))


@group.command("list-jobset")
@click.argument("job_id", metavar="<job-id>")
@click.option("-p", "--pipeline", default="", help="Limit to jobs made by pipeline.")
@click.option("-i", "--input", "inputs", multiple=True, help="List jobs with these inputs.")
@raw_option
def list_jobset(job_id: str, pipeline: str, inputs: Sequence[str], raw: bool) -> None:
    """Return the jobs of a global id: one per pipeline the change reached."""
    from tusk.cli.job_cmds import print_jobs

    listed = reader().lines(
        "/jobs", pipeline=qualify(None, pipeline) if pipeline else None, input=list(inputs) or None
    )
    jobs = [j for j in listed if j["id"] == job_id]
    if not jobs:
        raise NotFound(f"no jobs with the global id {job_id}", hint="list jobs with: tusk list job")
    print_jobs(jobs, raw)


@group.command("list-jobsets")
@raw_option
def list_jobsets(raw: bool) -> None:
    """Return info about jobs: one row per global id, newest first (``-x`` lists each
    pipeline's job)."""
    from tusk.cli.v2_tables import JOBSET_HEADER, job_sets, jobset_row

    sets = job_sets(reader().lines("/jobs"))
    if raw:
        from tusk.cli.v2_raw import job_set_message, render, typed

        grammar = v2_grammar()
        for set_id, jobs in sets:
            msg = job_set_message(set_id, typed(jobs))
            click.echo(render(msg, grammar.output if grammar else "json"))
        return
    full = full_timestamps()
    out(print_table(JOBSET_HEADER, [jobset_row(i, js, full) for i, js in sets]))


@group.command("list-commitsets")
@raw_option
def list_commitsets(raw: bool) -> None:
    """Return info about commits: one row per global id, newest first."""
    from tusk.cli import v2_tables

    r = reader()
    repos = r.get("/repos", project=current_project())
    commits = [
        c for repo in repos for c in r.lines(f"/repos/{quote(repo['name'], safe='')}/commits")
    ]
    sets = v2_tables.commit_sets(commits)
    if raw:
        from tusk.cli.v2_raw import commit_set_message, render, typed

        grammar = v2_grammar()
        for set_id, members in sets:
            msg = commit_set_message(set_id, typed(members))
            click.echo(render(msg, grammar.output if grammar else "json"))
        return
    full = full_timestamps()
    rows = [v2_tables.commitset_row(i, members, full) for i, members in sets]
    out(print_table(v2_tables.COMMITSET_HEADER, rows))


@group.command("inspect-branch")
@click.argument("repo", metavar="repo")
@click.argument("branch", metavar="branch")
@raw_option
def inspect_branch(repo: str, branch: str, raw: bool) -> None:
    """Return info about a branch: its head commit and provenance."""
    from tusk.cli.v2_tables import branch_details

    info = client().inspect_branch(repo, branch)
    if raw:
        print_raw(info)
    else:
        out(branch_details(info))


@group.command("squash-commitset")
@click.argument("commit_id", metavar="<global id>")
def squash_commitset(commit_id: str) -> None:
    """Squash the commits of a global id: they leave the history and their data stays in
    their child commits. Refused (nothing changes) when one of them has no children."""
    for key in client().squash_commit_set(commit_id):
        click.echo(f"squashed {key.repo}@{key.id}")


@group.command("delete-commitset")
@click.argument("commit_id", metavar="<global id>")
def delete_commitset(commit_id: str) -> None:
    """Delete the commits of a global id (pachctl 2.x's ``delete commit <id>``, pachd's
    DropCommitSet): their data is lost and the jobs of the id that have not ended are killed.
    Refused, with nothing changed, when one of them has children (``squash commit`` keeps its
    data in them), when a commit of another global id was computed from one of them, or when
    one of them updated a pipeline."""
    client().drop_commit_set(commit_id)
