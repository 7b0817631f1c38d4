"""``tusk console``: the web console that tuskd serves (starts a local server when none answers)."""

from __future__ import annotations

import contextlib
import os
import webbrowser

import click

from tusk.cli.common import client
from tusk.client.config import ClientConfig


def _has_display() -> bool:
    """Whether a browser can be opened here (a desktop session, or a platform with its own)."""
    import sys

    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@click.command("console")
@click.option("--no-browser", is_flag=True, help="Only print the URL; do not open a browser.")
def console(no_browser: bool) -> None:
    """Print the URL of the web console (and open it in a browser when there is one)."""
    c = client()
    c.info()  # the server answers (and the token, if any, is right) before we point at it
    url = c.address.rstrip("/") + "/console/"
    click.echo(f"tusk console: {url}")
    if ClientConfig.from_env().token:
        click.echo("  sign in with the server's auth token (TUSK_AUTH_TOKEN)")
    if not no_browser and _has_display():
        with contextlib.suppress(webbrowser.Error):
            webbrowser.open(url)


COMMANDS = [console]
