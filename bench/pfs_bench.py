"""PFS benchmarks: tusk through its real CLI and server, with the reference measured in the same run.

    python bench/pfs_bench.py            # full run (about 10-20 minutes on 2 cores)
    python bench/pfs_bench.py --quick    # smoke run (small sizes, one round, seconds)

Benchmarks (see bench/README.md): 1 put of a large file (vs ``dvc add``, ``dd``, BLAKE3),
2 the same file with 1 MiB appended (new bytes stored), 3 ``put-file -r`` of many 1 KiB files (vs
``dvc add`` of the directory), 4 change one file of 10,000 (vs of 10), 5 list/glob/diff over
100,000 files. Each round starts a fresh server and fresh DVC repos; the order of tusk and the
reference alternates between rounds. Trees are deleted only at the end of the whole run: on ext4
without a journal, creating files right after deleting tens of thousands is 4-5x slower.
"""

# The lambdas handed to timed()/median_of() run before the loop moves on.
# ruff: noqa: B023
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import blake3

from tusk.testing import Tuskd, clean_env

MiB = 1 << 20
CLI = [sys.executable, "-m", "tusk.cli.main"]
PER_DIR = 100


@dataclass(frozen=True)
class Config:
    big_bytes: int
    append_bytes: int
    small_counts: tuple[int, ...]
    small_size: int
    few_files: int
    rounds: int
    reps: int
    dvc: str | None
    workdir: Path
    only: frozenset[int]


