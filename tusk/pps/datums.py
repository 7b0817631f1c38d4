"""Datums: glob matches of each input, crossed and unioned in 1.7's order, joined and grouped
by capture-group keys as in Pachyderm 2.x, and their hashes."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from tusk.errors import InvalidSpec
from tusk.pfs.glob import compile_glob
from tusk.pfs.tree import Node, Tree
from tusk.storage import hash_bytes

_KEY_REF = re.compile(r"\$(?:\{(\d+)\}|(\d+))")


@dataclass(frozen=True, slots=True)
class InputCommit:
    """One input commit of a job: the branch it came from and its tree root."""

    repo: str
    branch: str
    commit: str
    root: str


@dataclass(frozen=True, slots=True)
class DatumInput:
    """One input's part of a datum: the matched path (file or directory) in one commit."""

    name: str
    repo: str
    branch: str
    commit: str
    root: str
    path: str
    hash: str
    size: int
    kind: str
    join_key: str = ""  # join_on expanded from the path's capture groups ("" without join_on)
    group_key: str = ""  # likewise for group_by
    outer_join: bool = False

    def to_json(self) -> dict[str, object]:
        """The JSON stored with the datum (and shown by inspect-datum)."""
        return {
            "name": self.name,
            "repo": self.repo,
            "branch": self.branch,
            "commit": self.commit,
            "path": self.path,
            "hash": self.hash,
            "size": self.size,
        }


Datum = tuple[DatumInput, ...]


def expand_key(template: str, groups: Sequence[str | None]) -> str:
    """``template`` with ``$N``/``${N}`` replaced by capture group N (an unmatched group is "")."""

    def ref(m: re.Match[str]) -> str:
        n = int(m.group(1) or m.group(2))
        return (groups[n - 1] or "") if 0 < n <= len(groups) else ""

    return _KEY_REF.sub(ref, template)


def _match(name: str, ic: InputCommit, n: Node, **keys: Any) -> DatumInput:
    """One glob match ``n`` of input ``name`` in the input commit ``ic``."""
    return DatumInput(
        name, ic.repo, ic.branch, ic.commit, ic.root, n.path, n.hash, n.size, n.kind, **keys
    )


def enumerate_datums(
    inp: object, commits: Mapping[tuple[str, str], InputCommit], tree: Tree
) -> list[Datum]:
    """All datums of an input tree (``tusk.pps.spec.Input``) over the given input commits."""
    atom = getattr(inp, "atom", None) or getattr(inp, "pfs", None)
    if atom is not None:
        ic = commits.get((atom.repo, atom.branch or "master"))
        if ic is None:
            return []
        name = atom.name or atom.repo
        join_on, group_by = atom.join_on, atom.group_by
        if join_on is None and group_by is None:
            # made as the glob yields its matches: a list of 100,000 nodes (with their chunks)
            # first would be the largest part of a big job's memory for a moment
            plain: list[Datum] = [(_match(name, ic, n),) for n in tree.glob(ic.root, atom.glob)]
            plain.sort(key=lambda d: (-d[0].size, d[0].path))
            return plain
        # A keyed input (inside a join or group): in path order, as 2.x lists a glob.
        pattern = compile_glob(atom.glob, True)
        keyed: list[Datum] = []
        for n in tree.glob(ic.root, atom.glob, captures=True):
            m = pattern.regex.fullmatch(n.path)
            groups = m.groups() if m is not None else ()
            keyed.append(
                (
                    _match(
                        name,
                        ic,
                        n,
                        join_key=expand_key(join_on or "", groups),
                        group_key=expand_key(group_by or "", groups),
                        outer_join=atom.outer_join,
                    ),
                )
            )
        keyed.sort(key=lambda d: d[0].path)
        return keyed
    git = getattr(inp, "git", None)
    if git is not None:
        ic = commits.get((git.input_name, git.branch or "master"))
        if ic is None:
            return []
        return [(_match(git.input_name, ic, n),) for n in tree.glob(ic.root, "/")]
    cron = getattr(inp, "cron", None)
    if cron is not None:
        ic = commits.get((cron.repo, "master"))
        if ic is None:
            return []
        nodes = [n for n in tree.glob(ic.root, "/*")]
        return [(_match(cron.name, ic, n),) for n in nodes]
    cross = getattr(inp, "cross", None)
    if cross:
        parts = [enumerate_datums(c, commits, tree) for c in cross]
        if any(not p for p in parts):
            return []
        total = 1
        for p in parts:
            total *= len(p)
        out: list[Datum] = []
        for i in range(total):
            idx = i
            combo: list[DatumInput] = []
            for p in parts:  # the first input varies fastest, as in 1.7
                combo.extend(p[idx % len(p)])
                idx //= len(p)
            out.append(tuple(combo))
        return out
    union = getattr(inp, "union", None)
    if union:
        return [d for c in union for d in enumerate_datums(c, commits, tree)]
    join = getattr(inp, "join", None)
    if join:
        return _join([enumerate_datums(c, commits, tree) for c in join])
    group = getattr(inp, "group", None)
    if group:
        return _group([enumerate_datums(c, commits, tree) for c in group])
    raise InvalidSpec("input has no kind tusk can enumerate", hint="check the pipeline's input")


