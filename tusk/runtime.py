"""The composition root: settings in, concrete stores, services and executor out.

This is the only module of the server that reads environment variables or picks backends. It
also decides the environment of the local executor's worker processes (:func:`worker_env`):
a minimal one, which :mod:`tusk.worker` reads on the worker's side of the datum protocol.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tusk import faults
from tusk.admin.service import AdminService
from tusk.api.models import CommitKey
from tusk.errors import InvalidArgument, InvalidSpec
from tusk.faults import CRASH_POINTS
from tusk.meta import lease_for, open_metadata_store
from tusk.pfs.commits import CommitService
from tusk.pfs.context import SPEC_REPO, PfsContext
from tusk.pfs.files import FileService
from tusk.pfs.projects import ProjectService
from tusk.pfs.repos import RepoService
from tusk.pfs.tree import Tree
from tusk.pps.executors.base import Executor
from tusk.pps.executors.local import LocalExecutor
from tusk.pps.jobs import JobService
from tusk.pps.lineage import LineageService
from tusk.pps.pipelines import PipelineService
from tusk.pps.running.egress import EgressTargets
from tusk.pps.running.image import CodeRuntime, check_choice
from tusk.pps.running.runner import JobRunner
from tusk.pps.scheduling.cron import CronTicker
from tusk.pps.scheduling.git import GitPoller
from tusk.pps.scheduling.lease import LeaderElection
from tusk.pps.scheduling.scheduler import Scheduler
from tusk.pps.scheduling.trigger import Trigger
from tusk.pps.secrets import SecretService, SecretVault
from tusk.pps.spec import PipelineSpec
from tusk.storage import open_object_store
from tusk.worker.settings import (
    GPU_DEVICES_ENV,
    WORKER_SETTINGS_ENV,
    WorkerSettings,
    basic_env,
)

DEFAULT_PORT = 30650


@dataclass(frozen=True)
class Settings:
    """Where tusk keeps its data and which backends it uses."""

    home: Path
    metadata_url: str
    object_url: str
    executor: str = "local"
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    # Pachyderm's gRPC API: on ``port`` beside the HTTP API unless a port of its own is given
    grpc_port: int | None = None
    auth_token: str | None = None
    runtime: str = "auto"  # where user code runs: auto, bwrap, podman, docker or host
    network: bool = False  # sandboxes share the host's network (else loopback only)
    service_host: str = "127.0.0.1"  # where service pipelines' external ports are published
    # Host names the server answers to besides loopback ones (TUSK_ALLOWED_HOSTS, comma-separated)
    allowed_hosts: tuple[str, ...] = ()
    max_parallelism: int | None = None  # workers per pipeline; default max(16, 4 per CPU)
    git_poll_seconds: float = 60.0  # how often git inputs are asked for new commits
    git_file_urls: bool = False  # git inputs may read file:// repositories on this machine
    # Directories file:// egress may write under (TUSK_EGRESS_DIRS, colon-separated)
    egress_dirs: tuple[str, ...] = ()
    secrets_dir: Path | None = None  # where secret values live; default <home>/secrets
    # Workers of a pipeline without standby or scale_down_threshold stop after this long with no
    # job (TUSK_WORKER_IDLE_SECONDS); they start again with its next job
    worker_idle_seconds: float = 600.0
    crash_at: frozenset[str] = frozenset()  # fault injection, for tests only (tusk.faults)

    @classmethod
    def for_home(cls, home: str | Path, **overrides: object) -> Settings:
        """Settings with every store under ``home`` unless overridden."""
        home = Path(home).expanduser().resolve()
        values: dict[str, object] = {
            "home": home,
            "metadata_url": f"sqlite:///{home / 'tusk.db'}",
            "object_url": f"file://{home / 'objects'}",
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, home: str | Path | None = None) -> Settings:
        """Settings from the ``TUSK_*`` environment variables."""
        env = os.environ
        port = env.get("TUSK_PORT")
        grpc_port = env.get("TUSK_GRPC_PORT")
        max_parallelism = env.get("TUSK_MAX_PARALLELISM")
        _check_worker_settings(env)
        return cls.for_home(
            home or env.get("TUSK_HOME") or Path.home() / ".tusk",
            metadata_url=env.get("TUSK_METADATA_URL"),
            object_url=env.get("TUSK_OBJECT_URL"),
            executor=env.get("TUSK_EXECUTOR"),
            host=env.get("TUSK_HOST"),
            port=int(port) if port else None,
            grpc_port=_positive_int("TUSK_GRPC_PORT", grpc_port),
            auth_token=env.get("TUSK_AUTH_TOKEN"),
            runtime=env.get("TUSK_RUNTIME"),
            network=_flag(env, "TUSK_SANDBOX_NETWORK"),
            service_host=env.get("TUSK_SERVICE_HOST") or None,
            allowed_hosts=tuple(
                h.strip() for h in env.get("TUSK_ALLOWED_HOSTS", "").split(",") if h.strip()
            )
            or None,
            max_parallelism=_positive_int("TUSK_MAX_PARALLELISM", max_parallelism),
            git_poll_seconds=_seconds("TUSK_GIT_POLL_SECONDS", env.get("TUSK_GIT_POLL_SECONDS")),
            worker_idle_seconds=_seconds(
                "TUSK_WORKER_IDLE_SECONDS", env.get("TUSK_WORKER_IDLE_SECONDS")
            ),
            git_file_urls=_yes("TUSK_GIT_ALLOW_FILE_URLS", env.get("TUSK_GIT_ALLOW_FILE_URLS")),
            egress_dirs=tuple(d for d in env.get("TUSK_EGRESS_DIRS", "").split(":") if d) or None,
            crash_at=_crash_points(env.get("TUSK_TEST_CRASH_AT", "")),
        )


def _flag(env: Mapping[str, str], name: str) -> bool | None:
    value = env.get(name)
    if value is None or value == "":
        return None
    if value.lower() in ("1", "true", "yes", "host"):
        return True
    if value.lower() in ("0", "false", "no", "none"):
        return False
    raise InvalidArgument(f"invalid {name}={value!r}", hint="use 1 (host network) or 0 (none)")


def _yes(name: str, raw: str | None) -> bool | None:
    value = (raw or "").lower()
    if value in ("", "0", "false", "no"):
        return None if value == "" else False
    if value in ("1", "true", "yes"):
        return True
    raise InvalidArgument(f"invalid {name}={value!r}", hint=f"use {name}=1 or unset it")


def _seconds(name: str, value: str | None) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not number > 0:
        raise InvalidArgument(
            f"{name}={value!r} is not a positive number of seconds", hint=f"unset {name}"
        )
    return number


def _check_worker_settings(env: Mapping[str, str]) -> None:
    """The workers' settings (``TUSK_SANDBOX_*``) parse, or InvalidArgument before any starts."""
    try:
        WorkerSettings.from_environ(env)
    except ValueError as e:
        raise InvalidArgument(str(e), hint="fix or unset the variable") from None


