"""Identifiers: 32-hex ids for commits and jobs, and the one parse function for commit refs."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from tusk.errors import InvalidArgument

_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_ANCESTRY = re.compile(r"^(?P<base>.+?)(?P<ops>(\^+|~+)(?P<n>[0-9]+)?)$")


def new_id() -> str:
    return uuid.uuid4().hex


def is_commit_id(text: str) -> bool:
    return bool(_HEX32.match(text))


@dataclass(frozen=True, slots=True)
class CommitRef:
    """A commit reference as a user writes it: ``<id-or-branch>`` plus ``ancestors`` steps back."""

    base: str
    ancestors: int = 0

    @property
    def is_id(self) -> bool:
        return is_commit_id(self.base)


def parse_commit_ref(text: str) -> CommitRef:
    """Parse ``master``, ``<id>``, ``master^``, ``master^^``, ``master^3``, ``master~2``.

    Mixing ``^`` and ``~`` is not ancestry (1.7 treats it as a literal name).
    """
    text = text.strip()
    if not text:
        raise InvalidArgument("empty commit reference", hint="give a branch name or a commit id")
    m = _ANCESTRY.match(text)
    if not m:
        return CommitRef(text, 0)
    ops = m.group("ops")
    marks = ops.rstrip("0123456789")
    n = m.group("n")
    count = len(marks) - 1 + int(n) if n is not None else len(marks)
    return CommitRef(m.group("base"), count)
