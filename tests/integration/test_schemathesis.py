"""schemathesis against a real tuskd: requests generated from the server's own OpenAPI schema
(valid ones and deliberately invalid ones) never get a server error (5xx).

Two bounded runs (a few examples per operation, fixed seeds, about a minute together): the first
aims every operation but the deletes at a repo made here with a few files, so that generated
paths, globs, offsets and bodies reach the file system code rather than a 404; the second runs
every operation with generated names. The subscribe and logs routes wait for data by design and
are covered by their own tests.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tusk.api.admin import EXTRACT_MEDIA_TYPE
from tusk.api.framing import FRAMES_MEDIA_TYPE
from tusk.testing import Tuskd, clean_env

AIMED = """\
[parameters]
"path.repo" = "data"
"query.ref" = "master"
"query.commit" = "master"
"query.repo" = "data"
"""
# schemathesis sends put-file and restore bodies (random bytes, as for any binary type) with
# tusk's media types.
HOOKS = f"""\
import schemathesis

schemathesis.serializer.alias("{FRAMES_MEDIA_TYPE}", "application/octet-stream")
schemathesis.serializer.alias("{EXTRACT_MEDIA_TYPE}", "application/octet-stream")
"""


def _schemathesis(address: str, workdir: Path, config: str, *args: str) -> None:
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st is not None, "schemathesis is missing: pip install -e '.[dev]'"
    (workdir / "tusk_st_hooks.py").write_text(HOOKS)
    (workdir / "schemathesis.toml").write_text(config)
    run = subprocess.run(
        [
            st,
            "--config-file",
            str(workdir / "schemathesis.toml"),
            "run",
            f"{address}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "15",
            "--request-timeout",
            "30",
            "--exclude-path-regex",
            "/(subscribe|logs)$",
            "--no-color",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=workdir,
        env=clean_env({"SCHEMATHESIS_HOOKS": "tusk_st_hooks", "PYTHONPATH": str(workdir)}),
    )
    report = run.stdout[-8000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    assert " passed" in run.stdout and "failed" not in run.stdout.lower(), report


def test_generated_requests_never_get_a_server_error(tmp_path: Path) -> None:
    tuskd = Tuskd(tmp_path / "home").start()
    try:
        with tuskd.client(timeout=60) as c:
            c.create_repo("data")
            c.put_file("data", "master", "/a.txt", b"one\ntwo\n")
            c.put_file("data", "master", "/dir/b.csv", b"x,y\n1,2\n")
            c.create_branch("data", "dev", head="master")
        try:
            aimed = tmp_path / "aimed"
            aimed.mkdir()
            _schemathesis(tuskd.address, aimed, AIMED, "--exclude-method", "DELETE", "--seed", "7")
            anywhere = tmp_path / "anywhere"
            anywhere.mkdir()
            _schemathesis(tuskd.address, anywhere, "", "--seed", "10")
        except AssertionError as failed:
            raise AssertionError(f"{failed}\n--- tuskd ---\n{tuskd.log_tail(80)}") from None
    finally:
        tuskd.stop()
