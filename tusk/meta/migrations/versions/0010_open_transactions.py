"""Keep the open transactions of Pachyderm 2.x's transaction API in the database.

A transaction is started, gathers requests over many calls, and is finished later; kept in the
server's memory, a restart of tuskd dropped it (pachd keeps its transactions in its database).
One row per open transaction; its recorded requests are serialized ``TransactionRequest``
messages, one row each, in the order they were recorded.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision: str | None = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "open_transactions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("started", sa.Float(), nullable=False),
        sa.Column("commit_set", sa.String(32), nullable=False),
    )
    op.create_table(
        "open_transaction_requests",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("transaction_id", sa.String(64), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["transaction_id"], ["open_transactions.id"], ondelete="CASCADE"),
    )
    op.create_index(
        "ix_open_transaction_requests_tx",
        "open_transaction_requests",
        ["transaction_id", "pk"],
    )


def downgrade() -> None:
    op.drop_index("ix_open_transaction_requests_tx", "open_transaction_requests")
    op.drop_table("open_transaction_requests")
    op.drop_table("open_transactions")
