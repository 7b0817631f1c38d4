"""Pipeline specs: parsing (JSON streams, YAML, camelCase, 2.x fields), 1.7 validation, helpers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tusk.errors import InvalidSpec
from tusk.pps.spec import PipelineSpec, parse_duration, parse_specs

DIABETES = Path(__file__).resolve().parents[2] / "examples" / "diabetes"


def spec(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "pipeline": {"name": "edges"},
        "transform": {"cmd": ["python3", "/edges.py"]},
        "input": {"atom": {"repo": "images", "glob": "/*"}},
    }
    doc.update(fields)
    return doc


def atom(repo: str, glob: str = "/*", **extra: Any) -> dict[str, Any]:
    return {"atom": {"repo": repo, "glob": glob, **extra}}


def parse_one(doc: dict[str, Any]) -> PipelineSpec:
    (result,) = parse_specs(json.dumps(doc), "spec.json")
    return result


def error_of(doc: dict[str, Any] | str) -> InvalidSpec:
    text = doc if isinstance(doc, str) else json.dumps(doc)
    with pytest.raises(InvalidSpec) as info:
        parse_specs(text, "spec.json")
    return info.value


# ------------------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    ("file", "name", "workers"),
    [
        ("model.json", "model", 1),
        ("qc_pre_process.json", "qc_pre_process", 1),
        ("qcontrol.json", "qcontrol", 1),
        ("infer.json", "infer", 1),
        ("infer_parallel.json", "infer", 10),
    ],
)
def test_diabetes_specs_parse(file: str, name: str, workers: int) -> None:
    (s,) = parse_specs((DIABETES / file).read_text(), file)
    assert s.name == name
    assert s.transform.image.startswith("gopherdata/gc2018:")  # the workshop's images
    assert s.parallelism_spec is not None
    assert s.parallelism_spec.constant == workers  # "1" and "10" are quoted in the files
    assert isinstance(s.parallelism_spec.constant, int)
    assert s.worker_count(capacity=4) == workers


def test_defaults() -> None:
    s = parse_one(spec(transform={"cmd": ["sh"], "image": ""}))
    assert s.transform.image == "ubuntu:16.04"
    assert s.datum_tries == 3
    assert s.output_branch == "master"
    assert s.cache_size == "64M"
    assert s.max_queue_size == 1
    assert s.salt is None
    p = s.input.pfs_input if s.input else None
    assert p is not None and (p.name, p.branch) == ("images", "master")


def test_several_json_objects_back_to_back() -> None:
    text = json.dumps(spec()) + "\n" + json.dumps(spec(pipeline={"name": "montage"})) + "  "
    text += json.dumps(spec(pipeline={"name": "third"}), indent=2)
    assert [s.name for s in parse_specs(text, "f.json")] == ["edges", "montage", "third"]


def test_yaml_multi_document() -> None:
    text = """
pipeline:
  name: edges
transform:
  cmd: [python3, /edges.py]
input:
  pfs: {repo: images, glob: "/*"}
---
pipeline: {name: tick}
transform: {cmd: [date]}
input:
  cron: {name: tick, spec: "@every 10s", start: 2018-05-01T00:00:00Z}
