"""File-level lineage and waves, in process: which datums (and which input files, at which
commits) wrote an output file, also when an incremental job reused an earlier job's datum, and
the whole wave of commits and jobs behind a global ID."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from conftest import Pps, atom
from test_pps_http import Http, _ok

from tusk.admin import archive
from tusk.api.pps import FileLineage
from tusk.client import Client
from tusk.client.inprocess import InProcessTransport
from tusk.errors import InvalidArgument, InvalidPath, NotFound
from tusk.meta.schema import SCHEMA_VERSION
from tusk.server.app import create_app

# Stage 1: each datum (one file of x) writes two files under a name of its own.
SPLIT = [
    "sh",
    "-c",
    "for f in /pfs/in/*; do n=$(basename $f); mkdir -p /pfs/out/$n;"
    " cp $f /pfs/out/$n/out; wc -c < $f > /pfs/out/$n/len; done",
]
# Stage 2 reads stage 1: one datum per directory of it.
DOUBLE = ["sh", "-c", "for d in /pfs/in/*; do cat $d/out $d/out > /pfs/out/$(basename $d); done"]
# Every datum appends to the same file: a file written by several datums.
APPEND = ["sh", "-c", "cat /pfs/in/* >> /pfs/out/all"]


def _rows(pps: Pps, pipeline: str, job_id: str) -> int:
    with pps.engine.meta.transaction(write=False) as tx:
        return len(tx.list_datums(pipeline, job_id, brief=True))


def _brief(lin: FileLineage) -> list[tuple[str, list[tuple[str, str, str]]]]:
    return [(d.job_id, [(i.repo, i.commit, i.path) for i in d.inputs]) for d in lin.datums]


def _two_stages(pps: Pps) -> tuple[str, str, str]:
    """Stage 1 and 2 over x, then one file more: (first commit, first job, second commit)."""
    pps.repo("x")
    pps.create("split", atom("x", name="in"), SPLIT)
    pps.create("double", atom("split", name="in"), DOUBLE)
    c1 = pps.put("x", {"/a": "aa", "/b": "bbb"})
    s1 = pps.wait_jobs("split", 1)[-1]
    d1 = pps.wait_jobs("double", 1)[-1]
    assert s1.id == d1.id == c1 and s1.state == d1.state == "success", (s1.reason, d1.reason)
    c2 = pps.put("x", {"/c": "c"})
    s2 = pps.wait_jobs("split", 2)[-1]
    d2 = pps.wait_jobs("double", 2)[-1]
    assert s2.id == d2.id == c2 and s2.state == d2.state == "success"
    # both second jobs are incremental: one datum ran, the others have no row
    assert _rows(pps, "split", c2) == 1 and _rows(pps, "double", c2) == 1
    return c1, s1.id, c2


def test_output_files_trace_back_to_datums_also_reused_ones(pps: Pps) -> None:
    c1, j1, c2 = _two_stages(pps)
    lineage = pps.engine.lineage

    # a datum of the first job, reused by the incremental second job: still its datum
    lin = lineage.file("split", "master", "/a/out")
    assert (lin.repo, lin.commit, lin.path) == ("split", c2, "/a/out")
    assert (lin.pipeline, lin.job_id) == ("split", c2)
    assert _brief(lin) == [(j1, [("x", c1, "/a")])]
    assert lin.datums[0].state == "success"
    # the datum wrote two files: both lead to it
    other = lineage.file("split", c2, "/a/len")
    assert [d.datum_id for d in other.datums] == [lin.datums[0].datum_id]
    # the new datum of the second job
    assert _brief(lineage.file("split", c2, "/c/len")) == [(c2, [("x", c2, "/c")])]
    # stage 2 read stage 1's output commits
    assert _brief(lineage.file("double", "master", "/a")) == [(j1, [("split", j1, "/a")])]
    assert _brief(lineage.file("double", "master", "/c")) == [(c2, [("split", c2, "/c")])]
    # the first output commit still answers for itself
    assert _brief(lineage.file("split", j1, "/b/out")) == [(j1, [("x", c1, "/b")])]

    # a changed input file: its new datum, not the old one
    c3 = pps.put("x", {"/a": "changed"}, overwrite=True)
    pps.wait_jobs("double", 3)
    assert _brief(lineage.file("split", "master", "/a/out")) == [(c3, [("x", c3, "/a")])]
    assert _brief(lineage.file("double", "master", "/a")) == [(c3, [("split", c3, "/a")])]
    assert _brief(lineage.file("double", "master", "/b")) == [(j1, [("split", j1, "/b")])]
    # ... and the older commit keeps its own lineage
    assert _brief(lineage.file("split", c2, "/a/out")) == [(j1, [("x", c1, "/a")])]

    # a user repo's file: no pipeline, no datums
    user = lineage.file("x", "master", "/a")
    assert (user.pipeline, user.job_id, user.datums) == (None, None, [])


def test_a_file_written_by_several_datums_lists_them_all(pps: Pps) -> None:
    pps.repo("x")
    c1 = pps.put("x", {"/a": "1", "/b": "22", "/c": "333"})
    pps.create("cat", atom("x", name="in"), APPEND)
    (j1,) = pps.wait_jobs("cat", 1)
    lin = pps.engine.lineage.file("cat", "master", "/all")
    assert sorted(_brief(lin)) == [(j1.id, [("x", c1, f"/{n}")]) for n in "abc"]
    c2 = pps.put("x", {"/d": "4444"})
    pps.wait_jobs("cat", 2)
    lin = pps.engine.lineage.file("cat", "master", "/all")
    assert lin.job_id == c2
    assert sorted(_brief(lin)) == sorted(
        [*[(j1.id, [("x", c1, f"/{n}")]) for n in "abc"], (c2, [("x", c2, "/d")])]
    )
    # a removed input file's datum is no longer there
    c3 = pps.delete("x", "/b")
    pps.wait_jobs("cat", 3)
    lin = pps.engine.lineage.file("cat", c3, "/all")
    assert sorted(p for _j, ins in _brief(lin) for _r, _c, p in ins) == ["/a", "/c", "/d"]


def test_reprocessed_and_cross_inputs(pps: Pps) -> None:
    pps.repo("x", "y")
    cx = pps.put("x", {"/a": "a", "/b": "b"})
    cy = pps.put("y", {"/k": "k"})
    cross = {"cross": [atom("x", name="in"), atom("y", name="other")]}
    cmd = ["sh", "-c", "cat /pfs/in/* /pfs/other/* > /pfs/out/$(ls /pfs/in)"]
    pps.create("pair", cross, cmd)
    (j1,) = pps.wait_jobs("pair", 1)
    assert j1.state == "success", j1.reason
    assert _brief(pps.engine.lineage.file("pair", "master", "/a")) == [
        (j1.id, [("x", cx, "/a"), ("y", cy, "/k")])
    ]
    # --reprocess: a new salt, so every datum runs again; the old stored outputs are not it
    pps.create("pair", cross, cmd, update=True, reprocess=True)
    j2 = pps.wait_jobs("pair", 2)[-1]
    assert j2.state == "success", j2.reason
    assert _brief(pps.engine.lineage.file("pair", "master", "/a")) == [
        (j2.id, [("x", cx, "/a"), ("y", cy, "/k")])
    ]


def test_keyed_inputs_enumerate_the_job(pps: Pps) -> None:
    pps.repo("x", "y")
    cx = pps.put("x", {"/1.txt": "x1", "/2.txt": "x2"})
    cy = pps.put("y", {"/1.csv": "y1", "/3.csv": "y3"})
    join = {
        "join": [
            {"pfs": {"repo": "x", "glob": "/(*).txt", "join_on": "$1"}},
            {"pfs": {"repo": "y", "glob": "/(*).csv", "join_on": "$1"}},
        ]
    }
    pps.create("joined", join, ["sh", "-c", "cat /pfs/x/* /pfs/y/* > /pfs/out/pair"])
    (j1,) = pps.wait_jobs("joined", 1)
    assert j1.state == "success", j1.reason
    lin = pps.engine.lineage.file("joined", "master", "/pair")
    assert _brief(lin) == [(j1.id, [("x", cx, "/1.txt"), ("y", cy, "/1.csv")])]


def test_bad_requests_name_the_problem(pps: Pps) -> None:
    pps.repo("x")
    pps.put("x", {"/d/a": "a"})
    lineage = pps.engine.lineage
    with pytest.raises(NotFound, match="repo nope not found"):
        lineage.file("nope", "master", "/a")
    with pytest.raises(NotFound, match="branch dev not found in repo x"):
        lineage.file("x", "dev", "/a")
    with pytest.raises(NotFound, match="commit 0{32} not found"):
        lineage.file("x", "0" * 32, "/a")
    with pytest.raises(NotFound, match="file /missing not found in repo x at commit master"):
        lineage.file("x", "master", "/missing")
    with pytest.raises(InvalidArgument, match="/d is a directory"):
        lineage.file("x", "master", "/d")
    with pytest.raises(InvalidPath):
        lineage.file("x", "master", "/")
    with pytest.raises(NotFound, match="no commit has the ID"):
        lineage.wave("f" * 32)
    with pytest.raises(InvalidArgument, match="'master' is not a global ID"):
        lineage.wave("master")
    with pytest.raises(NotFound, match="repo nope not found"):
        lineage.wave("master", repo="nope")


def test_the_wave_of_an_output_commit(pps: Pps) -> None:
    c1, j1, c2 = _two_stages(pps)
    wave = pps.engine.lineage.wave(c2)
    assert wave.id == c2
    assert {(c.repo, c.id, c.branch) for c in wave.commits} == {
        ("x", c2, "master"),
        ("split", c2, "master"),
        ("double", c2, "master"),
    }
    assert {(j.pipeline, j.job_id, j.state, j.spec_version) for j in wave.jobs} == {
        ("split", c2, "success", 1),
        ("double", c2, "success", 1),
    }
    assert [(p.pipeline, p.spec_version) for p in wave.pipelines] == [("double", 1), ("split", 1)]
    # from a branch of a repo: the same wave
    assert pps.engine.lineage.wave("master", repo="double") == wave

    # an update of stage 1 starts a wave under its spec commit's ID; it reads the older input
    # commit, which joins the wave through the provenance chain
    pps.create("split", atom("x", name="in"), [*SPLIT[:2], SPLIT[2] + "; true"], update=True)
    pps.wait_jobs("double", 3)
    up = pps.engine.lineage.wave("master", repo="double")
    assert up.id not in (c1, c2)
    assert {(c.repo, c.id) for c in up.commits} == {
        ("x", c2),
        ("split", up.id),
        ("double", up.id),
    }
    assert {(j.pipeline, j.spec_version) for j in up.jobs} == {("split", 2), ("double", 1)}
    assert [(p.pipeline, p.spec_version) for p in up.pipelines] == [("double", 1), ("split", 2)]


def test_http_lineage_and_wave(pps: Pps) -> None:
    c1, j1, c2 = _two_stages(pps)
    http = Http(create_app(pps.engine))
    got = _ok(http.get("/v1/lineage", params={"repo": "double", "commit": "master", "path": "/a"}))
    assert set(got) == {"repo", "commit", "path", "pipeline", "job_id", "datums"}
    assert (got["pipeline"], got["job_id"], got["commit"]) == ("double", c2, c2)
    (datum,) = got["datums"]
    assert set(datum) == {"datum_id", "job_id", "state", "inputs"}
    assert datum["inputs"] == [{"repo": "split", "commit": j1, "path": "/a"}]
    user = _ok(http.get("/v1/lineage", params={"repo": "x", "commit": c1, "path": "/a"}))
    assert (user["pipeline"], user["job_id"], user["datums"]) == (None, None, [])

    missing = http.get("/v1/lineage", params={"repo": "x", "commit": "master", "path": "/zz"})
    assert missing.status_code == 404 and "file /zz not found" in missing.text
    assert http.get("/v1/lineage", params={"repo": "x"}).status_code in (400, 422)

    wave = _ok(http.get(f"/v1/commitsets/{c2}/wave"))
    assert set(wave) == {"id", "commits", "jobs", "pipelines"}
    assert {j["pipeline"] for j in wave["jobs"]} == {"split", "double"}
    assert set(wave["jobs"][0]) == {
        "pipeline",
        "job_id",
        "state",
        "spec_version",
        "spec_commit",
        "reason",
    }
    by_branch = _ok(http.get("/v1/commitsets/master/wave", params={"repo": "split"}))
    assert by_branch == wave
    assert http.get(f"/v1/commitsets/{'e' * 32}/wave").status_code == 404


def test_client_lineage_and_wave(pps: Pps) -> None:
    c1, j1, c2 = _two_stages(pps)
    app = create_app(pps.engine)
    with Client("http://localhost", transport=InProcessTransport(app)) as client:
        lin = client.pps.lineage("double", "master", "/b")
        assert isinstance(lin, FileLineage)
        assert _brief(lin) == [(j1, [("split", j1, "/b")])]
        assert client.lineage("split", c1, "/b/len") == pps.engine.lineage.file(
            "split", c1, "/b/len"
        )
        assert (
            client.pps.wave(c2)
            == client.wave("master", repo="split")
            == pps.engine.lineage.wave(c2)
        )
        assert client.wave("master^", repo="split").id == c1
        with pytest.raises(NotFound, match="file /nope not found"):
            client.pps.lineage("double", "master", "/nope")


def test_an_extract_made_before_the_index_restores_with_its_lineage(
    pps: Pps, tmp_path: Path
) -> None:
    _c1, _j1, _c2 = _two_stages(pps)
    stream = io.BytesIO(b"".join(pps.engine.admin.extract()))
    head = archive.read_header(stream, SCHEMA_VERSION)
    # the same extract as a tusk of schema 6 wrote it: no datum_files rows
    old = [archive.header(str(head["tusk"]), 6, True, float(head["created"]))]
    for kind, a, b in archive.records(stream):
        if kind == "object":
            old.append(archive.object_record(a, b))
        elif kind == "rows" and a != "datum_files":
            old.append(archive.rows_record(a, b))
        elif kind == "end":
            old.append(archive.end_record(a, {t: n for t, n in b.items() if t != "datum_files"}))
    other = Pps(tmp_path / "other")
    try:
        other.engine.admin.restore(io.BytesIO(b"".join(old)))
        for repo, path in (("split", "/a/out"), ("split", "/c/len"), ("double", "/b")):
            want = pps.engine.lineage.file(repo, "master", path)
            assert want.datums and other.engine.lineage.file(repo, "master", path) == want
    finally:
        other.close()
