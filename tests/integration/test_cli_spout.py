"""Spout pipelines through the real CLI against a real tuskd running them under bubblewrap in
a real image: three tar streams are three commits, overwrite keeps the last content, a bad
stream makes no commit and a log line, stop/start pause and resume it, and the spout runs on
after the server restarts."""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tusk.testing import Tuskd, wait_for
from tusk.testing.images import build_python_image

from .conftest import ok, raw_objects, rows, run

WRITER = textwrap.dedent(
    """
    import io, tarfile, time

    def stream(files):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w|") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        with open("/pfs/out", "wb") as out:  # the named pipe
            out.write(buf.getvalue())
    """
)


class Cli:
    def __init__(self, server: Tuskd, tmp: Path) -> None:
        self.server = server
        self.tmp = tmp

    def __call__(self, *args: str) -> str:
        return str(ok(run(*args, env=self.server.env)))

    def create(self, name: str, body: str, **spout: Any) -> None:
        spec = {
            "pipeline": {"name": name},
            "transform": {
                "image": build_python_image(),
                "cmd": ["python3", "-c", WRITER + textwrap.dedent(body)],
            },
            "spout": spout,
        }
        path = self.tmp / f"{name}.json"
        path.write_text(json.dumps(spec))
        self("create-pipeline", "-f", str(path))

    def commits(self, repo: str) -> list[dict[str, Any]]:
        """Finished commits, oldest first."""
        found = raw_objects(self("list-commit", repo, "--raw"))
        return [c for c in reversed(found) if c.get("finished")]

    def wait_commits(self, repo: str, count: int, timeout: float = 120) -> list[dict[str, Any]]:
        try:
            return wait_for(
                f"{count} commits in {repo}",
                lambda: (lambda c: c if len(c) >= count else None)(self.commits(repo)),
                timeout,
                interval=0.5,
            )
        except AssertionError as e:
            log = self("get-logs", "--pipeline", repo, "--master")
            raise AssertionError(f"{e}; its log:\n{log}") from None


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    home = tmp_path_factory.mktemp("spout-home")
    with Tuskd(home, {"TUSK_RUNTIME": "bwrap"}) as server:
        yield Cli(server, tmp_path_factory.mktemp("specs"))


def test_three_tar_streams_are_three_commits(cli: Cli) -> None:
    cli.create(
        "gen",
        """
        for i in range(3):
            stream({f"f{i}.txt": f"stream {i}\\n".encode()})
        time.sleep(3600)
        """,
    )
    table = rows(cli("list-pipeline"))
    gen = next(r for r in table if r[0] == "gen")
    assert gen[table[0].index("INPUT")] == "none"
    got = cli.wait_commits("gen", 3)
    assert len(got) == 3
    names = [r[0] for r in rows(cli("list-file", "gen", "master"))[1:]]
    assert names == ["f0.txt", "f1.txt", "f2.txt"]
    assert cli("get-file", "gen", "master", "/f1.txt") == "stream 1\n"
    first = cli("list-file", "gen", got[0]["commit"]["id"])
    assert "f0.txt" in first and "f1.txt" not in first
    assert "Name: gen" in cli("inspect-pipeline", "gen").replace("  ", " ")
    assert "gen" not in cli("list-job")  # a spout has no jobs
    inspected = cli("inspect-commit", "gen", "master")
    assert "__spec__" in inspected  # provenance: the spec commit of the pipeline


def test_overwrite_keeps_only_the_last_content(cli: Cli) -> None:
    cli.create(
        "last",
        """
        for i in range(3):
            stream({"value.txt": f"value {i}\\n".encode()})
        time.sleep(3600)
        """,
        overwrite=True,
    )
    cli.wait_commits("last", 3)
    assert cli("get-file", "last", "master", "/value.txt") == "value 2\n"


def test_a_bad_tar_stream_makes_no_commit_and_a_log_line(cli: Cli) -> None:
    cli.create(
        "bad",
        """
        with open("/pfs/out", "wb") as out:
            out.write(b"this is not a tar archive" * 40)
        time.sleep(1.5)
        stream({"good.txt": b"good"})
        time.sleep(3600)
        """,
    )
    got = cli.wait_commits("bad", 1)
    log = cli("get-logs", "--pipeline", "bad", "--master")
    assert "invalid tar stream" in log and "no commit" in log, log
    time.sleep(1)
    assert len(cli.commits("bad")) == len(got) == 1
    assert cli("get-file", "bad", "master", "/good.txt") == "good"


def test_stop_start_and_a_server_restart(cli: Cli) -> None:
    cli.create(
        "tick",
        """
        i = 0
        while True:
            stream({f"t{i:05d}": b"x"})
            i += 1
            time.sleep(0.3)
        """,
    )
    cli.wait_commits("tick", 2)
    cli("stop-pipeline", "tick")
    time.sleep(3)  # a stream in flight may still land
    stopped = len(cli.commits("tick"))
    time.sleep(3)
    assert len(cli.commits("tick")) == stopped
    cli("start-pipeline", "tick")
    cli.wait_commits("tick", stopped + 2)

    cli.server.stop()
    cli.server.start()
    before = len(cli.commits("tick"))
    cli.wait_commits("tick", before + 2)
