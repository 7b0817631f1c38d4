"""A real two-node Ray cluster on this machine: a head (2 CPUs) and a second node (1 CPU).
Needs ``tusk[ray]``.

Each node is ``ray start --block`` in a session of its own; stopping SIGKILLs its process group and
descendants (its GCS, raylet, agents and workers) and nothing else: unlike ``ray stop``, which
would kill every Ray process of this user on the machine. Every process,
the driver included, gets the same ``RAY_AUTH_MODE`` (a node whose auth mode differs cannot
join). Starting fails loudly: a test that needs Ray must fail, not skip, when Ray cannot start::

    with ray_cluster(Path(tempfile.mkdtemp(prefix="tuskray"))) as cluster:
        executor = RayExecutor(cluster.url, client=False)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tusk.testing.process import alive, descendants, free_port, group_members, log_tail

AUTH_MODE = "disabled"
START_TIMEOUT = 90.0
STARTED = "Ray runtime started."


@dataclass
class RayCluster:
    address: str  # host:port of the head's GCS
    temp_dir: Path
    client_port: int = 0  # the head's Ray Client server
    nodes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The GCS address as a tusk executor URL (connect with ``client=False``)."""
        return f"ray://{self.address}"

    @property
    def client_url(self) -> str:
        """The head's Ray Client address: what ``TUSK_EXECUTOR`` names, as in a deployment."""
        return f"ray://127.0.0.1:{self.client_port}"


def ray_env() -> dict[str, str]:
    env = dict(os.environ)
    env["RAY_AUTH_MODE"] = AUTH_MODE
    env.pop("RAY_ADDRESS", None)
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    return env


def _ray_cli() -> str:
    cli = Path(sys.executable).with_name("ray")
    if not cli.exists():
        raise RuntimeError(f"no `ray` command beside {sys.executable}: pip install 'tusk[ray]'")
    return str(cli)


def _start_node(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [_ray_cli(), "start", "--block", "--disable-usage-stats", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=ray_env(),
            start_new_session=True,
        )


def _alive_nodes(address: str) -> int:
    """Alive nodes as the GCS sees them, asked from a separate process (no driver here)."""
    code = (
        "import ray, sys\n"
        f"ray.init(address={address!r}, logging_level='ERROR', log_to_driver=False)\n"
        "print(sum(1 for n in ray.nodes() if n['Alive']))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=ray_env(), capture_output=True, timeout=60, check=False
    )
    try:
        return int(out.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        return 0


def start_cluster(temp_dir: Path) -> RayCluster:
    temp_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    address = f"127.0.0.1:{port}"
    cluster = RayCluster(address, temp_dir, client_port=free_port())
    try:
        cluster.nodes.append(
            _start_node(
                [
                    "--head",
                    "--node-ip-address=127.0.0.1",
                    f"--port={port}",
                    f"--ray-client-server-port={cluster.client_port}",
                    "--num-cpus=2",
                    "--include-dashboard=false",
                    f"--dashboard-port={free_port()}",
                    f"--temp-dir={temp_dir}",
                ],
                temp_dir / "head.log",
            )
        )
        _wait_for_nodes(cluster, 1, temp_dir / "head.log")
        cluster.nodes.append(
            _start_node(
                [f"--address={address}", "--node-ip-address=127.0.0.1", "--num-cpus=1"],
                temp_dir / "node2.log",
            )
        )
        _wait_for_nodes(cluster, 2, temp_dir / "node2.log")
    except BaseException:
        stop_cluster(cluster)
        raise
    return cluster


def _wait_for_nodes(cluster: RayCluster, nodes: int, log: Path) -> None:
    """Until ``ray start`` says the node runs (then, for the last node, the GCS counts them all)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        for proc in cluster.nodes:
            if proc.poll() is not None:
                raise RuntimeError(f"ray start exited with {proc.returncode}:\n{log_tail(log)}")
        if STARTED in log.read_text(errors="replace"):
            break
        time.sleep(0.2)
    else:
        raise RuntimeError(f"Ray node did not start in {START_TIMEOUT}s:\n{log_tail(log)}")
    if nodes > 1:
        while time.monotonic() < deadline:
            if _alive_nodes(cluster.address) >= nodes:
                return
            time.sleep(0.5)
        raise RuntimeError(f"Ray cluster did not reach {nodes} nodes:\n{log_tail(log)}")


def stop_cluster(cluster: RayCluster) -> set[int]:
    """SIGKILL every node's process group and descendants (workers run in sessions of their own).

    A graceful stop drains for up to 30 s; a test cluster has nothing worth draining. Returns the
    processes still alive after 10 s (none, normally)."""
    doomed = set()
    for proc in cluster.nodes:
        doomed |= {proc.pid, *group_members(proc.pid), *descendants(proc.pid)}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for proc in cluster.nodes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for pid in doomed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for proc in cluster.nodes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.1)
        doomed = {pid for pid in doomed if alive(pid)}
        if not doomed and not any(group_members(p.pid) for p in cluster.nodes):
            break
        time.sleep(0.1)
    left = doomed | {pid for p in cluster.nodes for pid in group_members(p.pid)}
    for proc in cluster.nodes:  # reap every `ray start`, so none is collected while "running"
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    cluster.nodes.clear()
    return left


@contextlib.contextmanager
def ray_cluster(temp_dir: Path) -> Iterator[RayCluster]:
    """A started cluster, with ``RAY_AUTH_MODE`` pinned in this (the driver's) process too."""
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_ADDRESS")}
    os.environ["RAY_AUTH_MODE"] = AUTH_MODE
    os.environ.pop("RAY_ADDRESS", None)
    cluster = start_cluster(temp_dir)
    try:
        yield cluster
    finally:
        left = stop_cluster(cluster)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        assert not left, f"Ray processes left running: {sorted(left)}"
