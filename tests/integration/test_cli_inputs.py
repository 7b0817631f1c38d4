"""Join and git inputs through the real CLI against a real server (host runtime: /pfs bound by the
sandbox): the store/purchase data of Pachyderm's join example, the joined outputs, list-pipeline,
list-datum and inspect-datum, a join spec the server refuses; a git input polled from a local
repository."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from tusk import testing
from tusk.testing import Tuskd

from .conftest import Tusk, raw_objects, rows, run
from .test_cli_pps import fails, ok, put

# One output file per datum: the store's name, then each purchase of it.
JOINED = "cat /pfs/jstores/* /pfs/jpurchases/* > /pfs/out/$(ls /pfs/jpurchases)"


def join_spec(name: str, cmd: str, **purchases: Any) -> str:
    return json.dumps(
        {
            "pipeline": {"name": name},
            "transform": {"cmd": ["sh", "-c", cmd]},
            "input": {
                "join": [
                    {"pfs": {"repo": "jstores", "glob": "/STOREID(*).txt", "join_on": "$1"}},
                    {"pfs": {"repo": "jpurchases", "glob": "/*_STOREID(*).txt", **purchases}},
                ]
            },
        }
    )


def test_join_pipeline_through_the_cli(tusk: Tusk, tmp_path: Path) -> None:
    ok(tusk("create-repo", "jstores"))
    ok(tusk("create-repo", "jpurchases"))
    for i in (1, 2, 3):
        put(tusk, "jstores", f"/STOREID{i}.txt", f"store {i}\n")
    for p, s in (("P1", 1), ("P2", 1), ("P3", 2), ("P4", 4)):
        put(tusk, "jpurchases", f"/{p}_STOREID{s}.txt", f"{p.lower()}\n")

    # the datums a join would run, before any pipeline has it: 1.7's command with -f, and 2.x's
    # `list datum -f` (each datum's files), `--raw`; nothing is created or run
    spec_file = tmp_path / "joined.json"
    spec_file.write_text(join_spec("joined", JOINED, join_on="$1"))
    preview = rows(ok(tusk("list-datum", "-f", str(spec_file))))
    assert preview[0] == ["ID", "STATUS", "TIME"] and len(preview) == 4
    assert {r[1] for r in preview[1:]} == {"-"}
    v2 = ok(tusk("list", "datum", "-f", str(spec_file)))
    assert v2.splitlines()[0].split() == ["ID", "FILES", "STATUS", "TIME"]
    for pair in ("/STOREID1.txt, default/jpurchases@", "/STOREID2.txt, default/jpurchases@"):
        assert pair in v2
    assert "P4_STOREID4" not in v2  # an inner join: a purchase of no store is no datum
    raw = raw_objects(ok(tusk("list-datum", "-f", str(spec_file), "--raw")))
    assert sorted(i["path"] for d in raw for i in d["inputs"] if i["repo"] == "jpurchases") == [
        "/P1_STOREID1.txt",
        "/P2_STOREID1.txt",
        "/P3_STOREID2.txt",
    ]
    fails(tusk("list-datum"), 2, "needs a job-id or -f")
    bad = tmp_path / "bad.json"
    bad.write_text(join_spec("jbad", "true", join_on="$1").replace("jstores", "nope"))
    fails(tusk("list-datum", "-f", str(bad)), 3, "repo nope not found")
    # (the server is shared with other tests: other pipelines' jobs may be listed)
    assert "joined" not in ok(tusk("list-pipeline")) and "joined/" not in ok(tusk("list-job"))

    # a join child without join_on is refused, naming the field and the fix; nothing is created
    err = fails(tusk("create-pipeline", input=join_spec("jbad", "true")), 2, "join_on")
    assert "input.join[1].pfs.join_on" in err
    assert "jbad" not in ok(tusk("list-pipeline"))

    ok(tusk("create-pipeline", input=join_spec("joined", JOINED, join_on="$1")))
    ok(tusk("flush-commit", "jpurchases/master"))
    listing = ok(tusk("list-pipeline"))
    assert "(jstores:/STOREID(*).txt ⋈ jpurchases:/*_STOREID(*).txt)" in listing

    files = {r[0] for r in rows(ok(tusk("list-file", "joined", "master", "/")))[1:]}
    assert files == {"P1_STOREID1.txt", "P2_STOREID1.txt", "P3_STOREID2.txt"}
    assert ok(tusk("get-file", "joined", "master", "/P2_STOREID1.txt")) == "store 1\np2\n"
    assert ok(tusk("get-file", "joined", "master", "/P3_STOREID2.txt")) == "store 2\np3\n"

    (job,) = [j["id"] for j in raw_objects(ok(tusk("list-job", "-p", "joined", "--raw")))]
    datums = rows(ok(tusk("list-datum", job, "--pipeline", "joined")))[1:]
    assert sorted(r[1] for r in datums) == ["success"] * 3
    shown = [ok(tusk("inspect-datum", job, r[0], "--pipeline", "joined")) for r in datums]
    pairs = sorted(
        tuple(re.findall(r"^\s+(jstores|jpurchases)\s+\w+\s+(\S+)\s*$", text, re.M))
        for text in shown
    )
    assert pairs == [
        (("jstores", "/STOREID1.txt"), ("jpurchases", "/P1_STOREID1.txt")),
        (("jstores", "/STOREID1.txt"), ("jpurchases", "/P2_STOREID1.txt")),
        (("jstores", "/STOREID2.txt"), ("jpurchases", "/P3_STOREID2.txt")),
    ]
    ok(tusk("delete-pipeline", "joined"))


# -- a git input, on a server of its own that allows file:// URLs and polls every half second --
def test_git_input_through_the_cli(tmp_path: Path) -> None:
    site = tmp_path / "site.git"
    site.mkdir()
    git_env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }

    def git(*args: str) -> str:
        out = subprocess.run(
            ["git", *args], cwd=site, env=git_env, check=True, capture_output=True, timeout=30
        )
        return out.stdout.decode().strip()

    git("init", "-q", "-b", "master")
    (site / "hello.txt").write_text("hello\n")
    git("add", "-A")
    git("commit", "-q", "-m", "one")
    sha = git("rev-parse", "HEAD")
    env = {"TUSK_RUNTIME": "host", "TUSK_GIT_POLL_SECONDS": "0.5", "TUSK_GIT_ALLOW_FILE_URLS": "1"}
    with Tuskd(tmp_path / "home", env) as server:

        def tusk(*args: str, **kw: Any) -> tuple[int, Any, str]:
            return run(*args, env=server.env, **kw)

        def spec(url: str) -> str:
            cmd = ["sh", "-c", "cp /pfs/site/hello.txt /pfs/out/"]
            return json.dumps(
                {
                    "pipeline": {"name": "web"},
                    "transform": {"cmd": cmd},
                    "input": {"git": {"URL": url}},
                }
            )

        # a URL that does not answer: exit 2 with git's own complaint, nothing created
        err = fails(tusk("create-pipeline", input=spec(f"file://{tmp_path}/nope.git")), 2, "git")
        assert "ls-remote failed" in err
        assert "web" not in ok(tusk("list-pipeline"))

        ok(tusk("create-pipeline", input=spec(f"file://{site}")))
        testing.wait_for(
            "the first git import",
            lambda: len(rows(ok(tusk("list-commit", "site")))) > 1,
            60,
            interval=0.2,
        )
        ok(tusk("flush-commit", "site/master"))
        assert f"git {sha}" in ok(tusk("inspect-commit", "site", "master"))
        assert ok(tusk("get-file", "web", "master", "/hello.txt")) == "hello\n"
