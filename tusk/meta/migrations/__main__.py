"""``python -m tusk.meta.migrations upgrade|current|history --url URL``: the admin CLI."""

from __future__ import annotations

import click

from tusk.meta import migrations
from tusk.meta.store import MetadataStore

_url = click.option("--url", required=True, help="metadata database, e.g. sqlite:///tusk.db")


@click.group()
def main() -> None:
    """Schema migrations of a tusk metadata database."""


@main.command()
@_url
def upgrade(url: str) -> None:
    """Migrate the database to the newest schema (what tuskd does when it starts)."""
    store = MetadataStore(url)
    store.close()
    click.echo(f"{migrations.head_revision()} (head)")


def _current(url: str) -> str | None:
    store = MetadataStore(url, upgrade=False)
    try:
        with store.engine.connect().execution_options(tusk_write=False) as conn:
            return migrations.current_revision(conn)
    finally:
        store.close()


@main.command()
@_url
def current(url: str) -> None:
    """Print the database's schema revision ("none" if it has none yet)."""
    rev = _current(url)
    click.echo(
        "none" if rev is None else f"{rev} (head)" if rev == migrations.head_revision() else rev
    )


@main.command()
@click.option("--url", help="also mark the revision this database is at")
def history(url: str | None) -> None:
    """List the schema revisions, newest first."""
    rev = _current(url) if url else None
    for script in migrations.history():
        mark = " (current)" if script.revision == rev else ""
        click.echo(f"{script.revision}{mark}  {script.doc}")


if __name__ == "__main__":
    main()
