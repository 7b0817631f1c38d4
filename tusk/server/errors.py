"""Errors as tuskd sends them: ``{"error": {code, message, hint, fields}}`` with the HTTP status
of the error's class (the one table in :mod:`tusk.errors`)."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from tusk.errors import TuskError


def error_response(err: TuskError, status: int | None = None) -> JSONResponse:
    """The wire form of ``err``, with its class's HTTP status unless ``status`` is given."""
    return JSONResponse({"error": err.to_wire()}, status_code=status or err.http_status)
