"""Removing a sandbox's scratch tree never loops: what cannot go is left, the rest goes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tusk.worker.runtimes.base import force_rmtree


def test_an_entry_that_cannot_be_removed_is_left_without_looping(tmp_path: Path) -> None:
    assert os.geteuid() == 0, "this test makes a mount point: it needs root, as the sandboxes do"
    root = tmp_path / "scratch"
    busy = root / "out"
    busy.mkdir(parents=True)
    (root / "locked").mkdir()
    (root / "locked" / "file").write_text("x")
    (root / "locked").chmod(0o000)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(busy)], check=True)
    try:
        (busy / "kept").write_text("y")
        tmp_path.chmod(0o711)  # as the sandboxes' base directory is
        force_rmtree(str(root))  # rmdir of the mount point fails (EBUSY) every time
        assert not (root / "locked").exists()
        assert busy.is_dir()
        # the directory it removes from keeps its mode (other sandboxes' uids go through it)
        assert tmp_path.stat().st_mode & 0o777 == 0o711
    finally:
        subprocess.run(["umount", str(busy)], check=True)
    force_rmtree(str(root))
    assert not root.exists()
