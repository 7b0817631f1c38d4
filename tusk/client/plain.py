"""Requests over the standard library alone: GETs, and writes of a whole body, answered with
plain JSON values.

The CLI's reads (``list-repo``, ``list-file``, ``get-file``, ...), its edits (repos, commits,
branches, pipelines, jobs) and its small puts (``put-file`` of a few local files or of stdin)
use this instead of the typed :class:`tusk.client.Client`, so that they import neither httpx nor
pydantic and start in a fraction of the time. Errors are the same :mod:`tusk.errors` classes the
typed client raises, with the same messages. Puts too big to hold in memory, and the commands
that render typed models, keep the typed client.

HTTP/1.1 is spoken over a socket here rather than through ``http.client``: that module imports
``email`` and ``ssl``, which cost a CLI start as much as everything else it imports (``ssl`` is
imported only for an ``https://`` address). tuskd's answers are plain: a status line, headers,
then a body of known length or chunked.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from tusk.errors import ServerUnavailable, from_wire

NDJSON = "application/x-ndjson"
READ_BLOCK = 1 << 20
LINES_BLOCK = 1 << 16
CONNECT_TIMEOUT = 5.0
MAX_HEAD = 64 << 10  # bytes of status line and headers an answer may have


class _Closed(Exception):
    """The server closed the connection before it answered (an idle kept-alive one)."""


class _BadAnswer(Exception):
    """An answer that is not HTTP/1.1 as tuskd speaks it."""


class _Answer:
    """One HTTP/1.1 answer on a connection: status, headers, and the body as it arrives."""

    def __init__(self, conn: _Connection) -> None:
        self._file = conn.file
        line = self._file.readline(MAX_HEAD)
        if not line:
            raise _Closed()
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise _BadAnswer(f"not an HTTP answer: {line[:80]!r}")
        self.status = int(parts[1])
        self.headers: dict[str, str] = {}
        while (line := self._file.readline(MAX_HEAD)) not in (b"\r\n", b"\n"):
            if not line:
                raise _BadAnswer("the answer ended in its headers")
            name, _, value = line.decode("latin-1").partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.reusable = self.headers.get("connection", "").lower() != "close"
        self.done = False

    def chunks(self, size: int = READ_BLOCK) -> Iterator[bytes]:
        """The body, in pieces of at most ``size`` bytes as they arrive."""
        read = self._file.read
        if "chunked" in self.headers.get("transfer-encoding", ""):
            while (n := int(self._file.readline(MAX_HEAD).split(b";")[0], 16)) > 0:
                while n > 0:
                    piece = read(min(n, size))
                    if not piece:
                        raise _BadAnswer("the answer ended in a chunk")
                    n -= len(piece)
                    yield piece
                read(2)  # the CRLF after the chunk
            while self._file.readline(MAX_HEAD) not in (b"\r\n", b"\n", b""):
                pass  # trailers
        elif "content-length" in self.headers:
            left = int(self.headers["content-length"])
            while left > 0:
                piece = read(min(left, size))
                if not piece:
                    raise _BadAnswer("the answer ended before its length")
                left -= len(piece)
                yield piece
        else:
            self.reusable = False
            while piece := read(size):
                yield piece
        self.done = True

    def body(self) -> bytes:
        return b"".join(self.chunks())


class _Connection:
    """A socket to the server and its buffered reading side."""

    def __init__(self, host: str, port: int, tls: bool, timeout: float) -> None:
        # an ASCII name as bytes: a str would load the idna codec first (a few ms of a CLI start)
        name = host.encode("ascii") if host.isascii() else host
        sock = socket.create_connection((name, port), timeout=timeout)  # type: ignore[arg-type]
        if tls:
            import ssl

            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        self.sock = sock
        self.file = sock.makefile("rb")

    def send(self, head: bytes, body: bytes = b"") -> _Answer:
        try:
            self.sock.sendall(head)
            if body:
                self.sock.sendall(body)
        except (BrokenPipeError, ConnectionResetError):
            # the server may have answered (a refusal) before it read the whole body
            try:
                return _Answer(self)
            except (OSError, ValueError, _Closed, _BadAnswer):
                pass
            raise
        return _Answer(self)

    def close(self) -> None:
        self.file.close()
        self.sock.close()


class PlainReader:
    """Requests under ``/v1`` of one tuskd; one connection, kept open between GETs."""

    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        timeout: float = 300.0,
        when_refused: Callable[[], None] | None = None,
    ) -> None:
        """``when_refused``: called once when the first connection is refused (e.g. to start a
        local server, or raise the error that says why none can be); then it is tried again."""
        self.address = address.rstrip("/")
        self._when_refused = when_refused
        url = urlsplit(self.address)
        self._tls = url.scheme == "https"
        self._host = url.hostname or "127.0.0.1"
        self._port = url.port or (443 if self._tls else 80)
        self._prefix = url.path.rstrip("/") + "/v1"
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = timeout
        self._conn: _Connection | None = None
        self._answer: _Answer | None = None

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._answer = None

    # -- requests ------------------------------------------------------------------------------
    def get(self, route: str, /, *, timeout: float | None = -1.0, **params: Any) -> Any:
        """GET ``route`` with the non-``None`` ``params``; the answer's JSON value (``timeout``:
        how long to wait for it, ``None`` for ever; default the reader's)."""
        resp = self._open(route, params, accept="application/json", timeout=timeout)
        return json.loads(self._read_all(resp))

    def lines(self, route: str, /, *, timeout: float | None = -1.0, **params: Any) -> Iterator[Any]:
        """GET ``route`` as a stream of JSON lines; each value as it arrives (``timeout``: how
        long to wait for the next bytes, ``None`` for ever; default the reader's). A line
        ``{"error": ...}`` (a failure after the answer began) raises its tusk error."""
        resp = self._open(route, params, accept=NDJSON, timeout=timeout)
        try:
            rest = b""
            for block in self._pieces(resp, LINES_BLOCK):
                *done, rest = (rest + block).split(b"\n")
                for line in done:
                    if line.strip():
                        yield _value(line)
            if rest.strip():
                yield _value(rest)
        finally:
            self._finish(resp)

    def post(
        self,
        route: str,
        body: bytes,
        /,
        *,
        content_type: str,
        timeout: float | None = -1.0,
        **params: Any,
    ) -> Any:
        """POST ``body`` (whole, with its length) to ``route`` with the non-``None`` ``params``;
        the answer's JSON value (None for an empty answer). Never sent twice: a write goes on a
        new connection, and a lost one is an error (the server may have carried it out)."""
        return self._write("POST", route, (content_type, body), params, timeout)

    def send(
        self,
        method: str,
        route: str,
        payload: Any = None,
        /,
        *,
        timeout: float | None = -1.0,
        **params: Any,
    ) -> Any:
        """A write (``POST``, ``PUT``, ``DELETE``) of ``payload`` as JSON (None: no body) to
        ``route``; the answer's JSON value (None for an empty answer). Sent once, as ``post``
        (``timeout``: how long to wait for the answer, ``None`` for ever)."""
        body = None if payload is None else ("application/json", json.dumps(payload).encode())
        return self._write(method, route, body, params, timeout)

    def _write(
        self,
        method: str,
        route: str,
        body: tuple[str, bytes] | None,
        params: dict[str, Any],
        timeout: float | None,
    ) -> Any:
        if self._conn is not None and self._answer is None:
            self.close()  # a kept-alive connection may be closed under us: never retry a write
        resp = self._open(
            route, params, accept="application/json", timeout=timeout, method=method, body=body
        )
        text = self._read_all(resp)
        return json.loads(text) if text.strip() else None

    def blocks(self, route: str, /, **params: Any) -> Iterator[bytes]:
        """GET ``route``; the body in blocks as it arrives (file contents)."""
        resp = self._open(route, params, accept="application/octet-stream")
        try:
            yield from self._pieces(resp, READ_BLOCK)
        finally:
            self._finish(resp)

    # -- plumbing ------------------------------------------------------------------------------
    def _connection(self) -> _Connection:
        if self._conn is None:
            hook, self._when_refused = self._when_refused, None  # only ever the first time
            try:
                self._conn = _Connection(self._host, self._port, self._tls, CONNECT_TIMEOUT)
            except OSError:
                if hook is None:
                    raise ServerUnavailable(
                        f"no tusk server answers at {self.address}",
                        hint="start one with `tusk up` (or set TUSK_ADDRESS)",
                    ) from None
                hook()
                return self._connection()
        return self._conn

    def _open(
        self,
        route: str,
        params: dict[str, Any],
        *,
        accept: str,
        timeout: float | None = -1.0,
        method: str = "GET",
        body: tuple[str, bytes] | None = None,
    ) -> _Answer:
        if self._answer is not None:  # an earlier answer was left unread: start afresh
            self.close()
        route, params = _in_project(route, params)
        target = self._prefix + quote(route, safe="/")
        query = urlencode(
            [(k, _param(x)) for k, v in params.items() if v is not None for x in _each(v)]
        )
        if query:
            target += "?" + query
        head = [f"{method} {target} HTTP/1.1", f"Host: {self._host}:{self._port}"]
        head += [f"Accept: {accept}", *(f"{k}: {v}" for k, v in self._headers.items())]
        content = b""
        if body is not None:
            content_type, content = body
            head.append(f"Content-Type: {content_type}")
        if method != "GET":
            head.append(f"Content-Length: {len(content)}")
        request = ("\r\n".join(head) + "\r\n\r\n").encode()
        wait = self._timeout if timeout == -1.0 else timeout
        for attempt in (1, 2):
            reused = self._conn is not None
            conn = self._connection()
            try:
                conn.sock.settimeout(wait)
                resp = conn.send(request, content)
                break
            except (_Closed, ConnectionResetError, BrokenPipeError) as e:
                self.close()
                if reused and attempt == 1 and method == "GET":
                    continue  # the server closed the idle kept-alive connection: reconnect
                raise self._lost(e) from None
            except (OSError, ValueError, _BadAnswer) as e:
                self.close()
                raise self._lost(e) from None
        self._answer = resp
        if resp.status >= 400:
            _raise_for(resp.status, self._read_all(resp))
        return resp

    def _pieces(self, resp: _Answer, size: int) -> Iterator[bytes]:
        try:
            yield from resp.chunks(size)
        except (OSError, ValueError, _BadAnswer) as e:
            self.close()
            raise self._lost(e) from None

    def _read_all(self, resp: _Answer) -> bytes:
        try:
            return b"".join(self._pieces(resp, READ_BLOCK))
        finally:
            self._finish(resp)

    def _finish(self, resp: _Answer) -> None:
        """After an answer: keep the connection for the next request if it was read to its end."""
        if resp is self._answer:
            self._answer = None
            if not (resp.done and resp.reusable):
                self.close()  # an answer left half read cannot carry another request

    def _lost(self, e: BaseException) -> ServerUnavailable:
        name = "ReadTimeout" if isinstance(e, TimeoutError) else type(e).__name__
        return ServerUnavailable(
            f"lost the connection to the tusk server at {self.address} "
            f"({name}: {e or 'no detail'})",
            hint="check the server with `tusk status`, then run the command again",
        )