---
"""
    edges, tick = parse_specs(text, "pipes.yaml")
    assert edges.input_shorthand() == "images:/*"
    assert tick.input is not None and tick.input.cron is not None
    assert tick.input.cron.start == "2018-05-01T00:00:00Z"  # kept as the RFC 3339 string


def test_two_x_syntax_parses() -> None:
    s = parse_one(
        spec(
            input={
                "join": [
                    {"pfs": {"repo": "a", "glob": "/(*)", "join_on": "$1", "outer_join": True}},
                    {"pfs": {"repo": "b", "glob": "/(*)", "join_on": "$1", "repo_type": "user"}},
                ]
            },
            transform={"cmd": ["sh"], "err_cmd": ["true"]},
            pod_patch='[{"op": "add"}]',
            reprocess_spec="every_job",
            autoscaling=True,
            metadata={"labels": {"team": "x"}},
            sidecar_resource_limits={"cpu": 1, "gpu": {"type": "nvidia.com/gpu", "number": 1}},
            datum_set_spec={"number": 10},
        )
    )
    assert s.input_names() == ["a", "b"]
    grouped = parse_one(
        spec(input={"group": [{"pfs": {"repo": "a", "glob": "/(*)", "group_by": "$1"}}]})
    )
    assert grouped.input_repos() == [("a", "master")]
    cron = parse_one(spec(input={"cron": {"name": "tick", "spec": "@daily", "overwrite": True}}))
    assert cron.input is not None and cron.input.cron is not None and cron.input.cron.overwrite


def test_camel_case_keys() -> None:
    s = parse_one(
        spec(
            parallelismSpec={"coefficient": "0.5"},
            outputBranch="out-branch",
            datumTimeout="1m",
            jobTimeout="1h30m",
            enableStats=True,
            resourceLimits={"memory": "1G", "cpu": 0.5},
            transform={"cmd": ["sh"], "acceptReturnCode": [1], "workingDir": "/w"},
            input={"atom": {"repo": "images", "glob": "/*", "emptyFiles": True}},
        )
    )
    assert s.output_branch == "out-branch"
    assert s.parallelism_spec is not None and s.parallelism_spec.coefficient == 0.5
    assert s.datum_timeout_seconds == 60
    assert s.job_timeout_seconds == 5400
    assert s.enable_stats
    assert s.transform.accept_return_code == (1,)
    assert s.input is not None and s.input.atom is not None and s.input.atom.empty_files
    assert s.resource_limits is not None and s.resource_limits.cpu == 0.5


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1), ("5m", 300), ("1h30m", 5400), ("300ms", 0.3), ("15h", 54000), ("1.5s", 1.5)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)
    assert parse_one(spec(datum_timeout=text)).datum_timeout_seconds == pytest.approx(seconds)


# ------------------------------------------------------------------------------ errors


def test_unknown_field_suggests_the_real_one() -> None:
    doc = spec()
    doc["tranform"] = doc.pop("transform")
    err = error_of(doc)
    assert 'malformed pipeline spec: unknown field "tranform"' in err.message
    assert err.hint is not None and "transform" in err.hint
    assert err.fields["field"] == "tranform"


def test_unknown_nested_field_names_its_place() -> None:
    err = error_of(spec(input={"cross": [atom("a"), {"atom": {"repo": "b", "globb": "/"}}]}))
    assert 'unknown field "globb" in input.cross[1].atom' in err.message
    assert err.hint == 'did you mean "glob"?'


def test_errors_name_the_spec_in_a_stream() -> None:
    text = json.dumps(spec()) + json.dumps(spec(pipeline={"name": "bad"}, datum_tries=0))
    err = error_of(text)
    assert err.message.startswith('spec.json: spec 2 (pipeline "bad"): ')
    assert "datum_tries" in err.message
    assert (err.fields["index"], err.fields["pipeline"]) == (1, "bad")


def test_input_named_out() -> None:
    err = error_of(spec(input=atom("data", name="out")))
    assert (
        'input cannot be named "out", as pachyderm already creates /pfs/out to collect job output'
        in err.message
    )
    assert err.fields["field"] == "input.atom.name"


def test_name_used_twice_across_a_cross() -> None:
    err = error_of(spec(input={"cross": [atom("data", "/"), atom("data", "/*")]}))
    assert 'name "data" was used more than once' in err.message
    assert err.fields["field"] == "input.cross[1].atom.name"
    ok = parse_one(spec(input={"cross": [atom("data", "/"), atom("data", "/*", name="data2")]}))
    assert ok.input_names() == ["data", "data2"]


def test_union_may_reuse_a_name_but_not_collide_with_its_cross_siblings() -> None:
    union = {"union": [atom("a", name="in"), atom("b", name="in")]}
    assert parse_one(spec(input=union)).input_names() == ["in"]
    err = error_of(spec(input={"cross": [union, atom("c", name="in")]}))
    assert 'name "in" was used more than once' in err.message


def test_input_kinds_exactly_one() -> None:
    both = {"atom": {"repo": "a", "glob": "/"}, "cron": {"name": "t", "spec": "@daily"}}
    assert "multiple input types set" in error_of(spec(input=both)).message
    assert "no input set" in error_of(spec(input={"cross": [atom("a"), {}]})).message


def test_parallelism_rules() -> None:
    err = error_of(spec(parallelism_spec={"constant": 2, "coefficient": 0.5}))
    assert (
        "contradictory parallelism strategies: must set at most one of "
        "ParallelismSpec.Constant and ParallelismSpec.Coefficient"
    ) in err.message
    assert "must not be negative" in error_of(spec(parallelism_spec={"constant": -1})).message
    assert "must not be negative" in error_of(spec(parallelism_spec={"coefficient": -1})).message
    service = {"internal_port": 8888, "external_port": 30888}
    err = error_of(spec(service=service, parallelism_spec={"constant": 2}))
    assert "services can only be run with a constant parallelism of 1" in err.message
    assert parse_one(spec(service=service, parallelism_spec={"constant": 1})).service


@pytest.mark.parametrize("name", ["-edges", "edges_", "my pipe", "a.b", "x" * 51, ""])
def test_invalid_pipeline_names(name: str) -> None:
    err = error_of(spec(pipeline={"name": name}))
    assert err.fields["field"] == "pipeline.name"


@pytest.mark.parametrize("name", ["a", "edges", "qc_pre_process", "a-1", "X" * 50])
def test_valid_pipeline_names(name: str) -> None:
    assert parse_one(spec(pipeline={"name": name})).name == name


def test_empty_cmd_and_missing_transform() -> None:
    assert "no cmd set" in error_of(spec(transform={"image": "x", "cmd": []})).message
    doc = spec()
    del doc["transform"]
    assert error_of(doc).fields["field"] == "transform"


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("input", atom("images", "/[a-"), "glob"),
        ("input", {"atom": {"repo": "images"}}, "input must specify a glob"),
        ("input", {"atom": {"glob": "/"}}, "input must specify a repo"),
        ("input", atom("bad.repo"), "repo name"),
        ("input", {"cron": {"name": "tick", "spec": "@every soon"}}, "input.cron.spec"),
        ("input", {"cron": {"name": "tick", "spec": "61 * * * *"}}, "out of range"),
        ("input", {"cron": {"name": "tick", "spec": "* * * *"}}, "exactly 5 fields"),
        ("input", {"cron": {"spec": "@daily"}}, "input must specify a name"),
        ("datum_timeout", "5 minutes", "datum_timeout"),
        ("job_timeout", 60, "duration string"),
        ("datum_tries", 0, "datum_tries must be at least 1"),
        ("cache_size", "lots", "cacheSize"),
        ("parallelism_spec", {"constant": "ten"}, "parallelism_spec.constant"),
    ],
)
def test_field_errors(field: str, value: Any, needle: str) -> None:
    err = error_of(spec(**{field: value}))
    assert needle in err.message
    assert err.hint


@pytest.mark.parametrize(
    "cron", ["@every 10s", "@daily", "@hourly", "*/5 * * * *", "0 0 1-15 jan,jun MON-FRI"]
)
def test_cron_specs_accepted(cron: str) -> None:
    s = parse_one(spec(input={"cron": {"name": "tick", "spec": cron}}))
    assert s.input_shorthand() == f"tick:{cron}"


def test_bad_documents() -> None:
    assert "invalid JSON at line 1" in error_of('{"pipeline": ').message
    assert "no pipeline spec found" in error_of("  \n").message
    assert "expected an object" in error_of("- a\n- b\n").message
    assert "invalid YAML" in error_of("pipeline: [\n").message


# ------------------------------------------------------------------------------ helpers


def test_worker_count() -> None:
    assert parse_one(spec()).worker_count(8) == 1
    assert parse_one(spec(parallelism_spec={})).worker_count(8) == 1
    assert parse_one(spec(parallelism_spec={"constant": 0})).worker_count(8) == 1
    assert parse_one(spec(parallelism_spec={"constant": 3})).worker_count(8) == 3
    assert parse_one(spec(parallelism_spec={"coefficient": 0.5})).worker_count(8) == 4
    assert parse_one(spec(parallelism_spec={"coefficient": 0.5})).worker_count(3) == 1
    assert parse_one(spec(parallelism_spec={"coefficient": 0.1})).worker_count(2) == 1


def test_shorthand() -> None:
    cross = spec(input={"cross": [atom("images", "/"), atom("edges", "/")]})
    assert parse_one(cross).input_shorthand() == "(images:/ ⨯ edges:/)"
    union = spec(input={"union": [atom("a"), atom("b")]})
    assert parse_one(union).input_shorthand() == "(a:/* ∪ b:/*)"
    assert parse_one(spec()).input_shorthand() == "images:/*"


def test_normalized_sorts_and_fills_defaults() -> None:
    doc = spec(
        pipeline={"name": "p"},
        input={
            "cross": [
                {"union": [atom("z"), atom("m")]},
                atom("b", branch="dev"),
                {"cron": {"name": "tick", "spec": "@every 10s"}},
            ]
        },
        max_queue_size=0,
    )
    s = parse_one(doc)
    n = s.normalized()
    assert n.input_shorthand() == "(b:/* ⨯ (m:/* ∪ z:/*) ⨯ tick:@every 10s)"
    assert s.input_shorthand() == "((z:/* ∪ m:/*) ⨯ b:/* ⨯ tick:@every 10s)"  # original untouched
    assert n.resource_requests is not None and n.resource_requests.memory == "64M"
    assert n.max_queue_size == 1
    assert n.input_repos() == [("b", "dev"), ("m", "master"), ("z", "master"), ("p_tick", "master")]
    assert s.cron_repos() == ["p_tick"]
    stored = n.to_dict()
    assert stored["input"]["cross"][2]["cron"]["repo"] == "p_tick"
    assert stored["transform"]["image"] == "ubuntu:16.04"
    assert stored["datum_tries"] == 3
    assert n.normalized() == n


def test_to_json_round_trips_snake_case() -> None:
    s = parse_one(
        spec(
            parallelismSpec={"constant": "2"},
            egress={"URL": "s3://bucket/dir"},
            transform={"cmd": ["sh"], "env": {"EMPTY": ""}},
        )
    ).normalized()
    doc = json.loads(s.to_json())
    assert doc["parallelism_spec"] == {"constant": 2}
    assert doc["egress"] == {"URL": "s3://bucket/dir"}
    assert doc["transform"]["env"] == {"EMPTY": ""}
    assert "enable_stats" not in doc and "description" not in doc and "salt" not in doc
    assert PipelineSpec.from_dict(doc) == s
    assert parse_specs(s.to_json(), "stored")[0] == s


def test_specs_are_frozen() -> None:
    s = parse_one(spec())
    with pytest.raises(ValueError):
        s.datum_tries = 5  # type: ignore[misc]
