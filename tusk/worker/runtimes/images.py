"""Images as podman stores them: whether one exists, its digest and config, its root filesystem.

Both sandboxed runtimes take images from podman's local storage (there may be no registry):
``podman`` runs them, ``bwrap`` uses the root filesystem that ``podman image mount`` exposes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass, field

# Pachyderm 1.7's default when a transform names no image.
DEFAULT_IMAGE = "ubuntu:16.04"


class ImageNotFound(Exception):
    """The image is not in the local image store."""

    def __init__(self, image: str) -> None:
        super().__init__(f"image {image} not found")
        self.image = image


@dataclass(frozen=True, slots=True)
class ImageConfig:
    """What an image says about how its programs run."""

    reference: str
    digest: str
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str = ""
    entrypoint: tuple[str, ...] = ()


_cache: dict[str, ImageConfig] = {}
_mounts: dict[str, str] = {}
_digests: dict[str, tuple[tuple[int, int, int], str]] = {}  # image -> (store stamp, digest)
_index: list[str] = []  # podman's image index file, once an inspect has shown where it is
_lock = threading.Lock()


def podman_executable() -> str | None:
    """podman's path, None when it is not installed."""
    return shutil.which("podman")


def _podman(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    exe = podman_executable()
    if exe is None:
        raise FileNotFoundError("podman is not on PATH (install podman)")
    return subprocess.run([exe, *args], capture_output=True, timeout=timeout)


def inspect_image(image: str, *, cached: bool = True) -> ImageConfig:
    """The image's digest and config; ImageNotFound when podman does not have it."""
    if cached:
        with _lock:
            found = _cache.get(image)
        if found is not None:
            return found
    proc = _podman("image", "inspect", "--format", "json", image)
    if proc.returncode != 0:
        raise ImageNotFound(image)
    raw = json.loads(proc.stdout)[0]
    _note_index(raw)
    config = raw.get("Config") or {}
    env = {}
    for item in config.get("Env") or []:
        key, _, value = str(item).partition("=")
        env[key] = value
    info = ImageConfig(
        reference=image,
        digest=str(raw.get("Digest") or raw.get("Id") or ""),
        env=env,
        workdir=str(config.get("WorkingDir") or "/"),
        user=str(config.get("User") or ""),
        entrypoint=tuple(config.get("Entrypoint") or ()),
    )
    with _lock:
        _cache[image] = info
    return info


def image_digest(image: str) -> str:
    """The image's digest now: asked of podman again whenever its image store changed since
    the last answer (a rebuilt, retagged or removed image gets its new digest), so a job of an
    unchanged image does not pay for a ``podman image inspect``."""
    stamp = store_stamp()  # before the inspect: a change meanwhile makes the next call ask again
    with _lock:
        known = _digests.get(image)
    if known is not None and stamp is not None and known[0] == stamp:
        return known[1]
    digest = inspect_image(image, cached=False).digest
    if stamp is not None:
        with _lock:
            _digests[image] = (stamp, digest)
    return digest


def store_stamp() -> tuple[int, int, int] | None:
    """What podman's image index file is now (inode, size, modification time): podman rewrites
    it (a new file renamed over the old) whenever an image is added, tagged or removed. None
    until an inspect has shown where the store is (then the digest is asked of podman)."""
    with _lock:
        path = _index[0] if _index else None
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _note_index(raw: dict[str, object]) -> None:
    """Learn where podman's image index file is from an inspect's ``GraphDriver`` (its layer
    directories lie under ``<store>/<driver>/``, the index is ``<store>/<driver>-images/``)."""
    driver = raw.get("GraphDriver")
    if _index or not isinstance(driver, dict):
        return
    name, data = driver.get("Name"), driver.get("Data")
    layer = data.get("UpperDir") or data.get("MergedDir") if isinstance(data, dict) else None
    if not isinstance(name, str) or not isinstance(layer, str) or f"/{name}/" not in layer:
        return
    path = os.path.join(layer.rsplit(f"/{name}/", 1)[0], f"{name}-images", "images.json")
    if os.path.isfile(path):
        with _lock:
            if not _index:
                _index.append(path)


def mount_image(image: str) -> str:
    """The image's root filesystem (``podman image mount``; mounted once, kept for later)."""
    with _lock:
        path = _mounts.get(image)
    if path is not None:
        return path
    inspect_image(image)
    proc = _podman("image", "mount", image)
    if proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip()
        raise OSError(f"cannot mount image {image}: {message}")
    path = proc.stdout.decode().strip()
    with _lock:
        _mounts[image] = path
    return path
