"""Alembic revisions of the metadata schema, one file each, applied in order."""
