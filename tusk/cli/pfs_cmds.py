"""PFS commands in pachctl 1.7's grammar: repos, commits, branches and file reads/edits.

``put-file`` lives in :mod:`tusk.cli.put_cmds`. Reads and writes go through the plain reader
(:func:`tusk.cli.common.reader`: JSON values, no httpx or pydantic to import; a write is sent
once, never retried); listings of files arrive as JSON lines and are printed block by block as
they come.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import click

from tusk.api.projects import bare
from tusk.cli.common import (
    current_project,
    full_timestamps,
    out,
    print_raw,
    qualify,
    raw_option,
    reader,
    repo_ref,
    repo_seg,
    v2_grammar,
    warn,
)
from tusk.cli.rows import COMMIT_HEADER, commit_row
from tusk.cli.tables import fixed_line, print_table, stream_table
from tusk.cli.units import ago, bytes_size, parse_time
from tusk.errors import InvalidArgument, SourceUnavailable

FILE_HEADER = ("NAME", "TYPE", "SIZE")


# -- repos ------------------------------------------------------------------------------------
@click.command("create-repo")
@click.argument("repo", metavar="repo-name")
@click.option("-d", "--description", default="", help="A description of the repo.")
def create_repo(repo: str, description: str) -> None:
    """Create a new repo."""
    body = {"name": qualify(None, repo), "description": description, "update": False}
    reader().send("POST", "/repos", body)


@click.command("update-repo")
@click.argument("repo", metavar="repo-name")
@click.option("-d", "--description", default="", help="A description of the repo.")
def update_repo(repo: str, description: str) -> None:
    """Update a repo."""
    body = {"name": repo, "description": description, "update": False}
    reader().send("PUT", f"/repos/{repo_seg(repo)}", body)


@click.command("inspect-repo")
@click.argument("repo", metavar="repo-name")
@raw_option
def inspect_repo(repo: str, raw: bool) -> None:
    """Return info about a repo."""
    info = reader().get(f"/repos/{repo_seg(repo)}")
    if raw:
        print_raw(info)
        return
    lines = [f"Name: {info['name']}"]
    if info.get("description"):
        lines.append(f"Description: {info['description']}")
    lines += [
        f"Created: {ago(parse_time(info['created']))}",
        f"Size: {bytes_size(info.get('size_bytes', 0))}",
    ]
    out("\n".join(lines) + "\n")


@click.command("list-repo")
@raw_option
def list_repo(raw: bool) -> None:
    """Return all repos."""
    repos = reader().get("/repos", project=current_project())
    if raw:
        print_raw(repos)
        return
    if v2_grammar():
        from tusk.cli import v2_tables
        from tusk.cli.v2_raw import typed

        full = full_timestamps()
        out(print_table(v2_tables.REPO_HEADER, [v2_tables.repo_row(r, full) for r in typed(repos)]))
        return
    rows = [
        (bare(r["name"]), ago(parse_time(r["created"])), bytes_size(r["size_bytes"])) for r in repos
    ]
    out(print_table(("NAME", "CREATED", "SIZE"), rows))


@click.command("delete-repo")
@click.argument("repo", metavar="repo-name", required=False)
@click.option(
    "-f", "--force", is_flag=True, help="remove the repo regardless of errors; use with care"
)
@click.option("--all", "all_", is_flag=True, help="remove all repos")
def delete_repo(repo: str | None, force: bool, all_: bool) -> None:
    """Delete a repo."""
    if repo and all_:
        raise InvalidArgument(
            "cannot use the --all flag with an argument",
            hint="tusk delete-repo <repo>, or tusk delete-repo --all",
        )
    if not repo and not all_:
        raise InvalidArgument(
            "either a repo name or the --all flag needs to be provided",
            hint="tusk delete-repo <repo>, or tusk delete-repo --all",
        )
    if repo:
        reader().send("DELETE", f"/repos/{repo_seg(repo)}", force=force or None)
    else:
        reader().send("DELETE", "/repos", force=force or None, project=current_project())


# -- commits ----------------------------------------------------------------------------------
@click.command("start-commit")
@click.argument("repo", metavar="repo-name")
@click.argument("branch", metavar="[branch]", required=False)
@click.option(
    "-p",
    "--parent",
    default=None,
    help="The parent of the new commit, unneeded if branch is specified and you want to use the "
    "previous head of the branch as the parent.",
)
@click.option(
    "-m",
    "--message",
    "--description",
    "description",
    default="",
    help="A description of this commit's contents (--description is a synonym).",
)
def start_commit(repo: str, branch: str | None, parent: str | None, description: str) -> None:
    """Start a new commit.

    Prints the new commit's id. With a branch, the commit's parent is the branch's head and
    the branch moves to the new commit.
    """
    body = {"branch": branch, "parent": parent or None, "description": description}
    info = reader().send("POST", f"/repos/{repo_seg(repo)}/commits", body)
    click.echo(info["commit"]["id"])


@click.command("finish-commit")
@click.argument("repo", metavar="repo-name")
@click.argument("commit", metavar="commit-id")
@click.option(
    "-m",
    "--message",
    "--description",
    "description",
    default=None,
    help="A description of this commit's contents (overwrites any existing commit description; "
    "--description is a synonym)",
)
def finish_commit(repo: str, commit: str, description: str | None) -> None:
    """Finish a started commit."""
    body = {"description": description}
    reader().send("POST", f"/repos/{repo_seg(repo)}/commit/finish", body, ref=commit)


def commit_details(info: dict[str, Any]) -> str:
    """inspect-commit's text of a commit (its JSON value)."""
    lines = [f"Commit: {info['commit']['repo']}/{info['commit']['id']}"]
    if info.get("description"):
        lines.append(f"Description: {info['description']}")
    if info.get("parent"):
        lines.append(f"Parent: {info['parent']}")
    lines.append(f"Started: {ago(parse_time(info['started']))}")
    finished = parse_time(info.get("finished"))
    if finished is not None:
        lines.append(f"Finished: {ago(finished)} ")
    lines.append(f"Size: {bytes_size(info.get('size_bytes', 0))}")
    if info.get("provenance"):
        entries = "".join(
            f" {p['commit']['repo']}/{p['commit']['id']} " for p in info["provenance"]
        )
        lines.append(f"Provenance: {entries} ")
    if info.get("failed"):
        lines.append(f"Failed: {info.get('reason') or 'its job failed'}")
    return "\n".join(lines) + "\n"


