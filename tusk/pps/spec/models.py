"""The pipeline spec model: :class:`PipelineSpec` (1.7 ``CreatePipelineRequest`` plus the 2.x
fields) and its parts other than inputs, with 1.7's validation rules and the values derived from a
spec (timeouts in seconds, worker count, input repos, the normalized form 1.7 stores).

Specs are decoded strictly (unknown fields are errors, as 1.7's ``jsonpb`` does) but accept both
``snake_case`` and ``lowerCamel`` keys, and the 2.x fields (``pfs``, ``join``, ``group``,
``cron.overwrite``, ``pod_patch``, ...) so that 2.x specs parse too. Every problem is raised as
:class:`~tusk.errors.InvalidSpec` naming the field, with a hint for the fix.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tusk.api.projects import DEFAULT_PROJECT, qualify
from tusk.errors import InvalidSpec
from tusk.pfs.paths import validate_branch_name
from tusk.pps.spec.base import (
    DEFAULT_BRANCH,
    Duration,
    Quantity,
    SpecModel,
    SpecProblem,
    check_name,
)
from tusk.pps.spec.errors import to_invalid_spec
from tusk.pps.spec.inputs import Input, check_input_names, check_keyed_inputs
from tusk.pps.spec.units import is_quantity, parse_duration

DEFAULT_IMAGE = "ubuntu:16.04"
DEFAULT_CACHE_SIZE = "64M"
DEFAULT_DATUM_TRIES = 3
MAX_PIPELINE_NAME = 50

_PIPELINE_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?$")


class Pipeline(SpecModel):
    """The pipeline's name (and its 2.x project)."""

    name: str = ""
    project: dict[str, Any] | None = None  # 2.5+


class Secret(SpecModel):
    """A Kubernetes secret the transform mounts or reads into an environment variable."""

    name: str = ""
    mount_path: str | None = None
    env_var: str | None = None
    key: str | None = None


class Transform(SpecModel):
    """The user code: image, command, standard input, environment and secrets."""

    image: str = DEFAULT_IMAGE
    cmd: tuple[str, ...] = ()
    stdin: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)
    secrets: tuple[Secret, ...] = ()
    image_pull_secrets: tuple[str, ...] = ()
    accept_return_code: tuple[int, ...] = ()
    debug: bool = False
    user: str | None = None
    working_dir: str | None = None
    # 2.x
    err_cmd: tuple[str, ...] = ()
    err_stdin: tuple[str, ...] = ()
    dockerfile: str | None = None
    memory_volume: bool = False
    datum_batching: bool = False

    @field_validator("image")
    @classmethod
    def _default_image(cls, v: str) -> str:
        return v or DEFAULT_IMAGE

    @model_validator(mode="after")
    def _has_cmd(self) -> Transform:
        if not self.cmd:
            raise SpecProblem(
                "no cmd set", field="cmd", hint='set "transform": {"cmd": ["program", "arg", ...]}'
            )
        return self


# Bounds past which a parallelism is a mistake (400); a server also has its own, lower limit
# (TUSK_MAX_PARALLELISM), past which it runs fewer workers and says so at create.
MAX_WORKERS = 10_000
MAX_COEFFICIENT = 64.0


class ParallelismSpec(SpecModel):
    """How many workers: a ``constant`` count or a ``coefficient`` of the capacity."""

    constant: int = 0  # a uint; jsonpb also accepts it quoted ("10")
    coefficient: float = 0.0

    @model_validator(mode="after")
    def _consistent(self) -> ParallelismSpec:
        if self.constant < 0:
            raise SpecProblem(
                f"ParallelismSpec.Constant must not be negative (got {self.constant})",
                field="constant",
                hint="use a worker count of 1 or more",
            )
        if self.coefficient < 0:
            raise SpecProblem(
                f"ParallelismSpec.Coefficient must not be negative (got {self.coefficient})",
                field="coefficient",
                hint="use a positive fraction of the cluster's capacity, e.g. 0.5",
            )
        if self.constant > MAX_WORKERS:
            raise SpecProblem(
                f"ParallelismSpec.Constant of {self.constant} workers is beyond any cluster "
                f"(at most {MAX_WORKERS})",
                field="constant",
                hint="ask for the workers the data needs, e.g. 8",
            )
        if not math.isfinite(self.coefficient) or self.coefficient > MAX_COEFFICIENT:
            raise SpecProblem(
                f"ParallelismSpec.Coefficient of {self.coefficient} is beyond any cluster "
                f"(at most {MAX_COEFFICIENT:g} workers per unit of capacity)",
                field="coefficient",
                hint="use a fraction of the cluster's capacity, e.g. 0.5 or 1",
            )
        if self.constant and self.coefficient:
            raise SpecProblem(
                "contradictory parallelism strategies: must set at most one of "
                "ParallelismSpec.Constant and ParallelismSpec.Coefficient",
                hint='remove either "constant" or "coefficient"',
            )
        return self


