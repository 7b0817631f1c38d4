"""Specs and pipelines that used to wedge or exhaust the server: YAML alias bombs, oversized specs,
unbounded parallelism, and output file names that the merge of a job's output cannot take."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import Pps, atom

from tusk.errors import InvalidSpec
from tusk.pps.spec import parse_specs
from tusk.pps.spec.parse import MAX_SPEC_BYTES
from tusk.runtime import Engine, Settings

# 389 bytes of YAML that expand to 9**9 list items when read naively.
ALIAS_BOMB = """\
pipeline: {name: bomb}
transform: {cmd: [sh]}
input: {pfs: {repo: x, glob: /*}}
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_a_yaml_alias_bomb_is_refused_quickly() -> None:
    started = time.monotonic()
    with pytest.raises(InvalidSpec) as err:
        parse_specs(ALIAS_BOMB, "bomb.yaml")
    assert time.monotonic() - started < 1.0
    assert "bomb.yaml" in err.value.message
    assert "aliases" in err.value.message
    assert err.value.hint


def test_a_few_yaml_aliases_still_work() -> None:
    text = (
        "pipeline: {name: p}\n"
        "transform: {cmd: [sh], env: &env {A: '1'}}\n"
        "input: {pfs: {repo: x, glob: /*}}\n"
        "x-copy: *env\n"
    )
    with pytest.raises(InvalidSpec) as err:  # unknown field, but the alias itself is fine
        parse_specs(text, "ok.yaml")
    assert "x-copy" in err.value.message
    (spec,) = parse_specs(text.replace("x-copy: *env\n", ""), "ok.yaml")
    assert spec.transform.env == {"A": "1"}


def test_an_oversized_spec_is_refused() -> None:
    spec = {
        "pipeline": {"name": "big"},
        "transform": {"cmd": ["sh"], "stdin": ["x" * (MAX_SPEC_BYTES + 1)]},
        "input": {"pfs": {"repo": "x", "glob": "/*"}},
    }
    with pytest.raises(InvalidSpec) as err:
        parse_specs(json.dumps(spec), "big.json")
    assert "too large" in err.value.message and "big.json" in err.value.message


def test_deeply_nested_spec_is_a_clear_error() -> None:
    with pytest.raises(InvalidSpec) as err:
        parse_specs("[" * 100_000 + "]" * 100_000, "deep.json")
    assert "nested too deeply" in err.value.message


@pytest.mark.parametrize(
    ("parallelism", "field"),
    [({"constant": 10**9}, "constant"), ({"coefficient": 1e9}, "coefficient")],
)
def test_absurd_parallelism_is_refused(pps: Pps, parallelism: dict[str, float], field: str) -> None:
    pps.repo("x")
    with pytest.raises(InvalidSpec) as err:
        pps.create("p", atom("x"), ["true"], parallelism_spec=parallelism)
    assert field in err.value.message.lower()
    assert err.value.hint
    assert pps.engine.pipelines.list() == []


def test_parallelism_above_the_server_limit_is_capped_with_a_warning(tmp_path: Path) -> None:
    engine = Engine(Settings.for_home(tmp_path / "home", max_parallelism=2))
    engine.start()
    try:
        engine.repos.create("x")
        spec = {
            "pipeline": {"name": "p"},
            "transform": {"cmd": ["true"]},
            "input": {"pfs": {"repo": "x", "glob": "/*"}},
            "parallelism_spec": {"constant": 50},
        }
        (parsed,) = parse_specs(json.dumps(spec), "p.json")
        created = engine.pipelines.create(parsed)
        assert len(created.warnings) == 1
        assert "50 workers" in created.warnings[0] and "at most 2" in created.warnings[0]
        assert "TUSK_MAX_PARALLELISM" in created.warnings[0]
        deadline = time.monotonic() + 30
        while len(engine.executor.workers("p")) != 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(engine.executor.workers("p")) == 2
        spec["parallelism_spec"] = {"constant": 2}
        (parsed,) = parse_specs(json.dumps(spec), "p.json")
        assert engine.pipelines.create(parsed, update=True).warnings == []
    finally:
        engine.close()


# Writes one output file per input file, named by the input file's content.
NAME_BY_CONTENT = [
    "sh",
    "-c",
    'for f in /pfs/in/*; do printf x > "/pfs/out/$(cat "$f")"; done',
]


@pytest.mark.parametrize("bad_name", ["star*name", "new\nline"])
def test_a_bad_output_file_name_fails_its_datum_and_the_next_job_runs(
    pps: Pps, bad_name: str
) -> None:
    pps.repo("x")
    pps.put("x", {"/a": "good"})
    pps.create("p", atom("x", name="in"), NAME_BY_CONTENT, datum_tries=1)
    (first,) = pps.wait_jobs("p", 1)
    assert first.state == "success"

    pps.put("x", {"/b": bad_name})
    second = pps.wait_jobs("p", 2, timeout=30)[-1]
    assert second.state == "failure"
    assert "failed to process datum" in second.reason
    assert "output file" in second.reason and "not allowed" in second.reason
    datums = {d.inputs[0].path: d for d in pps.engine.jobs.datums(second.id, "p")}
    assert datums["/b"].state == "failed" and datums["/a"].state in ("success", "skipped")

    pps.put("x", {"/b": "fine"}, overwrite=True)
    third = pps.wait_jobs("p", 3, timeout=30)[-1]
    assert third.state == "success"
    assert pps.tree("p") == {"/fine": b"x", "/good": b"x"}


def test_a_propagation_error_never_fails_the_put_and_is_retried(
    pps: Pps, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tusk.pps.scheduling import trigger

    pps.repo("x")
    pps.put("x", {"/a": "a"})
    pps.create("p", atom("x", name="in"), ["sh", "-c", "cp /pfs/in/* /pfs/out/"])
    pps.wait_jobs("p", 1)
    real = trigger.propagate
    failures: list[str] = []

    def broken_once(*args: object, **kw: object) -> object:
        if not failures:
            failures.append("propagate")
            raise RuntimeError("metadata store hiccup")
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(trigger, "propagate", broken_once)
    landed = pps.put("x", {"/b": "b"})  # the write landed: the put answers normally
    assert failures == ["propagate"]
    assert pps.read("x", landed, "/b") == b"b"
    second = pps.wait_jobs("p", 2, timeout=30)[-1]  # the leader retries within a second or so
    assert second.id == landed and second.state == "success"
    assert pps.tree("p") == {"/a": b"a", "/b": b"b"}
