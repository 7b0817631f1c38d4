"""Join and group inputs (Pachyderm 2.x semantics): capture-group keys, inner and outer joins,
groups, their order, and the spec checks that refuse what cannot work."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tusk.errors import InvalidArgument, InvalidSpec
from tusk.pfs.glob import compile_glob
from tusk.pfs.tree import EMPTY_ROOT, PutFile, Tree
from tusk.pps.datums import Datum, InputCommit, datum_hash, datum_id, enumerate_datums, expand_key
from tusk.pps.scheduling.git import check_url, imported_sha
from tusk.pps.spec import PipelineSpec, parse_specs
from tusk.storage.base import ChunkRef
from tusk.storage.hashing import file_hash, hash_bytes
from tusk.storage.local import LocalObjectStore

# -- the data: the shapes of Pachyderm's own join and group examples (stores, purchases, returns)


class Repos:
    """Real trees (in a real local object store) of a few input repos, one commit each."""

    def __init__(self, store: LocalObjectStore) -> None:
        self.store = store
        self.tree = Tree(store)
        self.commits: dict[tuple[str, str], InputCommit] = {}

    def add(self, repo: str, files: dict[str, str]) -> None:
        ops = []
        for path, text in files.items():
            data = text.encode()
            chunks = (ChunkRef(hash_bytes(data), self.store.put(data), 0, len(data)),)
            ops.append(PutFile(path, chunks, len(data), file_hash(chunks)))
        root = self.tree.apply(EMPTY_ROOT, ops)
        self.commits[(repo, "master")] = InputCommit(repo, "master", f"c-{repo}", root)

    def datums(self, inp: dict[str, Any]) -> list[Datum]:
        return enumerate_datums(input_of(inp), self.commits, self.tree)


def pipeline(inp: dict[str, Any]) -> dict[str, Any]:
    return {"pipeline": {"name": "p"}, "transform": {"cmd": ["true"]}, "input": inp}


def input_of(inp: dict[str, Any]) -> Any:
    return PipelineSpec.model_validate(pipeline(inp)).normalized().input


def pfs(repo: str, glob: str, **extra: Any) -> dict[str, Any]:
    return {"pfs": {"repo": repo, "glob": glob, **extra}}


def shape(datums: list[Datum]) -> list[list[tuple[str, str]]]:
    return [[(d.name, d.path) for d in datum] for datum in datums]


def key_order(keys: list[str]) -> list[str]:
    return sorted(keys, key=lambda k: hashlib.sha256(k.encode()).hexdigest())


@pytest.fixture
def repos(tmp_path: Path) -> Repos:
    r = Repos(LocalObjectStore(tmp_path / "objects", durable=False))
    r.add("stores", {f"/STOREID{i}.txt": f"store {i}" for i in (1, 2, 3)})
    r.add(
        "purchases",
        {
            "/P1_STOREID1.txt": "p1",
            "/P2_STOREID1.txt": "p2",
            "/P3_STOREID2.txt": "p3",
            "/P4_STOREID4.txt": "p4",
        },
    )
    r.add("returns", {"/R1_STOREID2.txt": "r1", "/R2_STOREID2.txt": "r2"})
    return r


STORES = pfs("stores", "/STOREID(*).txt", join_on="$1")
PURCHASES = pfs("purchases", "/*_STOREID(*).txt", join_on="$1")


# -- capture groups and keys


def test_capture_groups_in_globs() -> None:
    g = compile_glob("/(*)_(*).txt", True)
    assert g.regex.groups == 2
    m = g.regex.fullmatch("/P1_STOREID1.txt")
    assert m is not None and m.groups() == ("P1", "STOREID1")
    ext = compile_glob("/test/a*(a|b)/*(*).go", True)
    m = ext.regex.fullmatch("/test/aaaa/x.go")
    assert m is not None and m.groups() == ("aaa", "x")
    # Without captures (1.7's gobwas globs) parentheses are ordinary characters.
    assert compile_glob("/(a)").match("/(a)")
    assert not compile_glob("/(a)").match("/a")
    assert compile_glob("/(a|b)", True).match("/b")


@pytest.mark.parametrize("bad", ["/(*", "/a)", "/!(a)", "/(a|b"])
def test_malformed_capture_globs_are_refused(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        compile_glob(bad, True)


def test_expand_key() -> None:
    assert expand_key("$1", ("a", "b")) == "a"
    assert expand_key("$2-$1", ("a", "b")) == "b-a"
    assert expand_key("${1}0", ("a",)) == "a0"
    assert expand_key("$1$2", ("a", None)) == "a"


# -- join


def test_inner_join_pairs_matching_keys_only(repos: Repos) -> None:
    datums = repos.datums({"join": [STORES, PURCHASES]})
    by_key = {
        "1": [
            [("stores", "/STOREID1.txt"), ("purchases", "/P1_STOREID1.txt")],
            [("stores", "/STOREID1.txt"), ("purchases", "/P2_STOREID1.txt")],
        ],
        "2": [[("stores", "/STOREID2.txt"), ("purchases", "/P3_STOREID2.txt")]],
    }
    expected = [d for key in key_order(["1", "2"]) for d in by_key[key]]
    assert shape(datums) == expected  # store 3 and purchase 4 have no partner: no datum


def test_outer_join_keeps_unmatched_files_of_outer_children(repos: Repos) -> None:
    stores_outer = pfs("stores", "/STOREID(*).txt", join_on="$1", outer_join=True)
    datums = shape(repos.datums({"join": [stores_outer, PURCHASES]}))
    assert [("stores", "/STOREID3.txt")] in datums  # alone: no purchase for store 3
    assert [("purchases", "/P4_STOREID4.txt")] not in datums  # purchases is not outer
    assert len(datums) == 4
    both = pfs("purchases", "/*_STOREID(*).txt", join_on="$1", outer_join=True)
    datums = shape(repos.datums({"join": [stores_outer, both]}))
    assert [("purchases", "/P4_STOREID4.txt")] in datums
    assert len(datums) == 5


def test_join_of_three_and_duplicate_keys_give_every_combination(repos: Repos) -> None:
    returns = pfs("returns", "/*_STOREID(*).txt", join_on="$1")
    datums = shape(repos.datums({"join": [STORES, PURCHASES, returns]}))
    # Only store 2 is in all three: 1 store x 1 purchase x 2 returns, the last varying fastest.
    assert datums == [
        [("stores", "/STOREID2.txt"), ("purchases", "/P3_STOREID2.txt"), ("returns", r)]
        for r in ("/R1_STOREID2.txt", "/R2_STOREID2.txt")
    ]


def test_join_edge_cases(repos: Repos) -> None:
    nothing = pfs("stores", "/nothing-(*).txt", join_on="$1")
    assert repos.datums({"join": [nothing, PURCHASES]}) == []
    repos.add("empty", {})
    empty = pfs("empty", "/(*)", join_on="$1")
    assert repos.datums({"join": [STORES, empty]}) == []
    # A child whose repo has no commit yet contributes nothing; outer children still show.
    del repos.commits[("empty", "master")]
    outer = pfs("stores", "/STOREID(*).txt", join_on="$1", outer_join=True)
    assert len(repos.datums({"join": [outer, empty]})) == 3
    # Keys made of several groups, and directories as matches.
    repos.add("a", {"/x-1/f": "1", "/y-2/f": "2"})
    repos.add("b", {"/x-1/g": "3", "/x-2/g": "4"})
    two = {
        "join": [
            pfs("a", "/(*)-(*)", join_on="$1$2"),
            pfs("b", "/(*)-(*)", join_on="$1$2"),
        ]
    }
    assert shape(repos.datums(two)) == [[("a", "/x-1"), ("b", "/x-1")]]


def test_nested_cross_inside_join_keys_each_input(repos: Repos) -> None:
    returns = pfs("returns", "/*_STOREID(*).txt", join_on="$1")
    datums = shape(repos.datums({"join": [STORES, {"union": [PURCHASES, returns]}]}))
    # The union's inputs are keyed one by one: store 2 meets its purchase and both returns.
    store2 = [d for d in datums if d[0] == ("stores", "/STOREID2.txt")]
    assert sorted(d[1][1] for d in store2) == [
        "/P3_STOREID2.txt",
        "/R1_STOREID2.txt",
        "/R2_STOREID2.txt",
    ]


# -- group


def test_group_puts_every_match_of_a_key_in_one_datum(repos: Repos) -> None:
    purchases = pfs("purchases", "/*_STOREID(*).txt", group_by="$1")
    returns = pfs("returns", "/*_STOREID(*).txt", group_by="$1")
    datums = repos.datums({"group": [purchases, returns]})
    by_key = {
        "1": [("purchases", "/P1_STOREID1.txt"), ("purchases", "/P2_STOREID1.txt")],
        "2": [
            ("purchases", "/P3_STOREID2.txt"),
            ("returns", "/R1_STOREID2.txt"),
            ("returns", "/R2_STOREID2.txt"),
        ],
        "4": [("purchases", "/P4_STOREID4.txt")],
    }
    assert shape(datums) == [by_key[k] for k in key_order(["1", "2", "4"])]
    # Several inputs of one name in a datum: ids and hashes still tell the datums apart.
    assert len({datum_id(d) for d in datums}) == 3
    assert len({datum_hash(d, "p", "salt") for d in datums}) == 3


def test_group_of_one_input_and_of_nothing(repos: Repos) -> None:
    one = pfs("stores", "/STOREID(*).txt", group_by="x$1")
    assert len(repos.datums({"group": [one]})) == 3
    none = pfs("stores", "/none-(*)", group_by="$1")
    assert repos.datums({"group": [none]}) == []
    e = error({"group": [pfs("purchases", "/(*)_*.txt", group_by="all$0")]})
    assert "count from $1" in str(e)


# -- spec checks


def error(inp: dict[str, Any]) -> InvalidSpec:
    with pytest.raises(InvalidSpec) as info:
        parse_specs(json.dumps(pipeline(inp)), "spec.json")
    return info.value


def test_join_child_without_join_on_is_refused() -> None:
    e = error({"join": [STORES, pfs("purchases", "/*")]})
    assert "join_on" in str(e) and e.fields["field"] == "input.join[1].pfs.join_on"
    assert e.hint and "join_on" in e.hint


def test_group_child_without_group_by_is_refused() -> None:
    e = error({"group": [pfs("purchases", "/(*)", group_by="$1"), pfs("returns", "/*")]})
    assert e.fields["field"] == "input.group[1].pfs.group_by"


def test_key_needs_enough_capture_groups() -> None:
    e = error({"join": [pfs("stores", "/STOREID*.txt", join_on="$1"), PURCHASES]})
    assert "glob" in str(e) and "$1" in str(e) and e.fields["field"] == "input.join[0].pfs.join_on"
    e = error({"join": [pfs("stores", "/(*)", join_on="$2"), PURCHASES]})
    assert "only 1" in str(e)
    e = error({"join": [pfs("stores", "/(*)", join_on="store"), PURCHASES]})
    assert "names no capture group" in str(e)


def test_keys_outside_join_or_group_and_cron_inside_are_refused() -> None:
    e = error(pfs("stores", "/(*)", join_on="$1"))
    assert "only applies" in str(e)
    e = error(pfs("stores", "/*", outer_join=True))
    assert "outer_join" in str(e)
    e = error({"join": [STORES, {"cron": {"name": "tick", "spec": "@every 10s"}}]})
    assert "cron" in str(e) and e.hint and "cross" in e.hint
    e = error({"join": [STORES, pfs("stores", "/(*)", join_on="$1")]})
    assert "more than once" in str(e)


def test_valid_join_and_group_specs_parse() -> None:
    spec = input_of({"join": [STORES, PURCHASES]})
    assert spec.shorthand() == "(stores:/STOREID(*).txt ⋈ purchases:/*_STOREID(*).txt)"
    nested = input_of(
        {
            "cross": [
                {"join": [STORES, PURCHASES]},
                {"cron": {"name": "tick", "spec": "@every 10s"}},
            ]
        }
    )
    assert nested.kind == "cross"


# -- git URLs


def test_git_urls_that_would_use_the_server_identity_or_files_are_refused() -> None:
    check_url("https://github.com/pachyderm/pachyderm.git")
    check_url("git://example.com/site.git")
    for bad in ("git@github.com:o/site.git", "ssh://git@example.com/site.git", "/srv/site.git"):
        with pytest.raises(InvalidSpec):
            check_url(bad)
    with pytest.raises(InvalidSpec, match="not supported"):
        check_url("file:///srv/site.git")
    check_url("file:///srv/site.git", file_urls=True)
    assert imported_sha("git 0123abc https://example.com/site.git") == "0123abc"
    assert imported_sha("cron tick") is None


def test_git_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tusk.runtime import Settings

    monkeypatch.setenv("TUSK_GIT_POLL_SECONDS", "2.5")
    monkeypatch.setenv("TUSK_GIT_ALLOW_FILE_URLS", "1")
    settings = Settings.from_env(tmp_path)
    assert (settings.git_poll_seconds, settings.git_file_urls) == (2.5, True)
    monkeypatch.delenv("TUSK_GIT_ALLOW_FILE_URLS")
    monkeypatch.delenv("TUSK_GIT_POLL_SECONDS")
    assert Settings.from_env(tmp_path).git_poll_seconds == 60.0
    assert Settings.from_env(tmp_path).git_file_urls is False
    monkeypatch.setenv("TUSK_GIT_POLL_SECONDS", "soon")
    with pytest.raises(InvalidArgument, match="TUSK_GIT_POLL_SECONDS"):
        Settings.from_env(tmp_path)
