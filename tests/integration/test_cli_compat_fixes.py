"""pachctl 1.7 behaviours through the real CLI against a real server: put-file from S3 (a real
moto endpoint) and --split sql, list-job -i, list-datum pages, inspect-datum's times, stats
branches, the RESTART column across a server restart, get-logs, inspect-commit of a missing id,
subscribe-commit's layout, delete-repo --all x and hints under the pachctl name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from s3server import moto_server_fixture

from tusk import testing
from tusk.testing import Tuskd, clean_env
from tusk.testing.moto import MotoServer

from .conftest import CLI, Tusk, raw_objects, rows, run

moto_server = moto_server_fixture()


# -- helpers ------------------------------------------------------------------------------------
def ok(result: tuple[int, Any, str]) -> str:
    code, out, err = result
    assert code == 0, err
    assert "Traceback" not in err
    return str(out)


def fails(result: tuple[int, Any, str], code: int, message: str) -> str:
    got, _, err = result
    assert got == code, err
    assert message in err, err
    assert "Traceback" not in err
    return err


def spec(name: str, cmd: str, inp: dict[str, Any], **extra: Any) -> str:
    return json.dumps(
        {"pipeline": {"name": name}, "transform": {"cmd": ["sh", "-c", cmd]}, "input": inp, **extra}
    )


def atom(repo: str, glob: str) -> dict[str, Any]:
    return {"atom": {"repo": repo, "glob": glob}}


def head(tusk: Tusk, repo: str) -> str:
    return rows(ok(tusk("list-commit", repo)))[1][1]


def commit_count(tusk: Tusk, repo: str) -> int:
    return len(rows(ok(tusk("list-commit", repo)))) - 1


def jobs(tusk: Tusk, pipeline: str) -> list[dict[str, Any]]:
    return raw_objects(ok(tusk("list-job", "-p", pipeline, "--raw")))


def job_ended(tusk: Tusk, pipeline: str, n: int = 1) -> list[dict[str, Any]]:
    """The pipeline's jobs once ``n`` of them have ended."""

    def met() -> list[dict[str, Any]] | None:
        js = jobs(tusk, pipeline)
        ended = [j for j in js if j["state"] in ("success", "failure", "killed")]
        return js if len(ended) >= n else None

    return testing.wait_for(f"{n} ended jobs of {pipeline}", met, 90, interval=0.2)


# -- put-file from S3 ---------------------------------------------------------------------------
def test_put_file_from_s3_with_the_cli_users_credentials(
    tusk: Tusk, moto_server: MotoServer
) -> None:
    s3 = moto_server.client()
    bucket = moto_server.create_bucket()
    try:
        s3.put_object(Bucket=bucket, Key="data/a.txt", Body=b"alpha\n")
        s3.put_object(Bucket=bucket, Key="data/sub/b.txt", Body=b"beta\n")
        s3.put_object(Bucket=bucket, Key="other.txt", Body=b"other\n")
        aws = moto_server.env()  # only the CLI has them: the server never reads S3 itself
        ok(tusk("create-repo", "s3in"))

        ok(tusk("put-file", "s3in", "master", "/one", "-f", f"s3://{bucket}/data/a.txt", env=aws))
        assert ok(tusk("get-file", "s3in", "master", "/one")) == "alpha\n"
        # no path: the URL's path, as 1.7
        ok(tusk("put-file", "s3in", "master", "-f", f"s3://{bucket}/other.txt", env=aws))
        assert ok(tusk("get-file", "s3in", "master", "/other.txt")) == "other\n"
        # -r: every object under the prefix, relative to it
        ok(tusk("put-file", "s3in", "master", "/imp", "-r", "-f", f"s3://{bucket}/data/", env=aws))
        assert ok(tusk("get-file", "s3in", "master", "/imp/a.txt")) == "alpha\n"
        assert ok(tusk("get-file", "s3in", "master", "/imp/sub/b.txt")) == "beta\n"

        before = commit_count(tusk, "s3in")
        missing = f"s3://{bucket}/data/nope.txt"
        fails(tusk("put-file", "s3in", "master", "/x", "-f", missing, env=aws), 7, "NoSuchKey")
        no_creds = {"AWS_ENDPOINT_URL": moto_server.endpoint, "AWS_EC2_METADATA_DISABLED": "true"}
        no_creds |= {
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_CONFIG_FILE": "/nonexistent",
        }
        other = f"s3://{bucket}/other.txt"
        fails(
            tusk("put-file", "s3in", "master", "/x", "-f", other, env=no_creds),
            7,
            "no AWS credentials",
        )
        err = fails(
            tusk("put-file", "s3in", "master", "/x", "-f", "gs://b/k"),
            7,
            "gs:// sources are not supported",
        )
        assert "gsutil" in err
        assert commit_count(tusk, "s3in") == before  # nothing stored by the failures
    finally:
        moto_server.remove_bucket(bucket)


# -- put-file --split sql -----------------------------------------------------------------------
PG_DUMP = """--
-- PostgreSQL database dump
--
SET statement_timeout = 0;
CREATE TABLE public.cars (id integer, name text);
COPY public.cars (id, name) FROM stdin;
1\tbeetle
2\tmini
3\tfiat
\\.
ALTER TABLE ONLY public.cars ADD CONSTRAINT cars_pkey PRIMARY KEY (id);
--
-- PostgreSQL database dump complete
--
"""
HEADER, _, REST = PG_DUMP.partition("1\tbeetle\n")
FOOTER = REST[REST.index("\\.\n") :]


def test_split_sql_keeps_header_and_footer_in_every_file(tusk: Tusk) -> None:
    ok(tusk("create-repo", "dumps"))
    ok(tusk("put-file", "dumps", "master", "/cars", "--split", "sql", input=PG_DUMP))
    names = [r[0] for r in rows(ok(tusk("list-file", "dumps", "master", "/cars")))[1:]]
    assert names == [f"/cars/{i:016x}" for i in range(3)]
    for i, row in enumerate(["1\tbeetle\n", "2\tmini\n", "3\tfiat\n"]):
        assert ok(tusk("get-file", "dumps", "master", f"/cars/{i:016x}")) == HEADER + row + FOOTER

    ok(
        tusk(
            "put-file",
            "dumps",
            "master",
            "/two",
            "--split",
            "sql",
            "--target-file-datums",
            "2",
            input=PG_DUMP,
        )
    )
    files = [r[0] for r in rows(ok(tusk("list-file", "dumps", "master", "/two")))[1:]]
    assert len(files) == 2
    assert (
        ok(tusk("get-file", "dumps", "master", files[0]))
        == HEADER + "1\tbeetle\n2\tmini\n" + FOOTER
    )

    before = commit_count(tusk, "dumps")
    fails(
        tusk("put-file", "dumps", "master", "/bad", "--split", "sql", input="SELECT 1;\n"),
        2,
        "missing row inserts",
    )
    fails(
        tusk("put-file", "dumps", "master", "/bad", "--split", "sql", input=HEADER + "1\tx\n"),
        2,
        "missing footer",
    )
    assert commit_count(tusk, "dumps") == before
