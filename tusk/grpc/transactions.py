"""``transaction_v2.API``: requests gathered under a transaction id and applied together.

A call that carries ``pach-transaction: <id>`` metadata and is one of the transactional
requests (create/delete repo, start/finish commit, squash commit set, create/delete branch,
stop job, create pipeline) is recorded, not run; FinishTransaction applies the recorded
requests in order, and BatchTransaction does both at once. Every commit a transaction starts
gets the transaction's one commit-set id (as in Pachyderm 2.x), so StartCommit can answer with
the commit at once.

All or nothing: before anything is applied, the requests are checked in order against what
exists and what the earlier requests create or delete (unknown repos, branches, commits and
commit sets, a repo created twice); then they are applied in order, and when one fails the ones
already applied are undone (created repos, branches, commits and pipelines deleted, moved
branches put back; a squash, like a finished commit or a deletion, cannot be undone, which is
why the check runs first). UpdateJobState is refused: tusk's workers do not report through it.
File operations are refused inside a transaction, as pachd refuses them. Open transactions and
their recorded requests live in the metadata database (as pachd keeps them in its own), so a
restart of tuskd does not drop them: FinishTransaction after a restart applies what was
recorded before it.
"""

from __future__ import annotations

import base64
import contextlib
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import betterproto
import grpc
from betterproto.lib.google.protobuf import Empty
from pachyderm_sdk.api import pfs, pps, transaction

from tusk.errors import AlreadyExists, Conflict, InvalidArgument, NotFound, TuskError
from tusk.grpc import convert as cv
from tusk.grpc.base import Service
from tusk.grpc.pps import pipeline_name
from tusk.ids import new_id
from tusk.meta import OpenTransactionRow
from tusk.runtime import Engine

METADATA_KEY = "pach-transaction"
# gRPC method -> the TransactionRequest field it is recorded as
TRANSACTIONAL = {
    "CreateRepo": "create_repo",
    "DeleteRepo": "delete_repo",
    "StartCommit": "start_commit",
    "FinishCommit": "finish_commit",
    "SquashCommitSet": "squash_commit_set",
    "CreateBranch": "create_branch",
    "DeleteBranch": "delete_branch",
    "StopJob": "stop_job",
    "CreatePipeline": "create_pipeline_v2",
}
FILE_METHODS = {"ModifyFile", "PutFile", "CopyFile", "DeleteFile"}


@dataclass
class Pending:
    id: str
    started: datetime
    commit_set: str
    requests: list[transaction.TransactionRequest] = field(default_factory=list)
    responses: list[transaction.TransactionResponse] = field(default_factory=list)

    def info(self) -> transaction.TransactionInfo:
        return transaction.TransactionInfo(
            transaction=transaction.Transaction(id=self.id),
            requests=list(self.requests),
            responses=list(self.responses),
            started=self.started,
            version=1,
        )


def transaction_id(ctx: grpc.ServicerContext | None) -> str:
    if ctx is None:
        return ""
    value = dict(ctx.invocation_metadata()).get(METADATA_KEY, "")
    return value if isinstance(value, str) else ""


def _set_field(req: transaction.TransactionRequest) -> tuple[str, Any]:
    set_fields = [
        (f, getattr(req, f))
        for f in (
            "create_repo",
            "delete_repo",
            "start_commit",
            "finish_commit",
            "squash_commit_set",
            "create_branch",
            "delete_branch",
            "update_job_state",
            "stop_job",
            "create_pipeline_v2",
        )
        if betterproto.serialized_on_wire(getattr(req, f))
    ]
    if len(set_fields) != 1:
        raise InvalidArgument(
            f"a transaction request must set exactly one operation (it sets {len(set_fields)})",
            hint="send one TransactionRequest per operation",
        )
    return set_fields[0]


