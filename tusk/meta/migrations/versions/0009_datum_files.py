"""Index stored datum outputs by the files they wrote: (pipeline, output path) -> datum hashes.

File-level lineage (which datums wrote an output file) then looks the path up instead of reading
every stored manifest. The index is filled from the manifests already stored.

Revision ID: 0009
Revises: 0006
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels = None
depends_on = None

_BATCH = 1000


def upgrade() -> None:
    table = op.create_table(
        "datum_files",
        sa.Column("pipeline", sa.String(128), primary_key=True),
        sa.Column("path", sa.Text(), primary_key=True),
        sa.Column("hash", sa.String(80), primary_key=True),
    )
    bind = op.get_bind()
    rows: list[dict[str, str]] = []
    q = sa.text("SELECT pipeline, hash, manifest FROM datum_cache")
    for pipeline, h, manifest in bind.execute(q):
        paths = {str(f["path"]) for f in json.loads(manifest).get("files", [])}
        rows.extend({"pipeline": pipeline, "path": p, "hash": h} for p in sorted(paths))
        if len(rows) >= _BATCH:
            op.bulk_insert(table, rows)
            rows = []
    if rows:
        op.bulk_insert(table, rows)


def downgrade() -> None:
    op.drop_table("datum_files")
