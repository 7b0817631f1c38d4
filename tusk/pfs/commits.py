"""Commits and branches: refs, start/finish, inspect/list, delete, subscribe."""

from __future__ import annotations

import builtins
import re
import threading
from collections.abc import Callable, Generator, Iterator, Sequence

from tusk.api.models import BranchInfo, BranchKey, CommitInfo, CommitKey, ProvenanceEntry
from tusk.errors import (
    CommitFinished,
    Conflict,
    HasDependents,
    InvalidArgument,
    NotFound,
    OutputBranch,
)
from tusk.ids import new_id, parse_commit_ref
from tusk.meta import BranchRow, CommitRow, Tx
from tusk.pfs.context import SPEC_REPO, PfsContext, to_datetime
from tusk.pfs.paths import validate_branch_name
from tusk.pfs.repos import require_repo
from tusk.pfs.tree import EMPTY_ROOT

_HEX = re.compile(r"[0-9a-fA-F]+")
COMMIT_PAGE = 500  # commits per read transaction of a streamed listing


def commit_not_found(repo: str, commit: str) -> NotFound:
    """The error for a commit ref that names no commit of ``repo``."""
    return NotFound(
        f"commit {commit} not found in repo {repo}",
        hint=f"list commits with `tusk list-commit {repo}`",
        repo=repo,
        commit=commit,
    )


def resolve(tx: Tx, repo: str, ref: str) -> CommitRow:
    """Resolve ``id``, ``branch``, ``branch^``, ``branch~2`` … to a commit row."""
    require_repo(tx, repo)
    parsed = parse_commit_ref(ref)
    if parsed.is_id:
        row = tx.get_commit(repo, parsed.base)
        if row is None:
            raise commit_not_found(repo, parsed.base)
    else:
        branch = tx.get_branch(repo, parsed.base)
        if branch is None and _HEX.fullmatch(parsed.base):
            # 1.7 looks a non-id up as a branch and then reports the commit missing; ids are
            # matched whole (no prefixes), as in 1.7
            raise NotFound(
                f"commit {parsed.base} not found in repo {repo}",
                hint=f"commit ids are 32 hex digits (no prefixes); list them with "
                f"`tusk list-commit {repo}`",
                repo=repo,
                commit=parsed.base,
            )
        if branch is None:
            raise NotFound(
                f"branch {parsed.base} not found in repo {repo}",
                hint=f"list branches with `tusk list-branch {repo}`",
            )
        if branch.head is None:
            raise NotFound(f'the branch "{parsed.base}" has no head (create one with start-commit)')
        row = tx.get_commit(repo, branch.head)
        if row is None:
            raise commit_not_found(repo, branch.head)
    for _ in range(parsed.ancestors):
        if row.parent is None:
            raise NotFound(f"parent commit {row.id} not found in repo {repo}")
        parent = tx.get_commit(repo, row.parent)
        if parent is None:
            raise NotFound(f"parent commit {row.parent} not found in repo {repo}")
        row = parent
    return row


def is_output_branch(tx: Tx, repo: str, branch: str) -> bool:
    """Whether a pipeline writes ``repo/branch`` (it has provenance)."""
    return bool(tx.branch_provenance(repo, branch))


def commit_info(tx: Tx, row: CommitRow) -> CommitInfo:
    """The wire form of a commit row, with its children and provenance."""
    return _info(
        row,
        tx.children(row.repo, row.id),
        tx.commit_provenance(row.repo, row.id),
        tx.commit_subvenance(row.repo, row.id),
    )


def _info(
    row: CommitRow,
    children: builtins.list[str],
    provenance: Sequence[tuple[str, str, str | None]],
    subvenance: Sequence[tuple[str, str]],
) -> CommitInfo:
    started = to_datetime(row.started)
    assert started is not None
    return CommitInfo(
        commit=CommitKey(repo=row.repo, id=row.id),
        branch=row.branch,
        parent=row.parent,
        children=children,
        started=started,
        finished=to_datetime(row.finished),
        size_bytes=row.size_bytes,
        description=row.description,
        origin=row.origin,
        failed=row.failed,
        reason=row.reason,
        provenance=[
            ProvenanceEntry(commit=CommitKey(repo=r, id=i), branch=b) for r, i, b in provenance
        ],
        subvenance=[CommitKey(repo=r, id=i) for r, i in subvenance],
    )


