"""Running one datum task: materialise /pfs, run the user's command, upload /pfs/out."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from tusk.errors import TuskError
from tusk.storage import ObjectStore, open_object_store
from tusk.worker.cpus import HomeCpu
from tusk.worker.files import (
    DatumFailed,
    Materialised,
    collect_outputs,
    materialise_inputs,
    writes_in_readonly_dirs,
)
from tusk.worker.protocol import DatumResult, DatumTask, LogLine, OutputFile, shared_fields
from tusk.worker.runtimes import (
    ImageNotFound,
    LimitExceeded,
    RuntimeUnavailable,
    Sandbox,
    SandboxDied,
    SandboxSpec,
    start_sandbox,
)
from tusk.worker.runtimes.agent import AgentResult
from tusk.worker.runtimes.base import force_rmtree, input_bytes
from tusk.worker.runtimes.gpus import GpuUnavailable
from tusk.worker.runtimes.gpus import assign as assign_gpus
from tusk.worker.settings import WorkerSettings

if TYPE_CHECKING:
    from tusk.worker.spout import SpoutProcess


@dataclass(frozen=True, slots=True)
class _Plan:
    """How the command runs in the sandbox: argv, env, cwd and stdin as user code sees them."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    stdin: bytes | None


BATCH_SOCKET_VARIABLE = "TUSK_NEXT_DATUM_SOCKET"  # where `next datum` finds its worker

