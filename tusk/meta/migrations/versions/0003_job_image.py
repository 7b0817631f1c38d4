"""Record each job's code provenance: the image reference, its digest and the runtime.

Jobs recorded before this revision keep empty values (their image was not recorded).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None

COLUMNS = (("image", sa.Text()), ("image_digest", sa.Text()), ("runtime", sa.String(16)))


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        for name, _kind in reversed(COLUMNS):
            batch.drop_column(name)
