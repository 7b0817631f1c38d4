"""Every spec field is in the support table, the table in docs/differences.md says the same, and
a spec that sets an unsupported field gets its warning (or is refused)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tusk.errors import InvalidSpec
from tusk.pps.spec import PipelineSpec
from tusk.pps.spec.support import FIELDS, Support, check_supported, field_paths, spec_warnings

DOC = Path(__file__).resolve().parents[2] / "docs" / "differences.md"
ROW = re.compile(r"^\| `([^`]+)` \| ([^|]+) \| ([^|]+) \|$")


def _spec(**fields: Any) -> PipelineSpec:
    doc: dict[str, Any] = {
        "pipeline": {"name": "p"},
        "transform": {"cmd": ["true"], **fields.pop("transform", {})},
        "input": {"atom": {"repo": "in", "glob": "/*"}},
    }
    doc.update(fields)
    return PipelineSpec.from_dict(doc)


def test_every_model_field_is_in_the_table_and_nothing_else() -> None:
    paths = field_paths()
    assert len(paths) == len(set(paths))
    assert set(paths) == set(FIELDS)


def test_the_docs_table_matches_the_code_table() -> None:
    rows = {}
    for line in DOC.read_text().splitlines():
        m = ROW.match(line)
        if m:
            rows[m.group(1)] = (m.group(2).strip(), m.group(3).strip())
    assert rows == {p: (f.support.value, f.note) for p, f in FIELDS.items()}


def test_a_plain_spec_has_no_warnings() -> None:
    assert spec_warnings(_spec()) == []
    assert spec_warnings(_spec().normalized()) == []


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"pod_spec": '{"hostNetwork": true}'}, "pod_spec"),
        ({"pod_patch": "[]"}, "pod_patch"),
        ({"scheduling_spec": {"node_selector": {"gpu": "yes"}}}, "scheduling_spec.node_selector"),
        ({"scheduling_spec": {"priority_class_name": "hi"}}, "scheduling_spec.priority_class_name"),
        ({"transform": {"image_pull_secrets": ["regcred"]}}, "transform.image_pull_secrets"),
        ({"sidecar_resource_limits": {"memory": "1G"}}, "sidecar_resource_limits"),
        ({"tolerations": [{"key": "k", "operator": "Exists"}]}, "tolerations"),
        ({"cache_size": "1G"}, "cache_size"),
        ({"max_queue_size": 4}, "max_queue_size"),
        ({"incremental": True}, "incremental"),
        ({"chunk_spec": {"number": 10}}, "chunk_spec.number"),
    ],
)
def test_an_unsupported_field_warns_naming_it(fields: dict[str, Any], path: str) -> None:
    spec = _spec(**fields)
    warnings = spec_warnings(spec.normalized())
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"{path} is ignored here: ")
    assert FIELDS[path].note in warnings[0]
    check_supported(spec)  # a warning, not a refusal


def test_service_annotations_and_type_warn() -> None:
    spec = _spec(
        service={"internal_port": 8000, "external_port": 30080, "annotations": {"a": "b"}},
        parallelism_spec={"constant": 1},
    )
    assert [w.split(" ")[0] for w in spec_warnings(spec)] == ["service.annotations"]


def test_datum_batching_is_implemented() -> None:
    assert FIELDS["transform.datum_batching"].support is Support.IMPLEMENTED
    check_supported(_spec(transform={"cmd": ["sh"], "datum_batching": True}))


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"s3_out": True}, "s3_out"),
        ({"tf_job": {"tf_job": "{}"}}, "tf_job"),
    ],
)
def test_a_field_that_would_give_a_wrong_result_is_refused(
    fields: dict[str, Any], path: str
) -> None:
    assert FIELDS[path].support is Support.REFUSED
    with pytest.raises(InvalidSpec) as e:
        check_supported(_spec(**fields))
    assert e.value.message.startswith(f"{path} is not supported")
    assert path in (e.value.hint or "")


def test_a_spout_is_accepted_and_only_its_marker_warns() -> None:
    doc: dict[str, Any] = {"pipeline": {"name": "s"}, "transform": {"cmd": ["true"]}, "spout": {}}
    spec = PipelineSpec.from_dict(doc)
    check_supported(spec)  # an empty spout object makes a spout, and runs here
    assert spec.spout is not None and spec.input_shorthand() == "none"
    assert spec_warnings(spec) == []
    marked = PipelineSpec.from_dict({**doc, "spout": {"overwrite": True, "marker": "m"}})
    assert marked.spout is not None and marked.spout.overwrite
    assert spec_warnings(marked) == [
        "spout.marker is ignored here: no marker branch: a restarted spout starts afresh"
    ]


def test_inspect_pipeline_text_shows_the_service_and_the_warnings() -> None:
    from tusk.api.pps import PipelineInfo, PipelineState
    from tusk.cli.pps_details import pipeline_details

    spec = _spec(
        service={"internal_port": 8000, "external_port": 30080},
        parallelism_spec={"constant": 1},
        pod_spec="{}",
    )
    info = PipelineInfo(
        name="p",
        version=1,
        spec=spec.to_dict(),
        salt="s",
        spec_commit="c",
        state=PipelineState.RUNNING,
        created=0.0,
        warnings=spec_warnings(spec),
        service_url="http://127.0.0.1:30080",
    )
    text = pipeline_details(info.model_dump(mode="json"))  # the JSON value the CLI reads
    assert "\nService: http://127.0.0.1:30080 (internal port 8000)\n" in text
    assert "\nWarning: pod_spec is ignored here: workers are not pods\n" in text
    assert text.index("Warning:") < text.index("Job Counts:")
