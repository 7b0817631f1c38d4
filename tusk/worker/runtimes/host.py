"""The ``host`` runtime, only when the operator chose it (``TUSK_RUNTIME=host``): commands run as
they are, with the server's user and the host's programs. Bubblewrap, when it works, only gives
them /pfs at its real path (the host's other directories are bound as they are) and a pid
namespace; without it, /pfs is not there and ``$PFS`` names the datum's directory."""

from __future__ import annotations

import os
import shutil
import subprocess

from tusk.worker.runtimes.agent import AGENT_NAME, agent_flags
from tusk.worker.runtimes.base import Sandbox, SandboxDirs, SandboxSpec

_bwrap_problem: str | None = None
_probed = False


def _bwrap_works() -> bool:
    global _bwrap_problem, _probed
    if not _probed:
        _probed = True
        exe = shutil.which("bwrap")
        if exe is None:
            _bwrap_problem = "bwrap is not on PATH"
        else:
            proc = subprocess.run(
                [exe, "--unshare-pid", "--dev-bind", "/", "/", "true"], capture_output=True
            )
            if proc.returncode != 0:
                _bwrap_problem = proc.stderr.decode(errors="replace").strip()
    return _bwrap_problem is None


class HostSandbox(Sandbox):
    """Commands on the host; /pfs at its real path when bubblewrap can bind it."""

    runtime = "host"

    def __init__(self, *args: object, pfs_view: str) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self._pfs_view = pfs_view

    @property
    def pfs_view(self) -> str:
        return self._pfs_view

    @property
    def tools_view(self) -> str:
        return self.dirs.agent_dir

    @property
    def run_view(self) -> str:
        return self.dirs.run


def host_root_binds() -> list[str]:
    """bwrap arguments that show the host's root entries (all but ``/pfs``) as they are."""
    binds: list[str] = []
    for name in sorted(os.listdir("/")):
        path = "/" + name
        if path == "/pfs":
            continue
        if os.path.islink(path):
            binds += ["--symlink", os.readlink(path), path]
        else:
            binds += ["--dev-bind", path, path]
    return binds


def start(spec: SandboxSpec, scratch_root: str | None) -> Sandbox:
    """Start the agent on the host (in a bubblewrap mount and pid namespace when possible)."""
    dirs = SandboxDirs(scratch_root, None, spout=spec.spout, input_memory=spec.input_memory)
    agent = f"{dirs.agent_dir}/{AGENT_NAME}"
    if _bwrap_works():
        exe = shutil.which("bwrap")
        assert exe is not None
        argv = [
            exe,
            "--unshare-pid",
            *host_root_binds(),
            "--ro-bind",
            dirs.pfs,
            "/pfs",
            *dirs.out_binds(),
            "--die-with-parent",
            "--",
            agent,
            "--pidns",
            *agent_flags(spec.cpus),
        ]
        pfs_view, how = "/pfs", "host, /pfs bound by bwrap"
    else:
        argv = [agent, *agent_flags(spec.cpus)]
        pfs_view, how = dirs.pfs, f"host, no bwrap: /pfs is at {dirs.pfs}"
    log = dirs.open_log()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,  # its own group: Ray's abort kills it with killpg
        stderr=log,
        cwd=os.getcwd(),
    )
    os.close(log)
    return HostSandbox(spec, dirs, proc, None, how, pfs_view=pfs_view)
