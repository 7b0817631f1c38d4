"""User code tries to take over the server and the host, and is blocked.

A real tuskd with an auth token, a metadata URL and cloud keys in its environment, and its default
runtime (a real sandbox). A victim pipeline holds private data; then a hostile datum
(escape_datum.py, Python in the base image) tries every attack it can think of and records what
it got. The test checks each attempt failed, and checks the host as well: the server's files, the
host's directories, its processes and the repos are as they were.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tusk import Client
from tusk.api.pps import JobInfo
from tusk.testing import Tuskd, wait_for
from tusk.testing.images import build_python_image

TOKEN = "escape-test-token-0f9e8d7c6b5a"
AWS_KEY = "AKIAESCAPETESTKEY00"
AWS_SECRET = "escape-test-aws-secret-1a2b3c4d"
VICTIM_SECRET = "victim-private-bytes-77aa99"
MARKER = "tusk-escape-marker-5e1f"
LINGER = "61.4747"  # the sleep a datum leaves behind: found on the host by this argument
PIDS_LIMIT = 64
DATUM = Path(__file__).with_name("escape_datum.py")


def host_processes(argument: str) -> list[int]:
    """The live host processes with ``argument`` on their command line."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
            status = (entry / "status").read_text()
        except OSError:
            continue
        if argument.encode() in args and "\nState:\tZ" not in status:
            found.append(int(entry.name))
    return found


def descendants_environ(pid: int) -> dict[int, bytes]:
    """The environment of every live process descended from ``pid``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
    found: dict[int, bytes] = {}
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        try:
            found[child] = Path(f"/proc/{child}/environ").read_bytes()
        except OSError:
            continue
        todo.extend(children.get(child, []))
    return found


def finished(client: Client, pipeline: str) -> JobInfo:
    def done() -> JobInfo | None:
        jobs = client.list_job(pipeline)
        return jobs[0] if jobs and jobs[0].state in ("success", "failure", "killed") else None

    return wait_for(f"the job of {pipeline}", done, timeout=180)


def spec(
    name: str,
    repo: str,
    cmd: list[str],
    env: dict[str, str] | None = None,
    glob: str = "/",
    **fields: Any,
) -> str:
    transform: dict[str, Any] = {"image": "localhost/tusk/base:bookworm", "cmd": cmd}
    if env:
        transform["env"] = env
    doc = {
        "pipeline": {"name": name},
        "transform": transform,
        "input": {"atom": {"repo": repo, "name": repo if repo != "attack" else "in", "glob": glob}},
        **fields,
    }
    return json.dumps(doc)


# A datum past its limits: /pfs/hog/memory allocates without end, /pfs/hog/disk writes 200 MiB.
HOG = """
import os
if os.path.exists("/pfs/hog/memory"):
    chunks = []
    while True:
        chunks.append(b"x" * 2**20)
with open("/pfs/out/big-" + os.environ["PACH_DATUM_ID"], "wb") as f:
    for _ in range(200):
        f.write(bytes(2**20))
