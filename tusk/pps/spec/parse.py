"""Spec text to specs: a file holds one spec or several (JSON objects back to back, or YAML
documents split by ``---``); :func:`split_documents` cuts it up and :func:`parse_specs`
validates each piece, naming the file, the spec's place in it and its pipeline in every error.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from tusk.errors import InvalidSpec
from tusk.pps.spec.models import PipelineSpec

# A spec is a few kilobytes; these bounds keep a hostile one from costing memory and CPU.
MAX_SPEC_BYTES = 1 << 20
# Values a YAML document may hold once its aliases are expanded (a real spec has a few hundred):
# aliases share nodes, so 400 bytes of nested aliases can stand for billions of values.
MAX_YAML_NODES = 100_000


class _TooManyNodes(Exception):
    pass


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps timestamps as strings (``start`` is an RFC 3339 string) and refuses
    documents whose aliases expand beyond :data:`MAX_YAML_NODES` values."""

    def compose_document(self) -> Any:
        node = super().compose_document()
        if node is not None:
            _expanded_size(node, {})
        return node


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values ``node`` stands for with its aliases expanded (each shared node is
    counted once per use but walked once)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    total = 1
    if isinstance(node, yaml.SequenceNode):
        for child in node.value:
            total += _expanded_size(child, sizes)
            if total > MAX_YAML_NODES:
                raise _TooManyNodes
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            total += _expanded_size(key, sizes) + _expanded_size(value, sizes)
            if total > MAX_YAML_NODES:
                raise _TooManyNodes
    sizes[id(node)] = total
    return total


_Loader.yaml_implicit_resolvers = {
    ch: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def split_documents(text: str, source: str) -> list[Any]:
    """The decoded documents in ``text``: JSON objects back to back, or YAML documents."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_SPEC_BYTES:
        raise InvalidSpec(
            f"{source}: pipeline spec too large ({size} bytes; at most {MAX_SPEC_BYTES})",
            hint="keep data out of the spec: put it in a repo and read it as an input",
            source=source,
        )
    try:
        if text.lstrip().startswith(("{", "[")):
            return _json_documents(text, source)
        return _yaml_documents(text, source)
    except RecursionError:
        raise InvalidSpec(
            f"{source}: malformed pipeline spec: nested too deeply",
            hint="a pipeline spec nests a few levels of objects and lists",
            source=source,
        ) from None


def _json_documents(text: str, source: str) -> list[Any]:
    decoder = json.JSONDecoder()
    docs: list[Any] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return docs
        try:
            doc, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise InvalidSpec(
                f"{source}: malformed pipeline spec: invalid JSON at line {e.lineno} column "
                f"{e.colno}: {e.msg}",
                hint="check for a missing comma, quote or brace",
                source=source,
                index=len(docs),
            ) from None
        docs.append(doc)


def _yaml_documents(text: str, source: str) -> list[Any]:
    try:
        return [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
    except _TooManyNodes:
        raise InvalidSpec(
            f"{source}: malformed pipeline spec: its YAML aliases (*name) expand to more than "
            f"{MAX_YAML_NODES} values",
            hint="write the repeated parts out, or use fewer aliases of aliases",
            source=source,
        ) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise InvalidSpec(
            f"{source}: malformed pipeline spec: invalid YAML{where}: {problem}",
            hint="check the indentation; separate several specs with a line of ---",
            source=source,
        ) from None


def pipeline_name_of(doc: Any) -> str | None:
    """The pipeline name in a spec document not yet validated, if it has a usable one."""
    if isinstance(doc, dict) and isinstance(doc.get("pipeline"), dict):
        name = doc["pipeline"].get("name")
        return name if isinstance(name, str) and name else None
    return None


def parse_specs(text: str, source: str) -> list[PipelineSpec]:
    """Every spec in ``text``: JSON objects back to back, or YAML documents split by ``---``."""
    docs = split_documents(text, source)
    if not docs:
        raise InvalidSpec(
            f"{source}: no pipeline spec found",
            hint='a spec is an object like {"pipeline": {"name": ...}, "transform": ..., "input": ...}',
            source=source,
        )
    specs: list[PipelineSpec] = []
    for i, doc in enumerate(docs):
        try:
            specs.append(PipelineSpec.from_dict(doc))
        except InvalidSpec as e:
            name = pipeline_name_of(doc)
            which = f"{source}: spec {i + 1}" + (f' (pipeline "{name}")' if name else "")
            raise InvalidSpec(
                f"{which}: {e.message}",
                hint=e.hint,
                **{**e.fields, "source": source, "index": i, "pipeline": name},
            ) from None
    return specs
