"""What every PFS service shares: the stores, the tree codec, the change feed and the clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tusk.meta import MetadataStore
from tusk.pfs.events import ChangeFeed
from tusk.pfs.tree import Tree
from tusk.storage import ObjectStore

SPEC_REPO = "__spec__"


@dataclass
class PfsContext:
    """What every PFS service shares: stores, tree codec, change feed and clock."""

    meta: MetadataStore
    store: ObjectStore
    tree: Tree
    feed: ChangeFeed = field(default_factory=ChangeFeed)
    clock: Callable[[], float] = time.time


def to_datetime(ts: float | None) -> datetime | None:
    """A stored timestamp (seconds since the epoch) as an aware UTC datetime."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC)
