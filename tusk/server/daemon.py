"""``tuskd``: run the server in the foreground (the CLI's ``tusk up`` starts it in the background)."""

from __future__ import annotations

import argparse
import fcntl
import gc
import os
import signal
import sys
from pathlib import Path
from typing import IO

import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from tusk.api.host import is_loopback
from tusk.grpc.server import GrpcServer, shared_port
from tusk.runtime import Engine, Settings
from tusk.server import serverlog
from tusk.server.app import create_app


def _lock_home(home: Path) -> IO[str] | None:
    """Hold ``home``'s lock file, so one server at a time uses a home (the kernel releases it
    when the process dies); None, after saying which server holds it, if another one does."""
    lock = (home / "tuskd.lock").open("a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            pid, where = ((home / "tuskd.pid").read_text().split() + ["?", "?"])[:2]
        except OSError:
            pid, where = "?", "?"
        print(
            f"tuskd: a tusk server already runs on {home} (pid {pid}, at {where}); "
            "stop it with `tusk down`, or use another TUSK_HOME",
            file=sys.stderr,
            flush=True,
        )
        lock.close()
        return None
    return lock


def quiet_garbage_collector() -> None:
    """Keep Python's cycle collector from scanning the server's long-lived objects over and
    over. What start-up made (modules, the app, caches) is frozen out of its scans, and it runs
    after 10,000 new objects instead of 700: a job master making a task and recording a result
    per datum otherwise spends about a sixth of its time in collections that find little.
    Objects are still freed as their last reference goes; only cycles wait a little longer."""
    gc.freeze()
    gc.set_threshold(10_000, 20, 10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tuskd", description="the tusk server")
    parser.add_argument("--home", help="data directory (default $TUSK_HOME or ~/.tusk)")
    parser.add_argument("--host", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 30650)")
    parser.add_argument(
        "--grpc-port", type=int, help="port of the gRPC API (default: the same port as HTTP)"
    )
    args = parser.parse_args(argv)

    settings = Settings.from_env(args.home)
    overrides = {
        k: v
        for k, v in (("host", args.host), ("port", args.port), ("grpc_port", args.grpc_port))
        if v is not None
    }
    if overrides:
        settings = Settings(**{**settings.__dict__, **overrides})
    if not is_loopback(settings.host) and not settings.auth_token:
        print(
            f"tuskd: refusing to listen on {settings.host} without an auth token; "
            "set TUSK_AUTH_TOKEN (clients set the same variable)",
            file=sys.stderr,
        )
        return 2
    Path(settings.home).mkdir(parents=True, exist_ok=True)
    lock = _lock_home(Path(settings.home))  # held until this process ends
    if lock is None:
        return 3
    serverlog.install()
    engine = Engine(settings)
    pidfile = Path(settings.home) / "tuskd.pid"
    pidfile.write_text(f"{os.getpid()}\n{settings.host}:{settings.port}\n")
    app = create_app(engine)
    start = getattr(engine, "start", None)
    if callable(start):
        start()
    shared = settings.grpc_port in (None, settings.port)
    try:
        grpc_server = GrpcServer(engine, settings.host, None if shared else settings.grpc_port)
    except OSError as exc:
        print(f"tuskd: {exc}", file=sys.stderr, flush=True)
        engine.close()
        return 4
    grpc_server.start()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=shared_port(AutoHTTPProtocol, grpc_server.port) if shared else "auto",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
    quiet_garbage_collector()
    try:
        server.run()
    finally:
        grpc_server.stop()
        stop = getattr(engine, "stop", None)
        if callable(stop):
            stop()
        engine.close()
        try:
            if pidfile.read_text().split()[0] == str(os.getpid()):
                pidfile.unlink()
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