def _value(line: bytes) -> Any:
    """One JSON line; the error line a failed stream ends with raises its tusk error."""
    value = json.loads(line)
    if isinstance(value, dict) and len(value) == 1 and "error" in value:
        raise from_wire(value["error"])
    return value


def _each(value: Any) -> list[Any]:
    """A query parameter's values: a list or tuple gives the parameter once per item."""
    return list(value) if isinstance(value, list | tuple) else [value]


def _param(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def _raise_for(status: int, body: bytes) -> None:
    """The tusk error an error answer carries (its class comes from the wire code)."""
    try:
        payload = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        text = body.decode("utf-8", "replace")
        raise ServerUnavailable(f"tusk server error {status}: {text[:200]}") from None
    raise from_wire(payload)


def is_up(address: str, token: str | None = None, timeout: float = 5.0) -> bool:
    """Whether a tusk server answers at ``address`` (sending ``token`` if it needs one).

    Only a refused or failed connection means no server: one that answers slowly (a loaded
    machine) or refuses the token is there."""
    url = urlsplit(address.rstrip("/"))
    tls = url.scheme == "https"
    host, port = url.hostname or "127.0.0.1", url.port or (443 if tls else 80)
    head = [f"GET {url.path.rstrip('/')}/v1/info HTTP/1.1", f"Host: {host}:{port}"]
    head += [f"Authorization: Bearer {token}"] if token else []
    try:
        conn = _Connection(host, port, tls, timeout)
    except TimeoutError:
        return True  # the connection did not complete in time: something slow is there
    except OSError:
        return False
    try:
        answer = conn.send(("\r\n".join(head) + "\r\n\r\n").encode())
        answer.body()  # read to the end: then this side closes first, and the server's port is
        status = answer.status  # not left in TIME_WAIT (`tusk down` frees it at once)
    except TimeoutError:
        return True  # it accepted the connection: a server is there, just slow
    except (OSError, ValueError, _Closed, _BadAnswer):
        return False
    finally:
        conn.close()
    return status in (200, 401, 403)


_QUALIFIED = re.compile(r"^(/(?:repos|pipelines)/)([^/%?]+)%2F([^/?]+)")


def _in_project(route: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A route whose repo or pipeline segment is qualified (``lab%2Fimages``, see
    ``tusk.cli.common.repo_seg``) as the bare segment with ``project`` in the query."""
    m = _QUALIFIED.match(route)
    if m is None:
        return route, params
    return m.group(1) + m.group(3) + route[m.end() :], {**params, "project": m.group(2)}
