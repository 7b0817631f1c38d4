"""tuskd: the HTTP server (pachd's role), a thin skin over :class:`tusk.runtime.Engine`."""

from tusk.api.models import build_all

build_all()  # before any route is declared: the API models are built on first use elsewhere
