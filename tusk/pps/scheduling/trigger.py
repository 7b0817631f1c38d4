"""Propagation: a new head upstream creates the output commits (and jobs) of the whole DAG below.

Every output commit and job caused by one originating commit shares its id (a global id, as in
Pachyderm 2.x), so `list-job` shows the whole wave at once and "what did this change cause" is
one query.
"""

from __future__ import annotations

from tusk.api.pps import JobState
from tusk.ids import new_id
from tusk.meta import CommitRow, JobRecord, Tx
from tusk.pfs.commits import downstream_branches, upstream_branches
from tusk.pfs.context import SPEC_REPO, PfsContext
from tusk.pfs.tree import EMPTY_ROOT

Branch = tuple[str, str]


def downstream(tx: Tx, branch: Branch) -> list[Branch]:
    """Every branch below ``branch``, upstream ones first."""
    return sorted(downstream_branches(tx, branch), key=lambda b: (len(upstream_branches(tx, b)), b))


def propagate(
    ctx: PfsContext, tx: Tx, repo: str, branch: str, origin_id: str | None
) -> list[Branch]:
    """Start an open output commit and a job on each downstream output branch whose provenance
    heads moved; return the branches that got one."""
    started: list[Branch] = []
    for d_repo, d_branch in downstream(tx, (repo, branch)):
        pipe = tx.get_pipeline(d_repo)
        if pipe is None or pipe.stopped:
            continue
        prov = upstream_branches(tx, (d_repo, d_branch))
        heads: list[tuple[str, str, str]] = []
        for p_repo, p_branch in sorted(prov):
            b = tx.get_branch(p_repo, p_branch)
            if b is not None and b.head is not None:
                heads.append((p_repo, b.head, p_branch))
        if not any(r != SPEC_REPO for r, _, _ in heads):
            continue
        out = tx.get_branch(d_repo, d_branch)
        if out is not None and out.head is not None:
            current = {(r, i) for r, i, _ in tx.commit_provenance(d_repo, out.head)}
            if {(r, i) for r, i, _ in heads} <= current:
                continue
        cid = origin_id if origin_id and tx.get_commit(d_repo, origin_id) is None else new_id()
        now = ctx.clock()
        tx.insert_commit(
            CommitRow(
                repo=d_repo,
                id=cid,
                started=now,
                parent=out.head if out is not None else None,
                branch=d_branch,
                origin="auto",
                tree=EMPTY_ROOT,
            ),
            heads,
        )
        tx.set_branch_head(d_repo, d_branch, cid)
        spec_head = next((i for r, i, b in heads if r == SPEC_REPO and b == d_repo), "")
        tx.insert_job(
            JobRecord(
                pipeline=d_repo,
                id=cid,
                version=pipe.version,
                spec_commit=spec_head or pipe.spec_commit,
                state=JobState.STARTING,
                created=now,
            )
        )
        started.append((d_repo, d_branch))
    return started


class Trigger:
    """Listens to the PFS change feed and propagates new heads downstream."""

    def __init__(self, ctx: PfsContext) -> None:
        self.ctx = ctx
        ctx.feed.subscribe(self._on_change)

    def _on_change(self, kind: str, repo: str, name: str) -> None:
        if kind != "head":
            return
        self.run(repo, name)

    def run(self, repo: str, branch: str) -> list[Branch]:
        """Propagate the head of ``repo``/``branch``; return the branches that got a job."""
        with self.ctx.meta.transaction() as tx:
            b = tx.get_branch(repo, branch)
            if b is None or not tx.branch_subvenance(repo, branch):
                return []
            started = propagate(self.ctx, tx, repo, branch, b.head)
        if started:
            self.ctx.feed.publish("jobs", repo, branch)
        return started