class Transactions:
    """The open transactions (kept in the metadata database) and how they are applied."""

    def __init__(self, engine: Engine, pfs_api: Service, pps_api: Service) -> None:
        self.e = engine
        self.pfs = pfs_api.functions
        self.pps = pps_api.functions
        # one transaction is applied at a time
        self.applying = threading.Lock()

    # -- open transactions ------------------------------------------------------------------
    def start(self) -> Pending:
        p = Pending(str(uuid.uuid4()).replace("-", ""), datetime.now(UTC), new_id())
        with self.e.meta.transaction() as tx:
            tx.insert_open_transaction(
                OpenTransactionRow(p.id, p.started.timestamp(), p.commit_set)
            )
        return p

    def get(self, tid: str) -> Pending:
        with self.e.meta.transaction(write=False) as tx:
            row = tx.get_open_transaction(tid)
        return self._pending(tid, row)

    def list_open(self) -> list[Pending]:
        with self.e.meta.transaction(write=False) as tx:
            rows = tx.list_open_transactions()
        return [self._pending(r.id, r) for r in rows]

    def take(self, tid: str) -> Pending:
        """The transaction, removed from the open ones (to be applied or dropped)."""
        with self.e.meta.transaction() as tx:
            row = tx.get_open_transaction(tid, lock=True)
            if row is not None:
                tx.delete_open_transaction(tid)
        return self._pending(tid, row)

    def clear(self) -> None:
        with self.e.meta.transaction() as tx:
            tx.delete_open_transactions()

    def _record(self, tid: str, treq: transaction.TransactionRequest) -> Pending:
        """Append ``treq`` to the open transaction ``tid``; the transaction as it was before."""
        with self.e.meta.transaction() as tx:
            row = tx.get_open_transaction(tid, lock=True)
            p = self._pending(tid, row)
            tx.append_transaction_request(tid, base64.b64encode(bytes(treq)).decode())
        return p

    def _pending(self, tid: str, row: OpenTransactionRow | None) -> Pending:
        if row is None:
            raise NotFound(
                f"transaction {tid} not found",
                hint="start one with StartTransaction (it may have finished or been deleted)",
            )
        p = Pending(row.id, datetime.fromtimestamp(row.started, UTC), row.commit_set)
        for text in row.requests:
            r = transaction.TransactionRequest().parse(base64.b64decode(text))
            kind, value = _set_field(r)
            p.requests.append(r)
            p.responses.append(self._answer(p, kind, value)[1])
        return p

    def intercept(self, method: str, req: Any, ctx: grpc.ServicerContext) -> Any:
        """Record a transactional call that carries a transaction id; None runs it now."""
        tid = transaction_id(ctx)
        if not tid:
            return None
        if method in FILE_METHODS:
            raise Conflict(
                "file operations cannot run inside a transaction",
                hint="put files after the transaction finishes, to the commits it started",
            )
        kind = TRANSACTIONAL.get(method)
        if kind is None:
            return None  # reads (and calls pachd does not batch) run as usual
        if kind == "create_pipeline_v2":
            req = pps.CreatePipelineTransaction(create_pipeline_request=req)
        treq = transaction.TransactionRequest(**{kind: req})
        _set_field(treq)
        p = self._record(tid, treq)
        return self._answer(p, kind, req)[0]

    def _answer(
        self, p: Pending, kind: str, req: Any
    ) -> tuple[betterproto.Message, transaction.TransactionResponse]:
        if kind == "start_commit":
            repo, branch = cv.branch_ref(req.branch)
            commit = cv.commit_msg(repo, p.commit_set, branch)
            return commit, transaction.TransactionResponse(commit=commit)
        if kind == "delete_repo":
            return pfs.DeleteRepoResponse(deleted=True), transaction.TransactionResponse()
        return Empty(), transaction.TransactionResponse()

    # -- applying ---------------------------------------------------------------------------
    def apply(self, p: Pending) -> transaction.TransactionInfo:
        """Check, then apply every request of ``p`` in order; undo the applied ones if one
        fails."""
        with self.applying:
            kinds = [_set_field(r) for r in p.requests]
            self._check(kinds)
            undo: list[Callable[[], object]] = []
            responses: list[transaction.TransactionResponse] = []
            try:
                for kind, req in kinds:
                    responses.append(self._apply(p, kind, req, undo))
            except BaseException:
                for step in reversed(undo):
                    with contextlib.suppress(TuskError):  # undone as far as it can be
                        step()
                raise
            p.responses = responses
            return p.info()

    def _check(self, kinds: list[tuple[str, Any]]) -> None:
        """The failures that can be foreseen, before anything changes."""
        repos = {r.name for r in self.e.repos.list(project=None)}
        started: set[str] = set()
        for kind, req in kinds:
            if kind == "create_repo":
                name = cv.repo_name(req.repo)
                if name in repos and not req.update:
                    raise AlreadyExists(f"repo {name} already exists")
                repos.add(name)
            elif kind in ("delete_repo",):
                name = cv.repo_name(req.repo)
                if name not in repos:
                    raise NotFound(f"repo {name} not found")
                repos.discard(name)
            elif kind in ("start_commit", "create_branch", "delete_branch"):
                name, _ = cv.branch_ref(req.branch)
                if name not in repos:
                    raise NotFound(f"repo {name} not found")
                if kind == "start_commit":
                    started.add(name)
                elif kind == "delete_branch" and name not in started:
                    self.e.commits.inspect_branch(*cv.branch_ref(req.branch))
            elif kind == "finish_commit":
                name, ref = cv.commit_ref(req.commit)
                if name not in repos:
                    raise NotFound(f"repo {name} not found")
                if name not in started:
                    self.e.commits.inspect(name, ref)
            elif kind == "squash_commit_set":
                # the rest (children, branches, other sets computed from it) is checked when
                # it is applied, all or nothing
                if not self.e.commits.with_id(req.commit_set.id if req.commit_set else ""):
                    raise NotFound(f"commit set {req.commit_set.id} not found")
            elif kind == "update_job_state":
                raise InvalidArgument(
                    "update_job_state is not supported by tusk: it is how pachd's workers "
                    "report a job's progress, and tusk's workers report to tuskd directly",
                    hint="stop a job with StopJob; leave update_job_state out",
                )

    def _apply(
        self, p: Pending, kind: str, req: Any, undo: list[Callable[[], object]]
    ) -> transaction.TransactionResponse:
        e = self.e
        if kind == "create_repo":
            name = cv.repo_name(req.repo)
            existed = _exists(lambda: e.repos.inspect(name))
            self.pfs["CreateRepo"](req, None)
            if not existed:
                undo.append(lambda: e.repos.delete(name, force=True))
        elif kind == "delete_repo":
            self.pfs["DeleteRepo"](req, None)
        elif kind == "start_commit":
            repo, branch = cv.branch_ref(req.branch)
            parent = cv.commit_ref(req.parent)[1] if req.parent and _set(req.parent) else None
            old = _head(e, repo, branch)
            e.commits.start(
                repo, branch, parent=parent, description=req.description, commit_id=p.commit_set
            )
            undo.append(lambda: _restore_branch(e, repo, branch, old, p.commit_set))
            return transaction.TransactionResponse(commit=cv.commit_msg(repo, p.commit_set, branch))
        elif kind == "finish_commit":
            self.pfs["FinishCommit"](req, None)
        elif kind == "squash_commit_set":
            self.pfs["SquashCommitSet"](req, None)
        elif kind == "create_branch":
            repo, name = cv.branch_ref(req.branch)
            old = _head(e, repo, name)
            existed = _exists(lambda: e.commits.inspect_branch(repo, name))
            self.pfs["CreateBranch"](req, None)
            if existed:
                undo.append(lambda: e.commits.create_branch(repo, name, old))
            else:
                undo.append(lambda: e.commits.delete_branch(repo, name, True))
        elif kind == "delete_branch":
            self.pfs["DeleteBranch"](req, None)
        elif kind == "stop_job":
            self.pps["StopJob"](req, None)
        elif kind == "create_pipeline_v2":
            create = req.create_pipeline_request
            name = pipeline_name(create.pipeline)
            existed = _exists(lambda: e.pipelines.inspect(name))
            self.pps["CreatePipeline"](create, None)
            if not existed:
                undo.append(lambda: e.pipelines.delete(name, force=True))
        return transaction.TransactionResponse()


