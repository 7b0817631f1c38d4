"""``put-file -f`` from and ``extract -u`` / ``restore -u`` to Google Cloud Storage (``gs://``,
``gcs://``) and Azure Blob Storage (``wasb://``, ``as://``) through the real CLI against a real
server and real emulators (gcp-storage-emulator, Azurite). Only the CLI has the store's
credentials: the server never reads the store itself. (``s3://``: test_cli_compat_fixes and
test_cli_admin.)"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

from stores import Bucket, bucket_fixture, emulator_fixtures

from tusk.testing import Tuskd

from .conftest import Tusk, fails, ok, rows, run

gcs_emulator, azurite, moto_server = emulator_fixtures()
bucket = bucket_fixture(("gs", "gcs", "wasb", "as"))
backups = bucket_fixture(("gs", "wasb"), name="backups")


def commit_count(tusk: Tusk, repo: str) -> int:
    return len(rows(ok(tusk("list-commit", repo)))) - 1


def test_put_file_from_a_store_with_the_cli_users_credentials(tusk: Tusk, bucket: Bucket) -> None:
    bucket.put("data/a.txt", b"alpha\n")
    bucket.put("data/sub/b.txt", b"beta\n")
    bucket.put("other.txt", b"other\n")
    env = bucket.env
    repo = f"from{bucket.scheme}"
    ok(tusk("create-repo", repo))

    ok(tusk("put-file", repo, "master", "/one", "-f", bucket.url("data/a.txt"), env=env))
    assert ok(tusk("get-file", repo, "master", "/one")) == "alpha\n"
    # no path: the URL's path, as 1.7 (for Azure it starts with the container)
    ok(tusk("put-file", repo, "master", "-f", bucket.url("other.txt"), env=env))
    from_url = re.sub(r"^[a-z]+://[^/]*", "", bucket.url("other.txt"))
    assert ok(tusk("get-file", repo, "master", from_url)) == "other\n"
    # -r: every object under the prefix, relative to it
    ok(tusk("put-file", repo, "master", "/imp", "-r", "-f", bucket.url("data/"), env=env))
    assert ok(tusk("get-file", repo, "master", "/imp/a.txt")) == "alpha\n"
    assert ok(tusk("get-file", repo, "master", "/imp/sub/b.txt")) == "beta\n"

    # -i: the list of sources is an object too
    bucket.put("list.txt", (bucket.url("data/a.txt") + "\n").encode())
    ok(tusk("put-file", repo, "master", "/listed", "-i", bucket.url("list.txt"), env=env))
    assert ok(tusk("get-file", repo, "master", "/listed")) == "alpha\n"

    before = commit_count(tusk, repo)
    missing = bucket.url("data/nope.txt")
    err = fails(tusk("put-file", repo, "master", "/x", "-f", missing, env=env), 7, bucket.missing)
    assert "nothing was stored" in err
    # one good source and one missing one: the good one is not stored either
    both = ("-f", bucket.url("other.txt"), "-f", missing)
    fails(tusk("put-file", repo, "master", "/y", *both, env=env), 7, bucket.missing)
    empty = bucket.url("none/")
    fails(tusk("put-file", repo, "master", "/x", "-r", "-f", empty, env=env), 7, "no objects found")
    prefix = bucket.url("data/")
    fails(tusk("put-file", repo, "master", "/x", "-f", prefix, env=env), 2, "not an object")
    other = bucket.url("other.txt")
    fails(
        tusk("put-file", repo, "master", "/x", "-f", other, env=bucket.no_credentials),
        7,
        "no Google Cloud credentials" if bucket.scheme in ("gs", "gcs") else "no Azure credentials",
    )
    assert commit_count(tusk, repo) == before  # nothing stored by the failures


def test_extract_to_and_restore_from_a_store(tmp_path: Path, backups: Bucket) -> None:
    with Tuskd(tmp_path / "source", {"TUSK_RUNTIME": "host"}) as source:

        def src(*args: str, **kw: Any) -> tuple[int, Any, str]:
            return run(*args, env={**source.env, **kw.pop("env", {})}, **kw)

        ok(src("create-repo", "data"))
        ok(src("put-file", "data", "master", "/a", input="alpha\n"))
        big = random.Random(7).randbytes(10_000_000)  # not deduplicated: 2 parts, blocks, chunks
        ok(src("put-file", "data", "master", "/big", input=big))
        url = backups.url("backups/one.tusk")
        ok(src("extract", "-u", url, env=backups.env))
        body = backups.get("backups/one.tusk")
        assert body.startswith(b"tusk-extract\n") and len(body) > 10_000_000

        prefix = backups.url("backups/")
        fails(src("extract", "-u", prefix, env=backups.env), 2, "names a bucket or a prefix")
        no_creds = backups.no_credentials
        fails(src("extract", "-u", backups.url("nocreds"), env=no_creds), 7, "credentials")
        assert backups.keys() == ["backups/one.tusk"]  # a refused extract leaves no object

    with Tuskd(tmp_path / "restored", {"TUSK_RUNTIME": "host"}) as server:

        def dst(*args: str, **kw: Any) -> tuple[int, Any, str]:
            return run(*args, env={**server.env, **backups.env}, **kw)

        fails(dst("restore", "-u", backups.url("nope")), 7, backups.missing)
        assert rows(ok(dst("list-repo"))) == [["NAME", "CREATED", "SIZE"]]
        code, _, err = dst("restore", "-u", url)
        assert code == 0, err
        assert re.search(r"restored \d+ repos, 2 commits", err), err
        assert ok(dst("get-file", "data", "master", "/a")) == "alpha\n"
        assert ok(dst("get-file", "data", "master", "/big", binary=True)) == big
