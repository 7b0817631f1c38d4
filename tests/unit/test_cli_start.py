"""The CLI starts cheaply: a command imports its own module only, and ``--help`` still lists
every command of every module named in ``tusk.cli.main.COMMAND_MODULES``."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

from tusk.cli.main import COMMAND_MODULES


def _all_commands() -> dict[str, str]:
    """Command name -> the module that defines it (importing every module)."""
    out: dict[str, str] = {}
    for name in COMMAND_MODULES:
        for command in importlib.import_module(name).COMMANDS:
            assert command.name is not None
            out[command.name] = name
    return out


def test_help_lists_every_command() -> None:
    commands = _all_commands()
    assert len(commands) > 40 and "list-repo" in commands and "up" in commands
    run = subprocess.run(
        [sys.executable, "-m", "tusk.cli.main", "--help"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    listed = {
        line.split()[0]
        for line in run.stdout.split("Available Commands:", 1)[1].split("Flags:")[0].splitlines()
        if line.startswith("  ") and not line.startswith("   ")  # not a wrapped description
    }
    assert listed == set(commands)


PROBE = """
import json, sys
HEAVY = ("rich", "httpx", "pydantic", "yaml", "tusk.pps", "tusk.server", "tusk.api.models")
import click
from tusk.cli.main import cli
name = sys.argv[1]
command = cli.get_command(click.Context(cli), name)
print(json.dumps({
    "found": command is not None and command.name == name,
    "modules": sorted(m for m in sys.modules if m.startswith("tusk.cli.") and m.endswith("_cmds")),
    "heavy": sorted(m for m in HEAVY if sys.modules.get(m)),
}))
"""


def test_a_command_imports_only_its_own_module() -> None:
    commands = _all_commands()
    names = ("list-repo", "list-job", "up", "get-logs", "create-pipeline", "put-file")
    for name in (*names, "start-commit", "inspect-datum", "flush-job"):
        run = subprocess.run(
            [sys.executable, "-c", PROBE, name], capture_output=True, text=True, check=True
        )
        got = json.loads(run.stdout)
        assert got["found"], name
        assert set(got["modules"]) == {commands[name]}, (name, got["modules"])
        if name != "up":  # reads and edits use the plain reader: no typed client at load
            assert got["heavy"] == [], (name, got["heavy"])


def test_root_help_has_17s_layout() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "tusk.cli.main", "--help"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    text = run.stdout
    assert text.startswith("Access the tusk API")
    sections = ["Environment variables:", "Usage:\n  tusk [command]", "Available Commands:"]
    sections += ["Flags:", 'Use "tusk [command] --help" for more information about a command.']
    positions = [text.index(s) for s in sections]
    assert positions == sorted(positions)
    listed = [
        line.split()[0]
        for line in text.split("Available Commands:")[1].split("Flags:")[0].splitlines()
        if line.strip()
    ]
    assert listed == sorted(listed)  # by name, as cobra lists them
    assert "  -v, --verbose" in text and "      --no-metrics" in text
