"""Metadata store: the only truth about repos, commits, branches, pipelines and jobs."""

from tusk.meta.store import BranchRow, CommitRow, MetadataStore, RepoRow, Tx, open_metadata_store

__all__ = ["BranchRow", "CommitRow", "MetadataStore", "RepoRow", "Tx", "open_metadata_store"]
