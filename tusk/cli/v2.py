"""pachctl 2.x's grammar beside 1.7's.

2.x spells commands as two words (``list file``) and names data in one argument:
``repo@branch:/path``, ``repo@commit`` (``master^``, ``master~2`` for ancestors) and
``pipeline@job``. ``translate`` turns such a command line into the 1.7 command doing the same,
or into one of the few 2.x-only commands (``tusk.cli.v2_cmds``); a 1.7 command line is left
alone, so 1.7's commands keep working unchanged. ``--project NAME`` is taken off the line and
every repo and pipeline name passes through ``common.qualify``.

Nothing here imports a command module: the options that take a value are read from the target
command (``lookup``), so positional arguments are found exactly as click will find them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import click

from tusk.cli.common import Grammar2, qualify
from tusk.errors import InvalidArgument

GLOBAL_ID = re.compile(r"^[0-9a-f]{32}$")

Lookup = Callable[[str], click.Command | None]


@dataclass(frozen=True)
class Ref:
    """``repo@ref:/path`` taken apart (``ref`` and ``path`` None when absent)."""

    repo: str
    ref: str | None = None
    path: str | None = None


def parse_ref(text: str, *, what: str = "commit", example: str = "images@master") -> Ref:
    """``repo``, ``repo@branch-or-commit`` or ``repo@branch-or-commit:/path``. ``repo@branch=id``
    (2.x's commit on a branch) names the commit ``id``."""
    repo, at, rest = text.partition("@")
    if not at:
        repo, colon, path = text.partition(":")
        if colon:
            raise InvalidArgument(
                f"invalid {what} {text!r}: a path needs a branch or commit before it",
                hint=f"write it as {repo}@master:{path or '/'}",
            )
        return Ref(_name(repo, text, what, example))
    ref, colon, path = rest.partition(":")
    if "=" in ref:
        ref = ref.partition("=")[2]
    if not ref:
        raise InvalidArgument(
            f"invalid {what} {text!r}: nothing after '@'",
            hint=f"name a branch or a commit, e.g. {example}",
        )
    return Ref(_name(repo, text, what, example), ref, (path or "/") if colon else None)


def _name(repo: str, text: str, what: str, example: str) -> str:
    if not repo:
        raise InvalidArgument(f"invalid {what} {text!r}: no repo name", hint=f"e.g. {example}")
    return repo


@dataclass
class Line:
    """A 2.x command line taken apart: its positional arguments, its options (in order, with
    their values) and ``--project``."""

    positionals: list[str]
    options: list[str]
    project: str | None = None

    def take(self, *names: str) -> list[str]:
        """Remove the options ``names`` (each with its value) and return the values."""
        values: list[str] = []
        kept: list[str] = []
        i = 0
        while i < len(self.options):
            opt = self.options[i]
            head, eq, value = opt.partition("=")
            if head in names:
                if eq:
                    values.append(value)
                elif i + 1 < len(self.options) and not self.options[i + 1].startswith("-"):
                    values.append(self.options[i + 1])
                    i += 1
                else:
                    raise InvalidArgument(f"option {head} needs a value", hint=f"{head} <value>")
                i += 1
                continue
            kept.append(opt)
            i += 1
        self.options = kept
        return values

    def drop_flags(self, *names: str) -> bool:
        """Remove the flags ``names``; whether any was there."""
        found = [o for o in self.options if o in names]
        self.options = [o for o in self.options if o not in names]
        return bool(found)

    def repo(self, name: str) -> str:
        return qualify(self.project, name)


def split(
    args: list[str],
    command: click.Command | None,
    flags: frozenset[str],
    valued: frozenset[str] = frozenset(),
) -> Line:
    """Positional arguments and options of ``args`` for ``command`` (``flags`` and ``valued``:
    2.x options the 1.7 command lacks, without and with a value)."""
    takes_value: set[str] = set(valued)
    if command is not None:
        for p in command.params:
            if isinstance(p, click.Option) and not p.is_flag and not p.count:
                takes_value.update(p.opts)
    takes_value -= flags
    line = Line([], [])
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            line.positionals.extend(args[i + 1 :])
            break
        if arg == "--project" or arg.startswith("--project="):
            if "=" in arg:
                line.project = arg.partition("=")[2]
            elif i + 1 < len(args):
                line.project = args[i + 1]
                i += 1
            else:
                raise InvalidArgument("--project needs a value", hint="--project default")
        elif arg.startswith("-") and arg != "-":
            line.options.append(arg)
            if "=" not in arg and arg in takes_value and i + 1 < len(args):
                line.options.append(args[i + 1])
                i += 1
        else:
            line.positionals.append(arg)
        i += 1
    return line


def _count(line: Line, usage: str, low: int, high: int | None = None) -> None:
    n = len(line.positionals)
    high = low if high is None else high
    if n < low or n > high:
        raise InvalidArgument(
            f"expected {usage}, got {n} argument{'s' if n != 1 else ''}",
            hint=f"e.g. {_prog()} {usage}",
        )


def _prog() -> str:
    from tusk.cli.common import program_name

    return program_name()


def _need_ref(ref: Ref, text: str, what: str, example: str) -> str:
    if ref.ref is None:
        raise InvalidArgument(
            f"invalid {what} {text!r}: expected repo@branch-or-commit", hint=f"e.g. {example}"
        )
    return ref.ref


def _file(line: Line, text: str, *, path_required: bool) -> list[str]:
    ref = parse_ref(text, what="file", example="images@master:/path")
    commit = _need_ref(ref, text, "file", "images@master:/path")
    if ref.path is None and path_required:
        raise InvalidArgument(
            f"invalid file {text!r}: expected repo@branch-or-commit:/path",
            hint=f"e.g. {ref.repo}@{commit}:/path/to/file",
        )
    return [line.repo(ref.repo), commit, *([ref.path] if ref.path is not None else [])]


def _commit(line: Line, text: str) -> list[str]:
    ref = parse_ref(text, example="images@master")
    return [line.repo(ref.repo), _need_ref(ref, text, "commit", f"{ref.repo}@master")]


def _job(line: Line, text: str) -> list[str]:
    """``pipeline@job`` as ``job --pipeline pipeline``; a bare job id as itself."""
    pipeline, at, job = text.rpartition("@")
    if not at:
        return [text]
    if not pipeline or not job:
        raise InvalidArgument(f"invalid job {text!r}", hint="write it as pipeline@job-id")
    return [job, "--pipeline", line.repo(pipeline)]


def _at_to_slash(line: Line, values: list[str], what: str) -> list[str]:
    """2.x's ``repo@ref`` option values as 1.7's ``repo/ref``."""
    out = []
    for v in values:
        ref = parse_ref(v, what=what)
        out.append(f"{line.repo(ref.repo)}/{_need_ref(ref, v, what, 'images@master')}")
    return out


# -- the commands ---------------------------------------------------------------------------------
# Each rule: (1.7 command or 2.x-only command, 2.x flags the target lacks, converter).
Convert = Callable[[Line], tuple[str, list[str]]]


def _put_file(line: Line) -> tuple[str, list[str]]:
    _count(line, "put file repo@branch:/path -f file", 1)
    args = _file(line, line.positionals[0], path_required=False)
    if not line.drop_flags("-a", "--append"):
        line.options.insert(0, "-o")  # 2.x overwrites unless -a
    return "put-file", args


def _file_rule(verb: str, *, path_required: bool, what: str) -> Convert:
    def convert(line: Line) -> tuple[str, list[str]]:
        _count(line, f"{verb} file {what}", 1)
        args = _file(line, line.positionals[0], path_required=path_required)
        return f"{verb}-file", args

    return convert


def _copy_file(line: Line) -> tuple[str, list[str]]:
    _count(line, "copy file src-repo@branch:/path dst-repo@branch:/path", 2)
    src, dst = line.positionals
    return "copy-file", [
        *_file(line, src, path_required=True),
        *_file(line, dst, path_required=True),
    ]


def _diff_file(line: Line) -> tuple[str, list[str]]:
    _count(line, "diff file new-repo@commit:/path [old-repo@commit:/path]", 1, 2)
    return "diff-file", [a for p in line.positionals for a in _file(line, p, path_required=True)]


def _commit_rule(verb: str) -> Convert:
    def convert(line: Line) -> tuple[str, list[str]]:
        _count(line, f"{verb} commit repo@branch-or-commit", 1)
        return f"{verb}-commit", _commit(line, line.positionals[0])

    return convert


def _delete_commit(line: Line) -> tuple[str, list[str]]:
    _count(line, "delete commit <global id> | delete commit repo@commit", 1)
    text = line.positionals[0]
    if "@" not in text and GLOBAL_ID.match(text):
        return "delete-commitset", [text]
    return "delete-commit", _commit(line, text)


def _squash_commit(line: Line) -> tuple[str, list[str]]:
    _count(line, "squash commit <global id>", 1)
    text = line.positionals[0]
    if not GLOBAL_ID.match(text):
        raise InvalidArgument(
            f"invalid commit id {text!r}: squash commit takes a global id (32 hex digits)",
            hint="list the global ids with: tusk list commit",
        )
    return "squash-commitset", [text]


def _start_commit(line: Line) -> tuple[str, list[str]]:
    _count(line, "start commit repo@branch", 1)
    ref = parse_ref(line.positionals[0], example="images@master")
    return "start-commit", [line.repo(ref.repo), *([ref.ref] if ref.ref else [])]


def _subscribe_commit(line: Line) -> tuple[str, list[str]]:
    _count(line, "subscribe commit repo@branch", 1)
    return "subscribe-commit", _commit(line, line.positionals[0])


def _list_commit(line: Line) -> tuple[str, list[str]]:
    _count(line, "list commit [repo[@branch] | <global id>]", 0, 1)
    if not line.positionals:
        return "list-commitsets", []
    text = line.positionals[0]
    if "@" not in text and GLOBAL_ID.match(text):
        return "list-commitset", [text]
    ref = parse_ref(text, example="images@master")
    return "list-commit", [line.repo(ref.repo), *([ref.ref] if ref.ref else [])]


def _create_branch(line: Line) -> tuple[str, list[str]]:
    _count(line, "create branch repo@branch [--head commit] [--provenance repo@branch]", 1)
    ref = parse_ref(line.positionals[0], what="branch", example="images@master")
    branch = _need_ref(ref, line.positionals[0], "branch", f"{ref.repo}@master")
    provenance = _at_to_slash(line, line.take("-p", "--provenance"), "provenance")
    line.options += [o for p in provenance for o in ("-p", p)]
    return "create-branch", [line.repo(ref.repo), branch]


def _inspect_branch(line: Line) -> tuple[str, list[str]]:
    _count(line, "inspect branch repo@branch", 1)
    ref = parse_ref(line.positionals[0], what="branch", example="images@master")
    return "inspect-branch", [
        line.repo(ref.repo),
        _need_ref(ref, line.positionals[0], "branch", f"{ref.repo}@master"),
    ]


def _delete_branch(line: Line) -> tuple[str, list[str]]:
    _count(line, "delete branch repo@branch", 1)
    return "delete-branch", _commit(line, line.positionals[0])


def _named(command: str, usage: str, low: int = 1, high: int | None = None) -> Convert:
    """Commands whose arguments are repo or pipeline names (``--project`` qualifies them)."""

    def convert(line: Line) -> tuple[str, list[str]]:
        _count(line, usage, low, high)
        return command, [line.repo(n) for n in line.positionals]

    return convert


def _list_job(line: Line) -> tuple[str, list[str]]:
    _count(line, "list job [<job-id>]", 0, 1)
    expand = line.drop_flags("-x", "--expand")
    pipelines = line.take("-p", "--pipeline")
    inputs = _at_to_slash(line, line.take("-i", "--input"), "input commit")
    line.options += [o for p in pipelines for o in ("-p", line.repo(p))]
    line.options += [o for i in inputs for o in ("-i", i)]
    if line.positionals:
        return "list-jobset", line.positionals
    if not (expand or pipelines or inputs):
        return "list-jobsets", []  # 2.x: one row per global id unless -x or a filter
    return "list-job", []


def _job_rule(verb: str) -> Convert:
    def convert(line: Line) -> tuple[str, list[str]]:
        _count(line, f"{verb} job pipeline@job-id", 1)
        return f"{verb}-job", _job(line, line.positionals[0])

    return convert


def _datum_rule(verb: str, usage: str, count: int) -> Convert:
    def convert(line: Line) -> tuple[str, list[str]]:
        _count(line, f"{verb} datum {usage}", count)
        job, *pipeline = _job(line, line.positionals[0])
        return f"{verb}-datum", [job, *line.positionals[1:], *pipeline]

    return convert


def _list_datum(line: Line) -> tuple[str, list[str]]:
    """``list datum pipeline@job-id``, or ``list datum -f spec`` (the datums of its input)."""
    if any(o.partition("=")[0] in ("-f", "--file") for o in line.options):
        _count(line, "list datum -f <pipeline spec>", 0)
        return "list-datum", []
    return _datum_rule("list", "pipeline@job-id", 1)(line)


def _logs(line: Line) -> tuple[str, list[str]]:
    _count(line, "logs [--pipeline name | --job pipeline@job-id] [--datum id]", 0)
    for job in line.take("-j", "--job"):
        job_id, *pipeline = _job(line, job)
        line.options += ["--job", job_id, *pipeline]
    pipelines = line.take("-p", "--pipeline")
    line.options += [o for p in pipelines for o in ("--pipeline", line.repo(p))]
    return "get-logs", []


def _direct(command: str) -> Convert:
    def convert(line: Line) -> tuple[str, list[str]]:
        return command, [line.repo(n) for n in line.positionals]

    return convert


RULES: dict[tuple[str, ...], tuple[Convert, frozenset[str]]] = {
    ("put", "file"): (_put_file, frozenset({"-a", "--append"})),
    ("get", "file"): (_file_rule("get", path_required=True, what="repo@branch:/path"), frozenset()),
    ("inspect", "file"): (
        _file_rule("inspect", path_required=True, what="repo@branch:/path"),
        frozenset(),
    ),
    ("delete", "file"): (
        _file_rule("delete", path_required=True, what="repo@branch:/path"),
        frozenset(),
    ),
    ("list", "file"): (
        _file_rule("list", path_required=False, what="repo@branch[:/dir]"),
        frozenset(),
    ),
    ("glob", "file"): (
        _file_rule("glob", path_required=True, what="repo@branch:/pattern"),
        frozenset(),
    ),
    ("copy", "file"): (_copy_file, frozenset()),
    ("diff", "file"): (_diff_file, frozenset()),
    ("inspect", "commit"): (_commit_rule("inspect"), frozenset()),
    ("finish", "commit"): (_commit_rule("finish"), frozenset()),
    ("delete", "commit"): (_delete_commit, frozenset()),
    ("squash", "commit"): (_squash_commit, frozenset()),
    ("wait", "commit"): (_commit_rule("wait"), frozenset()),
    ("start", "commit"): (_start_commit, frozenset()),
    ("subscribe", "commit"): (_subscribe_commit, frozenset()),
    ("list", "commit"): (_list_commit, frozenset()),
    ("create", "branch"): (_create_branch, frozenset()),
    ("delete", "branch"): (_delete_branch, frozenset()),
    ("inspect", "branch"): (_inspect_branch, frozenset()),
    ("list", "branch"): (_named("list-branch", "list branch repo"), frozenset()),
    ("create", "repo"): (_named("create-repo", "create repo repo-name"), frozenset()),
    ("update", "repo"): (_named("update-repo", "update repo repo-name"), frozenset()),
    ("inspect", "repo"): (_named("inspect-repo", "inspect repo repo-name"), frozenset()),
    ("delete", "repo"): (_named("delete-repo", "delete repo repo-name", 0, 1), frozenset()),
    ("list", "repo"): (_named("list-repo", "list repo", 0), frozenset()),
    ("list", "job"): (_list_job, frozenset({"-x", "--expand"})),
    ("inspect", "job"): (_job_rule("inspect"), frozenset()),
    ("stop", "job"): (_job_rule("stop"), frozenset()),
    ("delete", "job"): (_job_rule("delete"), frozenset()),
    ("list", "datum"): (_list_datum, frozenset()),
    ("inspect", "datum"): (_datum_rule("inspect", "pipeline@job-id datum-id", 2), frozenset()),
    ("restart", "datum"): (
        _datum_rule("restart", "pipeline@job-id datum-path1,datum-path2", 2),
        frozenset(),
    ),
    ("create", "pipeline"): (_direct("create-pipeline"), frozenset()),
    ("update", "pipeline"): (_direct("update-pipeline"), frozenset()),
    ("list", "pipeline"): (_direct("list-pipeline"), frozenset()),
    ("inspect", "pipeline"): (_direct("inspect-pipeline"), frozenset()),
    ("delete", "pipeline"): (_direct("delete-pipeline"), frozenset()),
    ("start", "pipeline"): (_direct("start-pipeline"), frozenset()),
    ("stop", "pipeline"): (_direct("stop-pipeline"), frozenset()),
    ("edit", "pipeline"): (_direct("edit-pipeline"), frozenset()),
    ("extract", "pipeline"): (_direct("extract-pipeline"), frozenset()),
    ("logs",): (_logs, frozenset()),
}

# 2.x options that take a value where the 1.7 command has no such option.
VALUED: dict[tuple[str, ...], frozenset[str]] = {("logs",): frozenset({"-j"})}

# The commands translated to a 2.x-only command, which the 1.7 root group lacks.
V2_ONLY = {
    "wait-commit",
    "list-commitset",
    "list-commitsets",
    "delete-commitset",
    "squash-commitset",
    "inspect-branch",
    "list-jobset",
    "list-jobsets",
}


OUTPUTS = ("json", "yaml")


# Commands whose own ``-o`` is not a display format: ``get file -o <local path>``, and the
# overwrite flag of the 1.7 ``put-file`` that ``put file`` runs.
OWN_OUTPUT = {("get", "file"), ("put", "file")}


def display_options(args: list[str]) -> tuple[list[str], Grammar2]:
    """2.x's display options taken off a 2.x command line: ``--full-timestamps`` and, with
    ``--raw``, ``-o/--output json|yaml``. As pachctl 2.x does, ``-o`` without ``--raw`` is
    refused ("cannot set --output (-o) without --raw"), except on a command whose own ``-o``
    means something else (``get file -o <local path>``)."""
    full = "--full-timestamps" in args
    rest = [a for a in args if a != "--full-timestamps"]
    if "--raw" not in rest:
        if _key(rest) not in OWN_OUTPUT and _output_format(rest):
            raise InvalidArgument(
                "cannot set --output (-o) without --raw",
                hint="add --raw: e.g. " + " ".join([*rest[:2], "--raw", "-o", "json"]),
            )
        return rest, Grammar2(full_timestamps=full)
    line = Line([], rest)
    values = line.take("-o", "--output")
    output = values[-1] if values else "json"
    if output not in OUTPUTS:
        raise InvalidArgument(
            f"unknown output format {output!r} for --raw",
            hint="use -o json or -o yaml",
        )
    return line.options, Grammar2(full_timestamps=full, output=output)


def _output_format(args: list[str]) -> bool:
    """Whether ``args`` has ``-o``/``--output`` with a value (a format, then)."""
    for i, a in enumerate(args):
        head, eq, _ = a.partition("=")
        if head in ("-o", "--output") and (
            eq or (i + 1 < len(args) and not args[i + 1].startswith("-"))
        ):
            return True
    return False


def translate(argv: list[str], lookup: Lookup) -> list[str] | None:
    """The 1.7 (or 2.x-only) command line for a 2.x command line; None when ``argv`` is not in
    2.x's grammar. ``--help`` after a 2.x command shows the help of the command it runs."""
    key = _key(argv)
    if key is None:
        return None
    convert, flags = RULES[key]
    rest = argv[len(key) :]
    if "-h" in rest or "--help" in rest:
        return [_target_name(key), "--help"]
    command = _target_name(key)
    target = None if command in V2_ONLY else lookup(command)
    line = split(rest, target, flags, VALUED.get(key, frozenset()))
    qualify(line.project, "")  # a project other than default is refused even with no names
    name, args = convert(line)
    return [name, *args, *line.options]


def _key(argv: list[str]) -> tuple[str, ...] | None:
    """The rule for ``argv``: its first two words, or its first (``logs``); None if neither."""
    for key in (tuple(argv[:2]), tuple(argv[:1])):
        if key in RULES:
            return key
    return None


def rule_key(argv: list[str]) -> tuple[str, ...]:
    """The 2.x command words of ``argv`` (``("list", "repo")``); empty when not 2.x."""
    return _key(argv) or ()


def is_v2(argv: list[str]) -> bool:
    """Whether ``argv`` is a command line in 2.x's grammar."""
    return _key(argv) is not None


def _target_name(key: tuple[str, ...]) -> str:
    if key == ("logs",):
        return "get-logs"
    if key == ("list", "commit"):
        return "list-commit"
    return "-".join(key)
