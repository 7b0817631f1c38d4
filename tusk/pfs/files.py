"""Files: reads (get, list, glob, inspect, diff) and the write path (put, delete, copy).

A put-file batch (:mod:`tusk.pfs.put`) ingests as the bytes stream in and writes through here.

Writes go in the order that makes a crash harmless: objects first (the ingestor flushes), then the
tree objects, then one transaction that moves the open commit's tree or finishes a new commit and
moves the branch head. A crash before that transaction leaves only unreferenced objects; both
moves are compare-and-swap, so two writers never lose each other's work.
"""

from __future__ import annotations

import builtins
import contextlib
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from tusk.api.models import CommitKey, DiffResult, FileInfo
from tusk.errors import (
    AlreadyExists,
    CommitFailed,
    CommitFinished,
    Conflict,
    InvalidPath,
    NotFound,
    OutputBranch,
)
from tusk.ids import new_id, parse_commit_ref
from tusk.meta import CommitRow, Tx
from tusk.pfs.commits import is_output_branch, resolve
from tusk.pfs.context import SPEC_REPO, PfsContext
from tusk.pfs.glob import compile_glob
from tusk.pfs.paths import clean_path, parent_and_name, validate_branch_name
from tusk.pfs.put import BuildOps, BuildRoot, PutBatch
from tusk.pfs.repos import require_repo
from tusk.pfs.tree import EMPTY_ROOT, Delete, Node, Op, PutFile, SetShared
from tusk.storage import ChunkRef, file_hash, read_chunks

MAX_WRITE_ATTEMPTS = 50


def has_glob(path: str) -> bool:
    """Whether ``path`` holds glob syntax (and so names a set of files)."""
    return any(c in path for c in "*?[]{}!")


def node_info(node: Node, children: Sequence[str] = ()) -> FileInfo:
    """The wire form of a tree node."""
    return FileInfo(
        path=node.path,
        type=node.kind,
        size_bytes=node.size,
        hash=node.hash,
        children=list(children),
        file_count=node.file_count if node.kind == "dir" else 1,
    )


def _no_header(path: str) -> InvalidPath:
    return InvalidPath(
        f"cannot read directory {path}, no header or footer",
        hint="use get-file -r -o <dir> to download a directory, or give it a header with "
        "put-header",
    )


def node_dict(node: Node) -> dict[str, object]:
    """:func:`node_info` as its JSON value (what ``node_info(node).model_dump(mode="json")``
    gives), without building the model: for listings streamed by the thousand."""
    return {
        "path": node.path,
        "type": node.kind,
        "size_bytes": node.size,
        "hash": node.hash,
        "children": [],
        "file_count": node.file_count if node.kind == "dir" else 1,
    }


@dataclass(frozen=True)
class Target:
    """Where a write lands: an open commit (by id or as a branch head) or a new auto-commit."""

    repo: str
    base_root: str
    open_commit: str | None  # write into this open commit
    branch: str | None  # else auto-commit on this branch, parent = head
    head: str | None


