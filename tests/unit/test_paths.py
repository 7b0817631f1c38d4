import itertools
import posixpath

import pytest

from tusk.errors import InvalidName, InvalidPath
from tusk.pfs.paths import (
    clean_path,
    join_path,
    parent_and_name,
    split_path,
    validate_branch_name,
    validate_repo_name,
)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("", "/"),
        ("/", "/"),
        ("//", "/"),
        ("a", "/a"),
        ("/a/", "/a"),
        ("a//b///c/", "/a/b/c"),
        ("./a/./b", "/a/b"),
        ("/a/b.txt", "/a/b.txt"),
        ("/.hidden/...", "/.hidden/..."),
        ("/with space/é", "/with space/é"),
    ],
)
def test_clean_path_canonical_form(raw: str, clean: str) -> None:
    assert clean_path(raw) == clean


@pytest.mark.parametrize("char", list("*?[]{}!"))
def test_glob_characters_are_rejected_with_1_7_message(char: str) -> None:
    with pytest.raises(InvalidPath) as e:
        clean_path(f"/dir/fi{char}le")
    assert e.value.message == (
        f"path (/dir/fi{char}le) invalid: globbing character ({char}) not allowed in path"
    )
    assert e.value.hint


@pytest.mark.parametrize("raw", ["/a/../b", "..", "/a/..", "../x"])
def test_dotdot_is_rejected(raw: str) -> None:
    with pytest.raises(InvalidPath, match=r"'\.\.'"):
        clean_path(raw)


@pytest.mark.parametrize("raw", ["/a\tb", "/a\nb", "/a\x00", "/\x7f", "/a\x85b"])
def test_non_printable_is_rejected(raw: str) -> None:
    with pytest.raises(InvalidPath, match="non-printable"):
        clean_path(raw)


def test_root_is_not_a_file_name() -> None:
    assert clean_path("/", allow_root=True) == "/"
    with pytest.raises(InvalidPath, match="needs a name"):
        clean_path("//", allow_root=False)


def test_split_join_parent() -> None:
    assert split_path("/") == []
    assert split_path("/a/b") == ["a", "b"]
    assert join_path("/", "a") == "/a"
    assert join_path("/a", "b") == "/a/b"
    assert parent_and_name("/a") == ("/", "a")
    assert parent_and_name("/a/b/c") == ("/a/b", "c")


@pytest.mark.parametrize("name", ["images", "edges_2", "A-b_C-9", "__spec__"])
def test_valid_repo_and_branch_names(name: str) -> None:
    assert validate_repo_name(name) == name
    assert validate_branch_name(name) == name


@pytest.mark.parametrize("name", ["", "a b", "a/b", "a.b", "ü", "a:b"])
def test_invalid_repo_name_message(name: str) -> None:
    with pytest.raises(InvalidName) as e:
        validate_repo_name(name)
    assert e.value.message == (
        f"repo name ({name}) invalid: only alphanumeric characters, underscores, and dashes "
        "are allowed"
    )


@pytest.mark.parametrize("name", ["master^", "master~2", "a b", ""])
def test_invalid_branch_name(name: str) -> None:
    with pytest.raises(InvalidName, match=r"^branch name \(.*\) invalid: only alphanumeric"):
        validate_branch_name(name)


def test_branch_name_with_ancestry_marker_explains_it() -> None:
    with pytest.raises(InvalidName) as e:
        validate_branch_name("master^")
    assert e.value.hint is not None and "ancestry" in e.value.hint


def test_branch_name_may_not_look_like_a_commit_id() -> None:
    with pytest.raises(InvalidName, match="looks like a commit id"):
        validate_branch_name("0123456789abcdef0123456789abcdef")
    # 31 hex characters are a fine branch name.
    assert validate_branch_name("0123456789abcdef0123456789abcde")


def test_a_worker_takes_exactly_the_canonical_absolute_paths_of_a_task() -> None:
    # what a datum task's input paths must be: absolute and as posixpath.normpath leaves them;
    # every path of up to 6 characters of "/", ".", "a" and NUL
    from tusk.worker.files import DatumFailed, check_repo_path

    paths = ["".join(p) for n in range(7) for p in itertools.product("/.a\x00", repeat=n)]
    for path in paths:
        canonical = (
            path.startswith("/")
            and not path.startswith("//")
            and "\x00" not in path
            and posixpath.normpath(path) == path
        )
        try:
            assert check_repo_path(path, "input file") == path and canonical, path
        except DatumFailed as e:
            assert not canonical and str(e) == f"invalid input file path {path!r}", path
