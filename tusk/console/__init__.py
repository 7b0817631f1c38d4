"""The console: a web UI served by tuskd itself (``/console``), built from hand-written static
files (``static/``) and a small JSON API (``/console/api``) over the same services as the CLI."""
