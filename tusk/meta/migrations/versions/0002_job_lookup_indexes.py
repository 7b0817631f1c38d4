"""Index jobs by (pipeline, state) and job_datums by (pipeline, hash).

The scheduler looks up a pipeline's jobs by state, the runner a pipeline's datums by hash.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_pipeline_state", "jobs", ["pipeline", "state"])
    op.create_index("ix_job_datums_pipeline_hash", "job_datums", ["pipeline", "hash"])


def downgrade() -> None:
    op.drop_index("ix_job_datums_pipeline_hash", table_name="job_datums")
    op.drop_index("ix_jobs_pipeline_state", table_name="jobs")
