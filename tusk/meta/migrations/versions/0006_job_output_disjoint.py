"""Record whether each datum of a job wrote under top-level names of its own in the output.

A job whose output has that property can be the base of the next job's output: the next job
deletes the names of its vanished datums and adds those of its new ones, instead of merging
every datum's output again. Jobs recorded before this revision have NULL (unknown: the next
job merges in full once).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("output_disjoint", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("output_disjoint")
