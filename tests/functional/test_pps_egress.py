"""Egress: once a job's output commit is finished, every file of it is copied to the spec's
egress URL (s3:// through boto3 with the server's S3 settings, against a real moto server; or
file:// under a directory the operator allowed). The job shows ``egress`` meanwhile; a failed
egress fails the job naming the URL and the error, and the output commit stays."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Pps, atom
from s3server import S3Bucket, moto_server_fixture, s3_bucket_fixture

from tusk.errors import InvalidSpec
from tusk.runtime import Engine, Settings

moto_server = moto_server_fixture()
s3_bucket = s3_bucket_fixture()

# Writes each input file under a nested output directory, and one file at the top.
NESTED = [
    "sh",
    "-c",
    "mkdir -p /pfs/out/d/e && cp /pfs/in/* /pfs/out/d/e/ && echo top > /pfs/out/t",
]


class EgressPps(Pps):
    """The in-process engine with server settings of the test's choosing."""

    def __init__(self, home: Path, **settings: Any) -> None:
        self.home = home
        self.engine = Engine(Settings.for_home(home, runtime="host", **settings))
        self.engine.start()


@pytest.fixture
def allowed(tmp_path: Path) -> Path:
    path = tmp_path / "egress"
    path.mkdir()
    return path


@pytest.fixture
def epps(tmp_path: Path, allowed: Path) -> Iterator[EgressPps]:
    p = EgressPps(tmp_path / "home", egress_dirs=(str(allowed),))
    try:
        yield p
    finally:
        p.close()


def test_file_egress_copies_the_output_commit_and_shows_the_egress_state(
    epps: EgressPps, allowed: Path
) -> None:
    epps.repo("in")
    epps.put("in", {"/a": "apple\n", "/b": "banana\n"})
    gate = threading.Event()
    copy = epps.engine.egress.copy

    def gated(*args: Any) -> int:
        gate.wait(30)
        return copy(*args)

    epps.engine.egress.copy = gated  # type: ignore[method-assign]
    target = allowed / "out"
    epps.create("p", atom("in", glob="/"), NESTED, egress={"URL": f"file://{target}"})
    (job,) = epps.wait_for("a job", lambda: epps.jobs("p") or None)
    epps.wait_state("p", job.id, "egress")
    # while it runs, the output commit is already finished and readable
    assert epps.read("p", "master", "/t") == b"top\n"
    gate.set()
    (job,) = epps.wait_jobs("p", 1)
    assert job.state == "success", job.reason
    files = {str(p.relative_to(target)): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert files == {"d/e/a": b"apple\n", "d/e/b": b"banana\n", "t": b"top\n"}
    master = [r.message for r in epps.engine.jobs.logs("p", job.id, None, True)]
    assert "egress: copying the output commit" in master


def test_a_failed_egress_fails_the_job_and_keeps_the_output_commit(
    epps: EgressPps, allowed: Path
) -> None:
    epps.repo("in")
    epps.put("in", {"/a": "apple\n"})
    target = allowed / "out"
    target.mkdir()
    (target / "d").write_text("a file where the output has a directory")
    epps.create("p", atom("in", glob="/"), NESTED, egress={"URL": f"file://{target}"})
    (job,) = epps.wait_jobs("p", 1)
    assert job.state == "failure"
    assert job.reason.startswith(f"egress to file://{target} failed: ")
    assert "File exists" in job.reason or "Not a directory" in job.reason
    assert epps.read("p", "master", "/d/e/a") == b"apple\n"  # the commit stays
    commit = epps.engine.commits.inspect("p", job.id)
    assert commit.finished is not None


@pytest.mark.parametrize(
    ("egress", "problem"),
    [
        ({"URL": "file:///etc/tusk"}, "is not under a directory this server may write"),
        ({"URL": "gs://bucket/x"}, "scheme 'gs', which tusk cannot write"),
        ({"sql_database": {"url": "snowflake://x"}}, "egress.sql_database is not supported"),
        ({"object_storage": {}}, "egress names no URL"),
        ({"URL": "s3:///prefix"}, "names no bucket"),
    ],
)
def test_egress_that_cannot_work_is_refused_at_create(
    epps: EgressPps, egress: dict[str, Any], problem: str
) -> None:
    epps.repo("in")
    with pytest.raises(InvalidSpec) as e:
        epps.create("p", atom("in"), ["true"], egress=egress)
    assert problem in e.value.message
    assert epps.engine.pipelines.list() == []


def test_s3_egress_uses_the_servers_s3_settings(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    moto = s3_bucket.server
    # The server's objects are on S3 (moto): egress URLs without an endpoint reach the same S3.
    pps = EgressPps(tmp_path / "home", object_url=s3_bucket.url("objects"))
    try:
        out = moto.create_bucket()
        pps.repo("in")
        pps.put("in", {"/a": "apple\n"})
        pps.create("p17", atom("in", glob="/"), NESTED, egress={"URL": f"s3://{out}/v17"})
        pps.create(
            "p2x",
            atom("in"),
            NESTED,
            egress={"object_storage": {"url": f"s3://{out}/v2"}},
        )
        for name in ("p17", "p2x"):
            (job,) = pps.wait_jobs(name, 1)
            assert job.state == "success", job.reason
        listing = moto.client().list_objects_v2(Bucket=out)["Contents"]
        assert sorted(o["Key"] for o in listing) == [
            "v17/d/e/a",
            "v17/t",
            "v2/d/e/a",
            "v2/t",
        ]
        body = moto.client().get_object(Bucket=out, Key="v17/d/e/a")["Body"].read()
        assert body == b"apple\n"

        # a bucket that does not exist: the job fails naming the URL and S3's error
        pps.create("gone", atom("in"), ["true"], egress={"URL": "s3://no-such-bucket-x/y"})
        (job,) = pps.wait_jobs("gone", 1)
        assert job.state == "failure"
        assert job.reason.startswith("egress to s3://no-such-bucket-x/y failed: ")
        assert "NoSuchBucket" in job.reason or "does not exist" in job.reason

        # the server's own object store is not an egress target
        with pytest.raises(InvalidSpec) as e:
            pps.create("own", atom("in"), ["true"], egress={"URL": f"s3://{s3_bucket.name}/"})
        assert "inside the server's own object store" in e.value.message
        moto.remove_bucket(out)
    finally:
        pps.close()
