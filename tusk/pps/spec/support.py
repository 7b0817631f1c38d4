"""What tusk does with each pipeline spec field: implemented, kept as a note, accepted with a
warning (it asks for something only Kubernetes or Pachyderm's own cluster gives), or refused
(running without it would silently give a wrong result).

:data:`FIELDS` is the one table; docs/differences.md prints the same table and a unit test keeps
the two, and the spec model, in step. :func:`spec_warnings` turns the fields a spec sets into the
lines create-pipeline prints and inspect-pipeline shows; :func:`check_supported` refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from tusk.errors import InvalidSpec
from tusk.pps.spec.models import DEFAULT_CACHE_SIZE, PipelineSpec


class Support(StrEnum):
    """How tusk treats a spec field."""

    IMPLEMENTED = "implemented"
    NOTE = "kept"  # stored and shown; it asks nothing of the runtime
    WARNED = "ignored, with a warning"
    REFUSED = "refused"


@dataclass(frozen=True)
class FieldSupport:
    """One row of the table: a dotted field path, what tusk does with it, and why."""

    support: Support
    note: str


_I, _N, _W, _R = Support.IMPLEMENTED, Support.NOTE, Support.WARNED, Support.REFUSED

FIELDS: dict[str, FieldSupport] = {
    "pipeline.name": FieldSupport(_I, "the pipeline and its output repo"),
    "pipeline.project": FieldSupport(
        _I, "the project of the pipeline, its output repo and bare input repos"
    ),
    "description": FieldSupport(_N, "shown by inspect-pipeline"),
    "metadata": FieldSupport(_W, "pod annotations and labels: workers are not pods"),
    "transform.image": FieldSupport(_I, "every datum runs in it (docs/sandbox.md)"),
    "transform.cmd": FieldSupport(_I, "replaces the image's entrypoint"),
    "transform.stdin": FieldSupport(_I, "lines fed to cmd"),
    "transform.env": FieldSupport(_I, "set for user code"),
    "transform.secrets": FieldSupport(_I, "create-secret; env_var and mount_path"),
    "transform.image_pull_secrets": FieldSupport(_W, "images come from the local podman store"),
    "transform.accept_return_code": FieldSupport(_I, "these exit codes count as success"),
    "transform.debug": FieldSupport(_W, "worker logs are always complete; no debug level"),
    "transform.user": FieldSupport(_I, "looked up in the image"),
    "transform.working_dir": FieldSupport(_I, "overrides the image's WORKDIR"),
    "transform.err_cmd": FieldSupport(_I, "runs on a failed datum; success marks it recovered"),
    "transform.err_stdin": FieldSupport(_I, "lines fed to err_cmd"),
    "transform.dockerfile": FieldSupport(_W, "build the image with podman build and name it"),
    "transform.memory_volume": FieldSupport(_W, "/pfs is on disk; there is no memory volume"),
    "transform.datum_batching": FieldSupport(
        _I, "user code asks `pachctl next datum` or tusk_batch for each datum (docs/sandbox.md)"
    ),
    "parallelism_spec.constant": FieldSupport(_I, "workers per pipeline (capped by the server)"),
    "parallelism_spec.coefficient": FieldSupport(_I, "times the executor's capacity"),
    "hashtree_spec.constant": FieldSupport(_W, "tusk keeps no hashtree shards"),
    "egress.URL": FieldSupport(_I, "s3:// and file://; a failed egress fails the job"),
    "egress.object_storage": FieldSupport(_W, "2.x egress targets: use URL"),
    "egress.sql_database": FieldSupport(_W, "2.x SQL egress is not supported"),
    "output_branch": FieldSupport(_I, "the branch jobs commit to"),
    "scale_down_threshold": FieldSupport(_I, "idle workers stop after this long"),
    "resource_requests.memory": FieldSupport(
        _I, "Ray actor resources; local workers share the host"
    ),
    "resource_requests.cpu": FieldSupport(_I, "Ray actor resources; local workers share the host"),
    "resource_requests.gpu": FieldSupport(_I, "Ray actor resources; local workers share the host"),
    "resource_requests.disk": FieldSupport(_I, "Ray actor resources; local workers share the host"),
    "resource_limits.memory": FieldSupport(_I, "enforced by the runtime where it can"),
    "resource_limits.cpu": FieldSupport(_I, "enforced by the runtime where it can"),
    "resource_limits.gpu": FieldSupport(_I, "enforced by the runtime where it can"),
    "resource_limits.disk": FieldSupport(_I, "enforced by the runtime where it can"),
    "sidecar_resource_limits": FieldSupport(_W, "there is no storage sidecar"),
    "sidecar_resource_requests": FieldSupport(_W, "there is no storage sidecar"),
    "input": FieldSupport(_I, "atom/pfs, cross, union, cron, join, group, git"),
    "cache_size": FieldSupport(_W, "sets the default memory request only; no hashtree cache"),
    "enable_stats": FieldSupport(_I, "the stats branch and per-datum statistics"),
    "batch": FieldSupport(_W, "unused in Pachyderm as well"),
    "max_queue_size": FieldSupport(_W, "a worker takes one datum at a time"),
    "service.internal_port": FieldSupport(_I, "the port the code listens on inside its sandbox"),
    "service.external_port": FieldSupport(_I, "published on the server's host"),
    "service.ip": FieldSupport(_W, "the bind address is the server's (TUSK_SERVICE_HOST)"),
    "service.type": FieldSupport(_W, "no Kubernetes Service: the port is published on the host"),
    "service.annotations": FieldSupport(_W, "no Kubernetes Service to annotate"),
    "spout": FieldSupport(
        _I, "1.x spouts: tar streams written to the named pipe /pfs/out; no API from the sandbox"
    ),
    "spout.overwrite": FieldSupport(_I, "a stream's files replace those of the same path"),
    "spout.service": FieldSupport(_I, "its ports, published as a service's"),
    "spout.marker": FieldSupport(_W, "no marker branch: a restarted spout starts afresh"),
    "chunk_spec.number": FieldSupport(_W, "datums are handed out one at a time"),
    "chunk_spec.size_bytes": FieldSupport(_W, "datums are handed out one at a time"),
    "datum_set_spec": FieldSupport(_W, "datums are handed out one at a time"),
    "datum_timeout": FieldSupport(_I, "a datum running longer fails"),
    "job_timeout": FieldSupport(_I, "a job running longer is killed"),
    "salt": FieldSupport(_I, "part of every datum hash"),
    "standby": FieldSupport(_I, "workers stop when there is no job; state standby"),
    "autoscaling": FieldSupport(_I, "as standby: workers stop when idle, start on new data"),
    "datum_tries": FieldSupport(_I, "attempts per datum"),
    "scheduling_spec.node_selector": FieldSupport(_W, "no Kubernetes nodes to select"),
    "scheduling_spec.priority_class_name": FieldSupport(_W, "no Kubernetes priority classes"),
    "pod_spec": FieldSupport(_W, "workers are not pods"),
    "pod_patch": FieldSupport(_W, "workers are not pods"),
    "incremental": FieldSupport(
        _W, "/pfs/out starts empty; unchanged datums are skipped and their output kept anyway"
    ),
    "s3_out": FieldSupport(_R, "there is no S3 gateway for user code to write its output to"),
    "reprocess_spec": FieldSupport(
        _W, "every_job is not supported: stored datum results are reused"
    ),
    "tf_job": FieldSupport(_R, "TFJob needs Kubeflow on Kubernetes"),
    "tolerations": FieldSupport(_W, "no Kubernetes taints to tolerate"),
    "maximum_expected_uptime": FieldSupport(
        _W, "services and spouts are restarted only when they exit"
    ),
    "update": FieldSupport(_I, "as update-pipeline"),
    "reprocess": FieldSupport(_I, "as --reprocess"),
}

# Fields whose default is also a value a user may write: set means "not this".
_DEFAULTS: dict[str, Any] = {
    "cache_size": DEFAULT_CACHE_SIZE,
    "reprocess_spec": "until_success",
    "max_queue_size": 1,
}


# Fields that mean something when present at all, even empty ("spout": {} makes a spout).
_PRESENCE = frozenset({"spout"})


def field_paths(model: type[BaseModel] = PipelineSpec, prefix: str = "") -> list[str]:
    """Every field of the spec model as a dotted path: nested spec parts field by field, inputs
    and free-form parts (dicts, tuples of models) as one path."""
    out: list[str] = []
    for name, info in model.model_fields.items():
        path = prefix + name
        nested = _part_model(info.annotation)
        if nested is not None and path in _PRESENCE:
            out.append(path)  # set at all means something, and so do its fields
            out.extend(field_paths(nested, path + "."))
        elif nested is not None and path not in FIELDS:
            out.extend(field_paths(nested, path + "."))
        else:
            out.append(path)
    return out


def _part_model(annotation: Any) -> type[BaseModel] | None:
    from typing import get_args

    candidates = [annotation, *get_args(annotation)]
    for c in candidates:
        if isinstance(c, type) and issubclass(c, BaseModel) and c.__name__ != "Input":
            return c
    return None


def _set_fields(spec: PipelineSpec) -> list[str]:
    """The dotted paths of the table that this spec sets to something other than the default."""
    out = []
    for path in FIELDS:
        value: Any = spec
        for part in path.split("."):
            value = getattr(value, part, None)
            if value is None:
                break
        if path in _PRESENCE:
            if value is None:
                continue
        elif value in (None, False, "", (), {}, 0) or _DEFAULTS.get(path) == value:
            continue
        out.append(path)
    return out


def spec_warnings(spec: PipelineSpec) -> list[str]:
    """One line per field the spec sets that this server accepts but cannot honour."""
    lines = []
    for path in _set_fields(spec):
        row = FIELDS[path]
        if row.support is Support.WARNED:
            lines.append(f"{path} is ignored here: {row.note}")
    return lines


def check_supported(spec: PipelineSpec) -> None:
    """Refuse a spec that sets a field whose absence would give a wrong result."""
    for path in _set_fields(spec):
        row = FIELDS[path]
        if row.support is Support.REFUSED:
            raise InvalidSpec(
                f"{path} is not supported: {row.note}",
                field=path,
                hint=f"remove {path} from the spec",
            )