"""


@pytest.fixture(scope="module", params=["default", "podman"])
def attacked(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Tuskd, dict[str, Any], Path]]:
    """The server after the hostile job, and the hostile datum's report: with the default
    runtime (no TUSK_RUNTIME: it picks a real sandbox) and with podman."""
    build_python_image()
    # the workers' sandbox directories: under /var/tmp, reachable by the sandbox's uid
    with tempfile.TemporaryDirectory(prefix="tusk-escape-", dir="/var/tmp") as path:
        os.chmod(path, 0o711)
        yield from _attack(request.param, tmp_path_factory, Path(path))


def _attack(
    runtime_name: str, tmp_path_factory: pytest.TempPathFactory, scratch: Path
) -> Iterator[tuple[Tuskd, dict[str, Any], Path]]:
    home = tmp_path_factory.mktemp("escape") / "home"
    runtime = {} if runtime_name == "default" else {"TUSK_RUNTIME": runtime_name}
    env = {
        **runtime,
        "TUSK_METADATA_URL": f"sqlite:///{home}/tusk.db",
        "AWS_ACCESS_KEY_ID": AWS_KEY,
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        "TUSK_WORKER_SCRATCH": str(scratch),
        "TUSK_SANDBOX_PIDS": str(PIDS_LIMIT),
    }
    server = Tuskd(home, env, token=TOKEN)
    server.start()
    try:
        with server.client() as client:
            # a victim pipeline with private data, whose worker (and sandbox) stays up
            client.create_repo("private")
            client.put_file("private", "master", "/secret.txt", VICTIM_SECRET)
            copy = ["sh", "-c", "cp /pfs/private/secret.txt /pfs/out/copy.txt"]
            client.create_pipeline(spec("victim", "private", copy))
            victim_job = finished(client, "victim")
            assert victim_job.state == "success", victim_job.reason
            victims = sorted(str(p) for p in scratch.iterdir())
            assert victims, "the victim's sandbox directory is not on the host"

            client.create_repo("attack")
            with client.commit("attack", "master") as c:
                c.put_file("/escape_datum.py", DATUM.read_bytes())
                c.put_file("/leaked-token", TOKEN.encode())
            attack_env = {
                "HOST_HOME": str(home),
                "SERVER_PORT": str(server.port),
                "VICTIM_DIRS": ":".join(victims),
                "MARKER": MARKER,
                "LINGER": LINGER,
            }
            cmd = ["python3", "/pfs/in/escape_datum.py"]
            client.create_pipeline(spec("attacker", "attack", cmd, attack_env))
            job = finished(client, "attacker")
            assert job.state == "success", job.reason
            expected = {"bwrap", "podman"} if runtime_name == "default" else {runtime_name}
            assert job.runtime in expected, job.runtime
            report = json.loads(client.get_file_bytes("attacker", "master", "/report.json"))

            # a datum past its memory limit and one past its disk limit
            client.create_repo("hog")
            with client.commit("hog", "master") as c:
                c.put_file("/memory", b"m")
                c.put_file("/disk", b"d")
            limits = {"resource_limits": {"memory": "64Mi", "disk": "50Mi"}}
            client.create_pipeline(
                spec("limited", "hog", ["python3", "-c", HOG], None, "/*", **limits)
            )
            limited = finished(client, "limited")
            report["limited_job"] = limited.state
            report["limited_datums"] = sorted(d.reason for d in client.list_datum(limited.id))
            report["limited_logs"] = [line.message for line in client.get_logs(pipeline="limited")]
            report["big_files"] = [str(p) for p in scratch.rglob("big-*")]
        yield server, report, scratch
    finally:
        server.stop()


Attacked = tuple[Tuskd, dict[str, Any], Path]


@pytest.fixture
def server(attacked: Attacked) -> Tuskd:
    return attacked[0]


@pytest.fixture
def report(attacked: Attacked) -> dict[str, Any]:
    return attacked[1]


@pytest.fixture
def scratch(attacked: Attacked) -> Path:
    return attacked[2]


def blocked(report: dict[str, Any], *names: str) -> None:
    for name in names:
        assert str(report[name]).startswith("blocked: "), f"{name}: {report[name]}"


# -- credentials -----------------------------------------------------------------------------------


def test_user_code_finds_no_credential_of_the_server(report: dict[str, Any]) -> None:
    seen = json.dumps({k: report[k] for k in ("env", "proc_environ", "parent_environ")})
    for secret in (TOKEN, AWS_KEY, AWS_SECRET, "sqlite:///", "TUSK_"):
        assert secret not in seen, secret
    # it sees its own sandbox's processes only: no server, no worker
    commands = " ".join(report["proc_cmdline"].values())
    assert "tusk.server" not in commands and "tusk.worker" not in commands, commands


def test_no_worker_process_holds_the_servers_credentials(server: Tuskd) -> None:
    environs = descendants_environ(server.pid)
    assert environs, "the server has no live worker"
    for pid, environ in environs.items():
        for secret in (TOKEN, AWS_SECRET, b"TUSK_METADATA_URL", b"TUSK_AUTH_TOKEN"):
            secret = secret.encode() if isinstance(secret, str) else secret
            assert secret not in environ, (pid, secret)


# -- the server's home -----------------------------------------------------------------------------


def test_the_servers_home_is_out_of_reach(report: dict[str, Any], server: Tuskd) -> None:
    blocked(
        report, "read_db", "write_db", "list_home", "write_home", "list_objects", "write_objects"
    )
    assert not (server.home / MARKER).exists()
    assert not (server.home / "objects" / MARKER).exists()
    assert b"pwned" not in (server.home / "tusk.db").read_bytes()


# -- the API ---------------------------------------------------------------------------------------


def test_the_api_cannot_be_reached_even_with_a_leaked_token(
    report: dict[str, Any], server: Tuskd
) -> None:
    blocked(report, "api_without_token", "api_with_leaked_token", "api_ipv6_loopback")
    assert report["interfaces"] == "ok: ['lo']"  # its own loopback only
    with server.client() as client:
        assert sorted(r.name for r in client.list_repo()) == [
            "attack",
            "attacker",
            "hog",
            "limited",
            "private",
            "victim",
        ]


# -- other pipelines -------------------------------------------------------------------------------


def test_another_pipelines_data_is_out_of_reach(report: dict[str, Any], scratch: Path) -> None:
    victim_attempts = [k for k in report if k.startswith("victim_")]
    assert victim_attempts
    blocked(report, *victim_attempts, "scratch_parent")
    assert VICTIM_SECRET not in json.dumps(report)
    assert list(scratch.glob(f"*/pfs/out/{MARKER}")) == []


# -- the host's and the image's files --------------------------------------------------------------


def test_the_host_the_image_and_the_inputs_are_not_written(report: dict[str, Any]) -> None:
    blocked(
        report,
        "write_var_tmp",
        "write_etc",
        "write_image_root",
        "write_image_usr",
        "write_input",
        "create_input",
        "write_pfs",
        "sysrq",
    )
    assert not Path("/var/tmp", MARKER).exists()
    assert not Path("/etc", MARKER).exists()
    assert list(Path("/run/tusk-rootfs").glob(f"*/{MARKER}")) == []
    assert list(Path("/run/tusk-rootfs").glob(f"*/usr/bin/{MARKER}")) == []


# -- processes -------------------------------------------------------------------------------------


def test_a_fork_bomb_hits_the_process_limit(report: dict[str, Any]) -> None:
    # the limit is the sandbox's pids cgroup (podman's, or bwrap's own): raising RLIMIT_NPROC,
    # which bwrap sets only where it has no cgroup, does not lift it
    assert report["forks"] < PIDS_LIMIT, report["forks"]
    assert "Resource temporarily unavailable" in report["fork_error"], report["fork_error"]


def test_datums_past_their_memory_and_disk_limits_fail_saying_so(
    report: dict[str, Any], scratch: Path
) -> None:
    assert report["limited_job"] == "failure"
    reasons = ["disk limit of 50Mi exceeded", "killed: out of memory (limit 64Mi)"]
    assert report["limited_datums"] == reasons, report["limited_datums"]
    for reason in reasons:  # get-logs shows why
        assert any(reason in line for line in report["limited_logs"]), reason
    # no 200 MiB file on the host, then or now
    assert report["big_files"] == []
    assert list(scratch.rglob("big-*")) == []


def test_a_setsid_daemon_does_not_outlive_its_datum(report: dict[str, Any]) -> None:
    assert report["linger_started"] is True  # it ran until the datum ended
    assert host_processes(LINGER) == []


# -- privilege -------------------------------------------------------------------------------------


def test_root_inside_is_an_unprivileged_uid_on_the_host(report: dict[str, Any]) -> None:
    assert report["id"] == [0, 0, 0]  # root inside ...
    inside, outside, _ = (int(n) for n in report["uid_map"].split()[:3])
    assert (inside, outside) == (0, 100000), report["uid_map"]  # ... uid 100000 on the host


# -- the agent's channel to the worker -------------------------------------------------------------


def test_the_agents_pipes_and_memory_are_out_of_reach(report: dict[str, Any]) -> None:
    # the agent (same uid as the datum) could otherwise forge replies to the worker or read the
    # next request; under bwrap, bwrap's own init process held the same pipes
    attempts = [k for k in report if k.startswith(("agent_pipes_", "agent_mem_"))]
    assert "agent_mem_1" in attempts, attempts  # the agent is the sandbox's init
    blocked(report, *attempts)