# -- measurements ------------------------------------------------------------------------------
class Samples:
    """Named lists of values, one value per round (a round's own median where it repeats)."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = defaultdict(list)

    def add(self, key: str, value: float) -> None:
        self.values[key].append(value)

    def has(self, key: str) -> bool:
        return bool(self.values.get(key))

    def med(self, key: str) -> float:
        return statistics.median(self.values[key])

    def fmt(self, key: str, scale: float = 1.0, digits: int = 2, unit: str = "") -> str:
        vals = self.values.get(key)
        if not vals:
            return "n/a"
        m = statistics.median(vals) * scale
        lo, hi = min(vals) * scale, max(vals) * scale
        if len(vals) == 1:
            return f"{m:.{digits}f}{unit}"
        return f"{m:.{digits}f}{unit} ({lo:.{digits}f}–{hi:.{digits}f})"


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def median_of(reps: int, fn: Callable[[], object]) -> float:
    return statistics.median(timed(fn) for _ in range(reps))


def run(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    proc = subprocess.run(cmd, capture_output=True, env=env, cwd=cwd)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.decode()[-2000:]}"
        )
    return proc.stdout.decode()


def blake3_seconds(data: bytes) -> float:
    return timed(lambda: blake3.blake3(data, max_threads=blake3.blake3.AUTO).digest())


def du_bytes(path: Path) -> int:
    return int(run(["du", "-sb", str(path)]).split()[0])


# -- inputs ------------------------------------------------------------------------------------
def write_random(path: Path, size: int, block: int = 64 * MiB) -> None:
    with path.open("wb") as f:
        left = size
        while left:
            n = min(block, left)
            f.write(os.urandom(n))
            left -= n


def small_path(i: int) -> str:
    return f"dir{i // PER_DIR:04d}/f{i % PER_DIR:03d}.txt"


def make_small_tree(root: Path, count: int, size: int) -> None:
    """``count`` files of ``size`` random bytes, ``PER_DIR`` per directory; file i is the same in
    every tree (seeded by i), so the 10,000-file tree is a prefix of the 100,000-file one."""
    root.mkdir(parents=True)
    for d in range((count + PER_DIR - 1) // PER_DIR):
        (root / f"dir{d:04d}").mkdir()
    for i in range(count):
        head = i.to_bytes(8, "big")
        (root / small_path(i)).write_bytes((head * (size // 8 + 1))[:size])


# -- tusk --------------------------------------------------------------------------------------
class Server:
    """A tuskd process on a fresh home and a free port; the CLI and a Client talk to it."""

    def __init__(self, home: Path, *, client_timeout: float = 300.0, **env: str) -> None:
        self.home = home
        home.mkdir(parents=True)
        server_env = {"TUSK_PROGRESS": "0", "TUSK_RUNTIME": "host", **env}
        self.tuskd = Tuskd(home, server_env).start(timeout=120.0)
        self.address = self.tuskd.address
        self.env = clean_env(server_env, **self.tuskd.env)
        self.client = self.tuskd.client(timeout=client_timeout)

    def cli(self, *args: str) -> str:
        return run([*CLI, *args], env=self.env)

    def objects_bytes(self) -> int:
        return du_bytes(self.home / "objects")

    def stop(self) -> None:
        self.client.close()
        self.tuskd.stop(timeout=60)


# -- dvc ---------------------------------------------------------------------------------------
class DvcRepo:
    """A fresh ``git init && dvc init`` directory; its cache is on the same disk."""

    def __init__(self, dvc: str, root: Path, site_cache: Path) -> None:
        self.dvc = dvc
        self.root = root
        root.mkdir(parents=True)
        self.env = {
            **os.environ,
            "DVC_NO_ANALYTICS": "1",
            "DVC_SITE_CACHE_DIR": str(site_cache),
            "GIT_AUTHOR_NAME": "bench",
            "GIT_AUTHOR_EMAIL": "bench@localhost",
            "GIT_COMMITTER_NAME": "bench",
            "GIT_COMMITTER_EMAIL": "bench@localhost",
        }
        run(["git", "init", "-q"], cwd=root, env=self.env)
        run([dvc, "init", "-q"], cwd=root, env=self.env)

    def add(self, target: str) -> float:
        return timed(lambda: run([self.dvc, "add", "-q", target], cwd=self.root, env=self.env))

    def cache_bytes(self) -> int:
        cache = self.root / ".dvc" / "cache"
        return du_bytes(cache) if cache.exists() else 0


def find_dvc(option: str | None) -> str | None:
    """The ``--dvc`` binary, else ``dvc`` on ``PATH``; None (no DVC reference) for ``none``."""
    if option:
        return option if option != "none" else None
    return shutil.which("dvc")


def link_tree(src: Path, dst: Path) -> None:
    """Hard-link a tree (``cp -al``): DVC copies into its cache and never writes the workspace
    files of a fresh add, so the shared inputs stay intact while nothing is copied for setup."""
    run(["cp", "-al", str(src), str(dst)])


def replace_file(path: Path, data: bytes) -> None:
    """Write new contents without touching a hard-linked inode shared with the inputs."""
    path.unlink()
    path.write_bytes(data)


# -- the benchmarks (one round each) -----------------------------------------------------------
class Bench:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.s = Samples()
        self.notes: list[str] = []
        w = cfg.workdir
        self.inputs = w / "inputs"
        self.inputs.mkdir(parents=True)
        self.big = self.inputs / "big.bin"
        self.big_appended = self.inputs / "big-appended.bin"
        self.trees = {n: self.inputs / f"small-{n}" for n in (*cfg.small_counts, cfg.few_files)}
        self.site_cache = w / "dvc-site-cache"

    def wants(self, n: int) -> bool:
        return not self.cfg.only or n in self.cfg.only

    def prepare(self) -> None:
        cfg = self.cfg
        if self.wants(1) or self.wants(2):
            t = timed(lambda: write_random(self.big, cfg.big_bytes))
            print(f"  wrote {cfg.big_bytes / MiB:.0f} MiB of random bytes in {t:.1f} s", flush=True)
            shutil.copyfile(self.big, self.big_appended)
            with self.big_appended.open("ab") as f:
                f.write(os.urandom(cfg.append_bytes))
        if self.wants(3) or self.wants(4) or self.wants(5):
            for n, root in self.trees.items():
                t = timed(lambda: make_small_tree(root, n, cfg.small_size))
                print(f"  created {n} files of {cfg.small_size} B in {t:.1f} s", flush=True)

    def spawn_floor(self) -> None:
        reps = max(self.cfg.reps, 5)
        self.s.add("spawn.python", median_of(reps, lambda: run([sys.executable, "-c", "pass"])))
        self.s.add("spawn.cli", median_of(reps, lambda: run([*CLI, "--version"])))

    def round(self, r: int) -> None:
        cfg = self.cfg
        w = cfg.workdir / f"round{r}"
        tusk_first = r % 2 == 0
        server = Server(w / "tusk-home")
        try:
            if self.wants(1) or self.wants(2):
                self.big_file(server, w, tusk_first)
            if self.wants(3) or self.wants(4) or self.wants(5):
                self.small_files(server, w, tusk_first)
            if self.wants(4):
                self.one_change(server, w, tusk_first)
            if self.wants(5):
                self.reads(server)
        finally:
            server.stop()

    # 1 and 2 -----------------------------------------------------------------------------------
    def big_file(self, server: Server, w: Path, tusk_first: bool) -> None:
        cfg, s = self.cfg, self.s
        size = cfg.big_bytes
        server.cli("create-repo", "big")
        dvc = DvcRepo(cfg.dvc, w / "dvc-big", self.site_cache) if cfg.dvc else None

        def tusk_put() -> None:
            t = timed(
                lambda: server.cli("put-file", "big", "master", "/big.bin", "-f", str(self.big))
            )
            s.add("big.tusk", t)

        def dvc_add() -> None:
            if dvc is None:
                return
            os.link(self.big, dvc.root / "big.bin")
            s.add("big.dvc", dvc.add("big.bin"))

        for step in (tusk_put, dvc_add) if tusk_first else (dvc_add, tusk_put):
            step()
        if dvc is not None:
            s.add("big.ratio_dvc", s.values["big.dvc"][-1] / s.values["big.tusk"][-1])

        dd_out = w / "dd.bin"
        count = size // MiB
        s.add(
            "big.dd",
            timed(
                lambda: run(
                    ["dd", "if=/dev/zero", f"of={dd_out}", "bs=1M", f"count={count}", "conv=fsync"]
                )
            ),
        )
        s.add("big.blake3", blake3_seconds(self.big.read_bytes()))

        # 2: the same file with bytes appended, put again with -o
        def tusk_append() -> None:
            before = server.objects_bytes()
            t = timed(
                lambda: server.cli(
                    "put-file", "-o", "big", "master", "/big.bin", "-f", str(self.big_appended)
                )
            )
            s.add("append.tusk.time", t)
            s.add("append.tusk.stored", server.objects_bytes() - before)

        def dvc_append() -> None:
            if dvc is None:
                return
            before = dvc.cache_bytes()
            (dvc.root / "big.bin").unlink()
            os.link(self.big_appended, dvc.root / "big.bin")
            s.add("append.dvc.time", dvc.add("big.bin"))
            s.add("append.dvc.stored", dvc.cache_bytes() - before)

        for step in (tusk_append, dvc_append) if tusk_first else (dvc_append, tusk_append):
            step()
        info = server.client.list_file("big", "master", "/")
        assert [f.size_bytes for f in info] == [size + cfg.append_bytes], info

    # 3 -----------------------------------------------------------------------------------------
    def small_files(self, server: Server, w: Path, tusk_first: bool) -> None:
        cfg, s = self.cfg, self.s
        for n in (cfg.few_files, *cfg.small_counts):
            repo = f"s{n}"
            server.cli("create-repo", repo)
            src = self.trees[n]

            def tusk_put(n: int = n, repo: str = repo, src: Path = src) -> None:
                t = timed(lambda: server.cli("put-file", "-r", repo, "master", "/", "-f", str(src)))
                s.add(f"small.{n}.tusk", t)

            def dvc_add(n: int = n, src: Path = src) -> None:
                if cfg.dvc is None:
                    return
                dvc = DvcRepo(cfg.dvc, w / f"dvc-small-{n}", self.site_cache)
                link_tree(src, dvc.root / "data")
                s.add(f"small.{n}.dvc", dvc.add("data"))

            for step in (tusk_put, dvc_add) if tusk_first else (dvc_add, tusk_put):
                step()
            if s.has(f"small.{n}.dvc"):
                s.add(
                    f"small.{n}.ratio",
                    s.values[f"small.{n}.dvc"][-1] / s.values[f"small.{n}.tusk"][-1],
                )
            top = server.client.list_file(repo, "master", "/")
            assert sum(f.file_count for f in top) == n, (repo, len(top))

    # 4 -----------------------------------------------------------------------------------------
    def one_change(self, server: Server, w: Path, tusk_first: bool) -> None:
        cfg, s = self.cfg, self.s
        c = server.client
        big_n = cfg.small_counts[0]
        changed = w / "changed.txt"
        for n in (big_n, cfg.few_files):
            repo = f"s{n}"
            path = "/" + small_path(n // 2)
            cli_put, cli_list, api_put, api_list, dvc_readd = [], [], [], [], []
            for _ in range(cfg.reps):
                changed.write_bytes(os.urandom(cfg.small_size))
                cli_put.append(
                    timed(
                        lambda: server.cli(
                            "put-file", "-o", repo, "master", path, "-f", str(changed)
                        )
                    )
                )
                cli_list.append(timed(lambda: server.cli("list-file", repo, "master")))
                data = os.urandom(cfg.small_size)
                api_put.append(
                    timed(lambda: c.put_file(repo, "master", path, data, overwrite=True))
                )
                api_list.append(timed(lambda: c.list_file(repo, "master", "/")))
                if cfg.dvc is not None:
                    dvc_root = w / f"dvc-small-{n}"
                    replace_file(dvc_root / "data" / small_path(n // 2), os.urandom(cfg.small_size))
                    dvc_readd.append(
                        timed(
                            lambda: run(
                                [cfg.dvc, "add", "-q", "data"], cwd=dvc_root, env=self._dvc_env()
                            )
                        )
                    )
            for key, vals in (
                ("cli_put", cli_put),
                ("cli_list", cli_list),
                ("api_put", api_put),
                ("api_list", api_list),
                ("dvc_readd", dvc_readd),
            ):
                if vals:
                    s.add(f"change.{n}.{key}", statistics.median(vals))
            assert c.get_file_bytes(repo, "master", path) == data

    def _dvc_env(self) -> dict[str, str]:
        return {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(self.site_cache)}

    # 5 -----------------------------------------------------------------------------------------
    def reads(self, server: Server) -> None:
        cfg, s = self.cfg, self.s
        c = server.client
        n = cfg.small_counts[-1]
        m = cfg.small_counts[0]
        repo = f"s{n}"
        # A second commit on top of the n-file one that changes one file.
        c.put_file(
            repo, "master", "/" + small_path(n // 3), os.urandom(cfg.small_size), overwrite=True
        )
        mid_dir = f"/dir{n // PER_DIR // 2:04d}"
        cases: list[tuple[str, list[str], Callable[[], int], int]] = [
            (
                "list-file /",
                ["list-file", repo, "master"],
                lambda: len(c.list_file(repo, "master", "/")),
                (n + PER_DIR - 1) // PER_DIR,
            ),
            (
                f"list-file {mid_dir}",
                ["list-file", repo, "master", mid_dir],
                lambda: len(c.list_file(repo, "master", mid_dir)),
                PER_DIR,
            ),
            (
                "glob-file /dir*/*",
                ["glob-file", repo, "master", "/dir*/*"],
                lambda: len(c.glob_file(repo, "master", "/dir*/*")),
                n,
            ),
            (
                "diff-file (1 file changed vs parent)",
                ["diff-file", repo, "master", "/"],
                lambda: len(c.diff_file(repo, "master", "/").new_files),
                1,
            ),
            (
                f"diff-file vs the {m}-file repo",
                ["diff-file", repo, "master", "/", f"s{m}", "master", "/"],
                lambda: len(c.diff_file(repo, "master", "/", f"s{m}", "master", "/").new_files),
                -1,
            ),
        ]
        for name, args, api, expect in cases:
            outs: list[str] = []
            cli_t = median_of(cfg.reps, lambda: outs.append(server.cli(*args)))
            counts: list[int] = []
            api_t = median_of(cfg.reps, lambda: counts.append(api()))
            if expect >= 0:
                assert counts[-1] == expect, (name, counts[-1], expect)
            s.add(f"read.{name}.cli", cli_t)
            s.add(f"read.{name}.api", api_t)
            s.add(f"read.{name}.entries", counts[-1])
            s.add(f"read.{name}.lines", outs[-1].count("\n"))


def remove_tree(root: Path, jobs: int = 8) -> None:
    """``rm -rf`` of each second-level directory, several at once: deletes here are I/O-latency
    bound (one ``rm`` deletes ~1,000 files/s, eight in parallel several times that)."""
    parts = [q for p in sorted(root.iterdir()) if p.is_dir() for q in sorted(p.iterdir())]
    running: list[subprocess.Popen[bytes]] = []
    for part in parts:
        if len(running) >= jobs:
            running.pop(0).wait()
        running.append(subprocess.Popen(["rm", "-rf", str(part)]))
    for proc in running:
        proc.wait()
    subprocess.run(["rm", "-rf", str(root)], check=False)


# -- report ------------------------------------------------------------------------------------
def write_results(text: str, samples: Samples, out: str | None, as_json: str | None) -> None:
    """The report as Markdown (``--out``) and the raw samples as JSON (``--json``)."""
    if out:
        Path(out).write_text(text + "\n")
    if as_json:
        Path(as_json).write_text(json.dumps(samples.values, indent=1))


def goal(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def report(b: Bench) -> Iterator[str]:
    cfg, s = b.cfg, b.s
    size_mib = cfg.big_bytes / MiB
    if s.has("big.tusk"):
        yield f"### 1. put-file of one {size_mib:.0f} MiB file (random bytes)\n"
        yield "| tool | time s | MiB/s | tusk speed ÷ tool speed (same round) |"
        yield "|---|---|---|---|"
        rows = [
            ("tusk `put-file` (CLI, real server)", "big.tusk"),
            ("`dvc add` (fresh repo)", "big.dvc"),
            ("`dd if=/dev/zero bs=1M conv=fsync`", "big.dd"),
            ("BLAKE3 in memory (AUTO threads)", "big.blake3"),
        ]
        for label, key in rows:
            if not s.has(key):
                continue
            speeds = [size_mib / t for t in s.values[key]]
            ratios = [
                tt and ta / tt for ta, tt in zip(s.values[key], s.values["big.tusk"], strict=True)
            ]
            sp = Samples()
            sp.values["x"], sp.values["r"] = speeds, ratios
            yield f"| {label} | {s.fmt(key)} | {sp.fmt('x', digits=0)} | {sp.fmt('r')} |"
        if s.has("big.ratio_dvc"):
            r = s.med("big.ratio_dvc")
            yield f"\nGoal tusk ≥ 2× `dvc add`: {r:.2f}× → {goal(r >= 2)}\n"
    if s.has("append.tusk.stored"):
        app = cfg.append_bytes / MiB
        yield f"### 2. the same file + {app:.0f} MiB appended, put again (`put-file -o`)\n"
        yield "| tool | time s | new bytes stored (MiB) | % of the file |"
        yield "|---|---|---|---|"
        total = cfg.big_bytes + cfg.append_bytes
        for label, k in (
            ("tusk (growth of `objects/`, `du -sb`)", "append.tusk"),
            ("`dvc add` (growth of `.dvc/cache`)", "append.dvc"),
        ):
            if s.has(k + ".stored"):
                yield (
                    f"| {label} | {s.fmt(k + '.time')} | {s.fmt(k + '.stored', 1 / MiB)} | "
                    f"{s.fmt(k + '.stored', 100 / total, 3, '%')} |"
                )
        pct = s.med("append.tusk.stored") * 100 / total
        yield f"\nGoal < 2% of the file: tusk {pct:.3f}% → {goal(pct < 2)}\n"
    if any(s.has(f"small.{n}.tusk") for n in cfg.small_counts):
        yield f"### 3. `put-file -r` of many {cfg.small_size} B files ({PER_DIR} per directory)\n"
        yield "| files | tusk time s | tusk files/s | `dvc add` time s | dvc files/s | tusk speed ÷ dvc (same round) | goal: faster |"
        yield "|---|---|---|---|---|---|---|"
        for n in (cfg.few_files, *cfg.small_counts):
            t = f"small.{n}.tusk"
            fps = Samples()
            fps.values["t"] = [n / x for x in s.values[t]]
            fps.values["d"] = [n / x for x in s.values.get(f"small.{n}.dvc", [])]
            ratio = s.fmt(f"small.{n}.ratio")
            met = goal(s.med(f"small.{n}.ratio") > 1) if s.has(f"small.{n}.ratio") else "n/a"
            yield (
                f"| {n:,} | {s.fmt(t)} | {fps.fmt('t', digits=0)} | {s.fmt(f'small.{n}.dvc')} | "
                f"{fps.fmt('d', digits=0)} | {ratio} | {met} |"
            )
        yield ""
    n = cfg.small_counts[0]
    f = cfg.few_files
    if s.has(f"change.{n}.cli_put"):
        yield f"### 4. change 1 file and put it: repo of {n:,} files vs repo of {f} files\n"
        yield f"| operation | {n:,} files, ms | {f} files, ms | ratio |"
        yield "|---|---|---|---|"
        yield f"| spawn `python -c pass` | {s.fmt('spawn.python', 1000, 1)} | | |"
        yield f"| spawn `python -m tusk.cli.main --version` | {s.fmt('spawn.cli', 1000, 1)} | | |"
        for label, k in (
            ("CLI `put-file -o` of the changed file", "cli_put"),
            ("CLI `list-file repo master` (root)", "cli_list"),
            ("Client `put_file(overwrite=True)` (in process)", "api_put"),
            ("Client `list_file(repo, master, /)` (in process)", "api_list"),
            ("reference: `dvc add data` after changing 1 file", "dvc_readd"),
        ):
            a, bb = f"change.{n}.{k}", f"change.{f}.{k}"
            if not s.has(a):
                continue
            ratio = s.med(a) / s.med(bb)
            yield f"| {label} | {s.fmt(a, 1000, 1)} | {s.fmt(bb, 1000, 1)} | {ratio:.2f} |"
        r_cli = s.med(f"change.{n}.cli_put") / s.med(f"change.{f}.cli_put")
        r_api = s.med(f"change.{n}.api_put") / s.med(f"change.{f}.api_put")
        ok = r_cli < 1.25 and r_api < 1.5
        yield (
            f"\nGoal: the same as in a repo of {f} files: CLI put {r_cli:.2f}×, Client put "
            f"{r_api:.2f}× → {goal(ok)} (met = CLI within 25% and Client within 50%)\n"
        )
    big = cfg.small_counts[-1]
    keys = [k[5:-4] for k in s.values if k.startswith("read.") and k.endswith(".cli")]
    if keys:
        yield f"### 5. reads over commits of {big:,} files\n"
        yield "| operation | entries | CLI ms (incl. process start) | Client ms (in process) |"
        yield "|---|---|---|---|"
        for k in keys:
            yield (
                f"| `{k}` | {int(s.med(f'read.{k}.entries')):,} | {s.fmt(f'read.{k}.cli', 1000, 0)} | "
                f"{s.fmt(f'read.{k}.api', 1000, 0)} |"
            )
        yield ""


def machine(workdir: Path) -> str:
    """Date, CPU, Python, memory and the file system of ``workdir``, for the report."""
    free = run(["free", "-h"]).strip()
    df = run(["df", "-hT", str(workdir)]).strip()
    return (
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}\n"
        f"- machine: {platform.machine()}, nproc {os.cpu_count()}, Python {platform.python_version()}, "
        f"{platform.platform()}\n\n```\n{free}\n{df}\n```\n"
    )


def add_run_options(p: argparse.ArgumentParser, only_example: str) -> None:
    """The options every benchmark script takes besides its sizes."""
    p.add_argument(
        "--only", default="", help=f"comma-separated benchmark numbers, e.g. {only_example}"
    )
    p.add_argument(
        "--workdir",
        help="where homes and trees go (default a new dir in $TMPDIR; deleted at the end)",
    )
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--out", help="also write the Markdown report to this file")
    p.add_argument("--json", help="also write the raw samples to this file")


def new_workdir(parent: str | None, prefix: str) -> Path:
    """A new directory under ``parent`` (default: the temporary directory)."""
    root = Path(parent) if parent else Path(tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=root))


def parse_only(option: str) -> frozenset[int]:
    return frozenset(int(x) for x in option.split(",") if x)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="small sizes, 1 round: a smoke test")
    p.add_argument("--rounds", type=int, help="rounds (default 3; 1 with --quick)")
    p.add_argument("--reps", type=int, help="repetitions inside a round for 4 and 5 (default 5)")
    p.add_argument("--big-mib", type=int, help="size of the large file in MiB (default 1024)")
    p.add_argument(
        "--dvc",
        help="dvc binary (default: dvc on PATH; 'none' to skip the DVC reference)",
    )
    add_run_options(p, "1,2")
    a = p.parse_args(argv)

    dvc = find_dvc(a.dvc)
    workdir = new_workdir(a.workdir, "tusk-pfs-bench-")
    cfg = Config(
        big_bytes=(a.big_mib or (16 if a.quick else 1024)) * MiB,
        append_bytes=MiB,
        small_counts=(200, 2000) if a.quick else (10_000, 100_000),
        small_size=1024,
        few_files=10,
        rounds=a.rounds or (1 if a.quick else 3),
        reps=a.reps or (2 if a.quick else 5),
        dvc=dvc,
        workdir=workdir,
        only=parse_only(a.only),
    )
    command = "python bench/pfs_bench.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"# workdir {workdir}; dvc: {dvc or 'not found (DVC reference skipped)'}", flush=True)
    started = time.monotonic()
    bench = Bench(cfg)
    try:
        bench.prepare()
        if bench.wants(4):
            bench.spawn_floor()
        for r in range(cfg.rounds):
            t = time.monotonic()
            bench.round(r)
            print(f"  round {r + 1}/{cfg.rounds} done in {time.monotonic() - t:.0f} s", flush=True)
        # The report comes before the clean-up: deleting ~700,000 files takes minutes here.
        dvc_version = run([dvc, "--version"]).strip() if dvc else "not run"
        text = "\n".join(
            [
                f"## `{command}`\n",
                machine(workdir),
                f"- DVC {dvc_version}; {cfg.rounds} round(s); a cell is the median over rounds "
                f"(min–max); tests 4 and 5 take each round's median of {cfg.reps} repetitions; "
                f"measured in {time.monotonic() - started:.0f} s (clean-up not included)\n",
                *report(bench),
            ]
        )
        print("\n" + text, flush=True)
        write_results(text, bench.s, a.out, a.json)
    finally:
        if not a.keep:
            t = time.monotonic()
            remove_tree(workdir)
            print(f"  removed {workdir} in {time.monotonic() - t:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
