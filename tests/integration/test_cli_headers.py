"""put-header / put-footer and ``put-file --split sql`` through the real CLI against a real
tuskd: directory headers read around files and directories, an empty line removes them, and a
pipeline's datum sees each split chunk as a complete SQL file that real PostgreSQL runs."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import psycopg

from .conftest import Tusk, atom, fails, ok, rows, spec

POSTGRES_URL = os.environ.get("TUSK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

DUMP = """--
-- PostgreSQL database dump
--
SET statement_timeout = 0;
CREATE TABLE cars (id integer, name text);
COPY cars (id, name) FROM stdin;
1\tbeetle
2\tmini
3\tfiat
\\.
ALTER TABLE ONLY cars ADD CONSTRAINT cars_pkey PRIMARY KEY (id);
--
-- PostgreSQL database dump complete
--
"""
HEADER, _, REST = DUMP.partition("1\tbeetle\n")
FOOTER = REST[REST.index("\\.\n") :]
ROWS = ["1\tbeetle\n", "2\tmini\n", "3\tfiat\n"]


def sizes(tusk: Tusk, repo: str, path: str) -> dict[str, str]:
    return {r[0]: r[2] for r in rows(ok(tusk("list-file", repo, "master", path)))[1:]}


def test_put_header_and_footer_read_around_files_and_directory(tusk: Tusk, tmp_path: Path) -> None:
    ok(tusk("create-repo", "hdr"))
    ok(tusk("put-file", "hdr", "master", "/d/a", input="A\n"))
    ok(tusk("put-file", "hdr", "master", "/d/b", input="B\n"))
    fails(
        tusk("get-file", "hdr", "master", "/d"), 2, "cannot read directory /d, no header or footer"
    )

    ok(tusk("put-header", "hdr", "master", "/d", "-f", "-", input="-- head\n"))
    footer = tmp_path / "footer.txt"
    footer.write_text("-- foot\n")
    ok(tusk("put-footer", "hdr", "master", "/d", "-f", str(footer)))
    assert ok(tusk("get-file", "hdr", "master", "/d/a")) == "-- head\nA\n-- foot\n"
    assert ok(tusk("get-file", "hdr", "master", "/d")) == "-- head\nA\nB\n-- foot\n"
    assert ok(tusk("get-file", "hdr", "master", "/d/*")) == "-- head\nA\nB\n-- foot\n"
    # list-file shows the stored sizes; each put-header made a commit, as put-file does
    assert sizes(tusk, "hdr", "/d") == {"/d/a": "2B", "/d/b": "2B"}
    assert len(rows(ok(tusk("list-commit", "hdr")))) - 1 == 4
    # get-file -r downloads each file as it reads
    ok(tusk("get-file", "-r", "hdr", "master", "/d", "-o", str(tmp_path / "out")))
    assert (tmp_path / "out" / "a").read_text() == "-- head\nA\n-- foot\n"

    # piping an empty line removes it (echo "" | pachctl put-header ...)
    ok(tusk("put-header", "hdr", "master", "/d", input="\n"))
    assert ok(tusk("get-file", "hdr", "master", "/d/a")) == "A\n-- foot\n"
    ok(tusk("put-footer", "hdr", "master", "/d", input="\n"))
    assert ok(tusk("get-file", "hdr", "master", "/d/a")) == "A\n"
    fails(tusk("get-file", "hdr", "master", "/d"), 2, "no header or footer")

    # bad input: a file is not a directory; a missing local file; nothing is committed
    before = len(rows(ok(tusk("list-commit", "hdr"))))
    fails(tusk("put-header", "hdr", "master", "/d/a", input="h\n"), 5, "/d/a is a file")
    fails(tusk("put-footer", "hdr", "master", "/d", "-f", str(tmp_path / "nope")), 7, "nope")
    fails(tusk("put-header", "nosuchrepo", "master", "/d", input="h\n"), 3, "nosuchrepo")
    assert len(rows(ok(tusk("list-commit", "hdr")))) == before


def test_split_sql_round_trip_and_a_pipeline_reads_runnable_chunks(tusk: Tusk) -> None:
    ok(tusk("create-repo", "pgdumps"))
    ok(tusk("put-file", "pgdumps", "master", "/cars", "--split", "sql", input=DUMP))
    names = sorted(sizes(tusk, "pgdumps", "/cars"))
    assert names == [f"/cars/{i:016x}" for i in range(3)]
    # stored chunks hold their row only; reading adds the directory's header and footer
    assert list(sizes(tusk, "pgdumps", "/cars").values()) == [f"{len(r)}B" for r in ROWS]
    assert ok(tusk("get-file", "pgdumps", "master", "/cars")) == DUMP
    assert ok(tusk("get-file", "pgdumps", "master", names[1])) == HEADER + ROWS[1] + FOOTER

    # each datum is one chunk, seen in /pfs/pgdumps with header and footer
    cmd = "for f in /pfs/pgdumps/cars/*; do cp $f /pfs/out/$(basename $f).sql; done"
    ok(tusk("create-pipeline", input=spec("sqlchunks", cmd, atom("pgdumps", "/cars/*"))))
    head = rows(ok(tusk("list-commit", "pgdumps")))[1][1]
    ok(tusk("flush-commit", f"pgdumps/{head}", timeout=300))
    out = sorted(sizes(tusk, "sqlchunks", "/"))  # 1.7 lists the root's files without a slash
    assert out == [f"{i:016x}.sql" for i in range(3)]
    chunks = [ok(tusk("get-file", "sqlchunks", "master", "/" + p)) for p in out]
    assert chunks == [HEADER + r + FOOTER for r in ROWS]

    # and each one is a complete dump that real PostgreSQL loads
    for i, chunk in enumerate(chunks):
        assert load_with_psql(chunk) == [(i + 1, ROWS[i].split("\t")[1].strip())]


def load_with_psql(sql: str) -> list[tuple[int, str]]:
    """Run ``sql`` with psql in a fresh schema; the rows of its table ``cars``."""
    schema = "tusk_hdr_" + uuid.uuid4().hex[:12]
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        try:
            env = {**os.environ, "PGOPTIONS": f"-csearch_path={schema}"}
            proc = subprocess.run(
                ["psql", POSTGRES_URL, "-v", "ON_ERROR_STOP=1", "-q", "-f", "-"],
                input=sql.encode(),
                capture_output=True,
                env=env,
                timeout=60,
            )
            assert proc.returncode == 0, proc.stderr.decode()
            got = conn.execute(f"SELECT id, name FROM {schema}.cars ORDER BY id").fetchall()
            return [(int(r[0]), str(r[1])) for r in got]
        finally:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
