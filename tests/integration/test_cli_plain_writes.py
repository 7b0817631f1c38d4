"""The writes of the CLI go through the plain reader (no httpx, no pydantic in the CLI process):
repo, commit, branch, file, pipeline, job, project and secret commands, the flushes, and
``put-file`` of a few small local files or of stdin (so do the inspects of pipelines and
datums); bigger puts stream through the typed client. Both store the same bytes and report the
same errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tusk.cli.put_cmds import SMALL_PUT_BYTES
from tusk.testing import clean_env

from .conftest import Tusk, atom, fails, ok, rows, spec

# Runs the CLI in process and reports, on exit, which heavy modules it loaded.
HEAVY_PROBE = """
import atexit, json, sys
def report():
    heavy = sorted(m for m in ("httpx", "pydantic", "tusk.client.client") if m in sys.modules)
    sys.__stderr__.write("HEAVY=" + json.dumps(heavy) + "\\n")
atexit.register(report)
from tusk.cli.main import main
main(sys.argv[1:])
"""


def heavy_modules(env: dict[str, str], *args: str, stdin: bytes = b"") -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", HEAVY_PROBE, *args],
        input=stdin,
        capture_output=True,
        env=clean_env(env),
        timeout=60,
    )
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    line = next(x for x in err.splitlines() if x.startswith("HEAVY="))
    heavy = json.loads(line.removeprefix("HEAVY="))
    assert isinstance(heavy, list)
    return heavy


def get(tusk: Tusk, repo: str, path: str) -> bytes:
    code, out, err = tusk("get-file", repo, "master", path, binary=True)
    assert code == 0, err
    assert isinstance(out, bytes)
    return out


def test_small_puts_skip_the_typed_client(
    tusk: Tusk, tusk_server: dict[str, str], tmp_path: Path
) -> None:
    ok(tusk("create-repo", "smallput"))
    one = tmp_path / "one.txt"
    one.write_bytes(b"one\n")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a").write_bytes(b"a\n")
    (tree / "sub" / "b").write_bytes(b"")  # an empty file is a file too
    env = tusk_server
    assert heavy_modules(env, "put-file", "smallput", "master", "/one", "-f", str(one)) == []
    assert heavy_modules(env, "put-file", "smallput", "master", "/in", stdin=b"stdin\n") == []
    assert heavy_modules(env, "put-file", "-r", "smallput", "master", "/t", "-f", str(tree)) == []
    assert get(tusk, "smallput", "/one") == b"one\n"
    assert get(tusk, "smallput", "/in") == b"stdin\n"
    assert get(tusk, "smallput", "/t/a") == b"a\n"
    assert get(tusk, "smallput", "/t/sub/b") == b""
    # each put is one commit, as before; appends and -o keep 1.7's meaning
    ok(tusk("put-file", "smallput", "master", "/one", "-f", str(one)))
    assert get(tusk, "smallput", "/one") == b"one\none\n"
    ok(tusk("put-file", "-o", "smallput", "master", "/one", "-m", "again", input="new\n"))
    assert get(tusk, "smallput", "/one") == b"new\n"
    commits = rows(ok(tusk("list-commit", "smallput")))[1:]
    assert len(commits) == 5
    ok(tusk("put-file", "--split", "line", "smallput", "master", "/lines", input="1\n2\n3\n"))
    assert len(rows(ok(tusk("list-file", "smallput", "master", "/lines")))) == 4


def test_puts_above_the_limit_stream_and_store_the_same_bytes(
    tusk: Tusk, tusk_server: dict[str, str], tmp_path: Path
) -> None:
    ok(tusk("create-repo", "bigput"))
    data = os.urandom(SMALL_PUT_BYTES + 1)
    big = tmp_path / "big.bin"
    big.write_bytes(data)
    env = tusk_server
    heavy = heavy_modules(env, "put-file", "bigput", "master", "/file", "-f", str(big))
    assert "httpx" in heavy  # streamed by the typed client
    # stdin of unknown size: read up to the limit, then the rest streamed after what was read
    heavy = heavy_modules(env, "put-file", "bigput", "master", "/stdin", stdin=data)
    assert "httpx" in heavy
    assert get(tusk, "bigput", "/file") == data
    assert get(tusk, "bigput", "/stdin") == data
    exact = data[:SMALL_PUT_BYTES]
    assert heavy_modules(env, "put-file", "bigput", "master", "/exact", stdin=exact) == []
    assert get(tusk, "bigput", "/exact") == exact


def test_small_put_errors_name_the_problem_and_store_nothing(tusk: Tusk, tmp_path: Path) -> None:
    near_limit = tmp_path / "near.bin"
    near_limit.write_bytes(os.urandom(SMALL_PUT_BYTES - 1))  # refused before it is all read
    fails(tusk("put-file", "nosuchrepo", "master", "/f", "-f", str(near_limit)), 3, "not found")
    fails(tusk("put-file", "nosuchrepo", "master", "/f", input="x"), 3, "repo nosuchrepo not found")
    ok(tusk("create-repo", "smallerr"))
    fails(
        tusk("put-file", "smallerr", "master", "/bad\x01name", input="x"),
        2,
        "non-printable character",
    )
    fails(
        tusk("put-file", "smallerr", "master", "/f", "-f", str(tmp_path / "missing")),
        7,
        "no such file or directory",
    )
    assert rows(ok(tusk("list-commit", "smallerr")))[1:] == []  # the header only


def test_small_put_into_another_project(tusk: Tusk) -> None:
    ok(tusk("create-project", "smallproj"))
    env = {"TUSK_PROJECT": "smallproj"}
    try:
        ok(tusk("create-repo", "data", env=env))
        ok(tusk("put-file", "data", "master", "/f", input="in the project\n", env=env))
        assert tusk("get-file", "data", "master", "/f", env=env)[1] == "in the project\n"
        fails(tusk("get-file", "data", "master", "/f"), 3, "not found")  # not in default
    finally:  # the session's server is shared: other tests count its projects
        tusk("delete-repo", "data", env=env)
        ok(tusk("delete-project", "smallproj"))


def test_pfs_edits_skip_the_typed_client(tusk: Tusk, tusk_server: dict[str, str]) -> None:
    env = tusk_server

    def light(*args: str) -> None:
        assert heavy_modules(env, *args) == [], args

    light("create-repo", "edits", "-d", "first")
    light("update-repo", "edits", "-d", "second")
    assert "Description: second" in ok(tusk("inspect-repo", "edits"))
    proc = subprocess.run(
        [sys.executable, "-m", "tusk.cli.main", "start-commit", "edits", "master"],
        capture_output=True,
        env=clean_env(env),
        timeout=60,
    )
    commit = proc.stdout.decode().strip()
    assert proc.returncode == 0 and len(commit) == 32, proc.stderr
    ok(tusk("put-file", "edits", commit, "/a", input="a\n"))
    light("finish-commit", "edits", commit, "-m", "done")
    assert "Description: done" in ok(tusk("inspect-commit", "edits", commit))
    light("copy-file", "edits", "master", "/a", "edits", "master", "/b")
    light("delete-file", "edits", "master", "/a")
    assert [r[0] for r in rows(ok(tusk("list-file", "edits", "master", "/")))[1:]] == ["b"]
    light("create-branch", "edits", "dev", "--head", "master")
    light("delete-branch", "edits", "dev")
    assert [r[0] for r in rows(ok(tusk("list-branch", "edits")))[1:]] == ["master"]
    fails(tusk("delete-branch", "edits", "dev"), 3, "branch dev not found in repo edits")
    fails(tusk("finish-commit", "edits", commit), 5, "has already finished")
    heads = len(rows(ok(tusk("list-commit", "edits"))))
    light("delete-commit", "edits", "master")
    assert len(rows(ok(tusk("list-commit", "edits")))) == heads - 1
    light("delete-repo", "edits")
    fails(tusk("inspect-repo", "edits"), 3, "repo edits not found")


def test_pipeline_and_job_edits_skip_the_typed_client(
    tusk: Tusk, tusk_server: dict[str, str], tmp_path: Path
) -> None:
    env = tusk_server

    def light(*args: str, stdin: bytes = b"") -> None:
        assert heavy_modules(env, *args, stdin=stdin) == [], args

    ok(tusk("create-repo", "plainin"))
    ok(tusk("put-file", "plainin", "master", "/a", input="a\n"))
    copy = "cp -r /pfs/plainin/. /pfs/out/"
    path = tmp_path / "spec.json"
    path.write_text(spec("plaincopy", copy, atom("plainin", "/*")))
    light("create-pipeline", "-f", str(path))
    light("flush-commit", "plainin/master")
    light("flush-job", "plainin/master", "-p", "plaincopy")
    flushed = rows(ok(tusk("flush-job", "plainin/master")))
    assert flushed[0][0] == "ID" and flushed[1][-1] == "success", flushed
    assert rows(ok(tusk("flush-commit", "plainin/master", "-r", "plaincopy")))[1][0] == "plaincopy"
    assert ok(tusk("get-file", "plaincopy", "master", "/a")) == "a\n"
    light("extract-pipeline", "plaincopy")
    light("inspect-pipeline", "plaincopy")
    assert "Job Counts:" in ok(tusk("inspect-pipeline", "plaincopy"))
    first = rows(ok(tusk("list-job", "-p", "plaincopy")))[1][0]
    datum = rows(ok(tusk("list-datum", first)))[1][0]
    light("inspect-datum", first, datum)
    assert "State" in ok(tusk("inspect-datum", first, datum))
    light("list-datum", "-f", str(path))
    extracted = json.loads(ok(tusk("extract-pipeline", "plaincopy")))
    assert extracted["transform"]["cmd"] == ["sh", "-c", copy]
    path.write_text(spec("plaincopy", copy + "; echo v2", atom("plainin", "/*")))
    light("update-pipeline", "-f", "-", stdin=path.read_bytes())
    light("stop-pipeline", "plaincopy")
    assert "paused" in ok(tusk("inspect-pipeline", "plaincopy")).lower()
    light("start-pipeline", "plaincopy")
    job = rows(ok(tusk("list-job", "-p", "plaincopy")))[1][0]
    light("stop-job", job)
    light("delete-job", job)
    fails(tusk("inspect-job", job), 3, "not found")
    fails(tusk("stop-job", job), 3, "not found")
    err = fails(tusk("create-pipeline", "-f", str(path)), 4, "already exists")
    assert "plaincopy" in err
    light("delete-pipeline", "plaincopy")
    fails(tusk("inspect-pipeline", "plaincopy"), 3, "not found")
    ok(tusk("delete-repo", "plainin"))


def test_project_and_secret_commands_skip_the_typed_client(
    tusk: Tusk, tusk_server: dict[str, str], tmp_path: Path
) -> None:
    env = tusk_server

    def light(*args: str) -> None:
        assert heavy_modules(env, *args) == [], args

    light("create-project", "plainproj", "-d", "first")
    light("update-project", "plainproj", "-d", "second")
    light("list-project")
    light("inspect-project", "plainproj")
    shown = ok(tusk("inspect-project", "plainproj"))
    assert shown.startswith("Name: plainproj\nDescription: second\nCreated: ") and " ago" in shown
    listed = rows(ok(tusk("list-project")))
    assert ["plainproj", "second"] in [[r[0], r[-1]] for r in listed], listed  # not current: no *
    light("delete-project", "plainproj")
    fails(tusk("inspect-project", "plainproj"), 3, "not found")

    manifest = tmp_path / "secret.json"
    secret = {"kind": "Secret", "metadata": {"name": "plainsecret"}, "stringData": {"k": "v"}}
    manifest.write_text(json.dumps(secret))
    light("create-secret", "-f", str(manifest))
    light("list-secret")
    light("inspect-secret", "plainsecret")
    assert "Keys: k\n" in ok(tusk("inspect-secret", "plainsecret"))
    light("delete-secret", "plainsecret")
    fails(tusk("inspect-secret", "plainsecret"), 3, "not found")
