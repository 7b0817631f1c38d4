"""pachctl 2.x's grammar through the real CLI against a real tuskd: ``verb noun`` commands with
``repo@branch:/path``, ``repo@commit`` (``^``, ``~N``) and ``pipeline@job`` arguments, ``--project``,
and ``--raw`` in 2.x's protobuf JSON form (1.7's commands keep 1.7's form)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from tusk import testing

from .conftest import Tusk, atom, fails, ok, raw_objects, rows, spec

ID = re.compile(r"^[0-9a-f]{32}$")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def rfc3339(text: str) -> datetime:
    assert RFC3339.match(text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_pfs_in_the_2x_grammar(tusk: Tusk, tmp_path: Path) -> None:
    ok(tusk("create", "repo", "v2in", "-d", "two words"))
    listed = rows(ok(tusk("list", "repo")))
    # 2.x's layout (1.7's list-repo keeps NAME CREATED SIZE)
    assert listed[0] == ["PROJECT", "NAME", "CREATED", "SIZE", "(MASTER)", "DESCRIPTION"]
    [mine] = [r for r in listed if r[1] == "v2in"]
    assert mine[0] == "default" and mine[-2:] == ["two", "words"]
    assert rows(ok(tusk("list-repo")))[0] == ["NAME", "CREATED", "SIZE"]
    # put file overwrites (2.x's default), -a appends; get file reads repo@branch:/path
    ok(tusk("put", "file", "v2in@master:/a.txt", input="one\n"))
    ok(tusk("put", "file", "v2in@master:/a.txt", input="two\n"))
    assert ok(tusk("get", "file", "v2in@master:/a.txt")) == "two\n"
    ok(tusk("put", "file", "v2in@master:/a.txt", "-a", input="three\n"))
    assert ok(tusk("get", "file", "v2in@master:/a.txt")) == "two\nthree\n"
    local = tmp_path / "b.csv"
    local.write_text("b\n")
    ok(tusk("put", "file", "v2in@master:/dir/b.csv", "-f", str(local)))
    # 1.7's grammar on the same data is unchanged (put-file appends)
    ok(tusk("put-file", "v2in", "master", "/dir/b.csv", input="c\n"))
    assert ok(tusk("get-file", "v2in", "master", "/dir/b.csv")) == "b\nc\n"

    # 2.x's file layout: SIZE then the full path, tab-separated, directories ending in /
    listed = ok(tusk("list", "file", "v2in@master"))
    assert listed == "SIZE   \tNAME\n10B\t/a.txt\n4B\t/dir/\n"
    assert [r[0] for r in rows(ok(tusk("list-file", "v2in", "master")))[1:]] == ["a.txt", "dir"]
    assert ok(tusk("list", "file", "v2in@master:/dir")) == "SIZE   \tNAME\n4B\t/dir/b.csv\n"
    globbed = ok(tusk("glob", "file", "v2in@master:/*/*.csv"))
    assert globbed == "SIZE   \tNAME\n4B\t/dir/b.csv\n"
    assert rows(ok(tusk("glob-file", "v2in", "master", "/*/*.csv")))[1][0] == "/dir/b.csv"
    out = tmp_path / "got.csv"
    ok(tusk("get", "file", "v2in@master:/dir/b.csv", "-o", str(out)))
    assert out.read_text() == "b\nc\n"

    # ancestry: five commits on master, newest first
    table = rows(ok(tusk("list", "commit", "v2in@master")))
    assert table[0] == [
        "PROJECT",
        "REPO",
        "COMMIT",
        "FINISHED",
        "SIZE",
        "ORIGIN",
        "CREATOR",
        "DESCRIPTION",
    ]  # fmt: skip  (pachctl 2.12's columns)
    assert {tuple(r[:2]) for r in table[1:]} == {("default", "v2in")}
    history = [r[2] for r in table[1:]]
    assert len(history) == 5 and all(ID.match(c) for c in history)
    assert [r[2] for r in rows(ok(tusk("list", "commit", "v2in")))[1:]] == history
    [head_raw] = raw_objects(ok(tusk("inspect", "commit", "v2in@master", "--raw")))
    # ORIGIN as 2.x names it, then CREATOR ("-": no auth); no description
    assert table[1][-2:] == [head_raw["origin"]["kind"], "-"]
    # with no argument: one row per global id, each of them here one commit of v2in
    sets = rows(ok(tusk("list", "commit")))
    assert sets[0] == ["ID", "SUBCOMMITS", "PROGRESS", "CREATED", "MODIFIED"]
    by_id = {r[0]: r for r in sets[1:]}
    assert set(history) <= set(by_id)
    assert [by_id[c][1:3] for c in history] == [["1", "\u2587" * 8]] * 5
    assert [r[0] for r in sets[1:] if r[0] in history] == history  # newest first

    def commit_id(ref: str) -> str:
        return raw_objects(ok(tusk("inspect", "commit", f"v2in@{ref}", "--raw")))[0]["commit"]["id"]

    assert commit_id("master") == history[0]
    assert commit_id("master^") == history[1]
    assert commit_id("master~2") == history[2]
    assert commit_id("master^^^") == history[3]
    assert ok(tusk("get", "file", f"v2in@{history[3]}:/a.txt")) == "two\n"
    assert "Commit: v2in/" + history[1] in ok(tusk("inspect", "commit", "v2in@master^"))

    # branches; wait commit on a finished commit returns at once
    before = datetime.now(UTC).replace(microsecond=0)
    ok(tusk("create", "branch", "v2in@dev", "--head", "master"))
    after = datetime.now(UTC)
    ok(tusk("create", "branch", "v2in@dev", "--head", "master^"))  # moved: still made at once
    assert ok(tusk("get", "file", "v2in@dev:/dir/b.csv")) == "b\n"
    branches = rows(ok(tusk("list", "branch", "v2in")))
    assert branches[0] == ["BRANCH", "HEAD", "TRIGGER", "CREATOR", "CREATED"]
    [dev] = [b for b in branches[1:] if b[0] == "dev"]
    assert dev[:4] == ["dev", history[1], "-", "-"]
    # CREATED: absolute, to the second, in the local zone, as pachctl 2.12 prints it
    created = rfc3339(dev[4])
    assert before <= created <= after
    assert rows(ok(tusk("list-branch", "v2in")))[0] == ["BRANCH", "HEAD"]
    stamp = created.astimezone(UTC).isoformat().replace("+00:00", "Z")
    assert ok(tusk("inspect", "branch", "v2in@dev")) == (
        f"Name: v2in@dev\nHead Commit: v2in@{history[1]} \n\nCreated at: {stamp}\n"
    )
    [branch] = raw_objects(ok(tusk("inspect", "branch", "v2in@dev", "--raw")))
    assert branch["branch"]["name"] == "dev" and branch["head"]["id"] == history[1]
    assert rfc3339(branch["created_at"]).replace(microsecond=0) == created
    fails(tusk("inspect", "branch", "v2in@nobranch"), 3, "nobranch")
    assert "Commit: v2in/" + history[0] in ok(tusk("wait", "commit", "v2in@master"))

    # --project: names are in that project; a project that does not exist is named, nothing done
    ok(tusk("create", "repo", "v2proj", "--project", "default"))
    err = fails(tusk("create", "repo", "v2other", "--project", "other"), 3, 'project "other"')
    assert "create-project" in err
    fails(tusk("list", "file", "v2in@master", "--project", "other"), 3, "other")
    assert "v2other" not in ok(tusk("list", "repo"))
    ok(tusk("create", "project", "v2lab"))
    ok(tusk("create", "repo", "v2in", "--project", "v2lab"))  # the same name in another project
    (tmp_path / "lab.txt").write_text("lab\n")
    lab_file = str(tmp_path / "lab.txt")
    ok(tusk("put", "file", "v2in@master:/lab.txt", "-f", lab_file, "--project", "v2lab"))
    assert "lab.txt" in ok(tusk("list", "file", "v2in@master", "--project", "v2lab"))
    assert "lab.txt" not in ok(tusk("list", "file", "v2in@master"))
    ok(tusk("delete", "repo", "v2in", "--project", "v2lab"))
    ok(tusk("delete", "project", "v2lab"))  # the server is shared with other tests

    # bad arguments say what the form is
    fails(tusk("get", "file", "v2in@master"), 2, "expected repo@branch-or-commit:/path")
    fails(tusk("inspect", "commit", "v2in"), 2, "expected repo@branch-or-commit")
    fails(tusk("get", "file", "v2in:/a.txt"), 2, "a path needs a branch or commit")
    fails(tusk("inspect", "commit", "v2in@nobranch"), 3, "nobranch")
    # -h shows the help of the command it runs
    assert "get-file" in ok(tusk("get", "file", "-h"))


def test_squash_commit(tusk: Tusk) -> None:
    """``squash commit <id>``: the commit leaves the history, its data stays in its child; a
    commit with no children (or a branch on it, or an unknown id) is refused, nothing changed."""
    ok(tusk("create", "repo", "v2sq"))
    for text in ("one\n", "two\n", "three\n"):
        ok(tusk("put", "file", "v2sq@master:/f.txt", "-a", input=text))
    first, middle, head = [r[2] for r in rows(ok(tusk("list", "commit", "v2sq@master")))[1:]][::-1]
    ok(tusk("create", "branch", "v2sq@pinned", "--head", first))
    fails(tusk("squash", "commit", head), 5, "has no children")
    fails(tusk("squash", "commit", first), 5, "branch v2sq@pinned points at commit")
    fails(tusk("squash", "commit", "0" * 32), 3, "not found")
    fails(tusk("squash", "commit", "v2sq@master"), 2, "takes a global id")
    assert len(rows(ok(tusk("list", "commit", "v2sq@master")))) == 4  # nothing changed
    assert ok(tusk("squash", "commit", middle)) == f"squashed v2sq@{middle}\n"
    assert [r[2] for r in rows(ok(tusk("list", "commit", "v2sq@master")))[1:]] == [head, first]
    assert ok(tusk("get", "file", "v2sq@master:/f.txt")) == "one\ntwo\nthree\n"
    [info] = raw_objects(ok(tusk("inspect", "commit", f"v2sq@{head}", "--raw")))
    assert info["parent_commit"]["id"] == first
    fails(tusk("inspect", "commit", f"v2sq@{middle}"), 3, middle)
    ok(tusk("delete", "repo", "v2sq"))


def test_raw_in_2x_form(tusk: Tusk) -> None:
    ok(tusk("create", "repo", "v2raw", "-d", "raw desc"))
    ok(tusk("put", "file", "v2raw@master:/x/y.txt", input="0123456789"))
    # 1.7's --raw is unchanged
    old = [r for r in raw_objects(ok(tusk("list-repo", "--raw"))) if r["name"] == "v2raw"]
    assert old and old[0]["size_bytes"] == 10 and "size_bytes_upper_bound" not in old[0]

    [repo] = raw_objects(ok(tusk("inspect", "repo", "v2raw", "--raw")))
    assert repo["repo"] == {"name": "v2raw", "type": "user", "project": {"name": "default"}}
    assert repo["description"] == "raw desc"
    assert repo["size_bytes_upper_bound"] == "10"  # int64 as a string
    rfc3339(repo["created"])
    listed = raw_objects(ok(tusk("list", "repo", "--raw")))
    assert repo in listed
    # -o yaml: the same message as a YAML document; -o json is the default
    text = ok(tusk("inspect", "repo", "v2raw", "--raw", "-o", "yaml"))
    assert text.startswith("---\nrepo:\n  name: v2raw\n")
    assert list(yaml.safe_load_all(text)) == [repo]
    assert raw_objects(ok(tusk("inspect", "repo", "v2raw", "--raw", "--output=json"))) == [repo]
    docs = list(yaml.safe_load_all(ok(tusk("list", "repo", "--raw", "-o", "yaml"))))
    assert repo in docs and len(docs) == len(listed)
    fails(tusk("list", "repo", "--raw", "-o", "xml"), 2, "unknown output format 'xml'")
    # as in pachctl 2.x, -o needs --raw
    fails(tusk("inspect", "repo", "v2raw", "-o", "yaml"), 2, "cannot set --output (-o) without")
    fails(tusk("list", "repo", "-o=yaml"), 2, "cannot set --output (-o) without --raw")
    fails(tusk("create", "repo", "v2rawnot", "--raw"), 2, "create repo has no raw form")
    assert "v2rawnot" not in ok(tusk("list", "repo"))
    # --full-timestamps: absolute times in the tables
    [row] = [r for r in rows(ok(tusk("list", "repo", "--full-timestamps"))) if r[1] == "v2raw"]
    assert abs((rfc3339(row[2]) - rfc3339(repo["created"])).total_seconds()) < 1

    [commit] = raw_objects(ok(tusk("inspect", "commit", "v2raw@master", "--raw")))
    assert commit["commit"]["repo"]["name"] == "v2raw" and ID.match(commit["commit"]["id"])
    assert commit["commit"]["branch"]["name"] == "master"
    assert rfc3339(commit["finished"]) >= rfc3339(commit["started"])
    [old_commit] = raw_objects(ok(tusk("inspect-commit", "v2raw", "master", "--raw")))
    assert old_commit["origin"] == "auto"  # tusk's one-off commit of a put-file ...
    assert commit["origin"] == {"kind": "USER"}  # ... is a user's commit in 2.x, by name

    files = raw_objects(ok(tusk("list", "file", "v2raw@master:/x", "--raw")))
    assert [f["file"]["path"] for f in files] == ["/x/y.txt"]
    assert files[0]["file"]["commit"]["id"] == commit["commit"]["id"]  # the branch resolved
    assert files[0]["file_type"] == "FILE" and files[0]["size_bytes"] == "10"
    # the output is indented JSON with two spaces, one object after another
    text = ok(tusk("list", "file", "v2raw@master:/x", "--raw"))
    assert text.startswith('{\n  "file": {\n    "commit"')


def test_pps_in_the_2x_grammar(tusk: Tusk, tmp_path: Path) -> None:
    ok(tusk("create", "repo", "v2src"))
    pipeline = tmp_path / "pipeline.json"
    pipeline.write_text(
        spec("v2copy", "cp /pfs/v2src/* /pfs/out/; echo copied-$$", atom("v2src", "/*"))
    )
    ok(tusk("create", "pipeline", "-f", str(pipeline)))
    listed = rows(ok(tusk("list", "pipeline")))
    assert listed[0][:4] == ["PROJECT", "NAME", "VERSION", "INPUT"]
    assert ["default", "v2copy", "1", "v2src:/*"] in [r[:4] for r in listed[1:]]
    [info] = raw_objects(ok(tusk("inspect", "pipeline", "v2copy", "--raw")))
    assert info["pipeline"]["name"] == "v2copy" and info["version"] == "1"

    # a put starts a change: the output commit shares the input commit's global id
    ok(tusk("put", "file", "v2src@master:/f1", input="hello\n"))
    [head] = raw_objects(ok(tusk("inspect", "commit", "v2src@master", "--raw")))
    global_id = head["commit"]["id"]
    waited = ok(tusk("wait", "commit", f"v2copy@{global_id}", timeout=120))
    assert f"Commit: v2copy/{global_id}" in waited
    assert ok(tusk("get", "file", f"v2copy@{global_id}:/f1")) == "hello\n"
    repos = {r[1] for r in rows(ok(tusk("list", "commit", global_id)))[1:]}
    assert {"v2src", "v2copy"} <= repos

    def job_done() -> list[dict[str, Any]] | None:
        js = raw_objects(ok(tusk("list", "job", "-p", "v2copy", "--raw")))
        return js if js and js[0].get("state") == "JOB_SUCCESS" else None

    [job] = testing.wait_for("the job", job_done, 90, interval=0.2)
    assert job["job"] == {
        "pipeline": {"name": "v2copy", "project": {"name": "default"}},
        "id": job["job"]["id"],
    }
    assert job["data_processed"] == "1" and job["data_total"] == "1"
    rfc3339(job["created"])
    job_id = job["job"]["id"]
    # 2.x's list job: one row per global id; -x (or -p) one row per pipeline's job
    table = rows(ok(tusk("list", "job")))
    assert table[0] == ["ID", "SUBJOBS", "PROGRESS", "CREATED", "MODIFIED"]
    [job_set] = [r for r in table[1:] if r[0] == job_id]
    assert job_set[1:3] == ["1", "\u2587" * 8] and job_set[-1] == "ago"
    [raw_set] = [
        s for s in raw_objects(ok(tusk("list", "job", "--raw"))) if s["job_set"]["id"] == job_id
    ]
    assert [j["job"]["pipeline"]["name"] for j in raw_set["jobs"]] == ["v2copy"]
    expanded = rows(ok(tusk("list", "job", "-x")))
    assert expanded[0][:3] == ["PROJECT", "PIPELINE", "ID"] and expanded[0][-1] == "STATE"
    assert ["default", "v2copy", job_id] in [r[:3] for r in expanded[1:]]
    assert rows(ok(tusk("list", "job", "-p", "v2copy")))[1][:3] == ["default", "v2copy", job_id]
    subjobs = rows(ok(tusk("list", "job", job_id)))[1:]
    assert [r[:3] for r in subjobs] == [["default", "v2copy", job_id]]
    assert rows(ok(tusk("list-job")))[0][:2] == ["ID", "OUTPUT"]  # 1.7's layout unchanged
    full = rows(ok(tusk("list", "job", "--full-timestamps")))
    [full_set] = [r for r in full[1:] if r[0] == job_id]
    assert rfc3339(full_set[3]) <= rfc3339(full_set[4])
    fails(tusk("list", "job", "f" * 32), 3, "no jobs with the global id")

    details = ok(tusk("inspect", "job", f"v2copy@{job_id}"))
    assert job_id in details and "success" in details
    [raw_job] = raw_objects(ok(tusk("inspect", "job", f"v2copy@{job_id}", "--raw")))
    assert raw_job["job"]["id"] == job_id and raw_job["state"] == "JOB_SUCCESS"
    datums = raw_objects(ok(tusk("list", "datum", f"v2copy@{job_id}", "--raw")))
    assert len(datums) == 1
    datum_rows = rows(ok(tusk("list", "datum", f"v2copy@{job_id}")))
    assert datum_rows[0] == ["ID", "FILES", "STATUS", "TIME"]
    assert datum_rows[1][1:3] == [f"default/v2src@{global_id}:/f1", "success"]
    assert rows(ok(tusk("list-datum", job_id)))[0] == ["ID", "STATUS", "TIME"]

    assert "copied-" in ok(tusk("logs", "--pipeline", "v2copy"))
    assert "copied-" in ok(tusk("logs", "--job", f"v2copy@{job_id}"))
    assert "copied-" in ok(tusk("logs", "-j", f"v2copy@{job_id}"))
    fails(tusk("inspect", "pipeline", "v2copy", "--project", "other"), 3, "other")

    from tusk import __version__

    assert __version__ in ok(tusk("version"))

    # delete commit <global id>: the input commit and the output commit it caused both go
    ok(tusk("put", "file", "v2src@master:/f2", input="again\n"))
    [second] = raw_objects(ok(tusk("inspect", "commit", "v2src@master", "--raw")))
    second_id = second["commit"]["id"]
    ok(tusk("wait", "commit", f"v2copy@{second_id}", timeout=120))
    assert {r[1] for r in rows(ok(tusk("list", "commit", second_id)))[1:]} >= {"v2src", "v2copy"}
    # pachd's DropCommitSet: a set whose commits have children is refused, nothing changed
    fails(tusk("delete", "commit", global_id), 5, "cannot drop a commit that has children")
    assert global_id in ok(tusk("list", "commit"))
    assert ok(tusk("delete", "commit", second_id)) == ""
    fails(tusk("list", "commit", second_id), 3, "no commits with the global id")
    assert ok(tusk("list", "file", "v2src@master")).count("f2") == 0
    assert global_id in ok(tusk("list", "commit"))  # the earlier change is still there
    fails(tusk("delete", "commit", "e" * 32), 3, "commit set " + "e" * 32 + " not found")
