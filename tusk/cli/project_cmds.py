"""Project commands (pachctl 2.x's): create-project, list-project, inspect-project,
update-project and delete-project; ``pachctl create project`` and the other two-word spellings
reach the same commands. ``--project P`` on any command (or ``TUSK_PROJECT``) names the project
its repos and pipelines are in."""

from __future__ import annotations

import click

from tusk.cli import v2_tables
from tusk.cli.common import (
    current_project,
    full_timestamps,
    out,
    print_raw,
    raw_option,
    reader,
)
from tusk.cli.tables import print_table
from tusk.cli.units import ago, parse_time


@click.command("create-project")
@click.argument("name")
@click.option("-d", "--description", default="", help="The description of the project.")
def create_project(name: str, description: str) -> None:
    """Create a new project."""
    reader().send("POST", "/projects", {"name": name, "description": description, "update": False})


@click.command("update-project")
@click.argument("name")
@click.option("-d", "--description", default="", help="The new description of the project.")
def update_project(name: str, description: str) -> None:
    """Change a project's description."""
    reader().send("POST", "/projects", {"name": name, "description": description, "update": True})


@click.command("list-project")
@raw_option
def list_project(raw: bool) -> None:
    """List every project; the current one is marked ``*`` (2.x's layout: projects are 2.x's,
    whichever way the command is spelled)."""
    infos = reader().get("/projects")
    if raw:
        print_raw(infos)
        return
    active = current_project()
    rows = [v2_tables.project_row(i, active, full_timestamps()) for i in infos]
    out(print_table(v2_tables.PROJECT_HEADER, rows))


@click.command("inspect-project")
@click.argument("name")
@raw_option
def inspect_project(name: str, raw: bool) -> None:
    """Show a project's name, description and creation time."""
    info = reader().get(f"/projects/{name}")
    if raw:
        print_raw(info)
        return
    created = ago(parse_time(info["created"]))
    out(f"Name: {info['name']}\nDescription: {info.get('description', '')}\nCreated: {created}\n")


@click.command("delete-project")
@click.argument("name")
@click.option(
    "-f",
    "--force",
    is_flag=True,
    help="Accepted as pachctl does; a project with repos is refused all the same.",
)
def delete_project(name: str, force: bool) -> None:
    """Delete an empty project (delete its pipelines and repos first)."""
    reader().send("DELETE", f"/projects/{name}", force=force or None)


COMMANDS = [create_project, update_project, list_project, inspect_project, delete_project]
