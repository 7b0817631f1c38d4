"""Commit file trees: Merkle trees of directory objects in an ObjectStore (like git trees).

A directory object lists its entries sorted by name; a directory's id is the content hash of its
object, so identical content gives identical ids and unchanged subtrees are shared between
commits. Objects (compact JSON, short keys):

    directory  {"s": size, "k": files, "e": [entry, ...]}
    index      {"s": size, "k": files, "n": entries, "p": [[first name, page id, entries,
                size, files], ...]}
    page       {"e": [entry, ...]}
    file entry {"n": name, "s": size, "h": file hash, "c": [ChunkRef.to_json(), ...]}
    dir entry  {"n": name, "s": total size, "k": file count, "d": directory id}

A directory with more than PAGE_THRESHOLD entries is stored as an index over pages cut at
content-defined boundaries (an entry ends a page when a hash of its name has its low 8 bits zero),
so a change rewrites only the index and the page(s) around the changed names, and the page layout
depends only on the set of names (the same content always gives the same ids).
"""

from __future__ import annotations

import hashlib
import json
import threading
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, Literal

from tusk.errors import InvalidPath, NotFound, PathConflict
from tusk.pfs.glob import GlobPattern, compile_glob
from tusk.pfs.paths import ROOT, clean_path, join_path, split_path
from tusk.storage.base import ChunkRef, ObjectStore
from tusk.storage.hashing import hash_bytes

PAGE_THRESHOLD = 1000  # directories with more entries than this are paged
_PAGE_MASK = 0xFF  # boundary when (name hash & mask) == 0: ~256 entries per page

Entry = dict[str, Any]


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


EMPTY_ROOT = hash_bytes(_dumps({"s": 0, "k": 0, "e": []}))


@dataclass(frozen=True, slots=True)
class Node:
    """A file or directory in a tree. For a directory ``hash`` and ``id`` are its object id."""

    path: str
    kind: Literal["file", "dir"]
    size: int
    hash: str
    chunks: tuple[ChunkRef, ...] = ()
    file_count: int = 1  # files: 1; directories: files beneath
    id: str | None = None

    @property
    def is_dir(self) -> bool:
        return self.kind == "dir"


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
    path: str


Op = PutFile | Delete | MakeDir


class _Listing:
    """A parsed directory object or page: entries sorted by name."""

    __slots__ = ("entries", "names", "size", "files")

    def __init__(self, entries: list[Entry], size: int, files: int) -> None:
        self.entries = entries
        self.names = [e["n"] for e in entries]
        self.size = size
        self.files = files


class _Index:
    """A parsed page index of a large directory."""

    __slots__ = ("rows", "firsts", "size", "files", "count")

    def __init__(self, rows: list[list[Any]], size: int, files: int, count: int) -> None:
        self.rows = rows
        self.firsts = [r[0] for r in rows]
        self.size = size
        self.files = files
        self.count = count


_EMPTY = _Listing([], 0, 0)


class _Pending:
    """A directory being changed by ``apply``: its base object plus changes by name."""

    __slots__ = ("base", "changes")

    def __init__(self, base: str | None) -> None:
        self.base = None if base == EMPTY_ROOT else base
        self.changes: dict[str, Entry | _Pending | None] = {}


def _is_boundary(name: str) -> bool:
    return hashlib.blake2b(name.encode(), digest_size=4).digest()[0] & _PAGE_MASK == 0


def _entry_files(e: Entry) -> int:
    return int(e.get("k", 1))


def _same(a: Entry, b: Entry) -> bool:
    if "d" in a:
        return "d" in b and a["d"] == b["d"]
    return "d" not in b and a["h"] == b["h"]


def _node(path: str, e: Entry) -> Node:
    if "d" in e:
        return Node(path, "dir", e["s"], e["d"], (), e["k"], e["d"])
    return Node(path, "file", e["s"], e["h"], tuple([ChunkRef(*c) for c in e["c"]]))


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