def commit_infos(tx: Tx, rows: Sequence[CommitRow]) -> builtins.list[CommitInfo]:
    """:func:`commit_info` of many commits, their children and provenance read a few queries
    per repo rather than three per commit (a listing's page)."""
    by_repo: dict[str, builtins.list[str]] = {}
    for r in rows:
        by_repo.setdefault(r.repo, []).append(r.id)
    children: dict[tuple[str, str], builtins.list[str]] = {}
    provenance: dict[tuple[str, str], builtins.list[tuple[str, str, str | None]]] = {}
    subvenance: dict[tuple[str, str], builtins.list[tuple[str, str]]] = {}
    for repo, ids in by_repo.items():
        for cid, kids in tx.children_of(repo, ids).items():
            children[repo, cid] = kids
        for cid, prov in tx.provenance_of(repo, ids).items():
            provenance[repo, cid] = prov
        for cid, subv in tx.subvenance_of(repo, ids).items():
            subvenance[repo, cid] = subv
    return [
        _info(
            row,
            children.get((row.repo, row.id), []),
            provenance.get((row.repo, row.id), []),
            subvenance.get((row.repo, row.id), []),
        )
        for row in rows
    ]


class CommitService:
    """Commits and branches of repos: start, finish, read, subscribe, delete."""

    def __init__(self, ctx: PfsContext) -> None:
        self.ctx = ctx

    # -- lifecycle ---------------------------------------------------------------------------
    def start(
        self,
        repo: str,
        branch: str | None = None,
        *,
        parent: str | None = None,
        description: str = "",
        commit_id: str | None = None,
        origin: str = "user",
        provenance: Sequence[tuple[str, str, str | None]] = (),
        internal: bool = False,
    ) -> CommitInfo:
        """Open a new commit on ``branch`` (or detached), its tree copied from the parent."""
        if branch is not None and repo != SPEC_REPO:
            validate_branch_name(branch)
        with self.ctx.meta.transaction() as tx:
            require_repo(tx, repo)
            brow = tx.get_branch(repo, branch) if branch else None
            if brow is not None and not internal and is_output_branch(tx, repo, branch or ""):
                raise OutputBranch(
                    f"cannot start a commit on an output branch ({repo}/{branch})",
                    hint="output branches are written by their pipeline; use another branch",
                )
            parent_row: CommitRow | None = None
            if parent:
                parent_row = resolve(tx, repo, parent)
            elif brow is not None and brow.head is not None:
                parent_row = tx.get_commit(repo, brow.head)
            if parent_row is not None and parent_row.finished is None and not internal:
                raise Conflict(
                    f"parent commit {parent_row.id} has not been finished",
                    hint=f"finish it first: tusk finish-commit {repo} {parent_row.id}",
                )
            row = tx.insert_commit(
                CommitRow(
                    repo=repo,
                    id=commit_id or new_id(),
                    started=self.ctx.clock(),
                    parent=parent_row.id if parent_row else None,
                    branch=branch,
                    origin=origin,
                    tree=parent_row.tree if parent_row and parent_row.tree else EMPTY_ROOT,
                    description=description,
                ),
                provenance,
            )
            if branch:
                if brow is None:
                    tx.insert_branch(BranchRow(repo, branch, row.id, self.ctx.clock()))
                else:
                    tx.set_branch_head(repo, branch, row.id)
            info = commit_info(tx, row)
        if branch:
            self.ctx.feed.publish("head", repo, branch)
        return info

    def finish(
        self,
        repo: str,
        ref: str,
        description: str | None = None,
        *,
        tree: str | None = None,
        failed: bool = False,
        reason: str = "",
        internal: bool = False,
    ) -> CommitInfo:
        """Finish an open commit: record its tree and size, and its failure if any."""
        with self.ctx.meta.transaction() as tx:
            row = resolve(tx, repo, ref)
            if row.finished is not None:
                raise CommitFinished(
                    f"commit {row.id} in repo {repo} has already finished",
                    hint="start a new commit (or put to the branch, which makes one)",
                )
            if not internal and row.branch and is_output_branch(tx, repo, row.branch):
                raise OutputBranch(f"cannot finish a commit on an output branch ({repo})")
            root = tree if tree is not None else (row.tree or EMPTY_ROOT)
            if failed:
                root = EMPTY_ROOT
            size, _ = self.ctx.tree.stats(root)
            added = self._added_bytes(tx, row, root)
            values: dict[str, object] = {
                "finished": self.ctx.clock(),
                "tree": None if failed else root,
                "size_bytes": size,
                "failed": failed,
                "reason": reason,
            }
            if description is not None:
                values["description"] = description
            if not tx.update_commit(repo, row.id, expect_open=True, **values):
                raise CommitFinished(f"commit {row.id} in repo {repo} has already finished")
            tx.add_repo_size(repo, added)
            info = commit_info(tx, resolve(tx, repo, row.id))
        self.ctx.feed.publish("finish", repo, row.id)
        return info

    def commit_tree(
        self,
        repo: str,
        branch: str,
        root: str,
        *,
        parent: str | None,
        provenance: Sequence[tuple[str, str, str | None]] = (),
        origin: str = "auto",
        description: str = "",
        still: Callable[[Tx], bool] | None = None,
    ) -> CommitInfo | None:
        """Add a finished commit of tree ``root`` on ``branch`` in one transaction (a spout's
        tar stream); None, and nothing written, when the branch's head is no longer ``parent``
        or ``still`` (asked inside the transaction) says the commit is no longer wanted."""
        with self.ctx.meta.transaction() as tx:
            require_repo(tx, repo)
            brow = tx.get_branch(repo, branch)
            if (brow.head if brow is not None else None) != parent:
                return None
            if still is not None and not still(tx):
                return None
            now = self.ctx.clock()
            size, _ = self.ctx.tree.stats(root)
            row = CommitRow(
                repo=repo,
                id=new_id(),
                started=now,
                parent=parent,
                branch=branch,
                origin=origin,
                finished=now,
                tree=root,
                size_bytes=size,
                description=description,
            )
            row = tx.insert_commit(row, provenance)
            if brow is None:
                tx.insert_branch(BranchRow(repo, branch, row.id, now))
            else:
                tx.set_branch_head(repo, branch, row.id)
            tx.add_repo_size(repo, self._added_bytes(tx, row, root))
            info = commit_info(tx, row)
        self.ctx.feed.publish("head", repo, branch)
        self.ctx.feed.publish("finish", repo, row.id)
        return info

    def _added_bytes(self, tx: Tx, row: CommitRow, root: str) -> int:
        parent_root = EMPTY_ROOT
        if row.parent:
            p = tx.get_commit(row.repo, row.parent)
            if p is not None and p.tree:
                parent_root = p.tree
        return self.ctx.tree.added_bytes(root, parent_root)

    # -- reads -------------------------------------------------------------------------------
    def inspect(self, repo: str, ref: str) -> CommitInfo:
        """The commit ``ref`` names in ``repo``."""
        with self.ctx.meta.transaction(write=False) as tx:
            return commit_info(tx, resolve(tx, repo, ref))

    def list(
        self, repo: str, to: str | None = None, from_: str | None = None, number: int = 0
    ) -> builtins.list[CommitInfo]:
        """Commits of ``repo``, newest first; with ``to``, its ancestry back to ``from_``."""
        if from_ and not to:
            raise InvalidArgument(
                "--from requires a commit or branch to list to",
                hint="tusk list-commit <repo> <branch> --from <commit>",
            )
        with self.ctx.meta.transaction(write=False) as tx:
            require_repo(tx, repo)
            if not to:
                rows = tx.list_commits(repo, limit=number)
            else:
                stop = resolve(tx, repo, from_).id if from_ else None
                rows = []
                cur: CommitRow | None = resolve(tx, repo, to)
                while cur is not None and cur.id != stop:
                    rows.append(cur)
                    if number and len(rows) >= number:
                        break
                    cur = tx.get_commit(repo, cur.parent) if cur.parent else None
            return commit_infos(tx, rows)

    def iter_list(
        self, repo: str, to: str | None = None, from_: str | None = None, number: int = 0
    ) -> Iterator[CommitInfo]:
        """:meth:`list`'s commits in its order, read a page at a time (a short read transaction
        each) so that they are never all in memory. Bad arguments raise here, before the first
        commit is read."""
        if from_ and not to:
            self.list(repo, to, from_, number)  # raises its error
        with self.ctx.meta.transaction(write=False) as tx:
            require_repo(tx, repo)
            stop = resolve(tx, repo, from_).id if from_ and to else None
            first = resolve(tx, repo, to) if to else None
        return self._commit_pages(repo, first, stop, number)

    def _commit_pages(
        self, repo: str, first: CommitRow | None, stop: str | None, number: int
    ) -> Iterator[CommitInfo]:
        left = number or -1  # -1: no limit
        before: int | None = None
        cur = first
        while left:
            page = COMMIT_PAGE if left < 0 else min(left, COMMIT_PAGE)
            with self.ctx.meta.transaction(write=False) as tx:
                if first is None:  # every commit of the repo, newest first
                    rows = tx.list_commits(repo, limit=page, before=before)
                    done = len(rows) < page
                else:  # the ancestry of ``first`` back to ``stop``
                    rows = []
                    while cur is not None and cur.id != stop and len(rows) < page:
                        rows.append(cur)
                        cur = tx.get_commit(repo, cur.parent) if cur.parent else None
                    done = cur is None or cur.id == stop
                infos = commit_infos(tx, rows)
            yield from infos
            left -= len(rows) if left > 0 else 0
            if done or not rows:
                return
            before = rows[-1].pk

    def with_id(self, commit_id: str) -> builtins.list[CommitInfo]:
        """Every commit of a commit set (global id), across repos."""
        with self.ctx.meta.transaction(write=False) as tx:
            return commit_infos(tx, tx.commits_with_id(commit_id))

    def subscribe(
        self,
        repo: str,
        branch: str,
        from_: str | None = None,
        new: bool = False,
        stop: threading.Event | None = None,
        poll: float = 1.0,
    ) -> Generator[CommitInfo, None, None]:
        """Yield the branch's commits oldest first, then each new head as the branch moves.

        Bad arguments raise here, and the branch is read here too, before the first commit is
        yielded: a commit made after this call returns is streamed even with ``new``."""
        if new and from_:
            raise InvalidArgument("--new and --from cannot both be given")
        version = self.ctx.feed.version
        seen: set[str] = set()
        history: builtins.list[CommitRow] = []
        with self.ctx.meta.transaction(write=False) as tx:
            require_repo(tx, repo)
            stop_id = resolve(tx, repo, from_).id if from_ else None
            b = tx.get_branch(repo, branch)
            cur = tx.get_commit(repo, b.head) if b and b.head else None
            while cur is not None:
                seen.add(cur.id)
                if cur.id == stop_id:
                    break
                history.append(cur)
                cur = tx.get_commit(repo, cur.parent) if cur.parent else None
        if new:
            history = []
        return self._subscribe(repo, branch, history[::-1], seen, version, stop, poll)

    def _subscribe(
        self,
        repo: str,
        branch: str,
        history: builtins.list[CommitRow],
        seen: set[str],
        version: int,
        stop: threading.Event | None,
        poll: float,
    ) -> Generator[CommitInfo, None, None]:
        if history:
            with self.ctx.meta.transaction(write=False) as tx:
                infos = commit_infos(tx, history)
            yield from infos
        while stop is None or not stop.is_set():
            version = self.ctx.feed.wait(version, poll)
            with self.ctx.meta.transaction(write=False) as tx:
                if tx.get_repo(repo) is None:
                    return
                b = tx.get_branch(repo, branch)
                fresh: builtins.list[CommitRow] = []
                cur = tx.get_commit(repo, b.head) if b and b.head else None
                while cur is not None and cur.id not in seen:
                    fresh.append(cur)
                    seen.add(cur.id)
                    cur = tx.get_commit(repo, cur.parent) if cur.parent else None
                infos = commit_infos(tx, fresh[::-1])
            yield from infos

    # -- delete ------------------------------------------------------------------------------
    def delete(self, repo: str, ref: str) -> builtins.list[CommitKey]:
        """Delete an input commit and every commit downstream of it (a squash-out)."""
        deleted: builtins.list[CommitKey] = []
        with self.ctx.meta.transaction() as tx:
            row = resolve(tx, repo, ref)
            if tx.commit_provenance(repo, row.id) and row.origin != "spec":
                raise InvalidArgument(
                    f'cannot delete the commit "{repo}/{row.id}" because it has non-empty '
                    "provenance",
                    hint="delete the input commit it came from instead",
                )
            todo = [(repo, row.id)]
            while todo:
                r, i = todo.pop()
                if CommitKey(repo=r, id=i) in deleted:
                    continue
                todo.extend(tx.commit_subvenance(r, i))
                target = tx.get_commit(r, i)
                if target is None:
                    continue
                self._remove(tx, target)
                deleted.append(CommitKey(repo=r, id=i))
        for key in deleted:
            self.ctx.feed.publish("delete", key.repo, key.id)
        return deleted

    def _remove(self, tx: Tx, row: CommitRow) -> None:
        """Delete one commit: its children and the branches on it move to its parent."""
        # Take back what finishing it added (1.7 took its whole snapshot size, which drove repo
        # sizes negative); an open commit has added nothing yet.
        if row.finished is not None:
            tx.add_repo_size(row.repo, -self._added_bytes(tx, row, row.tree or EMPTY_ROOT))
        tx.reparent(row.repo, row.id, row.parent)
        for bname in tx.branches_at(row.repo, row.id):
            tx.set_branch_head(row.repo, bname, row.parent)
        tx.delete_commit(row.repo, row.id)

    def drop(self, commit_id: str) -> builtins.list[CommitKey]:
        """Drop a commit set (2.x ``delete commit <id>``, pachd's DropCommitSet): delete every
        commit with the global id ``commit_id``, its data lost; the branches on them move back
        to their parents. As pachd, it is refused when a commit of another set was computed
        from one of them, when one of them is a pipeline's spec commit, and when one of them has
        children (dropping is only for the newest commits; ``squash commit`` keeps a commit's
        data in its children). Nothing changes when it is refused. The jobs of the set are
        the caller's (``Engine.drop_commit_set`` stops them)."""
        with self.ctx.meta.transaction() as tx:
            rows = self._commit_set(tx, commit_id)
            members = {(r.repo, r.id) for r in rows}
            others = sorted(
                {
                    sub[1]
                    for r in rows
                    for sub in tx.commit_subvenance(r.repo, r.id)
                    if sub not in members
                }
            )
            if others:
                raise Conflict(
                    f"commit set {commit_id} cannot be dropped because it has subvenant commit "
                    f"sets: {', '.join(others)}",
                    hint="drop those commit sets first (newest first)",
                )
            for row in rows:
                where = f"{row.repo}@{row.id}"
                if row.repo == SPEC_REPO:
                    raise Conflict(
                        f"cannot drop commit set {commit_id}: commit {where} updated a pipeline",
                        hint="update or delete the pipeline instead",
                    )
                if tx.children(row.repo, row.id):
                    raise Conflict(
                        f"cannot drop a commit that has children: {where}",
                        hint=f"squash it instead (its data stays in its children): "
                        f"tusk squash commit {commit_id}",
                    )
            for row in rows:
                self._remove(tx, row)
        keys = [CommitKey(repo=r.repo, id=r.id) for r in rows]
        for key in keys:
            self.ctx.feed.publish("delete", key.repo, key.id)
        return keys

    def _commit_set(self, tx: Tx, commit_id: str) -> builtins.list[CommitRow]:
        rows = tx.commits_with_id(commit_id)
        if not rows:
            raise NotFound(
                f"commit set {commit_id} not found",
                hint="list the global ids with: tusk list commit",
            )
        return rows

    def squash(self, commit_id: str) -> builtins.list[CommitKey]:
        """Squash a commit set (2.x ``squash commit <id>``): remove every commit with the global
        id ``commit_id`` while its data stays in its child commits (each child already holds
        the whole tree, so only the history changes). As in Pachyderm 2.x, it is refused when
        a commit of the set has no child (squashing it would lose its data: ``delete commit``
        does that); tusk also refuses it when the set is still open, when a branch points at
        one of its commits, and when a commit of another set was computed from one of them
        (its provenance would lose the commit it names). Nothing changes when it is refused."""
        with self.ctx.meta.transaction() as tx:
            rows = self._commit_set(tx, commit_id)
            members = {(r.repo, r.id) for r in rows}
            for row in rows:
                where = f"{row.repo}@{row.id}"
                if row.finished is None:
                    raise Conflict(
                        f"cannot squash commit set {commit_id}: commit {where} is not finished",
                        hint="finish it (or wait for its job) first",
                    )
                if not tx.children(row.repo, row.id):
                    raise Conflict(
                        f"cannot squash commit set {commit_id}: commit {where} has no children, "
                        "so its data would be lost",
                        hint=f"delete it instead: tusk delete commit {commit_id}",
                    )
                if branches := tx.branches_at(row.repo, row.id):
                    raise Conflict(
                        f"cannot squash commit set {commit_id}: branch {row.repo}@{branches[0]} "
                        f"points at commit {where}",
                        hint="move the branch to another commit first",
                    )
                for sub in tx.commit_subvenance(row.repo, row.id):
                    if sub not in members:
                        raise Conflict(
                            f"cannot squash commit set {commit_id}: commit {sub[0]}@{sub[1]} "
                            f"was computed from commit {where}",
                            hint="squash that commit set first, or leave this one",
                        )
            for row in rows:
                tx.reparent(row.repo, row.id, row.parent)
                tx.delete_commit(row.repo, row.id)
        keys = [CommitKey(repo=r.repo, id=r.id) for r in rows]
        for key in keys:
            self.ctx.feed.publish("delete", key.repo, key.id)
        return keys

    # -- branches ----------------------------------------------------------------------------
    def create_branch(
        self,
        repo: str,
        name: str,
        head: str | None = None,
        provenance: Sequence[tuple[str, str]] | None = None,
    ) -> BranchInfo:
        """Create or move a branch; ``provenance`` sets the branches it is built from."""
        if repo != SPEC_REPO:  # the spec repo's branches are pipeline keys (``project/name``)
            validate_branch_name(name)
        with self.ctx.meta.transaction() as tx:
            require_repo(tx, repo)
            head_id = resolve(tx, repo, head).id if head else None
            existing = tx.get_branch(repo, name)
            if existing is None:
                tx.insert_branch(BranchRow(repo, name, head_id, self.ctx.clock()))
            elif head is not None:
                tx.set_branch_head(repo, name, head_id)
            if provenance is not None:
                for pr, pb in provenance:
                    require_repo(tx, pr)
                    if tx.get_branch(pr, pb) is None:
                        tx.insert_branch(BranchRow(pr, pb, None, self.ctx.clock()))
                    if (pr, pb) == (repo, name) or (repo, name) in upstream_branches(tx, (pr, pb)):
                        raise InvalidArgument(
                            f"branch {repo}/{name} cannot be provenance of itself",
                            hint="remove the cycle from -p",
                        )
                tx.set_branch_provenance(repo, name, provenance)
            info = self._branch_info(tx, repo, name)
        self.ctx.feed.publish("head", repo, name)
        return info

    def list_branches(self, repo: str) -> builtins.list[BranchInfo]:
        """Every branch of ``repo``."""
        with self.ctx.meta.transaction(write=False) as tx:
            require_repo(tx, repo)
            return [self._branch_info(tx, repo, b.name) for b in tx.list_branches(repo)]

    def inspect_branch(self, repo: str, name: str) -> BranchInfo:
        """One branch: its head, provenance and subvenance."""
        with self.ctx.meta.transaction(write=False) as tx:
            require_repo(tx, repo)
            return self._branch_info(tx, repo, name)

    def delete_branch(self, repo: str, name: str, force: bool = False) -> None:
        """Delete a branch; one that others are built from only with ``force``."""
        with self.ctx.meta.transaction() as tx:
            require_repo(tx, repo)
            if tx.get_branch(repo, name) is None:
                raise NotFound(f"branch {name} not found in repo {repo}")
            sub = tx.branch_subvenance(repo, name)
            if sub and not force:
                names = " ".join(f"{r}/{b}" for r, b in sub)
                raise HasDependents(
                    f"branch {name} has [{names}] as subvenance, deleting it would break those "
                    "branches",
                    hint="pass --force to delete it anyway",
                )
            tx.delete_branch(repo, name)

    def _branch_info(self, tx: Tx, repo: str, name: str) -> BranchInfo:
        b = tx.get_branch(repo, name)
        if b is None:
            raise NotFound(f"branch {name} not found in repo {repo}")
        return BranchInfo(
            branch=BranchKey(repo=repo, name=name),
            head=b.head,
            provenance=[BranchKey(repo=r, name=n) for r, n in tx.branch_provenance(repo, name)],
            subvenance=[BranchKey(repo=r, name=n) for r, n in tx.branch_subvenance(repo, name)],
            created=to_datetime(b.created),
        )


def upstream_branches(tx: Tx, branch: tuple[str, str]) -> set[tuple[str, str]]:
    """Every branch ``branch`` is built from: its transitive branch provenance."""
    return _branch_closure(tx.branch_provenance, branch)


def downstream_branches(tx: Tx, branch: tuple[str, str]) -> set[tuple[str, str]]:
    """Every branch built from ``branch``: its transitive branch subvenance."""
    return _branch_closure(tx.branch_subvenance, branch)


def _branch_closure(
    step: Callable[[str, str], list[tuple[str, str]]], start: tuple[str, str]
) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    todo = [start]
    while todo:
        for b in step(*todo.pop()):
            if b not in out:
                out.add(b)
                todo.append(b)
    return out