@click.command("inspect-commit")
@click.argument("repo", metavar="repo-name")
@click.argument("commit", metavar="commit-id")
@raw_option
def inspect_commit(repo: str, commit: str, raw: bool) -> None:
    """Return info about a commit."""
    info = reader().get(f"/repos/{repo_seg(repo)}/commit", ref=commit)
    if raw:
        print_raw(info)
    else:
        out(commit_details(info))


@click.command("list-commit")
@click.argument("repo", metavar="repo-name")
@click.argument("commit", metavar="[commit-id]", required=False)
@click.option("-f", "--from", "from_", default=None, help="list all commits since this commit")
@click.option(
    "-n",
    "--number",
    default=0,
    type=int,
    help="list only this many commits; if set to zero, list all commits",
)
@raw_option
def list_commit(repo: str, commit: str | None, from_: str | None, number: int, raw: bool) -> None:
    """Return all commits on a set of repos.

    With only a repo: every commit of the repo, newest first. With a commit or branch: it and
    its ancestors, newest first, back to --from (exclusive).
    """
    commits = reader().lines(
        f"/repos/{repo_seg(repo)}/commits", to=commit, from_=from_ or None, number=number or None
    )
    if raw:
        print_raw(commits)
        return
    grammar = v2_grammar()
    if grammar is not None:
        from tusk.cli import v2_tables

        full = grammar.full_timestamps
        header: tuple[str, ...] = v2_tables.COMMIT_HEADER
        rows: Iterator[tuple[str, ...]] = (v2_tables.commit_row(c, full) for c in commits)
    else:
        header, rows = COMMIT_HEADER, (commit_row(c) for c in commits)
    stream_table(header, rows, sys.stdout.write)
    sys.stdout.flush()


@click.command("delete-commit")
@click.argument("repo", metavar="repo-name")
@click.argument("commit", metavar="commit-id")
def delete_commit(repo: str, commit: str) -> None:
    """Delete an input commit.

    The commits and jobs downstream of it are deleted with it.
    """
    reader().send("DELETE", f"/repos/{repo_seg(repo)}/commit", ref=commit)


