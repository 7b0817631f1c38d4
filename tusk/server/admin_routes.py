"""Whole-deployment routes: cluster id, delete-all, garbage collection, extract and restore,
and objects and tags by id."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from tusk.api.admin import (
    EXTRACT_MEDIA_TYPE,
    ClusterInfo,
    DeleteAllResult,
    GcResult,
    RestoreResult,
)
from tusk.errors import InvalidArgument
from tusk.runtime import Engine

router = APIRouter()


def eng(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


@router.get("/cluster")
def inspect_cluster(request: Request) -> ClusterInfo:
    return eng(request).admin.inspect_cluster()


@router.delete("/all")
def delete_all(request: Request) -> DeleteAllResult:
    return eng(request).admin.delete_all()


@router.post("/gc")
def garbage_collect(request: Request) -> GcResult:
    return eng(request).admin.garbage_collect()


@router.get("/object")
def get_object(id: str, request: Request) -> StreamingResponse:
    blocks = eng(request).admin.get_object(id)
    first = next(blocks, b"")  # a missing object is a 404, not a cut stream

    def body() -> Iterator[bytes]:
        yield first
        yield from blocks

    return StreamingResponse(body(), media_type="application/octet-stream")


@router.get("/tag")
def get_tag(tag: str, request: Request) -> StreamingResponse:
    manifest = eng(request).admin.get_tag(tag)
    return StreamingResponse(iter([manifest.encode()]), media_type="application/json")


@router.get("/extract")
def extract(request: Request, objects: bool = True) -> StreamingResponse:
    return StreamingResponse(eng(request).admin.extract(objects), media_type=EXTRACT_MEDIA_TYPE)


@router.get("/restore/ready")
def restore_ready(request: Request) -> None:
    """Answers 409 (and why) unless the server is empty, so a client learns it before sending a
    whole extract."""
    eng(request).admin.check_empty()


@router.post(
    "/restore",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "a stream written by GET /v1/extract (docs/extract.md)",
            "content": {EXTRACT_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def restore(request: Request) -> RestoreResult:
    e = eng(request)
    await anyio.to_thread.run_sync(e.admin.check_empty)  # refuse before reading the body
    # The stream is spooled to the server's home: objects may be larger than memory.
    with tempfile.TemporaryFile(dir=e.settings.home, prefix="restore-") as spool:
        async for chunk in request.stream():
            await anyio.to_thread.run_sync(spool.write, chunk)
        if await request.is_disconnected():
            raise InvalidArgument("the client went away before the restore was sent whole")
        spool.seek(0)
        return await anyio.to_thread.run_sync(e.admin.restore, spool)
