"""Canonical file paths and repo/branch name rules (1.7 messages).

A canonical path has a leading ``/``, no trailing ``/``, no empty or ``.`` components; the root is
``/``. Paths may not contain glob characters, ``..`` components or non-printable characters.
"""

from __future__ import annotations

import re

from tusk.errors import InvalidName, InvalidPath
from tusk.ids import is_commit_id

ROOT = "/"
GLOB_CHARS = "*?[]{}!"
_GLOB_CHAR = re.compile(r"[*?\[\]{}!]")
# \Z, not $: "$" also matches before a final newline, which would let "abc\n" through.
_NAME = re.compile(r"\A[a-zA-Z0-9_-]+\Z")
MAX_NAME = 63  # as Kubernetes names; every backend stores it (the columns hold 128)
MAX_PATH_DEPTH = 256  # directory levels; deeper trees cost a recursion level each
MAX_PATH_CHARS = 4096  # as Linux's PATH_MAX
# Already canonical: leading "/", no "//", no trailing "/", no "." or ".." component.
_CANONICAL = re.compile(r"^(?:/(?!\.\.?(?:/|$))[^/]+)+$")


def clean_path(path: str, *, allow_root: bool = True) -> str:
    """Return the canonical form of ``path`` or raise InvalidPath naming the problem.

    ``allow_root=False`` is for paths that must name a file (``put-file``): the root has no name.
    """
    if len(path) > MAX_PATH_CHARS or path.count("/") > MAX_PATH_DEPTH:
        raise InvalidPath(
            f"path ({path[:60]}...) invalid: too long or too deep (at most {MAX_PATH_CHARS} "
            f"characters and {MAX_PATH_DEPTH} levels)",
            hint="use a shorter path with fewer directory levels",
            path=path[:200],
        )
    if not _CANONICAL.match(path):
        parts = [p for p in path.split("/") if p and p != "."]
        if ".." in parts:
            raise InvalidPath(
                f"path ({path}) invalid: '..' components are not allowed",
                hint="give the absolute path from the root of the commit",
                path=path,
            )
        path = "/" + "/".join(parts)
    m = _GLOB_CHAR.search(path)
    if m:
        raise InvalidPath(
            f"path ({path}) invalid: globbing character ({m.group()}) not allowed in path",
            hint=f"rename the file without any of {GLOB_CHARS}",
            path=path,
        )
    if not path.isprintable():
        bad = next(c for c in path if not c.isprintable())
        raise InvalidPath(
            f"path ({path!r}) invalid: non-printable character ({bad!r}) not allowed in path",
            hint="use printable characters only in file names",
            path=path,
        )
    if path == ROOT and not allow_root:
        raise InvalidPath(
            "path (/) invalid: a file needs a name, and the root directory has none",
            hint="give a path such as /dir/file",
            path=path,
        )
    return path


def split_path(path: str) -> list[str]:
    """Components of a canonical path (``[]`` for the root)."""
    return path.split("/")[1:] if path != ROOT else []


def join_path(parent: str, name: str) -> str:
    """The canonical path of ``name`` inside directory ``parent``."""
    return parent + name if parent == ROOT else f"{parent}/{name}"


def parent_and_name(path: str) -> tuple[str, str]:
    """Split a canonical non-root path into its parent directory and last component."""
    head, _, name = path.rpartition("/")
    return head or ROOT, name


def _check_length(kind: str, name: str) -> None:
    if len(name) > MAX_NAME:
        raise InvalidName(
            f"{kind} name ({name[:MAX_NAME]}...) invalid: longer than {MAX_NAME} characters",
            hint=f"choose a {kind} name of at most {MAX_NAME} characters",
            name=name[:200],
        )


def validate_repo_name(name: str) -> str:
    """``name`` if it is a valid repo name, else InvalidName."""
    _check_length("repo", name)
    if not _NAME.match(name):
        raise InvalidName(
            f"repo name ({name}) invalid: only alphanumeric characters, underscores, and dashes "
            "are allowed",
            hint="rename the repo using only a-z, A-Z, 0-9, _ and -",
            name=name,
        )
    return name


def validate_branch_name(name: str) -> str:
    """``name`` if it is a valid branch name (not a commit id), else InvalidName."""
    _check_length("branch", name)
    if not _NAME.match(name):
        hint = "rename the branch using only a-z, A-Z, 0-9, _ and -"
        if "^" in name or "~" in name:
            hint = "'^' and '~' are ancestry markers (master^ is the parent of master); " + hint
        raise InvalidName(
            f"branch name ({name}) invalid: only alphanumeric characters, underscores, and "
            "dashes are allowed",
            hint=hint,
            name=name,
        )
    if is_commit_id(name):
        raise InvalidName(
            f"branch name ({name}) invalid: it looks like a commit id (32 hex characters)",
            hint="choose a name that is not 32 hexadecimal characters",
            name=name,
        )
    return name
