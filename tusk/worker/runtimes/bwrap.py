"""The ``bwrap`` runtime: the image's root filesystem (from ``podman image mount``) as ``/``
under bubblewrap, one sandbox per worker, run by an unprivileged host uid."""

from __future__ import annotations

import os
import shutil
import subprocess

from tusk.worker.runtimes import cgroups
from tusk.worker.runtimes.agent import AGENT_NAME, agent_flags
from tusk.worker.runtimes.base import (
    AGENT_DIR,
    RUN_DIR,
    Sandbox,
    SandboxDirs,
    SandboxSpec,
    resolve_user,
)
from tusk.worker.runtimes.gpus import bwrap_device_args
from tusk.worker.runtimes.images import inspect_image, mount_image

_SKIP = {"proc", "dev", "tmp", "pfs", "sys", AGENT_DIR.strip("/")}


def bwrap_executable() -> str | None:
    """bwrap's path, None when it is not installed."""
    return shutil.which("bwrap")


def _demote(uid: int) -> tuple[int | None, list[int] | None]:
    """(user and group, extra groups) that run a child as ``uid`` when this process is root."""
    if os.geteuid() != 0:
        return None, None
    return uid, []


def probe(sandbox_uid: int) -> str | None:
    """Why this runtime cannot run here (None when it can)."""
    exe = bwrap_executable()
    if exe is None:
        return "bwrap is not on PATH (install bubblewrap)"
    if shutil.which("podman") is None:
        return "podman is not on PATH (bwrap takes images from podman's store: install podman)"
    try:
        proc = subprocess.run(
            [exe, "--unshare-all", "--uid", "0", "--gid", "0", "--ro-bind", "/", "/", "true"],
            capture_output=True,
            timeout=30,
            user=_demote(sandbox_uid)[0],
            group=_demote(sandbox_uid)[0],
            extra_groups=_demote(sandbox_uid)[1],
        )
    except (OSError, subprocess.SubprocessError) as e:
        return f"bwrap does not run: {e}"
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        return f"bwrap cannot make an unprivileged sandbox here: {lines[-1] if lines else ''}"
    return None


ROOTFS_DIR = "/run/tusk-rootfs"


def visible_rootfs(rootfs: str, digest: str) -> str:
    """The image's root filesystem at a path the sandbox's uid can search: podman's storage is
    root's alone, so as root the mounted image is bound read-only, once per image digest, under
    ``/run/tusk-rootfs`` (root-owned, mode 0755)."""
    if os.geteuid() != 0:
        return rootfs
    target = os.path.join(ROOTFS_DIR, digest.replace(":", "-")[:80])
    os.makedirs(ROOTFS_DIR, mode=0o755, exist_ok=True)
    os.chmod(ROOTFS_DIR, 0o755)
    if os.path.ismount(target):
        return target
    os.makedirs(target, mode=0o755, exist_ok=True)
    for args in (["--bind", rootfs, target], ["-o", "remount,bind,ro", target]):
        proc = subprocess.run(["mount", *args], capture_output=True)
        if proc.returncode != 0:
            message = proc.stderr.decode(errors="replace").strip()
            raise OSError(f"cannot bind the image's root filesystem: {message}")
    return target


def root_binds(rootfs: str, mounts: tuple[str, ...] = ()) -> list[str]:
    """Read-only binds of the image's top-level entries into the sandbox's fresh root. A
    directory holding one of ``mounts`` (secrets) is made in the sandbox's root instead, with
    its entries bound one level down, so that the mount point can be made in it."""
    return _binds(rootfs, "", mounts)


def resolve_in_image(rootfs: str, path: str) -> str:
    """``path`` with the image's symbolic links followed inside the image (``/var/run/x`` is
    ``/run/x`` in Debian images), as a container runtime resolves a mount's destination."""
    parts = [p for p in path.split("/") if p]
    done: list[str] = []
    hops = 0
    while parts:
        name = parts.pop(0)
        if name == "..":
            if done:
                done.pop()
            continue
        host = os.path.join(rootfs, *done, name)
        if not os.path.islink(host):
            done.append(name)
            continue
        hops += 1
        if hops > 40:
            raise ValueError(f"too many symbolic links in {path} in the image")
        target = os.readlink(host)
        if target.startswith("/"):
            done = []
        parts = [p for p in target.split("/") if p and p != "."] + parts
    return "/" + "/".join(done)


def _binds(directory: str, inside: str, mounts: tuple[str, ...]) -> list[str]:
    args: list[str] = []
    for name in sorted(os.listdir(directory)):
        if not inside and name in _SKIP:
            continue
        path = os.path.join(directory, name)
        target = f"{inside}/{name}"
        if target in mounts:
            continue  # the mount hides it
        if any(m.startswith(target + "/") for m in mounts):
            if os.path.islink(path) or not os.path.isdir(path):
                raise ValueError(
                    f"a secret's mount_path goes through {target}, which is not a directory in "
                    "the image"
                )
            args += ["--dir", target, *_binds(path, target, mounts)]
        elif os.path.islink(path):
            args += ["--symlink", os.readlink(path), target]
        else:
            args += ["--ro-bind", path, target]
    return args


