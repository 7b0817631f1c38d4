"""The one exception root of tusk.

    TuskError                      code            http  exit
    ├── InvalidArgument            invalid         400   2
    │   ├── InvalidName            invalid_name    400   2
    │   ├── InvalidPath            invalid_path    400   2
    │   └── InvalidSpec            invalid_spec    400   2
    ├── NotFound                   not_found       404   3
    ├── AlreadyExists              exists          409   4
    ├── Conflict                   conflict        409   5
    │   ├── CommitFinished         finished        409   5
    │   ├── OutputBranch           output_branch   409   5
    │   ├── PathConflict           path_conflict   409   5
    │   └── HasDependents          has_dependents  409   5
    ├── CommitFailed               commit_failed   409   6
    ├── SourceUnavailable          source          422   7
    ├── ServerUnavailable          unavailable     503   8
    ├── Unauthenticated            unauthenticated 401   9
    ├── Forbidden                  forbidden       403   10
    └── Internal                   internal        500   1
        └── CorruptObject          corrupt         500   11

Every error carries a stable ``code``, a message and an optional ``hint`` (the fix). The table
above is the one mapping: each class holds its ``http_status``, which the server answers with, and
its ``exit_code``, which the CLI exits with; the client rebuilds the same class from the code with
:func:`from_wire`.
"""

from __future__ import annotations

from typing import Any, ClassVar


class TuskError(Exception):
    """The root: a stable ``code``, a message, an optional ``hint`` and structured ``fields``.

    A subclass names its code, and its HTTP status and exit code where they differ from its
    parent's: ``class NotFound(TuskError, code="not_found", http_status=404, exit_code=3)``.
    """

    code: ClassVar[str] = "internal"
    http_status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1

    def __init_subclass__(
        cls,
        *,
        code: str,
        http_status: int | None = None,
        exit_code: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        cls.code = code
        if http_status is not None:
            cls.http_status = http_status
        if exit_code is not None:
            cls.exit_code = exit_code

    def __init__(self, message: str, *, hint: str | None = None, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.fields = fields

    def to_wire(self) -> dict[str, Any]:
        """The error as the server sends it; :func:`from_wire` turns it back into the class."""
        return {
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "fields": self.fields,
        }


class Internal(TuskError, code="internal"):
    """A bug or an unexpected failure inside tusk."""


class InvalidArgument(TuskError, code="invalid", http_status=400, exit_code=2):
    """A request that can never succeed as written."""


class InvalidName(InvalidArgument, code="invalid_name"):
    """A repo, branch or pipeline name that is not allowed."""


class InvalidPath(InvalidArgument, code="invalid_path"):
    """A file path that is malformed or names the wrong kind of thing."""


class InvalidSpec(InvalidArgument, code="invalid_spec"):
    """A pipeline spec that does not parse or validate."""


class NotFound(TuskError, code="not_found", http_status=404, exit_code=3):
    """The repo, commit, branch, file, pipeline or job asked for does not exist."""


class AlreadyExists(TuskError, code="exists", http_status=409, exit_code=4):
    """Creating something that exists already."""


class Conflict(TuskError, code="conflict", http_status=409, exit_code=5):
    """A request that clashes with the current state; it may succeed once that changes."""


class CommitFinished(Conflict, code="finished"):
    """Writing to a commit that is finished."""


class OutputBranch(Conflict, code="output_branch"):
    """Writing by hand to a branch that a pipeline writes."""


class PathConflict(Conflict, code="path_conflict"):
    """A file where a directory is needed, or the other way round."""


class HasDependents(Conflict, code="has_dependents"):
    """Deleting something that others still depend on."""


class CommitFailed(TuskError, code="commit_failed", http_status=409, exit_code=6):
    """Reading a commit whose job failed."""


class SourceUnavailable(TuskError, code="source", http_status=422, exit_code=7):
    """A source to read from (a local file, a URL) cannot be read."""


class ServerUnavailable(TuskError, code="unavailable", http_status=503, exit_code=8):
    """The server or a backend it needs cannot be reached."""


class Unauthenticated(TuskError, code="unauthenticated", http_status=401, exit_code=9):
    """A request without the server's auth token, or with a wrong one."""


class Forbidden(TuskError, code="forbidden", http_status=403, exit_code=10):
    """A request the server refuses to serve whoever sends it: a web page of another site, or
    one reaching the server under a host name it does not answer to."""


class CorruptObject(Internal, code="corrupt", exit_code=11):
    """A stored object (a tree's directory object) that cannot be read back as written."""


def _all_subclasses(cls: type[TuskError]) -> list[type[TuskError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_all_subclasses(sub))
    return out


BY_CODE: dict[str, type[TuskError]] = {c.code: c for c in _all_subclasses(TuskError)}


def from_wire(payload: dict[str, Any]) -> TuskError:
    cls = BY_CODE.get(str(payload.get("code")), Internal)
    return cls(
        str(payload.get("message", "unknown error")),
        hint=payload.get("hint"),
        **(payload.get("fields") or {}),
    )
