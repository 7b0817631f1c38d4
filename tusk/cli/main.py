"""Entry point of ``tusk`` and ``pachctl``: the root group and the one place errors are reported."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Callable

import click

from tusk import __version__
from tusk.errors import InvalidArgument, ServerUnavailable, TuskError

# httpx imports its optional command-line client (click, rich, pygments) when they are installed;
# tusk never uses it, and every command would pay for it at start.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

# Each module defines ``COMMANDS`` (a list of click commands); adding a module is one line here.
COMMAND_MODULES = (
    "tusk.cli.server_cmds",
    "tusk.cli.pfs_cmds",
    "tusk.cli.put_cmds",
    "tusk.cli.pipeline_cmds",
    "tusk.cli.job_cmds",
    "tusk.cli.worker_cmds",
    "tusk.cli.secret_cmds",
    "tusk.cli.project_cmds",
    "tusk.cli.admin_cmds",
    "tusk.cli.object_cmds",
    "tusk.cli.shell_cmds",
    "tusk.cli.refused_cmds",
    "tusk.cli.mount_cmds",
    "tusk.cli.lineage_cmds",
    "tusk.cli.console_cmds",
)

# How a command module names its commands: ``@click.command("name")``, and the functions in its
# ``COMMANDS`` list (``put_file`` is ``put-file``). Read from the source, so a command imports
# only its own module; a command found neither way makes the group import every module.
_NAMED = re.compile(r'@click\.command\(\s*"([\w-]+)"')
_LISTED = re.compile(r"^COMMANDS = \[([^\]]*)\]", re.MULTILINE)


def _declared_names(module: str) -> set[str]:
    """The command names ``module``'s source declares (empty if it cannot be read)."""
    try:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            return set()
        with open(spec.origin, encoding="utf-8") as f:
            text = f.read()
    except (ImportError, OSError):
        return set()
    listed = [
        n.replace("_", "-") for block in _LISTED.findall(text) for n in re.findall(r"\w+", block)
    ]
    return set(_NAMED.findall(text)) | set(listed)


class LazyGroup(click.Group):
    """The root group: a command's module is imported when that command runs; listing the
    commands (``--help``) imports them all."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._loaded: set[str] = set()

    def _load(self, name: str) -> None:
        if name in self._loaded:
            return
        self._loaded.add(name)
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # an optional module not written yet
                return
            raise
        for command in module.COMMANDS:
            self.add_command(command)

    def load_all(self) -> None:
        """Import every command module."""
        for name in COMMAND_MODULES:
            self._load(name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self.load_all()
        return super().list_commands(ctx)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The root's help in pachctl 1.7's layout (cobra's): the description, ``Usage:``,
        ``Available Commands:`` in name order, ``Flags:``, and where to read more."""
        import inspect  # here: only --help needs it

        prog = ctx.command_path
        formatter.write(inspect.cleandoc(self.help or "").replace("\b\n", "") + "\n")
        formatter.write(f"\nUsage:\n  {prog} [command]\n\nAvailable Commands:\n")
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=80)))
        width = max(len(name) for name, _ in rows)
        for name, short in rows:
            formatter.write(f"  {name.ljust(width)}   {short}\n")
        formatter.write("\nFlags:\n")
        flags = [p.get_help_record(ctx) for p in self.get_params(ctx)]
        records = [r for r in flags if r is not None]
        width = max(len(opts) for opts, _ in records)
        for opts, text in records:
            pad = "" if opts.startswith("-") and not opts.startswith("--") else "    "
            formatter.write(f"  {(pad + opts).ljust(width + 4)}   {text}\n")
        formatter.write(f'\nUse "{prog} [command] --help" for more information about a command.\n')

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            owner = next((m for m in COMMAND_MODULES if cmd_name in _declared_names(m)), None)
            if owner is not None:
                self._load(owner)
            if cmd_name not in self.commands:  # declared some other way: look everywhere
                self.load_all()
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="tusk", message="%(prog)s %(version)s")
@click.option("-v", "--verbose", is_flag=True, help="Output verbose logs (accepted, as in 1.7).")
@click.option("--no-metrics", is_flag=True, help="Don't report user metrics (accepted, as in 1.7).")
def cli(verbose: bool, no_metrics: bool) -> None:
    """Access the tusk API: versioned data repositories and the pipelines that process them,
    with pachctl 1.7's commands (and pachctl 2.x's spelling of the common ones: `create repo`,
    `put file repo@branch:/path`, `list job`).

    \b
    Environment variables:
      TUSK_ADDRESS=<host>:<port>, the tuskd server to connect to (e.g. 127.0.0.1:30650,
        the default; PACHD_ADDRESS is read too). When nothing answers at the default address,
        a local server is started there (tusk up / tusk down).
      TUSK_HOME=<dir>, where that local server keeps its data (default ~/.tusk).
      TUSK_AUTH_TOKEN=<token>, the server's API token, when it has one.
    """


