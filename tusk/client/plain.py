"""Reads over the standard library alone: GET requests answered with plain JSON values.

The CLI's read commands (``list-repo``, ``list-file``, ``get-file``, ...) use this instead of the
typed :class:`tusk.client.Client`, so that they import neither httpx nor pydantic and start in a
fraction of the time. Errors are the same :mod:`tusk.errors` classes the typed client raises,
with the same messages. Writes keep the typed client.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from tusk.errors import ServerUnavailable, from_wire

NDJSON = "application/x-ndjson"
READ_BLOCK = 1 << 20
LINES_BLOCK = 1 << 16
CONNECT_TIMEOUT = 5.0


class PlainReader:
    """GET requests under ``/v1`` of one tuskd; one connection, kept open between requests."""

    def __init__(self, address: str, *, token: str | None = None, timeout: float = 300.0) -> None:
        self.address = address.rstrip("/")
        url = urlsplit(self.address)
        self._tls = url.scheme == "https"
        self._host = url.hostname or "127.0.0.1"
        self._port = url.port or (443 if self._tls else 80)
        self._prefix = url.path.rstrip("/") + "/v1"
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- requests ------------------------------------------------------------------------------
    def get(self, route: str, /, **params: Any) -> Any:
        """GET ``route`` with the non-``None`` ``params``; the answer's JSON value."""
        resp = self._open(route, params, accept="application/json")
        return json.loads(self._read(resp))

    def lines(self, route: str, /, *, timeout: float | None = -1.0, **params: Any) -> Iterator[Any]:
        """GET ``route`` as a stream of JSON lines; each value as it arrives (``timeout``: how
        long to wait for the next bytes, ``None`` for ever; default the reader's). A line
        ``{"error": ...}`` (a failure after the answer began) raises its tusk error."""
        resp = self._open(route, params, accept=NDJSON, timeout=timeout)
        try:
            rest = b""
            while block := self._read1(resp):
                *done, rest = (rest + block).split(b"\n")
                for line in done:
                    if line.strip():
                        yield _value(line)
            if rest.strip():
                yield _value(rest)
        finally:
            if not resp.isclosed():
                self.close()  # a stream left half read cannot carry another request

    def blocks(self, route: str, /, **params: Any) -> Iterator[bytes]:
        """GET ``route``; the body in blocks as it arrives (file contents)."""
        resp = self._open(route, params, accept="application/octet-stream")
        try:
            while block := self._read(resp, READ_BLOCK):
                yield block
        finally:
            if not resp.isclosed():
                self.close()  # a body left half read cannot carry another request

    # -- plumbing ------------------------------------------------------------------------------
    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._tls:
                import ssl

                self._conn = http.client.HTTPSConnection(
                    self._host,
                    self._port,
                    timeout=CONNECT_TIMEOUT,
                    context=ssl.create_default_context(),
                )
            else:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=CONNECT_TIMEOUT
                )
            try:
                self._conn.connect()
            except OSError:
                self._conn = None
                raise ServerUnavailable(
                    f"no tusk server answers at {self.address}",
                    hint="start one with `tusk up` (or set TUSK_ADDRESS)",
                ) from None
        assert self._conn.sock is not None
        self._conn.sock.settimeout(timeout)
        return self._conn

    def _open(
        self, route: str, params: dict[str, Any], *, accept: str, timeout: float | None = -1.0
    ) -> http.client.HTTPResponse:
        target = self._prefix + quote(route, safe="/")
        query = urlencode({k: _param(v) for k, v in params.items() if v is not None})
        if query:
            target += "?" + query
        headers = {**self._headers, "Accept": accept}
        wait = self._timeout if timeout == -1.0 else timeout
        for attempt in (1, 2):
            reused = self._conn is not None
            conn = self._connection(wait)
            try:
                conn.request("GET", target, headers=headers)
                resp = conn.getresponse()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                self.close()
                if reused and attempt == 1:
                    continue  # the server closed the idle kept-alive connection: reconnect
                raise self._lost(e) from None
            except (OSError, http.client.HTTPException) as e:
                self.close()
                raise self._lost(e) from None
        if resp.status >= 400:
            body = self._read(resp)
            self.close()
            _raise_for(resp.status, body)
        return resp

    def _read(self, resp: http.client.HTTPResponse, size: int | None = None) -> bytes:
        try:
            return resp.read(size) if size is not None else resp.read()
        except (OSError, http.client.HTTPException) as e:
            self.close()
            raise self._lost(e) from None

    def _read1(self, resp: http.client.HTTPResponse) -> bytes:
        try:
            return resp.read1(LINES_BLOCK)
        except (OSError, http.client.HTTPException) as e:
            self.close()
            raise self._lost(e) from None

    def _lost(self, e: BaseException) -> ServerUnavailable:
        name = "ReadTimeout" if isinstance(e, socket.timeout) else type(e).__name__
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
    conn: http.client.HTTPConnection
    if tls:
        import ssl

        conn = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        conn.request("GET", url.path.rstrip("/") + "/v1/info", headers=headers)
        status = conn.getresponse().status
    except TimeoutError:
        return True  # it accepted the connection: a server is there, just slow
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
    return status in (200, 401, 403)
