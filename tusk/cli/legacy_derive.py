"""What the CLI still works out for itself from pipeline specs, though the server knows it.

Each function here copies a piece of the server's spec handling: the INPUT shorthand of
list-pipeline, Go duration parsing for the proto text of timeouts, splitting a spec text into its
documents, and the "transform changed" warning of update-pipeline. The server will send these
values with its answers; the commands will then print them and this module will go away.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import yaml

from tusk.client import PpsClient
from tusk.errors import NotFound


def input_shorthand(inp: dict[str, Any] | None) -> str:
    """The INPUT column of list-pipeline: ``repo:glob``, ``(a ⨯ b)``, ``(a ∪ b)``, ``tick:spec``."""
    if not inp:
        return "none"
    for kind in ("atom", "pfs"):
        if kind in inp:
            return f"{inp[kind].get('repo', '')}:{inp[kind].get('glob', '')}"
    if "cron" in inp:
        return f"{inp['cron'].get('name', '')}:{inp['cron'].get('spec', '')}"
    if "git" in inp:
        git = inp["git"]
        return f"{git.get('name') or git.get('URL', '')}:{git.get('URL', '')}"
    for kind, sep in (("cross", " ⨯ "), ("union", " ∪ "), ("join", " ⋈ "), ("group", ", ")):
        if kind in inp:
            inner = sep.join(input_shorthand(k) for k in inp[kind])
            return f"group({inner})" if kind == "group" else f"({inner})"
    return ""


_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def proto_duration(text: str | None) -> str:
    """A spec duration (``"1m"``) as Go prints a ``*types.Duration``: ``seconds:60 `` (or <nil>)."""
    if not text:
        return "<nil>"
    parts = _GO_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.lstrip("+"):
        return text
    total_ns = round(sum(float(n) * _GO_UNITS[u] for n, u in parts) * 1e9)
    secs, nanos = divmod(total_ns, 1_000_000_000)
    fields = ([f"seconds:{secs}"] if secs else []) + ([f"nanos:{nanos}"] if nanos else [])
    return "".join(f"{f} " for f in fields)


def spec_documents(text: str) -> list[Any]:
    """The documents of a spec text: a stream of JSON objects, or YAML documents."""
    if not text.lstrip().startswith("{"):
        return list(yaml.safe_load_all(text))
    docs: list[Any] = []
    dec, pos = json.JSONDecoder(), 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return docs
        doc, pos = dec.raw_decode(text, pos)
        docs.append(doc)


def spec_names(text: str) -> list[str]:
    """Best-effort pipeline names in a spec text (the server does the real parsing)."""
    try:
        docs = spec_documents(text)
    except (ValueError, yaml.YAMLError):
        return []
    names = []
    for doc in docs:
        if isinstance(doc, dict) and isinstance(doc.get("pipeline"), dict):
            name = doc["pipeline"].get("name")
            if isinstance(name, str) and name:
                names.append(name)
    return names


def specs_before_update(pps: PpsClient, text: str) -> dict[str, dict[str, Any]]:
    """The current specs of the pipelines a spec text updates, by name."""
    before: dict[str, dict[str, Any]] = {}
    for name in spec_names(text):
        try:
            before[name] = pps.extract_pipeline(name)
        except NotFound:  # the update itself reports it
            continue
    return before


def transform_warnings(
    before: dict[str, dict[str, Any]], infos: list[dict[str, Any]]
) -> Iterator[str]:
    """A warning for each updated pipeline whose transform changed without ``--reprocess``."""
    for info in infos:
        old = before.get(info["name"])
        if old is not None and old.get("transform") != info["spec"].get("transform"):
            yield (
                f"The transform of pipeline {info['name']} changed: its old results were kept, "
                "and datums whose inputs didn't change won't be rerun (use --reprocess to rerun "
                "them)."
            )