@click.command("subscribe-commit")
@click.argument("repo", metavar="repo")
@click.argument("branch", metavar="branch")
@click.option("--from", "from_", default=None, help="subscribe to all commits since this commit")
@click.option("--new", is_flag=True, help="subscribe to only new commits created from now on")
@raw_option
def subscribe_commit(repo: str, branch: str, from_: str | None, new: bool, raw: bool) -> None:
    """Print commits as they are created (finished).

    Prints the branch's existing commits, then each new one; runs until interrupted.
    """
    if new and from_:
        raise InvalidArgument("--new and --from cannot both be given", hint="use one of them")
    # Rows come one at a time for as long as the command runs, so the columns cannot be sized
    # from the rows: each has a fixed width that fits its values (ids are 32 characters, the
    # longest relative time is "Less than a second ago").
    widths = (max(len(repo), len("REPO")) + 1, 33, 33, 23, 19, 10)
    if not raw:
        out(fixed_line(COMMIT_HEADER, widths))
    try:
        params = {"branch": branch, "from_": from_ or None, "new": new or None}
        for info in reader().lines(f"/repos/{repo_seg(repo)}/subscribe", timeout=None, **params):
            if raw:
                print_raw(info)
                sys.stdout.flush()
                continue
            out(fixed_line(commit_row(info), widths))
    except KeyboardInterrupt:
        pass


# -- branches ---------------------------------------------------------------------------------
def _provenance(text: str) -> tuple[str, str]:
    return repo_ref(text, what="provenance", ref="branch", hint="e.g. -p images/master")


@click.command("create-branch")
@click.argument("repo", metavar="<repo-name>")
@click.argument("branch", metavar="<branch-name>")
@click.option("--head", default=None, help="The head of the newly created branch.")
@click.option(
    "-p",
    "--provenance",
    multiple=True,
    help="The provenance for the branch (repo/branch; repeatable).",
)
def create_branch(repo: str, branch: str, head: str | None, provenance: Sequence[str]) -> None:
    """Create a new branch, or update an existing branch, on a repo."""
    prov = [_provenance(p) for p in provenance] if provenance else None
    set_branch_head(repo, branch, head or None, prov)


def set_branch_head(
    repo: str, branch: str, head: str | None, provenance: list[tuple[str, str]] | None = None
) -> None:
    """Create or move ``branch`` of ``repo`` (to ``head``), with its provenance if given."""
    prov = None if provenance is None else [{"repo": r, "name": b} for r, b in provenance]
    body = {"name": branch, "head": head, "provenance": prov}
    reader().send("POST", f"/repos/{repo_seg(repo)}/branches", body)


@click.command("list-branch")
@click.argument("repo", metavar="repo-name")
@raw_option
def list_branch(repo: str, raw: bool) -> None:
    """Return all branches on a repo."""
    branches = reader().get(f"/repos/{repo_seg(repo)}/branches")
    if raw:
        print_raw(branches)
    elif v2_grammar():  # 2.12's columns
        from tusk.cli.v2_tables import BRANCH_HEADER, branch_row

        out(print_table(BRANCH_HEADER, [branch_row(b) for b in branches]))
    else:
        rows = [(b["branch"]["name"], b.get("head") or "-") for b in branches]
        out(print_table(("BRANCH", "HEAD"), rows))


@click.command("delete-branch")
@click.argument("repo", metavar="repo-name")
@click.argument("branch", metavar="branch-name")
@click.option(
    "-f", "--force", is_flag=True, help="remove the branch regardless of errors; use with care"
)
def delete_branch(repo: str, branch: str, force: bool) -> None:
    """Delete a branch

    The branch's commits are kept.
    """
    reader().send("DELETE", f"/repos/{repo_seg(repo)}/branches/{branch}", force=force or None)


@click.command("set-branch")
@click.argument("repo", metavar="repo-name")
@click.argument("commit", metavar="commit-id/branch-name")
@click.argument("branch", metavar="new-branch-name")
def set_branch(repo: str, commit: str, branch: str) -> None:
    """DEPRECATED Set a commit and its ancestors to a branch

    Use create-branch --head instead.
    """
    warn("set-branch is DEPRECATED, use create-branch instead.")
    set_branch_head(repo, branch, commit)


# -- files ------------------------------------------------------------------------------------
def file_rows(
    files: Iterable[dict[str, Any]], *, strip_root: bool = False
) -> Iterator[tuple[str, ...]]:
    """list-file's rows of files (their JSON values), as the files come."""
    for f in files:
        path = f["path"]
        yield (path[1:] if strip_root else path, f["type"], bytes_size(f["size_bytes"]))


