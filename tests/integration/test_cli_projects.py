"""Projects through the real CLI against a real tuskd: create/list/inspect/update/delete
project (and pachctl 2.x's two-word spellings), ``--project`` and ``TUSK_PROJECT`` on the 1.7
commands, the same repo name in two projects, a pipeline in a project, and the refusals."""

from __future__ import annotations

from .conftest import Tusk, atom, fails, ok, rows, spec


def projects(text: str) -> list[tuple[str, ...]]:
    """list-project's table cut at its header's column starts (cells hold spaces)."""
    lines = text.splitlines()
    header = lines[0]
    starts = [header.index(h) for h in ("ACTIVE", "PROJECT", "CREATED", "DESCRIPTION")]
    ends = [*starts[1:], None]
    return [tuple(line[a:b].strip() for a, b in zip(starts, ends, strict=True)) for line in lines]


def without_created(table: list[tuple[str, ...]], name: str) -> tuple[str, ...]:
    (row,) = [r for r in table[1:] if r[1] == name]
    return (row[0], row[1], row[3])


def test_project_commands_and_tables(tusk: Tusk) -> None:
    ok(tusk("create-project", "cli-lab", "-d", "the lab's data"))
    ok(tusk("create", "project", "cli-audit"))
    table = projects(ok(tusk("list-project")))
    assert table[0] == ("ACTIVE", "PROJECT", "CREATED", "DESCRIPTION")
    assert without_created(table, "default") == ("*", "default", "-")
    assert without_created(table, "cli-lab") == ("", "cli-lab", "the lab's data")
    assert without_created(table, "cli-audit") == ("", "cli-audit", "-")
    assert all(r[2].endswith(" ago") for r in table[1:])  # 2.x's CREATED column
    marked = projects(ok(tusk("list", "project", "--project", "cli-lab")))
    assert without_created(marked, "cli-lab")[0] == "*"
    assert without_created(marked, "default")[0] == ""
    shown = ok(tusk("inspect-project", "cli-lab"))
    assert shown.startswith("Name: cli-lab\nDescription: the lab's data\nCreated: ")
    ok(tusk("update-project", "cli-audit", "-d", "checked"))
    assert without_created(projects(ok(tusk("list-project"))), "cli-audit")[2] == "checked"
    fails(tusk("create-project", "cli-lab"), 4, "project cli-lab already exists")
    fails(tusk("create-project", "bad/name"), 2, "project name (bad/name) invalid")
    fails(tusk("inspect-project", "cli-ghost"), 3, 'project "cli-ghost" not found')
    fails(tusk("delete-project", "default"), 2, "the default project cannot be deleted")
    ok(tusk("delete", "project", "cli-audit"))
    ok(tusk("delete-project", "cli-lab"))
    assert [r[1] for r in projects(ok(tusk("list-project")))[1:]] == ["default"]


def test_repos_files_and_pipelines_within_a_project(tusk: Tusk) -> None:
    ok(tusk("create-project", "cli-p1"))
    lab = ("--project", "cli-p1")
    ok(tusk("create-repo", "shared-name", *lab))
    ok(tusk("create-repo", "shared-name"))
    ok(tusk("put-file", "shared-name", "master", "/f", *lab, input="in the project\n"))
    ok(tusk("put-file", "shared-name", "master", "/f", input="in default\n"))
    assert ok(tusk("get-file", "shared-name", "master", "/f", *lab)) == "in the project\n"
    assert ok(tusk("get-file", "shared-name", "master", "/f")) == "in default\n"
    env = {"TUSK_PROJECT": "cli-p1"}
    assert ok(tusk("get-file", "shared-name", "master", "/f", env=env)) == "in the project\n"
    assert [r[0] for r in rows(ok(tusk("list-repo", "--project=cli-p1")))] == [
        "NAME",
        "shared-name",
    ]
    copy = spec("cli-copy", "cp /pfs/shared-name/* /pfs/out/", atom("shared-name", "/*"))
    ok(tusk("create-pipeline", *lab, input=copy))
    ok(tusk("flush-commit", "shared-name/master", *lab))
    assert ok(tusk("get-file", "cli-copy", "master", "/f", *lab)) == "in the project\n"
    listed = rows(ok(tusk("list-pipeline", *lab)))
    assert [r[0] for r in listed] == ["NAME", "cli-copy"]
    assert "cli-copy" not in [r[0] for r in rows(ok(tusk("list-pipeline")))]
    fails(tusk("inspect-pipeline", "cli-copy"), 3, "pipeline cli-copy not found")
    fails(
        tusk("delete-project", "cli-p1"),
        5,
        "cannot delete project cli-p1: it still has repos [",
    )
    fails(tusk("create-repo", "r", "--project", "cli-ghost"), 3, 'project "cli-ghost" not found')
    ok(tusk("delete-pipeline", "cli-copy", *lab))
    ok(tusk("delete-repo", "shared-name", *lab))
    ok(tusk("delete-project", "cli-p1"))
    assert ok(tusk("get-file", "shared-name", "master", "/f")) == "in default\n"
    ok(tusk("delete-repo", "shared-name"))