class Tree:
    """Read and write commit trees stored in ``store``; root ids are directory object ids."""

    def __init__(self, store: ObjectStore, *, cache_size: int = 256) -> None:
        self.store = store
        self._cache: OrderedDict[str, _Listing | _Index] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    # ---- objects -------------------------------------------------------------------------

    def _load(self, oid: str) -> _Listing | _Index:
        if oid == EMPTY_ROOT:
            return _EMPTY
        with self._lock:
            hit = self._cache.get(oid)
            if hit is not None:
                self._cache.move_to_end(oid)
                return hit
        raw = json.loads(self.store.get(oid))
        obj: _Listing | _Index
        if "p" in raw:
            obj = _Index(raw["p"], raw["s"], raw["k"], raw["n"])
        else:
            entries = raw["e"]
            if "s" in raw:
                obj = _Listing(entries, raw["s"], raw["k"])
            else:
                obj = _Listing(
                    entries, sum(e["s"] for e in entries), sum(map(_entry_files, entries))
                )
        self._remember(oid, obj)
        return obj

    def _remember(self, oid: str, obj: _Listing | _Index) -> None:
        if self._cache_size <= 0:
            return
        with self._lock:
            self._cache[oid] = obj
            self._cache.move_to_end(oid)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def _put(self, obj: dict[str, Any]) -> str:
        data = _dumps(obj)
        oid = hash_bytes(data)
        self.store.put(data, oid)
        return oid

    def _lookup(self, dir_id: str, name: str) -> Entry | None:
        obj = self._load(dir_id)
        if isinstance(obj, _Index):
            j = bisect_right(obj.firsts, name) - 1
            if j < 0:
                return None
            obj = self._load(obj.rows[j][1])
            assert isinstance(obj, _Listing)
        i = bisect_left(obj.names, name)
        if i < len(obj.names) and obj.names[i] == name:
            return obj.entries[i]
        return None

    def _pages(self, rows: Iterable[list[Any]]) -> Iterator[_Listing]:
        for row in rows:
            page = self._load(row[1])
            assert isinstance(page, _Listing)
            yield page

    def _entries(self, dir_id: str) -> Iterator[Entry]:
        obj = self._load(dir_id)
        if isinstance(obj, _Index):
            for page in self._pages(obj.rows):
                yield from page.entries
        else:
            yield from obj.entries

    def _dir_entry(self, root: str, parts: Sequence[str]) -> Entry | None:
        """The entry at ``parts`` under ``root`` (a synthetic entry for the root itself)."""
        if not parts:
            obj = self._load(root)
            return {"n": "", "s": obj.size, "k": obj.files, "d": root}
        cur = root
        for part in parts[:-1]:
            e = self._lookup(cur, part)
            if e is None or "d" not in e:
                return None
            cur = e["d"]
        return self._lookup(cur, parts[-1])

    # ---- reading -------------------------------------------------------------------------

    def get(self, root: str, path: str) -> Node | None:
        path = clean_path(path)
        e = self._dir_entry(root, split_path(path))
        return None if e is None else _node(path, e)

    def stats(self, root: str) -> tuple[int, int]:
        """(total size, file count) of the whole tree, from the root object alone."""
        obj = self._load(root)
        return obj.size, obj.files

    def list_dir(self, root: str, path: str = ROOT) -> Iterator[Node]:
        """Children of the directory at ``path``, sorted by name."""
        path = clean_path(path)
        e = self._dir_entry(root, split_path(path))
        if e is None:
            raise NotFound(f"file {path} not found", hint="check the path with list-file")
        if "d" not in e:
            raise InvalidPath(
                f"path ({path}) invalid: {path} is a file, not a directory",
                hint="use get-file or inspect-file for a file",
                path=path,
            )
        return (_node(join_path(path, c["n"]), c) for c in self._entries(e["d"]))

    def walk(self, root: str, path: str = ROOT) -> Iterator[Node]:
        """Every directory and file under ``path`` (not ``path`` itself), depth-first, sorted."""
        path = clean_path(path)
        e = self._dir_entry(root, split_path(path))
        if e is None:
            raise NotFound(f"file {path} not found", hint="check the path with list-file")
        if "d" in e:
            yield from self._walk(path, e["d"])

    def _walk(self, path: str, dir_id: str) -> Iterator[Node]:
        for c in self._entries(dir_id):
            child = join_path(path, c["n"])
            yield _node(child, c)
            if "d" in c:
                yield from self._walk(child, c["d"])

    def glob(self, root: str, pattern: str) -> Iterator[Node]:
        """Files and directories matching ``pattern``, depth-first in name order.

        Literal components are looked up directly and subtrees that cannot hold a match are not
        read, so ``/*`` reads only the root directory.
        """
        g = compile_glob(pattern)
        if g.matches_root_only:
            root_entry = self._dir_entry(root, [])
            assert root_entry is not None
            yield _node(ROOT, root_entry)
            return
        prefix = list(g.literal_prefix_parts)
        e = self._dir_entry(root, prefix)
        if e is None:
            return
        start = "/" + "/".join(prefix)
        if g.is_literal:
            yield _node(start, e)
            return
        if "d" in e:
            yield from self._glob(g, start, e["d"], len(prefix))

    def _glob(self, g: GlobPattern, path: str, dir_id: str, depth: int) -> Iterator[Node]:
        name = g.segment_literal(depth)
        children: Iterable[Entry]
        if name is not None:
            hit = self._lookup(dir_id, name)
            children = () if hit is None else (hit,)
        else:
            children = self._entries(dir_id)
        for c in children:
            child = join_path(path, c["n"])
            if g.match(child):
                yield _node(child, c)
            if "d" in c and g.could_match_under(child):
                yield from self._glob(g, child, c["d"], depth + 1)

    def diff(
        self, new_root: str, old_root: str | None, path: str = ROOT, *, shallow: bool = False
    ) -> tuple[list[Node], list[Node]]:
        """(new files, old files) under ``path`` as in ``pachctl diff-file``.

        A changed file is in both lists, an added one only in the first, a removed one only in
        the second. Only subtrees (and pages) whose ids differ are read. ``shallow`` reports the
        changed entries directly under ``path`` (files or directories) without descending.
        """
        path = clean_path(path)
        parts = split_path(path)
        new = self._dir_entry(new_root, parts)
        old = self._dir_entry(old_root or EMPTY_ROOT, parts)
        out_new: list[Node] = []
        out_old: list[Node] = []
        self._diff(path, new, old, 1 if shallow else -1, out_new, out_old)
        return out_new, out_old

    def _diff(
        self,
        path: str,
        new: Entry | None,
        old: Entry | None,
        depth: int,
        out_new: list[Node],
        out_old: list[Node],
    ) -> None:
        if new is None and old is None or (new is not None and old is not None and _same(new, old)):
            return
        new_dir = old_dir = None
        if new is not None:
            if "d" in new and depth != 0:
                new_dir = new["d"]
            else:
                out_new.append(_node(path, new))
        if old is not None:
            if "d" in old and depth != 0:
                old_dir = old["d"]
            else:
                out_old.append(_node(path, old))
        if new_dir is None and old_dir is None:
            return
        new_it, old_it = self._differing_entries(new_dir, old_dir)
        child_depth = depth - 1 if depth > 0 else -1
        a = next(new_it, None)
        b = next(old_it, None)
        while a is not None or b is not None:
            if b is None or (a is not None and a["n"] < b["n"]):
                assert a is not None
                self._diff(join_path(path, a["n"]), a, None, child_depth, out_new, out_old)
                a = next(new_it, None)
            elif a is None or b["n"] < a["n"]:
                self._diff(join_path(path, b["n"]), None, b, child_depth, out_new, out_old)
                b = next(old_it, None)
            else:
                self._diff(join_path(path, a["n"]), a, b, child_depth, out_new, out_old)
                a = next(new_it, None)
                b = next(old_it, None)

    def _differing_entries(
        self, new_dir: str | None, old_dir: str | None
    ) -> tuple[Iterator[Entry], Iterator[Entry]]:
        """Entries of both directories, leaving out pages the two share."""
        new_obj = self._load(new_dir) if new_dir else None
        old_obj = self._load(old_dir) if old_dir else None
        if isinstance(new_obj, _Index) and isinstance(old_obj, _Index):
            shared = {r[1] for r in new_obj.rows} & {r[1] for r in old_obj.rows}
            return (
                chain.from_iterable(
                    p.entries for p in self._pages(r for r in new_obj.rows if r[1] not in shared)
                ),
                chain.from_iterable(
                    p.entries for p in self._pages(r for r in old_obj.rows if r[1] not in shared)
                ),
            )
        return (
            self._entries(new_dir) if new_dir else iter(()),
            self._entries(old_dir) if old_dir else iter(()),
        )

    # ---- writing -------------------------------------------------------------------------

    def apply(self, root: str, ops: Iterable[Op]) -> str:
        """Apply ``ops`` in order to the tree ``root`` and return the new root id.

        Only the directories on the paths of changed entries are rewritten. Every op is
        validated before anything is written, so a failing op leaves no new root behind. The new
        directory objects are durable when this returns (the store is synced), so the root may be
        recorded in metadata at once.
        """
        top = _Pending(root)
        for op in ops:
            if isinstance(op, PutFile):
                self._op_put(top, op)
            elif isinstance(op, Delete):
                path = clean_path(op.path)
                if path == ROOT:
                    top = _Pending(None)
                else:
                    self._op_delete(top, path)
            elif isinstance(op, MakeDir):
                self._op_mkdir(top, clean_path(op.path))
            else:
                raise TypeError(f"not a tree operation: {op!r}")
        new_root = self._finish(top)[0]
        self.store.sync()
        return new_root

    def _child(self, p: _Pending, name: str) -> Entry | _Pending | None:
        if name in p.changes:
            return p.changes[name]
        if p.base is None:
            return None
        return self._lookup(p.base, name)

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

    def _op_put(self, top: _Pending, op: PutFile) -> None:
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

    def _op_delete(self, top: _Pending, path: str) -> None:
        parts = split_path(path)
        cur: Entry | _Pending = top
        for part in parts:
            if isinstance(cur, _Pending):
                child = self._child(cur, part)
            elif "d" in cur:
                child = self._lookup(cur["d"], part)
            else:
                return  # a file where a parent directory should be: nothing to delete
            if child is None:
                return
            cur = child
        parent = self._descend(top, parts[:-1], path)
        parent.changes[parts[-1]] = None

    def _op_mkdir(self, top: _Pending, path: str) -> None:
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

    def _finish(self, p: _Pending) -> tuple[str, int, int]:
        """Write ``p`` bottom-up; return (object id, size, file count)."""
        if not p.changes and p.base is not None:
            obj = self._load(p.base)
            return p.base, obj.size, obj.files
        changes: list[tuple[str, Entry | None]] = []
        for name in sorted(p.changes):
            ch = p.changes[name]
            if isinstance(ch, _Pending):
                oid, size, files = self._finish(ch)
                changes.append((name, {"n": name, "s": size, "k": files, "d": oid}))
            else:
                changes.append((name, ch))
        base = self._load(p.base) if p.base is not None else _EMPTY
        if isinstance(base, _Index):
            return self._merge_paged(base, changes)
        if not base.entries:
            return self._write_dir([e for _, e in changes if e is not None])
        return self._write_dir(_merge(base.entries, changes))

    def _write_dir(self, entries: list[Entry]) -> tuple[str, int, int]:
        if len(entries) > PAGE_THRESHOLD:
            rows = self._write_pages(entries)
            return self._write_index(rows)
        size = sum(e["s"] for e in entries)
        files = sum(map(_entry_files, entries))
        oid = self._put({"s": size, "k": files, "e": entries})
        self._remember(oid, _Listing(entries, size, files))
        return oid, size, files

    def _write_pages(self, entries: list[Entry]) -> list[list[Any]]:
        rows: list[list[Any]] = []
        start = 0
        last = len(entries) - 1
        for i, e in enumerate(entries):
            if i == last or _is_boundary(e["n"]):
                page = entries[start : i + 1]
                size = sum(x["s"] for x in page)
                files = sum(map(_entry_files, page))
                oid = self._put({"e": page})
                self._remember(oid, _Listing(page, size, files))
                rows.append([page[0]["n"], oid, len(page), size, files])
                start = i + 1
        return rows

    def _write_index(self, rows: list[list[Any]]) -> tuple[str, int, int]:
        size = sum(r[3] for r in rows)
        files = sum(r[4] for r in rows)
        count = sum(r[2] for r in rows)
        oid = self._put({"s": size, "k": files, "n": count, "p": rows})
        self._remember(oid, _Index(rows, size, files, count))
        return oid, size, files

    def _merge_paged(
        self, index: _Index, changes: list[tuple[str, Entry | None]]
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
                page = self._load(rows[j][1])
                assert isinstance(page, _Listing)
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
            return self._write_index(out)
        entries: list[Entry] = []
        for page in self._pages(out):
            entries.extend(page.entries)
        return self._write_dir(entries)
