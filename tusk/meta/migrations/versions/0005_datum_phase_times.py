"""Record each datum's download and upload times.

Its process time was already ``seconds``; inspect-datum shows all three, as 1.7 does. Datums
recorded before this revision show zero download and upload times.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None

COLUMNS = ("seconds_download", "seconds_upload")


def upgrade() -> None:
    with op.batch_alter_table("job_datums") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.Float(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("job_datums") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
