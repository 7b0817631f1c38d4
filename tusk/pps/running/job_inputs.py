"""What a job runs with: its spec version (a file in ``__spec__``) and its input commits."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from tusk.pfs.context import SPEC_REPO, PfsContext
from tusk.pfs.tree import EMPTY_ROOT
from tusk.pps.datums import InputCommit
from tusk.pps.spec import PipelineSpec, parse_specs
from tusk.storage import read_chunks


class InputState(StrEnum):
    """Whether a job's input commits let it run."""

    READY = "ready"
    WAITING = "waiting"  # some input commit is still open
    FAILED = "failed"  # some input commit is a failed job's output
    MISSING = "missing"  # some input commit was deleted


_SPECS: dict[tuple[str, str], tuple[PipelineSpec, dict[str, Any]]] = {}  # commits never change


def load_spec(ctx: PfsContext, spec_commit: str) -> tuple[PipelineSpec, dict[str, Any]]:
    """The spec a job runs with: the file in its ``__spec__`` commit (its provenance)."""
    key = (ctx.store.url, spec_commit)
    if key not in _SPECS:
        if len(_SPECS) >= 256:
            _SPECS.clear()
        _SPECS[key] = _read_spec(ctx, spec_commit)
    return _SPECS[key]


def _read_spec(ctx: PfsContext, spec_commit: str) -> tuple[PipelineSpec, dict[str, Any]]:
    with ctx.meta.transaction(write=False) as tx:
        row = tx.get_commit(SPEC_REPO, spec_commit)
    assert row is not None and row.tree is not None, f"spec commit {spec_commit} missing"
    node = ctx.tree.get(row.tree, "/spec")
    assert node is not None
    raw = b"".join(read_chunks(ctx.store, node.chunks))
    doc = json.loads(raw)
    return parse_specs(json.dumps(doc["spec"]), "__spec__")[0], doc


def input_state(ctx: PfsContext, pipeline: str, job_id: str) -> tuple[InputState, list[str]]:
    """Whether the job can run now, with the inputs that say why not: the failed (or deleted)
    input repos, or the ``repo@commit`` of the open input commits it waits for."""
    with ctx.meta.transaction(write=False) as tx:
        waiting, failed, missing = [], [], []
        for repo, cid, _branch in tx.commit_provenance(pipeline, job_id):
            row = tx.get_commit(repo, cid)
            if row is None:
                missing.append(f"{repo}@{cid}")
            elif row.finished is None:
                waiting.append(f"{repo}@{cid}")
            elif row.failed and repo != SPEC_REPO:
                failed.append(repo)
    if missing:
        return InputState.MISSING, sorted(missing)
    if failed:
        return InputState.FAILED, sorted(set(failed))
    return (InputState.WAITING if waiting else InputState.READY), sorted(waiting)


def input_commits(
    ctx: PfsContext, pipeline: str, job_id: str
) -> dict[tuple[str, str], InputCommit]:
    """The job's input commits (not its spec commit), by ``(repo, branch)``."""
    out: dict[tuple[str, str], InputCommit] = {}
    with ctx.meta.transaction(write=False) as tx:
        for repo, cid, branch in tx.commit_provenance(pipeline, job_id):
            row = tx.get_commit(repo, cid)
            if row is None or repo == SPEC_REPO:
                continue
            out[(repo, branch or "master")] = InputCommit(
                repo, branch or "master", cid, row.tree or EMPTY_ROOT
            )
    return out
