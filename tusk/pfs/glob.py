"""Glob patterns with gobwas/glob semantics and ``/`` as the separator (as in Pachyderm 1.7).

``*`` and ``?`` do not cross ``/``; ``**`` does; ``[abc]``, ``[!a]``, ``[a-z]``, ``{a,b}`` and
``\\x`` escapes are supported. Patterns are canonicalised to a leading ``/``; ``/`` (or ``""``)
matches only the root. A non-root pattern never matches the root.

With ``captures`` (inputs with ``join_on`` or ``group_by``, as in Pachyderm 2.x) parentheses are
capture groups: ``(a|b)`` captures one alternative, and the extended forms ``@(..)``, ``?(..)``,
``+(..)`` and ``*(..)`` capture exactly one, at most one, one or more, or any number of repeats.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from tusk.errors import InvalidArgument

_SPECIAL = set("*?[]{}\\")
_CAPTURE_SPECIAL = _SPECIAL | set("()|@+")
_EXTGLOB = {"@": "", "?": "?", "+": "+", "*": "*"}


@dataclass(frozen=True)
class _Segment:
    """One ``/``-separated component of a pattern."""

    regex: re.Pattern[str] | None  # None when the segment contains ``**`` (may cross ``/``)
    literal: str | None  # the component itself when it has no glob syntax


@dataclass(frozen=True)
class GlobPattern:
    """A compiled glob: its matcher and what a walk needs to prune."""

    pattern: str  # canonical form
    regex: re.Pattern[str] = field(repr=False)
    is_literal: bool
    literal_prefix_parts: tuple[str, ...]
    # Per-component matchers, or None when a ``/`` sits inside ``{}``/``[]`` (no pruning then).
    segments: tuple[_Segment, ...] | None = field(repr=False)

    @property
    def matches_root_only(self) -> bool:
        """Whether the pattern is ``/`` (matches the root directory alone)."""
        return self.pattern == "/"

    def match(self, path: str) -> bool:
        """Whether the canonical ``path`` matches."""
        if path == "/":
            return self.matches_root_only
        return self.regex.fullmatch(path) is not None

    def could_match_under(self, dir_path: str) -> bool:
        """False only when no path strictly below ``dir_path`` can match (so a walk may prune)."""
        segs = self.segments
        if segs is None:
            return True
        parts = dir_path.split("/")[1:] if dir_path != "/" else []
        for depth, part in enumerate(parts):
            if depth >= len(segs):
                return False
            seg = segs[depth]
            if seg.regex is None:
                return True
            if seg.literal is not None:
                if seg.literal != part:
                    return False
            elif seg.regex.fullmatch(part) is None:
                return False
        return len(parts) < len(segs)

    def segment_literal(self, depth: int) -> str | None:
        """The literal name that children at ``depth`` must have, if the walk can look it up.

        ``depth`` counts components from the root (children of ``/`` are depth 0). Only valid
        while no ``**`` segment came before, which :meth:`could_match_under` guarantees.
        """
        segs = self.segments
        if segs is None or depth >= len(segs):
            return None
        if any(s.regex is None for s in segs[: depth + 1]):
            return None
        return segs[depth].literal


def canonical_pattern(pattern: str) -> str:
    """``pattern`` with empty and ``.`` components dropped, starting with ``/``."""
    parts = [p for p in pattern.split("/") if p and p != "."]
    return "/" + "/".join(parts)


@lru_cache(maxsize=1024)
def compile_glob(pattern: str, captures: bool = False) -> GlobPattern:
    """Compile a glob pattern (cached). Raises InvalidArgument on malformed syntax."""
    canon = canonical_pattern(pattern)
    try:
        regex = re.compile(_translate(canon, 0, top=True, captures=captures)[0], re.DOTALL)
    except (ValueError, re.error) as e:
        closers = "'[', '{' and '('" if captures else "'[' and '{'"
        raise InvalidArgument(
            f"glob pattern ({pattern}) invalid: {e}",
            hint=f"check that every {closers} is closed",
            pattern=pattern,
        ) from e
    segments = _split_segments(canon, captures)
    prefix: list[str] = []
    if segments is not None:
        for seg in segments:
            if seg.literal is None:
                break
            prefix.append(seg.literal)
    is_literal = segments is not None and len(prefix) == len(segments)
    return GlobPattern(canon, regex, is_literal, tuple(prefix), segments)


def _translate(
    pat: str,
    i: int,
    *,
    top: bool,
    in_brace: bool = False,
    in_group: bool = False,
    captures: bool = False,
) -> tuple[str, int]:
    """Translate ``pat[i:]`` to regex source; stop at ``,`` or ``}`` when inside braces, and at
    ``|`` or ``)`` inside a capture group."""
    out: list[str] = []
    n = len(pat)
    while i < n:
        c = pat[i]
        if captures and (c == "(" or (c in _EXTGLOB and i + 1 < n and pat[i + 1] == "(")):
            quantifier = "" if c == "(" else _EXTGLOB[c]
            i += 1 if c == "(" else 2
            alts: list[str] = []
            while True:
                alt, i = _translate(pat, i, top=False, in_group=True, captures=True)
                alts.append(alt)
                if i >= n:
                    raise ValueError("unclosed '('")
                if pat[i] == ")":
                    i += 1
                    break
                i += 1  # the "|"
            out.append(f"((?:{'|'.join(alts)}){quantifier})")
            continue
        if captures and c == "!" and i + 1 < n and pat[i + 1] == "(":
            raise ValueError("'!(...)' (negated capture) is not supported")
        if in_group and c in "|)":
            return "".join(out), i
        if captures and c in "|)":
            raise ValueError(f"unexpected '{c}'")
        if c == "*":
            if i + 1 < n and pat[i + 1] == "*":
                out.append(".*")
                i += 2
                while i < n and pat[i] == "*":
                    i += 1
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            cls, i = _char_class(pat, i)
            out.append(cls)
            continue
        elif c == "{":
            alts = []
            i += 1
            while True:
                alt, i = _translate(pat, i, top=False, in_brace=True, captures=captures)
                alts.append(alt)
                if i >= n:
                    raise ValueError("unclosed '{'")
                if pat[i] == "}":
                    i += 1
                    break
                i += 1  # the ","
            out.append("(?:" + "|".join(alts) + ")")
            continue
        elif in_brace and c in ",}":
            return "".join(out), i
        elif c == "\\" and i + 1 < n:
            out.append(re.escape(pat[i + 1]))
            i += 2
            continue
        elif c in "]}":
            raise ValueError(f"unexpected '{c}'")
        else:
            out.append(re.escape(c))
        i += 1
    if not top and in_brace:
        raise ValueError("unclosed '{'")
    if in_group:
        raise ValueError("unclosed '('")
    return "".join(out), i


def _char_class(pat: str, i: int) -> tuple[str, int]:
    j = i + 1
    negate = j < len(pat) and pat[j] == "!"
    if negate:
        j += 1
    body: list[str] = []
    while j < len(pat) and pat[j] != "]":
        c = pat[j]
        if c == "\\" and j + 1 < len(pat):
            body.append(re.escape(pat[j + 1]))
            j += 2
            continue
        if c == "-" and body and j + 1 < len(pat) and pat[j + 1] != "]":
            body.append("-")
        else:
            body.append(re.escape(c))
        j += 1
    if j >= len(pat):
        raise ValueError("unclosed '['")
    if not body:
        raise ValueError("empty character class '[]'")
    inner = "".join(body)
    return (f"[^{inner}/]" if negate else f"(?!/)[{inner}]"), j + 1


def _split_segments(canon: str, captures: bool = False) -> tuple[_Segment, ...] | None:
    if canon == "/":
        return ()
    parts = canon[1:].split("/")
    # A "/" inside [], {} or () means components cannot be matched one by one.
    for part in parts:
        if _unbalanced(part):
            return None
    segs: list[_Segment] = []
    for part in parts:
        if "**" in part:
            segs.append(_Segment(None, None))
            continue
        literal = _unescape_literal(part, _CAPTURE_SPECIAL if captures else _SPECIAL)
        regex = re.compile(_translate(part, 0, top=True, captures=captures)[0], re.DOTALL)
        segs.append(_Segment(regex, literal))
    return tuple(segs)


def _unbalanced(part: str) -> bool:
    depth_sq = depth_br = depth_pa = 0
    i = 0
    while i < len(part):
        c = part[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            depth_sq += 1
        elif c == "]":
            depth_sq -= 1
        elif c == "{":
            depth_br += 1
        elif c == "}":
            depth_br -= 1
        elif c == "(":
            depth_pa += 1
        elif c == ")":
            depth_pa -= 1
        i += 1
    return depth_sq != 0 or depth_br != 0 or depth_pa != 0


def _unescape_literal(part: str, special: set[str]) -> str | None:
    out: list[str] = []
    i = 0
    while i < len(part):
        c = part[i]
        if c == "\\" and i + 1 < len(part):
            out.append(part[i + 1])
            i += 2
            continue
        if c in special:
            return None
        out.append(c)
        i += 1
    return "".join(out)
