"""Running one datum task: materialise /pfs, run the user's command, upload /pfs/out."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

from tusk.errors import TuskError
from tusk.storage import ObjectStore, open_object_store
from tusk.worker.files import DatumFailed, Materialised, collect_outputs, materialise_inputs
from tusk.worker.process import run_command
from tusk.worker.protocol import DatumResult, DatumTask, LogLine, OutputFile
from tusk.worker.sandbox import PFS, Bubblewrap, from_sandbox_path, rewrite_pfs
from tusk.worker.settings import WorkerSettings


@dataclass(frozen=True, slots=True)
class _Plan:
    """How the command runs: argv, env, cwd and stdin as the host executes them."""

    argv: list[str]
    executable: str | None
    env: dict[str, str]
    cwd: str | None
    stdin: bytes | None
    description: str


class Worker:
    """Runs datum tasks one at a time; caches object stores and the sandbox probe between tasks."""

    def __init__(
        self,
        name: str = "",
        *,
        settings: WorkerSettings,
        bubblewrap: Bubblewrap | None = None,
        open_store: Callable[[str], ObjectStore] = open_object_store,
    ) -> None:
        self.name = name
        self.settings = settings
        self.bubblewrap = bubblewrap or Bubblewrap()
        self._open_store = open_store
        self._stores: dict[str, ObjectStore] = {}

    def store(self, url: str) -> ObjectStore:
        """The object store at ``url``, opened once per worker."""
        store = self._stores.get(url)
        if store is None:
            store = self._stores[url] = self._open_store(url)
        return store

    def run(self, task: DatumTask) -> DatumResult:
        """Run ``task``; user code failing (or inputs that cannot be read) is a failed result."""
        run = _DatumRun(self, task)
        try:
            return run.execute()
        finally:
            run.cleanup()


class _DatumRun:
    def __init__(self, worker: Worker, task: DatumTask) -> None:
        self.worker = worker
        self.task = task
        self.logs: list[LogLine] = []
        self.scratch: str | None = None
        self.inputs = Materialised()
        self.exit_code: int | None = None
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
            scratch_root = self.worker.settings.scratch_root
            real_pfs = self.scratch = tempfile.mkdtemp(prefix="tusk-pfs-", dir=scratch_root)
            os.mkdir(real_pfs + "/out")
            self.inputs = materialise_inputs(task.inputs, real_pfs, store)
            os.chmod(real_pfs, 0o555)
            self.phase_end("download", "finished downloading data")

            self.phase_start("process")
            plan = self.plan(real_pfs)
            self.log(f"beginning to run user code ({plan.description})")
            self.run_user_code(plan)
            self.phase_end("process", "finished running user code")

            self.phase_start("upload", "starting to upload output")
            collected = collect_outputs(real_pfs, self.inputs.by_path, store, task.max_output_bytes)
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

    def plan(self, real_pfs: str) -> _Plan:
        task = self.task
        if not task.cmd:
            raise DatumFailed("the transform has no cmd")
        sandboxed = False
        note = ""
        if task.sandbox != "none":
            problem = self.worker.bubblewrap.problem
            if problem is None:
                sandboxed = True
            elif task.sandbox == "bwrap":
                raise DatumFailed(f"sandbox bwrap was asked for but cannot be used: {problem}")
            else:
                note = f"; bwrap unavailable: {problem}"
        pfs = PFS if sandboxed else real_pfs

        def host_view(value: str) -> str:
            return value if sandboxed else rewrite_pfs(value, real_pfs)

        env = dict(self.worker.settings.user_env)
        env.update((k, host_view(v)) for k, v in task.env.items())
        for datum_input in task.inputs:
            glob_path = datum_input.glob_path.rstrip("/")
            env[datum_input.name] = f"{pfs}/{datum_input.name}{glob_path}"
            env[f"{datum_input.name}_COMMIT"] = datum_input.commit
        env["PACH_JOB_ID"] = task.job_id
        env["PACH_OUTPUT_COMMIT_ID"] = task.output_commit_id
        env["PACH_DATUM_ID"] = task.datum_id
        env["PFS"] = pfs

        argv = [host_view(a) for a in task.cmd]
        cwd = os.path.abspath(host_view(task.working_dir)) if task.working_dir else None
        # What user code sees as paths, translated to the host to check them here.
        host_cwd = from_sandbox_path(cwd, real_pfs) if cwd and sandboxed else cwd
        if host_cwd is not None and not os.path.isdir(host_cwd):
            raise DatumFailed(f"working directory {task.working_dir} does not exist")
        program = _find_program(argv[0], env["PATH"], host_cwd, real_pfs if sandboxed else None)
        if program is None:
            raise DatumFailed(f"command not found: {task.cmd[0]}")
        stdin = None
        if task.stdin:
            stdin = ("\n".join(host_view(line) for line in task.stdin) + "\n").encode()
        if sandboxed:
            argv = self.worker.bubblewrap.wrap(argv, real_pfs, cwd or os.getcwd())
            return _Plan(argv, None, env, None, stdin, "sandbox: bwrap, /pfs mounted read-only")
        description = f"sandbox: none, /pfs rewritten to {real_pfs}{note}"
        # The program found above, so the exec does not search PATH again.
        return _Plan(argv, program, env, cwd, stdin, description)

    def run_user_code(self, plan: _Plan) -> None:
        task = self.task
        try:
            done = run_command(
                plan.argv,
                executable=plan.executable,
                env=plan.env,
                cwd=plan.cwd,
                stdin=plan.stdin,
                timeout=task.timeout_seconds,
                logs=self.logs,
            )
        except OSError as e:
            raise DatumFailed(f"cannot run {task.cmd[0]}: {e.strerror or e}") from e
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
        if self.scratch is None:
            return
        real_pfs = self.scratch
        inputs = self.inputs
        try:
            # What this run made is known, so removing it is a few syscalls, not a tree walk.
            for directory in (real_pfs, *inputs.readonly_dirs):
                os.chmod(directory, 0o755)
            for path in inputs.by_path:
                os.unlink(path)
            for directory in inputs.readonly_dirs:
                os.rmdir(directory)
            try:
                os.rmdir(real_pfs + "/out")
            except OSError:
                _remove_tree(real_pfs + "/out")
            os.rmdir(real_pfs)
        except OSError:  # user code added to the inputs, or a run that stopped half-way
            _remove_tree(self.scratch)


def _find_program(program: str, path: str, cwd: str | None, sandbox_pfs: str | None) -> str | None:
    """The host path of the executable that ``program`` names, None if there is none."""
    if "/" not in program:
        return shutil.which(program, path=path)
    if sandbox_pfs is not None:
        program = from_sandbox_path(program, sandbox_pfs)
    full = os.path.join(cwd or os.getcwd(), program)
    return full if os.path.isfile(full) and os.access(full, os.X_OK) else None


def _remove_tree(path: str) -> None:
    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=_make_removable)
    else:
        shutil.rmtree(path, onerror=_make_removable)


def _make_removable(function: object, path: str, error: object) -> None:
    # User code may leave directories without write permission; open them up and retry.
    with contextlib.suppress(OSError):
        os.chmod(os.path.dirname(path), 0o755)
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, 0o755)
            _remove_tree(path)
        else:
            os.unlink(path)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.3f}ms"
    return f"{seconds:.3f}s"
