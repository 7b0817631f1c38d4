"""Where user code runs: one sandbox per worker, from the pipeline's image, with an agent in it.

Runtimes:

- ``bwrap``: the image's root filesystem (``podman image mount``) as ``/`` under bubblewrap, run
  by an unprivileged host uid. The default: it starts in ~0.3 s against ~1.1 s for podman and
  costs the same per datum (docs/sandbox.md has the figures).
- ``podman``: one container per worker (``podman run`` with the agent as entrypoint).
- ``docker``: used when a Docker engine answers (the client alone is not enough).
- ``host``: only when the operator chose it; commands run on the host as they are.

``auto`` takes the first of bwrap, podman and docker that works here. :func:`choose` raises
:class:`RuntimeUnavailable` with the reason and the fix when none does: there is no silent
fallback to the host.
"""

from __future__ import annotations

import shutil
import subprocess
import threading

from tusk.worker.runtimes import bwrap, host, podman
from tusk.worker.runtimes.agent import AgentUnavailable, SandboxDied, build_agent
from tusk.worker.runtimes.base import (
    DEFAULT_SANDBOX_UID,
    LimitExceeded,
    RuntimeUnavailable,
    Sandbox,
    SandboxSpec,
)
from tusk.worker.runtimes.cgroups import descendants
from tusk.worker.runtimes.images import DEFAULT_IMAGE, ImageNotFound, image_digest

__all__ = [
    "DEFAULT_IMAGE",
    "DEFAULT_SANDBOX_UID",
    "RUNTIMES",
    "ImageNotFound",
    "LimitExceeded",
    "RuntimeUnavailable",
    "Sandbox",
    "SandboxDied",
    "SandboxSpec",
    "choose",
    "image_digest",
    "probe",
    "start_sandbox",
]

RUNTIMES = ("auto", "bwrap", "podman", "docker", "host")
AUTO_ORDER = ("bwrap", "podman", "docker")
FIX = (
    "install podman and bubblewrap (and a C compiler with a static libc, for the sandbox agent), "
    "or start the server with TUSK_RUNTIME=host to run pipelines on the host, unsandboxed"
)

_problems: dict[str, str | None] = {}
_lock = threading.Lock()


def _docker_problem() -> str | None:
    exe = shutil.which("docker")
    if exe is None:
        return "docker is not on PATH"
    try:
        proc = subprocess.run(
            [exe, "version", "--format", "{{.Server.Version}}"], capture_output=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError) as e:
        return f"docker does not run: {e}"
    if proc.returncode != 0 or not proc.stdout.strip():
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        return f"no Docker engine answers ({lines[-1] if lines else 'no server version'})"
    return "a Docker engine answers, but tusk runs Docker images through podman's store only"


def probe(name: str, sandbox_uid: int = DEFAULT_SANDBOX_UID) -> str | None:
    """Why runtime ``name`` cannot run sandboxes here (None when it can); probed once."""
    with _lock:
        if name in _problems:
            return _problems[name]
    problem: str | None
    if name == "host":
        problem = None
    elif name == "docker":
        problem = _docker_problem()
    else:
        try:
            build_agent()
        except AgentUnavailable as e:
            problem = str(e)
        else:
            if name == "bwrap":
                problem = bwrap.probe(sandbox_uid)
            elif name == "podman":
                problem = podman.probe(None, podman.probe_image())
            else:
                problem = f"unknown runtime {name!r} (use one of {', '.join(RUNTIMES)})"
    with _lock:
        _problems[name] = problem
    return problem


def choose(choice: str, sandbox_uid: int = DEFAULT_SANDBOX_UID) -> str:
    """The runtime that ``choice`` means here; RuntimeUnavailable with the reasons and the fix."""
    if choice not in RUNTIMES:
        raise RuntimeUnavailable(
            f"unknown runtime {choice!r}: use one of {', '.join(RUNTIMES)} (TUSK_RUNTIME)"
        )
    if choice != "auto":
        problem = probe(choice, sandbox_uid)
        if problem is None:
            return choice
        raise RuntimeUnavailable(f"runtime {choice} cannot be used: {problem}; fix: {FIX}")
    reasons = []
    for name in AUTO_ORDER:
        problem = probe(name, sandbox_uid)
        if problem is None:
            return name
        reasons.append(f"{name}: {problem}")
    raise RuntimeUnavailable(
        "no container runtime or sandbox works here (" + "; ".join(reasons) + f"); fix: {FIX}"
    )


def start_sandbox(spec: SandboxSpec, scratch_root: str | None) -> Sandbox:
    """Start a sandbox for ``spec`` and wait until its agent answers.

    Raises ImageNotFound, RuntimeUnavailable, or SandboxDied (with the runtime's message).
    """
    if spec.runtime == "bwrap":
        sandbox = bwrap.start(spec, scratch_root)
    elif spec.runtime == "podman":
        if not podman.probed():
            podman.probe(spec.podman_flags, podman.probe_image())
        sandbox = podman.start(spec, scratch_root)
    elif spec.runtime == "host":
        sandbox = host.start(spec, scratch_root)
    else:
        raise RuntimeUnavailable(f"runtime {spec.runtime} cannot run sandboxes here")
    try:
        sandbox.agent.wait_ready()
    except SandboxDied:
        sandbox.proc.wait()
        message = sandbox.dirs.log_tail() or f"exit status {sandbox.proc.returncode}"
        if sandbox.cgroup is not None:
            sandbox.cgroup.remove()
        sandbox.dirs.remove()
        raise SandboxDied(f"the {spec.runtime} sandbox did not start: {message}") from None
    if sandbox.cgroup is not None:
        # The agent waits for its first command: moved now, it and everything it starts stay in
        # the cgroup before any user code runs.
        try:
            for pid in descendants(sandbox.proc.pid):
                sandbox.cgroup.add(pid)
        except OSError as e:
            sandbox.kill()
            sandbox.close()
            raise SandboxDied(f"cannot put the sandbox in its cgroup: {e}") from None
    return sandbox
