"""Same-machine detection, shared by server and client for the local ingest fast path: when the
CLI and tuskd run on one machine as one user, the server reads a big local file itself instead of
receiving its bytes over HTTP (as DVC reads the workspace directly)."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
from functools import cache
from pathlib import Path


@cache
def machine_identity() -> str:
    """Identifies this machine and boot (so a container or another host never matches)."""
    parts = []
    for f in ("/etc/machine-id", "/proc/sys/kernel/random/boot_id"):
        with contextlib.suppress(OSError):
            parts.append(Path(f).read_text().strip())
    parts.append(socket.gethostname())
    return ":".join(parts)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def peer_uid(peer_host: str, peer_port: int) -> int | None:
    """The uid owning the local TCP socket ``peer_host:peer_port`` (the client's end of a
    loopback connection), read from /proc/net/tcp{,6}; None when it cannot be told."""
    try:
        addr = ipaddress.ip_address(peer_host)
    except ValueError:
        return None
    tables: tuple[str, ...]
    if addr.version == 4:
        tables, want = ("/proc/net/tcp", "/proc/net/tcp6"), addr.packed[::-1].hex().upper()
    else:
        words = [addr.packed[i : i + 4][::-1].hex() for i in range(0, 16, 4)]
        tables, want = ("/proc/net/tcp6",), "".join(words).upper()
    v4_mapped = "0000000000000000FFFF0000" + want if addr.version == 4 else None
    port = f"{peer_port:04X}"
    for table in tables:
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 8:
                continue
            ip_hex, _, port_hex = fields[1].partition(":")
            if port_hex == port and ip_hex in (want, v4_mapped):
                return int(fields[7])
    return None


def same_user_local_peer(peer_host: str | None, peer_port: int | None) -> bool:
    """True when the peer is a process of this server's user on this machine."""
    if not peer_host or peer_port is None or not is_loopback(peer_host):
        return False
    return peer_uid(peer_host, peer_port) == os.getuid()
