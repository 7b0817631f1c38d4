"""docs/pachctl.md lists every command and flag of the CLI, and nothing the CLI lacks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click

from tusk.cli.main import cli

TABLE = Path(__file__).resolve().parents[2] / "docs" / "pachctl.md"
STATUSES = {"supported", "differs", "refused", "tusk"}
ROW = re.compile(r"^\| (?P<cmd>[^|]+?) \| (?P<flag>[^|]*?) ?\| (?P<status>\w+) \| (?P<note>.*)\|$")


def table() -> tuple[dict[str, str], dict[str, set[str]], dict[str, str]]:
    """(status per command, flag names per command, note per command) from the table."""
    status: dict[str, str] = {}
    flags: dict[str, set[str]] = {}
    notes: dict[str, str] = {}
    for line in TABLE.read_text().splitlines():
        m = ROW.match(line)
        if not m or m["cmd"] in ("Command", "---"):
            continue
        cmd = "" if m["cmd"] == "(global)" else m["cmd"].strip("`")
        assert m["status"] in STATUSES, line
        flag = m["flag"].strip().strip("`")
        if flag:
            assert cmd in status, f"flag row before its command row: {line}"
            flags[cmd].update(flag.split("/"))
        else:
            assert cmd not in status, f"command listed twice: {cmd}"
            status[cmd], notes[cmd] = m["status"], m["note"].strip()
            flags[cmd] = set()
    return status, flags, notes


def commands(group: click.Group = cli, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    """Every command of the CLI by its full name (``deploy local``), the root as ``""``."""
    if not prefix:
        cli.load_all()  # the root group imports its command modules lazily
        yield "", group
    for name, cmd in group.commands.items():
        yield f"{prefix}{name}", cmd
        if isinstance(cmd, click.Group):
            yield from commands(cmd, f"{prefix}{name} ")


def option_names(cmd: click.Command) -> set[str]:
    return {
        o
        for p in cmd.params
        if isinstance(p, click.Option) and "--help" not in p.opts
        for o in p.opts
    }


def test_every_command_is_in_the_table_and_every_row_is_a_command() -> None:
    status, _, _ = table()
    in_cli = {name for name, _ in commands()}
    assert sorted(in_cli - status.keys()) == [], "commands missing from docs/pachctl.md"
    assert sorted(status.keys() - in_cli) == [], "docs/pachctl.md lists commands the CLI lacks"


def test_every_flag_is_in_the_table_and_every_flag_row_is_a_flag() -> None:
    status, flags, _ = table()
    for name, cmd in commands():
        declared = option_names(cmd)
        if status[name] == "refused" and not flags[name]:
            # refused whole: no flags of its own (1.7's are accepted and refused with it)
            assert not declared, f"{name}: a refused command declares flags the table lacks"
            continue
        assert declared == flags[name], (
            f"`{name}`: CLI {sorted(declared)} != table {sorted(flags[name])}"
        )


def test_refusals_and_differences_say_why() -> None:
    status, _, notes = table()
    for name, st in status.items():
        if st in ("refused", "differs", "tusk"):
            assert notes[name], f"`{name}` is {st} but the table does not say how or why"


def test_the_1_7_commands_are_all_there() -> None:
    status, _, _ = table()
    # a sample of 1.7.14's commands from each part of pachctl (pfs, pps, admin, deploy, auth)
    for name in (
        "put-header",
        "get-tag",
        "garbage-collect",
        "extract",
        "restore",
        "inspect-cluster",
        "version",
        "delete-all",
        "port-forward",
        "completion",
        "deploy local",
        "undeploy",
        "auth login",
        "enterprise get-state",
        "mount",
    ):
        assert name in status, name