def print_files(files: Iterable[dict[str, Any]], *, raw: bool, strip_root: bool = False) -> None:
    """A listing of files as it arrives: ``--raw`` objects one by one, or the table block by
    block (pachctl sizes its columns per block of 50 lines, so no block waits for later rows).
    In 2.x's grammar, 2.x's layout: ``SIZE`` and the full path (a directory's ending in ``/``),
    one line per file as it comes, tab-separated and not aligned, as pachctl 2.x prints it."""
    if raw:
        print_raw(files)
    elif v2_grammar():
        from tusk.cli import v2_tables

        write = sys.stdout.write
        write(v2_tables.FILE_HEADER)
        for f in files:
            write(v2_tables.file_line(f))
        sys.stdout.flush()
    else:
        stream_table(FILE_HEADER, file_rows(files, strip_root=strip_root), sys.stdout.write)
        sys.stdout.flush()


@click.command("get-file")
@click.argument("repo", metavar="repo-name")
@click.argument("commit", metavar="commit-id")
@click.argument("path", metavar="path/to/file")
@click.option("-r", "--recursive", is_flag=True, help="Recursively download a directory.")
@click.option("-o", "--output", default="", help="The path where data will be downloaded.")
@click.option(
    "-p",
    "--parallelism",
    default=10,
    type=int,
    help="The maximum number of files that can be downloaded in parallel (accepted; unused).",
)
def get_file(
    repo: str, commit: str, path: str, recursive: bool, output: str, parallelism: int
) -> None:
    """Return the contents of a file.

    The path may be a glob: the contents of every matching file, in path order.
    """
    r = reader()
    if recursive:
        if not output:
            raise InvalidArgument(
                "an output path needs to be specified when using the --recursive flag",
                hint=f"tusk get-file -r -o <dir> {repo} {commit} {path}",
            )
        base = path.rstrip("/") or "/"
        # the whole listing first: the reader's one connection then fetches each file
        files = [
            f["path"]
            for f in r.get(f"/repos/{repo_seg(repo)}/walk", ref=commit, path=base)
            if f["type"] == "file"
        ]
        for name in files:
            rel = name[len(base) :].lstrip("/") if base != "/" else name.lstrip("/")
            dest = os.path.join(output, rel) if rel else output
            os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
            _write_file(dest, r.blocks(f"/repos/{repo_seg(repo)}/file", ref=commit, path=name))
        return
    blocks = r.blocks(f"/repos/{repo_seg(repo)}/file", ref=commit, path=path)
    if output:
        _write_file(output, blocks)
        return
    stdout = sys.stdout.buffer
    for block in blocks:
        stdout.write(block)
    stdout.flush()


def _write_file(dest: str, blocks: Iterable[bytes]) -> None:
    """Write ``blocks`` to ``dest``; a read that fails (e.g. not found) leaves no file behind."""
    it = iter(blocks)
    first = next(it, b"")  # server errors surface here, before anything is created
    tmp = dest + ".tusk-partial"
    try:
        with open(tmp, "wb") as fh:
            fh.write(first)
            for block in it:
                fh.write(block)
        os.replace(tmp, dest)
    except OSError as err:
        raise SourceUnavailable(
            f"open {dest}: {(err.strerror or str(err)).lower()}", hint="check the -o path"
        ) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@click.command("inspect-file")
@click.argument("repo", metavar="repo-name")
@click.argument("commit", metavar="commit-id")
@click.argument("path", metavar="path/to/file")
@raw_option
def inspect_file(repo: str, commit: str, path: str, raw: bool) -> None:
    """Return info about a file."""
    info = reader().get(f"/repos/{repo_seg(repo)}/inspect-file", ref=commit, path=path)
    if raw:
        print_raw(info)
        return
    lines = [
        f"Path: {info['path']}",
        f"Type: {info['type']}",
        f"Size: {bytes_size(info['size_bytes'])}",
    ]
    if info["type"] == "dir":
        lines.append("Children: " + "".join(f" {name} " for name in info.get("children", [])))
    out("\n".join(lines) + "\n")


