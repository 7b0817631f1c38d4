"""Images for tests and benches of sandboxed pipelines, built offline with podman.

The tiny image has no Python: /bin/sh and a few coreutils copied from the host with the libraries
they link, ``podman import``ed with an ENV and a WORKDIR (built once per name). The Python image
is a Debian minbase made by mmdebstrap, or the one scripts/build-images.sh made under that name.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

TINY_IMAGE = "localhost/tusk-test/tiny:1"
TINY_ENV = {"GREETING": "hello from the image", "PATH": "/usr/local/bin:/usr/bin:/bin"}
TINY_WORKDIR = "/work"
PROGRAMS = (
    "sh", "cat", "cp", "echo", "env", "id", "ls", "mkdir", "rm", "sleep", "touch", "wc", "head",
    "tr", "sort", "grep", "ps", "true", "false", "dd", "setsid", "sed", "stat",
)  # fmt: skip


def _libraries(binary: str) -> set[str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    libs = set()
    for line in out.splitlines():
        parts = line.split()
        for part in parts:
            if part.startswith("/"):
                libs.add(part)
    return libs


def image_exists(name: str) -> bool:
    return subprocess.run(["podman", "image", "exists", name]).returncode == 0


def build_tiny_image(name: str = TINY_IMAGE) -> str:
    """Build the tiny image unless podman has it already."""
    if image_exists(name):
        return name
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp, "root")
        for d in ("bin", "etc", "tmp", "work", "proc", "dev", "usr/bin"):
            (root / d).mkdir(parents=True, exist_ok=True)
        files: set[str] = set()
        for program in PROGRAMS:
            path = shutil.which(program)
            if path is None:
                continue
            real = os.path.realpath(path)
            shutil.copy2(real, root / "bin" / program)
            files |= _libraries(real)
        for lib in files:
            target = root / lib.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(os.path.realpath(lib), target)
        (root / "etc/passwd").write_text(
            "root:x:0:0:root:/root:/bin/sh\nfruit:x:1000:1000::/work:/bin/sh\n"
            "nobody:x:65534:65534::/nonexistent:/bin/sh\n"
        )
        (root / "etc/group").write_text("root:x:0:\nfruit:x:1000:\nnogroup:x:65534:\n")
        (root / "work/hello.txt").write_text("from the image\n")
        tar_path = Path(tmp, "root.tar")
        with tarfile.open(tar_path, "w") as tar:
            for entry in sorted(root.iterdir()):
                tar.add(entry, arcname=entry.name, filter=_root_owned)
        subprocess.run(
            [
                "podman", "import",
                "--change", f"ENV GREETING={TINY_ENV['GREETING']}",
                "--change", f"ENV PATH={TINY_ENV['PATH']}",
                "--change", f"WORKDIR {TINY_WORKDIR}",
                str(tar_path), name,
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
    return name


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


PYTHON_IMAGE = "localhost/tusk/base:bookworm"


def build_python_image(name: str = PYTHON_IMAGE) -> str:
    """A Debian image with Python (as scripts/build-images.sh names its base image): reused when
    podman has it, else made with mmdebstrap and ``podman import``ed under that name."""
    if image_exists(name):
        return name
    with tempfile.TemporaryDirectory() as tmp:
        tar_path = str(Path(tmp, "rootfs.tar"))
        subprocess.run(
            ["mmdebstrap", "--quiet", "--variant=minbase", "--include=python3", "bookworm",
             tar_path],
            check=True,
            capture_output=True,
        )  # fmt: skip
        subprocess.run(
            ["podman", "import", "--change", "ENV LANG=C.UTF-8", tar_path, name],
            check=True,
            capture_output=True,
        )
    return name
