"""A job's output written a batch of datums at a time (``TREE_BATCH``) and its datum records
read a page at a time (``DATUM_PAGE``): with batches and pages of a few datums, a job of several
comes out as it does in one piece: files several datums wrote are concatenated in datum order
across batches, a file where another datum wrote a directory still fails the job, the output's
disjointness (what an incremental job builds on) is judged the same, and retries and the first
failed datum are found on any page."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import COPY, Pps, atom

from tusk.meta import CommitRow, JobRecord
from tusk.pps.running import datum_tasks, output
from tusk.pps.running.output import merge_outputs

NAMES = ["a", "b", "c", "d", "e", "f", "g"]
# Each datum writes a file of its own, one under the shared directory /shared, and a line in /all.
SHARED = [
    "sh",
    "-c",
    'for f in /pfs/in/*; do n=$(basename "$f"); cp "$f" /pfs/out/; mkdir -p /pfs/out/shared; '
    'cp "$f" /pfs/out/shared/; echo "$n" >> /pfs/out/all; done',
]


def _datum_hashes(pps: Pps, pipeline: str, job_id: str) -> list[tuple[str, str]]:
    """(input path, hash) of the job's datums in datum order."""
    with pps.engine.ctx.meta.transaction(write=False) as tx:
        rows = tx.list_datums(pipeline, job_id)
    by_id = {d.id: d.inputs[0].path for d in pps.engine.jobs.datums(job_id, pipeline)}
    return [(by_id[r.datum_id], r.hash) for r in rows]


def _job_row(pps: Pps, pipeline: str, job_id: str) -> tuple[JobRecord, CommitRow]:
    """The job's record and its output commit's row."""
    with pps.engine.ctx.meta.transaction(write=False) as tx:
        record, commit = tx.get_job(pipeline, job_id), tx.get_commit(pipeline, job_id)
    assert record is not None and commit is not None
    return record, commit


def test_outputs_of_several_batches_land_as_in_one_tree_write(
    pps: Pps, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(output, "TREE_BATCH", 2)  # 7 datums: 4 tree writes
    pps.repo("x")
    pps.put("x", {f"/{n}": f"{n}\n" for n in NAMES})
    pps.create("p", atom("x", name="in"), SHARED)
    (job,) = pps.wait_jobs("p", 1)
    assert job.state == "success", job.reason

    order = _datum_hashes(pps, "p", job.id)
    assert sorted(path for path, _h in order) == [f"/{n}" for n in NAMES]
    files = pps.tree("p", job.id)
    # /all was written by every datum: their lines, concatenated in datum order across batches
    assert files.pop("/all").decode().split() == [path[1:] for path, _h in order]
    assert files == {
        **{f"/{n}": f"{n}\n".encode() for n in NAMES},
        **{f"/shared/{n}": f"{n}\n".encode() for n in NAMES},
    }
    # the very tree one write of every output makes (trees are content-addressed), whatever
    # the batch size
    hashes = [h for _path, h in order]
    record, commit = _job_row(pps, "p", job.id)
    one_write = merge_outputs(pps.engine.ctx, "p", hashes, batch=len(hashes))
    assert commit.tree == one_write.root
    for batch in (1, 3, 6):
        assert merge_outputs(pps.engine.ctx, "p", hashes, batch=batch).root == commit.tree
    # datums share /all and /shared: not disjoint, so the next job merges every output again
    assert record.output_disjoint is False
    assert not one_write.disjoint(pps.engine.ctx)


def test_disjoint_outputs_are_recognised_across_batches(
    pps: Pps, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(output, "TREE_BATCH", 3)
    pps.repo("x")
    pps.put("x", {f"/{n}": n for n in NAMES})
    pps.create("p", atom("x", name="in"), COPY)
    (job,) = pps.wait_jobs("p", 1)
    assert job.state == "success", job.reason
    record, _commit = _job_row(pps, "p", job.id)
    assert record.output_disjoint is True
    assert pps.tree("p", job.id) == {f"/{n}": n.encode() for n in NAMES}
    # an incremental job builds on it: only the new datum runs, the output has every file
    pps.put("x", {"/h": "h"})
    _first, second = pps.wait_jobs("p", 2)
    assert second.state == "success" and (second.processed, second.skipped) == (1, 7)
    assert pps.tree("p", second.id) == {f"/{n}": n.encode() for n in [*NAMES, "h"]}


@pytest.mark.parametrize("batch", [1, 1000])
@pytest.mark.parametrize("file_first", [True, False])
def test_a_file_where_another_datum_wrote_a_directory_fails_the_job(
    pps: Pps, monkeypatch: pytest.MonkeyPatch, batch: int, file_first: bool
) -> None:
    monkeypatch.setattr(output, "TREE_BATCH", batch)  # 1: the two datums in separate writes
    file_datum = "a" if file_first else "b"  # datum order is a, b
    pps.repo("x")
    pps.put("x", {"/a": "a", "/b": "b"})
    write = (
        f"if [ -e /pfs/in/{file_datum} ]; then echo f > /pfs/out/x; "
        "else mkdir /pfs/out/x; echo d > /pfs/out/x/y; fi"
    )
    pps.create("p", atom("x", name="in"), ["sh", "-c", write])
    (job,) = pps.wait_jobs("p", 1)
    assert job.state == "failure"
    assert "cannot merge the outputs of its datums" in job.reason
    assert "/x" in job.reason and ("is a file" in job.reason or "directory exists" in job.reason)
    _record, commit = _job_row(pps, "p", job.id)
    assert commit.finished is not None and commit.failed and commit.tree is None


def test_retries_and_the_first_failed_datum_are_found_on_any_page(
    pps: Pps, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(datum_tasks, "DATUM_PAGE", 2)  # 7 datums: 4 pages
    counts = tmp_path / "attempts"
    pps.repo("x")
    pps.put("x", {f"/{n}": ("bad" if n == "f" else n) for n in NAMES})
    flaky = (
        f'for f in /pfs/in/*; do echo "$(basename "$f")" >> {counts}; '
        'if [ "$(cat "$f")" = bad ]; then exit 3; fi; cp "$f" /pfs/out/; done'
    )
    pps.create("p", atom("x", name="in"), ["sh", "-c", flaky], datum_tries=2)
    (job,) = pps.wait_jobs("p", 1)
    datums = {d.inputs[0].path: d for d in pps.engine.jobs.datums(job.id, "p")}
    assert job.state == "failure"
    assert f"failed to process datum: {datums['/f'].id}" in job.reason
    assert (datums["/f"].state, datums["/f"].tries) == ("failed", 2)
    assert {(d.state, d.tries) for p, d in datums.items() if p != "/f"} == {("success", 1)}
    lines = counts.read_text().split()
    assert {n: lines.count(n) for n in NAMES} == {n: 2 if n == "f" else 1 for n in NAMES}
    # the logs name each datum by its id (derived from the datum, as recorded)
    failed = [r for r in pps.engine.jobs.logs("p", job.id) if r.stream == "system"]
    assert any(r.datum_id == datums["/f"].id and "retrying" in r.message for r in failed)
