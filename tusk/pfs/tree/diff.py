"""Comparing two trees, reading only the subtrees (and pages) whose ids differ."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain

from tusk.pfs.glob import GlobPattern, compile_glob
from tusk.pfs.paths import ROOT, clean_path, join_path, split_path
from tusk.pfs.tree.objects import EMPTY_ROOT, Entry, Index, Node, TreeObjects, to_node


def diff(
    objects: TreeObjects, new_root: str, old_root: str | None, path: str, *, shallow: bool
) -> tuple[list[Node], list[Node]]:
    """(new files, old files) under ``path`` as in ``pachctl diff-file``.

    A changed file is in both lists, an added one only in the first, a removed one only in
    the second. ``shallow`` reports the changed entries directly under ``path`` (files or
    directories) without descending.
    """
    path = clean_path(path)
    parts = split_path(path)
    new = objects.dir_entry(new_root, parts)
    old = objects.dir_entry(old_root or EMPTY_ROOT, parts)
    out = _Diff(objects)
    out.compare(path, new, old, 1 if shallow else -1)
    return out.new, out.old


def added_bytes(objects: TreeObjects, new_root: str, old_root: str | None) -> int:
    """The size of the files that are new or changed in ``new_root`` against ``old_root``: the
    sum over :func:`diff`'s new files, without holding them (a put of a million files)."""
    out = _Diff(objects, keep=False)
    out.compare(
        ROOT, objects.dir_entry(new_root, []), objects.dir_entry(old_root or EMPTY_ROOT, []), -1
    )
    return out.new_bytes


def _same(a: Entry, b: Entry) -> bool:
    if "d" in a:
        return "d" in b and a["d"] == b["d"]
    return "d" not in b and a["h"] == b["h"]


class _Diff:
    """One diff in progress: the nodes found so far on each side."""

    def __init__(self, objects: TreeObjects, *, keep: bool = True) -> None:
        self.objects = objects
        self.keep = keep  # False: only sum the sizes of the new side's files
        self.new: list[Node] = []
        self.old: list[Node] = []
        self.new_bytes = 0

    def compare(self, path: str, new: Entry | None, old: Entry | None, depth: int) -> None:
        """Compare the entries at ``path``, descending ``depth`` levels (-1: all the way)."""
        if new is None and old is None or (new is not None and old is not None and _same(new, old)):
            return
        new_dir = old_dir = None
        if new is not None:
            if "d" in new and depth != 0:
                new_dir = new["d"]
            elif self.keep:
                self.new.append(to_node(path, new))
            elif "d" not in new:
                self.new_bytes += new["s"]
        if old is not None:
            if "d" in old and depth != 0:
                old_dir = old["d"]
            elif self.keep:
                self.old.append(to_node(path, old))
        if new_dir is None and old_dir is None:
            return
        if new_dir is not None and old_dir is not None and self._shared_differs(new_dir, old_dir):
            # a changed header or footer changes how every file below it reads
            assert new is not None and old is not None
            self.new.append(to_node(path, new))
            self.old.append(to_node(path, old))
        new_it, old_it = self._differing_entries(new_dir, old_dir)
        child_depth = depth - 1 if depth > 0 else -1
        a = next(new_it, None)
        b = next(old_it, None)
        while a is not None or b is not None:
            if b is None or (a is not None and a["n"] < b["n"]):
                assert a is not None
                self.compare(join_path(path, a["n"]), a, None, child_depth)
                a = next(new_it, None)
            elif a is None or b["n"] < a["n"]:
                self.compare(join_path(path, b["n"]), None, b, child_depth)
                b = next(old_it, None)
            else:
                self.compare(join_path(path, a["n"]), a, b, child_depth)
                a = next(new_it, None)
                b = next(old_it, None)

    def _shared_differs(self, new_dir: str, old_dir: str) -> bool:
        return self.objects.load(new_dir).shared != self.objects.load(old_dir).shared

    def _differing_entries(
        self, new_dir: str | None, old_dir: str | None
    ) -> tuple[Iterator[Entry], Iterator[Entry]]:
        """Entries of both directories, leaving out pages the two share."""
        objects = self.objects
        new_obj = objects.load(new_dir) if new_dir else None
        old_obj = objects.load(old_dir) if old_dir else None
        if isinstance(new_obj, Index) and isinstance(old_obj, Index):
            shared = {r[1] for r in new_obj.rows} & {r[1] for r in old_obj.rows}
            return (
                chain.from_iterable(
                    p.entries for p in objects.pages(r for r in new_obj.rows if r[1] not in shared)
                ),
                chain.from_iterable(
                    p.entries for p in objects.pages(r for r in old_obj.rows if r[1] not in shared)
                ),
            )
        return (
            objects.entries(new_dir) if new_dir else iter(()),
            objects.entries(old_dir) if old_dir else iter(()),
        )


