"""The gRPC server beside tuskd's HTTP server.

By default both share one port: :class:`SharedPort` is the HTTP server's connection protocol,
and a connection that opens with HTTP/2's preface (what every gRPC client sends first) is
relayed to the gRPC server listening on loopback, while any other is served as HTTP/1.1 as
before. With ``--grpc-port`` set to another port, the gRPC server listens there itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import grpc

from tusk.grpc import misc, pfs, pps, transactions
from tusk.runtime import Engine

log = logging.getLogger(__name__)

MAX_MESSAGE = 64 << 20  # bytes of one message either way (clients send up to 20 MiB)
# Calls at a time: long waits (subscribe, wait commit, follow logs) hold a thread each; a call
# beyond that is answered RESOURCE_EXHAUSTED at once rather than queued behind them.
WORKERS = 128
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
UNDECIDED_TIMEOUT = 30.0  # seconds a connection may stay silent before its first bytes


class GrpcServer:
    """The gRPC services over ``engine``, on ``host:port`` or (``port`` None) on a loopback
    port of its own that :class:`SharedPort` relays to."""

    def __init__(self, engine: Engine, host: str, port: int | None) -> None:
        token = engine.settings.auth_token
        pfs_api = pfs.build(engine, token)
        pps_apis = pps.build(engine, token)
        services = [
            misc.build_version(token),
            misc.build_health(token),
            misc.build_admin(engine, token),
            *misc.build_enterprise(token),
            transactions.build(engine, token, pfs_api, pps_apis[0]),
            pfs_api,
            *pps_apis,
        ]
        self.server = grpc.server(
            ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="grpc"),
            handlers=[s.handler() for s in services],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", MAX_MESSAGE),
                ("grpc.so_reuseport", 0),
            ],
            maximum_concurrent_rpcs=WORKERS,
        )
        address = f"{host}:{port}" if port is not None else "127.0.0.1:0"
        bound = self.server.add_insecure_port(address)
        if bound == 0:
            raise OSError(f"cannot listen on {address} for gRPC (is the port in use?)")
        self.port = bound

    def start(self) -> None:
        self.server.start()

    def stop(self, grace: float = 2.0) -> None:
        self.server.stop(grace).wait()


def shared_port(http_class: type[asyncio.Protocol], grpc_port: int) -> type[asyncio.Protocol]:
    """An HTTP connection protocol for uvicorn that relays gRPC connections to ``grpc_port``."""

    class SharedPort(asyncio.Protocol):
        def __init__(self, **kwargs: Any) -> None:
            self.kwargs = kwargs
            self.transport: asyncio.Transport | None = None
            self.inner: asyncio.Protocol | None = None
            self.relay: _Relay | None = None
            self.head = b""
            self.timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
            self.timer = asyncio.get_running_loop().call_later(
                UNDECIDED_TIMEOUT, self.transport.close
            )

        def data_received(self, data: bytes) -> None:
            if self.inner is not None:
                self.inner.data_received(data)
                return
            if self.relay is not None:
                self.relay.send(data)
                return
            self.head += data
            if len(self.head) < len(PREFACE) and PREFACE.startswith(self.head):
                return  # not yet known
            head, self.head = self.head, b""
            if self.timer is not None:
                self.timer.cancel()
            assert self.transport is not None
            if head.startswith(PREFACE):
                self.relay = _Relay(self.transport, grpc_port, head)
            else:
                self.inner = http_class(**self.kwargs)
                self.inner.connection_made(self.transport)
                self.inner.data_received(head)

        def eof_received(self) -> bool | None:
            if self.inner is not None:
                return self.inner.eof_received()
            if self.relay is not None:
                self.relay.send_eof()
                return True
            return None

        def connection_lost(self, exc: Exception | None) -> None:
            if self.timer is not None:
                self.timer.cancel()
            if self.inner is not None:
                self.inner.connection_lost(exc)
            if self.relay is not None:
                self.relay.close()

        def pause_writing(self) -> None:
            if self.inner is not None:
                self.inner.pause_writing()
            if self.relay is not None:
                self.relay.pause_reading()

        def resume_writing(self) -> None:
            if self.inner is not None:
                self.inner.resume_writing()
            if self.relay is not None:
                self.relay.resume_reading()

    return SharedPort


class _Relay:
    """A relayed gRPC connection, moved off the event loop: the client's socket (a duplicate of
    its descriptor; the HTTP transport stops reading it) and a connection to the gRPC server are
    joined by two threads that ``splice`` the bytes through a pipe inside the kernel. Relayed
    through the event loop instead, every 256 KiB of an upload was a Python callback and a copy
    on the loop's thread, which held a ModifyFile upload well below the gRPC server's own
    speed."""

    PIPE = 1 << 20  # bytes the kernel moves per splice

    def __init__(self, front: asyncio.Transport, port: int, first: bytes) -> None:
        self.front = front
        self.loop = asyncio.get_running_loop()
        sock = front.get_extra_info("socket")
        front.pause_reading()
        self.client = socket.socket(fileno=os.dup(sock.fileno()))
        self.client.setblocking(True)
        self.closed = threading.Event()
        threading.Thread(
            target=self._run, args=(port, first), name="grpc-relay", daemon=True
        ).start()

    def _run(self, port: int, first: bytes) -> None:
        try:
            server = socket.create_connection(("127.0.0.1", port))
        except OSError as e:
            log.warning("gRPC relay: cannot reach the gRPC server: %s", e)
            self._end()
            return
        try:
            server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            server.sendall(first)
            back = threading.Thread(
                target=self._pump, args=(server, self.client), name="grpc-relay", daemon=True
            )
            back.start()
            self._pump(self.client, server)
            back.join()
        except OSError:
            pass
        finally:
            server.close()
            self._end()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        """Bytes from ``src`` to ``dst`` until ``src`` ends; then ``dst`` is told so. A failure
        either way ends both directions."""
        r, w = os.pipe()
        try:
            with contextlib.suppress(OSError):
                fcntl.fcntl(w, getattr(fcntl, "F_SETPIPE_SZ", 1031), self.PIPE)
            while True:
                n = os.splice(src.fileno(), w, self.PIPE)
                if n == 0:
                    dst.shutdown(socket.SHUT_WR)
                    return
                while n:
                    n -= os.splice(r, dst.fileno(), n)
        except OSError:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        finally:
            os.close(r)
            os.close(w)

    def _end(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            with contextlib.suppress(OSError):
                self.client.close()
            with contextlib.suppress(RuntimeError):  # the loop has ended (server stopping)
                self.loop.call_soon_threadsafe(self.front.close)

    # the event loop's side: the client's bytes no longer pass through it
    def send(self, data: bytes) -> None:  # pragma: no cover - reading is paused
        raise AssertionError("a relayed connection is not read by the event loop")

    def send_eof(self) -> None:
        pass

    def close(self) -> None:
        """The HTTP transport closed (the server stops): end the relay too."""
        if not self.closed.is_set():
            with contextlib.suppress(OSError):
                self.client.shutdown(socket.SHUT_RDWR)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass
