"""File-level lineage and the wave of a commit through a real tuskd and the real CLI: a 2-stage
pipeline whose second stage reads the first, an incremental second job of both (a file of the
first job's datum still resolves to it) and a datum that wrote two files."""

from __future__ import annotations

from typing import Any

from .conftest import Tusk, atom, fails, ok, raw_objects, rows, spec

# stage 1: one datum per input file, each writes two files under a name of its own
SPLIT = (
    "for f in /pfs/linx/*; do n=$(basename $f); mkdir -p /pfs/out/$n;"
    " cp $f /pfs/out/$n/out; wc -c < $f > /pfs/out/$n/len; done"
)
# stage 2 reads stage 1: one datum per directory of it
DOUBLE = "for d in /pfs/linsplit/*; do cat $d/out $d/out > /pfs/out/$(basename $d); done"


def _head(tusk: Tusk, repo: str) -> str:
    (info,) = raw_objects(ok(tusk("inspect-commit", repo, "master", "--raw")))
    commit: str = info["commit"]["id"]
    return commit


def _lineage(tusk: Tusk, *args: str) -> dict[str, Any]:
    (got,) = raw_objects(ok(tusk("lineage", *args, "--raw")))
    result: dict[str, Any] = got
    return result


def _brief(lin: dict[str, Any]) -> list[tuple[str, list[tuple[str, str, str]]]]:
    return [
        (d["job_id"], [(i["repo"], i["commit"], i["path"]) for i in d["inputs"]])
        for d in lin["datums"]
    ]


def test_lineage_and_wave_through_the_cli(tusk: Tusk) -> None:
    ok(tusk("create-repo", "linx"))
    ok(tusk("create-pipeline", input=spec("linsplit", SPLIT, atom("linx", "/*"))))
    ok(tusk("create-pipeline", input=spec("lindouble", DOUBLE, atom("linsplit", "/*"))))
    c1 = ok(tusk("start-commit", "linx", "master")).strip()
    ok(tusk("put-file", "linx", c1, "/a", input="aa"))
    ok(tusk("put-file", "linx", c1, "/b", input="bbb"))
    ok(tusk("finish-commit", "linx", c1))
    ok(tusk("flush-commit", f"linx/{c1}"))
    j1 = _head(tusk, "linsplit")
    assert _head(tusk, "lindouble") == j1 == c1

    ok(tusk("put-file", "linx", "master", "/c", input="c"))
    ok(tusk("flush-commit", "linx/master"))
    c2 = _head(tusk, "linx")
    assert _head(tusk, "linsplit") == _head(tusk, "lindouble") == c2
    for p in ("linsplit", "lindouble"):
        (job, *_rest) = raw_objects(ok(tusk("list-job", "-p", p, "--raw")))
        assert (job["id"], job["state"]) == (c2, "success")
        # incremental: one datum ran, two were reused without a row
        assert (job["processed"], job["skipped"], job["total"]) == (1, 2, 3)

    # a file of the first job's datum, at the incremental job's output commit
    lin = _lineage(tusk, "linsplit@master:/a/out")
    assert set(lin) == {"repo", "commit", "path", "pipeline", "job_id", "datums"}
    assert (lin["repo"], lin["commit"], lin["path"]) == ("linsplit", c2, "/a/out")
    assert (lin["pipeline"], lin["job_id"]) == ("linsplit", c2)
    assert _brief(lin) == [(j1, [("linx", c1, "/a")])]
    assert lin["datums"][0]["state"] == "success"
    # the same datum wrote /a/len (three-argument form)
    other = _lineage(tusk, "linsplit", "master", "/a/len")
    assert [d["datum_id"] for d in other["datums"]] == [lin["datums"][0]["datum_id"]]
    # the new datum, and the second stage back to the first stage's commits
    assert _brief(_lineage(tusk, f"linsplit@{c2}:/c/out")) == [(c2, [("linx", c2, "/c")])]
    assert _brief(_lineage(tusk, "lindouble@master:/a")) == [(j1, [("linsplit", j1, "/a")])]
    assert _brief(_lineage(tusk, "lindouble@master:/c")) == [(c2, [("linsplit", c2, "/c")])]
    # a user repo's file
    user = _lineage(tusk, "linx@master:/a")
    assert (user["pipeline"], user["job_id"], user["datums"]) == (None, None, [])

    # the table
    text = ok(tusk("lineage", "lindouble@master:/a"))
    first, *table = text.splitlines()
    assert first.startswith(f"lindouble@{c2}:/a: pipeline lindouble, job {c2}, 1 datum(s)")
    cells = rows("\n".join(table))
    assert cells[0] == ["DATUM", "JOB", "STATE", "INPUT"]
    assert cells[1][1:] == [j1, "success", f"linsplit@{j1}:/a"]
    assert "not written by a pipeline" in ok(tusk("lineage", "linx@master:/b"))

    # bad input: clear errors, exit codes of their kind
    fails(tusk("lineage", "linx@master:/nope"), 3, "file /nope not found in repo linx")
    fails(tusk("lineage", "nolinrepo@master:/a"), 3, "repo nolinrepo not found")
    fails(tusk("lineage", "linx@nobranch:/a"), 3, "branch nobranch not found in repo linx")
    fails(tusk("lineage", "linsplit@master:/a"), 2, "/a is a directory")
    fails(tusk("lineage", "linx:/a"), 2, "expected repo@commit:/path")
    fails(tusk("lineage", "linx", "master"), 2, "not 2 arguments")

    # the wave of the second stage's output commit
    (wave,) = raw_objects(ok(tusk("wave", "lindouble@master", "--raw")))
    assert wave["id"] == c2
    assert {(c["repo"], c["id"]) for c in wave["commits"]} == {
        ("linx", c2),
        ("linsplit", c2),
        ("lindouble", c2),
    }
    assert {(j["pipeline"], j["job_id"], j["state"], j["spec_version"]) for j in wave["jobs"]} == {
        ("linsplit", c2, "success", 1),
        ("lindouble", c2, "success", 1),
    }
    assert [(p["pipeline"], p["spec_version"]) for p in wave["pipelines"]] == [
        ("lindouble", 1),
        ("linsplit", 1),
    ]
    table = ok(tusk("wave", c2))
    assert table.startswith(f"Wave {c2}\n")
    assert ["PIPELINE", "JOB", "VERSION", "STATE"] in rows(table)
    fails(tusk("wave", "f" * 32), 3, "no commit has the ID")
