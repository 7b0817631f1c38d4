"""Entry point of ``tusk`` and ``pachctl``: the root group and the one place errors are reported."""

from __future__ import annotations

import importlib
import os
import sys

import click
import httpx

from tusk import __version__
from tusk.errors import ServerUnavailable, TuskError

# Each module defines ``COMMANDS`` (a list of click commands); adding a module is one line here.
COMMAND_MODULES = (
    "tusk.cli.server_cmds",
    "tusk.cli.pfs_cmds",
    "tusk.cli.pipeline_cmds",
    "tusk.cli.job_cmds",
    "tusk.cli.worker_cmds",
    "tusk.cli.secret_cmds",
    "tusk.cli.admin_cmds",
    "tusk.cli.object_cmds",
    "tusk.cli.shell_cmds",
    "tusk.cli.refused_cmds",
    "tusk.cli.mount_cmds",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="tusk", message="%(prog)s %(version)s")
@click.option("-v", "--verbose", is_flag=True, help="Output verbose logs (accepted, as in 1.7).")
@click.option("--no-metrics", is_flag=True, help="Don't report user metrics (accepted, as in 1.7).")
def cli(verbose: bool, no_metrics: bool) -> None:
    """tusk: versioned data repositories and pipelines (pachctl 1.7 compatible)."""


def _register() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # an optional module not written yet
                continue
            raise
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def report(err: TuskError) -> int:
    """Print a user error as ``<message>`` plus ``  hint: <hint>``; return its exit code."""
    click.echo(err.message, err=True)
    if err.hint:
        from tusk.cli.common import for_program

        click.echo(f"  hint: {for_program(err.hint)}", err=True)
    return err.exit_code


def two_word(argv: list[str]) -> list[str]:
    """pachctl 2.x's spelling ``create secret ...`` as the command ``create-secret ...``, for the
    commands that exist under the joined name."""
    if len(argv) >= 2 and f"{argv[0]}-{argv[1]}" in cli.commands and argv[0] not in cli.commands:
        return [f"{argv[0]}-{argv[1]}", *argv[2:]]
    return argv


def main(argv: list[str] | None = None) -> None:
    name = os.path.basename(sys.argv[0])
    prog = name if name in ("tusk", "pachctl") else "tusk"
    try:
        args = two_word(sys.argv[1:] if argv is None else argv)
        rv = cli.main(args=args, prog_name=prog, standalone_mode=False)
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
    except httpx.HTTPError as err:  # a transport failure the client did not translate
        click.echo(f"lost the connection to the tusk server: {err or type(err).__name__}", err=True)
        sys.exit(ServerUnavailable.exit_code)
    except OSError as err:  # a local file (get-file -o, put-file -f) could not be used
        where = f" {err.filename}" if err.filename else ""
        click.echo(f"error{where}: {(err.strerror or str(err)).lower()}", err=True)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
