"""Baseline: the schema as the pre-Alembic ``metadata.create_all`` made it.

Revision ID: 0001
Revises: -
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "repos",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
    )
    op.create_table(
        "commits",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("repo", sa.String(128), nullable=False),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("parent", sa.String(32)),
        sa.Column("branch", sa.String(128)),
        sa.Column("origin", sa.String(8), nullable=False),
        sa.Column("started", sa.Float, nullable=False),
        sa.Column("finished", sa.Float),
        sa.Column("tree", sa.String(80)),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("failed", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.UniqueConstraint("repo", "id", name="uq_commit"),
        sa.ForeignKeyConstraint(["repo"], ["repos.name"], ondelete="CASCADE"),
    )
    op.create_index("ix_commits_parent", "commits", ["repo", "parent"])
    op.create_index("ix_commits_id", "commits", ["id"])
    op.create_table(
        "commit_provenance",
        sa.Column("repo", sa.String(128), nullable=False),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("prov_repo", sa.String(128), nullable=False),
        sa.Column("prov_id", sa.String(32), nullable=False),
        sa.Column("prov_branch", sa.String(128)),
        sa.UniqueConstraint("repo", "id", "prov_repo", "prov_id", name="uq_commit_prov"),
        sa.ForeignKeyConstraint(["repo", "id"], ["commits.repo", "commits.id"], ondelete="CASCADE"),
    )
    op.create_index("ix_commit_subv", "commit_provenance", ["prov_repo", "prov_id"])
    op.create_table(
        "branches",
        sa.Column("repo", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("head", sa.String(32)),
        sa.Column("created", sa.Float, nullable=False),
        sa.ForeignKeyConstraint(["repo"], ["repos.name"], ondelete="CASCADE"),
    )
    op.create_table(
        "branch_provenance",
        sa.Column("repo", sa.String(128), primary_key=True),
        sa.Column("branch", sa.String(128), primary_key=True),
        sa.Column("prov_repo", sa.String(128), primary_key=True),
        sa.Column("prov_branch", sa.String(128), primary_key=True),
        sa.ForeignKeyConstraint(
            ["repo", "branch"], ["branches.repo", "branches.name"], ondelete="CASCADE"
        ),
    )
    op.create_index("ix_branch_subv", "branch_provenance", ["prov_repo", "prov_branch"])
    op.create_table(
        "pipelines",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("spec_commit", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("stopped", sa.Boolean, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
    )
    op.create_table(
        "jobs",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pipeline", sa.String(128), nullable=False),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("spec_commit", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("started", sa.Float),
        sa.Column("finished", sa.Float),
        sa.Column("processed", sa.Integer, nullable=False),
        sa.Column("skipped", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("bytes_down", sa.BigInteger, nullable=False),
        sa.Column("bytes_up", sa.BigInteger, nullable=False),
        sa.Column("seconds_download", sa.Float, nullable=False),
        sa.Column("seconds_process", sa.Float, nullable=False),
        sa.Column("seconds_upload", sa.Float, nullable=False),
        sa.Column("restarts", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.UniqueConstraint("pipeline", "id", name="uq_job"),
    )
    op.create_index("ix_jobs_id", "jobs", ["id"])
    op.create_table(
        "job_datums",
        sa.Column("pipeline", sa.String(128), primary_key=True),
        sa.Column("job_id", sa.String(32), primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True),
        sa.Column("datum_id", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(80), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("tries", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("inputs", sa.Text, nullable=False),
        sa.Column("bytes_down", sa.BigInteger, nullable=False),
        sa.Column("bytes_up", sa.BigInteger, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("worker", sa.String(128), nullable=False),
    )
    op.create_table(
        "datum_cache",
        sa.Column("pipeline", sa.String(128), primary_key=True),
        sa.Column("hash", sa.String(80), primary_key=True),
        sa.Column("manifest", sa.Text, nullable=False),
        sa.Column("bytes_up", sa.BigInteger, nullable=False),
        sa.Column("job_id", sa.String(32), nullable=False),
    )
    op.create_table(
        "logs",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pipeline", sa.String(128), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("datum_id", sa.String(64), nullable=False),
        sa.Column("worker", sa.String(128), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("stream", sa.String(8), nullable=False),
        sa.Column("user", sa.Boolean, nullable=False),
        sa.Column("master", sa.Boolean, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_logs_pipeline", "logs", ["pipeline", "pk"])
    op.create_index("ix_logs_job", "logs", ["job_id"])


def downgrade() -> None:
    for table in (
        "logs",
        "datum_cache",
        "job_datums",
        "jobs",
        "pipelines",
        "branch_provenance",
        "branches",
        "commit_provenance",
        "commits",
        "repos",
        "settings",
    ):
        op.drop_table(table)
