import pytest

from tusk.errors import InvalidArgument
from tusk.pfs.glob import compile_glob

PATHS = ["/", "/foo-1", "/foo-2", "/bar", "/bar/bar-1", "/bar/bar-2"]


@pytest.mark.parametrize(
    ("pattern", "matches"),
    [
        ("/", ["/"]),
        ("", ["/"]),
        ("/*", ["/foo-1", "/foo-2", "/bar"]),
        ("*", ["/foo-1", "/foo-2", "/bar"]),
        ("/bar/*", ["/bar/bar-1", "/bar/bar-2"]),
        ("/*/*", ["/bar/bar-1", "/bar/bar-2"]),
        ("/foo*", ["/foo-1", "/foo-2"]),
        ("/**", ["/foo-1", "/foo-2", "/bar", "/bar/bar-1", "/bar/bar-2"]),
        ("/bar/**", ["/bar/bar-1", "/bar/bar-2"]),
        ("/**-1", ["/foo-1", "/bar/bar-1"]),
        ("/foo-?", ["/foo-1", "/foo-2"]),
        ("/foo-[1]", ["/foo-1"]),
        ("/foo-[!1]", ["/foo-2"]),
        ("/foo-[0-9]", ["/foo-1", "/foo-2"]),
        ("/{foo-1,bar}", ["/foo-1", "/bar"]),
        ("/{foo,bar}*", ["/foo-1", "/foo-2", "/bar"]),
        ("/bar/", ["/bar"]),
        ("bar//bar-1", ["/bar/bar-1"]),
        ("/nothing", []),
    ],
)
def test_pachyderm_glob_semantics(pattern: str, matches: list[str]) -> None:
    g = compile_glob(pattern)
    assert [p for p in PATHS if g.match(p)] == matches


def test_single_star_and_question_mark_do_not_cross_slash() -> None:
    assert not compile_glob("/a*").match("/ab/c")
    assert not compile_glob("/a?c").match("/a/c")
    assert not compile_glob("/a[!x]c").match("/a/c")
    assert compile_glob("/a**").match("/ab/c")


def test_escapes_match_literally() -> None:
    g = compile_glob(r"/a\*b")
    assert g.match("/a*b")
    assert not g.match("/axb")
    assert g.is_literal


def test_literal_prefix_and_is_literal() -> None:
    assert compile_glob("/a/b/c").is_literal
    assert compile_glob("/a/b/c").literal_prefix_parts == ("a", "b", "c")
    g = compile_glob("/a/b/*/d")
    assert not g.is_literal
    assert g.literal_prefix_parts == ("a", "b")
    assert compile_glob("/*").literal_prefix_parts == ()


def test_could_match_under_prunes_impossible_subtrees() -> None:
    g = compile_glob("/*/data/*.csv")
    assert g.could_match_under("/")
    assert g.could_match_under("/x")
    assert g.could_match_under("/x/data")
    assert not g.could_match_under("/x/other")
    assert not g.could_match_under("/x/data/y")  # would be too deep
    assert not compile_glob("/*").could_match_under("/x")
    assert compile_glob("/a/**").could_match_under("/a/b/c/d")
    assert not compile_glob("/a/**").could_match_under("/b")
    # A "/" inside braces: no pruning, but matching is still right.
    g = compile_glob("/{a/b,c}")
    assert g.could_match_under("/zzz")
    assert g.match("/a/b") and g.match("/c") and not g.match("/a")


def test_segment_literal_for_direct_lookups() -> None:
    g = compile_glob("/*/data/*")
    assert g.segment_literal(0) is None
    assert g.segment_literal(1) == "data"
    assert g.segment_literal(2) is None
    assert compile_glob("/**/data").segment_literal(1) is None


def test_patterns_are_cached() -> None:
    assert compile_glob("/cached/*") is compile_glob("/cached/*")


@pytest.mark.parametrize("bad", ["/[abc", "/{a,b", "/a]", "/[]"])
def test_malformed_patterns_raise(bad: str) -> None:
    with pytest.raises(InvalidArgument, match="glob pattern"):
        compile_glob(bad)
