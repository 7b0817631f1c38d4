"""Secret wire models: what tuskd says about a secret (never its values) and the body that
creates one (a Kubernetes Secret manifest, as ``pachctl create secret`` takes)."""

from __future__ import annotations

from pydantic import Field

from tusk.api.models import Wire


class SecretInfo(Wire):
    """One secret: its name, type, creation time and key names. Values never leave the server."""

    name: str
    type: str
    created: float
    keys: list[str] = Field(default_factory=list)


class CreateSecret(Wire):
    """Body of ``POST /secrets``: a Kubernetes Secret manifest (JSON or YAML text); ``source``
    names it in errors."""

    manifest: str
    source: str = "secret"
