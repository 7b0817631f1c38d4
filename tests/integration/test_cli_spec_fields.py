"""Spec fields that cannot work here, and standby, through the real CLI and a real server:
create-pipeline prints the warnings, inspect-pipeline (text and --raw) shows them, list-pipeline
shows a standby pipeline as ``standby``, and a refused field fails create-pipeline."""

from __future__ import annotations

import time
from typing import Any

from .conftest import Tusk, raw_objects, rows
from .test_cli_pps import atom, fails, ok, spec


def test_warnings_at_create_and_in_inspect(tusk: Tusk) -> None:
    ok(tusk("create-repo", "wa"))
    code, _out, err = tusk(
        "create-pipeline",
        input=spec("wp", "cp -r /pfs/wa/. /pfs/out/", atom("wa", "/*"), pod_spec="{}",
                   tolerations=[{"key": "gpu", "operator": "Exists"}]),
    )  # fmt: skip
    assert code == 0, err
    assert "pod_spec is ignored here: workers are not pods" in err
    assert "tolerations is ignored here: no Kubernetes taints to tolerate" in err
    details = ok(tusk("inspect-pipeline", "wp"))
    assert "Warning: pod_spec is ignored here: workers are not pods\n" in details
    assert "Warning: tolerations is ignored here: no Kubernetes taints to tolerate\n" in details
    (raw,) = raw_objects(ok(tusk("inspect-pipeline", "wp", "--raw")))
    assert raw["warnings"] == [
        "pod_spec is ignored here: workers are not pods",
        "tolerations is ignored here: no Kubernetes taints to tolerate",
    ]
    ok(tusk("delete-pipeline", "wp"))


def test_a_refused_field_fails_create_and_creates_nothing(tusk: Tusk) -> None:
    ok(tusk("create-repo", "ra"))
    fails(
        tusk("create-pipeline", input=spec("rp", "true", atom("ra", "/*"), s3_out=True)),
        2,
        "s3_out is not supported: there is no S3 gateway for user code to write its output to",
    )
    fails(tusk("inspect-pipeline", "rp"), 3, "pipeline rp not found")


def test_a_standby_pipeline_lists_as_standby(tusk: Tusk) -> None:
    ok(tusk("create-repo", "sba"))
    ok(tusk("create-pipeline", input=spec("sbp", "true", atom("sba", "/*"), standby=True)))
    deadline = time.monotonic() + 30
    state: Any = None
    while time.monotonic() < deadline:
        state = [r[-1] for r in rows(ok(tusk("list-pipeline")))[1:] if r[0] == "sbp"]
        if state == ["standby"]:
            break
        time.sleep(0.2)
    assert state == ["standby"]
    assert "State: standby\n" in ok(tusk("inspect-pipeline", "sbp"))
    assert rows(ok(tusk("list-worker", "sbp"))) == [["NAME", "READY", "STATUS", "RESTARTS", "AGE"]]
    ok(tusk("delete-pipeline", "sbp"))