def glob_diff(
    objects: TreeObjects, pattern: str, new_root: str, old_root: str
) -> list[tuple[str, Node | None, Node | None]]:
    """``(path, new node, old node)`` of every glob match whose entry differs between the two
    trees (None where a side has no match there), in path order.

    Only subtrees (and pages) whose ids differ are read, so the cost follows the change, not the
    size of the trees.
    """
    g = compile_glob(pattern)
    out: list[tuple[str, Node | None, Node | None]] = []
    if g.matches_root_only:
        new, old = objects.dir_entry(new_root, []), objects.dir_entry(old_root, [])
        if new is not None and old is not None and not _same(new, old):
            out.append((ROOT, to_node(ROOT, new), to_node(ROOT, old)))
        return out
    prefix = list(g.literal_prefix_parts)
    new_e, old_e = objects.dir_entry(new_root, prefix), objects.dir_entry(old_root, prefix)
    start = "/" + "/".join(prefix)
    if new_e is not None and old_e is not None and _same(new_e, old_e):
        return out
    if g.is_literal:
        out.append(_pair(start, new_e, old_e))
        return out
    _GlobDiff(objects, g, out).compare(start, _dir_of(new_e), _dir_of(old_e), len(prefix))
    return out


def _dir_of(e: Entry | None) -> str | None:
    return e["d"] if e is not None and "d" in e else None


def _pair(path: str, new: Entry | None, old: Entry | None) -> tuple[str, Node | None, Node | None]:
    return (
        path,
        None if new is None else to_node(path, new),
        None if old is None else to_node(path, old),
    )


class _GlobDiff:
    def __init__(
        self,
        objects: TreeObjects,
        g: GlobPattern,
        out: list[tuple[str, Node | None, Node | None]],
    ) -> None:
        self.objects = objects
        self.g = g
        self.out = out

    def compare(self, path: str, new_dir: str | None, old_dir: str | None, depth: int) -> None:
        if new_dir == old_dir or (new_dir is None and old_dir is None):
            return
        name = self.g.segment_literal(depth)
        if name is not None:
            a = self.objects.lookup(new_dir, name) if new_dir else None
            b = self.objects.lookup(old_dir, name) if old_dir else None
            pairs: Iterator[tuple[Entry | None, Entry | None]] = iter([(a, b)])
        else:
            pairs = _aligned(*_Diff(self.objects)._differing_entries(new_dir, old_dir))
        for a, b in pairs:
            if a is None and b is None or (a is not None and b is not None and _same(a, b)):
                continue
            child = join_path(path, (a or b or {})["n"])
            if self.g.match(child):
                self.out.append(_pair(child, a, b))
            if self.g.could_match_under(child):
                self.compare(child, _dir_of(a), _dir_of(b), depth + 1)


def _aligned(
    new_it: Iterator[Entry], old_it: Iterator[Entry]
) -> Iterator[tuple[Entry | None, Entry | None]]:
    """Entries of two sorted listings paired by name."""
    a = next(new_it, None)
    b = next(old_it, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a["n"] < b["n"]):
            yield a, None
            a = next(new_it, None)
        elif a is None or b["n"] < a["n"]:
            yield None, b
            b = next(old_it, None)
        else:
            yield a, b
            a = next(new_it, None)
            b = next(old_it, None)
