"""Writing trees: operations applied to a root, and the paging of large directories."""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tusk.errors import PathConflict
from tusk.pfs.paths import ROOT, clean_path, split_path
from tusk.pfs.tree.objects import (
    EMPTY,
    EMPTY_ROOT,
    NO_SHARED,
    Entry,
    Index,
    Listing,
    Shared,
    TreeObjects,
    entry_files,
)
from tusk.storage.base import ChunkRef

PAGE_THRESHOLD = 1000  # directories with more entries than this are paged
WRITE_CACHE_ENTRIES = 4_000  # entries of the objects one apply writes that it also caches
_PAGE_MASK = 0xFF  # boundary when (name hash & mask) == 0: ~256 entries per page


@dataclass(frozen=True, slots=True)
class PutFile:
    """Set the content of the file at ``path`` (creating parent directories)."""

    path: str
    chunks: Sequence[ChunkRef]
    size: int
    hash: str


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete a file or a whole directory; a missing path is a no-op; ``/`` empties the tree."""

    path: str


@dataclass(frozen=True, slots=True)
class MakeDir:
    """Create the directory at ``path`` (and its parents) if it does not exist."""

    path: str


@dataclass(frozen=True, slots=True)
class SetShared:
    """Set the header or footer of the directory at ``path`` (creating it and its parents);
    empty ``chunks`` remove it."""

    path: str
    part: Literal["header", "footer"]
    chunks: Sequence[ChunkRef]


Op = PutFile | Delete | MakeDir | SetShared


class _Pending:
    """A directory being changed by ``apply``: its base object plus changes by name, and its
    header / footer when an op set them."""

    __slots__ = ("base", "changes", "header", "footer")

    def __init__(self, base: str | None) -> None:
        self.base = None if base == EMPTY_ROOT else base
        self.changes: dict[str, Entry | _Pending | None] = {}
        self.header: tuple[ChunkRef, ...] | None = None
        self.footer: tuple[ChunkRef, ...] | None = None


def _is_boundary(name: str) -> bool:
    return hashlib.blake2b(name.encode(), digest_size=4).digest()[0] & _PAGE_MASK == 0


def _merge(base: list[Entry], changes: list[tuple[str, Entry | None]]) -> list[Entry]:
    """Apply sorted ``(name, entry-or-None)`` changes to sorted ``base`` entries."""
    out: list[Entry] = []
    i, n = 0, len(base)
    for name, new in changes:
        while i < n and base[i]["n"] < name:
            out.append(base[i])
            i += 1
        if i < n and base[i]["n"] == name:
            i += 1
        if new is not None:
            out.append(new)
    out.extend(base[i:])
    return out


def apply(objects: TreeObjects, root: str, ops: Iterable[Op]) -> str:
    """Apply ``ops`` in order to the tree ``root`` and return the new root id (see Tree.apply)."""
    changes = _Changes(objects)
    top = _Pending(root)
    for op in ops:
        if isinstance(op, PutFile):
            changes.put(top, op)
        elif isinstance(op, Delete):
            path = clean_path(op.path)
            if path == ROOT:
                top = _Pending(None)
            else:
                changes.delete(top, path)
        elif isinstance(op, MakeDir):
            changes.mkdir(top, clean_path(op.path))
        elif isinstance(op, SetShared):
            changes.set_shared(top, op)
        else:
            raise TypeError(f"not a tree operation: {op!r}")
    new_root = _Writer(objects).finish(top)[0]
    objects.store.sync()
    return new_root


class _Changes:
    """Validates operations and records them in a tree of pending directories."""

    def __init__(self, objects: TreeObjects) -> None:
        self.objects = objects

    def _child(self, p: _Pending, name: str) -> Entry | _Pending | None:
        if name in p.changes:
            return p.changes[name]
        if p.base is None:
            return None
        return self.objects.lookup(p.base, name)

    def _descend(self, top: _Pending, parts: Sequence[str], path: str) -> _Pending:
        """The pending directory at ``parts``, creating missing directories on the way."""
        cur = top
        for depth, part in enumerate(parts):
            child = self._child(cur, part)
            if child is None:
                nxt = _Pending(None)
            elif isinstance(child, _Pending):
                cur = child
                continue
            elif "d" in child:
                nxt = _Pending(child["d"])
            else:
                conflict = "/" + "/".join(parts[: depth + 1])
                raise PathConflict(
                    f"cannot create {path}: {conflict} is a file",
                    hint=f"delete {conflict} first, or choose another path",
                    path=path,
                    conflict=conflict,
                )
            cur.changes[part] = nxt
            cur = nxt
        return cur

    def put(self, top: _Pending, op: PutFile) -> None:
        path = clean_path(op.path, allow_root=False)
        parts = split_path(path)
        parent = self._descend(top, parts[:-1], path)
        name = parts[-1]
        existing = self._child(parent, name)
        if existing is not None and (isinstance(existing, _Pending) or "d" in existing):
            raise PathConflict(
                f"cannot put file {path}: a directory exists at {path}",
                hint=f"delete the directory {path} first, or put the file at another path",
                path=path,
                conflict=path,
            )
        parent.changes[name] = {
            "n": name,
            "s": op.size,
            "h": op.hash,
            "c": [c.to_json() for c in op.chunks],
        }

    def delete(self, top: _Pending, path: str) -> None:
        parts = split_path(path)
        cur: Entry | _Pending = top
        for part in parts:
            if isinstance(cur, _Pending):
                child = self._child(cur, part)
            elif "d" in cur:
                child = self.objects.lookup(cur["d"], part)
            else:
                return  # a file where a parent directory should be: nothing to delete
            if child is None:
                return
            cur = child
        parent = self._descend(top, parts[:-1], path)
        parent.changes[parts[-1]] = None

    def mkdir(self, top: _Pending, path: str) -> None:
        parts = split_path(path)
        if not parts:
            return
        parent = self._descend(top, parts[:-1], path)
        existing = self._child(parent, parts[-1])
        if existing is None:
            parent.changes[parts[-1]] = _Pending(None)
        elif not isinstance(existing, _Pending) and "d" not in existing:
            raise PathConflict(
                f"cannot make directory {path}: {path} is a file",
                hint=f"delete the file {path} first",
                path=path,
                conflict=path,
            )

    def set_shared(self, top: _Pending, op: SetShared) -> None:
        path = clean_path(op.path)
        parts = split_path(path)
        if parts:
            self.mkdir(top, path)
        target = self._descend(top, parts, path)
        if op.part == "header":
            target.header = tuple(op.chunks)
        else:
            target.footer = tuple(op.chunks)


class _Writer:
    """Writes pending directories bottom-up, paging the large ones.

    What it writes is cached for the reads that follow (the job of the new commit, a diff), up
    to ``WRITE_CACHE_ENTRIES`` entries per apply: a bulk write (a put of a million files) would
    otherwise leave cached entries scattered among its freed temporaries, and those few
    survivors keep the freed memory from going back (the server's RSS stayed at its peak)."""

    def __init__(self, objects: TreeObjects) -> None:
        self.objects = objects
        self._cache_budget = WRITE_CACHE_ENTRIES

    def _remember(self, oid: str, obj: Listing | Index) -> None:
        weight = len(obj.entries) if isinstance(obj, Listing) else len(obj.rows)
        if weight <= self._cache_budget:
            self._cache_budget -= weight
            self.objects.remember(oid, obj)

    def finish(self, p: _Pending) -> tuple[str, int, int]:
        """Write ``p`` bottom-up; return (object id, size, file count)."""
        unchanged_shared = p.header is None and p.footer is None
        if not p.changes and p.base is not None and unchanged_shared:
            obj = self.objects.load(p.base)
            return p.base, obj.size, obj.files
        changes: list[tuple[str, Entry | None]] = []
        for name in sorted(p.changes):
            ch = p.changes[name]
            if isinstance(ch, _Pending):
                oid, size, files = self.finish(ch)
                changes.append((name, {"n": name, "s": size, "k": files, "d": oid}))
            else:
                changes.append((name, ch))
        base = self.objects.load(p.base) if p.base is not None else EMPTY
        shared = base.shared
        if not unchanged_shared:
            shared = Shared(
                shared.header if p.header is None else p.header,
                shared.footer if p.footer is None else p.footer,
            )
            if not shared:
                shared = NO_SHARED
        if isinstance(base, Index):
            return self._merge_paged(base, changes, shared)
        if not base.entries:
            return self._write_dir([e for _, e in changes if e is not None], shared)
        return self._write_dir(_merge(base.entries, changes), shared)

    def _write_dir(self, entries: list[Entry], shared: Shared) -> tuple[str, int, int]:
        if len(entries) > PAGE_THRESHOLD:
            rows = self._write_pages(entries)
            return self._write_index(rows, shared)
        size = sum(e["s"] for e in entries)
        files = sum(map(entry_files, entries))
        oid = self.objects.put({"s": size, "k": files, "e": entries, **shared.to_json()})
        self._remember(oid, Listing(entries, size, files, shared))
        return oid, size, files

    def _write_pages(self, entries: list[Entry]) -> list[list[Any]]:
        rows: list[list[Any]] = []
        start = 0
        last = len(entries) - 1
        for i, e in enumerate(entries):
            if i == last or _is_boundary(e["n"]):
                page = entries[start : i + 1]
                size = sum(x["s"] for x in page)
                files = sum(map(entry_files, page))
                oid = self.objects.put({"e": page})
                self._remember(oid, Listing(page, size, files))
                rows.append([page[0]["n"], oid, len(page), size, files])
                start = i + 1
        return rows

    def _write_index(self, rows: list[list[Any]], shared: Shared) -> tuple[str, int, int]:
        size = sum(r[3] for r in rows)
        files = sum(r[4] for r in rows)
        count = sum(r[2] for r in rows)
        oid = self.objects.put({"s": size, "k": files, "n": count, "p": rows, **shared.to_json()})
        self._remember(oid, Index(rows, size, files, count, shared))
        return oid, size, files

    def _merge_paged(
        self, index: Index, changes: list[tuple[str, Entry | None]], shared: Shared
    ) -> tuple[str, int, int]:
        """Rewrite only the pages holding changed names (plus neighbours a boundary moved)."""
        groups: dict[int, list[tuple[str, Entry | None]]] = {}
        for name, e in changes:
            j = max(0, bisect_right(index.firsts, name) - 1)
            groups.setdefault(j, []).append((name, e))
        rows = index.rows
        n = len(rows)
        out: list[list[Any]] = []
        j = 0
        while j < n:
            if j not in groups:
                out.append(rows[j])
                j += 1
                continue
            # A run of pages re-cut together: it starts after a boundary and must end on one
            # (or at the last page) so the cut equals what a from-scratch split would give.
            combined: list[Entry] = []
            while True:
                page = self.objects.load(rows[j][1])
                assert isinstance(page, Listing)
                ch = groups.get(j)
                combined.extend(_merge(page.entries, ch) if ch else page.entries)
                j += 1
                if j >= n:
                    break
                if j in groups:
                    continue
                if not combined or _is_boundary(combined[-1]["n"]):
                    break
            if combined:
                out.extend(self._write_pages(combined))
        count = sum(r[2] for r in out)
        if count > PAGE_THRESHOLD:
            return self._write_index(out, shared)
        entries: list[Entry] = []
        for page in self.objects.pages(out):
            entries.extend(page.entries)
        return self._write_dir(entries, shared)
