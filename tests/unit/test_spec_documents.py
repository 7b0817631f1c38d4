"""Spec files holding several documents: JSON objects back to back, or YAML split by ``---``."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tusk.errors import InvalidSpec
from tusk.pps.spec import parse_specs, pipeline_name_of, split_documents

_SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
_DOCS = st.lists(
    st.dictionaries(st.text(max_size=8), _VALUES, min_size=1, max_size=4), min_size=1, max_size=4
)


@given(_DOCS, st.lists(st.sampled_from(["", " ", "\n", "\t", "\r\n  "]), min_size=5, max_size=5))
def test_json_objects_back_to_back(docs: list[dict[str, Any]], gaps: list[str]) -> None:
    text = gaps[0]
    for i, doc in enumerate(docs):
        text += json.dumps(doc, indent=2 if i % 2 else None) + gaps[(i + 1) % len(gaps)]
    assert split_documents(text, "f.json") == docs


@given(_DOCS)
def test_yaml_documents(docs: list[dict[str, Any]]) -> None:
    text = yaml.safe_dump_all(docs, default_flow_style=False)
    assert split_documents(text, "f.yaml") == docs


@pytest.mark.parametrize("text", ["", "  \n", "---\n", "---\n---\n", "# only a comment\n"])
def test_nothing_but_space_is_no_document(text: str) -> None:
    assert split_documents(text, "f") == []


def test_empty_yaml_documents_are_skipped() -> None:
    assert split_documents("---\na: 1\n---\n---\nb: 2\n", "f") == [{"a": 1}, {"b": 2}]


def test_a_json_array_is_one_document() -> None:
    assert split_documents('  [1, 2] {"a": 1}', "f") == [[1, 2], {"a": 1}]


def test_yaml_timestamps_stay_strings() -> None:
    [doc] = split_documents("start: 2018-05-01T00:00:00Z\nday: 2018-05-01\n", "f")
    assert doc == {"start": "2018-05-01T00:00:00Z", "day": "2018-05-01"}


def test_bad_json_names_the_document_and_place() -> None:
    with pytest.raises(InvalidSpec) as info:
        split_documents('{"a": 1}\n{"b": ', "specs.json")
    err = info.value
    assert err.message.startswith("specs.json: malformed pipeline spec: invalid JSON at line 2")
    assert (err.fields["source"], err.fields["index"]) == ("specs.json", 1)
    assert err.hint


def test_bad_yaml_names_the_place() -> None:
    with pytest.raises(InvalidSpec) as info:
        split_documents("a: 1\n---\nb: [\n", "specs.yaml")
    err = info.value
    assert err.message.startswith("specs.yaml: malformed pipeline spec: invalid YAML at line")
    assert err.fields["source"] == "specs.yaml"
    assert err.hint is not None and "---" in err.hint


@pytest.mark.parametrize(
    ("doc", "name"),
    [
        ({"pipeline": {"name": "edges"}}, "edges"),
        ({"pipeline": {"name": ""}}, None),
        ({"pipeline": {"name": 5}}, None),
        ({"pipeline": "edges"}, None),
        ({}, None),
        (["pipeline"], None),
        (None, None),
    ],
)
def test_pipeline_name_of_a_raw_document(doc: Any, name: str | None) -> None:
    assert pipeline_name_of(doc) == name


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('"transform": {"cmd": ["echo", "\\udcff"]}', "transform.cmd[1]"),
        ('"transform": {"cmd": ["true"], "env": {"A": "x\\ud800"}}', "transform.env.A"),
        ('"transform": {"cmd": ["true"], "env": {"\\udcff": "x"}}', "transform.env"),
        ('transform: {cmd: ["echo", "\\udcff"]}', "transform.cmd[1]"),  # YAML
    ],
)
def test_text_that_is_not_unicode_is_refused_naming_its_field(text: str, field: str) -> None:
    # a JSON or YAML escape can make a lone surrogate: no database stores it, no worker gets it
    inp = '"input": {"pfs": {"repo": "r", "glob": "/*"}}'
    spec = f'{{"pipeline": {{"name": "p"}}, {text}, {inp}}}'
    if text.startswith("transform:"):
        spec = f"pipeline: {{name: p}}\n{text}\ninput: {{pfs: {{repo: r, glob: /*}}}}\n"
    with pytest.raises(InvalidSpec, match="not valid Unicode") as raised:
        parse_specs(spec, "spec.json")
    assert raised.value.fields.get("field") == field
    # the character itself, or its UTF-16 pair, is fine
    ok = spec.replace("\\udcff", "\\u00e9").replace("x\\ud800", "\\ud83d\\ude00")
    assert parse_specs(ok, "spec.json")[0].pipeline.name == "p"
