"""Index commits by (repo, pk): list-commit's first page reads only its rows.

Listing a repo's commits newest first (``ORDER BY pk DESC LIMIT n``) found them through the
(repo, parent) index and sorted every commit of the repo first, so the first page of a repo with
a million commits cost as much as listing them all.

Revision ID: 0008
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_commits_repo_pk", "commits", ["repo", "pk"])


def downgrade() -> None:
    op.drop_index("ix_commits_repo_pk", table_name="commits")
