"""Propagation: a new head upstream creates the output commits (and jobs) of the whole DAG below.

Every output commit and job caused by one originating commit shares its id (a global id, as in
Pachyderm 2.x), so `list-job` shows the whole wave at once and "what did this change cause" is
one query.
"""

from __future__ import annotations

import logging
import threading
import time

from tusk.api.pps import JobState
from tusk.faults import crash_point
from tusk.ids import new_id
from tusk.meta import CommitRow, JobRecord, Tx
from tusk.pfs.commits import downstream_branches, upstream_branches
from tusk.pfs.context import SPEC_REPO, PfsContext
from tusk.pfs.tree import EMPTY_ROOT

Branch = tuple[str, str]
log = logging.getLogger("tusk.trigger")


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
    """Listens to the PFS change feed and propagates new heads downstream.

    Propagation runs after the write that moved a head, so it must never undo or fail that
    write: an error is logged and the branch retried on the next :meth:`tick`, and a crash in
    between is repaired by the :meth:`sweep` of the next server to lead (and every
    ``SWEEP_SECONDS`` while it leads, which also covers writes through other servers)."""

    SWEEP_SECONDS = 60.0

    def __init__(self, ctx: PfsContext) -> None:
        self.ctx = ctx
        self._retry: set[Branch] = set()
        self._lock = threading.Lock()
        self._last_sweep = 0.0
        ctx.feed.subscribe(self._on_change)

    def _on_change(self, kind: str, repo: str, name: str) -> None:
        if kind != "head":
            return
        crash_point("head-before-propagate")
        try:
            self.run(repo, name)
        except Exception:  # noqa: BLE001 - the write has landed; its jobs come on the retry
            log.exception("propagating %s@%s failed; retrying later", repo, name)
            with self._lock:
                self._retry.add((repo, name))

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

    def sweep(self) -> list[Branch]:
        """Propagate every branch a pipeline reads (upstream ones first): creates the jobs of
        heads that have none (a crash between a write and its propagation); a no-op when every
        head has its jobs."""
        self._last_sweep = time.monotonic()
        with self.ctx.meta.transaction(write=False) as tx:
            inputs: set[Branch] = set()
            for pipe in tx.list_pipelines():
                if pipe.stopped:
                    continue
                for b in tx.list_branches(pipe.name):
                    inputs |= upstream_branches(tx, (pipe.name, b.name))
            order = sorted(inputs, key=lambda b: (len(upstream_branches(tx, b)), b))
        started: list[Branch] = []
        for repo, branch in order:
            started.extend(self.run(repo, branch))
        if started:
            log.warning("created the missing downstream jobs of %s", sorted(set(started)))
        return started

    def recover(self) -> None:
        """Sweep when a server starts to lead; on an error the next :meth:`tick` sweeps again."""
        try:
            self.sweep()
        except Exception:  # noqa: BLE001 - never stops the server from leading
            log.exception("sweeping for heads without downstream jobs failed; retrying")
            self._last_sweep = 0.0

    def tick(self) -> None:
        """Retry the branches whose propagation failed, and sweep now and then (the leader
        calls this every second)."""
        with self._lock:
            retry, self._retry = sorted(self._retry), set()
        try:
            for repo, branch in retry:
                self.run(repo, branch)
            if time.monotonic() - self._last_sweep >= self.SWEEP_SECONDS:
                self.sweep()
        except Exception:
            with self._lock:
                self._retry.update(retry)
            raise
