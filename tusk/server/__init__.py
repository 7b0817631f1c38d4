"""tuskd: the HTTP server (pachd's role), a thin skin over :class:`tusk.runtime.Engine`."""
