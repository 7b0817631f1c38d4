"""Crash points for fault-injection tests: the server exits on the spot at a named point.

Only tests arm them (through ``TUSK_TEST_CRASH_AT``, which :mod:`tusk.runtime` reads); unarmed,
a crash point costs one set lookup. They mark the places where a crash must be harmless:

- ``job-output-finished``: a job's output commit is finished, the job not yet marked successful;
- ``head-before-propagate``: a new input head is committed, its downstream jobs not yet created;
- ``put-tree-batch``: a big put has written one batch of its files into the tree, the rest and
  the commit not yet;
- ``transaction-request``: a FinishTransaction (or a dry run of a transaction, when a request
  is added to it) has run one request of its transaction, the others and the commit not yet.
"""

from __future__ import annotations

import os
import sys

CRASH_POINTS = frozenset(
    {"job-output-finished", "head-before-propagate", "put-tree-batch", "transaction-request"}
)
CRASH_EXIT_CODE = 86
_armed: frozenset[str] = frozenset()


def arm(points: frozenset[str]) -> None:
    """Crash at each of ``points`` from now on (an empty set disarms them)."""
    global _armed
    _armed = points


def crash_point(name: str) -> None:
    """Exit the process at once, as a crash would, if ``name`` is armed."""
    if name in _armed:
        print(f"tusk: crash point {name} reached; exiting", file=sys.stderr, flush=True)
        os._exit(CRASH_EXIT_CODE)
