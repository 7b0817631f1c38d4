"""The ``podman`` runtime: one container per worker, kept for its pipeline version, with the
agent as its entrypoint. Its root maps to an unprivileged host uid range."""

from __future__ import annotations

import io
import json
import os
import resource
import shlex
import subprocess
import tarfile
import threading
from pathlib import Path

from tusk.worker.runtimes import cgroups
from tusk.worker.runtimes.agent import AGENT_NAME, agent_flags, build_agent
from tusk.worker.runtimes.base import (
    AGENT_DIR,
    RUN_DIR,
    Sandbox,
    SandboxDirs,
    SandboxSpec,
    resolve_user,
)
from tusk.worker.runtimes.gpus import podman_device_args
from tusk.worker.runtimes.images import inspect_image, mount_image, podman_executable

_flags: tuple[str, ...] | None = None
_problem: str | None = None
_lock = threading.Lock()


def candidate_flags() -> list[tuple[str, ...]]:
    """The flag sets tried in order: runc with cgroupfs and explicit ulimits (what podman 4.3 needs
    on hosts with hybrid cgroups), then podman's defaults."""
    nofile = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 65536)
    nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 4096)
    if nproc == resource.RLIM_INFINITY or nproc < 0:
        nproc = 4096
    if nofile == resource.RLIM_INFINITY or nofile < 0:
        nofile = 65536
    ulimits = ("--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}")
    return [
        ("--runtime", "runc", "--cgroup-manager", "cgroupfs", *ulimits),
        ("--cgroup-manager", "cgroupfs", *ulimits),
        (),
    ]


def probed() -> bool:
    """Whether :func:`probe` has run in this process."""
    return _flags is not None or _problem is not None


def probe(configured: tuple[str, ...] | None, probe_image: str | None) -> str | None:
    """Why podman cannot run containers here (None when it can); remembers the working flags."""
    global _flags, _problem
    with _lock:
        if _flags is not None or _problem is not None:
            return _problem
        exe = podman_executable()
        if exe is None:
            _problem = "podman is not on PATH (install podman)"
            return _problem
        if probe_image is None:
            _problem = "no image to probe podman with"
            return _problem
        errors = []
        for flags in [configured] if configured is not None else candidate_flags():
            proc = subprocess.run(
                [exe, "run", "--rm", "--network", "none", *flags, probe_image, "/" + AGENT_NAME],
                capture_output=True,
                timeout=120,
            )
            if proc.returncode == 0:
                _flags = flags
                return None
            lines = proc.stderr.decode(errors="replace").strip().splitlines()
            errors.append(f"[{shlex.join(flags)}] {lines[-1] if lines else proc.returncode}")
        _problem = "podman cannot run containers here: " + "; ".join(errors)
        return _problem


def probe_image() -> str | None:
    """A one-file image holding the agent, to probe podman with (imported once)."""
    exe = podman_executable()
    if exe is None:
        return None
    agent = build_agent()
    name = f"localhost/tusk/agent-probe:{agent.parent.name.removeprefix('agent-')}"
    if subprocess.run([exe, "image", "exists", name], capture_output=True).returncode == 0:
        return name
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tar.gettarinfo(str(agent), AGENT_NAME)
        info.uid = info.gid = 0
        info.mode = 0o755
        with open(agent, "rb") as f:
            tar.addfile(info, f)
    proc = subprocess.run([exe, "import", "-", name], input=data.getvalue(), capture_output=True)
    return name if proc.returncode == 0 else None


def working_flags() -> tuple[str, ...]:
    """The flags the probe found to work."""
    return _flags or ()


