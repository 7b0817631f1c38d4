"""Tree objects: how directories are encoded, and a cached reader of them from an ObjectStore."""

from __future__ import annotations

import json
import logging
import threading
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from tusk.errors import CorruptObject
from tusk.storage.base import ChunkRef, ObjectStore
from tusk.storage.hashing import hash_bytes

Entry = dict[str, Any]
log = logging.getLogger(__name__)


def dumps(obj: Any) -> bytes:
    """The canonical encoding of a tree object (its id is the hash of these bytes)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


EMPTY_ROOT = hash_bytes(dumps({"s": 0, "k": 0, "e": []}))


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
        """Whether this is a directory."""
        return self.kind == "dir"


Chunks = tuple[ChunkRef, ...]


@dataclass(frozen=True, slots=True)
class Shared:
    """A directory's header and footer (1.7's ``put-header`` / ``put-footer``): chunks read
    before and after the directory's files; both empty for almost every directory."""

    header: Chunks = ()
    footer: Chunks = ()

    def __bool__(self) -> bool:
        return bool(self.header or self.footer)

    def to_json(self) -> dict[str, Any]:
        """The keys a directory object stores them under (none when both are empty)."""
        out: dict[str, Any] = {}
        if self.header:
            out["hd"] = [c.to_json() for c in self.header]
        if self.footer:
            out["ft"] = [c.to_json() for c in self.footer]
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Shared:
        """The header and footer of a decoded directory object (absent in older trees)."""
        if "hd" not in raw and "ft" not in raw:
            return NO_SHARED
        return cls(
            tuple(ChunkRef.from_json(c) for c in raw.get("hd", ())),
            tuple(ChunkRef.from_json(c) for c in raw.get("ft", ())),
        )


NO_SHARED = Shared()


class Listing:
    """A parsed directory object or page: entries sorted by name."""

    __slots__ = ("entries", "names", "size", "files", "shared")

    def __init__(
        self, entries: list[Entry], size: int, files: int, shared: Shared = NO_SHARED
    ) -> None:
        self.entries = entries
        self.names = [e["n"] for e in entries]
        self.size = size
        self.files = files
        self.shared = shared


class Index:
    """A parsed page index of a large directory."""

    __slots__ = ("rows", "firsts", "size", "files", "count", "shared")

    def __init__(
        self,
        rows: list[list[Any]],
        size: int,
        files: int,
        count: int,
        shared: Shared = NO_SHARED,
    ) -> None:
        self.rows = rows
        self.firsts = [r[0] for r in rows]
        self.size = size
        self.files = files
        self.count = count
        self.shared = shared


EMPTY = Listing([], 0, 0)
# entries the cached directory objects may hold together (measured ~0.6 KB each: ~12 MB)
CACHE_ENTRIES = 20_000


def entry_files(e: Entry) -> int:
    """Files an entry stands for: 1 for a file, the count beneath for a directory."""
    return int(e.get("k", 1))


def to_node(path: str, e: Entry) -> Node:
    """The :class:`Node` for entry ``e`` found at ``path``."""
    if "d" in e:
        return Node(path, "dir", e["s"], e["d"], (), e["k"], e["d"])
    return Node(path, "file", e["s"], e["h"], tuple([ChunkRef(*c) for c in e["c"]]))


def _weight(obj: Listing | Index) -> int:
    return len(obj.entries) if isinstance(obj, Listing) else len(obj.rows)


