"""A transport that serves a :class:`tusk.Client`'s requests from an ASGI app in this process.

httpx's own ``ASGITransport`` is for async clients only; this one runs it on an event loop in a
helper thread so the (synchronous) client can use it: ``Client(url, transport=InProcessTransport(
create_app(engine)))``. Like ``ASGITransport`` it hands over a response once the app has sent all
of it, so endless streams (``subscribe_commit``) need a real server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractContextManager
from typing import Any

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal


class _AsyncBody(httpx.AsyncByteStream):
    """A request body the client produces synchronously, offered to the async transport."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


class InProcessTransport(httpx.BaseTransport):
    """Serves requests from an ASGI app (e.g. tuskd's) on an event loop of its own thread."""

    def __init__(self, app: Any) -> None:
        self._asgi = httpx.ASGITransport(app=app)
        self._portal_cm: AbstractContextManager[BlockingPortal] = start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        self._closed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Run one request through the app; return its whole response."""
        assert isinstance(request.stream, Iterable)
        forwarded = httpx.Request(
            request.method,
            request.url,
            headers=request.headers,
            stream=_AsyncBody(request.stream),
            extensions=request.extensions,
        )
        return self._portal.call(self._handle, forwarded)

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        response = await self._asgi.handle_async_request(request)
        content = await response.aread()
        return httpx.Response(response.status_code, headers=response.headers, content=content)

    def close(self) -> None:
        """Stop the event loop thread."""
        if not self._closed:
            self._closed = True
            self._portal_cm.__exit__(None, None, None)
