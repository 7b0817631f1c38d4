"""The gRPC server beside tuskd's HTTP server.

By default both share one port: :class:`SharedPort` is the HTTP server's connection protocol,
and a connection that opens with HTTP/2's preface (what every gRPC client sends first) is
relayed to the gRPC server listening on loopback, while any other is served as HTTP/1.1 as
before. With ``--grpc-port`` set to another port, the gRPC server listens there itself.
"""

from __future__ import annotations

import asyncio
import logging
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


class _Relay(asyncio.Protocol):
    """The gRPC server's side of a relayed connection: bytes both ways, with back-pressure."""

    def __init__(self, front: asyncio.Transport, port: int, first: bytes) -> None:
        self.front = front
        self.back: asyncio.Transport | None = None
        self.pending: list[bytes] = [first]
        self.eof = False
        self.closed = False
        loop = asyncio.get_running_loop()
        task = loop.create_task(loop.create_connection(lambda: self, "127.0.0.1", port))
        task.add_done_callback(self._connected)

    def _connected(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or task.exception() is not None:
            log.warning("gRPC relay: cannot reach the gRPC server: %s", task.exception())
            self.front.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        back = self.back = cast(asyncio.Transport, transport)
        if self.closed:
            back.close()
            return
        for data in self.pending:
            back.write(data)
        self.pending = []
        if self.eof and back.can_write_eof():
            back.write_eof()

    def send(self, data: bytes) -> None:
        if self.back is None:
            self.pending.append(data)
        else:
            self.back.write(data)

    def send_eof(self) -> None:
        self.eof = True
        if self.back is not None and self.back.can_write_eof():
            self.back.write_eof()

    def close(self) -> None:
        self.closed = True
        if self.back is not None:
            self.back.close()

    def data_received(self, data: bytes) -> None:
        self.front.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.front.close()

    def pause_writing(self) -> None:
        self.front.pause_reading()

    def resume_writing(self) -> None:
        self.front.resume_reading()

    def pause_reading(self) -> None:
        if self.back is not None:
            self.back.pause_reading()

    def resume_reading(self) -> None:
        if self.back is not None:
            self.back.resume_reading()
