"""Secrets: Kubernetes Secret manifests made into named sets of keys and values, which pipelines
read through ``transform.secrets`` (an environment variable per key, or files under a mount path).

The metadata store keeps a secret's name, type, creation time and key names; the values live only
in one file per secret in the server's secrets directory (mode 0600 in a 0700 directory). No
answer, log line, error message, spec or record ever holds a value: the job runner reads them
when it builds a datum task, and the task carries them to the worker over its private channel.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tusk.api.secrets import SecretInfo
from tusk.errors import InvalidArgument, InvalidSpec, NotFound
from tusk.meta import MetadataStore, SecretRecord
from tusk.pps.spec import PipelineSpec

DEFAULT_TYPE = "Opaque"
MAX_SECRET_BYTES = 1 << 20  # Kubernetes' limit on one secret
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Where a secret cannot be mounted: what the sandbox itself provides.
_RESERVED = ("/pfs", "/proc", "/dev", "/sys", "/tmp", "/.tusk")
CREATE_HINT = "create it first: tusk create-secret -f <secret.json> (a Kubernetes Secret manifest)"


def secret_not_found(name: str, why: str = "") -> NotFound:
    """The error for a secret that does not exist."""
    return NotFound(f"secret {name} not found{why}", hint=CREATE_HINT, secret=name)


def _bad_manifest(source: str, problem: str, hint: str | None = None) -> InvalidArgument:
    return InvalidArgument(
        f"{source}: {problem}",
        hint=hint
        or 'a Secret manifest is {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": '
        '"<name>"}, "data": {"<key>": "<base64 value>"}} (or "stringData" with plain values)',
    )


def _document(text: str, source: str) -> dict[str, Any]:
    """The manifest as a mapping. Parse errors give a position only: never the text, which holds
    the values."""
    try:
        doc = json.loads(text)
    except RecursionError:
        raise _bad_manifest(source, "the manifest is nested too deeply") from None
    except json.JSONDecodeError as e:
        if text.lstrip().startswith("{"):
            raise _bad_manifest(
                source, f"not valid JSON (line {e.lineno}, column {e.colno})"
            ) from None
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as ye:
            mark = getattr(ye, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            raise _bad_manifest(source, f"not valid JSON or YAML{where}") from None
        except (ValueError, TypeError, RecursionError):  # e.g. a date that does not exist
            raise _bad_manifest(source, "not valid JSON or YAML") from None
    if not isinstance(doc, dict):
        raise _bad_manifest(source, "the manifest is not an object")
    return doc


def parse_manifest(text: str, source: str = "secret") -> tuple[SecretRecord, dict[str, bytes]]:
    """A Kubernetes Secret manifest as its record and its values (``data`` base64-decoded, then
    ``stringData`` on top, as Kubernetes merges them)."""
    doc = _document(text, source)
    kind = doc.get("kind", "Secret")
    if kind != "Secret":
        raise _bad_manifest(source, f"kind is {str(kind)[:40]!r}, not 'Secret'")
    metadata = doc.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str) or not name:
        raise _bad_manifest(
            source, "metadata.name is missing", 'add "metadata": {"name": "<name>"}'
        )
    if len(name) > 253 or not _NAME.match(name):
        raise _bad_manifest(
            source,
            f"invalid secret name {name[:60]!r}",
            "a secret name is lower-case letters, digits, '-' and '.', starting and ending with "
            "a letter or digit (at most 253 characters)",
        )
    kind_of = doc.get("type") or DEFAULT_TYPE
    if not isinstance(kind_of, str) or len(kind_of) > 128:
        raise _bad_manifest(source, "type must be a string of at most 128 characters")
    values: dict[str, bytes] = {}
    for field, decode in (("data", True), ("stringData", False)):
        part = doc.get(field) or {}
        if not isinstance(part, dict):
            raise _bad_manifest(source, f"{field} must be an object of key: value")
        for key, value in part.items():
            if (
                not isinstance(key, str)
                or len(key) > 253
                or not _KEY.match(key)
                or key in (".", "..")
            ):
                raise _bad_manifest(
                    source,
                    f"invalid key {str(key)[:60]!r} in {field}",
                    "keys are letters, digits, '-', '_' and '.'",
                )
            if not isinstance(value, str):
                raise _bad_manifest(source, f"{field}.{key} is not a string")
            if decode:
                try:
                    values[key] = base64.b64decode(value, validate=True)
                except (binascii.Error, ValueError):
                    raise _bad_manifest(
                        source,
                        f"data.{key} is not valid base64",
                        "give values base64-encoded under data, or plain under stringData",
                    ) from None
            else:
                values[key] = value.encode()
    if not values:
        raise _bad_manifest(source, "the secret has no data", 'add "data" or "stringData"')
    if sum(len(k) + len(v) for k, v in values.items()) > MAX_SECRET_BYTES:
        raise _bad_manifest(source, "the secret is larger than 1 MiB", "split it into several")
    return SecretRecord(name, kind_of, time.time(), tuple(sorted(values))), values


class SecretVault:
    """The values of each secret, one file per secret (mode 0600) in a directory of mode 0700."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, name: str) -> Path:
        return self.directory / f"{name}.json"

    def write(self, name: str, values: Mapping[str, bytes]) -> None:
        """Store ``values`` under ``name`` (replacing what was there), atomically."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        data = json.dumps({k: base64.b64encode(v).decode() for k, v in values.items()}).encode()
        tmp = self.directory / f".{name}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self._path(name))

    def read(self, name: str) -> dict[str, bytes] | None:
        """The values of ``name``; None when this server has none."""
        try:
            raw = json.loads(self._path(name).read_bytes())
        except FileNotFoundError:
            return None
        return {k: base64.b64decode(v) for k, v in raw.items()}

    def remove(self, name: str) -> None:
        """Forget the values of ``name``."""
        with contextlib.suppress(FileNotFoundError):
            self._path(name).unlink()


def _info(record: SecretRecord) -> SecretInfo:
    return SecretInfo(
        name=record.name, type=record.type, created=record.created, keys=list(record.keys)
    )


class SecretService:
    """Creates, lists, inspects and deletes secrets; checks the secrets a pipeline spec names and
    hands their values to the job runner."""

    def __init__(self, meta: MetadataStore, vault: SecretVault) -> None:
        self.meta = meta
        self.vault = vault

    def create(self, manifest: str, source: str = "secret") -> SecretInfo:
        """Create a secret from a Kubernetes Secret manifest (JSON or YAML)."""
        record, values = parse_manifest(manifest, source)
        with self.meta.transaction() as tx:
            tx.insert_secret(record)  # AlreadyExists before any value is written
            self.vault.write(record.name, values)
        return _info(record)

    def list(self) -> list[SecretInfo]:
        """Every secret, by name."""
        with self.meta.transaction(write=False) as tx:
            return [_info(r) for r in tx.list_secrets()]

    def inspect(self, name: str) -> SecretInfo:
        """One secret: name, type, creation time and key names."""
        with self.meta.transaction(write=False) as tx:
            record = tx.get_secret(name)
        if record is None:
            raise secret_not_found(name)
        return _info(record)

    def delete(self, name: str) -> None:
        """Delete a secret and its values. Pipelines that name it fail their next jobs with
        "secret <name> not found"."""
        with self.meta.transaction() as tx:
            if not tx.delete_secret(name):
                raise secret_not_found(name)
        self.vault.remove(name)

    def values(self, name: str) -> dict[str, bytes]:
        """The values of secret ``name`` (for the job runner only)."""
        with self.meta.transaction(write=False) as tx:
            record = tx.get_secret(name)
        values = self.vault.read(name) if record is not None else None
        if values is None:
            why = "" if record is None else " on this server (its values are not in its directory)"
            raise secret_not_found(name, why)
        return values

    def check_spec(self, spec: PipelineSpec) -> None:
        """Refuse a spec whose ``transform.secrets`` are malformed (400) or name a secret or key
        that does not exist (404)."""
        mounts: set[str] = set()
        for i, entry in enumerate(spec.transform.secrets):
            where = f"transform.secrets[{i}]"
            check_secret_entry(entry.name, entry.env_var, entry.key, entry.mount_path, where)
            if entry.mount_path:
                path = os.path.normpath(entry.mount_path)
                if path in mounts:
                    raise InvalidSpec(
                        f"{where}.mount_path {path} is used twice",
                        hint="give each secret a directory of its own",
                    )
                mounts.add(path)
            info = self._record(entry.name, spec.name)
            if entry.key and entry.key not in info.keys:
                raise NotFound(
                    f"secret {entry.name} has no key {entry.key} (named by pipeline "
                    f"{spec.name}'s {where}.key)",
                    hint=f"its keys are: {', '.join(info.keys)}; or delete-secret and "
                    "create-secret it again with that key",
                    secret=entry.name,
                )

    def _record(self, name: str, pipeline: str) -> SecretRecord:
        with self.meta.transaction(write=False) as tx:
            record = tx.get_secret(name)
        if record is None:
            raise secret_not_found(name, f" (named by pipeline {pipeline}'s transform.secrets)")
        return record


def check_secret_entry(
    name: str, env_var: str | None, key: str | None, mount_path: str | None, where: str
) -> None:
    """One ``transform.secrets`` entry's shape: a name, and ``env_var`` with ``key`` and/or a
    ``mount_path`` the sandbox can give it."""
    if not name:
        raise InvalidSpec(f"{where}.name is missing", hint='name the secret: "name": "<secret>"')
    if not env_var and not mount_path:
        raise InvalidSpec(
            f"{where} (secret {name}) sets neither env_var nor mount_path",
            hint='set "env_var" and "key" (one value in a variable) or "mount_path" (every key '
            "as a file)",
        )
    if env_var and not key:
        raise InvalidSpec(
            f"{where}.env_var {env_var} needs a key", hint='name the key: "key": "<key>"'
        )
    if key and not env_var and not mount_path:
        raise InvalidSpec(f"{where}.key {key} needs an env_var", hint='add "env_var": "<NAME>"')
    if env_var and not _ENV_VAR.match(env_var):
        raise InvalidSpec(
            f"{where}.env_var {env_var!r} is not a variable name",
            hint="use letters, digits and '_', not starting with a digit",
        )
    if mount_path is not None:
        path = os.path.normpath(mount_path) if mount_path else ""
        if not path.startswith("/") or path == "/" or "\x00" in path:
            raise InvalidSpec(
                f"{where}.mount_path {mount_path!r} is not an absolute directory",
                hint='use a directory such as "/var/secrets/<name>"',
            )
        if any(path == r or path.startswith(r + "/") for r in _RESERVED):
            raise InvalidSpec(
                f"{where}.mount_path {mount_path} is inside a directory the sandbox provides "
                f"({', '.join(_RESERVED)})",
                hint='use a directory such as "/var/secrets/<name>"',
            )
