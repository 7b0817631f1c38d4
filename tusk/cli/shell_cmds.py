"""pachctl 1.7's ``completion`` and its documentation topics (``repo``, ``commit``, ``file``,
``job``, ``pipeline``: commands that only explain)."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

from tusk.errors import InvalidArgument

SHELLS = ("bash", "zsh", "fish")


@click.command("completion")
@click.argument(
    "shell", metavar="[bash|zsh|fish]", required=False, default="bash", type=click.Choice(SHELLS)
)
def completion(shell: str) -> None:
    """Print shell completion code (bash by default; zsh and fish too).

    pachctl 1.7 wrote bash completion to /etc/bash_completion.d/pachctl; tusk prints the code
    instead, for you to load or save:

    \b
    # for this shell:
    eval "$(tusk completion bash)"
    # for every new shell:
    tusk completion bash | sudo tee /etc/bash_completion.d/tusk
    """
    root = click.get_current_context().find_root()
    prog = root.info_name or "tusk"
    cls = get_completion_class(shell)
    if cls is None:  # click knows every shell of SHELLS; this guards a click without one
        raise InvalidArgument(f"no completion for {shell}", hint="use bash or zsh")
    var = f"_{prog.replace('-', '_').upper()}_COMPLETE"
    assert isinstance(root.command, click.Command)
    click.echo(cls(root.command, {}, prog, var).source())


def _topic(name: str, short: str, long: str) -> click.Command:
    def show() -> None:
        click.echo(click.get_current_context().get_help())

    return click.command(name, help=f"{short}\n\n{long}", short_help=short)(show)


TOPICS = [
    _topic(
        "repo",
        "Docs for repos.",
        "Repos, short for repository, are the top level data object in Pachyderm (and tusk).\n\n"
        "Repos are created with create-repo.",
    ),
    _topic(
        "commit",
        "Docs for commits.",
        "Commits are atomic transactions on the content of a repo.\n\n"
        "\b\nCreating a commit is a multistep process:\n"
        "- start a new commit with start-commit\n"
        "- write files to it with put-file\n"
        "- finish the new commit with finish-commit\n\n"
        "Commits that have been started but not finished are NOT durable storage. Commits "
        "become reliable (and immutable) when they are finished.\n\n"
        "Commits can be created with another commit as a parent. This layers the data in the "
        "commit over the data in the parent.",
    ),
    _topic(
        "file",
        "Docs for files.",
        "Files are the lowest level data object in Pachyderm (and tusk).\n\n"
        "Files can be written to started (but not finished) commits with put-file, or to a "
        "branch (one commit per put-file). Files can be read from commits with get-file.",
    ),
    _topic(
        "job",
        "Docs for jobs.",
        "Jobs are the basic unit of computation.\n\n"
        "A pipeline runs a job over a set of finished input commits; the job writes its output "
        "to a commit of the pipeline's repo. If the job fails, that commit is finished and "
        "marked failed. To increase the throughput of a job, increase the pipeline's "
        "parallelism_spec.",
    ),
    _topic(
        "pipeline",
        "Docs for pipelines.",
        "Pipelines are a powerful abstraction for automating jobs.\n\n"
        "Pipelines take a set of repos as inputs, rather than the set of commits that jobs "
        "take. Pipelines then subscribe to commits on those repos and launch a job to process "
        "each incoming commit. Creating a pipeline will also create a repo of the same name. "
        "All jobs created by a pipeline will create commits in the pipeline's repo.",
    ),
]

COMMANDS = [completion, *TOPICS]
