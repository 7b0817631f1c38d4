"""The CLI's read commands through the real CLI and a real tuskd: no httpx, pydantic or yaml on
their path, and listings printed block by block as they arrive, byte for byte the tables and
``--raw`` objects the typed client's answers give."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tusk.cli.jsonpb import render_json
from tusk.cli.tables import print_table
from tusk.cli.units import bytes_size
from tusk.client import Client, PutSource
from tusk.testing import clean_env

from .conftest import CLI, Tusk, fails, ok

FILES = 2_345  # 48 blocks of the 50-line tables and more than two batches of JSON lines

PROBE = """
import json, sys
sys.argv = ["tusk", *json.loads(sys.argv[1])]
from tusk.cli.main import main
try:
    main()
except SystemExit as e:
    code = e.code
sys.stdout.flush()
heavy = ("httpx", "pydantic", "yaml", "tusk.api.models", "tusk.client.client")
print("\\nPROBE " + json.dumps({"code": code, "heavy": [m for m in heavy if m in sys.modules]}))
"""


@pytest.fixture(scope="module")
def many(tusk_server: dict[str, str]) -> str:
    with Client(tusk_server["TUSK_ADDRESS"], timeout=120) as c:
        c.create_repo("streamed")
        sources = [PutSource(f"/d/f{i:05d}.txt", b"x" * (i % 3000)) for i in range(FILES)]
        sources += [PutSource("/a.txt", b"hello\n"), PutSource("/b/c.txt", b"c")]
        c.put_files("streamed", "master", sources)
    return "streamed"


READS = [
    ["list-repo"],
    ["list-repo", "--raw"],
    ["inspect-repo", "streamed"],
    ["list-commit", "streamed"],
    ["list-commit", "streamed", "master", "--raw"],
    ["inspect-commit", "streamed", "master"],
    ["list-branch", "streamed"],
    ["list-file", "streamed", "master"],
    ["list-file", "streamed", "master", "/d", "--raw"],
    ["glob-file", "streamed", "master", "/d/f0001*"],
    ["inspect-file", "streamed", "master", "/a.txt"],
    ["get-file", "streamed", "master", "/a.txt"],
    ["diff-file", "streamed", "master", "/"],
    ["list-job"],
    ["list-job", "--raw"],
]


@pytest.mark.parametrize("argv", READS, ids=[" ".join(a) for a in READS])
def test_a_read_imports_no_httpx_pydantic_or_yaml(
    tusk_server: dict[str, str], many: str, argv: list[str]
) -> None:
    assert_light(tusk_server, argv)


def assert_light(server: dict[str, str], argv: list[str]) -> None:
    """The CLI command ``argv`` succeeds without importing httpx, pydantic or yaml."""
    run = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv)],
        capture_output=True,
        text=True,
        env=clean_env(server),
        timeout=60,
    )
    assert "Traceback" not in run.stderr, run.stderr
    probe = json.loads(run.stdout.rsplit("PROBE ", 1)[1])
    assert probe == {"code": 0, "heavy": []}, (argv, probe, run.stderr)


def test_list_file_of_thousands_is_the_table_of_the_typed_answer(
    tusk: Tusk, tusk_server: dict[str, str], many: str
) -> None:
    with Client(tusk_server["TUSK_ADDRESS"], timeout=60) as c:
        files = c.list_file("streamed", "master", "/d")
        root = c.list_file("streamed", "master", "/")
    rows = [(f.path, f.type, bytes_size(f.size_bytes)) for f in files]
    got = ok(tusk("list-file", "streamed", "master", "/d"))
    assert got == print_table(("NAME", "TYPE", "SIZE"), rows)
    assert got.count("NAME") == -(-(FILES) // 49)  # the header every 50 lines, as pachctl
    at_root = [(f.path[1:], f.type, bytes_size(f.size_bytes)) for f in root]
    assert ok(tusk("list-file", "streamed", "master")) == print_table(
        ("NAME", "TYPE", "SIZE"), at_root
    )
    raw = ok(tusk("list-file", "streamed", "master", "/d", "--raw"))
    assert raw == "".join(render_json(f.model_dump(mode="json")) + "\n" for f in files)


def test_walk_and_glob_listings_match_the_typed_answer(
    tusk: Tusk, tusk_server: dict[str, str], many: str
) -> None:
    with Client(tusk_server["TUSK_ADDRESS"], timeout=60) as c:
        matches = c.glob_file("streamed", "master", "/d/*")
    rows = [(f.path, f.type, bytes_size(f.size_bytes)) for f in matches]
    assert ok(tusk("glob-file", "streamed", "master", "/d/*")) == print_table(
        ("NAME", "TYPE", "SIZE"), rows
    )


def test_get_file_recursive_writes_every_file(tusk: Tusk, many: str, tmp_path: object) -> None:
    from pathlib import Path

    dest = Path(str(tmp_path)) / "out"
    ok(tusk("get-file", "-r", "-o", str(dest), "streamed", "master", "/b"))
    assert (dest / "c.txt").read_bytes() == b"c"


def test_errors_of_reads_keep_their_messages_and_exit_codes(tusk: Tusk, many: str) -> None:
    fails(tusk("list-file", "streamed", "master", "/nope"), 3, "file /nope not found")
    fails(tusk("list-file", "nope", "master"), 3, "nope")
    fails(tusk("glob-file", "streamed", "master", "/d/[x"), 2, "")
    fails(tusk("inspect-commit", "streamed", "nobranch"), 3, "nobranch")
    fails(tusk("get-file", "streamed", "master", "/nope"), 3, "/nope")


def test_a_reader_that_stops_early_ends_the_listing_quietly(
    tusk_server: dict[str, str], many: str
) -> None:
    cmd = " ".join([*CLI, "list-file", "streamed", "master", "/d"]) + " | head -n 3"
    run = subprocess.run(
        ["sh", "-c", cmd], capture_output=True, text=True, env=clean_env(tusk_server), timeout=60
    )
    assert run.stdout.splitlines()[0].split() == ["NAME", "TYPE", "SIZE"]
    assert len(run.stdout.splitlines()) == 3
    assert "Traceback" not in run.stderr and "Exception" not in run.stderr, run.stderr
