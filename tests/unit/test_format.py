"""pachctl 1.7, go-units and tabwriter output, reproduced exactly (tusk.cli.units, tables, jsonpb)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

from tusk.cli.jsonpb import (
    proto_duration_json,
    proto_duration_text,
    proto_timestamp_json,
    render_json,
)
from tusk.cli.tables import HeaderTabWriter, Table, TabWriter, print_table
from tusk.cli.units import (
    ago,
    bytes_size,
    format_duration_go,
    go_duration_string,
    go_format_g,
    human_duration,
    human_duration_ns,
    time_difference,
)

JOB_HEADERS = [
    "ID",
    "OUTPUT COMMIT",
    "STARTED",
    "DURATION",
    "RESTART",
    "PROGRESS",
    "DL",
    "UL",
    "STATE",
]

# Real `pachctl list-job` output (seed document); trailing whitespace was lost in the markdown.
SEED_LIST_JOB = """\
ID                               OUTPUT COMMIT                                   STARTED            DURATION           RESTART PROGRESS  DL       UL       STATE
e703fbf87fa64c5f85d2aa92bfe21aeb infer/64ad489e235c4b7aa20cb9ee17440582          7 seconds ago      3 seconds          0       2 + 0 / 2 805B     443B     success
95ffa9892cdc467e8c883beef607f50e qcontrol/3562c1d88c1d4447acc78f081937e492       7 seconds ago      1 second           0       1 + 0 / 1 27.99KiB 236B     success
4a118b08e0c54b02a2d171b5e9181955 model/63b05283dfb14ff985fb90b977354f64          7 seconds ago      Less than a second 0       1 + 0 / 1 40.65KiB 207B     success
e50dd8f302b34714b419380031ff76ab infer/2477107b608d452482f2191730e527ba          About a minute ago 7 seconds          0       2 + 0 / 2 805B     443B     success
e5f3074e730548f4ad76503596764c5c qcontrol/e028fdb44454443b8a04abe6ebfb62a5       7 minutes ago      16 seconds         0       1 + 0 / 1 27.99KiB 236B     success
def45a07da9c4157a503ec8c657d99b3 qc_pre_process/17d387a9cfa140b0a3801f99ed5fb63d 7 minutes ago      16 seconds         0       1 + 0 / 1 4.586KiB 27.78KiB success
60e3086e7d9f4f50b50cc8a49394d4a2 model/bb0a351c6975476abe8643dd5448c2e4          7 minutes ago      18 seconds         0       1 + 0 / 1 40.97KiB 207B     success
"""

SEED_ROWS = [
    # id, output commit, started, duration, restart, (processed, skipped, total), dl, ul, state
    ("e703fbf87fa64c5f85d2aa92bfe21aeb", "infer/64ad489e235c4b7aa20cb9ee17440582",
     "7 seconds ago", "3 seconds", 0, (2, 0, 2), "805B", "443B", "success"),
    ("95ffa9892cdc467e8c883beef607f50e", "qcontrol/3562c1d88c1d4447acc78f081937e492",
     "7 seconds ago", "1 second", 0, (1, 0, 1), "27.99KiB", "236B", "success"),
    ("4a118b08e0c54b02a2d171b5e9181955", "model/63b05283dfb14ff985fb90b977354f64",
     "7 seconds ago", "Less than a second", 0, (1, 0, 1), "40.65KiB", "207B", "success"),
    ("e50dd8f302b34714b419380031ff76ab", "infer/2477107b608d452482f2191730e527ba",
     "About a minute ago", "7 seconds", 0, (2, 0, 2), "805B", "443B", "success"),
    ("e5f3074e730548f4ad76503596764c5c", "qcontrol/e028fdb44454443b8a04abe6ebfb62a5",
     "7 minutes ago", "16 seconds", 0, (1, 0, 1), "27.99KiB", "236B", "success"),
    ("def45a07da9c4157a503ec8c657d99b3", "qc_pre_process/17d387a9cfa140b0a3801f99ed5fb63d",
     "7 minutes ago", "16 seconds", 0, (1, 0, 1), "4.586KiB", "27.78KiB", "success"),
    ("60e3086e7d9f4f50b50cc8a49394d4a2", "model/bb0a351c6975476abe8643dd5448c2e4",
     "7 minutes ago", "18 seconds", 0, (1, 0, 1), "40.97KiB", "207B", "success"),
]  # fmt: skip


def _seed_table_rows() -> list[list[str]]:
    rows = []
    for job_id, out, started, dur, restart, (p, s, t), dl, ul, state in SEED_ROWS:
        rows.append([job_id, out, started, dur, str(restart), f"{p} + {s} / {t}", dl, ul, state])
    return rows


# ---------------------------------------------------------------------------------------------
# list-job table
# ---------------------------------------------------------------------------------------------


def test_list_job_seed_block_exact() -> None:
    table = Table(JOB_HEADERS)
    for row in _seed_table_rows():
        table.add(row)
    out = table.render()
    stripped = "".join(line.rstrip(" ") + "\n" for line in out.splitlines())
    assert stripped == SEED_LIST_JOB


def test_list_job_trailing_padding_and_widths() -> None:
    out = print_table(JOB_HEADERS, _seed_table_rows())
    lines = out.split("\n")
    assert lines[-1] == ""  # ends with a newline
    lines = lines[:-1]
    assert len(lines) == 8
    # STATE is tab-terminated, so it is a padded column: width len("success") + 1.
    assert lines[0].endswith("STATE   ")
    assert all(line.endswith("success ") for line in lines[1:])
    assert len({len(line) for line in lines}) == 1
    # PROGRESS column = len("1 + 0 / 1") + 1
    assert "RESTART PROGRESS  DL" in lines[0]
    assert lines[0].index("OUTPUT COMMIT") == 33


def test_table_same_as_go_header_string() -> None:
    table = Table(JOB_HEADERS)
    assert table.header_line == (
        "ID\tOUTPUT COMMIT\tSTARTED\tDURATION\tRESTART\tPROGRESS\tDL\tUL\tSTATE\t\n"
    )


def test_print_table_writes_file() -> None:
    buf = io.StringIO()
    text = print_table(["NAME", "CREATED", "SIZE"], [["images", "2 minutes ago", "57.27KiB"]], buf)
    assert buf.getvalue() == text
    assert text == ("NAME   CREATED       SIZE     \nimages 2 minutes ago 57.27KiB \n")


def test_table_empty_rows_header_only() -> None:
    assert Table(["BRANCH", "HEAD"]).render() == "BRANCH HEAD \n"


def test_table_cell_wider_than_header() -> None:
    out = print_table(["A", "B"], [["a-very-long-cell", "x"], ["", "yy"]])
    assert out == ("A                B  \na-very-long-cell x  \n                 yy \n")


def test_header_reprinted_every_50_lines() -> None:
    rows = [[str(i), "x" * (1 if i < 49 else 5)] for i in range(120)]
    out = print_table(["N", "V"], rows)
    lines = out.splitlines()
    header_idx = [i for i, line in enumerate(lines) if line.startswith("N ")]
    # header + 49 rows per block (pkg/tabwriter counts the header line toward termHeight=50)
    assert header_idx == [0, 50, 100]
    assert len(lines) == 120 + 3
    # widths are computed per flushed block
    assert lines[0] == "N  V "
    assert lines[1] == "0  x "
    assert lines[50] == "N  V     "
    assert lines[51] == "49 xxxxx "


def test_header_repeat_can_be_disabled() -> None:
    rows = [[str(i)] for i in range(120)]
    out = print_table(["N"], rows, repeat_header=False)
    lines = out.splitlines()
    assert lines.count("N   ") == 1
    assert len(lines) == 121
    assert lines[1] == "0   "


def test_table_add_raw_unterminated_last_cell() -> None:
    # 1.7 datum rows are "%s\t%s\t%s\n" while the header is "ID\tSTATUS\tTIME\t\n": TIME is
    # only padded in the header line.
    t = Table(["ID", "STATUS", "TIME"])
    t.add_raw("abc\tsuccess\t1 second\n")
    t.add_raw("d\tfailed\t-\n")
    assert t.render() == ("ID  STATUS  TIME \nabc success 1 second\nd   failed  -\n")


# ---------------------------------------------------------------------------------------------
# raw tabwriter semantics
# ---------------------------------------------------------------------------------------------


def test_tabwriter_column_blocks() -> None:
    tw = TabWriter(0, 1, 1, " ")
    tw.write("a\tb\tc\n")
    tw.write("aaa\tbbbb\n")
    tw.write("x\n")  # single cell line terminates all blocks (and flushes)
    tw.write("longer\ty\t\n")
    tw.write("z\t\n")
    assert tw.flush() == ("a   b c\naaa bbbb\nx\nlonger y \nz      \n")


def test_tabwriter_partial_last_line_and_padding_options() -> None:
    tw = TabWriter(5, 1, 2, ".")
    tw.write("a\tb\nccc\tdd")
    assert tw.flush() == "a....b\nccc..dd"
    tw = TabWriter(0, 1, 1, " ", align_right=True)
    tw.write("a\tbbb\t\nccc\td\t\n")
    assert tw.flush() == "   a bbb\n ccc   d\n"  # no trailing pad when right-aligned


def test_tabwriter_counts_runes() -> None:
    tw = TabWriter()
    tw.write("héllo\tx\t\nµ\ty\t\n")
    assert tw.flush() == "héllo x \nµ     y \n"


def test_header_tab_writer_requires_newline() -> None:
    with pytest.raises(ValueError):
        HeaderTabWriter("A\tB\t")


def test_header_tab_writer_streaming_fragments() -> None:
    w = HeaderTabWriter("ID\tSTATE\t\n")
    w.write("abcdef\t")
    w.write("ok\t\n")
    assert w.flush() == "ID     STATE \nabcdef ok    \n"


# ---------------------------------------------------------------------------------------------
# bytes_size
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "0B"),
        (1, "1B"),
        (43, "43B"),
        (236, "236B"),
        (805, "805B"),
        (1000, "1000B"),
        (1023, "1023B"),
        (1024, "1KiB"),
        (1025, "1.001KiB"),
        (1536, "1.5KiB"),
        (4696, "4.586KiB"),
        (28662, "27.99KiB"),
        (28447, "27.78KiB"),
        (41626, "40.65KiB"),
        (41954, "40.97KiB"),
        (58645, "57.27KiB"),
        (1346372, "1.284MiB"),
        (102400, "100KiB"),
        (1048575, "1024KiB"),  # 1023.999 KiB rounds to 4 significant digits
        (1048576, "1MiB"),
        (1024**3, "1GiB"),
        (5 * 1024**4, "5TiB"),
        (1024**5, "1PiB"),
        (2**63 - 1, "8EiB"),
        (2**64 - 1, "16EiB"),
        (1024**8, "1YiB"),
        (1024**9, "1024YiB"),
        (12000 * 1024**8, "1.2e+04YiB"),
    ],
)
def test_bytes_size(n: int, expected: str) -> None:
    assert bytes_size(n) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1023.5, "1024"),  # exact tie -> round half to even (3 is odd -> up)
        (1022.5, "1022"),  # exact tie -> even stays
        (999.96, "1000"),
        (100.0, "100"),
        (27.99, "27.99"),
        (1.5, "1.5"),
        (0.0, "0"),
        (-5.0, "-5"),
        (12345.0, "1.234e+04"),  # exact tie -> round half to even
        (0.0001234, "0.0001234"),
        (0.00001234, "1.234e-05"),
        (1e21, "1e+21"),
    ],
)
def test_go_format_g(value: float, expected: str) -> None:
    assert go_format_g(value, 4) == expected


# ---------------------------------------------------------------------------------------------
# human_duration / ago
# ---------------------------------------------------------------------------------------------

MIN = 60
HOUR = 3600
DAY = 86400


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (-5, "Less than a second"),
        (0, "Less than a second"),
        (0.45, "Less than a second"),
        (0.999999999, "Less than a second"),
        (1, "1 second"),
        (1.9, "1 second"),
        (2, "2 seconds"),
        (47, "47 seconds"),
        (59, "59 seconds"),
        (59.9, "59 seconds"),
        (60, "About a minute"),
        (89, "About a minute"),
        (90, "About a minute"),
        (119.9, "About a minute"),
        (120, "2 minutes"),
        (35 * MIN + 40, "35 minutes"),
        (45 * MIN, "45 minutes"),
        (45 * MIN + 59, "45 minutes"),
        (46 * MIN, "About an hour"),
        (59 * MIN, "About an hour"),
        (HOUR, "About an hour"),
        (HOUR + 29 * MIN, "About an hour"),
        (HOUR + 29 * MIN + 59, "About an hour"),
        (HOUR + 30 * MIN, "2 hours"),
        (HOUR + 31 * MIN, "2 hours"),
        (3 * HOUR + 29 * MIN, "3 hours"),
        (3 * HOUR + 31 * MIN, "4 hours"),
        (24 * HOUR, "24 hours"),
        (36 * HOUR, "36 hours"),
        (47 * HOUR, "47 hours"),
        (47 * HOUR + 29 * MIN, "47 hours"),
        (47 * HOUR + 30 * MIN, "2 days"),
        (2 * DAY, "2 days"),
        (7 * DAY, "7 days"),
        (13 * DAY, "13 days"),
        (13 * DAY + 5 * HOUR, "13 days"),
        (14 * DAY, "2 weeks"),
        (30 * DAY, "4 weeks"),
        (44 * DAY, "6 weeks"),
        (59 * DAY, "8 weeks"),
        (60 * DAY, "2 months"),
        (365 * DAY, "12 months"),
        (729 * DAY, "24 months"),
        (730 * DAY, "2 years"),
        (3 * 365 * DAY + 60 * DAY, "3 years"),
    ],
)
def test_human_duration(seconds: float, expected: str) -> None:
    assert human_duration(seconds) == expected


def test_human_duration_timedelta_and_ns() -> None:
    assert human_duration(timedelta(minutes=3)) == "3 minutes"
    assert human_duration(timedelta(days=2 * 365)) == "2 years"
    assert human_duration_ns(999_999_999) == "Less than a second"
    assert human_duration_ns(1_000_000_000) == "1 second"


def test_ago_and_time_difference() -> None:
    now = datetime(2018, 6, 1, 12, 0, 0, tzinfo=UTC)
    assert ago(now - timedelta(seconds=7), now) == "7 seconds ago"
    assert ago(now - timedelta(seconds=75), now) == "About a minute ago"
    assert ago(now - timedelta(minutes=7, seconds=30), now) == "7 minutes ago"
    assert ago(now, now) == "Less than a second ago"
    assert ago(now + timedelta(seconds=10), now) == "Less than a second ago"  # clock skew
    # naive datetimes are UTC
    assert ago(datetime(2018, 6, 1, 11, 0, 0), now) == "About an hour ago"
    # a missing proto timestamp is the Unix epoch in Go
    assert ago(None, now) == "48 years ago"
    assert ago(datetime.now(UTC) - timedelta(seconds=3)).endswith("seconds ago")
    start = datetime(2018, 6, 1, 11, 59, 44, tzinfo=UTC)
    assert time_difference(start, now) == "16 seconds"


# ---------------------------------------------------------------------------------------------
# Go duration strings
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ns", "expected"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1_100, "1.1µs"),
        (2_200_000, "2.2ms"),
        (150_000_000, "150ms"),
        (3_200_000_000, "3.2s"),
        (65_000_000_000, "1m5s"),
        (3_600_000_000_000, "1h0m0s"),
        (4_000_000_000 + 3_600_000_000_000 * 2 + 60_000_000_000 * 3, "2h3m4s"),
        (-1_500_000_000, "-1.5s"),
        (5_000_000_001, "5.000000001s"),
    ],
)
def test_go_duration_string(ns: int, expected: str) -> None:
    assert go_duration_string(ns) == expected


def test_format_duration_go_seconds() -> None:
    assert format_duration_go(3.2) == "3.2s"
    assert format_duration_go(65) == "1m5s"
    assert format_duration_go(0.15) == "150ms"
    assert format_duration_go(timedelta(hours=1, seconds=0.5)) == "1h0m0.5s"


# ---------------------------------------------------------------------------------------------
# JSON (--raw)
# ---------------------------------------------------------------------------------------------


def test_render_json_layout() -> None:
    obj = {
        "commit": {"repo": {"name": "images"}, "id": "abc"},
        "sizeBytes": "57",
        "provenance": [{"repo": {"name": "a"}, "id": "1"}, {"repo": {"name": "b"}, "id": "2"}],
        "flag": True,
        "ratio": 0.5,
    }
    assert render_json(obj) == (
        "{\n"
        '  "commit": {\n'
        '    "repo": {\n'
        '      "name": "images"\n'
        "    },\n"
        '    "id": "abc"\n'
        "  },\n"
        '  "sizeBytes": "57",\n'
        '  "provenance": [\n'
        "    {\n"
        '      "repo": {\n'
        '        "name": "a"\n'
        "      },\n"
        '      "id": "1"\n'
        "    },\n"
        "    {\n"
        '      "repo": {\n'
        '        "name": "b"\n'
        "      },\n"
        '      "id": "2"\n'
        "    }\n"
        "  ],\n"
        '  "flag": true,\n'
        '  "ratio": 0.5\n'
        "}"
    )


def test_render_json_empty_and_scalars() -> None:
    assert render_json({}) == "{\n}"
    assert render_json({"a": {}, "b": []}) == '{\n  "a": {\n  },\n  "b": [\n  ]\n}'
    assert render_json({"n": None, "i": 3, "f": 1.0, "g": 1e21, "h": 1e-7}) == (
        '{\n  "n": null,\n  "i": 3,\n  "f": 1,\n  "g": 1e+21,\n  "h": 1e-7\n}'
    )
    assert render_json(1e20) == "100000000000000000000"
    assert render_json(-0.0) == "-0"


def test_render_json_go_string_escaping() -> None:
    s = 'a<b>&"\\\n\t\r\x01\x08\x0c\u2028é'
    assert (
        render_json(s) == '"a\\u003cb\\u003e\\u0026\\"\\\\\\n\\t\\r\\u0001\\u0008\\u000c\\u2028é"'
    )
    with pytest.raises(ValueError):
        render_json(float("nan"))
    with pytest.raises(TypeError):
        render_json({"x": object()})


def test_proto_duration_text_as_go_prints_a_duration_pointer() -> None:
    assert proto_duration_text(None) == "<nil>"
    assert proto_duration_text(60.0) == "seconds:60 "
    assert proto_duration_text(90.5) == "seconds:90 nanos:500000000 "
    assert proto_duration_text(0.25) == "nanos:250000000 "


def test_proto_duration_and_timestamp_json() -> None:
    assert proto_duration_json(300) == "300.000s"
    assert proto_duration_json(1.5) == "1.500s"
    assert proto_duration_json(0.000001) == "0.000001s"
    assert proto_duration_json(timedelta(seconds=2, microseconds=1)) == "2.000001s"
    ts = datetime(2018, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert proto_timestamp_json(ts) == "2018-05-01T12:00:00.000Z"
    assert proto_timestamp_json(ts.replace(microsecond=123000)) == "2018-05-01T12:00:00.123Z"
    assert proto_timestamp_json(ts.replace(microsecond=123456)) == "2018-05-01T12:00:00.123456Z"