def start(spec: SandboxSpec, scratch_root: str | None) -> Sandbox:
    """Start a sandbox of ``spec.image`` with its agent."""
    image = inspect_image(spec.image)
    rootfs = mount_image(spec.image)
    uid, gid = resolve_user(spec.user or image.user, rootfs)
    host_uid = spec.sandbox_uid if os.geteuid() == 0 else os.geteuid()
    visible = visible_rootfs(rootfs, image.digest)
    mounts = {m: resolve_in_image(visible, m) for m in spec.secret_mounts}
    binds = root_binds(visible, tuple(mounts.values()))
    dirs = SandboxDirs(
        scratch_root,
        host_uid if os.geteuid() == 0 else None,
        spec.disk,
        spec.secret_mounts,
        spout=spec.spout,
        input_memory=spec.input_memory,
    )
    exe = bwrap_executable()
    assert exe is not None
    for mount, target in mounts.items():
        binds += ["--ro-bind", dirs.secret_dirs[mount], target]
    argv = [
        exe,
        "--unshare-user",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        *([] if spec.network else ["--unshare-net"]),
        "--uid",
        str(uid),
        "--gid",
        str(gid),
        "--hostname",
        "tusk",
        *binds,
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--bind",
        dirs.shm,
        "/dev/shm",
        "--bind",
        dirs.tmp,
        "/tmp",
        "--ro-bind",
        dirs.pfs,
        "/pfs",
        *dirs.out_binds(),
        "--ro-bind",
        dirs.agent_dir,
        AGENT_DIR,
        "--bind",
        dirs.run,
        RUN_DIR,
        *bwrap_device_args(spec.gpus),
        "--remount-ro",  # /dev's tmpfs takes no files (its device nodes still work)
        "/dev",
        "--remount-ro",  # the sandbox's own root (a tmpfs holding the binds) takes no files
        "/",
        "--chdir",
        "/",
        "--die-with-parent",
        "--as-pid-1",  # the agent is the sandbox's init: no bwrap process inside to ptrace
        "--new-session",
        "--clearenv",
        "--",
        f"{AGENT_DIR}/{AGENT_NAME}",
        "--pidns",
        *agent_flags(spec.cpus),
    ]
    try:
        cgroup = cgroups.create(cgroups.Limits(spec.memory_bytes, spec.cpu, spec.pids))
    except OSError:
        dirs.remove()
        raise
    rlimits = fallback_rlimits(spec, cgroup is not None, dirs.disk_hard)
    if rlimits:
        argv = [shutil.which("prlimit") or "prlimit", *rlimits, *argv]
    log = dirs.open_log()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,  # its own group: Ray's abort kills it with killpg
            stderr=log,
            env={},  # bwrap stays in the sandbox as its pid 1: none of the worker's variables
            user=_demote(host_uid)[0],
            group=_demote(host_uid)[0],
            extra_groups=_demote(host_uid)[1],
        )
    except BaseException:
        if cgroup is not None:
            cgroup.remove()
        dirs.remove()
        raise
    finally:
        os.close(log)
    sandbox = Sandbox(spec, dirs, proc, image, f"bwrap, image {spec.image}", cgroup)
    sandbox.runtime = "bwrap"
    sandbox.limits_note = limits_note(spec, cgroup is not None, dirs)
    return sandbox


def fallback_rlimits(spec: SandboxSpec, in_cgroup: bool, disk_hard: bool) -> list[str]:
    """prlimit's options for what no cgroup or filesystem enforces: ``RLIMIT_NPROC`` for the
    process limit (shared by every sandbox of the host uid), ``RLIMIT_AS`` for memory (address
    space, cruder than memory used) and ``RLIMIT_FSIZE`` for the disk limit (one file at most)."""
    options = []
    if spec.pids and not in_cgroup:
        options.append(f"--nproc={spec.pids}:{spec.pids}")
    memory = spec.memory_bytes
    if memory and not in_cgroup:
        options.append(f"--as={memory}:{memory}")
    if spec.disk and not disk_hard:
        options.append(f"--fsize={spec.disk + 1}:{spec.disk + 1}")  # see disk_exceeded
    return options


def limits_note(spec: SandboxSpec, in_cgroup: bool, dirs: SandboxDirs) -> str:
    """What this sandbox enforces less well than it could, for the datum's log ("" if nothing)."""
    notes = []
    if not in_cgroup and (spec.cpu or spec.memory or spec.pids):
        notes.append(
            f"no cgroup for the sandbox ({cgroups.problem()}): cpu is not limited, memory is "
            "limited as address space (RLIMIT_AS) and processes per host uid (RLIMIT_NPROC)"
        )
    if spec.disk and not dirs.disk_hard:
        notes.append(
            f"no size-limited filesystem for /pfs/out and /tmp ({dirs.disk_problem}): the disk "
            "limit is enforced by RLIMIT_FSIZE and a watchdog"
        )
    return "; ".join(notes)
