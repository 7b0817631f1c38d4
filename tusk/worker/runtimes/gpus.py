"""GPUs: which the host has, and how a sandbox gets the ones its spec asks for.

NVIDIA GPUs show as device nodes ``/dev/nvidia0``, ``/dev/nvidia1`` ... plus the driver's shared
nodes (``nvidiactl``, ``nvidia-uvm``, ``nvidia-uvm-tools``, ``nvidia-modeset``) that every
process using a GPU needs. A sandbox that asks for N GPUs gets the first N numbered nodes and the
shared ones (bwrap ``--dev-bind``, podman ``--device``) and ``NVIDIA_VISIBLE_DEVICES`` /
``CUDA_VISIBLE_DEVICES`` naming them. Several sandboxes of the host may be given the same GPU:
the limit is on how many a datum sees, not an exclusive reservation.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

SHARED_NODES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")
_NUMBERED = re.compile(r"nvidia(\d+)")
SUPPORTED_TYPES = ("", "nvidia", "nvidia.com/gpu")


class GpuUnavailable(Exception):
    """The spec asks for GPUs this host does not have; the message says so and what to do."""


@dataclass(frozen=True, slots=True)
class Gpus:
    """The GPU device nodes a sandbox gets."""

    ids: tuple[str, ...] = ()  # the GPUs' indexes ("0", "1" ...)
    devices: tuple[str, ...] = ()  # every node to pass in

    def env(self) -> dict[str, str]:
        """The variables that tell CUDA programs which GPUs they have."""
        if not self.ids:
            return {}
        visible = ",".join(self.ids)
        return {"NVIDIA_VISIBLE_DEVICES": visible, "CUDA_VISIBLE_DEVICES": visible}


def detect(dev: str = "/dev") -> tuple[str, ...]:
    """The indexes of the NVIDIA GPUs whose nodes are under ``dev``, in order."""
    try:
        names = os.listdir(dev)
    except OSError:
        return ()
    found = sorted(int(m.group(1)) for n in names if (m := _NUMBERED.fullmatch(n)))
    return tuple(str(i) for i in found)


def requested(resources: object) -> tuple[str, int]:
    """(type, number) of a spec's ``gpu`` field: a number (1.7) or ``{type, number}`` (2.x)."""
    if resources is None:
        return "", 0
    if isinstance(resources, int):
        return "", resources
    if isinstance(resources, dict):
        return str(resources.get("type") or ""), int(resources.get("number") or 0)
    return str(getattr(resources, "type", "") or ""), int(getattr(resources, "number", 0) or 0)


def check(kind: str, number: int, dev: str = "/dev") -> None:
    """GpuUnavailable when ``number`` GPUs of ``kind`` cannot be given here."""
    if number <= 0:
        return
    if kind.lower() not in SUPPORTED_TYPES:
        raise GpuUnavailable(
            f"the spec asks for {number} GPU(s) of type {kind!r}, and tusk passes NVIDIA GPUs "
            "only: use type nvidia.com/gpu, or no gpu"
        )
    have = detect(dev)
    if number > len(have):
        raise GpuUnavailable(
            f"the spec asks for {number} GPU(s) and this server has {len(have)} "
            f"(NVIDIA device nodes under {dev}): its jobs would wait forever; lower gpu.number, "
            "or run the pipeline on a server with GPUs"
        )


def assign(number: int, dev: str = "/dev") -> Gpus:
    """The first ``number`` GPUs under ``dev`` and the shared driver nodes; GpuUnavailable when
    there are fewer."""
    check("", number, dev)
    if number <= 0:
        return Gpus()
    ids = detect(dev)[:number]
    nodes = [os.path.join(dev, f"nvidia{i}") for i in ids]
    nodes += [os.path.join(dev, n) for n in SHARED_NODES if os.path.exists(os.path.join(dev, n))]
    return Gpus(ids, tuple(nodes))


def bwrap_device_args(devices: tuple[str, ...]) -> list[str]:
    """bwrap's options that bind ``devices`` into the sandbox's /dev."""
    args: list[str] = []
    for node in devices:
        args += ["--dev-bind", node, "/dev/" + os.path.basename(node)]
    return args


def podman_device_args(devices: tuple[str, ...]) -> list[str]:
    """podman's options that pass ``devices`` into the container."""
    args: list[str] = []
    for node in devices:
        args += ["--device", f"{node}:/dev/{os.path.basename(node)}"]
    return args
