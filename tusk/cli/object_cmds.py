"""pachctl 1.7's object-store commands, ``get-object`` and ``get-tag``, over tusk's object store,
and ``put-header`` / ``put-footer``.

1.7 addressed objects by the SHA-512 of their content and tagged each datum's output tree with
the datum's hash. tusk's objects are named by their BLAKE3 hash (64 hex digits; small files are
packed several to an object), and a datum's stored output is found by the datum hash:
``get-tag`` prints it as JSON naming the objects (``[hash, object, offset, length]`` per chunk)
that ``get-object`` reads.
"""

from __future__ import annotations

import sys

import click

from tusk.cli.common import client
from tusk.errors import InvalidArgument


@click.command("get-object")
@click.argument("hash", metavar="hash")
def get_object(hash: str) -> None:
    """Return the contents of an object (by its tusk object id, a BLAKE3 hash)."""
    stdout = sys.stdout.buffer
    for block in client().admin.get_object(hash):
        stdout.write(block)
    stdout.flush()


@click.command("get-tag")
@click.argument("tag", metavar="tag")
def get_tag(tag: str) -> None:
    """Return the contents of a tag: the stored output of the datum whose hash is TAG, as JSON."""
    sys.stdout.buffer.write(client().admin.get_tag(tag) + b"\n")
    sys.stdout.flush()


def _header_footer(name: str, what: str) -> click.Command:
    def run(repo: str, branch: str, path: str, file: str) -> None:
        raise InvalidArgument(
            f"{name} is not supported by tusk yet: directories have no {what}",
            hint="put the file into the directory with put-file, or prepend it when reading",
        )

    run = click.option(
        "-f",
        "--file",
        default="-",
        help="The file to be put, it can be a local file or by default will be read from stdin",
    )(run)
    run = click.argument("path", metavar="path/to/directory/in/pfs")(run)
    run = click.argument("branch", metavar="branch")(run)
    run = click.argument("repo", metavar="repo-name")(run)
    return click.command(
        name,
        help=f"Put a {what} file into the filesystem (not supported by tusk yet).",
    )(run)


put_header = _header_footer("put-header", "header")
put_footer = _header_footer("put-footer", "footer")

COMMANDS = [get_object, get_tag, put_header, put_footer]
