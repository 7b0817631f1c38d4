"""Alembic environment, run by :mod:`tusk.meta.migrations` with the connection to migrate in
``config.attributes["connection"]`` (already inside the caller's transaction). There is no
offline (SQL script) mode and no alembic.ini."""

from __future__ import annotations

from alembic import context

from tusk.meta.schema import metadata

context.configure(connection=context.config.attributes["connection"], target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
