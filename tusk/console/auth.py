"""How a browser is let in: the server's auth token, given once on the console's login form, is
kept as an HttpOnly session cookie (a keyed hash of the token, never the token itself), and every
request that changes something carries a CSRF token twice (double submit: a cookie that the
page's script reads and a header that it sets), which a page of another site cannot do.

The request guard (tusk/server/guard.py) applies these rules to every request; the console's
login route sets the cookies."""

from __future__ import annotations

import hashlib
import hmac
import secrets

SESSION_COOKIE = "tusk_session"
CSRF_COOKIE = "tusk_csrf"
CSRF_HEADER = "x-tusk-csrf"
SAFE_METHODS = frozenset({"GET", "HEAD"})
# What anyone may fetch without the token: the page, its static files, and the two routes that
# tell whether a login is needed and log in. None of them reveals stored data.
_PUBLIC_EXACT = frozenset({"/console", "/console/", "/console/api/session", "/console/api/login"})
_PUBLIC_PREFIX = "/console/static/"


def session_value(token: str) -> str:
    """The session cookie's value for a server with ``token``: a keyed hash, so the cookie never
    holds the token, and a new token ends every session."""
    return hmac.new(token.encode(), b"tusk console session", hashlib.sha256).hexdigest()


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def is_public(path: str) -> bool:
    return path in _PUBLIC_EXACT or path.startswith(_PUBLIC_PREFIX)


def cookies(header: bytes) -> dict[str, str]:
    """The cookies of a ``Cookie`` header."""
    out: dict[str, str] = {}
    for part in header.decode("latin-1").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name:
            out.setdefault(name, value)
    return out


def csrf_ok(jar: dict[str, str], header: bytes | None) -> bool:
    """Whether the CSRF header repeats the CSRF cookie (both present and equal)."""
    cookie = jar.get(CSRF_COOKIE, "").encode()
    return bool(cookie) and header is not None and hmac.compare_digest(cookie, header.strip())


def session_ok(jar: dict[str, str], token: str) -> bool:
    given = jar.get(SESSION_COOKIE, "").encode()
    return bool(given) and hmac.compare_digest(given, session_value(token).encode())
