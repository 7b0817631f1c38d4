"""Projects through the services: the always-present ``default``, repos and pipelines named
within a project (the same name in two projects), a pipeline reading another project's repo,
its output in its own project, and the refusals (unknown project, non-empty delete)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import COPY, Pps, atom

from tusk.client import Client
from tusk.errors import AlreadyExists, HasDependents, InvalidArgument, InvalidName, NotFound
from tusk.runtime import Engine
from tusk.testing.inprocess import serve_in_thread


def test_default_always_exists_and_projects_keep_description_and_time(pps: Pps) -> None:
    e = pps.engine
    assert [p.name for p in e.projects.list()] == ["default"]
    assert e.projects.inspect("default").name == "default"
    lab = e.projects.create("lab", "the lab's data")
    assert (lab.name, lab.description) == ("lab", "the lab's data")
    e.projects.create("audit")
    assert [p.name for p in e.projects.list()] == ["default", "audit", "lab"]
    e.projects.create("audit", "checked", update=True)
    assert e.projects.inspect("audit").description == "checked"
    with pytest.raises(AlreadyExists):
        e.projects.create("lab")
    with pytest.raises(AlreadyExists):
        e.projects.create("default")
    with pytest.raises(InvalidName):
        e.projects.create("no/slash")
    with pytest.raises(NotFound, match='project "nope" not found'):
        e.projects.inspect("nope")
    with pytest.raises(InvalidArgument, match="cannot be deleted"):
        e.projects.delete("default")


def test_the_same_repo_name_in_two_projects_keeps_apart(pps: Pps) -> None:
    e = pps.engine
    e.projects.create("lab")
    pps.repo("images", "lab/images")
    pps.put("images", {"/a": "default's"})
    pps.put("lab/images", {"/a": "lab's"})
    assert pps.read("images", "master", "/a") == b"default's"
    assert pps.read("lab/images", "master", "/a") == b"lab's"
    assert [r.name for r in e.repos.list(project="default")] == ["images"]
    assert [r.name for r in e.repos.list(project="lab")] == ["lab/images"]
    with pytest.raises(NotFound, match='project "ghost" not found'):
        e.repos.create("ghost/images")
    with pytest.raises(NotFound, match='project "ghost" not found'):
        e.repos.list(project="ghost")


def test_a_pipeline_in_a_project_reads_another_projects_repo_and_writes_its_own(
    pps: Pps,
) -> None:
    e = pps.engine
    e.projects.create("lab")
    pps.repo("raw")  # in default
    pps.put("raw", {"/f": "hello"})
    pps.create(
        "copy",
        {"pfs": {"repo": "raw", "project": "default", "glob": "/*", "name": "in"}},
        COPY,
        pipeline={"name": "copy", "project": {"name": "lab"}},
    )
    (job,) = pps.wait_jobs("lab/copy", 1)
    assert job.state == "success"
    assert "raw" in {i.repo for i in job.inputs}
    assert pps.read("lab/copy", "master", "/f") == b"hello"
    assert [p.name for p in e.pipelines.list(project="lab")] == ["lab/copy"]
    assert e.pipelines.list(project="default") == []
    assert e.repos.inspect("lab/copy").kind == "output"
    # a second pipeline of the same name in default, reading lab's output
    pps.create("copy", atom("lab/copy", name="in"), COPY)
    (job,) = pps.wait_jobs("copy", 1)
    assert job.state == "success"
    assert pps.read("copy", "master", "/f") == b"hello"


def test_an_input_without_a_project_is_in_the_pipelines_project(pps: Pps) -> None:
    e = pps.engine
    e.projects.create("lab")
    pps.repo("lab/raw")
    pps.put("lab/raw", {"/g": "x"})
    pps.create(
        "p", atom("raw", name="in"), COPY, pipeline={"name": "p", "project": {"name": "lab"}}
    )
    (job,) = pps.wait_jobs("lab/p", 1)
    assert job.state == "success"
    assert pps.read("lab/p", "master", "/g") == b"x"


def test_a_pipeline_in_an_unknown_project_is_refused_and_changes_nothing(pps: Pps) -> None:
    pps.repo("raw")
    with pytest.raises(NotFound, match='project "ghost" not found'):
        pps.create("p", atom("raw"), COPY, pipeline={"name": "p", "project": {"name": "ghost"}})
    assert pps.engine.pipelines.list(project=None) == []
    assert [r.name for r in pps.engine.repos.list(project=None)] == ["raw"]


def test_deleting_a_project_with_repos_is_refused_until_it_is_empty(pps: Pps) -> None:
    e = pps.engine
    e.projects.create("lab")
    pps.repo("lab/raw")
    pps.create(
        "p", atom("raw", name="in"), COPY, pipeline={"name": "p", "project": {"name": "lab"}}
    )
    with pytest.raises(HasDependents, match=r"cannot delete project lab: .*\[p raw\]|\[raw p\]"):
        e.projects.delete("lab", force=True)
    assert e.projects.inspect("lab").name == "lab"
    e.pipelines.delete(None, all=True, project="lab")
    e.repos.delete(None, all=True, project="lab")
    e.projects.delete("lab")
    assert [p.name for p in e.projects.list()] == ["default"]
    with pytest.raises(NotFound):
        e.projects.delete("lab")


def test_delete_all_leaves_only_default(pps: Pps) -> None:
    e = pps.engine
    e.projects.create("lab")
    pps.repo("lab/raw", "raw")
    e.admin.delete_all()
    assert [p.name for p in e.projects.list()] == ["default"]
    assert e.repos.list(project=None) == []


def test_the_python_client_over_http_names_repos_by_project(tmp_path: Path) -> None:
    """tusk.Client(project=...) puts bare names in its project; ``project/name`` names a repo
    of any project; the routes take the project as a query parameter."""
    engine = Engine(tmp_path / "home")
    try:
        with serve_in_thread(engine) as address, Client(address, timeout=30) as c:
            c.pfs.create_project("web", "over http")
            assert [p.name for p in c.pfs.list_project()] == ["default", "web"]
            assert c.pfs.inspect_project("web").description == "over http"
            with Client(address, timeout=30, project="web") as w:
                w.create_repo("logs")
                w.put_file("logs", "master", "/a", b"web's")
                assert w.get_file_bytes("logs", "master", "/a") == b"web's"
                assert [r.name for r in w.list_repo()] == ["web/logs"]
                assert [b for b in w.inspect_repo("logs").branches] == ["master"]
            c.create_repo("logs")
            c.put_file("logs", "master", "/a", b"default's")
            assert c.get_file_bytes("web/logs", "master", "/a") == b"web's"
            assert c.get_file_bytes("logs", "master", "/a") == b"default's"
            assert [r.name for r in c.list_repo()] == ["logs"]
            assert sorted(r.name for r in c.pfs.list_repo(project="*")) == ["logs", "web/logs"]
            with pytest.raises(HasDependents):
                c.pfs.delete_project("web")
            assert c.pfs.delete_repo(all=True, project="web") == ["web/logs"]
            c.pfs.delete_project("web")
            with pytest.raises(NotFound, match='project "web" not found'):
                c.pfs.inspect_project("web")
            assert c.get_file_bytes("logs", "master", "/a") == b"default's"
    finally:
        engine.close()
