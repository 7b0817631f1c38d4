"""Let one row of ``logs`` hold several consecutive lines of one source.

A quick datum wrote six rows of system lines (downloading, running, uploading: each begun and
finished); storing them was a large part of the job master's work per datum. ``lines`` says how
many lines a row holds: 1 (every row before this revision), the message itself; more, the
message is a JSON list of ``[ts, line]``.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision: str | None = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("logs", sa.Column("lines", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("logs") as batch:
        batch.drop_column("lines")