def report(err: TuskError) -> int:
    """Print a user error as ``<message>`` plus ``  hint: <hint>``; return its exit code."""
    click.echo(err.message, err=True)
    if err.hint:
        from tusk.cli.common import for_program

        click.echo(f"  hint: {for_program(err.hint)}", err=True)
    return err.exit_code


def two_word(argv: list[str]) -> list[str]:
    """pachctl 2.x's spelling ``create secret ...`` as the command ``create-secret ...``, for the
    commands that exist under the joined name (read from the modules' sources: nothing is
    imported for it)."""
    if len(argv) < 2 or "-" in argv[0]:
        return argv
    declared = set().union(*(_declared_names(m) for m in COMMAND_MODULES))
    joined = f"{argv[0]}-{argv[1]}"
    if argv[0] not in declared and joined in declared:
        return [joined, *argv[2:]]
    return argv


# The first words of pachctl 2.x's commands (``list file``, ``logs``): only a command line
# starting with one of them is looked at by the 2.x translation (tusk.cli.v2).
V2_VERBS = frozenset(
    [
        "put",
        "get",
        "list",
        "glob",
        "inspect",
        "delete",
        "copy",
        "diff",
        "finish",
        "wait",
        "start",
        "subscribe",
        "create",
        "update",
        "stop",
        "restart",
        "squash",
        "edit",
        "extract",
        "logs",
    ]
)


def _require_raw(name: str, words: str, lookup: Callable[[str], click.Command | None]) -> None:
    """A clear error when a 2.x command line asks for the raw form (``--raw``, ``-o json``) of a
    command that has none, instead of click's "no such option"."""
    from tusk.cli import v2

    if name in v2.V2_ONLY:
        from tusk.cli.v2_cmds import group

        target = group.get_command(click.Context(group), name)
    else:
        target = lookup(name)
    if target is not None and any("--raw" in getattr(p, "opts", ()) for p in target.params):
        return
    raise InvalidArgument(
        f"{words} has no raw form to print (what -o json|yaml and --raw print)",
        hint="leave -o/--output and --raw out",
    )


def run(args: list[str], prog: str) -> object:
    """Run a command line in either grammar: 1.7's (``list-file repo commit /``) or 2.x's
    (``list file repo@commit:/``), which is translated first."""
    lead = 0  # the root's own flags may come first: ``pachctl -v list repo``
    while lead < len(args) and args[lead] in ("-v", "--verbose", "--no-metrics"):
        lead += 1
    if lead < len(args) and args[lead] in V2_VERBS:
        from tusk.cli import v2

        def lookup(name: str) -> click.Command | None:
            return cli.get_command(click.Context(cli), name)

        if v2.is_v2(args[lead:]):
            rest, grammar = v2.display_options(args[lead:])
            translated = v2.translate(rest, lookup)
            assert translated is not None
            if "--raw" in translated:
                _require_raw(translated[0], " ".join(v2.rule_key(rest)), lookup)
            if translated[0] in v2.V2_ONLY:  # the root's flags are accepted and unused
                from tusk.cli.v2_cmds import group

                return group.main(
                    args=translated, prog_name=prog, standalone_mode=False, obj=grammar
                )
            return cli.main(
                args=[*args[:lead], *translated],
                prog_name=prog,
                standalone_mode=False,
                obj=grammar,
            )
    return cli.main(args=two_word(args), prog_name=prog, standalone_mode=False)


def take_project(argv: list[str]) -> list[str]:
    """``argv`` without its ``--project P`` / ``--project=P`` (anywhere before ``--``), which
    sets ``TUSK_PROJECT`` for this invocation: the project of every repo and pipeline name that
    any command is given, as with pachctl 2.x's ``--project``."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            out.extend(argv[i:])
            break
        value = None
        if arg == "--project":
            if i + 1 >= len(argv):
                raise InvalidArgument("--project needs a project name", hint="e.g. --project lab")
            value = argv[i + 1]
            i += 1
        elif arg.startswith("--project="):
            value = arg.split("=", 1)[1]
        else:
            out.append(arg)
        if value is not None:
            os.environ["TUSK_PROJECT"] = value
        i += 1
    return out


def main(argv: list[str] | None = None) -> None:
    name = os.path.basename(sys.argv[0])
    prog = name if name in ("tusk", "pachctl") else "tusk"
    try:
        rv = run(take_project(sys.argv[1:] if argv is None else argv), prog)
    except TuskError as err:
        sys.exit(report(err))
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        # The reader went away (`tusk get-file … | head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(141)
    except Exception as err:
        httpx = sys.modules.get("httpx")  # imported by the commands that talk to the server
        if httpx is not None and isinstance(err, httpx.HTTPError):
            # a transport failure the client did not translate
            name = type(err).__name__
            click.echo(f"lost the connection to the tusk server: {err or name}", err=True)
            sys.exit(ServerUnavailable.exit_code)
        if isinstance(err, OSError):  # a local file (get-file -o, put-file -f) was unusable
            where = f" {err.filename}" if err.filename else ""
            click.echo(f"error{where}: {(err.strerror or str(err)).lower()}", err=True)
            sys.exit(1)
        raise
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