class GPUSpec(SpecModel):  # 2.x
    """GPUs a worker asks for: their type and number (2.x)."""

    type: str = ""
    number: int = 0


class ResourceSpec(SpecModel):
    """What a worker requests or is limited to: memory, cpu, gpu, disk."""

    memory: Quantity | None = None
    cpu: Quantity | None = None
    gpu: int | GPUSpec | None = Field(default=None, union_mode="left_to_right")
    disk: Quantity | None = None


class Egress(SpecModel):
    """Where a job's output is copied once the job finishes."""

    URL: str = Field(default="", alias="URL")
    object_storage: dict[str, Any] | None = None  # 2.x
    sql_database: dict[str, Any] | None = None  # 2.x


class Service(SpecModel):
    """A long-running service pipeline's ports."""

    internal_port: int = 0
    external_port: int = 0
    ip: str | None = None  # 2.x
    type: str | None = None  # 2.x
    annotations: dict[str, str] | None = None  # 2.x


class Spout(SpecModel):
    """A spout: code with no input that runs on and writes tar streams to /pfs/out, a named
    pipe; each stream is one commit of its output branch (1.9-1.12)."""

    overwrite: bool = False  # a file of a stream replaces the file of that path (else appends)
    service: Service | None = None  # its ports, as a service pipeline's
    marker: str = ""  # 1.10+: the spout's marker branch (not kept here)


class ChunkSpec(SpecModel):
    """How many datums (or bytes of them) a worker takes at a time."""

    number: int = 0
    size_bytes: int = 0


class SchedulingSpec(SpecModel):
    """Where Kubernetes may place the workers."""

    node_selector: dict[str, str] = Field(default_factory=dict)
    priority_class_name: str | None = None


class HashtreeSpec(SpecModel):
    """How many hashtree shards 1.7 keeps for a job's output."""

    constant: int = 0


