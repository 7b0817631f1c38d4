"""The one SQLAlchemy Core schema, for SQLite and PostgreSQL alike."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# The number of the head Alembic revision (tusk/meta/migrations/versions), written in `settings`
# for humans. Change the schema here and in a new revision together; a test checks they agree.
SCHEMA_VERSION = 11

settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# Projects other than ``default`` (which always exists and has no row). A repo or pipeline of
# project P is stored under the key ``P/<name>`` (tusk/api/projects.py).
projects = Table(
    "projects",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("description", Text, nullable=False, default=""),
    Column("created", Float, nullable=False),
)

repos = Table(
    "repos",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("created", Float, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("size_bytes", BigInteger, nullable=False, default=0),
    Column("kind", String(16), nullable=False, default="user"),
)

commits = Table(
    "commits",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("repo", String(128), nullable=False),
    Column("id", String(32), nullable=False),
    Column("parent", String(32)),
    Column("branch", String(128)),
    Column("origin", String(8), nullable=False, default="user"),
    Column("started", Float, nullable=False),
    Column("finished", Float),
    Column("tree", String(80)),
    Column("size_bytes", BigInteger, nullable=False, default=0),
    Column("description", Text, nullable=False, default=""),
    Column("failed", Boolean, nullable=False, default=False),
    Column("reason", Text, nullable=False, default=""),
    UniqueConstraint("repo", "id", name="uq_commit"),
    ForeignKeyConstraint(["repo"], ["repos.name"], ondelete="CASCADE"),
)
Index("ix_commits_parent", commits.c.repo, commits.c.parent)
Index("ix_commits_repo_pk", commits.c.repo, commits.c.pk)  # list-commit, newest first
Index("ix_commits_id", commits.c.id)

commit_provenance = Table(
    "commit_provenance",
    metadata,
    Column("repo", String(128), nullable=False),
    Column("id", String(32), nullable=False),
    Column("prov_repo", String(128), nullable=False),
    Column("prov_id", String(32), nullable=False),
    Column("prov_branch", String(128)),
    UniqueConstraint("repo", "id", "prov_repo", "prov_id", name="uq_commit_prov"),
    ForeignKeyConstraint(["repo", "id"], ["commits.repo", "commits.id"], ondelete="CASCADE"),
)
Index("ix_commit_subv", commit_provenance.c.prov_repo, commit_provenance.c.prov_id)

branches = Table(
    "branches",
    metadata,
    Column("repo", String(128), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("head", String(32)),
    Column("created", Float, nullable=False),
    ForeignKeyConstraint(["repo"], ["repos.name"], ondelete="CASCADE"),
)

branch_provenance = Table(
    "branch_provenance",
    metadata,
    Column("repo", String(128), primary_key=True),
    Column("branch", String(128), primary_key=True),
    Column("prov_repo", String(128), primary_key=True),
    Column("prov_branch", String(128), primary_key=True),
    ForeignKeyConstraint(
        ["repo", "branch"], ["branches.repo", "branches.name"], ondelete="CASCADE"
    ),
)
Index("ix_branch_subv", branch_provenance.c.prov_repo, branch_provenance.c.prov_branch)

# -- pipelines (PPS) -----------------------------------------------------------------------------

pipelines = Table(
    "pipelines",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("salt", String(64), nullable=False),
    Column("spec", Text, nullable=False),
    Column("spec_commit", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("stopped", Boolean, nullable=False, default=False),
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
)

jobs = Table(
    "jobs",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("pipeline", String(128), nullable=False),
    Column("id", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    Column("spec_commit", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("created", Float, nullable=False),
    Column("started", Float),
    Column("finished", Float),
    Column("processed", Integer, nullable=False, default=0),
    Column("skipped", Integer, nullable=False, default=0),
    Column("failed", Integer, nullable=False, default=0),
    Column("total", Integer, nullable=False, default=0),
    Column("bytes_down", BigInteger, nullable=False, default=0),
    Column("bytes_up", BigInteger, nullable=False, default=0),
    Column("seconds_download", Float, nullable=False, default=0.0),
    Column("seconds_process", Float, nullable=False, default=0.0),
    Column("seconds_upload", Float, nullable=False, default=0.0),
    Column("restarts", Integer, nullable=False, default=0),
    Column("reason", Text, nullable=False, default=""),
    # datums whose err_cmd recovered them (2.x): not failed, their output left out
    Column("recovered", Integer, nullable=False, default=0, server_default="0"),
    # code provenance: the image the job ran, its digest, and the runtime that ran it
    Column("image", Text, nullable=False, default="", server_default=""),
    Column("image_digest", Text, nullable=False, default="", server_default=""),
    Column("runtime", String(16), nullable=False, default="", server_default=""),
    # every datum wrote under top-level output names of its own (NULL: unknown), so the next
    # job can update this output by the changed datums alone
    Column("output_disjoint", Boolean, nullable=True),
    UniqueConstraint("pipeline", "id", name="uq_job"),
)
Index("ix_jobs_id", jobs.c.id)
Index("ix_jobs_pipeline_state", jobs.c.pipeline, jobs.c.state)

job_datums = Table(
    "job_datums",
    metadata,
    Column("pipeline", String(128), primary_key=True),
    Column("job_id", String(32), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("datum_id", String(64), nullable=False),
    Column("hash", String(80), nullable=False),
    Column("state", String(16), nullable=False),
    Column("tries", Integer, nullable=False, default=0),
    Column("reason", Text, nullable=False, default=""),
    Column("inputs", Text, nullable=False),
    Column("bytes_down", BigInteger, nullable=False, default=0),
    Column("bytes_up", BigInteger, nullable=False, default=0),
    Column("seconds", Float, nullable=False, default=0.0),
    Column("worker", String(128), nullable=False, default=""),
    Column("seconds_download", Float, nullable=False, default=0.0, server_default="0"),
    Column("seconds_upload", Float, nullable=False, default=0.0, server_default="0"),
)
Index("ix_job_datums_pipeline_hash", job_datums.c.pipeline, job_datums.c.hash)

datum_cache = Table(
    "datum_cache",
    metadata,
    Column("pipeline", String(128), primary_key=True),
    Column("hash", String(80), primary_key=True),
    Column("manifest", Text, nullable=False),
    Column("bytes_up", BigInteger, nullable=False, default=0),
    Column("job_id", String(32), nullable=False),
)

# Which stored datum output wrote which file: (pipeline, output path) -> datum hashes, so the
# lineage of an output file is an index look-up, not a read of every manifest.
datum_files = Table(
    "datum_files",
    metadata,
    Column("pipeline", String(128), primary_key=True),
    Column("path", Text, primary_key=True),
    Column("hash", String(80), primary_key=True),
)

logs = Table(
    "logs",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("pipeline", String(128), nullable=False),
    Column("job_id", String(32), nullable=False, default=""),
    Column("datum_id", String(64), nullable=False, default=""),
    Column("worker", String(128), nullable=False, default=""),
    Column("ts", Float, nullable=False),
    Column("stream", String(8), nullable=False, default="stdout"),
    Column("user", Boolean, nullable=False, default=True),
    Column("master", Boolean, nullable=False, default=False),
    Column("message", Text, nullable=False),
    # how many lines the row holds: 1, the message itself; more, consecutive lines of one
    # source (pipeline, job, datum, worker, stream), the message a JSON list of [ts, line]
    Column("lines", Integer, nullable=False, default=1, server_default="1"),
)
Index("ix_logs_pipeline", logs.c.pipeline, logs.c.pk)
Index("ix_logs_job", logs.c.job_id)

# Secrets: what is known about each one besides its values (which live in the server's files
# only, never in this database).
secrets = Table(
    "secrets",
    metadata,
    Column("name", String(253), primary_key=True),
    Column("type", String(128), nullable=False),
    Column("created", Float, nullable=False),
    Column("keys", Text, nullable=False),  # JSON list of the key names
)

# Open transactions of Pachyderm 2.x's transaction API (tusk/grpc/transactions.py): kept here so
# that a restart of tuskd does not drop them. Each recorded request is a serialized
# ``TransactionRequest`` (base64), in the order it was recorded (``pk``).
open_transactions = Table(
    "open_transactions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("started", Float, nullable=False),
    Column("commit_set", String(32), nullable=False),
)

open_transaction_requests = Table(
    "open_transaction_requests",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("transaction_id", String(64), nullable=False),
    Column("request", Text, nullable=False),
    ForeignKeyConstraint(["transaction_id"], ["open_transactions.id"], ondelete="CASCADE"),
)
Index(
    "ix_open_transaction_requests_tx",
    open_transaction_requests.c.transaction_id,
    open_transaction_requests.c.pk,
)