class TreeObjects:
    """Reads, caches and writes the directory objects of trees in ``store``."""

    def __init__(
        self, store: ObjectStore, cache_size: int, cache_entries: int = CACHE_ENTRIES
    ) -> None:
        self.store = store
        self._cache: OrderedDict[str, Listing | Index] = OrderedDict()
        self._cache_size = cache_size
        # the cache is bounded by objects and by the entries (rows) they hold together: a page
        # holds about 256 entries, an unpaged directory up to 1,000
        self._cache_entries = cache_entries
        self._cached_entries = 0
        self._lock = threading.Lock()

    def load(self, oid: str) -> Listing | Index:
        """The parsed directory object, index or page ``oid``."""
        if oid == EMPTY_ROOT:
            return EMPTY
        with self._lock:
            hit = self._cache.get(oid)
            if hit is not None:
                self._cache.move_to_end(oid)
                return hit
        obj = _parse(oid, self.store.get(oid))
        self.remember(oid, obj)
        return obj

    def remember(self, oid: str, obj: Listing | Index) -> None:
        """Cache ``obj`` as the parsed form of object ``oid``."""
        if self._cache_size <= 0:
            return
        with self._lock:
            old = self._cache.pop(oid, None)
            if old is not None:
                self._cached_entries -= _weight(old)
            self._cache[oid] = obj
            self._cached_entries += _weight(obj)
            while len(self._cache) > 1 and (
                len(self._cache) > self._cache_size or self._cached_entries > self._cache_entries
            ):
                _, dropped = self._cache.popitem(last=False)
                self._cached_entries -= _weight(dropped)

    def cached(self) -> tuple[int, int]:
        """(objects, entries) in the cache now."""
        with self._lock:
            return len(self._cache), self._cached_entries

    def put(self, obj: dict[str, Any]) -> str:
        """Store ``obj`` and return its id."""
        data = dumps(obj)
        oid = hash_bytes(data)
        self.store.put(data, oid)
        return oid

    def lookup(self, dir_id: str, name: str) -> Entry | None:
        """The entry ``name`` of directory ``dir_id``, reading at most one page."""
        obj = self.load(dir_id)
        if isinstance(obj, Index):
            j = bisect_right(obj.firsts, name) - 1
            if j < 0:
                return None
            obj = self.load(obj.rows[j][1])
            assert isinstance(obj, Listing)
        i = bisect_left(obj.names, name)
        if i < len(obj.names) and obj.names[i] == name:
            return obj.entries[i]
        return None

    def pages(self, rows: Iterable[list[Any]]) -> Iterator[Listing]:
        """The pages named by index ``rows``, in order."""
        for row in rows:
            page = self.load(row[1])
            assert isinstance(page, Listing)
            yield page

    def entries(self, dir_id: str) -> Iterator[Entry]:
        """Every entry of directory ``dir_id``, sorted by name."""
        obj = self.load(dir_id)
        if isinstance(obj, Index):
            for page in self.pages(obj.rows):
                yield from page.entries
        else:
            yield from obj.entries

    def entries_from(self, dir_id: str, start: int) -> Iterator[Entry]:
        """The entries of directory ``dir_id`` from the ``start``-th on, sorted by name: the
        pages before it are skipped by the entry counts of the index, not read."""
        obj = self.load(dir_id)
        if not isinstance(obj, Index):
            yield from obj.entries[start:]
            return
        rows = obj.rows
        j = 0
        while j < len(rows) and len(rows[j]) > 2 and rows[j][2] <= start:
            start -= rows[j][2]
            j += 1
        for page in self.pages(rows[j:]):
            if start >= len(page.entries):
                start -= len(page.entries)
                continue
            yield from page.entries[start:]
            start = 0

    def dir_entry(self, root: str, parts: Sequence[str]) -> Entry | None:
        """The entry at ``parts`` under ``root`` (a synthetic entry for the root itself)."""
        if not parts:
            obj = self.load(root)
            return {"n": "", "s": obj.size, "k": obj.files, "d": root}
        cur = root
        for part in parts[:-1]:
            e = self.lookup(cur, part)
            if e is None or "d" not in e:
                return None
            cur = e["d"]
        return self.lookup(cur, parts[-1])


def _parse(oid: str, data: bytes) -> Listing | Index:
    """The directory object, index or page stored as ``oid``; CorruptObject (logged) when the
    bytes are not what was written under that id or do not decode as a tree object."""
    problem = ""
    if hash_bytes(data) != oid:
        problem = "its content does not match its id"
    else:
        try:
            raw = orjson.loads(data)  # a few times quicker than json on a page of entries
            if "p" in raw:
                return Index(raw["p"], raw["s"], raw["k"], raw["n"], Shared.from_json(raw))
            entries = raw["e"]
            if "s" in raw:
                return Listing(entries, raw["s"], raw["k"], Shared.from_json(raw))
            return Listing(entries, sum(e["s"] for e in entries), sum(map(entry_files, entries)))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            problem = f"it does not decode ({type(exc).__name__}: {exc})"
    log.error("tree object %s is corrupt: %s", oid, problem)
    raise CorruptObject(
        f"tree object {oid} is corrupt: {problem}",
        hint="restore the object store from a backup; the metadata still names this object",
        object_id=oid,
    )
