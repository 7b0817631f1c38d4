"""pachctl 2.x's grammar: the argument forms and the 1.7 command line each 2.x line becomes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import click
import pytest

from tusk.cli import v2
from tusk.cli.main import cli
from tusk.errors import InvalidArgument


def lookup(name: str) -> click.Command | None:
    return cli.get_command(click.Context(cli), name)


def tr(line: str) -> list[str] | None:
    return v2.translate(line.split(), lookup)


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("images", v2.Ref("images")),
        ("images@master", v2.Ref("images", "master")),
        ("images@master^", v2.Ref("images", "master^")),
        ("images@master~2", v2.Ref("images", "master~2")),
        ("images@master:/a/b.png", v2.Ref("images", "master", "/a/b.png")),
        ("images@master:", v2.Ref("images", "master", "/")),
        ("images@master=0123abcd:/x", v2.Ref("images", "0123abcd", "/x")),
        ("images@master:/a:b", v2.Ref("images", "master", "/a:b")),
    ],
)
def test_parse_ref(text: str, ref: v2.Ref) -> None:
    assert v2.parse_ref(text) == ref


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("@master", "no repo name"),
        ("images@", "nothing after '@'"),
        ("images:/x", "a path needs a branch or commit"),
    ],
)
def test_parse_ref_refuses(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        v2.parse_ref(text)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("create repo images -d x", "create-repo images -d x"),
        ("list repo --raw", "list-repo --raw"),
        ("put file images@master:/a.png -f a.png", "put-file images master /a.png -o -f a.png"),
        ("put file images@master:/a -a -f a", "put-file images master /a -f a"),
        ("put file images@master -r -f dir", "put-file images master -o -r -f dir"),
        ("get file images@master:/a.png -o out", "get-file images master /a.png -o out"),
        ("get file -o out images@master:/a.png", "get-file images master /a.png -o out"),
        ("list file images@master", "list-file images master"),
        ("list file images@master:/dir --raw", "list-file images master /dir --raw"),
        ("glob file images@master:/*.png", "glob-file images master /*.png"),
        ("inspect commit images@master^", "inspect-commit images master^"),
        ("inspect commit images@master~2 --raw", "inspect-commit images master~2 --raw"),
        ("wait commit images@0123", "wait-commit images 0123"),
        ("list commit images@master", "list-commit images master"),
        ("list commit images", "list-commit images"),
        ("list commit " + "a" * 32, "list-commitset " + "a" * 32),
        ("list commit", "list-commitsets"),
        ("delete commit " + "d" * 32, "delete-commitset " + "d" * 32),
        ("squash commit " + "e" * 32, "squash-commitset " + "e" * 32),
        ("delete commit images@" + "d" * 32, "delete-commit images " + "d" * 32),
        ("inspect branch images@master", "inspect-branch images master"),
        ("list job", "list-jobsets"),
        ("list job --raw", "list-jobsets --raw"),
        ("list job -x", "list-job"),
        ("list job -x --raw", "list-job --raw"),
        ("list job -p edges", "list-job -p edges"),
        ("list job " + "b" * 32, "list-jobset " + "b" * 32),
        ("list job -p edges -i images@master", "list-job -p edges -i images/master"),
        ("inspect job edges@" + "c" * 32, "inspect-job " + "c" * 32 + " --pipeline edges"),
        ("create pipeline -f spec.json", "create-pipeline -f spec.json"),
        ("list pipeline", "list-pipeline"),
        ("logs --pipeline edges", "get-logs --pipeline edges"),
        ("logs --job edges@abc", "get-logs --job abc --pipeline edges"),
        ("logs -j abc --tail 3", "get-logs --tail 3 --job abc"),
        ("list datum edges@abc", "list-datum abc --pipeline edges"),
        ("create branch images@dev --head master", "create-branch images dev --head master"),
        ("create branch out@b -p images@master", "create-branch out b -p images/master"),
        ("list repo --project default", "list-repo"),
        ("create repo images --project lab", "create-repo lab/images"),
        ("list file images@master --project lab", "list-file lab/images master"),
        ("copy file a@m:/x b@n:/y", "copy-file a m /x b n /y"),
    ],
)
def test_translate(line: str, expected: str) -> None:
    assert tr(line) == expected.split()


@pytest.mark.parametrize(
    "line",
    ["list-repo", "put-file images master /a", "create-secret -f x", "version", "file", "repo"],
)
def test_17_lines_are_left_alone(line: str) -> None:
    assert tr(line) is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("get file images@master", "expected repo@branch-or-commit:/path"),
        ("get file images:/a", "a path needs a branch or commit"),
        ("inspect commit images", "expected repo@branch-or-commit"),
        ("put file", "expected put file"),
        ("create repo images --project", "--project needs a value"),
        ("list file a@m b@n", "got 2 arguments"),
        ("inspect branch images", "expected repo@branch-or-commit"),
        ("list commit a b", "got 2 arguments"),
        ("squash commit images@master", "squash commit takes a global id"),
        ("squash commit", "expected squash commit"),
    ],
)
def test_translate_refuses(line: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        tr(line)


@pytest.mark.parametrize(
    ("line", "rest", "full", "output"),
    [
        ("list repo", "list repo", False, "json"),
        ("list repo --full-timestamps", "list repo", True, "json"),
        ("list repo --raw -o yaml", "list repo --raw", False, "yaml"),
        ("list repo --raw --output=json", "list repo --raw", False, "json"),
        (
            "inspect repo r --raw --output yaml --full-timestamps",
            "inspect repo r --raw",
            True,
            "yaml",
        ),
        # get file's -o (a local path) and put file's (1.7's overwrite flag) are their own
        ("get file r@m:/a -o out", "get file r@m:/a -o out", False, "json"),
        ("get file r@m:/a -o json", "get file r@m:/a -o json", False, "json"),
        ("put file r@m:/a -o -f x", "put file r@m:/a -o -f x", False, "json"),
    ],
)
def test_display_options(line: str, rest: str, full: bool, output: str) -> None:
    args, grammar = v2.display_options(line.split())
    assert args == rest.split()
    assert (grammar.full_timestamps, grammar.output) == (full, output)


def test_display_options_refuse_an_unknown_output() -> None:
    with pytest.raises(InvalidArgument, match="unknown output format 'xml'"):
        v2.display_options(["list", "repo", "--raw", "-o", "xml"])


@pytest.mark.parametrize("line", ["list repo -o yaml", "inspect repo r --output=json"])
def test_display_options_refuse_an_output_without_raw(line: str) -> None:
    """pachctl 2.x: "cannot set --output (-o) without --raw"."""
    with pytest.raises(InvalidArgument, match=r"cannot set --output \(-o\) without --raw"):
        v2.display_options(line.split())


@pytest.mark.parametrize(
    ("counts", "bar"),
    [((0, 0, 0), " " * 8), ((3, 0, 0), "\u2587" * 8), ((1, 1, 1), "\u2587" * 8)],
)
def test_progress_bar(counts: tuple[int, int, int], bar: str) -> None:
    from tusk.cli.units import progress_bar

    assert progress_bar(8, *counts) == bar


@pytest.fixture
def local_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Set the process's local time zone (a POSIX ``TZ``: no zone files needed); put back after."""

    def use(tz: str) -> None:
        monkeypatch.setenv("TZ", tz)
        time.tzset()

    yield use
    monkeypatch.undo()
    time.tzset()


