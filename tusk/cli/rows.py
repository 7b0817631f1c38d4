"""Table rows more than one command module prints (kept apart so that a command imports only
its own module). Rows are made from wire values as plain JSON (``dict``), as the plain reader
returns them; a model is turned into that first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tusk.cli.units import ago, bytes_size, parse_time, time_difference

if TYPE_CHECKING:
    from tusk.api.models import CommitInfo

COMMIT_HEADER = ("REPO", "ID", "PARENT", "STARTED", "DURATION", "SIZE")


def commit_row(info: CommitInfo | dict[str, Any]) -> tuple[str, ...]:
    c = info if isinstance(info, dict) else info.model_dump(mode="json")
    started, finished = parse_time(c["started"]), parse_time(c.get("finished"))
    done = finished is not None
    return (
        c["commit"]["repo"],
        c["commit"]["id"],
        c.get("parent") or "<none>",
        ago(started),
        time_difference(started, finished) if done else "-",
        bytes_size(c.get("size_bytes", 0)) if done else "-",
    )
