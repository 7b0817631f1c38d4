"""The CLI's local server (``tusk up/down/status``) with a token, twice on one home, from a
directory holding a ``tusk/`` folder; and an interrupted ``put-file`` that must store nothing."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tusk.client.local import is_up
from tusk.testing import Tuskd, clean_env, free_port, wait_for

from .conftest import run

TUSK = str(Path(sys.executable).parent / "tusk")  # the installed command, as a user runs it


def cli(*args: str, env: dict[str, str], cwd: Path | None = None) -> tuple[int, str, str]:
    proc = subprocess.run(
        [TUSK, *args], capture_output=True, env=clean_env(env), cwd=cwd, timeout=90
    )
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    yield home
    pid_file = home / "tuskd.pid"
    if pid_file.exists():  # a server a failed test left behind
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)


def local_env(home: Path, port: int, **extra: str) -> dict[str, str]:
    return {"TUSK_HOME": str(home), "TUSK_ADDRESS": f"http://127.0.0.1:{port}", **extra}


def test_up_status_and_down_with_an_auth_token(home: Path) -> None:
    env = local_env(home, free_port(), TUSK_AUTH_TOKEN="s3cret-token")
    started = time.monotonic()
    code, out, err = cli("up", env=env)
    assert code == 0, err
    assert time.monotonic() - started < 30
    assert "tusk server started" in out
    code, out, err = cli("status", env=env)
    assert code == 0, err
    assert str(home) in out
    code, out, err = cli("up", env=env)
    assert (code, "already running" in out) == (0, True), err
    code, out, _ = cli("down", env=env)
    assert code == 0 and "stopped" in out


def test_a_second_up_on_the_same_home_says_which_server_runs_there(home: Path) -> None:
    first = local_env(home, free_port())
    second = local_env(home, free_port())
    assert cli("up", env=first)[0] == 0
    first_pid = (home / "tuskd.pid").read_text().split()[0]
    try:
        code, out, err = cli("up", env=second)
        assert code != 0
        assert "already runs on" in err and f"pid {first_pid}" in err, err
        assert cli("status", env=second)[0] != 0  # nothing started on the second port
        assert (home / "tuskd.pid").read_text().split()[0] == first_pid
    finally:
        code, out, _ = cli("down", env=second)
    assert code == 0 and f"pid {first_pid}" in out  # down stopped the one that ran
    assert cli("status", env=first)[0] != 0


def test_up_works_in_a_directory_holding_a_tusk_folder(home: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "tusk").mkdir(parents=True)
    (project / "tusk" / "__init__.py").write_text("# someone's own package named tusk\n")
    env = local_env(home, free_port())
    code, out, err = cli("up", env=env, cwd=project)
    try:
        assert code == 0, err
        assert "tusk server started" in out
    finally:
        cli("down", env=env)


def open_files(pid: int) -> set[str]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            found.add(os.readlink(fd))
    return found


def test_ctrl_c_of_put_file_stores_nothing(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with big.open("wb") as f:
        for _ in range(48):
            f.write(os.urandom(8 << 20))  # 384 MiB: the server reads it for a few seconds
    with Tuskd(tmp_path / "home") as server:
        assert run("create-repo", "x", env=server.env)[0] == 0
        put = subprocess.Popen(
            [sys.executable, "-m", "tusk.cli.main", "put-file", "x", "master", "/big", "-f", big],
            env=clean_env(server.env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Ctrl-C as at a terminal, even when these tests run where SIGINT is ignored (a
            # shell's background job): an ignored SIGINT would stay ignored in the CLI
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            # interrupt once the server is reading the file (the whole request has been sent)
            wait_for("the server to read the file", lambda: str(big) in open_files(server.pid), 60)
            put.send_signal(signal.SIGINT)
            _out, put_err = put.communicate(timeout=30)
        finally:
            put.kill()
            put.communicate()
        assert put.returncode != 0 and b"Aborted" in put_err
        wait_for("the server to let go of the file", lambda: str(big) not in open_files(server.pid))
        time.sleep(1)
        code, out, err = run("list-commit", "x", env=server.env)
        assert code == 0, err
        assert len(out.strip().splitlines()) <= 1, out  # a header, no commit
        code, out, err = run("put-file", "x", "master", "/small", input="ok", env=server.env)
        assert code == 0, err  # the server is fine


def test_a_slow_answer_is_not_no_server() -> None:
    # something that accepts the connection and answers late, as a loaded server does
    with socket.create_server(("127.0.0.1", 0)) as listener:
        address = f"http://127.0.0.1:{listener.getsockname()[1]}"
        assert is_up(address, timeout=0.3)
    assert not is_up(address, timeout=0.3)  # nothing listens any more