def _positive_int(name: str, value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise InvalidArgument(f"{name}={value!r} is not a positive number", hint=f"unset {name}")
    return number


def _crash_points(value: str) -> frozenset[str] | None:
    points = frozenset(p for p in value.split(",") if p)
    unknown = sorted(points - CRASH_POINTS)
    if unknown:
        raise InvalidArgument(
            f"TUSK_TEST_CRASH_AT names unknown crash points: {', '.join(unknown)}",
            hint=f"use some of {', '.join(sorted(CRASH_POINTS))} (tests only)",
        )
    return points or None


# What a worker process needs besides the basic variables user code gets: where to find tusk,
# and (for an S3 object store) the S3 client's settings, since workers upload their outputs.
_WORKER_PASSTHROUGH = ("PYTHONPATH", "XDG_CACHE_HOME", "CC", *WORKER_SETTINGS_ENV)
_S3_CLIENT_PREFIXES = ("AWS_",)


def worker_env(environ: Mapping[str, str], object_url: str) -> dict[str, str]:
    """The environment of a local worker process: a minimal one, never the server's own
    (no auth token, no metadata URL; S3 client settings only when the object store is S3)."""
    env = basic_env(dict(environ))
    env.update({k: environ[k] for k in _WORKER_PASSTHROUGH if environ.get(k)})
    if object_url.startswith("s3://"):
        env.update({k: v for k, v in environ.items() if k.startswith(_S3_CLIENT_PREFIXES)})
    return env


def make_executor(url: str, env: Mapping[str, str] | None = None) -> Executor:
    """The executor for ``url`` (``local`` or ``ray://host:port``); ``env`` is the local
    workers' environment."""
    if url == "local":
        return LocalExecutor(env)
    if url.startswith("ray://") or url == "ray":
        try:
            from tusk.pps.executors.ray import RayExecutor
        except ImportError:
            raise InvalidArgument(
                "the Ray executor is not available", hint="pip install 'tusk[ray]'"
            ) from None
        return RayExecutor(url)
    raise InvalidArgument(f"unknown executor {url!r}", hint="use local or ray://host:port")


class Engine:
    """All of tusk's services in-process (embedded mode); tuskd is an HTTP skin over one."""

    def __init__(self, settings: Settings | str | Path) -> None:
        if not isinstance(settings, Settings):
            settings = Settings.for_home(settings)
        self.settings = settings
        if settings.crash_at:
            faults.arm(settings.crash_at)
        settings.home.mkdir(parents=True, exist_ok=True)
        self.meta = open_metadata_store(settings.metadata_url)
        self.store = open_object_store(settings.object_url)
        self.ctx = PfsContext(meta=self.meta, store=self.store, tree=Tree(self.store))
        self.projects = ProjectService(self.ctx)
        self.repos = RepoService(self.ctx)
        self.commits = CommitService(self.ctx)
        self.files = FileService(self.ctx)
        self.repos.ensure(SPEC_REPO, kind="spec")
        self.executor = make_executor(
            settings.executor, worker_env(os.environ, settings.object_url)
        )
        # Secret values live in files under the server's home only (mode 0600, directory 0700).
        self.secrets = SecretService(
            self.meta, SecretVault(settings.secrets_dir or settings.home / "secrets")
        )
        self.egress = EgressTargets(settings.object_url, settings.egress_dirs)
        self.code = CodeRuntime(
            check_choice(settings.runtime), gpu_devices=os.environ.get(GPU_DEVICES_ENV) or "/dev"
        )
        if isinstance(self.executor, LocalExecutor):
            self.executor.runtime = self.code.chosen
        self.runner = JobRunner(
            self.ctx,
            self.executor,
            settings.object_url,
            self.code,
            network=settings.network,
            service_host=settings.service_host,
            secret_values=self.secrets.values,
            egress=self.egress,
        )
        self.scheduler = Scheduler(
            self.ctx, self.executor, self.runner, worker_idle_seconds=settings.worker_idle_seconds
        )
        self.trigger = Trigger(self.ctx)
        self.git = GitPoller(
            self.ctx,
            self.files,
            self.commits,
            poll_seconds=settings.git_poll_seconds,
            file_urls=settings.git_file_urls,
        )
        self.pipelines = PipelineService(
            self.ctx,
            self.repos,
            self.commits,
            self.files,
            self.scheduler,
            self.executor,
            code_check=self._check_spec,
            max_parallelism=settings.max_parallelism,
            git_check=self.git.check,
            service_host=settings.service_host,
        )
        self.jobs = JobService(self.ctx, self.scheduler, self.runner, self.executor)
        self.cron = CronTicker(self.ctx, self.files)
        self.admin = AdminService(self.ctx, self.repos, self.pipelines)
        self.lineage = LineageService(self.ctx)
        self._started = False

    def drop_commit_set(self, commit_id: str) -> list[CommitKey]:
        """Drop a commit set (see ``CommitService.drop``) and kill its jobs that have not
        ended, together or not at all, as pachd's DropCommitSet."""
        with self.meta.atomic():
            self.jobs.stop_set(commit_id, "its commit set was dropped")
            return self.commits.drop(commit_id)

    def _check_spec(self, spec: PipelineSpec) -> list[str]:
        """Refuse what no job of ``spec`` could do here (a missing secret, an egress nothing
        here can write); the warnings create-pipeline prints about its code."""
        self.secrets.check_spec(spec)
        self.egress.check(spec)
        warnings = self.code.check(spec)
        if self.code.name() == "host" and any(s.mount_path for s in spec.transform.secrets):
            raise InvalidSpec(
                "secrets with a mount_path need a sandbox, and this server runs pipelines on "
                "the host (TUSK_RUNTIME=host)",
                hint="use env_var and key, or run the server with a sandboxed runtime",
            )
        return warnings

    def start(self) -> None:
        """Take part in running the scheduler: whichever server holds the scheduler lease keeps
        the worker pools and one loop per pipeline and resumes unfinished jobs; the others serve
        the API and take over within seconds when the leader goes away."""
        if self._started:
            return
        self._started = True
        self.election = LeaderElection(
            lease_for(self.meta, str(self.settings.home)),
            self._lead,
            self._step_down,
            self._reconcile,
        )
        self.election.start()

    def _lead(self) -> None:
        self.trigger.recover()  # heads a crash left without their downstream jobs
        for info in self.pipelines.list():
            if not info.stopped:
                spec = PipelineSpec.model_validate(info.spec)
                self.pipelines.start_workers(info.name, info.version, spec)
        self.scheduler.start()
        self.cron.start()
        self.git.start()

    def _reconcile(self) -> None:
        """While leading: follow pipelines created, updated, stopped or deleted through other
        servers (their PipelineService only writes the metadata), and retry propagation that
        failed."""
        self.trigger.tick()
        with self.pipelines.lock:
            infos = {info.name: info for info in self.pipelines.list()}
            for name, info in infos.items():
                if info.stopped:
                    self.executor.drop_pool(name)
                else:
                    spec = PipelineSpec.model_validate(info.spec)
                    self.pipelines.start_workers(name, info.version, spec)
                self.scheduler.add(name)
            for name in list(self.scheduler.loops):
                if name not in infos:
                    self.scheduler.remove(name)
            for name in self.executor.pipelines():
                if name not in infos:
                    self.executor.drop_pool(name)

    def _step_down(self) -> None:
        self.cron.stop()
        self.git.stop()
        self.scheduler.stop()
        for info in self.pipelines.list():
            self.executor.drop_pool(info.name)

    def stop(self) -> None:
        """Leave the scheduler election and stop the workers."""
        self.election.stop()
        self.executor.close()

    def close(self) -> None:
        """Stop and close the stores."""
        if self._started:
            self.stop()
            self._started = False
        self.meta.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
