"""Join and group inputs end to end in one process: real pipelines over the data shapes of
Pachyderm's join and group examples (stores, purchases, returns), checked through their output
files, list-datum and inspect-datum, and incrementality when new data arrives."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import PY, Pps, progress

from tusk.errors import InvalidSpec
from tusk.pfs.context import SPEC_REPO

# Writes one output file per datum, named after the files it saw, holding their contents; the
# mounted files are listed relative to /pfs (so "purchases/P1_STOREID1.txt").
SEEN = """
import pathlib
files = sorted(
    str(p.relative_to("/pfs"))
    for p in pathlib.Path("/pfs").rglob("*")
    if p.is_file() and p.parts[2] != "out"
)
name = "+".join(f.split("/", 1)[1].rsplit(".", 1)[0] for f in files)
text = "".join(f + " " + pathlib.Path("/pfs", f).read_text() + "\\n" for f in files)
pathlib.Path("/pfs/out", name).write_text(text)
"""


def pfs(repo: str, glob: str, **extra: Any) -> dict[str, Any]:
    return {"pfs": {"repo": repo, "glob": glob, **extra}}


def shop(pps: Pps) -> None:
    pps.repo("stores", "purchases", "returns")
    pps.put("stores", {f"/STOREID{i}.txt": f"store{i}" for i in (1, 2, 3)})
    pps.put(
        "purchases",
        {
            "/P1_STOREID1.txt": "p1",
            "/P2_STOREID1.txt": "p2",
            "/P3_STOREID2.txt": "p3",
            "/P4_STOREID4.txt": "p4",
        },
    )
    pps.put("returns", {"/R1_STOREID2.txt": "r1", "/R2_STOREID2.txt": "r2"})


def test_inner_join_runs_one_datum_per_matching_pair(pps: Pps) -> None:
    shop(pps)
    created = pps.create(
        "joined",
        {
            "join": [
                pfs("stores", "/STOREID(*).txt", join_on="$1"),
                pfs("purchases", "/*_STOREID(*).txt", join_on="$1"),
            ]
        },
        [PY, "-c", SEEN],
    )
    assert created.input_summary == "(stores:/STOREID(*).txt ⋈ purchases:/*_STOREID(*).txt)"
    (job,) = pps.wait_jobs("joined", 1)
    assert job.state == "success", job.reason
    assert progress(job) == (3, 0, 3)
    assert pps.tree("joined") == {
        "/P1_STOREID1+STOREID1": b"purchases/P1_STOREID1.txt p1\nstores/STOREID1.txt store1\n",
        "/P2_STOREID1+STOREID1": b"purchases/P2_STOREID1.txt p2\nstores/STOREID1.txt store1\n",
        "/P3_STOREID2+STOREID2": b"purchases/P3_STOREID2.txt p3\nstores/STOREID2.txt store2\n",
    }
    datums = pps.engine.jobs.datums(job.id, "joined")
    assert sorted([(i.name, i.path) for i in d.inputs] for d in datums) == [
        [("stores", "/STOREID1.txt"), ("purchases", "/P1_STOREID1.txt")],
        [("stores", "/STOREID1.txt"), ("purchases", "/P2_STOREID1.txt")],
        [("stores", "/STOREID2.txt"), ("purchases", "/P3_STOREID2.txt")],
    ]

    # A new purchase for store 3: one new datum runs, the three others are skipped.
    pps.put("purchases", {"/P5_STOREID3.txt": "p5"})
    second = pps.wait_jobs("joined", 2)[-1]
    assert second.state == "success", second.reason
    assert progress(second) == (1, 3, 4)
    assert pps.read("joined", "master", "/P5_STOREID3+STOREID3") == (
        b"purchases/P5_STOREID3.txt p5\nstores/STOREID3.txt store3\n"
    )


def test_outer_join_also_runs_unmatched_files_alone(pps: Pps) -> None:
    shop(pps)
    pps.create(
        "outer",
        {
            "join": [
                pfs("stores", "/STOREID(*).txt", join_on="$1", outer_join=True),
                pfs("purchases", "/*_STOREID(*).txt", join_on="$1", outer_join=True),
            ]
        },
        [PY, "-c", SEEN],
    )
    (job,) = pps.wait_jobs("outer", 1)
    assert job.state == "success", job.reason
    assert progress(job) == (5, 0, 5)
    out = pps.tree("outer")
    # store 3 has no purchase and purchase 4 no store: each ran alone, only its input mounted
    assert out["/STOREID3"] == b"stores/STOREID3.txt store3\n"
    assert out["/P4_STOREID4"] == b"purchases/P4_STOREID4.txt p4\n"
    assert len(out) == 5


def test_group_mounts_every_file_of_a_key_in_one_datum(pps: Pps) -> None:
    shop(pps)
    pps.create(
        "grouped",
        {
            "group": [
                pfs("purchases", "/*_STOREID(*).txt", group_by="$1"),
                pfs("returns", "/*_STOREID(*).txt", group_by="$1"),
            ]
        },
        [PY, "-c", SEEN],
    )
    (job,) = pps.wait_jobs("grouped", 1)
    assert job.state == "success", job.reason
    assert progress(job) == (3, 0, 3)
    assert pps.tree("grouped") == {
        "/P1_STOREID1+P2_STOREID1": b"purchases/P1_STOREID1.txt p1\npurchases/P2_STOREID1.txt p2\n",
        "/P3_STOREID2+R1_STOREID2+R2_STOREID2": (
            b"purchases/P3_STOREID2.txt p3\nreturns/R1_STOREID2.txt r1\nreturns/R2_STOREID2.txt r2\n"
        ),
        "/P4_STOREID4": b"purchases/P4_STOREID4.txt p4\n",
    }
    # inspect-datum shows each of the datum's inputs, several of one name included
    datums = pps.engine.jobs.datums(job.id, "grouped")
    biggest = max(datums, key=lambda d: len(d.inputs))
    shown = pps.engine.jobs.datum(job.id, biggest.id, "grouped")
    assert [(i.name, i.path) for i in shown.inputs] == [
        ("purchases", "/P3_STOREID2.txt"),
        ("returns", "/R1_STOREID2.txt"),
        ("returns", "/R2_STOREID2.txt"),
    ]


def test_join_without_join_on_is_refused_and_creates_nothing(pps: Pps) -> None:
    shop(pps)
    with pytest.raises(InvalidSpec) as e:
        pps.create(
            "bad",
            {"join": [pfs("stores", "/STOREID(*).txt", join_on="$1"), pfs("purchases", "/*")]},
            ["true"],
        )
    assert "join_on" in e.value.message
    assert e.value.hint is not None
    assert pps.engine.pipelines.list() == []
    assert "bad" not in [b.branch.name for b in pps.engine.commits.list_branches(SPEC_REPO)]
