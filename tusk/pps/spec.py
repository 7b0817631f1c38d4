"""Pipeline specs: the pydantic model, its 1.7 validation rules and the one parse function.

Specs are decoded strictly (unknown fields are errors, as 1.7's ``jsonpb`` does) but accept both
``snake_case`` and ``lowerCamel`` keys, and the 2.x fields (``pfs``, ``join``, ``group``,
``cron.overwrite``, ``pod_patch``, ...) so that 2.x specs parse too. Every problem is raised as
:class:`~tusk.errors.InvalidSpec` naming the spec and the field, with a hint for the fix.
"""

from __future__ import annotations

import difflib
import json
import re
import types
import typing
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated, Any, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from tusk.errors import InvalidArgument, InvalidSpec
from tusk.pfs.glob import compile_glob
from tusk.pfs.paths import validate_branch_name, validate_repo_name

DEFAULT_IMAGE = "ubuntu:16.04"
DEFAULT_BRANCH = "master"
DEFAULT_CACHE_SIZE = "64M"
DEFAULT_DATUM_TRIES = 3
MAX_PIPELINE_NAME = 50

_PIPELINE_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?$")
_QUANTITY = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+|[KMGTPE]i|[numkMGTPE])?$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_INPUT_KINDS = ("atom", "pfs", "cross", "union", "cron", "join", "group", "git")
_INPUT_HINT = (
    "each input object takes exactly one of atom, pfs, cross, union, cron, join, group or git; "
    'combine several with "cross" or "union"'
)


