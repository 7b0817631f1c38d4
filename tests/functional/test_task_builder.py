"""The job master's datum tasks: what the builder makes is what a worker reads off the wire."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Pps, atom

from tusk.pps.datums import enumerate_datums
from tusk.pps.running.datum_tasks import SecretPayload, TaskBuilder
from tusk.pps.running.image import Provenance
from tusk.pps.running.job_inputs import input_commits, load_spec
from tusk.worker.protocol import DatumTask


def test_tasks_of_a_job_are_what_the_worker_decodes(tmp_path: Path) -> None:
    pps = Pps(tmp_path / "home")
    try:
        pps.repo("a", "b")
        pps.put("a", {"/x/1": "one", "/x/2": "two", "/y/3": "three"})
        pps.put("b", {"/n": "names only"})
        pps.create(
            "p",
            {"cross": [atom("a"), atom("b", glob="/", empty_files=True)]},
            ["sh", "-c", "true"],
            transform={"env": {"K": "v"}, "stdin": ["echo"], "accept_return_code": [3]},
            datum_timeout="90s",
            resource_limits={"memory": "64M", "cpu": 0.5},
        )
        (job,) = pps.wait_jobs("p", 1)
        ctx = pps.engine.ctx
        spec, _ = load_spec(ctx, job.spec_commit)
        datums = enumerate_datums(spec.input, input_commits(ctx, "p", job.id), ctx.tree)
        assert len(datums) == 2
        builder = TaskBuilder(ctx, "file:///store")
        provenance = Provenance("ubuntu:16.04", "", "host")
        secrets = SecretPayload({"TOKEN": "t"}, {"/run/s": {"k": "dg=="}})
        tasks = [
            builder.task(spec, provenance, "p", job.id, i, d, 1, secrets)
            for i, d in enumerate(datums)
        ]
        for task in tasks:
            wire = json.loads(json.dumps(task.to_json()))
            assert DatumTask.from_json(wire) == task
        first = tasks[0]
        assert (first.cmd, first.stdin, first.env) == (("sh", "-c", "true"), ("echo",), {"K": "v"})
        assert (first.timeout_seconds, first.memory, first.cpu) == (90.0, "64000000", 0.5)
        assert first.secret_env == {"TOKEN": "t"}
        assert first.accept_return_code == (3,)
        by_name = {i.name: i for i in first.inputs}
        assert [f.path for f in by_name["a"].files] == ["/x/1", "/x/2"]
        assert by_name["b"].empty_files and not by_name["a"].empty_files
        assert [t.task_id for t in tasks] == [f"{job.id}-0-1", f"{job.id}-1-1"]
        assert tasks[0].datum_id != tasks[1].datum_id

        # another job of the same builder gets its own shared fields
        other = builder.task(spec, provenance, "p", "j2", 0, datums[0], 2, None)
        assert (other.job_id, other.output_commit_id, other.task_id) == ("j2", "j2", "j2-0-2")
        assert other.secret_env == {} and other.secret_files == {}
    finally:
        pps.close()


def test_each_datum_file_is_read_inside_its_own_directorys_header(tmp_path: Path) -> None:
    """The builder looks a directory's header and footer up once per job: the datums of one
    directory share them, another directory's files get that directory's (here none)."""
    pps = Pps(tmp_path / "home")
    try:
        pps.repo("a")
        pps.put("a", {"/d/1": "one\n", "/d/2": "two\n", "/e/3": "three\n"})
        for part, data in (("header", b"<h>\n"), ("footer", b"</h>\n")):
            batch = pps.engine.files.open_put("a", "master")
            batch.begin_file("/d", shared=part)
            batch.write(data)
            batch.end_file()
            batch.commit()
        pps.create("p", atom("a", glob="/*/*"), ["true"])
        (job,) = pps.wait_jobs("p", 1)
        ctx = pps.engine.ctx
        spec, _ = load_spec(ctx, job.spec_commit)
        datums = enumerate_datums(spec.input, input_commits(ctx, "p", job.id), ctx.tree)
        builder = TaskBuilder(ctx, "file:///store")
        provenance = Provenance("ubuntu:16.04", "", "host")
        files = sorted(
            (
                builder.task(spec, provenance, "p", job.id, i, d, 1).inputs[0].files[0]
                for i, d in enumerate(datums)
            ),
            key=lambda f: f.path,
        )
        assert [(f.path, f.size) for f in files] == [("/d/1", 13), ("/d/2", 13), ("/e/3", 6)]
        assert files[0].chunks[0] == files[1].chunks[0] != files[2].chunks[0]
    finally:
        pps.close()
