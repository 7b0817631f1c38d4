"""Open transactions of Pachyderm 2.x's transaction API, as a metadata transaction reads and
writes them. The requests are opaque here (serialized ``TransactionRequest`` messages, base64):
the gRPC layer (tusk/grpc/transactions.py) encodes and applies them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, select

from tusk.meta import schema as s


@dataclass(frozen=True, slots=True)
class OpenTransactionRow:
    id: str
    started: float
    commit_set: str
    requests: tuple[str, ...] = ()  # in the order they were recorded


class OpenTxMixin:
    c: Connection

    def insert_open_transaction(self, row: OpenTransactionRow) -> None:
        self.c.execute(
            s.open_transactions.insert().values(
                id=row.id, started=row.started, commit_set=row.commit_set
            )
        )
        for request in row.requests:
            self.append_transaction_request(row.id, request)

    def get_open_transaction(self, tid: str, *, lock: bool = False) -> OpenTransactionRow | None:
        """The transaction and its requests; ``lock`` holds its row until this transaction ends
        (PostgreSQL; a SQLite write transaction already excludes other writers)."""
        q = select(s.open_transactions).where(s.open_transactions.c.id == tid)
        if lock:
            q = q.with_for_update()
        r = self.c.execute(q).mappings().first()
        if r is None:
            return None
        return OpenTransactionRow(r["id"], r["started"], r["commit_set"], self._requests(tid))

    def list_open_transactions(self) -> list[OpenTransactionRow]:
        q = select(s.open_transactions).order_by(
            s.open_transactions.c.started, s.open_transactions.c.id
        )
        return [
            OpenTransactionRow(r["id"], r["started"], r["commit_set"], self._requests(r["id"]))
            for r in self.c.execute(q).mappings().all()
        ]

    def append_transaction_request(self, tid: str, request: str) -> None:
        self.c.execute(
            s.open_transaction_requests.insert().values(transaction_id=tid, request=request)
        )

    def delete_open_transaction(self, tid: str) -> bool:
        """Forget the transaction; whether it was there."""
        t, r = s.open_transactions, s.open_transaction_requests
        self.c.execute(delete(r).where(r.c.transaction_id == tid))
        return bool(self.c.execute(delete(t).where(t.c.id == tid)).rowcount)

    def delete_open_transactions(self) -> None:
        self.c.execute(delete(s.open_transaction_requests))
        self.c.execute(delete(s.open_transactions))

    def _requests(self, tid: str) -> tuple[str, ...]:
        r = s.open_transaction_requests
        q = select(r.c.request).where(r.c.transaction_id == tid).order_by(r.c.pk)
        return tuple(str(v) for v in self.c.execute(q).scalars())
