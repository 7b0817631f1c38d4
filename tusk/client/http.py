"""The HTTP session every part of the client shares; the one place transport errors are mapped."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from pydantic import BaseModel, TypeAdapter

from tusk.errors import ServerUnavailable, from_wire


def needs_tls(address: str) -> bool:
    """Whether requests to ``address`` use TLS. Plain ``http://`` needs no certificates, and
    loading the CA bundle would be a good part of a CLI command's start."""
    return not address.startswith("http://")


class Http:
    """Requests to one tuskd under ``/v1``; failures come back as :mod:`tusk.errors` classes."""

    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        timeout: float = 300.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.address = address.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(
            base_url=self.address + "/v1",
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=5.0),
            transport=transport,
            verify=needs_tls(self.address),
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    @contextmanager
    def mapped_errors(self) -> Iterator[None]:
        """Turn httpx transport failures inside the block into :class:`ServerUnavailable`."""
        try:
            yield
        except httpx.ConnectError:
            raise ServerUnavailable(
                f"no tusk server answers at {self.address}",
                hint="start one with `tusk up` (or set TUSK_ADDRESS)",
            ) from None
        except httpx.TransportError as e:
            # The server went away (or stopped answering) in the middle of a request.
            raise ServerUnavailable(
                f"lost the connection to the tusk server at {self.address} "
                f"({type(e).__name__}: {e or 'no detail'})",
                hint="check the server with `tusk status`, then run the command again",
            ) from None

    def send(self, method: str, url: str, **kw: Any) -> httpx.Response:
        """One request, read whole; an error response raises its tusk error."""
        url = in_project(url, kw)
        with self.mapped_errors():
            resp = self._client.request(method, url, **kw)
        raise_for(resp)
        return resp

    @contextmanager
    def stream(self, method: str, url: str, **kw: Any) -> Iterator[httpx.Response]:
        """One request whose body is read as it arrives (file contents, subscriptions)."""
        url = in_project(url, kw)
        with self.mapped_errors(), self._client.stream(method, url, **kw) as resp:
            if resp.status_code >= 400:
                resp.read()
                raise_for(resp)
            yield resp

    def call(
        self, method: str, url: str, model: Any, *, body: BaseModel | None = None, **kw: Any
    ) -> Any:
        """One request with ``body`` as JSON (other ``kw`` as for httpx); validate the answer as
        ``model`` (``None``: no answer wanted)."""
        if body is not None:
            kw["json"] = body.model_dump(mode="json")
        resp = self.send(method, url, **kw)
        return None if model is None else TypeAdapter(model).validate_json(resp.content)

    def get(self, url: str, model: Any, **params: Any) -> Any:
        """GET ``url`` with the non-``None`` ``params``; validate the answer as ``model``."""
        return self.call("GET", url, model, params=clean(params))

    def post(self, url: str, body: BaseModel | None, model: Any, **params: Any) -> Any:
        """POST ``body`` as JSON; validate the answer as ``model`` (``None``: no answer wanted)."""
        return self.call("POST", url, model, body=body, params=clean(params))


def seg(key: str) -> str:
    """A repo or pipeline key as one path segment of a URL the client builds: a project
    other than ``default`` is kept as ``<project>%2F<name>`` until :func:`in_project` moves it
    to the ``project`` query parameter the routes take."""
    return key.replace("/", "%2F")


_QUALIFIED = re.compile(r"^(/(?:repos|pipelines)/)([^/%?]+)%2F([^/?]+)")


def in_project(url: str, kw: dict[str, Any]) -> str:
    """``url`` with a qualified segment (:func:`seg`) made bare and its project put in
    ``kw``'s query parameters."""
    m = _QUALIFIED.match(url)
    if m is None:
        return url
    params = dict(kw.get("params") or {})
    params["project"] = m.group(2)
    kw["params"] = params
    return m.group(1) + m.group(3) + url[m.end() :]


def clean(params: dict[str, Any]) -> dict[str, Any]:
    """Query parameters without the ``None`` ones (httpx would send them empty)."""
    return {k: v for k, v in params.items() if v is not None}


def raise_for(resp: httpx.Response) -> None:
    """Raise the tusk error an error response carries (its class comes from the wire code)."""
    if resp.status_code < 400:
        return
    try:
        payload = json.loads(resp.content)["error"]
    except (ValueError, KeyError, TypeError):
        raise ServerUnavailable(
            f"tusk server error {resp.status_code}: {resp.text[:200]}"
        ) from None
    raise from_wire(payload)