def _by_key(children: list[list[Datum]], join: bool) -> dict[str, list[list[DatumInput]]]:
    """Every input of every child's datums filed under its key, one list per child: an input of
    a nested cross or union is keyed on its own, as 2.x does."""
    table: dict[str, list[list[DatumInput]]] = {}
    for i, datums in enumerate(children):
        for datum in datums:
            for d in datum:
                key = d.join_key if join else d.group_key
                table.setdefault(key, [[] for _ in children])[i].append(d)
    return table


def _key_order(key: str) -> str:
    """2.x visits keys in the order of their SHA-256 hex digest (its key files are named so)."""
    return hashlib.sha256(key.encode()).hexdigest()


def _join(children: list[list[Datum]]) -> list[Datum]:
    """Inner join on ``join_on`` keys: for each key every combination of one match per child
    (the last child varies fastest); a key some child lacks yields the matches of the
    ``outer_join`` children alone (each combination of them), or nothing."""
    out: list[Datum] = []
    table = _by_key(children, join=True)
    for key in sorted(table, key=_key_order):
        lists = table[key]
        if not all(lists):
            lists = [[d for d in ds if d.outer_join] for ds in lists]
            lists = [ds for ds in lists if ds]
            if not lists:
                continue
        out.extend(tuple(combo) for combo in itertools.product(*lists))
    return out


def _group(children: list[list[Datum]]) -> list[Datum]:
    """One datum per ``group_by`` key holding every match of every child with that key."""
    table = _by_key(children, join=False)
    return [tuple(d for ds in table[key] for d in ds) for key in sorted(table, key=_key_order)]


def _hashed_json(value: list[Any]) -> bytes:
    """``json.dumps(value, separators=(",", ":"))``, the bytes datum hashes and ids were always
    made of. orjson halves the cost of an id; its bytes are the same except where the standard
    library escapes: non-ASCII text and DEL (then the standard library makes them)."""
    data = orjson.dumps(value)
    if data.isascii() and b"\x7f" not in data:
        return data
    return json.dumps(value, separators=(",", ":")).encode()


def datum_hash(datum: Datum, pipeline: str, salt: str) -> str:
    """What decides "already processed": input names, paths, content hashes, pipeline, salt."""
    parts = [[d.name, d.path, d.hash] for d in datum]
    return hash_bytes(_hashed_json([parts, pipeline, salt]))


def datum_id(datum: Datum) -> str:
    """The id users see in logs: paths and content hashes only (no names, no salt)."""
    return hash_bytes(_hashed_json([[d.path, d.hash] for d in datum]))
