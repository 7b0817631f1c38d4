"""The checks every request passes before a route sees it: who may call (the auth token), from
where (no web page of another site, no foreign host name) and what it sends (the content type
its route reads).

A browser lets any web page send "simple" requests (a ``text/plain`` POST, say) to a server on
the user's own machine, and a page whose name is made to resolve to 127.0.0.1 (DNS rebinding)
even reads the answers. So a request that carries an ``Origin`` other than the server's own is
refused, a server without a token answers only to loopback names and the configured ones, and a
body must come with its route's content type, which no page can send elsewhere unasked.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from tusk.api.admin import EXTRACT_MEDIA_TYPE
from tusk.api.framing import FRAMES_MEDIA_TYPE
from tusk.api.host import is_loopback
from tusk.console import auth as console_auth
from tusk.errors import Forbidden, InvalidArgument, TuskError, Unauthenticated
from tusk.runtime import Settings
from tusk.server.errors import error_response

_PUT_ROUTE = re.compile(r"\A/v1/repos/[^/]+/put\Z")
_RESTORE_ROUTE = "/v1/restore"
_CONSOLE_UPLOAD_ROUTE = re.compile(r"\A/console/api/repos/[^/]+/upload\Z")
_ANY_ADDRESS = ("", "0.0.0.0", "::")


class RequestGuard:
    """ASGI middleware refusing what a route must never see (see the module's docstring)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.token = settings.auth_token.encode() if settings.auth_token else None
        names = {h.lower() for h in settings.allowed_hosts}
        if settings.host not in _ANY_ADDRESS:
            names.add(settings.host.lower())
        self.names = frozenset(names)
        # With a token a rebound page still cannot call, so any name reaching the server is
        # fine unless names were configured (deployments reach it by their service names).
        self.check_host = bool(settings.allowed_hosts) or not settings.auth_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v for k, v in scope["headers"]}
        try:
            self._check(scope, headers)
        except TuskError as err:
            status = 415 if isinstance(err, InvalidArgument) else None
            await error_response(err, status)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _check(self, scope: Scope, headers: dict[str, bytes]) -> None:
        """Raise the error that refuses the request (InvalidArgument: a wrong content type)."""
        host = headers.get("host", b"").decode("latin-1")
        if self.check_host and host and not self._host_allowed(host):
            raise Forbidden(
                f"this server does not answer to the host name {host!r}",
                hint="reach it as localhost or 127.0.0.1, or add the name to the server's "
                "TUSK_ALLOWED_HOSTS",
            )
        origin = headers.get("origin")
        if origin is not None and not _same_origin(origin.decode("latin-1"), host):
            raise Forbidden(
                f"requests from web pages of other sites ({origin.decode('latin-1')!r}) are "
                "refused",
                hint="call the API from the tusk client or CLI, not from a web page",
            )
        path, method = scope["path"], scope["method"]
        jar = console_auth.cookies(headers.get("cookie", b""))
        by_cookie = False
        if self.token is not None and not console_auth.is_public(path):
            given = headers.get("authorization", b"").removeprefix(b"Bearer ").strip()
            if not hmac.compare_digest(given, self.token):
                by_cookie = console_auth.session_ok(jar, self.token.decode())
                if not by_cookie:
                    raise Unauthenticated(
                        "missing or wrong auth token",
                        hint="set TUSK_AUTH_TOKEN to the server's token (in the console: log in)",
                    )
        # A browser sends cookies with every request, so a change made with them must also
        # carry the CSRF token twice (see tusk/console/auth.py); the console's own actions too.
        needs_csrf = by_cookie or path.startswith("/console/")
        if (
            needs_csrf
            and method not in console_auth.SAFE_METHODS
            and not console_auth.csrf_ok(jar, headers.get(console_auth.CSRF_HEADER))
        ):
            raise Forbidden(
                "this change came without its CSRF token",
                hint="reload the console page and try again",
            )
        if _has_body(headers):
            self._check_content_type(scope, headers)

    def _host_allowed(self, host: str) -> bool:
        name = urlsplit("//" + host).hostname or ""
        if not name:
            return False
        return is_loopback(name) or name in self.names or name.endswith(".localhost")

    @staticmethod
    def _check_content_type(scope: Scope, headers: dict[str, bytes]) -> None:
        given = headers.get("content-type", b"").decode("latin-1")
        media = given.split(";", 1)[0].strip().lower()
        if scope["method"] == "POST" and _PUT_ROUTE.match(scope["path"]):
            want, ok = FRAMES_MEDIA_TYPE, media == FRAMES_MEDIA_TYPE
        elif scope["method"] == "POST" and scope["path"] == _RESTORE_ROUTE:
            want, ok = EXTRACT_MEDIA_TYPE, media == EXTRACT_MEDIA_TYPE
        elif scope["method"] == "POST" and _CONSOLE_UPLOAD_ROUTE.match(scope["path"]):
            want, ok = "application/octet-stream", media == "application/octet-stream"
        else:
            want = "application/json"
            ok = media == want or (media.startswith("application/") and media.endswith("+json"))
        if not ok:
            raise InvalidArgument(
                f"this request's body must be sent as {want}, not {given or 'without a type'}",
                hint="use the tusk client, or send the Content-Type header " + want,
            )


def _has_body(headers: dict[str, bytes]) -> bool:
    length = headers.get("content-length")
    if length is not None:
        return length.strip() not in (b"", b"0")
    return "transfer-encoding" in headers


def _same_origin(origin: str, host: str) -> bool:
    """Whether ``origin`` (an Origin header) is the server's own, reached as ``host``."""
    try:
        parts = urlsplit(origin)
        port = parts.port
        netloc = parts.hostname or ""
        if ":" in netloc:  # an IPv6 literal, as the Host header writes it
            netloc = f"[{ipaddress.ip_address(netloc).compressed}]"
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not netloc or not host:
        return False
    default = 80 if parts.scheme == "http" else 443
    if port is not None and port != default:
        netloc = f"{netloc}:{port}"
    return netloc.lower() == host.lower()
