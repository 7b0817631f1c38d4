"""``tusk up``, ``tusk down``, ``tusk status``: the local server."""

from __future__ import annotations

from urllib.parse import urlparse

import click

from tusk.cli.common import print_raw, raw_option
from tusk.client import Client
from tusk.client.config import ClientConfig
from tusk.client.local import is_up, pid_of, start_server, stop_server
from tusk.errors import ServerUnavailable


@click.command()
@click.option(
    "--grpc-port",
    type=click.IntRange(1, 65535),
    help="serve Pachyderm's gRPC API on this port of its own (default: beside HTTP, one port)",
)
def up(grpc_port: int | None) -> None:
    """Start a local tusk server in the background (data in $TUSK_HOME or ~/.tusk)."""
    cfg = ClientConfig.from_env()
    if is_up(cfg.address, cfg.token):
        with Client(cfg.address, token=cfg.token) as c:
            info = c.info()
        click.echo(
            f"tusk server already running at {cfg.address} (pid {info.pid}, data in {info.home})"
        )
        return
    pid = start_server(cfg, grpc_port=grpc_port)
    click.echo(f"tusk server started at {cfg.address} (pid {pid}, data in {cfg.home})")
    url = urlparse(cfg.address)
    click.echo(
        f"Pachyderm 2.x clients (gRPC) connect to {url.hostname}:{grpc_port or url.port or 30650}"
    )


@click.command()
def down() -> None:
    """Stop the local tusk server started for $TUSK_HOME."""
    cfg = ClientConfig.from_env()
    pid = pid_of(cfg.home)
    if pid is not None and stop_server(cfg):
        click.echo(f"tusk server stopped (pid {pid}, data in {cfg.home})")
    else:
        click.echo(f"no tusk server running for {cfg.home}")


@click.command()
@raw_option
def status(raw: bool) -> None:
    """Show the server this CLI talks to (exit code 8 when none answers)."""
    cfg = ClientConfig.from_env()
    if not is_up(cfg.address, cfg.token):
        raise ServerUnavailable(
            f"no tusk server answers at {cfg.address}",
            hint="start one with `tusk up` (or set TUSK_ADDRESS)",
        )
    with Client(cfg.address, token=cfg.token) as c:
        info = c.info()
    if raw:
        print_raw(info)
        return
    click.echo(f"Address: {cfg.address}")
    click.echo(f"Version: {info.version}")
    click.echo(f"PID: {info.pid}")
    click.echo(f"Home: {info.home}")
    click.echo(f"Metadata: {info.metadata_url}")
    click.echo(f"Objects: {info.object_url}")
    click.echo(f"Executor: {info.executor}")


COMMANDS = [up, down, status]
