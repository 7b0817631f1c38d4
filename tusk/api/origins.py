"""Commit origins as Pachyderm 2.x names them (plain functions: the CLI's light path imports
this without pydantic)."""

from __future__ import annotations


def origin_2x(origin: str, has_provenance: bool) -> str:
    """Pachyderm 2.x's origin of a commit: ``USER`` for what a user made (a put-file's one-off
    commit is ``auto`` here, but it has no provenance), ``AUTO`` for what the system made."""
    return "USER" if origin == "user" or (origin == "auto" and not has_provenance) else "AUTO"
