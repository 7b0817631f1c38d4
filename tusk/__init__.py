"""tusk: versioned data repositories and incremental, parallel pipelines with provenance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from tusk.client import Client
    from tusk.runtime import Engine

__all__ = ["Client", "Engine", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `import tusk` in the CLI does not pull in the server-side core.
    if name == "Client":
        from tusk.client import Client

        return Client
    if name == "Engine":
        from tusk.runtime import Engine

        return Engine
    raise AttributeError(name)
