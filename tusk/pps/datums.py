"""Datums: glob matches of each input, crossed and unioned in 1.7's order, and their hashes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from tusk.errors import InvalidSpec
from tusk.pfs.tree import Tree
from tusk.storage import hash_bytes


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


def enumerate_datums(
    inp: object, commits: Mapping[tuple[str, str], InputCommit], tree: Tree
) -> list[Datum]:
    """All datums of an input tree (``tusk.pps.spec.Input``) over the given input commits."""
    atom = getattr(inp, "atom", None) or getattr(inp, "pfs", None)
    if atom is not None:
        ic = commits.get((atom.repo, atom.branch or "master"))
        if ic is None:
            return []
        nodes = list(tree.glob(ic.root, atom.glob))
        nodes.sort(key=lambda n: (-n.size, n.path))
        name = atom.name or atom.repo
        return [
            (
                DatumInput(
                    name, ic.repo, ic.branch, ic.commit, ic.root, n.path, n.hash, n.size, n.kind
                ),
            )
            for n in nodes
        ]
    cron = getattr(inp, "cron", None)
    if cron is not None:
        ic = commits.get((cron.repo, "master"))
        if ic is None:
            return []
        nodes = [n for n in tree.glob(ic.root, "/*")]
        return [
            (
                DatumInput(
                    cron.name, ic.repo, "master", ic.commit, ic.root, n.path, n.hash, n.size, n.kind
                ),
            )
            for n in nodes
        ]
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
    kind = next((k for k in ("join", "group", "git") if getattr(inp, k, None)), "this")
    raise InvalidSpec(
        f"{kind} inputs are not supported by tusk yet",
        hint="use atom/pfs, cross, union or cron inputs",
    )


def datum_hash(datum: Datum, pipeline: str, salt: str) -> str:
    """What decides "already processed": input names, paths, content hashes, pipeline, salt."""
    parts = [[d.name, d.path, d.hash] for d in datum]
    return hash_bytes(json.dumps([parts, pipeline, salt], separators=(",", ":")).encode())


def datum_id(datum: Datum) -> str:
    """The id users see in logs: paths and content hashes only (no names, no salt)."""
    parts = [[d.path, d.hash] for d in datum]
    return hash_bytes(json.dumps(parts, separators=(",", ":")).encode())