# 2024-07-19T00:20:39.75Z
MOMENT = datetime(2024, 7, 19, 0, 20, 39, 750000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("tz", "text"),
    [
        ("UTC0", "2024-07-19T00:20:39Z"),
        ("EDT+4", "2024-07-18T20:20:39-04:00"),
        ("IST-5:30", "2024-07-19T05:50:39+05:30"),
    ],
)
def test_rfc3339_as_go_formats_it(local_zone: Callable[[str], None], tz: str, text: str) -> None:
    """Go's ``Format(time.RFC3339)``: seconds truncated, ``Z`` for UTC, the local zone's offset
    with ``local`` (pachctl 2.12's ``list branch``); UTC without it (its ``inspect branch``)."""
    from tusk.cli.units import rfc3339

    local_zone(tz)
    assert rfc3339(MOMENT, local=True) == text
    assert rfc3339(MOMENT) == "2024-07-19T00:20:39Z"
    assert rfc3339(MOMENT.replace(tzinfo=None)) == "2024-07-19T00:20:39Z"  # naive: UTC


def test_branch_row_prints_the_creation_time_or_a_dash(local_zone: Callable[[str], None]) -> None:
    from tusk.cli.v2_tables import BRANCH_HEADER, branch_row

    local_zone("EDT+4")
    head = "7efc7c68e8444dff8ecdf6175d86ecee"
    made = {
        "branch": {"repo": "images", "name": "master"},
        "head": head,
        "created": MOMENT.isoformat(),
    }
    assert len(BRANCH_HEADER) == 5
    assert branch_row(made) == ("master", head, "-", "-", "2024-07-18T20:20:39-04:00")
    # from a server that does not send the time, and a branch without a head
    assert branch_row({"branch": {"repo": "images", "name": "dev"}, "head": None}) == (
        "dev",
        "-",
        "-",
        "-",
        "-",
    )


def test_branch_details_as_pachctl_2_12_prints_them() -> None:
    from tusk.api.models import BranchInfo, BranchKey
    from tusk.cli.v2_tables import branch_details

    head = "7efc7c68e8444dff8ecdf6175d86ecee"
    info = BranchInfo(
        branch=BranchKey(repo="lab/edges", name="master"),
        head=head,
        provenance=[BranchKey(repo="lab/images", name="master"), BranchKey(repo="b", name="x")],
        created=MOMENT,
    )
    assert branch_details(info) == (
        f"Name: edges@master\nHead Commit: edges@{head} \n"
        "Provenance: images@master b@x \n"
        "\n"  # "Created by": no users here
        "Created at: 2024-07-19T00:20:39Z\n"
    )
    bare = BranchInfo(branch=BranchKey(repo="images", name="dev"))
    assert branch_details(bare) == "Name: images@dev\n\n\n"
