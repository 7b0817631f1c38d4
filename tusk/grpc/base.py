"""How an adapter method becomes a grpcio handler: message (de)serialization, the auth token,
and tusk's errors as the status codes and texts pachd answers with."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NoReturn, TypeVar

import betterproto
import grpc

from tusk.errors import (
    AlreadyExists,
    CommitFailed,
    Conflict,
    Forbidden,
    InvalidArgument,
    NotFound,
    ServerUnavailable,
    SourceUnavailable,
    TuskError,
    Unauthenticated,
)

log = logging.getLogger(__name__)

M = TypeVar("M", bound=betterproto.Message)

# tusk's error classes as gRPC status codes (most specific first), as pachd answers them.
STATUS: tuple[tuple[type[TuskError], grpc.StatusCode], ...] = (
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (Conflict, grpc.StatusCode.FAILED_PRECONDITION),
    (CommitFailed, grpc.StatusCode.FAILED_PRECONDITION),
    (SourceUnavailable, grpc.StatusCode.INVALID_ARGUMENT),
    (ServerUnavailable, grpc.StatusCode.UNAVAILABLE),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (Forbidden, grpc.StatusCode.PERMISSION_DENIED),
)

AUTH_NOT_ACTIVATED = "the auth service is not activated"


def status_of(err: TuskError) -> grpc.StatusCode:
    for cls, code in STATUS:
        if isinstance(err, cls):
            return code
    return grpc.StatusCode.INTERNAL


class Unimplemented(Exception):
    """A method tusk does not serve (answered UNIMPLEMENTED with ``details``)."""

    def __init__(self, details: str) -> None:
        super().__init__(details)
        self.details = details


class Malformed:
    """A request that did not parse; its call is answered INVALID_ARGUMENT."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def parser(request: type[M], parse: Callable[[bytes], M] | None = None) -> Callable[[bytes], Any]:
    """A deserializer that never raises (grpcio would answer INTERNAL): a message that does not
    parse becomes :class:`Malformed`."""
    read = parse or request.FromString

    def deserialize(data: bytes) -> Any:
        try:
            return read(data)
        except Exception as exc:  # noqa: BLE001 - any parse failure is the client's
            return Malformed(exc)

    return deserialize


def _checked(req: Any) -> Any:
    if isinstance(req, Malformed):
        raise InvalidArgument(f"malformed request message: {req.error}")
    return req


