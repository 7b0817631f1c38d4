"""The FastAPI application: routes, error mapping and auth, over one Engine."""

from __future__ import annotations

import hmac
import os
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from tusk import __version__
from tusk.api.host import machine_identity
from tusk.api.models import ServerInfo
from tusk.errors import InvalidArgument, TuskError
from tusk.runtime import Engine
from tusk.server import pfs_routes, pps_routes


def _error_response(err: TuskError, status: int | None = None) -> JSONResponse:
    """The wire form of ``err``, with its class's HTTP status unless ``status`` is given."""
    return JSONResponse({"error": err.to_wire()}, status_code=status or err.http_status)


def create_app(engine: Engine) -> FastAPI:
    """The tuskd application serving ``engine``."""
    app = FastAPI(title="tuskd", version=__version__)
    app.state.engine = engine

    @app.exception_handler(TuskError)
    async def _tusk_error(_req: Request, exc: TuskError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error_response(
            InvalidArgument(f"invalid request: {where}: {first.get('msg', 'invalid')}")
        )

    token = engine.settings.auth_token
    if token:

        @app.middleware("http")
        async def _auth(
            request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given, token):
                unauthorised = InvalidArgument(
                    "missing or wrong auth token", hint="set TUSK_AUTH_TOKEN to the server's token"
                )
                return _error_response(unauthorised, status=401)
            return await call_next(request)

    @app.get("/v1/info")
    def info() -> ServerInfo:
        s = engine.settings
        return ServerInfo(
            version=__version__,
            home=str(s.home),
            pid=os.getpid(),
            metadata_url=s.metadata_url,
            object_url=s.object_url,
            executor=s.executor,
            machine_id=machine_identity(),
            uid=os.getuid(),
        )

    app.include_router(pfs_routes.router, prefix="/v1")
    app.include_router(pps_routes.router, prefix="/v1")
    return app