def _exists(call: Callable[[], Any]) -> bool:
    try:
        call()
        return True
    except NotFound:
        return False


def _head(e: Engine, repo: str, branch: str) -> str | None:
    try:
        return e.commits.inspect_branch(repo, branch).head
    except NotFound:
        return None


def _restore_branch(e: Engine, repo: str, branch: str, old: str | None, commit: str) -> None:
    e.commits.delete(repo, commit)
    if old is not None:
        e.commits.create_branch(repo, branch, old)


def _set(commit: pfs.Commit) -> bool:
    return bool(commit.id or (commit.branch and commit.branch.name))


def build(engine: Engine, token: str | None, pfs_api: Service, pps_api: Service) -> Service:
    """The transaction service; it also makes the pfs and pps services record transactional
    calls."""
    svc = Service("transaction_v2.API", token)
    txns = Transactions(engine, pfs_api, pps_api)
    pfs_api.intercept = txns.intercept
    pps_api.intercept = txns.intercept

    @svc.unary("StartTransaction", transaction.StartTransactionRequest)
    def start(_req: Any, _ctx: Any) -> transaction.Transaction:
        return transaction.Transaction(id=txns.start().id)

    @svc.unary("InspectTransaction", transaction.InspectTransactionRequest)
    def inspect(req: transaction.InspectTransactionRequest, _ctx: Any) -> Any:
        return txns.get(_tid(req.transaction)).info()

    @svc.unary("ListTransaction", transaction.ListTransactionRequest)
    def list_(_req: Any, _ctx: Any) -> transaction.TransactionInfos:
        infos = [p.info() for p in txns.list_open()]
        return transaction.TransactionInfos(transaction_info=infos)

    @svc.unary("DeleteTransaction", transaction.DeleteTransactionRequest)
    def delete(req: transaction.DeleteTransactionRequest, _ctx: Any) -> Empty:
        txns.take(_tid(req.transaction))
        return Empty()

    @svc.unary("FinishTransaction", transaction.FinishTransactionRequest)
    def finish(req: transaction.FinishTransactionRequest, _ctx: Any) -> Any:
        return txns.apply(txns.take(_tid(req.transaction)))

    @svc.unary("BatchTransaction", transaction.BatchTransactionRequest)
    def batch(req: transaction.BatchTransactionRequest, _ctx: Any) -> Any:
        p = Pending(str(uuid.uuid4()).replace("-", ""), datetime.now(UTC), new_id())
        for r in req.requests:
            kind, value = _set_field(r)
            p.requests.append(r)
            p.responses.append(txns._answer(p, kind, value)[1])
        return txns.apply(p)

    @svc.unary("DeleteAll", transaction.DeleteAllRequest)
    def delete_all(_req: Any, _ctx: Any) -> Empty:
        txns.clear()
        return Empty()

    return svc


def _tid(t: transaction.Transaction | None) -> str:
    if t is None or not t.id:
        raise InvalidArgument("a transaction id is required", hint="e.g. Transaction(id=...)")
    return t.id
