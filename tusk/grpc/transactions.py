"""``transaction_v2.API``: requests gathered under a transaction id and applied together.

A call that carries ``pach-transaction: <id>`` metadata and is one of the transactional
requests (create/delete repo, start/finish commit, squash commit set, create/delete branch,
update job state, stop job, create pipeline) is recorded, not run; FinishTransaction applies the
recorded requests in order, and BatchTransaction does both at once. Every commit a transaction
starts gets the transaction's one commit-set id (as in Pachyderm 2.x), so StartCommit can answer
with the commit at once.

All or nothing, as pachd: a transaction runs inside one metadata transaction
(``MetadataStore.atomic``), so its requests take effect together when it commits, and a failed
request, like a crash of tuskd half way, leaves nothing of the others; what other threads do on
seeing a change (change notifications, starting or killing workers) waits for the commit. A
request is checked when it is added: the transaction with it is run and rolled back (a dry run,
as pachd's), so a request that cannot apply is refused at once. FinishTransaction removes the
open transaction in the same metadata transaction: it is gone when its requests took effect and
still open when they did not. File operations are refused inside a transaction, as pachd
refuses them. Open transactions and their recorded requests live in the metadata database (as
pachd keeps them in its own), so a restart of tuskd does not drop them.
"""

from __future__ import annotations

import base64
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import betterproto
import grpc
from betterproto.lib.google.protobuf import Empty
from pachyderm_sdk.api import pfs, pps, transaction

from tusk.errors import Conflict, InvalidArgument, NotFound
from tusk.faults import crash_point
from tusk.grpc import convert as cv
from tusk.grpc.base import Service
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
    "UpdateJobState": "update_job_state",
    "CreatePipeline": "create_pipeline_v2",
}
# TransactionRequest field -> the service and method that apply it
CALLS = {
    kind: ("pps" if kind in ("stop_job", "update_job_state") else "pfs", method)
    for method, kind in TRANSACTIONAL.items()
    if kind != "create_pipeline_v2"
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
        # one transaction is run (for real or as a dry run) at a time
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

    def drop(self, tid: str) -> None:
        """Forget the open transaction ``tid`` without applying it."""
        with self.e.meta.transaction() as tx:
            if not tx.delete_open_transaction(tid):
                self._pending(tid, None)  # NotFound

    def clear(self) -> None:
        with self.e.meta.transaction() as tx:
            tx.delete_open_transactions()

    def _record(self, tid: str, treq: transaction.TransactionRequest) -> Pending:
        """Append ``treq`` to the open transaction ``tid`` once a dry run of the transaction
        with it succeeds (as pachd checks each request when it is added); the transaction as
        it was before."""
        with self.applying:
            with self.e.meta.transaction(write=False) as tx:
                p = self._pending(tid, tx.get_open_transaction(tid))
            with self.e.meta.atomic(dry_run=True):
                self._run(p, [*p.requests, treq])
            with self.e.meta.transaction() as tx:
                now = self._pending(tid, tx.get_open_transaction(tid, lock=True))
                if len(now.requests) != len(p.requests):
                    raise Conflict(
                        f"transaction {tid} changed while this request was checked",
                        hint="send the request again",
                    )
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
    def finish(self, tid: str) -> transaction.TransactionInfo:
        """Apply the open transaction ``tid`` and forget it, in one metadata transaction: all
        of its requests take effect or, if one fails or the server dies half way, none does
        and the transaction stays open (as pachd's FinishTransaction)."""
        with self.applying, self.e.meta.atomic() as tx:
            p = self._pending(tid, tx.get_open_transaction(tid, lock=True))
            tx.delete_open_transaction(tid)
            p.responses = self._run(p, p.requests)
            return p.info()

    def batch(self, p: Pending) -> transaction.TransactionInfo:
        """Apply the requests of ``p`` (never stored as open) all together or not at all."""
        with self.applying, self.e.meta.atomic():
            p.responses = self._run(p, p.requests)
            return p.info()

    def _run(
        self, p: Pending, requests: list[transaction.TransactionRequest]
    ) -> list[transaction.TransactionResponse]:
        """Run ``requests`` in order (inside ``MetadataStore.atomic``, which makes them one
        change)."""
        responses = []
        for r in requests:
            responses.append(self._apply(p, *_set_field(r)))
            crash_point("transaction-request")
        return responses

    def _apply(self, p: Pending, kind: str, req: Any) -> transaction.TransactionResponse:
        if kind == "start_commit":
            repo, branch = cv.branch_ref(req.branch)
            parent = cv.commit_ref(req.parent)[1] if req.parent and _set(req.parent) else None
            self.e.commits.start(
                repo, branch, parent=parent, description=req.description, commit_id=p.commit_set
            )
            return transaction.TransactionResponse(commit=cv.commit_msg(repo, p.commit_set, branch))
        if kind == "create_pipeline_v2":
            self.pps["CreatePipeline"](req.create_pipeline_request, None)
        else:
            api, method = CALLS[kind]
            (self.pfs if api == "pfs" else self.pps)[method](req, None)
        return transaction.TransactionResponse()


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
        txns.drop(_tid(req.transaction))
        return Empty()

    @svc.unary("FinishTransaction", transaction.FinishTransactionRequest)
    def finish(req: transaction.FinishTransactionRequest, _ctx: Any) -> Any:
        return txns.finish(_tid(req.transaction))

    @svc.unary("BatchTransaction", transaction.BatchTransactionRequest)
    def batch(req: transaction.BatchTransactionRequest, _ctx: Any) -> Any:
        p = Pending(str(uuid.uuid4()).replace("-", ""), datetime.now(UTC), new_id())
        for r in req.requests:
            kind, value = _set_field(r)
            p.requests.append(r)
            p.responses.append(txns._answer(p, kind, value)[1])
        return txns.batch(p)

    @svc.unary("DeleteAll", transaction.DeleteAllRequest)
    def delete_all(_req: Any, _ctx: Any) -> Empty:
        txns.clear()
        return Empty()

    return svc


def _tid(t: transaction.Transaction | None) -> str:
    if t is None or not t.id:
        raise InvalidArgument("a transaction id is required", hint="e.g. Transaction(id=...)")
    return t.id