# The PATH of an image that sets none (as Docker and podman give one).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Worker:
    """Runs datum tasks one at a time in one sandbox, kept while the tasks' sandbox settings
    (runtime, image, user, limits) stay the same; caches object stores between tasks."""

    def __init__(
        self,
        name: str = "",
        *,
        settings: WorkerSettings,
        open_store: Callable[[str], ObjectStore] = open_object_store,
    ) -> None:
        self.name = name
        self.settings = settings
        self._open_store = open_store
        self._stores: dict[str, ObjectStore] = {}
        self.sandbox: Sandbox | None = None
        self.spout: SpoutProcess | None = None  # a spout's code, running between its tasks
        self.batch: BatchSession | None = None  # datum batching's user code, between datums
        self.inputs_on_disk_for = ""  # the job that put the sandbox's inputs on disk (if one)
        self.home = HomeCpu(settings.home_cpu)  # the thread's CPU while batching's code runs
        # Called once a datum's command has started and before the worker waits for it: what
        # the worker has to do anyway (its last result, the next task) is done meanwhile.
        self.while_running: Callable[[], None] | None = None

    def store(self, url: str) -> ObjectStore:
        """The object store at ``url``, opened once per worker."""
        store = self._stores.get(url)
        if store is None:
            store = self._stores[url] = self._open_store(url)
        return store

    def sandbox_for(self, task: DatumTask, inputs: int = 0) -> Sandbox:
        """This worker's sandbox for ``task``, whose inputs take ``inputs`` bytes (see
        ``input_bytes``), started when there is none (or another). A new sandbox has its
        inputs in memory when they fit in the settings' ``input_memory``. A sandbox that has
        them on disk for a datum too large is kept for the rest of that datum's job (a job's
        largest datums come first), not for the next job's."""
        settings = self.settings
        default_memory = settings.memory_limit
        try:
            gpus = assign_gpus(task.gpus, settings.gpu_devices)
        except GpuUnavailable as e:
            raise DatumFailed(str(e)) from None
        spec = SandboxSpec(
            runtime=task.runtime,
            image=task.image,
            user=task.user,
            cpu=task.cpu,
            memory=task.memory or (str(default_memory) if default_memory else None),
            pids=settings.pids_limit,
            network=task.network,
            sandbox_uid=settings.sandbox_uid,
            podman_flags=settings.podman_flags,
            disk=task.disk if task.disk is not None else settings.disk_limit,
            gpus=gpus.devices,
            gpu_ids=gpus.ids,
            secret_mounts=task.secret_mounts,
            spout=task.spout,
            cpus=settings.cpus,
            input_memory=(
                settings.input_memory
                if settings.input_memory is not None and inputs <= settings.input_memory
                else None
            ),
        )
        sandbox = self.sandbox
        if (
            sandbox is not None
            and replace(sandbox.spec, input_memory=spec.input_memory) == spec
            and sandbox.dirs.holds_inputs(inputs)
            and (spec.input_memory is None or self.inputs_on_disk_for in ("", task.job_id))
            and sandbox.alive()
        ):
            return sandbox
        self.close()
        # the job whose datum was too large for memory: its next datums stay on disk
        self.inputs_on_disk_for = task.job_id if spec.input_memory != settings.input_memory else ""
        try:
            self.sandbox = start_sandbox(spec, self.settings.scratch_root)
        except (ImageNotFound, SandboxDied, RuntimeUnavailable) as e:
            raise DatumFailed(str(e)) from None
        except (OSError, ValueError) as e:
            raise DatumFailed(f"cannot start the {task.runtime} sandbox: {e}") from None
        return self.sandbox

    def batch_for(self, task: DatumTask) -> BatchSession | None:
        """Datum batching's running code when ``task`` is the next datum of its job."""
        session = self.batch
        if session is None or not task.datum_batching or session.shared != shared_fields(task):
            return None
        return session

    def end_batch(self) -> None:
        """End datum batching's user code, waiting in ``next datum``: no datum is left for it
        (the agent kills it). Its /tmp goes with it."""
        session, self.batch = self.batch, None
        if session is None:
            return
        self.home.release()
        sandbox = session.sandbox
        try:
            sandbox.agent.answer(None)
            while not isinstance(sandbox.agent.wait([]), AgentResult):
                sandbox.agent.answer(None)
        except (SandboxDied, OSError, ValueError):
            self.drop_sandbox()
            return
        with contextlib.suppress(OSError):
            sandbox.dirs.clear()

    def drop_sandbox(self) -> None:
        """Forget a sandbox that died (its next task starts a fresh one)."""
        self.batch = None
        self.home.release()
        sandbox, self.sandbox = self.sandbox, None
        spout, self.spout = self.spout, None  # its code ends with its sandbox
        if spout is not None:
            with contextlib.suppress(OSError):
                spout.reader.close()
        if sandbox is not None:
            with contextlib.suppress(Exception):
                sandbox.close()

    def run(self, task: DatumTask) -> DatumResult:
        """Run ``task``; user code failing (or inputs that cannot be read) is a failed result."""
        if task.spout:
            from tusk.worker.spout import next_stream

            return next_stream(self, task)
        if self.batch is not None and not task.datum_batching:
            self.end_batch()
        run = _DatumRun(self, task)
        try:
            return run.execute()
        finally:
            run.cleanup()

    def close(self) -> None:
        """End the sandbox (and remove its directories)."""
        self.end_batch()
        self.drop_sandbox()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _DatumRun:
    def __init__(self, worker: Worker, task: DatumTask) -> None:
        self.worker = worker
        self.task = task
        self.logs: list[LogLine] = []
        self.scratch: str | None = None
        self.sandbox: Sandbox | None = None
        self.inputs = Materialised()
        self.out_empty = False  # collecting found nothing in /pfs/out
        self.exit_code: int | None = None
        self.recovered = False
        self.seconds = {"download": 0.0, "process": 0.0, "upload": 0.0}
        self.phase = "download"
        self._phase_started = time.perf_counter()

    def log(self, line: str) -> None:
        self.logs.append((time.time(), "system", line))

    def result(
        self,
        ok: bool,
        reason: str = "",
        outputs: tuple[OutputFile, ...] = (),
        dirs: tuple[str, ...] = (),
        bytes_up: int = 0,
    ) -> DatumResult:
        if not ok:
            self.log(f"failed to process datum with error: {reason}")
        return DatumResult(
            task_id=self.task.task_id,
            ok=ok,
            exit_code=self.exit_code,
            reason=reason,
            recovered=self.recovered and not ok,
            logs=tuple(self.logs),
            bytes_down=self.inputs.bytes_down,
            seconds_download=self.seconds["download"],
            seconds_process=self.seconds["process"],
            seconds_upload=self.seconds["upload"],
            worker=self.worker.name,
            outputs=outputs,
            dirs=dirs,
            bytes_up=bytes_up,
        )

    def execute(self) -> DatumResult:
        task = self.task
        try:
            store = self.worker.store(task.store_url)
        except TuskError as e:
            return self.result(False, f"cannot open object store {task.store_url}: {e.message}")
        # The datum's fresh scratch dir is what user code sees as /pfs (one level, since every
        # directory made and removed per datum costs ~0.1 ms on some disks).
        try:
            self.phase_start("download", "starting to download data")
            # the next datum of datum batching's running code: its sandbox is known
            session = self.worker.batch_for(task)
            inputs = task_input_bytes(task)
            if session is not None and not session.sandbox.dirs.holds_inputs(inputs):
                self.worker.end_batch()  # its inputs go to the disk, in another sandbox
                session = None
            if session is None:
                sandbox = self.sandbox = self.worker.sandbox_for(task, inputs)
            else:
                sandbox = self.sandbox = session.sandbox
            if sandbox.limits_note:
                self.log(sandbox.limits_note)
            real_pfs = self.scratch = sandbox.dirs.pfs
            if task.secret_files:
                if sandbox.image is None:
                    raise DatumFailed(
                        "secrets with a mount_path need a sandbox (bwrap or podman): the host "
                        "runtime cannot mount them (use env_var and key instead)"
                    )
                sandbox.dirs.write_secrets(task.secret_files)
            dirs = sandbox.dirs
            present, dirs.pfs_inputs = dirs.pfs_inputs, None  # not known until all are there
            self.inputs = materialise_inputs(task.inputs, real_pfs, store, present)
            dirs.pfs_inputs = self.inputs.names
            self.phase_end("download", "finished downloading data")

            self.phase_start("process")
            self.log(f"beginning to run user code (runtime: {sandbox.description})")
            if task.datum_batching:
                self.run_batched(sandbox, session)
            else:
                plan = self.plan(sandbox)
                try:
                    self.run_user_code(sandbox, plan)
                except DatumFailed:
                    if task.err_cmd and self.worker.sandbox is sandbox:
                        self.run_err_cmd(sandbox, plan)
                    raise
            self.phase_end("process", "finished running user code")

            self.phase_start("upload", "starting to upload output")
            collected = collect_outputs(real_pfs, self.inputs.by_path, store, task.max_output_bytes)
            self.out_empty = not collected.files and not collected.dirs
            self.phase_end("upload", "finished uploading output")
        except DatumFailed as e:
            self.phase_end(self.phase, f"errored {self.phase_verb()}", str(e))
            return self.result(False, str(e))
        except OSError as e:  # the scratch dir: full disk, odd names
            reason = f"worker error while {self.phase_verb()}: {e}"
            self.phase_end(self.phase, f"errored {self.phase_verb()}", reason)
            return self.result(False, reason)
        return self.result(
            True,
            outputs=tuple(collected.files),
            dirs=tuple(collected.dirs),
            bytes_up=collected.bytes_up,
        )

    def phase_start(self, phase: str, line: str = "") -> None:
        self.phase = phase
        self._phase_started = time.perf_counter()
        if line:
            self.log(line)

    def phase_end(self, phase: str, line: str, error: str = "") -> None:
        seconds = time.perf_counter() - self._phase_started
        self.seconds[phase] = seconds
        suffix = f": {error}" if error else ""
        self.log(f"{line} after {_duration(seconds)}{suffix}")

    def phase_verb(self) -> str:
        return {
            "download": "downloading data",
            "process": "running user code",
            "upload": "uploading output",
        }[self.phase]

    def plan(self, sandbox: Sandbox) -> _Plan:
        task = self.task
        image = sandbox.image
        argv = list(task.cmd) or list(image.entrypoint if image else ())
        if not argv:
            raise DatumFailed("the transform has no cmd (and the image no entrypoint)")
        pfs = sandbox.pfs_view
        if image is None:  # host mode: the worker's basic variables
            env = dict(self.worker.settings.user_env)
        else:
            env = dict(image.env)
            env.setdefault("PATH", DEFAULT_PATH)
        env.update(task.env)
        env.update(task.secret_env)
        env.update(self.datum_env(pfs))
        env["PFS"] = pfs
        if sandbox.spec.gpu_ids:
            visible = ",".join(sandbox.spec.gpu_ids)
            env["NVIDIA_VISIBLE_DEVICES"] = env["CUDA_VISIBLE_DEVICES"] = visible
        cwd = task.working_dir or (image.workdir if image else "")
        stdin = None
        if task.stdin:
            stdin = ("\n".join(task.stdin) + "\n").encode()
        return _Plan(argv, env, cwd, stdin)

    def datum_env(self, pfs: str) -> dict[str, str]:
        """This datum's own variables (its inputs' paths and commits, its ids), which
        datum batching's code is given at each ``next datum``."""
        task = self.task
        env = {}
        for datum_input in task.inputs:
            glob_path = datum_input.glob_path.rstrip("/")
            env[datum_input.name] = f"{pfs}/{datum_input.name}{glob_path}"
            env[f"{datum_input.name}_COMMIT"] = datum_input.commit
        env["PACH_JOB_ID"] = task.job_id
        env["PACH_OUTPUT_COMMIT_ID"] = task.output_commit_id
        env["PACH_DATUM_ID"] = task.datum_id
        return env

    def run_err_cmd(self, sandbox: Sandbox, plan: _Plan) -> None:
        """2.x ``err_cmd``: after cmd failed, run it (with ``err_stdin``) in the same sandbox
        and environment; exit 0 marks the datum recovered (its output is not kept)."""
        task = self.task
        stdin = ("\n".join(task.err_stdin) + "\n").encode() if task.err_stdin else None
        err_plan = _Plan(list(task.err_cmd), plan.env, plan.cwd, stdin)
        self.log("running err_cmd")
        code = self.exit_code
        try:
            self.run_user_code(sandbox, err_plan)
        except DatumFailed as e:
            self.log(f"err_cmd failed: {e}")
        else:
            self.recovered = True
            self.log("err_cmd succeeded: the datum is recovered (its output is not kept)")
        self.exit_code = code

    def run_batched(self, sandbox: Sandbox, session: BatchSession | None) -> None:
        """Datum batching: hand this datum to the user code waiting in ``next datum`` (started
        first when none runs for this job), and wait until it asks for the next one."""
        worker, task = self.worker, self.task
        try:
            if session is None:
                session = self.start_batch(sandbox)
                if session is None:
                    return  # it ran the datum like a plain command
            sandbox.agent.answer(self.datum_env(sandbox.pfs_view))
            if worker.while_running is not None:
                worker.while_running()
            event = sandbox.agent.wait(self.logs)
            if isinstance(event, AgentResult):
                worker.batch = None
                worker.home.release()
                sandbox.check_limits(event)
                if event.error == "gone":
                    raise DatumFailed(
                        "the user code of datum batching exited before it took the datum "
                        f"({_ended(event)}); the datum is retried"
                    )
                self.judge(event, session.plan)
                return
            sandbox.check_limits(None)
        except LimitExceeded as e:
            worker.end_batch()
            if not sandbox.alive():
                worker.drop_sandbox()
            raise DatumFailed(str(e)) from None
        except SandboxDied as e:
            worker.drop_sandbox()
            raise DatumFailed(
                f"the {task.runtime} sandbox died while running the datum ({e}); "
                "the datum is retried in a fresh one"
            ) from None
        except ValueError as e:
            worker.end_batch()
            raise DatumFailed(str(e)) from None
        if event.startswith(b"e"):
            message = event[1:].decode("utf-8", "replace").strip() or "failed"
            raise DatumFailed(f"user code reported an error: {message}")

    def start_batch(self, sandbox: Sandbox) -> BatchSession | None:
        """Start datum batching's code for this task's job (ending any other) and wait for its
        first ``next datum``; None when it ended without asking (judged as a plain command)."""
        worker, task = self.worker, self.task
        worker.end_batch()
        plan = self.plan(sandbox)
        own = self.datum_env(sandbox.pfs_view)  # given at each `next datum`, the rest once
        base_env = {k: v for k, v in plan.env.items() if k not in own}
        env = batch_environment(base_env, sandbox)
        home = worker.home.hold()
        sandbox.start_batch(plan.argv, env, plan.cwd, plan.stdin, task.timeout_seconds, home)
        session = worker.batch = BatchSession(sandbox, shared_fields(task), plan)
        self.log("started the user code of datum batching")
        first = sandbox.agent.wait(self.logs)  # its first `next datum`
        if not isinstance(first, AgentResult):
            return session
        worker.batch = None
        worker.home.release()
        sandbox.check_limits(first)
        self.judge(first, plan)
        return None

    def run_user_code(self, sandbox: Sandbox, plan: _Plan) -> None:
        task = self.task
        try:
            done = sandbox.run(
                plan.argv,
                plan.env,
                plan.cwd,
                plan.stdin,
                task.timeout_seconds,
                self.logs,
                started=self.worker.while_running,
            )
        except LimitExceeded as e:
            if not sandbox.alive():
                self.worker.drop_sandbox()
            raise DatumFailed(str(e)) from None
        except SandboxDied as e:
            self.worker.drop_sandbox()
            raise DatumFailed(
                f"the {task.runtime} sandbox died while running the datum ({e}); "
                "the datum is retried in a fresh one"
            ) from None
        except ValueError as e:
            raise DatumFailed(str(e)) from None
        self.judge(done, plan)

    def judge(self, done: AgentResult, plan: _Plan) -> None:
        """DatumFailed unless the command ended well (exit 0 or an accepted code)."""
        task = self.task
        where = f" in image {task.image}" if task.image and task.runtime != "host" else ""
        if done.error == "socket":
            raise DatumFailed(
                f"cannot listen for next datum in the sandbox: {os.strerror(done.errno)}"
            )
        if done.error == "exec":
            if done.errno == errno.ENOENT:
                reason = f"command not found{where}: {plan.argv[0]}"
            else:
                reason = f"cannot run {plan.argv[0]}{where}: {os.strerror(done.errno)}"
            # the user's log says it too, where they look first (`get-logs`)
            self.logs.append((time.time(), "stderr", reason))
            raise DatumFailed(reason)
        if done.error == "chdir":
            raise DatumFailed(
                f"working directory {plan.cwd} does not exist{where}"
                if done.errno == errno.ENOENT
                else f"cannot enter working directory {plan.cwd}: {os.strerror(done.errno)}"
            )
        if done.timed_out:
            raise DatumFailed(f"datum timed out after {task.timeout_seconds:g}s")
        code = done.returncode
        assert code is not None
        self.exit_code = code
        if code == 0 or code in task.accept_return_code:
            return
        if code < 0:
            raise DatumFailed(f"killed by signal {_signal_name(-code)}")
        reason = f"exit code {code}"
        last = next((line for _, stream, line in reversed(self.logs) if stream == "stderr"), "")
        raise DatumFailed(f"{reason}: {last}" if last else reason)

    def cleanup(self) -> None:
        if self.scratch is None or self.sandbox is None or self.worker.sandbox is not self.sandbox:
            return  # nothing made, or the sandbox died and its directories went with it
        real_pfs = self.scratch
        inputs = self.inputs
        dirs = self.sandbox.dirs
        try:
            # What this run made is known, so removing it is a few syscalls, not a tree walk;
            # /pfs/<input> stays, empty, for the next datum (with /pfs read-only meanwhile;
            # read-only itself when the worker can write there all the same).
            if not writes_in_readonly_dirs():
                for directory in inputs.readonly_dirs:
                    os.chmod(directory, 0o755)
            for path in inputs.by_path:
                os.unlink(path)
            for directory in inputs.readonly_dirs:
                if os.path.dirname(directory) != real_pfs:
                    os.rmdir(directory)
        except OSError:  # user code added to the inputs, or a run that stopped half-way
            dirs.pfs_inputs = None  # the next datum empties /pfs first
            with contextlib.suppress(OSError):
                os.chmod(real_pfs, 0o755)
                for name in os.listdir(real_pfs):
                    if name != "out":
                        force_rmtree(os.path.join(real_pfs, name))
        batch = self.worker.batch
        # datum batching's user code lives on: only /pfs/out is per datum (and left as it is
        # when collecting found it empty, the code waiting meanwhile)
        batching = batch is not None and batch.sandbox is self.sandbox
        if batching and self.out_empty:
            return
        with contextlib.suppress(OSError):
            self.sandbox.dirs.clear(out_only=batching)


