"""Secrets in a real sandbox (bubblewrap and podman): a datum reads a secret from its
environment and from files under mount_path, read-only, as the image's user; the values reach no
record, log or spec."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from conftest import Pps, atom

from tusk.pfs.context import SPEC_REPO
from tusk.testing.images import build_python_image, build_tiny_image

VALUE = "s3cr3t-b2f1d9"


@pytest.fixture(scope="module")
def tiny() -> str:
    return build_tiny_image()


@pytest.mark.parametrize("runtime", ["bwrap", "podman"])
@pytest.mark.parametrize("user", ["", "fruit"])
def test_a_datum_reads_its_secret_from_env_and_read_only_files(
    tmp_path: Path, tiny: str, runtime: str, user: str
) -> None:
    pps = Pps(tmp_path / "home", runtime=runtime)
    try:
        pps.engine.secrets.create(
            json.dumps(
                {
                    "kind": "Secret",
                    "metadata": {"name": "db"},
                    "data": {"password": base64.b64encode(VALUE.encode()).decode()},
                    "stringData": {"user": "admin"},
                }
            )
        )
        pps.repo("in")
        pps.put("in", {"/a": "1", "/b": "2"})
        script = (
            'printf %s "$DB_PASS" > /pfs/out/env-$(cat /pfs/in/*); '
            "cat /etc/tusk/db/password > /pfs/out/file-$(cat /pfs/in/*); "
            "cat /secrets/user > /pfs/out/user-$(cat /pfs/in/*); "
            "ls /etc/tusk/db | tr '\\n' ' ' > /pfs/out/keys; "
            "if echo x > /etc/tusk/db/password 2>/dev/null || touch /secrets/new 2>/dev/null; "
            "then echo writable > /pfs/out/writable; fi; "
            "test -f /etc/passwd && echo image-etc-kept > /pfs/out/etc"
        )
        transform = {
            "image": tiny,
            "secrets": [
                {"name": "db", "env_var": "DB_PASS", "key": "password"},
                {"name": "db", "mount_path": "/etc/tusk/db"},
                {"name": "db", "mount_path": "/secrets"},
            ],
        }
        if user:
            transform["user"] = user
        pps.create("p", atom("in"), ["sh", "-c", script], transform=transform)
        (job,) = pps.wait_jobs("p", 1, timeout=120)
        assert job.state == "success", job.reason
        out = pps.tree("p")
        assert out["/env-1"] == out["/env-2"] == VALUE.encode()
        assert out["/file-1"] == out["/file-2"] == VALUE.encode()
        assert out["/user-1"] == out["/user-2"] == b"admin"
        assert out["/keys"] == b"password user password user "
        assert out["/etc"] == b"image-etc-kept\nimage-etc-kept\n"
        assert "/writable" not in out

        logs = [r.model_dump_json() for r in pps.engine.jobs.logs("p", None)]
        logs += [r.model_dump_json() for r in pps.engine.jobs.logs("p", None, None, True)]
        spec = b"".join(pps.engine.files.get(SPEC_REPO, "p", "/spec")).decode()
        job_json = pps.engine.jobs.inspect(job.id, "p").model_dump_json()
        for text in [*logs, spec, job_json]:
            assert VALUE not in text
    finally:
        pps.close()


def test_a_mount_path_through_a_symbolic_link_of_the_image(tmp_path: Path) -> None:
    """Debian images make /var/run a link to /run: the secret appears where the link leads."""
    image = build_python_image()
    pps = Pps(tmp_path / "home", runtime="bwrap")
    try:
        pps.engine.secrets.create(
            json.dumps({"metadata": {"name": "tok"}, "stringData": {"token": VALUE}})
        )
        pps.repo("in")
        pps.put("in", {"/a": "1"})
        script = "cat /var/run/tok/token > /pfs/out/via-link; cat /run/tok/token > /pfs/out/real"
        pps.create(
            "p",
            atom("in"),
            ["sh", "-c", script],
            transform={"image": image, "secrets": [{"name": "tok", "mount_path": "/var/run/tok"}]},
        )
        (job,) = pps.wait_jobs("p", 1, timeout=120)
        assert job.state == "success", job.reason
        assert pps.tree("p") == {"/via-link": VALUE.encode(), "/real": VALUE.encode()}
    finally:
        pps.close()