def start(spec: SandboxSpec, scratch_root: str | None) -> Sandbox:
    """Start a container of ``spec.image`` running the agent."""
    image = inspect_image(spec.image)
    rootfs = mount_image(spec.image)
    uid, gid = resolve_user(spec.user or image.user, rootfs)
    root = os.geteuid() == 0
    host_uid = spec.sandbox_uid + uid if root else None
    exe = podman_executable()
    assert exe is not None
    remove_stale_containers(exe)
    dirs = SandboxDirs(
        scratch_root,
        host_uid,
        spec.disk,
        spec.secret_mounts,
        spout=spec.spout,
        input_memory=spec.input_memory,
    )
    secrets = [f"--volume={dirs.secret_dirs[m]}:{m}:ro" for m in spec.secret_mounts]
    name = f"tusk-{os.getpid()}-{os.path.basename(dirs.root)[-8:]}"
    flags = spec.podman_flags if spec.podman_flags is not None else working_flags()
    limits: list[str] = []
    if spec.cpu:
        limits += ["--cpus", f"{spec.cpu:g}"]
    if spec.memory:  # swap included: a hog cannot page out to live on
        limits += ["--memory", spec.memory, "--memory-swap", spec.memory]
    if spec.pids:
        limits += ["--pids-limit", str(spec.pids)]
    if spec.disk and not dirs.disk_hard:
        limits += ["--ulimit", f"fsize={spec.disk + 1}:{spec.disk + 1}"]  # see disk_exceeded
    limits += podman_device_args(spec.gpus)
    userns = []
    if root:
        base = spec.sandbox_uid
        userns = ["--uidmap", f"0:{base}:65536", "--gidmap", f"0:{base}:65536"]
    argv = [
        exe,
        "run",
        "--rm",
        "-i",
        "--log-driver",
        "none",
        "--name",
        name,
        "--label",
        f"tusk.worker.pid={os.getpid()}",
        *flags,
        *userns,
        *limits,
        "--read-only",  # the image's root, as under bwrap; /pfs/out and /tmp are binds
        "--read-only-tmpfs=false",
        "--network",
        "host" if spec.network else "none",
        "--user",
        f"{uid}:{gid}",
        "--entrypoint",
        f"{AGENT_DIR}/{AGENT_NAME}",
        "-v",
        f"{dirs.pfs}:/pfs:ro",
        *([] if dirs.fifo else ["-v", f"{dirs.out}:/pfs/out:rw"]),
        "-v",
        f"{dirs.tmp}:/tmp:rw",
        "-v",
        f"{dirs.shm}:/dev/shm:rw",
        "-v",
        f"{dirs.agent_dir}:{AGENT_DIR}:ro",
        "-v",
        f"{dirs.run}:{RUN_DIR}:rw",
        *secrets,
        "--workdir",
        "/",
        spec.image,
        "--pidns",
        *agent_flags(spec.cpus),
    ]
    log = dirs.open_log()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,  # its own group: Ray's abort kills it with killpg
        stderr=log,
        cwd=dirs.root,  # conmon writes a file named "oom" into its cwd when the container OOMs
    )
    os.close(log)
    sandbox = Sandbox(spec, dirs, proc, image, f"podman, image {spec.image}")
    sandbox.runtime = "podman"
    sandbox.on_kill = lambda: subprocess.run(
        [exe, "rm", "--force", "--time", "0", name], capture_output=True, timeout=60
    )
    sandbox.memory_events = _OomCounter(exe, name)
    if spec.disk and not dirs.disk_hard:
        sandbox.limits_note = (
            f"no size-limited filesystem for /pfs/out and /tmp ({dirs.disk_problem}): the disk "
            "limit is enforced by RLIMIT_FSIZE and a watchdog"
        )
    return sandbox


class _OomCounter:
    """The OOM kills so far in a container's memory cgroup (found once, from its init's pid)."""

    def __init__(self, exe: str, name: str) -> None:
        self.exe = exe
        self.name = name
        self.events: str | None = None

    def __call__(self) -> int:
        if self.events is None:
            proc = subprocess.run(
                [self.exe, "inspect", "--format", "{{.State.Pid}}", self.name],
                capture_output=True,
                timeout=60,
            )
            pid = proc.stdout.decode().strip()
            if proc.returncode != 0 or not pid.isdigit() or pid == "0":
                return 0
            v1 = cgroups.cgroup_of(int(pid), "memory")
            if v1 is not None:
                self.events = str(v1 / "memory.oom_control")
            else:
                v2 = cgroups.cgroup_of(int(pid), "")
                self.events = str(v2 / "memory.events") if v2 is not None else ""
        return cgroups.oom_kills_in(Path(self.events)) if self.events else 0


def remove_stale_containers(exe: str) -> None:
    """Remove the containers of workers that were killed (their pid is gone)."""
    proc = subprocess.run(
        [exe, "ps", "--all", "--filter", "label=tusk.worker.pid", "--format", "json"],
        capture_output=True,
        timeout=60,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        return
    for container in json.loads(proc.stdout):
        pid = str((container.get("Labels") or {}).get("tusk.worker.pid", ""))
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            subprocess.run(
                [exe, "rm", "--force", "--time", "0", str(container.get("Id"))],
                capture_output=True,
                timeout=60,
            )
