"""Comparing two trees, reading only the subtrees (and pages) whose ids differ."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain

from tusk.pfs.paths import clean_path, join_path, split_path
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


def _same(a: Entry, b: Entry) -> bool:
    if "d" in a:
        return "d" in b and a["d"] == b["d"]
    return "d" not in b and a["h"] == b["h"]


class _Diff:
    """One diff in progress: the nodes found so far on each side."""

    def __init__(self, objects: TreeObjects) -> None:
        self.objects = objects
        self.new: list[Node] = []
        self.old: list[Node] = []

    def compare(self, path: str, new: Entry | None, old: Entry | None, depth: int) -> None:
        """Compare the entries at ``path``, descending ``depth`` levels (-1: all the way)."""
        if new is None and old is None or (new is not None and old is not None and _same(new, old)):
            return
        new_dir = old_dir = None
        if new is not None:
            if "d" in new and depth != 0:
                new_dir = new["d"]
            else:
                self.new.append(to_node(path, new))
        if old is not None:
            if "d" in old and depth != 0:
                old_dir = old["d"]
            else:
                self.old.append(to_node(path, old))
        if new_dir is None and old_dir is None:
            return
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
