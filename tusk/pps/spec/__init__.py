"""Pipeline specs: the typed model, its 1.7 validation rules and the one parse function.

- :mod:`~tusk.pps.spec.units`: Go durations, Kubernetes quantities, cron schedules.
- :mod:`~tusk.pps.spec.base`: the base model, the problem validators raise, shared field checks.
- :mod:`~tusk.pps.spec.inputs`: input kinds, the input tree and its INPUT-column shorthand.
- :mod:`~tusk.pps.spec.models`: :class:`PipelineSpec` and its other parts.
- :mod:`~tusk.pps.spec.errors`: validation errors as :class:`~tusk.errors.InvalidSpec`.
- :mod:`~tusk.pps.spec.parse`: spec text (one or several documents) to specs.
"""

from tusk.pps.spec.inputs import CronInput, GitInput, Input, PFSInput
from tusk.pps.spec.models import PipelineSpec
from tusk.pps.spec.parse import parse_specs, pipeline_name_of, split_documents
from tusk.pps.spec.units import (
    parse_duration,
    parse_quantity,
    validate_cron_spec,
)

__all__ = [
    "CronInput",
    "GitInput",
    "Input",
    "PFSInput",
    "PipelineSpec",
    "parse_duration",
    "parse_quantity",
    "parse_specs",
    "pipeline_name_of",
    "split_documents",
    "validate_cron_spec",
]
