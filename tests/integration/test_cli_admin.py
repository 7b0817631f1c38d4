"""The whole-deployment commands through the real CLI against real servers: version,
inspect-cluster, completion, refused commands, get-object/get-tag, garbage-collect, delete-all,
and an extract from one tuskd restored into a fresh one."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from s3server import moto_server_fixture

from tusk.testing import Tuskd
from tusk.testing.moto import MotoServer

from .conftest import Tusk, fails, ok, raw_objects, rows, run

ID = re.compile(r"^[0-9a-f]{32}$")
moto_server = moto_server_fixture()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Tusk]:
    """A CLI against a tuskd of its own (for commands that change everything)."""
    with Tuskd(tmp_path / "home", {"TUSK_RUNTIME": "host"}) as server:

        def call(*args: str, **kw: Any) -> tuple[int, Any, str]:
            return run(*args, env={**server.env, **kw.pop("env", {})}, **kw)

        yield call


# -- version, cluster, completion, refusals -----------------------------------------------------
def test_version(tusk: Tusk) -> None:
    from tusk import __version__

    table = rows(ok(tusk("version")))
    assert table == [["COMPONENT", "VERSION"], ["tusk", __version__], ["tuskd", __version__]]
    assert ok(tusk("version", "--client-only")).strip() == __version__
    raw = raw_objects(ok(tusk("version", "--raw")))
    assert len(raw) == 2 and raw[0] == raw[1]
    assert ".".join(str(raw[0].get(k, 0)) for k in ("major", "minor", "micro")) == __version__


def test_version_without_a_server(tmp_path: Path) -> None:
    from tusk import __version__
    from tusk.testing import free_port

    env = {"TUSK_ADDRESS": f"127.0.0.1:{free_port()}", "TUSK_HOME": str(tmp_path)}
    code, out, err = run("version", env=env)
    assert code == 8, err
    assert rows(out) == [["COMPONENT", "VERSION"], ["tusk", __version__]]
    assert "tuskd (version unknown)" in err
    assert ok(run("version", "--client-only", env=env)).strip() == __version__
    assert not (tmp_path / "tuskd.pid").exists()  # version never starts a server


def test_inspect_cluster_id_is_stable(tusk: Tusk) -> None:
    first = ok(tusk("inspect-cluster")).strip()
    assert ID.match(first)
    assert ok(tusk("inspect-cluster")).strip() == first


def test_completion_bash_and_zsh(tusk: Tusk) -> None:
    script = ok(tusk("completion"))
    assert "_TUSK_COMPLETE" in script and "complete " in script
    assert "compdef" in ok(tusk("completion", "zsh"))
    # the script asks the CLI itself; the answer completes command names
    env = {"_TUSK_COMPLETE": "bash_complete", "COMP_WORDS": "tusk list-re", "COMP_CWORD": "1"}
    assert "list-repo" in ok(tusk(env=env))
    fails(tusk("completion", "tcsh"), 2, "tcsh")


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["deploy", "local", "--dry-run"], "deploy local is not supported by tusk"),
        (["deploy"], "deploy is not supported by tusk"),
        (["undeploy", "-a"], "undeploy is not supported"),
        (["port-forward", "-p", "30650"], "port-forward is not supported"),
        (["auth", "login"], "auth login is not supported by tusk: tusk has no users"),
        (["enterprise", "activate", "CODE"], "enterprise activate is not supported"),
        (["debug-dump"], "debug-dump is not supported"),
        (["update-dash"], "update-dash is not supported"),
    ],
)
def test_refused_commands(tusk: Tusk, argv: list[str], says: str) -> None:
    err = fails(tusk(*argv), 2, says)
    assert "hint:" in err
    assert len(err.strip().splitlines()) == 2  # one line of reason, one of what to do


def test_doc_topics(tusk: Tusk) -> None:
    assert "Commits are atomic transactions" in ok(tusk("commit"))
    assert "Docs for repos." in ok(tusk("repo", "--help"))


# -- objects and tags ---------------------------------------------------------------------------
def test_get_object_and_get_tag(tusk: Tusk) -> None:
    ok(tusk("create-repo", "objsrc"))
    ok(tusk("put-file", "objsrc", "master", "/a", input="alpha\n"))
    pipeline = {
        "pipeline": {"name": "objcopy"},
        "transform": {"cmd": ["sh", "-c", "cp /pfs/objsrc/a /pfs/out/a"]},
        "input": {"atom": {"repo": "objsrc", "glob": "/"}},
    }
    ok(tusk("create-pipeline", input=json.dumps(pipeline)))
    ok(tusk("flush-job", "objsrc/master"))
    job = raw_objects(ok(tusk("list-job", "-p", "objcopy", "--raw")))[0]["id"]
    tag = raw_objects(ok(tusk("list-datum", job, "--raw")))[0]["id"]
    manifest = json.loads(ok(tusk("get-tag", tag)))
    (out_file,) = manifest["files"]
    assert out_file["path"] == "/a"
    _hash, obj, offset, length = out_file["chunks"][0]
    data = ok(tusk("get-object", obj, binary=True))
    assert data[offset : offset + length] == b"alpha\n"
    fails(tusk("get-object", "f" * 64), 3, "not found")
    fails(tusk("get-object", "NOT/AN/ID"), 2, "invalid object id")
    fails(tusk("get-tag", "0" * 64), 3, "tag")
    ok(tusk("delete-pipeline", "objcopy"))


# -- delete-all and garbage-collect -------------------------------------------------------------
def test_delete_all_asks_then_garbage_collect_frees(fresh: Tusk) -> None:
    ok(fresh("create-repo", "doomed"))
    ok(fresh("put-file", "doomed", "master", "/big", input="x" * 300_000))
    # no answer, or "n": nothing is deleted
    fails(fresh("delete-all"), 2, "no answer on stdin")
    out = ok(fresh("delete-all", input="n\n"))
    assert "Are you sure you want to delete all" in out and "doomed" in out
    assert rows(ok(fresh("list-repo")))[1][0] == "doomed"
    # y deletes everything
    ok(fresh("delete-all", input="y\n"))
    assert rows(ok(fresh("list-repo"))) == [["NAME", "CREATED", "SIZE"]]
    code, _, err = fresh("garbage-collect")
    assert code == 0, err
    match = re.search(r"deleted (\d+) unused objects \((\S+)\), kept (\d+)", err)
    assert match and int(match.group(1)) >= 1, err
    # a second run finds nothing left to delete; what is still used survives a collection
    ok(fresh("create-repo", "kept"))
    ok(fresh("put-file", "kept", "master", "/f", input="still here\n"))
    ok(fresh("delete-all", "--force"))
    ok(fresh("create-repo", "kept"))
    ok(fresh("put-file", "kept", "master", "/f", input="still here\n"))
    ok(fresh("garbage-collect"))
    assert ok(fresh("get-file", "kept", "master", "/f")) == "still here\n"


# -- extract / restore --------------------------------------------------------------------------
def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _snapshot(cli: Tusk, scratch: Path) -> dict[str, Any]:
    """What a user sees of a deployment: list-repo, list-commit, list-branch, list-file and the
    bytes of every file of every good commit, list-pipeline and list-job (raw, so that ages like
    "2 minutes ago" do not differ; the table columns that do not move with time as well)."""

    def raw(*args: str) -> list[Any]:
        return raw_objects(ok(cli(*args, "--raw")))

    snap: dict[str, Any] = {
        "repos": raw("list-repo"),
        "pipelines": raw("list-pipeline"),
        "jobs": raw("list-job"),
        "branches": {},
        "commits": {},
        "files": {},
        "bytes": {},
        "list-repo": [r[0] for r in rows(ok(cli("list-repo")))],
        # ID, OUTPUT COMMIT, and PROGRESS (five cells), DL, UL, STATE: not STARTED ("4 minutes ago")
        "list-job": [[*r[:2], *r[-8:]] for r in rows(ok(cli("list-job")))],
    }
    for repo in [r["name"] for r in snap["repos"]]:
        snap["commits"][repo] = raw("list-commit", repo)
        snap["branches"][repo] = raw("list-branch", repo)
        for c in snap["commits"][repo]:
            if c.get("finished") and not c.get("failed"):
                cid = c["commit"]["id"]
                snap["files"][f"{repo}@{cid}"] = raw("list-file", repo, cid, "/")
                where = scratch / f"{repo}-{cid}"
                ok(cli("get-file", "-r", "-o", str(where), repo, cid, "/"))
                snap["bytes"][f"{repo}@{cid}"] = _tree(where)
    return snap


@pytest.mark.timeout(900)
def test_extract_restore_round_trip(fresh: Tusk, tmp_path: Path) -> None:
    src = fresh
    ok(src("create-repo", "raw", "-d", "the input"))
    ok(src("put-file", "raw", "master", "/one", input="1\n"))
    ok(src("put-file", "raw", "master", "/two", input="2\n"))
    ok(src("create-branch", "raw", "dev", "--head", "master^"))
    pipeline = {
        "pipeline": {"name": "double"},
        "transform": {
            "cmd": ["sh", "-c", "for f in /pfs/raw/*; do cat $f $f > /pfs/out/$(basename $f); done"]
        },
        "input": {"atom": {"repo": "raw", "glob": "/*"}},
    }
    ok(src("create-pipeline", input=json.dumps(pipeline)))
    ok(src("flush-job", "raw/master"))
    pipeline["transform"]["cmd"] = [
        "sh",
        "-c",
        "for f in /pfs/raw/*; do cat $f $f $f > /pfs/out/$(basename $f); done",
    ]
    ok(src("update-pipeline", "--reprocess", input=json.dumps(pipeline)))
    ok(src("put-file", "raw", "master", "/three", input="3\n"))
    ok(src("flush-job", "raw/master"))
    assert ok(src("get-file", "double", "master", "/three")) == "3\n3\n3\n"
    before = _snapshot(src, tmp_path / "before")
    assert len(before["jobs"]) >= 3 and before["pipelines"][0]["version"] == 2

    backup = tmp_path / "backup.tusk"
    ok(src("extract", "-f", str(backup)))
    stdout_copy = ok(src("extract", binary=True))
    assert stdout_copy.startswith(b"tusk-extract\n")

    with Tuskd(tmp_path / "restored", {"TUSK_RUNTIME": "host"}) as server:

        def dst(*args: str, **kw: Any) -> tuple[int, Any, str]:
            return run(*args, env=server.env, **kw)

        code, _, err = dst("restore", "-f", str(backup))
        assert code == 0, err
        assert re.search(r"restored 3 repos, \d+ commits, 1 pipelines, \d+ jobs", err), err
        after = _snapshot(dst, tmp_path / "after")
        assert after == before
        # the restored pipeline still works, and knows its old datums (only the new one runs)
        ok(dst("put-file", "raw", "master", "/four", input="4\n"))
        ok(dst("flush-job", "raw/master"))
        assert ok(dst("get-file", "double", "master", "/four")) == "4\n4\n4\n"
        newest = raw_objects(ok(dst("list-job", "-p", "double", "--raw")))[0]
        assert newest.get("processed") == 1 and newest.get("skipped") == 3, newest
        # a restore into a server that holds something is refused, and changes nothing
        fails(dst("restore", input=backup.read_bytes()), 5, "restore needs an empty tusk server")
        assert ok(dst("get-file", "double", "master", "/four")) == "4\n4\n4\n"
        # a cut stream is refused before any metadata is written
        ok(dst("delete-all", "--force"))
        cut = backup.read_bytes()[:-40]
        fails(dst("restore", input=cut), 2, "not a complete tusk extract")
        assert rows(ok(dst("list-repo"))) == [["NAME", "CREATED", "SIZE"]]
        fails(dst("restore", input=b"hello\n"), 2, "not a tusk extract")


def test_extract_to_and_restore_from_object_storage(
    fresh: Tusk, tmp_path: Path, moto_server: MotoServer
) -> None:
    src = fresh
    ok(src("create-repo", "data"))
    ok(src("put-file", "data", "master", "/a", input="alpha\n"))
    big = random.Random(7).randbytes(10_000_000)  # not deduplicated: the stream needs 2 parts
    ok(src("put-file", "data", "master", "/big", input=big))
    aws = moto_server.env()  # only the CLI has the credentials
    bucket = moto_server.create_bucket()
    try:
        url = f"s3://{bucket}/backups/one.tusk"
        ok(src("extract", "-u", url, env=aws))
        stored = moto_server.client().get_object(Bucket=bucket, Key="backups/one.tusk")
        body = stored["Body"].read()
        assert body.startswith(b"tusk-extract\n") and len(body) > 10_000_000
        local = tmp_path / "local.tusk"
        ok(src("extract", "-u", f"file://{local}"))
        assert local.read_bytes().startswith(b"tusk-extract\n")

        # bad destinations: refused before anything is written
        fails(src("extract", "-u", "ftp://b/k"), 2, "as:// and file:// URLs only")
        fails(src("extract", "-u", f"s3://{bucket}/"), 2, "names a bucket or a prefix")
        fails(src("extract", "-u", url, "-f", str(local)), 2, "-u or -f, not both")
        missing = f"s3://no-such-bucket-{bucket}/x.tusk"
        fails(src("extract", "-u", missing, env=aws), 7, "cannot write")
        no_creds = {"AWS_ENDPOINT_URL": moto_server.endpoint, "AWS_EC2_METADATA_DISABLED": "true"}
        fails(src("extract", "-u", f"s3://{bucket}/nocreds", env=no_creds), 7, "no AWS credentials")
        keys = [o["Key"] for o in moto_server.client().list_objects_v2(Bucket=bucket)["Contents"]]
        assert keys == ["backups/one.tusk"]  # a refused extract leaves no object behind
        uploads = moto_server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        assert uploads == []

        for source in (url, f"file://{local}"):
            with Tuskd(tmp_path / f"restored-{len(source)}", {"TUSK_RUNTIME": "host"}) as server:

                def dst(*args: str, **kw: Any) -> tuple[int, Any, str]:
                    return run(*args, env={**server.env, **aws}, **kw)

                fails(dst("restore", "-u", f"s3://{bucket}/nope"), 7, "NoSuchKey")
                fails(dst("restore", "-u", "file:///no/such/file"), 7, "no such file")
                assert rows(ok(dst("list-repo"))) == [["NAME", "CREATED", "SIZE"]]
                code, _, err = dst("restore", "-u", source)
                assert code == 0, err
                assert re.search(r"restored \d+ repos, 2 commits", err), err
                assert ok(dst("get-file", "data", "master", "/a")) == "alpha\n"
                assert ok(dst("get-file", "data", "master", "/big", binary=True)) == big
    finally:
        moto_server.remove_bucket(bucket)
