"""pachctl 1.7's object-store commands, ``get-object`` and ``get-tag``, over tusk's object store,
and ``put-header`` / ``put-footer`` (a directory's header and footer, read around its files).

1.7 addressed objects by the SHA-512 of their content and tagged each datum's output tree with
the datum's hash. tusk's objects are named by their BLAKE3 hash (64 hex digits; small files are
packed several to an object), and a datum's stored output is found by the datum hash:
``get-tag`` prints it as JSON naming the objects (``[hash, object, offset, length]`` per chunk)
that ``get-object`` reads.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Literal

import click

from tusk.cli.common import client
from tusk.errors import SourceUnavailable


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


def _header_footer(name: str, what: Literal["header", "footer"]) -> click.Command:
    def run(repo: str, branch: str, path: str, file: str) -> None:
        data: Path | IO[bytes]
        if file == "-":
            data = sys.stdin.buffer
        else:
            data = Path(file)
            if not data.is_file():
                raise SourceUnavailable(
                    f"{name}: {file} is not a readable file",
                    hint=f"give a local file with -f, or pipe the {what} in with -f -",
                )
        client().put_header(repo, branch, path, data, part=what)

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
        help=f"Put a {what} file into the filesystem.\n\n"
        f"The {what} belongs to the directory: every file in it reads with the {what} "
        f"{'before' if what == 'header' else 'after'} its content, and the directory itself "
        f"reads as header, files and footer. Pipe in an empty line to remove it:\n\n"
        f'\b\n  echo "" | tusk {name} repo branch dir -f -',
    )(run)


put_header = _header_footer("put-header", "header")
put_footer = _header_footer("put-footer", "footer")

COMMANDS = [get_object, get_tag, put_header, put_footer]
