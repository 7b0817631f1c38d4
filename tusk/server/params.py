"""Bounds of the numbers routes take in their queries: a number out of range (negative, NaN,
infinite, beyond what the database stores) is a 400 naming the parameter, never a hang or a
500."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

MAX_COUNT = 1 << 62  # counts, offsets and lengths: any real one, and it fits a SQL BIGINT
MAX_WAIT = 3600.0  # seconds a request may block; a client waiting longer asks again

Count = Annotated[int, Query(ge=0, le=MAX_COUNT)]
Seconds = Annotated[float, Query(ge=0, le=MAX_WAIT, allow_inf_nan=False)]
