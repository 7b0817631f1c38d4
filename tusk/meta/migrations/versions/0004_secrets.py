"""Add secrets (names, types, key names) and each job's recovered datum count.

A secret's values are never in the database; ``recovered`` counts the datums that 2.x
``err_cmd`` recovered.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "secrets",
        sa.Column("name", sa.String(253), primary_key=True),
        sa.Column("type", sa.String(128), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("keys", sa.Text(), nullable=False),
    )
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("recovered", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("recovered")
    op.drop_table("secrets")
