"""Pipeline inputs: the leaf kinds (``atom``/``pfs``, ``cron``, ``git``), the :class:`Input` tree
that ``cross``, ``union``, ``join`` and ``group`` build from them, 1.7's rule for input names,
and the INPUT-column shorthand (``repo:glob``, ``(a ⨯ b)``) that list-pipeline shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from pydantic import Field, field_validator, model_validator

from tusk.api.projects import bare, qualify
from tusk.errors import InvalidArgument
from tusk.pfs.glob import compile_glob
from tusk.pfs.paths import validate_branch_name, validate_repo_name
from tusk.pps.spec.base import DEFAULT_BRANCH, SpecModel, SpecProblem, check_glob, check_name
from tusk.pps.spec.units import validate_cron_spec

_INPUT_KINDS = ("atom", "pfs", "cross", "union", "cron", "join", "group", "git")
_INPUT_HINT = (
    "each input object takes exactly one of atom, pfs, cross, union, cron, join, group or git; "
    'combine several with "cross" or "union"'
)


class PFSInput(SpecModel):
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
                data["name"] = bare(str(data["repo"]))  # a repo of a project: /pfs/<repo>
            if not data.get("branch"):
                data["branch"] = DEFAULT_BRANCH
        return data

    @model_validator(mode="after")
    def _check(self) -> PFSInput:
        if not self.repo:
            raise SpecProblem(
                "input must specify a repo", field="repo", hint='add "repo": "<input repo>"'
            )
        check_name(validate_repo_name, bare(self.repo), "repo")
        check_name(validate_branch_name, self.branch, "branch")
        _check_input_name(self.name)
        if not self.glob:
            raise SpecProblem(
                "input must specify a glob",
                field="glob",
                hint='add "glob": "/" (whole repo as one datum) or "/*" (one datum per top entry)',
            )
        check_glob(self.glob)
        if self.outer_join and not self.join_on:
            raise SpecProblem(
                "outer_join only applies to an input with join_on (a child of a join)",
                field="outer_join",
                hint='add "join_on": "$1" (and put the input in a "join"), or remove "outer_join"',
            )
        for field in ("join_on", "group_by"):
            template = getattr(self, field)
            if template is not None:
                self._check_key(field, template)
        return self

    def _check_key(self, field: str, template: str) -> None:
        """A ``join_on``/``group_by`` must name capture groups the glob has."""
        example = "/(*).txt" if field == "join_on" else "/(*)-*.csv"
        if not template:
            raise SpecProblem(
                f"{field} is empty",
                field=field,
                hint=f'name the glob\'s capture groups, e.g. "glob": "{example}", "{field}": "$1"',
            )
        try:
            groups = compile_glob(self.glob, True).regex.groups
        except InvalidArgument as e:
            raise SpecProblem(e.message, field="glob", hint=e.hint) from None
        refs = [int(a or b) for a, b in re.findall(r"\$(?:\{(\d+)\}|(\d+))", template)]
        if not refs:
            raise SpecProblem(
                f'{field} "{template}" names no capture group of the glob',
                field=field,
                hint=f'use $1, $2, ... for the glob\'s parenthesised parts, e.g. "glob": '
                f'"{example}", "{field}": "$1"',
            )
        bad = [n for n in refs if n < 1 or n > groups]
        if bad:
            has = f"only {groups}" if groups else "none"
            if bad[0] < 1:
                has += " (they count from $1)"
            raise SpecProblem(
                f'{field} "{template}" uses capture group ${bad[0]}, but glob "{self.glob}" has '
                f"{has}",
                field=field,
                hint="put parentheses around each part of the glob the key is made of, e.g. "
                f'"glob": "{example}"',
            )


class CronInput(SpecModel):
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
                raise SpecProblem(
                    f'invalid timestamp "{v}"', hint='use RFC 3339, e.g. "2018-05-01T00:00:00Z"'
                ) from None
        return v

    @model_validator(mode="after")
    def _check(self) -> CronInput:
        if not self.name:
            raise SpecProblem("input must specify a name", field="name", hint='add "name": "tick"')
        _check_input_name(self.name)
        if not self.spec:
            raise SpecProblem(
                "cron input must specify a spec", field="spec", hint='e.g. "spec": "@every 10s"'
            )
        try:
            validate_cron_spec(self.spec)
        except ValueError as e:
            raise SpecProblem(
                str(e),
                field="spec",
                hint='use 5 cron fields ("*/5 * * * *"), "@every 10s", "@hourly" or "@daily"',
            ) from None
        if self.repo:
            check_name(validate_repo_name, bare(self.repo), "repo")
        return self

    def repo_for(self, pipeline: str) -> str:
        """The repo the ticks are written to: ``repo``, else ``<pipeline>_<name>``."""
        return self.repo or f"{pipeline}_{self.name}"


class GitInput(SpecModel):
    """``git`` (2.x): a git repository as input, named after it unless ``name`` is set."""

    URL: str = Field(default="", alias="URL")
    name: str = ""
    branch: str = ""

    @model_validator(mode="after")
    def _check(self) -> GitInput:
        if not self.URL:
            raise SpecProblem("git input must specify a URL", field="URL")
        _check_input_name(self.input_name)
        return self

    @property
    def input_name(self) -> str:
        """The input's name: ``name``, else the repository's name from the URL."""
        return self.name or self.URL.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")


def _check_input_name(name: str) -> None:
    if name == "out":
        raise SpecProblem(
            'input cannot be named "out", as pachyderm already creates /pfs/out to collect job '
            "output",
            field="name",
            hint='give the input another "name"',
        )
    if "/" in name:
        raise SpecProblem(
            f'input name "{name}" cannot contain "/"', field="name", hint="use a plain name"
        )


class Input(SpecModel):
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
            raise SpecProblem("multiple input types set", hint=_INPUT_HINT)
        if not kinds:
            raise SpecProblem("no input set", hint=_INPUT_HINT)
        children = self.children
        if children is not None and not children:
            raise SpecProblem(
                f"{kinds[0]} input must contain at least one input",
                field=kinds[0],
                hint=f'list the inputs to {kinds[0]}, or remove the "{kinds[0]}" block',
            )
        return self

    @property
    def kind(self) -> str:
        """Which kind of input this is: ``atom``, ``pfs``, ``cross``, ``union``, ..."""
        return next(k for k in _INPUT_KINDS if getattr(self, k) is not None)

    @property
    def pfs_input(self) -> PFSInput | None:
        """The ``atom`` or ``pfs`` block, whichever is set."""
        return self.atom or self.pfs

    @property
    def children(self) -> tuple[Input, ...] | None:
        """The nested inputs of a cross, union, join or group; None for a leaf."""
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
        """The leaf inputs of this tree, depth first."""
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

    def with_projects(self, project: str) -> Input:
        """A copy whose PFS and cron inputs name their repos by stored key: a repo of another
        project than ``default`` as ``<project>/<repo>`` (its own ``project``, else the
        pipeline's)."""
        p = self.pfs_input
        if p is not None:
            repo = qualify(p.project or project, p.repo)
            return self.model_copy(update={self.kind: p.model_copy(update={"repo": repo})})
        if self.cron is not None:
            if not self.cron.repo:
                return self
            repo = qualify(self.cron.project or project, self.cron.repo)
            return self.model_copy(update={"cron": self.cron.model_copy(update={"repo": repo})})
        kids = self.children
        if kids is None:
            return self
        return self.model_copy(update={self.kind: tuple(k.with_projects(project) for k in kids)})

    def with_cron_repos(self, pipeline: str) -> Input:
        """A copy whose cron inputs name their repo (``<pipeline>_<name>`` unless set)."""
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


def check_keyed_inputs(inp: Input, path: str, under: frozenset[str] = frozenset()) -> None:
    """2.x join and group: every input under a ``join`` needs ``join_on`` and under a ``group``
    needs ``group_by`` (the key is made of its glob's capture groups); cron and git inputs have
    no such key, and a key outside a join/group would mean nothing."""
    kind = inp.kind
    p = inp.pfs_input
    if p is not None:
        for op, field, example in (("join", "join_on", "$1"), ("group", "group_by", "$1")):
            value = getattr(p, field)
            if op in under and not value:
                raise SpecProblem(
                    f"an input of a {op} must set {field}",
                    field=f"{path}.{kind}.{field}",
                    hint=f'put parentheses around the part of the glob to match on, e.g. "glob": '
                    f'"/(*).txt", and add "{field}": "{example}"',
                )
            if op not in under and value is not None:
                raise SpecProblem(
                    f"{field} only applies to an input inside a {op}",
                    field=f"{path}.{kind}.{field}",
                    hint=f'put the inputs to match in a "{op}": [...], or remove "{field}"',
                )
        return
    if inp.cron is not None or inp.git is not None:
        ops = sorted(under)
        if ops:
            raise SpecProblem(
                f"a {kind} input cannot be part of a {ops[0]}: it has no glob to take a key from",
                field=f"{path}.{kind}",
                hint=f'cross it with the {ops[0]} instead: "cross": [{{"{ops[0]}": [...]}}, '
                f'{{"{kind}": ...}}]',
            )
        return
    inner = under | {kind} if kind in ("join", "group") else under
    for i, kid in enumerate(inp.children or ()):
        check_keyed_inputs(kid, f"{path}.{kind}[{i}]", inner)


def check_input_names(inp: Input, path: str, seen: set[str]) -> None:
    """1.7 ``validateNames``: names are shared across cross (and join/group) siblings; union
    siblings may reuse a name, but what a union exposes may not collide with its neighbours."""
    name = inp.leaf_name
    if name is not None:
        if name in seen:
            raise SpecProblem(
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
            check_input_names(kid, f"{path}.{inp.kind}[{i}]", seen)
        return
    exposed: set[str] = set()
    for i, kid in enumerate(kids):
        branch_seen = set(seen)
        check_input_names(kid, f"{path}.union[{i}]", branch_seen)
        exposed |= branch_seen
    seen |= exposed
