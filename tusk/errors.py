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
    └── Internal                   internal        500   1

Every error carries a stable ``code``, a message and an optional ``hint`` (the fix). The table
above is the one mapping: each class holds its ``http_status``, which the server answers with, and
its ``exit_code``, which the CLI exits with; the client rebuilds the same class from the code with
:func:`from_wire`.
"""

from __future__ import annotations

from typing import Any, ClassVar


class TuskError(Exception):
    code: ClassVar[str] = "internal"
    http_status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, *, hint: str | None = None, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.fields = fields

    def to_wire(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "fields": self.fields,
        }


class Internal(TuskError):
    pass


class InvalidArgument(TuskError):
    code = "invalid"
    http_status = 400
    exit_code = 2


class InvalidName(InvalidArgument):
    code = "invalid_name"


class InvalidPath(InvalidArgument):
    code = "invalid_path"


class InvalidSpec(InvalidArgument):
    code = "invalid_spec"


class NotFound(TuskError):
    code = "not_found"
    http_status = 404
    exit_code = 3


class AlreadyExists(TuskError):
    code = "exists"
    http_status = 409
    exit_code = 4


class Conflict(TuskError):
    code = "conflict"
    http_status = 409
    exit_code = 5


class CommitFinished(Conflict):
    code = "finished"


class OutputBranch(Conflict):
    code = "output_branch"


class PathConflict(Conflict):
    code = "path_conflict"


class HasDependents(Conflict):
    code = "has_dependents"


class CommitFailed(TuskError):
    code = "commit_failed"
    http_status = 409
    exit_code = 6


class SourceUnavailable(TuskError):
    code = "source"
    http_status = 422
    exit_code = 7


class ServerUnavailable(TuskError):
    code = "unavailable"
    http_status = 503
    exit_code = 8


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