class PipelineSpec(SpecModel):
    """One pipeline spec (1.7 ``CreatePipelineRequest``, plus the 2.x fields)."""

    pipeline: Pipeline
    description: str | None = None
    metadata: dict[str, Any] | None = None
    transform: Transform
    parallelism_spec: ParallelismSpec | None = None
    hashtree_spec: HashtreeSpec | None = None
    egress: Egress | None = None
    output_branch: str = DEFAULT_BRANCH
    scale_down_threshold: Duration = None
    resource_requests: ResourceSpec | None = None
    resource_limits: ResourceSpec | None = None
    sidecar_resource_limits: ResourceSpec | None = None
    sidecar_resource_requests: ResourceSpec | None = None
    input: Input | None = None
    cache_size: str = DEFAULT_CACHE_SIZE
    enable_stats: bool = False
    batch: bool = False
    max_queue_size: int = 1
    service: Service | None = None
    spout: Spout | None = None
    chunk_spec: ChunkSpec | None = None
    datum_set_spec: dict[str, Any] | None = None
    datum_timeout: Duration = None
    job_timeout: Duration = None
    salt: str | None = None
    standby: bool = False
    autoscaling: bool = False
    datum_tries: int = DEFAULT_DATUM_TRIES
    scheduling_spec: SchedulingSpec | None = None
    pod_spec: str | None = None
    pod_patch: str | None = None
    incremental: bool = False
    s3_out: bool = False
    reprocess_spec: str | None = None
    tf_job: dict[str, Any] | None = None
    tolerations: tuple[dict[str, Any], ...] = ()
    maximum_expected_uptime: Duration = None
    update: bool = False  # request flags that 1.7 CreatePipelineRequest carries in the spec
    reprocess: bool = False

    @field_validator("output_branch", "cache_size")
    @classmethod
    def _default_strings(cls, v: str, info: ValidationInfo) -> str:
        if not v:
            return DEFAULT_BRANCH if info.field_name == "output_branch" else DEFAULT_CACHE_SIZE
        return v

    @model_validator(mode="after")
    def _check(self) -> PipelineSpec:
        name = self.pipeline.name
        if not name:
            raise SpecProblem(
                "pipeline name cannot be empty",
                field="pipeline.name",
                hint='add "pipeline": {"name": "<name>"}',
            )
        if len(name) > MAX_PIPELINE_NAME or not _PIPELINE_NAME.match(name):
            raise SpecProblem(
                f'invalid pipeline name "{name}": only alphanumeric characters, underscores and '
                f"dashes are allowed, it must start and end with an alphanumeric character and "
                f"be at most {MAX_PIPELINE_NAME} characters long",
                field="pipeline.name",
                hint="rename the pipeline, e.g. my_pipeline-2",
            )
        if self.input is None and self.spout is None:
            raise SpecProblem(
                "pipeline must specify an input",
                field="input",
                hint='add "input": {"atom": {"repo": "<repo>", "glob": "/*"}}',
            )
        if self.spout is not None:
            self._check_spout()
        if self.input is not None:
            check_input_names(self.input, "input", set())
            check_keyed_inputs(self.input, "input")
        check_name(validate_branch_name, self.output_branch, "output_branch")
        if self.service is not None and (
            self.parallelism_spec is not None and self.parallelism_spec.constant != 1
        ):
            raise SpecProblem(
                "services can only be run with a constant parallelism of 1",
                field="parallelism_spec",
                hint='set "parallelism_spec": {"constant": 1} (or remove it)',
            )
        if self.datum_tries < 1:
            raise SpecProblem(
                f"datum_tries must be at least 1 (got {self.datum_tries})",
                field="datum_tries",
                hint="datum_tries counts attempts per datum; 3 is the default",
            )
        if not is_quantity(self.cache_size):
            raise SpecProblem(
                f"could not parse cacheSize '{self.cache_size}'",
                field="cache_size",
                hint='use a Kubernetes quantity such as "64M" or "1G"',
            )
        return self

    def _check_spout(self) -> None:
        if self.input is not None:
            raise SpecProblem(
                "spout pipelines cannot have an input",
                field="input",
                hint="remove input: a spout's code makes its data itself",
            )
        if self.service is not None:
            raise SpecProblem(
                "a spout's service goes in spout.service",
                field="service",
                hint='move it: "spout": {"service": {"internal_port": ..., "external_port": ...}}',
            )
        if self.parallelism_spec is not None and (
            self.parallelism_spec.constant not in (0, 1) or self.parallelism_spec.coefficient
        ):
            raise SpecProblem(
                "spouts can only be run with a constant parallelism of 1",
                field="parallelism_spec",
                hint='set "parallelism_spec": {"constant": 1} (or remove it)',
            )

    # -------------------------------------------------------------- derived values

    @property
    def project(self) -> str:
        """The pipeline's 2.x project (``default`` when unset)."""
        name = (self.pipeline.project or {}).get("name")
        return name if isinstance(name, str) and name else DEFAULT_PROJECT

    def in_project(self, project: str | None) -> PipelineSpec:
        """This spec in ``project`` unless it names a project of its own."""
        if not project or (self.pipeline.project or {}).get("name"):
            return self
        pipeline = self.pipeline.model_copy(update={"project": {"name": project}})
        return self.model_copy(update={"pipeline": pipeline})

    @property
    def name(self) -> str:
        """The pipeline's stored key: its name, ``<project>/<name>`` outside ``default``."""
        return qualify(self.project, self.pipeline.name)

    @property
    def datum_timeout_seconds(self) -> float | None:
        """``datum_timeout`` in seconds, or None."""
        return None if self.datum_timeout is None else parse_duration(self.datum_timeout)

    @property
    def job_timeout_seconds(self) -> float | None:
        """``job_timeout`` in seconds, or None."""
        return None if self.job_timeout is None else parse_duration(self.job_timeout)

    @property
    def scale_down_threshold_seconds(self) -> float | None:
        """``scale_down_threshold`` in seconds, or None."""
        t = self.scale_down_threshold
        return None if t is None else parse_duration(t)

    def worker_resources(self) -> dict[str, Any]:
        """What one worker asks of the executor: requests, with limits filling the gaps."""
        limits = self.resource_limits.model_dump(exclude_none=True) if self.resource_limits else {}
        requests = (
            self.resource_requests.model_dump(exclude_none=True) if self.resource_requests else {}
        )
        return {**limits, **requests}

    def worker_count(self, capacity: int) -> int:
        """1.7 ``GetExpectedNumWorkers``: constant N, or max(1, floor(coefficient × capacity))."""
        p = self.parallelism_spec
        if p is None or (not p.constant and not p.coefficient):
            return 1
        if p.constant:
            return p.constant
        return max(1, int(p.coefficient * capacity))

    def _leaves(self) -> list[Input]:
        return list(self.input.leaves()) if self.input is not None else []

    def input_names(self) -> list[str]:
        """The ``/pfs/<name>`` directories the pipeline's datums can mount, without repeats."""
        names = (leaf.leaf_name for leaf in self._leaves())
        return list(dict.fromkeys(n for n in names if n is not None))

    def input_repos(self) -> list[tuple[str, str]]:
        """Every (repo, branch) the pipeline reads, cron repos included, without repeats."""
        out: list[tuple[str, str]] = []
        for leaf in self._leaves():
            p = leaf.pfs_input
            if p is not None:
                out.append((p.repo, p.branch or DEFAULT_BRANCH))
            elif leaf.cron is not None:
                out.append((leaf.cron.repo_for(self.name), DEFAULT_BRANCH))
            elif leaf.git is not None:
                out.append((leaf.git.input_name, leaf.git.branch or DEFAULT_BRANCH))
        return list(dict.fromkeys(out))

    def cron_repos(self) -> list[str]:
        """The repos the pipeline's cron inputs tick into."""
        return [leaf.cron.repo_for(self.name) for leaf in self._leaves() if leaf.cron is not None]

    def input_shorthand(self) -> str:
        """The INPUT column of list-pipeline (``none`` for a spout)."""
        return self.input.shorthand() if self.input is not None else "none"

    def normalized(self) -> PipelineSpec:
        """What 1.7 stores: defaults filled in, cross/union children sorted by input name."""
        update: dict[str, Any] = {"max_queue_size": max(1, self.max_queue_size)}
        if self.input is not None:
            update["input"] = (
                self.input.with_projects(self.project).with_cron_repos(self.name).sorted_by_name()
            )
        if self.resource_requests is None:
            update["resource_requests"] = ResourceSpec(memory=self.cache_size)
        return self.model_copy(update=update)

    def to_dict(self) -> dict[str, Any]:
        """snake_case keys; unset, false and empty fields are left out (as 1.7's jsonpb does)."""
        return _dump(self)

    def to_json(self, indent: int | None = 2) -> str:
        """The spec as :meth:`to_dict` JSON."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Any) -> PipelineSpec:
        """Validate one decoded spec, raising :class:`InvalidSpec` for every problem."""
        where = _not_text(data)
        if where is not None:
            raise InvalidSpec(
                f"malformed pipeline spec: {where or 'a key'} holds text that is not valid "
                "Unicode (a lone surrogate such as \\udcff)",
                hint="write the character itself or its UTF-16 pair, or pass bytes through a "
                "file in a repo",
                field=where,
            )
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise to_invalid_spec(e, cls) from None


def _not_text(value: Any, where: str = "") -> str | None:
    """Where in a decoded spec a string (key or value) is not valid Unicode, as a JSON escape
    of a lone surrogate makes it; None when all are. Such text cannot be stored, nor sent to a
    worker."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return where
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{where}.{key}" if where else str(key)
            bad = _not_text(key, where) if isinstance(key, str) else None
            if bad is None:
                bad = _not_text(item, inner)
            if bad is not None:
                return bad
    elif isinstance(value, list):
        for i, item in enumerate(value):
            bad = _not_text(item, f"{where}[{i}]")
            if bad is not None:
                return bad
    return None


def _dump(model: BaseModel) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if value is None or value is False or (value == "" or value == () or value == {}):
            continue
        if type(value) in (int, float) and value == 0:  # proto3 JSON leaves zero numbers out
            continue
        if isinstance(value, BaseModel):
            value = _dump(value)
        elif isinstance(value, tuple):
            value = [_dump(v) if isinstance(v, BaseModel) else v for v in value]
        out[name] = value
    return out