class _SpecProblem(ValueError):
    """A validation failure that knows its field path (relative to where it is raised) and fix."""

    def __init__(self, message: str, *, field: str = "", hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.hint = hint


# ------------------------------------------------------------------------------ scalar rules


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string (``"300ms"``, ``"1h30m"``, ``"-5s"``, ``"0"``)."""
    s = text.strip()
    sign = -1.0 if s.startswith("-") else 1.0
    body = s[1:] if s[:1] in "+-" else s
    if body == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(body):
        m = _DURATION_PART.match(body, pos)
        if m is None:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if not body or pos != len(body):
        raise ValueError(f'invalid duration "{text}"')
    return sign * total


def _duration(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _SpecProblem(
            f"expected a duration string, got {value!r}",
            hint='write durations as Go duration strings, e.g. "30s", "5m", "1h30m"',
        )
    try:
        seconds = parse_duration(value)
    except ValueError as e:
        raise _SpecProblem(
            str(e), hint='write durations as Go duration strings, e.g. "30s", "5m", "1h30m"'
        ) from None
    if seconds < 0:
        raise _SpecProblem(f'duration "{value}" is negative', hint="use a positive duration")
    return value


def _quantity(value: Any) -> int | float | str:
    # Resource amounts are kept exactly as given (1.7 takes cpu as a float, memory as a string).
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _SpecProblem(
            f"expected a number or a quantity string, got {value!r}",
            hint='e.g. "cpu": 0.5, "memory": "64M", "disk": "1G"',
        )
    return value


Duration = Annotated[str | None, PlainValidator(_duration)]
Quantity = Annotated[int | float | str, PlainValidator(_quantity)]

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CRON_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (  # as robfig ParseStandard
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 6, _WEEKDAYS),
)
_CRON_DESCRIPTORS = {
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
}


def validate_cron_spec(spec: str) -> str:
    """Check a cron schedule the way robfig/cron's ``ParseStandard`` does; return it unchanged."""
    text = spec.strip()
    if text.startswith("@every"):
        arg = text[len("@every") :].strip()
        try:
            every = parse_duration(arg)
        except ValueError as e:
            raise ValueError(f'failed to parse duration "@every {arg}": {e}') from None
        if every <= 0:
            raise ValueError(f'"@every {arg}" must be a positive duration')
        return spec
    if text.startswith("@"):
        if text not in _CRON_DESCRIPTORS:
            raise ValueError(f"unrecognized descriptor: {text}")
        return spec
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"expected exactly 5 fields, found {len(fields)}: {text}")
    for part, (what, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        for expr in part.split(","):
            _check_cron_range(expr, what, low, high, names)
    return spec


def _check_cron_range(expr: str, what: str, low: int, high: int, names: tuple[str, ...]) -> None:
    def value(tok: str) -> int:
        if tok.lower() in names:
            return names.index(tok.lower()) + low
        if not tok.isdigit():
            raise ValueError(f"failed to parse {what} {tok!r} in {expr!r}")
        return int(tok)

    rng, _, step = expr.partition("/")
    if step and (not step.isdigit() or int(step) == 0):
        raise ValueError(f"invalid step {step!r} in {what} {expr!r}")
    if rng in ("*", "?"):
        return
    first, _, last = rng.partition("-")
    start = value(first)
    end = value(last) if last else start
    if start < low or end > high or start > end:
        raise ValueError(f"{what} {expr!r} is out of range ({low}-{high})")


def _check_glob(glob: str) -> None:
    try:
        compile_glob(glob)
    except InvalidArgument as e:
        raise _SpecProblem(e.message, field="glob", hint=e.hint) from None


def _check_name(check: Callable[[str], str], value: str, field: str) -> None:
    try:
        check(value)
    except InvalidArgument as e:
        raise _SpecProblem(e.message, field=field, hint=e.hint) from None


# ------------------------------------------------------------------------------ models


class _Spec(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        loc_by_alias=False,
    )


class Pipeline(_Spec):
    name: str = ""
    project: dict[str, Any] | None = None  # 2.5+


class Secret(_Spec):
    name: str = ""
    mount_path: str | None = None
    env_var: str | None = None
    key: str | None = None


class Transform(_Spec):
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
            raise _SpecProblem(
                "no cmd set", field="cmd", hint='set "transform": {"cmd": ["program", "arg", ...]}'
            )
        return self


class ParallelismSpec(_Spec):
    constant: int = 0  # a uint; jsonpb also accepts it quoted ("10")
    coefficient: float = 0.0

    @model_validator(mode="after")
    def _consistent(self) -> ParallelismSpec:
        if self.constant < 0:
            raise _SpecProblem(
                f"ParallelismSpec.Constant must not be negative (got {self.constant})",
                field="constant",
                hint="use a worker count of 1 or more",
            )
        if self.coefficient < 0:
            raise _SpecProblem(
                f"ParallelismSpec.Coefficient must not be negative (got {self.coefficient})",
                field="coefficient",
                hint="use a positive fraction of the cluster's capacity, e.g. 0.5",
            )
        if self.constant and self.coefficient:
            raise _SpecProblem(
                "contradictory parallelism strategies: must set at most one of "
                "ParallelismSpec.Constant and ParallelismSpec.Coefficient",
                hint='remove either "constant" or "coefficient"',
            )
        return self


class GPUSpec(_Spec):  # 2.x
    type: str = ""
    number: int = 0


class ResourceSpec(_Spec):
    memory: Quantity | None = None
    cpu: Quantity | None = None
    gpu: int | GPUSpec | None = Field(default=None, union_mode="left_to_right")
    disk: Quantity | None = None


class Egress(_Spec):
    URL: str = Field(default="", alias="URL")
    object_storage: dict[str, Any] | None = None  # 2.x
    sql_database: dict[str, Any] | None = None  # 2.x


class Service(_Spec):
    internal_port: int = 0
    external_port: int = 0
    ip: str | None = None  # 2.x
    type: str | None = None  # 2.x


class ChunkSpec(_Spec):
    number: int = 0
    size_bytes: int = 0


class SchedulingSpec(_Spec):
    node_selector: dict[str, str] = Field(default_factory=dict)
    priority_class_name: str | None = None


class HashtreeSpec(_Spec):
    constant: int = 0


class PFSInput(_Spec):
    """``atom`` (1.7) or ``pfs`` (2.x): files of one repo branch, cut into datums by ``glob``."""

    name: str = ""
    repo: str = ""
    branch: str = ""
    glob: str = ""
    lazy: bool = False
    empty_files: bool = False
    # 2.x
    join_on: str | None = None
    group_by: str | None = None
    outer_join: bool = False
    repo_type: str | None = None
    commit: str | None = None
    s3: bool = False
    trigger: dict[str, Any] | None = None
    project: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            if not data.get("name") and data.get("repo"):
                data["name"] = data["repo"]
            if not data.get("branch"):
                data["branch"] = DEFAULT_BRANCH
        return data

    @model_validator(mode="after")
    def _check(self) -> PFSInput:
        if not self.repo:
            raise _SpecProblem(
                "input must specify a repo", field="repo", hint='add "repo": "<input repo>"'
            )
        _check_name(validate_repo_name, self.repo, "repo")
        _check_name(validate_branch_name, self.branch, "branch")
        _check_input_name(self.name)
        if not self.glob:
            raise _SpecProblem(
                "input must specify a glob",
                field="glob",
                hint='add "glob": "/" (whole repo as one datum) or "/*" (one datum per top entry)',
            )
        _check_glob(self.glob)
        return self


class CronInput(_Spec):
    """Ticks: a repo whose ``/time`` file is rewritten on each tick of ``spec``."""

    name: str = ""
    spec: str = ""
    repo: str = ""
    start: str | None = None
    overwrite: bool = False  # 2.x; 1.7 always overwrites
    project: str | None = None

    @field_validator("start", mode="before")
    @classmethod
    def _timestamp(cls, v: Any) -> Any:
        if isinstance(v, datetime):
            return v.isoformat()
        if isinstance(v, str):
            try:
                datetime.fromisoformat(v)
            except ValueError:
                raise _SpecProblem(
                    f'invalid timestamp "{v}"', hint='use RFC 3339, e.g. "2018-05-01T00:00:00Z"'
                ) from None
        return v

    @model_validator(mode="after")
    def _check(self) -> CronInput:
        if not self.name:
            raise _SpecProblem("input must specify a name", field="name", hint='add "name": "tick"')
        _check_input_name(self.name)
        if not self.spec:
            raise _SpecProblem(
                "cron input must specify a spec", field="spec", hint='e.g. "spec": "@every 10s"'
            )
        try:
            validate_cron_spec(self.spec)
        except ValueError as e:
            raise _SpecProblem(
                str(e),
                field="spec",
                hint='use 5 cron fields ("*/5 * * * *"), "@every 10s", "@hourly" or "@daily"',
            ) from None
        if self.repo:
            _check_name(validate_repo_name, self.repo, "repo")
        return self

    def repo_for(self, pipeline: str) -> str:
        """The repo the ticks are written to: ``repo``, else ``<pipeline>_<name>``."""
        return self.repo or f"{pipeline}_{self.name}"


class GitInput(_Spec):
    URL: str = Field(default="", alias="URL")
    name: str = ""
    branch: str = ""

    @model_validator(mode="after")
    def _check(self) -> GitInput:
        if not self.URL:
            raise _SpecProblem("git input must specify a URL", field="URL")
        _check_input_name(self.input_name)
        return self

    @property
    def input_name(self) -> str:
        return self.name or self.URL.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")


def _check_input_name(name: str) -> None:
    if name == "out":
        raise _SpecProblem(
            'input cannot be named "out", as pachyderm already creates /pfs/out to collect job '
            "output",
            field="name",
            hint='give the input another "name"',
        )
    if "/" in name:
        raise _SpecProblem(
            f'input name "{name}" cannot contain "/"', field="name", hint="use a plain name"
        )


class Input(_Spec):
    """Exactly one input kind; cross, union, join and group nest further inputs."""

    atom: PFSInput | None = None
    pfs: PFSInput | None = None
    cross: tuple[Input, ...] | None = None
    union: tuple[Input, ...] | None = None
    cron: CronInput | None = None
    join: tuple[Input, ...] | None = None
    group: tuple[Input, ...] | None = None
    git: GitInput | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Input:
        kinds = [k for k in _INPUT_KINDS if getattr(self, k) is not None]
        if len(kinds) > 1:
            raise _SpecProblem("multiple input types set", hint=_INPUT_HINT)
        if not kinds:
            raise _SpecProblem("no input set", hint=_INPUT_HINT)
        children = self.children
        if children is not None and not children:
            raise _SpecProblem(
                f"{kinds[0]} input must contain at least one input",
                field=kinds[0],
                hint=f'list the inputs to {kinds[0]}, or remove the "{kinds[0]}" block',
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in _INPUT_KINDS if getattr(self, k) is not None)

    @property
    def pfs_input(self) -> PFSInput | None:
        """The ``atom`` or ``pfs`` block, whichever is set."""
        return self.atom or self.pfs

    @property
    def children(self) -> tuple[Input, ...] | None:
        for kids in (self.cross, self.union, self.join, self.group):
            if kids is not None:
                return kids
        return None

    @property
    def leaf_name(self) -> str | None:
        """The ``/pfs/<name>`` a leaf input mounts; None for cross/union/join/group."""
        p = self.pfs_input
        if p is not None:
            return p.name
        if self.cron is not None:
            return self.cron.name
        if self.git is not None:
            return self.git.input_name
        return None

    def sort_name(self) -> str:
        """1.7 ``pps.InputName``: a leaf's name, else its first child's."""
        if self.leaf_name is not None:
            return self.leaf_name
        kids = self.children
        return kids[0].sort_name() if kids else ""

    def leaves(self) -> Iterator[Input]:
        kids = self.children
        if kids is None:
            yield self
            return
        for kid in kids:
            yield from kid.leaves()

    def sorted_by_name(self) -> Input:
        """A copy with cross and union children sorted by input name (1.7 ``pps.SortInput``)."""
        kids = self.children
        if kids is None:
            return self
        new = [k.sorted_by_name() for k in kids]
        if self.cross is not None or self.union is not None:
            new.sort(key=lambda k: k.sort_name())
        return self.model_copy(update={self.kind: tuple(new)})

    def with_cron_repos(self, pipeline: str) -> Input:
        if self.cron is not None:
            cron = self.cron.model_copy(update={"repo": self.cron.repo_for(pipeline)})
            return self.model_copy(update={"cron": cron})
        kids = self.children
        if kids is None:
            return self
        return self.model_copy(update={self.kind: tuple(k.with_cron_repos(pipeline) for k in kids)})

    def shorthand(self) -> str:
        """The INPUT column of list-pipeline: ``repo:glob``, ``(a ⨯ b)``, ``(a ∪ b)``."""
        p = self.pfs_input
        if p is not None:
            return f"{p.repo}:{p.glob}"
        if self.cron is not None:
            return f"{self.cron.name}:{self.cron.spec}"
        if self.git is not None:
            return f"{self.git.input_name}:{self.git.URL}"
        sep = {"cross": " ⨯ ", "union": " ∪ ", "join": " ⋈ ", "group": ", "}[self.kind]
        inner = sep.join(k.shorthand() for k in self.children or ())
        return f"group({inner})" if self.group is not None else f"({inner})"


def _check_names(inp: Input, path: str, seen: set[str]) -> None:
    """1.7 ``validateNames``: names are shared across cross (and join/group) siblings; union
    siblings may reuse a name, but what a union exposes may not collide with its neighbours."""
    name = inp.leaf_name
    if name is not None:
        if name in seen:
            raise _SpecProblem(
                f'name "{name}" was used more than once',
                field=f"{path}.{inp.kind}.name",
                hint='give one of the inputs a distinct "name" (inputs from the same repo need '
                "one each)",
            )
        seen.add(name)
        return
    kids = inp.children or ()
    if inp.union is None:
        for i, kid in enumerate(kids):
            _check_names(kid, f"{path}.{inp.kind}[{i}]", seen)
        return
    exposed: set[str] = set()
    for i, kid in enumerate(kids):
        branch_seen = set(seen)
        _check_names(kid, f"{path}.union[{i}]", branch_seen)
        exposed |= branch_seen
    seen |= exposed


class PipelineSpec(_Spec):
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
    spout: dict[str, Any] | None = None
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
            raise _SpecProblem(
                "pipeline name cannot be empty",
                field="pipeline.name",
                hint='add "pipeline": {"name": "<name>"}',
            )
        if len(name) > MAX_PIPELINE_NAME or not _PIPELINE_NAME.match(name):
            raise _SpecProblem(
                f'invalid pipeline name "{name}": only alphanumeric characters, underscores and '
                f"dashes are allowed, it must start and end with an alphanumeric character and "
                f"be at most {MAX_PIPELINE_NAME} characters long",
                field="pipeline.name",
                hint="rename the pipeline, e.g. my_pipeline-2",
            )
        if self.input is None and self.spout is None:
            raise _SpecProblem(
                "pipeline must specify an input",
                field="input",
                hint='add "input": {"atom": {"repo": "<repo>", "glob": "/*"}}',
            )
        if self.input is not None:
            _check_names(self.input, "input", set())
        _check_name(validate_branch_name, self.output_branch, "output_branch")
        if self.service is not None and (
            self.parallelism_spec is not None and self.parallelism_spec.constant != 1
        ):
            raise _SpecProblem(
                "services can only be run with a constant parallelism of 1",
                field="parallelism_spec",
                hint='set "parallelism_spec": {"constant": 1} (or remove it)',
            )
        if self.datum_tries < 1:
            raise _SpecProblem(
                f"datum_tries must be at least 1 (got {self.datum_tries})",
                field="datum_tries",
                hint="datum_tries counts attempts per datum; 3 is the default",
            )
        if not _QUANTITY.match(self.cache_size):
            raise _SpecProblem(
                f"could not parse cacheSize '{self.cache_size}'",
                field="cache_size",
                hint='use a Kubernetes quantity such as "64M" or "1G"',
            )
        return self

    # -------------------------------------------------------------- derived values

    @property
    def name(self) -> str:
        return self.pipeline.name

    @property
    def datum_timeout_seconds(self) -> float | None:
        return None if self.datum_timeout is None else parse_duration(self.datum_timeout)

    @property
    def job_timeout_seconds(self) -> float | None:
        return None if self.job_timeout is None else parse_duration(self.job_timeout)

    @property
    def scale_down_threshold_seconds(self) -> float | None:
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
        return [leaf.cron.repo_for(self.name) for leaf in self._leaves() if leaf.cron is not None]

    def input_shorthand(self) -> str:
        return self.input.shorthand() if self.input is not None else "none"

    def normalized(self) -> PipelineSpec:
        """What 1.7 stores: defaults filled in, cross/union children sorted by input name."""
        update: dict[str, Any] = {"max_queue_size": max(1, self.max_queue_size)}
        if self.input is not None:
            update["input"] = self.input.with_cron_repos(self.name).sorted_by_name()
        if self.resource_requests is None:
            update["resource_requests"] = ResourceSpec(memory=self.cache_size)
        return self.model_copy(update=update)

    def to_dict(self) -> dict[str, Any]:
        """snake_case keys; unset, false and empty fields are left out (as 1.7's jsonpb does)."""
        return _dump(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Any) -> PipelineSpec:
        """Validate one decoded spec, raising :class:`InvalidSpec` for every problem."""
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise _to_invalid_spec(e) from None


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


# ------------------------------------------------------------------------------ errors


def _model_at(path: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model class a (field-name) error location points into."""
    cls: type[BaseModel] | None = PipelineSpec
    for seg in path:
        if isinstance(seg, int) or cls is None:
            continue
        field = cls.model_fields.get(seg)
        cls = _model_in(field.annotation) if field is not None else None
    return cls


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (Union, types.UnionType, tuple, list):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _is_union_tag(seg: str | int) -> bool:
    """Pydantic puts union member names (``int``, ``GPUSpec``) into error locations."""
    if isinstance(seg, int):
        return False
    return seg in ("int", "float", "str", "bool") or (seg[:1].isupper() and seg != "URL")


def _format_loc(loc: tuple[str | int, ...]) -> str:
    out = ""
    for seg in loc:
        if isinstance(seg, int):
            out += f"[{seg}]"
        elif _is_union_tag(seg):
            continue
        else:
            out += f".{seg}" if out else seg
    return out


def _join(base: str, rel: str) -> str:
    if not rel:
        return base
    if not base:
        return rel
    return base + rel if rel.startswith("[") else f"{base}.{rel}"


def _to_invalid_spec(exc: ValidationError) -> InvalidSpec:
    errors = exc.errors()
    # A misspelt key also makes the real one "missing"; the misspelling is the news.
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(err["loc"])
    rest = len(errors) - 1
    if err["type"] == "extra_forbidden":
        rest = sum(e["type"] != "missing" for e in errors) - 1
    more = f" (and {rest} more problem{'s' if rest > 1 else ''})" if rest else ""
    if err["type"] == "extra_forbidden":
        key = str(loc[-1])
        parent = _format_loc(loc[:-1])
        cls = _model_at(tuple(s for s in loc[:-1] if not _is_union_tag(s)))
        known: list[str] = []
        if cls is not None:
            for fname, finfo in cls.model_fields.items():
                known += [fname] + ([finfo.alias] if finfo.alias else [])
        close = difflib.get_close_matches(key, known, n=1)
        where = f" in {parent}" if parent else ""
        return InvalidSpec(
            f'malformed pipeline spec: unknown field "{key}"{where}{more}',
            hint=f'did you mean "{close[0]}"?' if close else "remove the field",
            field=_join(parent, key),
        )
    ctx = err.get("ctx") or {}
    problem = ctx.get("error")
    field = _format_loc(loc)
    if isinstance(problem, _SpecProblem):
        field = _join(field, problem.field)
        msg = f"{field}: {problem.message}" if field else problem.message
        return InvalidSpec(f"invalid pipeline spec: {msg}{more}", hint=problem.hint, field=field)
    if err["type"] in ("model_type", "model_attributes_type") and not loc:
        return InvalidSpec(
            "malformed pipeline spec: expected an object",
            hint="a spec is a JSON object or YAML mapping",
        )
    text = err["msg"]
    if err["type"] == "missing":
        text = "missing required field"
    return InvalidSpec(
        f"malformed pipeline spec: {field}: {text}{more}" if field else f"malformed spec: {text}",
        hint="check the field against the pipeline spec reference",
        field=field,
    )


# ------------------------------------------------------------------------------ parsing


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps timestamps as strings (``start`` is an RFC 3339 string)."""


_Loader.yaml_implicit_resolvers = {
    ch: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


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
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise InvalidSpec(
            f"{source}: malformed pipeline spec: invalid YAML{where}: {problem}",
            hint="check the indentation; separate several specs with a line of ---",
            source=source,
        ) from None


def parse_specs(text: str, source: str) -> list[PipelineSpec]:
    """Every spec in ``text``: JSON objects back to back, or YAML documents split by ``---``."""
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        docs = _json_documents(text, source)
    else:
        docs = _yaml_documents(text, source)
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
            name = _raw_name(doc)
            which = f"{source}: spec {i + 1}" + (f' (pipeline "{name}")' if name else "")
            raise InvalidSpec(
                f"{which}: {e.message}",
                hint=e.hint,
                **{**e.fields, "source": source, "index": i, "pipeline": name},
            ) from None
    return specs


def _raw_name(doc: Any) -> str | None:
    if isinstance(doc, dict) and isinstance(doc.get("pipeline"), dict):
        name = doc["pipeline"].get("name")
        return name if isinstance(name, str) and name else None
    return None
