"""tuskd's app served by uvicorn in a thread of the calling process, on a free port: a real HTTP
socket (for what needs one, such as the local-ingest peer check) without a second process."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import uvicorn

from tusk.runtime import Engine
from tusk.server.app import create_app
from tusk.testing.process import free_port


@contextlib.contextmanager
def serve_in_thread(engine: Engine, timeout: float = 30.0) -> Iterator[str]:
    """Serve ``engine`` on 127.0.0.1 until the block ends; yields the server's address."""
    port = free_port()
    config = uvicorn.Config(
        create_app(engine), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            thread.join(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
    if thread.is_alive():
        raise RuntimeError(f"uvicorn did not stop in {timeout:g}s")