@dataclass(slots=True)
class BatchSession:
    """Datum batching's user code, running in ``sandbox`` and waiting in ``next datum``."""

    sandbox: Sandbox
    shared: tuple[object, ...]  # the fields of its job's tasks (shared_fields)
    plan: _Plan  # how it was started


def batch_environment(base: dict[str, str], sandbox: Sandbox) -> dict[str, str]:
    """The environment of datum batching's user code: ``pachctl`` (``next datum`` only) first on
    PATH, ``tusk_batch`` on PYTHONPATH, and the socket they speak to."""
    env = dict(base)
    tools = sandbox.tools_view
    env["PATH"] = f"{tools}/bin:" + env.get("PATH", DEFAULT_PATH)
    python_path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = f"{tools}/python" + (f":{python_path}" if python_path else "")
    env[BATCH_SOCKET_VARIABLE] = f"{sandbox.run_view}/next.sock"
    return env


def _ended(result: AgentResult) -> str:
    code = result.returncode
    if code is None:
        return "timed out"
    return f"killed by signal {_signal_name(-code)}" if code < 0 else f"exit code {code}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.3f}ms"
    return f"{seconds:.3f}s"


def task_input_bytes(task: DatumTask) -> int:
    """What the task's input files take under /pfs (see ``input_bytes``; empty files for an
    input of ``empty_files``)."""
    return input_bytes(
        0 if i.empty_files else f.size for i in task.inputs for f in i.files
    ) + input_bytes(0 for i in task.inputs for _ in i.dirs)