class FileService:
    """Files in commits: reads (get, list, glob, inspect, walk, diff) and writes."""

    def __init__(self, ctx: PfsContext) -> None:
        self.ctx = ctx

    # -- target resolution -------------------------------------------------------------------
    def _target(self, tx: Tx, repo: str, ref: str, *, internal: bool = False) -> Target:
        require_repo(tx, repo)
        parsed = parse_commit_ref(ref)
        if parsed.is_id or parsed.ancestors:
            row = resolve(tx, repo, ref)
            if row.finished is not None:
                raise CommitFinished(
                    f"commit {row.id} in repo {repo} has already finished",
                    hint=f"write to a branch instead (tusk put-file {repo} master …)",
                )
            return Target(repo, row.tree or EMPTY_ROOT, row.id, None, None)
        branch = parsed.base
        if repo != SPEC_REPO:
            validate_branch_name(branch)
        if not internal and is_output_branch(tx, repo, branch):
            raise OutputBranch(
                f"cannot write to output branch {repo}/{branch}",
                hint="output branches are written by their pipeline",
            )
        b = tx.get_branch(repo, branch)
        head = tx.get_commit(repo, b.head) if b and b.head else None
        if head is not None and head.finished is None:
            return Target(repo, head.tree or EMPTY_ROOT, head.id, None, None)
        base = head.tree if head is not None and head.tree else EMPTY_ROOT
        return Target(repo, base, None, branch, head.id if head else None)

    def check_writable(self, repo: str, ref: str) -> None:
        """Raise now if ``repo@ref`` cannot take writes (before any bytes are sent)."""
        with self.ctx.meta.transaction(write=False) as tx:
            self._target(tx, repo, ref)

    def _write(
        self,
        repo: str,
        ref: str,
        build: BuildOps,
        *,
        description: str = "",
    ) -> CommitKey:
        """Apply ``build(base_root)`` to the target, retrying on concurrent writers."""

        def make_root(base: str) -> str:
            return self.ctx.tree.apply(base, build(base))

        return self._write_root(repo, ref, make_root, description=description)

    def _write_root(
        self,
        repo: str,
        ref: str,
        make_root: BuildRoot,
        *,
        description: str = "",
    ) -> CommitKey:
        """Commit ``make_root(base_root)`` (the tree written onto the target's) to the target,
        retrying on concurrent writers."""
        for _ in range(MAX_WRITE_ATTEMPTS):
            with self.ctx.meta.transaction(write=False) as tx:
                t = self._target(tx, repo, ref)
            root = make_root(t.base_root)
            # Repo size counts new and changed files, as finish-commit does for open commits.
            added = 0
            if t.open_commit is None:
                added = self.ctx.tree.added_bytes(root, t.base_root)
            with self.ctx.meta.transaction() as tx:
                if t.open_commit is not None:
                    ok = tx.update_commit(
                        repo, t.open_commit, expect_open=True, expect_tree=t.base_root, tree=root
                    )
                    if ok:
                        return CommitKey(repo=repo, id=t.open_commit)
                    continue
                assert t.branch is not None
                if tx.get_branch(repo, t.branch) is None:
                    from tusk.meta import BranchRow

                    # Another first writer may create it between the read and the insert: its
                    # branch is as good as ours, and the head's compare-and-swap below decides.
                    with contextlib.suppress(AlreadyExists):
                        tx.insert_branch(BranchRow(repo, t.branch, None, self.ctx.clock()))
                now = self.ctx.clock()
                size, _ = self.ctx.tree.stats(root)
                row = tx.insert_commit(
                    CommitRow(
                        repo=repo,
                        id=new_id(),
                        started=now,
                        finished=now,
                        parent=t.head,
                        branch=t.branch,
                        origin="auto",
                        tree=root,
                        size_bytes=size,
                        description=description,
                    )
                )
                if not tx.set_branch_head(repo, t.branch, row.id, expect=t.head):
                    tx.rollback()
                    continue
                tx.add_repo_size(repo, added)
            self.ctx.feed.publish("head", repo, t.branch)
            self.ctx.feed.publish("finish", repo, row.id)
            return CommitKey(repo=repo, id=row.id)
        raise Conflict(f"too many concurrent writers on {repo}@{ref}", hint="retry the command")

    # -- put ---------------------------------------------------------------------------------
    def open_put(self, repo: str, ref: str) -> PutBatch:
        """Start a put-file batch into ``repo@ref``; its ``commit`` writes it."""
        self.check_writable(repo, ref)

        def write(make_root: BuildRoot, description: str) -> CommitKey:
            return self._write_root(repo, ref, make_root, description=description)

        return PutBatch(self.ctx.store, self.ctx.tree, write)

    # -- delete / copy -----------------------------------------------------------------------
    def delete(self, repo: str, ref: str, paths: Sequence[str]) -> CommitKey:
        """Delete files, directories or glob matches in one commit."""

        def build(root: str) -> builtins.list[Op]:
            ops: builtins.list[Op] = []
            for p in paths:
                if has_glob(p):
                    ops.extend(Delete(n.path) for n in self.ctx.tree.glob(root, p))
                else:
                    ops.append(Delete(clean_path(p)))
            return ops

        for p in paths:
            if not has_glob(p):
                clean_path(p)
        return self._write(repo, ref, build)

    def clear(self, repo: str, ref: str) -> CommitKey:
        """Drop every change an open commit holds: it reads as its parent again (2.x
        ClearCommit). A finished commit is refused."""
        with self.ctx.meta.transaction(write=False) as tx:
            row = resolve(tx, repo, ref)
            parent = tx.get_commit(repo, row.parent) if row.parent else None
        if row.finished is not None:
            raise CommitFinished(
                f"cannot clear finished commit {row.id} in repo {repo}",
                hint="only an open commit (start-commit, not finished yet) can be cleared",
            )
        base = parent.tree if parent is not None and parent.tree else EMPTY_ROOT
        return self._write_root(repo, row.id, lambda _current: base)

    def copy(
        self,
        src_repo: str,
        src_ref: str,
        src_path: str,
        dst_repo: str,
        dst_ref: str,
        dst_path: str,
        overwrite: bool = False,
    ) -> CommitKey:
        """Copy a file or directory from one commit into another (appending unless ``overwrite``)."""
        src_root = self._read_root(src_repo, src_ref)
        src_path, dst_path = clean_path(src_path), clean_path(dst_path)
        node = self.ctx.tree.get(src_root, src_path)
        if node is None:
            raise NotFound(f"file {src_path} not found in repo {src_repo} at commit {src_ref}")
        below = [] if node.kind == "file" else list(self.ctx.tree.walk(src_root, src_path))
        files = [node] if node.kind == "file" else [n for n in below if n.kind == "file"]
        # directories keep their headers and footers when copied
        shared: builtins.list[Op] = []
        for d in [node, *below] if node.kind == "dir" else []:
            if d.kind == "dir" and d.id is not None and (sh := self.ctx.tree.shared_of(d.id)):
                dest = clean_path(dst_path + d.path[len(src_path) :])
                shared.append(SetShared(dest, "header", sh.header))
                shared.append(SetShared(dest, "footer", sh.footer))

        def build(root: str) -> builtins.list[Op]:
            ops: builtins.list[Op] = [Delete(dst_path)] if overwrite else []
            ops.extend(shared)
            for f in files:
                rel = f.path[len(src_path) :] if node.kind == "dir" else ""
                dest = clean_path(dst_path + rel) if rel else dst_path
                chunks = list(f.chunks)
                old = None if overwrite else self.ctx.tree.get(root, dest)
                if old is not None and old.kind == "file":
                    chunks = [*old.chunks, *chunks]
                ops.append(
                    PutFile(dest, tuple(chunks), sum(c.length for c in chunks), file_hash(chunks))
                )
            return ops

        return self._write(dst_repo, dst_ref, build)

    # -- reads -------------------------------------------------------------------------------
    def _read_root(self, repo: str, ref: str) -> str:
        with self.ctx.meta.transaction(write=False) as tx:
            row = resolve(tx, repo, ref)
        if row.failed:
            raise CommitFailed(
                f"commit {row.id} in repo {repo} failed: {row.reason or 'its job failed'}",
                hint=f"see `tusk list-job` and `tusk get-logs`; earlier commits: tusk list-commit {repo}",
            )
        return row.tree or EMPTY_ROOT

    def get(
        self,
        repo: str,
        ref: str,
        path: str,
        offset: int = 0,
        length: int = -1,
        *,
        headers: bool = True,
    ) -> Iterator[bytes]:
        """Bytes of a file, or of every file matching a glob, concatenated in path order.

        Directory headers and footers (put-header / put-footer, ``--split sql``) are read as
        1.7 reads them: a file reads as its directory's header, its content and the footer; a
        directory reads as its header, every file below it in path order (subdirectories inside
        their own header and footer) and its footer, and cannot be read without one; a glob of
        files inside one directory reads inside that directory's header and footer.
        ``headers=False`` reads the stored bytes only (the 2.x API: no headers there, and each
        file is exactly its stored size).
        """
        root = self._read_root(repo, ref)
        if not headers:
            return self._stream(self._raw_pieces(root, repo, ref, path), offset, length)
        if has_glob(path):
            pieces = self._glob_pieces(root, path)
        else:
            node = self.ctx.tree.get(root, clean_path(path))
            if node is None:
                raise NotFound(
                    f"file {clean_path(path)} not found in repo {repo} at commit {ref}",
                    hint=f"list files with `tusk list-file {repo} {ref}`",
                )
            if node.kind == "dir":
                found: builtins.list[bool] = []
                pieces = [self._dir_chunks(root, node, found)]
                if not found:
                    raise _no_header(node.path)
            else:
                pieces = [self.file_chunks(root, node)]
        return self._stream(pieces, offset, length)

    def _raw_pieces(
        self, root: str, repo: str, ref: str, path: str
    ) -> builtins.list[builtins.list[ChunkRef]]:
        if has_glob(path):
            files = [n for n in self.ctx.tree.glob(root, path) if n.kind == "file"]
            if not files:
                raise NotFound(f"no file(s) found that match {path}")
            return [builtins.list(f.chunks) for f in files]
        node = self.ctx.tree.get(root, clean_path(path))
        if node is None:
            raise NotFound(f"file {clean_path(path)} not found in repo {repo} at commit {ref}")
        if node.kind == "dir":
            raise _no_header(node.path)
        return [builtins.list(node.chunks)]

    def file_chunks(self, root: str, node: Node) -> builtins.list[ChunkRef]:
        """The chunks a file reads as: its directory's header, its own, the footer."""
        sh = self.ctx.tree.shared(root, parent_and_name(node.path)[0])
        if not sh:
            return list(node.chunks)
        return [*sh.header, *node.chunks, *sh.footer]

    def _dir_chunks(
        self, root: str, node: Node, found: builtins.list[bool]
    ) -> builtins.list[ChunkRef]:
        """A directory's header, every file below it in path order, its footer; ``found`` gets
        an entry for each header or footer on the way."""
        assert node.id is not None
        sh = self.ctx.tree.shared_of(node.id)
        if sh:
            found.append(True)
        out = list(sh.header)
        for child in self.ctx.tree.list_dir(root, node.path):
            if child.kind == "dir":
                out.extend(self._dir_chunks(root, child, found))
            else:
                out.extend(child.chunks)
        out.extend(sh.footer)
        return out

    def _glob_pieces(self, root: str, pattern: str) -> builtins.list[builtins.list[ChunkRef]]:
        matches = builtins.list(self.ctx.tree.glob(root, pattern))
        if not matches:
            raise NotFound(f"no file(s) found that match {pattern}")
        # matched directories with a header or footer (here or below) read whole, and the
        # matches below them are in them already; other directories add nothing
        pieces: builtins.list[builtins.list[ChunkRef]] = []
        found: builtins.list[bool] = []
        covered = ""
        for m in matches:
            if covered and m.path.startswith(covered):
                continue
            if m.kind == "file":
                pieces.append(builtins.list(m.chunks))
                continue
            before = len(found)
            chunks = self._dir_chunks(root, m, found)
            if len(found) > before:
                pieces.append(chunks)
                covered = m.path.rstrip("/") + "/"
        if not pieces:
            raise _no_header(next(m.path for m in matches if m.kind == "dir"))
        if not found:
            # only files: the files of one directory read inside its header and footer, once
            parent = ("/" + pattern.strip("/")).rpartition("/")[0] or "/"
            sh = self.ctx.tree.shared(root, parent) if not has_glob(parent) else None
            if sh:
                return [[*sh.header, *(c for p in pieces for c in p), *sh.footer]]
        return pieces

    def _stream(
        self, pieces: builtins.list[builtins.list[ChunkRef]], offset: int, length: int
    ) -> Iterator[bytes]:
        for chunks in pieces:
            yield from read_chunks(self.ctx.store, chunks, offset, length)

    def inspect(self, repo: str, ref: str, path: str) -> FileInfo:
        """One file or directory, with a directory's child names."""
        root = self._read_root(repo, ref)
        node = self.ctx.tree.get(root, clean_path(path))
        if node is None:
            raise NotFound(f"file {clean_path(path)} not found in repo {repo} at commit {ref}")
        children = (
            [c.path.rsplit("/", 1)[-1] for c in self.ctx.tree.list_dir(root, node.path)]
            if node.kind == "dir"
            else []
        )
        return node_info(node, children)

    def changes(self, repo: str, ref: str, path: str) -> Iterator[tuple[str, bool]]:
        """Each commit from ``ref`` back through its ancestors, newest first, and whether it
        changed ``path`` (the file, or anything under the directory) from its parent: what 2.x
        FindCommits searches. The Merkle hashes make each step two lookups, whatever the size
        of the tree."""
        path = clean_path(path)
        with self.ctx.meta.transaction(write=False) as tx:
            row: CommitRow | None = resolve(tx, repo, ref)
        while row is not None:
            with self.ctx.meta.transaction(write=False) as tx:
                parent = tx.get_commit(repo, row.parent) if row.parent else None
            new = self.ctx.tree.get(row.tree or EMPTY_ROOT, path)
            old = self.ctx.tree.get(parent.tree or EMPTY_ROOT, path) if parent else None
            yield row.id, (new.hash if new else None) != (old.hash if old else None)
            row = parent

    def list(self, repo: str, ref: str, path: str = "/") -> builtins.list[FileInfo]:
        """What list-file shows: a directory's children or a file, for ``path`` or each glob match."""
        return [node_info(n) for n in self.list_nodes(repo, ref, path)]

    def list_nodes(self, repo: str, ref: str, path: str = "/") -> Iterator[Node]:
        """:meth:`list` as tree nodes, read as they are consumed (a directory of any size costs
        one page at a time). A missing repo, commit or path raises here, before the first node."""
        root = self._read_root(repo, ref)
        if has_glob(path):
            compile_glob(path)
            return self._children(root, self.ctx.tree.glob(root, path))
        node = self.ctx.tree.get(root, clean_path(path))
        if node is None:
            raise NotFound(f"file {clean_path(path)} not found in repo {repo} at commit {ref}")
        if node.kind == "dir":
            return self.ctx.tree.list_dir(root, node.path)
        return iter([node])

    def _children(self, root: str, matches: Iterator[Node]) -> Iterator[Node]:
        for m in matches:
            if m.kind == "dir":
                yield from self.ctx.tree.list_dir(root, m.path)
            else:
                yield m

    def list_page(
        self, repo: str, ref: str, path: str = "/", offset: int = 0, limit: int = 100
    ) -> tuple[builtins.list[FileInfo], bool]:
        """One page of a directory's children in name order (or the file at ``path``), and
        whether more follow; only the directory pages that hold the page's entries are read."""
        root = self._read_root(repo, ref)
        node = self.ctx.tree.get(root, clean_path(path))
        if node is None:
            raise NotFound(f"file {clean_path(path)} not found in repo {repo} at commit {ref}")
        if node.kind != "dir":
            return ([node_info(node)] if offset == 0 else []), False
        entries = itertools.islice(self.ctx.tree.list_dir(root, node.path, offset), limit + 1)
        items = [node_info(n) for n in entries]
        return items[:limit], len(items) > limit

    def glob(self, repo: str, ref: str, pattern: str) -> builtins.list[FileInfo]:
        """Files and directories matching ``pattern``."""
        return [node_info(n) for n in self.glob_nodes(repo, ref, pattern)]

    def glob_nodes(self, repo: str, ref: str, pattern: str) -> Iterator[Node]:
        """:meth:`glob` as tree nodes, read as they are consumed (errors raise before the first)."""
        compile_glob(pattern)
        root = self._read_root(repo, ref)
        return self.ctx.tree.glob(root, pattern)

    def walk(self, repo: str, ref: str, path: str = "/") -> builtins.list[FileInfo]:
        """Every file and directory under ``path``, depth-first."""
        return [node_info(n) for n in self.walk_nodes(repo, ref, path)]

    def walk_nodes(self, repo: str, ref: str, path: str = "/") -> Iterator[Node]:
        """:meth:`walk` as tree nodes, read as they are consumed (errors raise before the first)."""
        root = self._read_root(repo, ref)
        p = clean_path(path)
        node = self.ctx.tree.get(root, p)
        if node is None:
            raise NotFound(f"file {p} not found in repo {repo} at commit {ref}")
        if node.kind == "file":
            return iter([node])
        return self.ctx.tree.walk(root, p)

    def diff(
        self,
        new_repo: str,
        new_ref: str,
        new_path: str,
        old_repo: str | None = None,
        old_ref: str | None = None,
        old_path: str | None = None,
        shallow: bool = False,
    ) -> DiffResult:
        """Files that differ between a commit and its parent (or another commit)."""
        new_root = self._read_root(new_repo, new_ref)
        path = clean_path(new_path)
        if old_ref is None:
            with self.ctx.meta.transaction(write=False) as tx:
                row = resolve(tx, new_repo, new_ref)
                parent = tx.get_commit(new_repo, row.parent) if row.parent else None
            old_root = parent.tree if parent is not None and parent.tree else EMPTY_ROOT
        else:
            old_root = self._read_root(old_repo or new_repo, old_ref)
            if old_path is not None and clean_path(old_path) != path:
                raise InvalidPath(
                    "diff-file compares the same path in both commits",
                    hint="give the same path twice, or omit the old path",
                )
        new, old = self.ctx.tree.diff(new_root, old_root, path, shallow=shallow)
        return DiffResult(
            new_files=[node_info(n) for n in new], old_files=[node_info(n) for n in old]
        )
