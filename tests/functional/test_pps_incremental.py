"""Jobs that cost what changed: a job after a successful one runs and records only the datums
whose input changed, updates the earlier output by their outputs, and still shows every datum,
counts them right and merges same-path outputs in datum order."""

from __future__ import annotations

from conftest import COPY, Pps, atom, progress

from tusk.api.pps import DatumState
from tusk.meta import JobFilter

# Each datum appends its file names to /pfs/out/all: concatenation shows the datum order.
APPEND_NAMES = [
    "sh",
    "-c",
    "for f in $(cd /pfs/in && find . -type f | sort); do echo $f >> /pfs/out/all; done",
]


def _rows(pps: Pps, pipeline: str, job_id: str) -> int:
    with pps.engine.meta.transaction(write=False) as tx:
        return len(tx.list_datums(pipeline, job_id, brief=True))


def _disjoint(pps: Pps, pipeline: str, job_id: str) -> bool | None:
    with pps.engine.meta.transaction(write=False) as tx:
        (job,) = tx.list_jobs(JobFilter(pipeline=pipeline, id=job_id))
        return job.output_disjoint


def test_one_new_file_records_one_datum_and_list_datum_still_shows_all(pps: Pps) -> None:
    pps.repo("x")
    files = {f"/f{i:03d}": f"{i}" for i in range(120)}
    files["/dir/a"] = "in a dir"
    pps.put("x", files)
    pps.create("p", atom("x", name="in"), COPY, parallelism_spec={"constant": 2})
    (first,) = pps.wait_jobs("p", 1)
    assert progress(first) == (121, 0, 121)
    assert _rows(pps, "p", first.id) == 121 and _disjoint(pps, "p", first.id) is True

    added = pps.put("x", {"/new": "new", "/dir/b": "b"})
    job = pps.wait_jobs("p", 2)[-1]
    assert job.id == added and job.state == "success", job.reason
    # /new and the changed /dir ran; the 120 others cost no row each
    assert progress(job) == (2, 120, 122)
    assert _rows(pps, "p", added) == 2
    expected = {p: v.encode() for p, v in files.items() if p != "/dir/a"}
    expected.update({"/new": b"new", "/dir/a": b"in a dir", "/dir/b": b"b"})
    assert pps.tree("p") == expected
    datums = pps.engine.jobs.datums(added, "p")
    assert len(datums) == 122
    states = [d.state for d in datums]
    assert states.count(DatumState.SUCCESS) == 2 and states.count(DatumState.SKIPPED) == 120
    skipped = next(d for d in datums if d.state == DatumState.SKIPPED)
    assert skipped.inputs[0].repo == "x" and skipped.inputs[0].path.startswith("/f")
    assert pps.engine.jobs.datum(added, skipped.id, "p").state == DatumState.SKIPPED

    # a removed and a changed file: their old outputs go, the new one comes
    pps.delete("x", "/f007", "/dir")
    changed = pps.put("x", {"/f008": "changed"}, overwrite=True)
    job = pps.wait_jobs("p", 4)[-1]
    assert job.id == changed and progress(job) == (1, 119, 120), progress(job)
    del expected["/f007"], expected["/dir/a"], expected["/dir/b"]
    expected["/f008"] = b"changed"
    assert pps.tree("p") == expected


def test_a_new_datum_writing_a_shared_path_is_merged_in_datum_order(pps: Pps) -> None:
    pps.repo("x")
    pps.put("x", {"/a": "1", "/b": "333", "/c": "22"})
    pps.create("p", atom("x", name="in"), APPEND_NAMES)
    (first,) = pps.wait_jobs("p", 1)
    assert first.state == "success" and _disjoint(pps, "p", first.id) is False
    pps.put("x", {"/d": "4444"})
    job = pps.wait_jobs("p", 2)[-1]
    assert job.state == "success" and progress(job) == (1, 3, 4)
    assert pps.read("p", "master", "/all") == b"./d\n./b\n./c\n./a\n"
    pps.delete("x", "/b")
    job = pps.wait_jobs("p", 3)[-1]
    assert progress(job) == (0, 3, 3)
    assert pps.read("p", "master", "/all") == b"./d\n./c\n./a\n"


def test_a_new_datum_taking_another_datums_name_falls_back_to_a_full_merge(pps: Pps) -> None:
    pps.repo("x")
    pps.put("x", {"/a": "a", "/b": "b"})
    # every datum writes /out-<its file>, and the datum of /z also writes /out-a
    cmd = [
        "sh",
        "-c",
        "for f in /pfs/in/*; do n=$(basename $f); cat $f > /pfs/out/out-$n;"
        ' if [ "$n" = z ]; then echo z >> /pfs/out/out-a; fi; done',
    ]
    pps.create("p", atom("x", name="in"), cmd)
    (first,) = pps.wait_jobs("p", 1)
    assert _disjoint(pps, "p", first.id) is True
    pps.put("x", {"/z": "zz"})
    job = pps.wait_jobs("p", 2)[-1]
    assert job.state == "success" and progress(job) == (1, 2, 3)
    # datum order: /z (2 bytes) first, then /a and /b
    assert pps.tree("p") == {"/out-a": b"z\na", "/out-b": b"b", "/out-z": b"zz"}
    assert _disjoint(pps, "p", job.id) is False


def test_a_spec_change_without_reprocess_enumerates_again(pps: Pps) -> None:
    pps.repo("x")
    pps.put("x", {"/a/1": "1", "/b/2": "2"})
    pps.create("p", atom("x", name="in"), COPY)
    pps.wait_jobs("p", 1)
    pps.create("p", atom("x", name="in", glob="/*/*"), COPY, update=True)
    job = pps.wait_jobs("p", 2)[-1]
    assert job.state == "success" and progress(job) == (2, 0, 2)
    assert pps.tree("p") == {"/a/1": b"1", "/b/2": b"2"}  # datums keep their full paths
