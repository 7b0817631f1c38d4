"""Reading trees: one path, a directory's children, a walk, a glob."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from tusk.errors import InvalidPath, NotFound
from tusk.pfs.glob import GlobPattern, compile_glob
from tusk.pfs.paths import ROOT, clean_path, join_path, split_path
from tusk.pfs.tree.objects import NO_SHARED, Entry, Index, Node, Shared, TreeObjects, to_node


def get(objects: TreeObjects, root: str, path: str) -> Node | None:
    """The file or directory at ``path``, or None."""
    path = clean_path(path)
    e = objects.dir_entry(root, split_path(path))
    return None if e is None else to_node(path, e)


def _existing(objects: TreeObjects, root: str, path: str) -> Entry:
    e = objects.dir_entry(root, split_path(path))
    if e is None:
        raise NotFound(f"file {path} not found", hint="check the path with list-file")
    return e


def shared(objects: TreeObjects, root: str, path: str) -> Shared:
    """The header and footer of the directory at ``path`` (none for a file or a missing path)."""
    e = objects.dir_entry(root, split_path(clean_path(path)))
    if e is None or "d" not in e:
        return NO_SHARED
    return objects.load(e["d"]).shared


def list_dir(objects: TreeObjects, root: str, path: str, start: int = 0) -> Iterator[Node]:
    """Children of the directory at ``path``, sorted by name, from the ``start``-th on."""
    path = clean_path(path)
    e = _existing(objects, root, path)
    if "d" not in e:
        raise InvalidPath(
            f"path ({path}) invalid: {path} is a file, not a directory",
            hint="use get-file or inspect-file for a file",
            path=path,
        )
    return (to_node(join_path(path, c["n"]), c) for c in objects.entries_from(e["d"], start))


def walk(objects: TreeObjects, root: str, path: str) -> Iterator[Node]:
    """Every directory and file under ``path`` (not ``path`` itself), depth-first, sorted."""
    path = clean_path(path)
    e = _existing(objects, root, path)
    if "d" in e:
        yield from _walk(objects, path, e["d"])


def _walk(objects: TreeObjects, path: str, dir_id: str) -> Iterator[Node]:
    for c in objects.entries(dir_id):
        child = join_path(path, c["n"])
        yield to_node(child, c)
        if "d" in c:
            yield from _walk(objects, child, c["d"])


def glob(
    objects: TreeObjects, root: str, pattern: str, *, captures: bool = False
) -> Iterator[Node]:
    """Files and directories matching ``pattern``, depth-first in name order.

    Literal components are looked up directly and subtrees that cannot hold a match are not
    read, so ``/*`` reads only the root directory.
    """
    g = compile_glob(pattern, captures)
    if g.matches_root_only:
        root_entry = objects.dir_entry(root, [])
        assert root_entry is not None
        yield to_node(ROOT, root_entry)
        return
    prefix = list(g.literal_prefix_parts)
    e = objects.dir_entry(root, prefix)
    if e is None:
        return
    start = "/" + "/".join(prefix)
    if g.is_literal:
        yield to_node(start, e)
        return
    if "d" in e:
        yield from _glob(objects, g, start, e["d"], len(prefix))


def _glob(
    objects: TreeObjects, g: GlobPattern, path: str, dir_id: str, depth: int
) -> Iterator[Node]:
    name = g.segment_literal(depth)
    children: Iterable[Entry]
    if name is not None:
        hit = objects.lookup(dir_id, name)
        children = () if hit is None else (hit,)
    else:
        children = objects.entries(dir_id)
    for c in children:
        child = join_path(path, c["n"])
        if g.match(child):
            yield to_node(child, c)
        if "d" in c and g.could_match_under(child):
            yield from _glob(objects, g, child, c["d"], depth + 1)


def referenced(objects: TreeObjects, root: str, seen: set[str]) -> None:
    """Add to ``seen`` every object the tree ``root`` uses: its directory objects, the pages of
    large directories and the objects that hold its files' chunks and directories' headers and
    footers. A directory already in
    ``seen`` is not read again, so the trees of many commits cost what they do not share."""
    stack = [root]
    while stack:
        dir_id = stack.pop()
        if dir_id in seen:
            continue
        seen.add(dir_id)
        obj = objects.load(dir_id)
        if isinstance(obj, Index):
            seen.update(row[1] for row in obj.rows)
        seen.update(c.object for c in (*obj.shared.header, *obj.shared.footer))
        for e in objects.entries(dir_id):
            if "d" in e:
                stack.append(e["d"])
            else:
                seen.update(str(c[1]) for c in e["c"])
