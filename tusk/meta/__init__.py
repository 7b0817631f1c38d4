"""Metadata store: the only truth about repos, commits, branches, pipelines and jobs."""

from tusk.meta.lease import Lease, lease_for
from tusk.meta.open_tx import OpenTransactionRow
from tusk.meta.pps_records import (
    CachedDatum,
    DatumLines,
    DatumOutcome,
    DatumRecord,
    JobCounters,
    JobFilter,
    JobRecord,
    LogFilter,
    LogRecord,
    PipelineRecord,
    SecretRecord,
)
from tusk.meta.store import (
    BranchRow,
    CommitRow,
    MetadataStore,
    ProjectRow,
    RepoRow,
    Tx,
    after_commit,
    open_metadata_store,
)

__all__ = [
    "BranchRow",
    "CachedDatum",
    "CommitRow",
    "DatumLines",
    "DatumOutcome",
    "DatumRecord",
    "JobCounters",
    "JobFilter",
    "JobRecord",
    "Lease",
    "LogFilter",
    "LogRecord",
    "MetadataStore",
    "OpenTransactionRow",
    "PipelineRecord",
    "ProjectRow",
    "RepoRow",
    "SecretRecord",
    "Tx",
    "after_commit",
    "lease_for",
    "open_metadata_store",
]