@click.command("list-file")
@click.argument("repo", metavar="repo-name")
@click.argument("commit", metavar="commit-id")
@click.argument("path", metavar="path/to/dir", required=False, default="/")
@raw_option
def list_file(repo: str, commit: str, path: str, raw: bool) -> None:
    """Return the files in a directory.

    The path may be a glob: the children of every matching directory.
    """
    files = reader().lines(f"/repos/{repo_seg(repo)}/files", ref=commit, path=path)
    print_files(files, raw=raw, strip_root=path.strip("/") in ("", "."))


@click.command("glob-file")
@click.argument("repo", metavar="repo-name")
@click.argument("commit", metavar="commit-id")
@click.argument("pattern", metavar="pattern")
@raw_option
def glob_file(repo: str, commit: str, pattern: str, raw: bool) -> None:
    """Return files that match a glob pattern in a commit."""
    print_files(
        reader().lines(f"/repos/{repo_seg(repo)}/glob", ref=commit, pattern=pattern), raw=raw
    )


@click.command("diff-file")
@click.argument("new_repo", metavar="new-repo-name")
@click.argument("new_commit", metavar="new-commit-id")
@click.argument("new_path", metavar="new-path")
@click.argument("old", metavar="[old-repo-name old-commit-id old-path]", nargs=-1)
@click.option(
    "-s", "--shallow", is_flag=True, help="Specifies whether or not to diff subdirectories"
)
@raw_option
def diff_file(
    new_repo: str, new_commit: str, new_path: str, old: Sequence[str], shallow: bool, raw: bool
) -> None:
    """Return a diff of two file trees.

    Without the old path: against the same path in the commit's parent.
    """
    if len(old) not in (0, 3):
        raise InvalidArgument(
            "diff-file takes 3 or 6 arguments",
            hint="tusk diff-file new-repo new-commit new-path [old-repo old-commit old-path]",
        )
    old_repo, old_commit, old_path = old if old else (None, None, None)
    diff = reader().get(
        f"/repos/{repo_seg(new_repo)}/diff",
        ref=new_commit,
        path=new_path,
        old_repo=qualify(None, old_repo) if old_repo else None,
        old_ref=old_commit,
        old_path=old_path,
        shallow=shallow or None,
    )
    if raw:
        print_raw(diff)
        return
    if diff["new_files"]:
        out("New Files:\n" + print_table(FILE_HEADER, file_rows(diff["new_files"])))
    if diff["old_files"]:
        out("Old Files:\n" + print_table(FILE_HEADER, file_rows(diff["old_files"])))


@click.command("delete-file")
@click.argument("repo", metavar="repo-name")
@click.argument("commit", metavar="commit-id")
@click.argument("path", metavar="path/to/file")
def delete_file(repo: str, commit: str, path: str) -> None:
    """Delete a file.

    The path may be a directory (deleted whole) or a glob.
    """
    body = {"paths": [path]}
    reader().send("POST", f"/repos/{repo_seg(repo)}/delete-files", body, ref=commit)


@click.command("copy-file")
@click.argument("src_repo", metavar="src-repo")
@click.argument("src_commit", metavar="src-commit")
@click.argument("src_path", metavar="src-path")
@click.argument("dst_repo", metavar="dst-repo")
@click.argument("dst_commit", metavar="dst-commit")
@click.argument("dst_path", metavar="dst-path")
@click.option(
    "-o",
    "--overwrite",
    is_flag=True,
    help="Overwrite the existing content of the file, either from previous commits or previous "
    "calls to put-file within this commit.",
)
def copy_file(
    src_repo: str,
    src_commit: str,
    src_path: str,
    dst_repo: str,
    dst_commit: str,
    dst_path: str,
    overwrite: bool,
) -> None:
    """Copy files between pfs paths.

    No data is uploaded again.
    """
    body = {
        "src_repo": src_repo,
        "src_ref": src_commit,
        "src_path": src_path,
        "dst_path": dst_path,
        "overwrite": overwrite,
    }
    reader().send("POST", f"/repos/{repo_seg(dst_repo)}/copy", body, ref=dst_commit)


COMMANDS = [
    create_repo,
    update_repo,
    inspect_repo,
    list_repo,
    delete_repo,
    start_commit,
    finish_commit,
    inspect_commit,
    list_commit,
    delete_commit,
    subscribe_commit,
    create_branch,
    list_branch,
    delete_branch,
    set_branch,
    get_file,
    inspect_file,
    list_file,
    glob_file,
    diff_file,
    delete_file,
    copy_file,
]
