"""A local worker process that crashes leaves its reason: its stderr is not thrown away."""

from __future__ import annotations

from pathlib import Path

from tusk.pps.executors.base import WorkerDied
from tusk.pps.executors.local import WorkerProcess
from tusk.worker import DatumTask


def test_a_crashing_worker_names_its_last_error_line(tmp_path: Path) -> None:
    # sitecustomize runs before ``-m tusk.worker``: the worker dies at start with a message.
    (tmp_path / "sitecustomize.py").write_text(
        "import os, sys\nsys.stderr.write('RuntimeError: store is unreachable\\n')\nsys.stderr.flush()\nos._exit(3)\n"
    )
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    worker = WorkerProcess("crashing", 1, env)
    task = DatumTask(
        task_id="job-0-1",
        job_id="job",
        datum_id="d0",
        output_commit_id="c0",
        pipeline="crashing",
        store_url="file:///nonexistent",
        cmd=("true",),
    )
    try:
        worker.run(task)
    except WorkerDied as died:
        assert "store is unreachable" in str(died), died
        assert str(died).startswith("worker pipeline-crashing-v1")
    else:
        raise AssertionError("the worker should have died")
    finally:
        worker.stop()
