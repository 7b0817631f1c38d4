"""A pipeline's code: which runtime runs it here, and the image (with its digest) each job ran.

The server picks the runtime once (``TUSK_RUNTIME``: auto, bwrap, podman, docker or host). With
no usable runtime create-pipeline refuses, naming the reason and the fix; there is no silent
fallback to running user code on the host.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from tusk.errors import InvalidArgument
from tusk.pps.spec import PipelineSpec
from tusk.worker.runtimes import (
    DEFAULT_IMAGE,
    ImageNotFound,
    RuntimeUnavailable,
    cgroups,
    choose,
    gpus,
    image_digest,
)


@dataclass(frozen=True, slots=True)
class Provenance:
    """What a job records about its code."""

    image: str
    image_digest: str
    runtime: str


def image_of(spec: PipelineSpec) -> str:
    """The image a pipeline's datums run in (Pachyderm 1.7's ``ubuntu:16.04`` when it names none)."""
    return spec.transform.image or DEFAULT_IMAGE


class CodeRuntime:
    """The runtime this server runs pipelines with, chosen on first use and kept."""

    def __init__(
        self, choice: str = "auto", sandbox_uid: int | None = None, gpu_devices: str = "/dev"
    ) -> None:
        self.choice = choice
        self.sandbox_uid = sandbox_uid
        self.gpu_devices = gpu_devices  # where the host's GPU device nodes are
        self._name: str | None = None
        self._problem: str | None = None
        self._lock = threading.Lock()

    def name(self) -> str:
        """The runtime's name; InvalidArgument with the reason and the fix when there is none."""
        with self._lock:
            if self._name is None and self._problem is None:
                try:
                    if self.sandbox_uid is None:
                        self._name = choose(self.choice)
                    else:
                        self._name = choose(self.choice, self.sandbox_uid)
                except RuntimeUnavailable as e:
                    self._problem = str(e)
            if self._name is None:
                raise InvalidArgument(
                    f"cannot run pipelines: {self._problem}",
                    hint="install podman and bubblewrap, or start the server with TUSK_RUNTIME=host",
                )
            return self._name

    def chosen(self) -> str | None:
        """The runtime's name, None when there is none (``name`` says why)."""
        try:
            return self.name()
        except InvalidArgument:
            return None

    def check(self, spec: PipelineSpec) -> list[str]:
        """What create-pipeline says about the spec's code (refuses when nothing can run it, or
        when it asks for more GPUs than the server has)."""
        runtime = self.name()
        self._check_gpus(spec)
        image = image_of(spec)
        if runtime == "host":  # every job records it, and inspect-job shows it
            return []
        warnings = []
        limits = spec.resource_limits
        if runtime == "bwrap" and limits and (limits.cpu or limits.memory):
            problem = cgroups.problem()
            if problem is not None:
                warnings.append(
                    f"resource_limits cpu and memory cannot be enforced here ({problem}): "
                    "memory is limited as address space (RLIMIT_AS) and cpu not at all; fix: "
                    f"{cgroups.FIX}, or TUSK_RUNTIME=podman"
                )
        try:
            image_digest(image)
        except ImageNotFound:
            warnings.append(
                f"image {image} not found: its jobs will fail until it is built or loaded "
                "(podman build -t ..., or podman load)"
            )
        return warnings

    def _check_gpus(self, spec: PipelineSpec) -> None:
        for resources in (spec.resource_limits, spec.resource_requests):
            if resources is not None and resources.gpu is not None:
                kind, number = gpus.requested(resources.gpu)
                try:
                    gpus.check(kind, number, self.gpu_devices)
                except gpus.GpuUnavailable as e:
                    raise InvalidArgument(
                        f"cannot run pipeline {spec.pipeline.name}: {e}",
                        hint="lower or remove resource_limits.gpu and resource_requests.gpu",
                    ) from None

    def provenance(self, spec: PipelineSpec) -> Provenance:
        """The image, its digest now, and the runtime of a job starting now.

        Raises ImageNotFound when the image is not there (the job fails with that reason).
        """
        runtime = self.name()
        image = image_of(spec)
        if runtime == "host":
            return Provenance(image, "", runtime)
        return Provenance(image, image_digest(image), runtime)


def check_choice(choice: str) -> str:
    """``choice`` if it names a runtime, else InvalidArgument."""
    from tusk.worker.runtimes import RUNTIMES

    if choice not in RUNTIMES:
        raise InvalidArgument(
            f"unknown runtime {choice!r} (TUSK_RUNTIME)", hint="use one of " + ", ".join(RUNTIMES)
        )
    return choice
