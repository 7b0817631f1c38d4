"""Table rows more than one command module prints (kept apart so that a command imports only
its own module)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tusk.cli.units import ago, bytes_size, time_difference

if TYPE_CHECKING:
    from tusk.api.models import CommitInfo

COMMIT_HEADER = ("REPO", "ID", "PARENT", "STARTED", "DURATION", "SIZE")


def commit_row(info: CommitInfo) -> tuple[str, ...]:
    done = info.finished is not None
    return (
        info.commit.repo,
        info.commit.id,
        info.parent or "<none>",
        ago(info.started),
        time_difference(info.started, info.finished) if done else "-",
        bytes_size(info.size_bytes) if done else "-",
    )
