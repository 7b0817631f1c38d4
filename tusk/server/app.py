"""The FastAPI application: routes, error mapping and auth, over one Engine."""

from __future__ import annotations

import logging
import os
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from tusk import __version__
from tusk.api.host import machine_identity
from tusk.api.models import ErrorBody, ServerInfo
from tusk.console import routes as console_routes
from tusk.errors import Internal, InvalidArgument, TuskError
from tusk.meta.store import redact_url
from tusk.runtime import Engine
from tusk.server import admin_routes, pfs_routes, pps_routes, project_routes, secret_routes
from tusk.server.errors import error_response
from tusk.server.guard import RequestGuard

log = logging.getLogger(__name__)


def _documented(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# The error answers every route may give, as the OpenAPI schema tells clients.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _documented("Invalid request: a malformed value, name, path or spec (code: invalid*)"),
    401: _documented("Missing or wrong auth token (code: unauthenticated)"),
    403: _documented("Refused: a web page of another site, or a foreign host name (forbidden)"),
    404: _documented("The repo, commit, branch, file, pipeline or job does not exist"),
    409: _documented("Conflicts with the current state (exists, conflict, finished, ...)"),
    415: _documented("A body without its route's content type (code: invalid)"),
}


def create_app(engine: Engine) -> FastAPI:
    """The tuskd application serving ``engine``."""
    app = FastAPI(title="tuskd", version=__version__)
    app.state.engine = engine

    @app.exception_handler(TuskError)
    async def _tusk_error(_req: Request, exc: TuskError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_response(
            InvalidArgument(f"invalid request: {where}: {first.get('msg', 'invalid')}")
        )

    @app.exception_handler(Exception)
    async def _unexpected(req: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", req.method, req.url.path, exc_info=exc)
        return error_response(Internal(f"internal error: {type(exc).__name__}"))

    app.add_middleware(RequestGuard, settings=engine.settings)

    @app.get("/v1/info")
    def info() -> ServerInfo:
        s = engine.settings
        return ServerInfo(
            version=__version__,
            home=str(s.home),
            pid=os.getpid(),
            metadata_url=redact_url(s.metadata_url),
            object_url=redact_url(s.object_url),
            executor=s.executor,
            machine_id=machine_identity(),
            uid=os.getuid(),
        )

    app.include_router(pfs_routes.router, prefix="/v1", responses=ERROR_RESPONSES)
    app.include_router(pps_routes.router, prefix="/v1", responses=ERROR_RESPONSES)
    app.include_router(project_routes.router, prefix="/v1", responses=ERROR_RESPONSES)
    app.include_router(secret_routes.router, prefix="/v1", responses=ERROR_RESPONSES)
    app.include_router(admin_routes.router, prefix="/v1", responses=ERROR_RESPONSES)
    # the console (a web UI): its page and JSON API are not part of the documented HTTP API
    app.include_router(console_routes.router, include_in_schema=False)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, told the truth: a request that fails validation is answered 400 with
    tusk's error body (documented on every route), never 422."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                operation.get("responses", {}).pop("422", None)
        schemas = schema.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = schema
    return app.openapi_schema