class Service:
    """The methods of one gRPC service, each a function of the request message and the call's
    context (returning an iterator for server streams); ``handler`` registers them."""

    def __init__(self, name: str, token: str | None) -> None:
        self.name = name
        self.token = token
        self.methods: dict[str, grpc.RpcMethodHandler] = {}
        # the unary methods as plain functions of (request, context), for transactions
        self.functions: dict[str, Callable[..., Any]] = {}
        # ``intercept(method, request, context)``: a response when the call is not to run now
        # (a request carrying ``pach-transaction`` is recorded instead), else None
        self.intercept: Callable[[str, Any, grpc.ServicerContext], Any] | None = None

    def _check(self, context: grpc.ServicerContext) -> None:
        if self.token is None:
            return
        sent = dict(context.invocation_metadata()).get("authn-token", "")
        if not isinstance(sent, str) or not hmac.compare_digest(sent, self.token):
            raise Unauthenticated(
                "missing or wrong auth token",
                hint="pass the server's TUSK_AUTH_TOKEN as the client's auth_token",
            )

    def unary(
        self, name: str, request: type[M], parse: Callable[[bytes], M] | None = None
    ) -> Callable[[Callable[..., Any]], Any]:
        """Register ``fn(request) -> message`` as the unary method ``name``."""

        def register(fn: Callable[..., betterproto.Message]) -> Callable[..., Any]:
            def behavior(req: M, context: grpc.ServicerContext) -> betterproto.Message:
                try:
                    self._check(context)
                    if self.intercept is not None:
                        answer = self.intercept(name, _checked(req), context)
                        if answer is not None:
                            return answer
                    return fn(_checked(req), context)
                except BaseException as exc:  # noqa: BLE001 - every failure gets a status
                    _abort(context, self.name, name, exc)

            self.methods[name] = grpc.unary_unary_rpc_method_handler(
                behavior, request_deserializer=parser(request, parse), response_serializer=bytes
            )
            self.functions[name] = fn
            return fn

        return register

    def stream(
        self, name: str, request: type[M], parse: Callable[[bytes], M] | None = None
    ) -> Callable[[Callable[..., Any]], Any]:
        """Register ``fn(request) -> iterator of messages`` as the server-streaming ``name``."""

        def register(fn: Callable[..., Iterable[betterproto.Message]]) -> Callable[..., Any]:
            self.methods[name] = grpc.unary_stream_rpc_method_handler(
                self._yielding(name, fn, _checked),
                request_deserializer=parser(request, parse),
                response_serializer=bytes,
            )
            return fn

        return register

    def client_stream(
        self, name: str, request: type[M], parse: Callable[[bytes], M] | None = None
    ) -> Callable[[Callable[..., Any]], Any]:
        """Register ``fn(iterator of requests) -> message`` as the client-streaming ``name``."""

        def register(fn: Callable[..., betterproto.Message]) -> Callable[..., Any]:
            def behavior(reqs: Iterator[M], context: grpc.ServicerContext) -> betterproto.Message:
                try:
                    self._check(context)
                    if self.intercept is not None:
                        self.intercept(name, None, context)
                    return fn((_checked(r) for r in reqs), context)
                except BaseException as exc:  # noqa: BLE001 - every failure gets a status
                    _abort(context, self.name, name, exc)

            self.methods[name] = grpc.stream_unary_rpc_method_handler(
                behavior, request_deserializer=parser(request, parse), response_serializer=bytes
            )
            return fn

        return register

    def bidi(
        self, name: str, request: type[M], parse: Callable[[bytes], M] | None = None
    ) -> Callable[[Callable[..., Any]], Any]:
        """Register ``fn(iterator of requests) -> iterator of messages`` as the bidirectional
        stream ``name``."""

        def register(fn: Callable[..., Iterable[betterproto.Message]]) -> Callable[..., Any]:
            def each(reqs: Iterator[M]) -> Iterator[M]:
                return (_checked(r) for r in reqs)

            self.methods[name] = grpc.stream_stream_rpc_method_handler(
                self._yielding(name, fn, each),
                request_deserializer=parser(request, parse),
                response_serializer=bytes,
            )
            return fn

        return register

    def _yielding(
        self,
        name: str,
        fn: Callable[..., Iterable[betterproto.Message]],
        checked: Callable[[Any], Any],
    ) -> Callable[[Any, grpc.ServicerContext], Iterator[betterproto.Message]]:
        """The behavior of a method answering with a stream: ``fn(checked(request or requests),
        context)``'s messages, any failure as its status."""

        def behavior(arg: Any, context: grpc.ServicerContext) -> Iterator[betterproto.Message]:
            try:
                self._check(context)
                yield from fn(checked(arg), context)
            except BaseException as exc:  # noqa: BLE001 - every failure gets a status
                if isinstance(exc, GeneratorExit):
                    raise
                _abort(context, self.name, name, exc)

        return behavior

    def refuse(self, names: Iterable[str], details: str, code: grpc.StatusCode) -> None:
        """Answer every call of ``names`` with ``code`` and ``details`` (whatever the
        request), as pachd does for a service that is not activated."""

        def behavior(_req: bytes, context: grpc.ServicerContext) -> NoReturn:
            context.abort(code, details)
            raise AssertionError("abort returned")  # grpcio's abort always raises

        for name in names:
            self.methods[name] = grpc.unary_unary_rpc_method_handler(behavior)

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(self.name, self.methods)


def _abort(
    context: grpc.ServicerContext, service: str, method: str, exc: BaseException
) -> NoReturn:
    if isinstance(exc, TuskError):
        code, details = status_of(exc), exc.message
    elif isinstance(exc, Unimplemented):
        code, details = grpc.StatusCode.UNIMPLEMENTED, exc.details
    else:
        log.error("%s/%s failed", service, method, exc_info=exc)
        code, details = grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}"
    context.abort(code, details)
    raise AssertionError("abort returned")  # grpcio's abort always raises
