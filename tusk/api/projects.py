"""Project-qualified names, shared by the server and its clients.

A repo or pipeline of the ``default`` project is stored under its bare name (``images``); one of
another project under ``<project>/<name>`` (``lab/images``). ``/`` cannot appear in a repo,
pipeline or project name, so the two forms never clash, and databases made before projects
existed need no rewrite.
"""

from __future__ import annotations

DEFAULT_PROJECT = "default"
SEP = "/"


def qualify(project: str | None, name: str) -> str:
    """The stored key of ``name`` in ``project`` (None or ``default``: the bare name). A name
    that is already qualified (``<project>/<name>``) names its own project and is returned as
    it is."""
    if SEP in name:
        have, _, bare_name = name.partition(SEP)
        return bare_name if have == DEFAULT_PROJECT else name
    if not project or project == DEFAULT_PROJECT:
        return name
    return f"{project}{SEP}{name}"


def split(key: str) -> tuple[str, str]:
    """(project, bare name) of a stored key."""
    project, sep, name = key.partition(SEP)
    return (project, name) if sep else (DEFAULT_PROJECT, key)


def project_of(key: str) -> str:
    return split(key)[0]


def bare(key: str) -> str:
    return split(key)[1]
