"""Run the Pachyderm diabetes workshop on tusk, command for command, with real output.

Usage: python examples/diabetes/workshop.py [--workdir DIR] [--keep]

Everything runs through the real `pachctl` entry point against a real tusk server started for
this run (its own data directory and port, so it never touches ~/.tusk). The pipelines run in
the workshop's images (gopherdata/gc2018:*): build them first with scripts/build-images.sh
(scripts/workshop.sh does).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TERMINAL = {"success", "failure", "killed"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Workshop:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.home = workdir / "tusk-home"
        exe = Path(sys.executable).parent / "pachctl"
        self.pachctl = [str(exe)] if exe.exists() else [sys.executable, "-m", "tusk.cli.main"]
        self.env = {
            **os.environ,
            "TUSK_HOME": str(self.home),
            "TUSK_ADDRESS": f"http://127.0.0.1:{free_port()}",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}" + os.environ.get("PATH", ""),
        }

    # -- running commands --------------------------------------------------------------------
    def sh(self, line: str, *, show: bool = True, check: bool = True) -> str:
        """Run one `pachctl …` command line, print it and its output as the seed shows them."""
        args = shlex.split(line)
        assert args[0] == "pachctl", line
        proc = subprocess.run(
            [*self.pachctl, *args[1:]],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
        )
        if show:
            print(f"$ {line}")
            sys.stdout.write(proc.stdout)
            if proc.stdout and not proc.stdout.endswith("\n"):
                sys.stdout.write("\n")  # get-file prints the file as is; keep the prompt apart
            if proc.stderr.strip():
                sys.stdout.write(proc.stderr)
            sys.stdout.flush()
        if check and proc.returncode != 0:
            raise SystemExit(f"workshop: `{line}` failed with exit code {proc.returncode}")
        return proc.stdout

    def raw(self, line: str) -> object:
        out = self.sh(line + " --raw", show=False)
        return json.loads(out) if out.strip() else None

    def jobs(self) -> list[dict[str, object]]:
        proc = subprocess.run(
            [*self.pachctl, "list-job", "--raw"],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return parse_json_stream(proc.stdout)

    def wait_for_jobs(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(j["state"] in TERMINAL for j in self.jobs()):
                return
            time.sleep(0.2)
        raise SystemExit("workshop: jobs did not finish in time")

    def say(self, text: str) -> None:
        print(f"\n## {text}\n", flush=True)

    # -- the scenario ------------------------------------------------------------------------
    def prepare(self) -> None:
        if self.workdir.exists():
            shutil.rmtree(self.workdir)
        (self.workdir / "data" / "test").mkdir(parents=True)
        for name in ("training_prod.csv", "holdout.csv", "training_prod_edited.csv"):
            shutil.copy(HERE / "data" / name, self.workdir / "data" / name)
        for name in ("1.json", "2.json"):
            shutil.copy(HERE / "data" / "test" / name, self.workdir / "data" / "test" / name)
        (self.workdir / "exercise3").mkdir()
        for spec in ("model", "qc_pre_process", "qcontrol", "infer"):
            shutil.copy(HERE / f"{spec}.json", self.workdir / f"{spec}.json")
        shutil.copy(HERE / "infer_parallel.json", self.workdir / "exercise3" / "infer.json")

    def run(self) -> int:
        self.prepare()
        self.sh("pachctl up")
        try:
            return self.scenario()
        finally:
            self.sh("pachctl down", show=False, check=False)

    def scenario(self) -> int:
        self.say("Data repositories")
        for repo in ("training_data", "qc_data", "attributes"):
            self.sh(f"pachctl create-repo {repo}")
        self.sh("pachctl list-repo")
        self.sh("pachctl put-file training_data master training_prod.csv -f data/training_prod.csv")
        self.sh("pachctl put-file qc_data master holdout.csv -f data/holdout.csv")
        self.sh("pachctl list-repo")
        self.sh("pachctl list-file training_data master")

        self.say("Training the model")
        self.sh("pachctl create-pipeline -f model.json")
        self.wait_for_jobs()
        self.sh("pachctl list-job")
        self.sh("pachctl list-file model master")

        self.say("Quality control of the model")
        self.sh("pachctl create-pipeline -f qc_pre_process.json")
        self.sh("pachctl create-pipeline -f qcontrol.json")
        self.wait_for_jobs()
        self.sh("pachctl list-job")
        self.sh("pachctl list-file qcontrol master")
        self.sh("pachctl get-file qcontrol master model.json")
        first_model = json.loads(self.sh("pachctl get-file qcontrol master model.json", show=False))

        self.say("Inference")
        self.sh("pachctl put-file attributes master 1.json -f data/test/1.json")
        self.sh("pachctl put-file attributes master 2.json -f data/test/2.json")
        self.sh("pachctl list-file attributes master")
        self.sh("pachctl create-pipeline -f infer.json")
        self.wait_for_jobs()
        self.sh("pachctl list-job")
        self.sh("pachctl list-file infer master")
        self.sh("pachctl get-file infer master 1.json")
        old_model_commit = self.head("model")

        self.say('Exercise 1: parallelize the inference (parallelism_spec.constant "10")')
        self.sh("pachctl update-pipeline -f exercise3/infer.json")
        self.sh("pachctl list-worker")
        self.wait_for_jobs()
        self.sh("pachctl list-worker infer")
        self.sh("pachctl list-job -p infer")

        self.say("Exercise 2: update the training data set")
        shutil.copy(
            self.workdir / "data" / "training_prod_edited.csv",
            self.workdir / "data" / "training_prod.csv",
        )
        jobs_before = {(j["pipeline"], j["id"]) for j in self.jobs()}
        self.sh(
            "pachctl put-file training_data master training_prod.csv -o -f data/training_prod.csv"
        )
        self.sh("pachctl list-job")
        self.wait_for_jobs()
        self.sh("pachctl list-job")
        new_jobs = [j for j in self.jobs() if (j["pipeline"], j["id"]) not in jobs_before]

        self.say("Exercise 3: examine pipeline provenance")
        infer_head = self.head("infer")
        self.sh(f"pachctl inspect-commit infer {infer_head}")
        self.sh(f"pachctl get-file model {old_model_commit} model.json")
        self.sh("pachctl get-file model master model.json")
        new_model = json.loads(self.sh("pachctl get-file qcontrol master model.json", show=False))

        self.say("Summary")
        ran = sorted(str(j["pipeline"]) for j in new_jobs)
        print(f"jobs run by the training-data update: {', '.join(ran)} (qc_pre_process: none)")
        for label, m in (("before", first_model), ("after", new_model)):
            coef = {c["name"]: c["coefficient"] for c in m["coefficients"]}
            print(
                f"model {label}: intercept {m['intercept']:.4f}, bmi {coef['bmi']:.4f}, "
                f"ltg {coef['ltg']:.4f}, holdout RMSE {m['rmse']:.4f}"
            )
        states = {str(j["state"]) for j in self.jobs()}
        ok = states == {"success"} and "qc_pre_process" not in ran
        print("workshop: " + ("all jobs succeeded" if ok else f"job states: {sorted(states)}"))
        return 0 if ok else 1

    def head(self, repo: str) -> str:
        info = self.raw(f"pachctl inspect-commit {repo} master")
        assert isinstance(info, dict)
        return str(info["commit"]["id"])


def parse_json_stream(text: str) -> list[dict[str, object]]:
    """`--raw` prints JSON objects back to back; read them all."""
    decoder = json.JSONDecoder()
    out: list[dict[str, object]] = []
    pos = 0
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        obj, pos = decoder.raw_decode(text, pos)
        out.append(obj)
    return out


def missing_images() -> list[str]:
    """The workshop images that podman does not have (all of them when podman is missing)."""
    specs = ("model", "qc_pre_process", "qcontrol", "infer")
    images = sorted(
        {json.loads((HERE / f"{s}.json").read_text())["transform"]["image"] for s in specs}
    )
    podman = shutil.which("podman")
    if podman is None:
        return images
    return [i for i in images if subprocess.run([podman, "image", "exists", i]).returncode != 0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="where to run (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    missing = missing_images()
    if missing:
        print(
            f"workshop: the images {', '.join(missing)} are not built; "
            "run: bash scripts/build-images.sh",
            file=sys.stderr,
        )
        return 1
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tusk-workshop-"))
    try:
        return Workshop(workdir.resolve()).run()
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"\nwork directory kept: {workdir}")


if __name__ == "__main__":
    sys.exit(main())
