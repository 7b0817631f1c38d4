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

A directory or index object may also hold ``"hd"`` and ``"ft"``: the chunks of the directory's
header and footer (1.7's ``put-header`` / ``put-footer``, and ``put-file --split sql``), read
before and after its files. They are absent when empty, so trees written before they existed
read the same and keep their ids. Sizes never count them.

A directory with more than ``PAGE_THRESHOLD`` entries is stored as an index over pages cut at
content-defined boundaries (an entry ends a page when a hash of its name has its low 8 bits zero),
so a change rewrites only the index and the page(s) around the changed names, and the page layout
depends only on the set of names (the same content always gives the same ids).

The modules: ``objects`` (encoding and the object cache), ``read`` (lookups, listings, walks,
globs), ``diff`` and ``write`` (operations and paging); :class:`Tree` puts them behind one face.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from tusk.pfs.paths import ROOT
from tusk.pfs.tree import diff, read, write
from tusk.pfs.tree.objects import EMPTY_ROOT, NO_SHARED, Node, Shared, TreeObjects
from tusk.pfs.tree.write import PAGE_THRESHOLD, Delete, MakeDir, Op, PutFile, SetShared
from tusk.storage.base import ObjectStore

__all__ = [
    "EMPTY_ROOT",
    "NO_SHARED",
    "PAGE_THRESHOLD",
    "Delete",
    "MakeDir",
    "Node",
    "Op",
    "PutFile",
    "SetShared",
    "Shared",
    "Tree",
]


class Tree:
    """Read and write commit trees stored in ``store``; root ids are directory object ids."""

    def __init__(self, store: ObjectStore, *, cache_size: int = 256) -> None:
        self.store = store
        self._objects = TreeObjects(store, cache_size)

    def get(self, root: str, path: str) -> Node | None:
        """The file or directory at ``path``, or None."""
        return read.get(self._objects, root, path)

    def stats(self, root: str) -> tuple[int, int]:
        """(total size, file count) of the whole tree, from the root object alone."""
        obj = self._objects.load(root)
        return obj.size, obj.files

    def shared(self, root: str, path: str) -> Shared:
        """The header and footer of the directory at ``path`` (empty for files, missing paths
        and almost every directory)."""
        return read.shared(self._objects, root, path)

    def shared_of(self, dir_id: str) -> Shared:
        """The header and footer of the directory object ``dir_id`` (a directory Node's id)."""
        return self._objects.load(dir_id).shared

    def list_dir(self, root: str, path: str = ROOT, start: int = 0) -> Iterator[Node]:
        """Children of the directory at ``path``, sorted by name, from the ``start``-th on (a
        large directory's pages before it are not read)."""
        return read.list_dir(self._objects, root, path, start)

    def walk(self, root: str, path: str = ROOT) -> Iterator[Node]:
        """Every directory and file under ``path`` (not ``path`` itself), depth-first, sorted."""
        return read.walk(self._objects, root, path)

    def glob(self, root: str, pattern: str, *, captures: bool = False) -> Iterator[Node]:
        """Files and directories matching ``pattern``, depth-first in name order (``captures``:
        parentheses are capture groups, see :mod:`tusk.pfs.glob`)."""
        return read.glob(self._objects, root, pattern, captures=captures)

    def diff(
        self, new_root: str, old_root: str | None, path: str = ROOT, *, shallow: bool = False
    ) -> tuple[list[Node], list[Node]]:
        """(new files, old files) under ``path``; a changed file is in both lists."""
        return diff.diff(self._objects, new_root, old_root, path, shallow=shallow)

    def referenced(self, root: str, seen: set[str]) -> None:
        """Add the id of every object the tree ``root`` uses to ``seen`` (directories, pages and
        the objects holding file chunks); subtrees already in ``seen`` are skipped."""
        read.referenced(self._objects, root, seen)

    def added_bytes(self, new_root: str, old_root: str | None) -> int:
        """The size of the new and changed files of ``new_root`` (what :meth:`diff` lists as
        new), without listing them."""
        return diff.added_bytes(self._objects, new_root, old_root)

    def glob_diff(
        self, pattern: str, new_root: str, old_root: str
    ) -> list[tuple[str, Node | None, Node | None]]:
        """``(path, new node, old node)`` of the glob matches that differ between two trees
        (None on the side without that match), reading only the subtrees that differ."""
        return diff.glob_diff(self._objects, pattern, new_root, old_root)

    def apply(self, root: str, ops: Iterable[Op]) -> str:
        """Apply ``ops`` in order to the tree ``root`` and return the new root id.

        Only the directories on the paths of changed entries are rewritten. Every op is
        validated before anything is written, so a failing op leaves no new root behind. The new
        directory objects are durable when this returns (the store is synced), so the root may be
        recorded in metadata at once.
        """
        return write.apply(self._objects, root, ops)
