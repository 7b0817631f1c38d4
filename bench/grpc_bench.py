"""gRPC benchmark: GetFile and ModifyFile throughput of one large file through pachyderm-sdk
(Pachyderm's official client, over tuskd's gRPC API) against tusk's own client (HTTP), in the
same run against the same server.

    python bench/grpc_bench.py            # 1 GiB, 3 rounds (a few minutes on 2 cores)
    python bench/grpc_bench.py --quick    # 64 MiB, 1 round

Both clients run in this process and stream the file from disk (tusk's client is handed an
open file, so its bytes travel over HTTP as the SDK's travel over gRPC; a path would let a
local server read the file itself). The order of the two clients alternates between rounds.
The goal: gRPC at least 80% of the HTTP figure, both ways. The run also times the SDK's own
encoding of the ModifyFile messages (no network, no server), the ceiling of its upload, and a
ModifyFile upload whose messages are encoded by hand (the same bytes on the wire as the SDK's,
sent with grpcio directly): what the server side takes, whatever the client's encoder costs.
And one more SDK upload, through its ``modify_file`` with 4 MiB ``AddFile`` messages instead of
``put_file_from_file``'s 19 MiB ones: betterproto copies each message several times, and copies
of 19 MiB buffers run far slower than of 4 MiB ones (fresh memory from the allocator each time).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
from pachyderm_sdk import Client as SdkClient
from pachyderm_sdk.api import pfs

from tusk.grpc.wire import encode_bytes_value
from tusk.testing import Tuskd

MiB = 1 << 20
SMALL = 4 * MiB  # bytes of an AddFile message in the modify_file variant


def write_random(path: Path, size: int, block: int = 64 * MiB) -> None:
    with path.open("wb") as f:
        left = size
        while left > 0:
            n = min(block, left)
            f.write(os.urandom(n))
            left -= n


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def drain(chunks: object) -> int:
    total = 0
    for chunk in chunks:  # type: ignore[attr-defined]
        total += len(chunk.value if hasattr(chunk, "value") else chunk)
    return total


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    n, size = (number << 3) | 2, len(payload)
    head = bytearray([n])
    while size >= 0x80:
        head.append((size & 0x7F) | 0x80)
        size >>= 7
    head.append(size)
    return bytes(head) + payload


def raw_modify_file(port: int, repo: str, data: Path) -> None:
    """ModifyFile with hand-encoded messages: set_commit, then one AddFile per 19 MiB block,
    as pachyderm-sdk sends them."""
    commit = bytes(pfs.ModifyFileRequest(set_commit=pfs.Commit.from_uri(f"{repo}@master")))

    def messages() -> Iterator[bytes]:
        yield commit
        with data.open("rb") as fh:
            while block := fh.read(19 * MiB):
                add = _field(1, b"/big") + _field(3, encode_bytes_value(block))
                yield _field(2, add)

    with grpc.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 64 * MiB)]
    ) as channel:
        call = channel.stream_unary(
            "/pfs_v2.API/ModifyFile", request_serializer=bytes, response_deserializer=bytes
        )
        call(messages(), timeout=3600)


def one_round(
    server: Tuskd, files: dict[str, Path], size: int, r: int, sdk_first: bool
) -> dict[str, float]:
    """One upload and download per client, each of a file of its own: objects are stored by
    content, so a client uploading bytes the server already has would store nothing."""
    sdk = SdkClient(host="127.0.0.1", port=server.port)
    out: dict[str, float] = {}
    with server.client() as tusk:

        def tusk_put() -> None:
            with files["http"].open("rb") as fh:
                tusk.pfs.put_file(f"http{r}", "master", "/big", fh)

        def sdk_put() -> None:
            with files["grpc"].open("rb") as fh:
                commit = pfs.Commit.from_uri(f"grpc{r}@master")
                sdk.pfs.put_file_from_file(commit=commit, path="/big", file=fh)

        def sdk_put_small() -> None:
            # the same upload through the SDK's own modify_file with 4 MiB AddFile messages
            # (what a user can write instead of put_file_from_file's 19 MiB ones)
            commit = pfs.Commit.from_uri(f"small{r}@master")

            def ops() -> Iterator[pfs.ModifyFileRequest]:
                yield pfs.ModifyFileRequest(set_commit=commit)
                yield pfs.ModifyFileRequest(delete_file=pfs.DeleteFile(path="/big"))
                with files["small"].open("rb") as fh:
                    while block := fh.read(SMALL):
                        yield pfs.ModifyFileRequest(add_file=pfs.AddFile(path="/big", raw=block))

            sdk.pfs.modify_file(ops())

        def tusk_get() -> None:
            assert drain(tusk.pfs.get_file(f"http{r}", "master", "/big")) == size

        def sdk_get() -> None:
            got = drain(sdk.pfs.get_file(file=pfs.File.from_uri(f"grpc{r}@master:/big")))
            assert got == size

        def sdk_encode() -> None:
            # pachyderm-sdk's own message encoding alone (no network, no server): the ceiling
            # of its ModifyFile throughput, whatever the server does
            with files["grpc"].open("rb") as fh:
                while block := fh.read(19 * MiB):
                    bytes(pfs.ModifyFileRequest(add_file=pfs.AddFile(path="/big", raw=block)))

        def sdk_encode_small() -> None:
            with files["small"].open("rb") as fh:
                while block := fh.read(SMALL):
                    bytes(pfs.ModifyFileRequest(add_file=pfs.AddFile(path="/big", raw=block)))

        out["sdk_encode"] = size / MiB / timed(sdk_encode)
        out["sdk_encode_4m"] = size / MiB / timed(sdk_encode_small)
        tusk.pfs.create_repo(f"http{r}")
        sdk.pfs.create_repo(repo=pfs.Repo(name=f"small{r}"))
        tusk.pfs.create_repo(f"raw{r}")
        sdk.pfs.create_repo(repo=pfs.Repo(name=f"grpc{r}"))
        out["raw_put"] = (
            size / MiB / timed(lambda: raw_modify_file(server.port, f"raw{r}", files["raw"]))
        )
        assert drain(tusk.pfs.get_file(f"raw{r}", "master", "/big")) == size
        out["sdk_put_4m"] = size / MiB / timed(sdk_put_small)
        assert drain(tusk.pfs.get_file(f"small{r}", "master", "/big")) == size
        order = [("grpc", sdk_put, sdk_get), ("http", tusk_put, tusk_get)]
        if not sdk_first:
            order.reverse()
        for name, put, get in order:
            out[f"{name}_put"] = size / MiB / timed(put)
            out[f"{name}_get"] = size / MiB / timed(get)
        tusk.pfs.delete_repo(f"http{r}")
        tusk.pfs.delete_repo(f"raw{r}")
        tusk.pfs.delete_repo(f"small{r}")
        sdk.pfs.delete_repo(repo=pfs.Repo(name=f"grpc{r}"))
    sdk._channel.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="64 MiB, one round")
    parser.add_argument("--size-mib", type=int, help="file size (default 1024)")
    parser.add_argument("--rounds", type=int, help="rounds (default 3)")
    parser.add_argument("--workdir", type=Path, help="where the server and data live")
    args = parser.parse_args()
    size = (args.size_mib or (64 if args.quick else 1024)) * MiB
    rounds = args.rounds or (1 if args.quick else 3)
    print(f"load average at the start: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        files = {name: work / f"{name}.bin" for name in ("grpc", "http", "raw", "small")}
        samples: dict[str, list[float]] = {}
        with Tuskd(work / "home") as server:
            for r in range(rounds):
                for path in files.values():  # new bytes every round
                    write_random(path, size)
                got = one_round(server, files, size, r, sdk_first=r % 2 == 0)
                for key, value in got.items():
                    samples.setdefault(key, []).append(value)
                print(f"round {r + 1}: " + ", ".join(f"{k} {v:.0f} MiB/s" for k, v in got.items()))
    print(f"\n{size // MiB} MiB, {rounds} round(s), median (min-max) MiB/s:\n")
    print("| operation | pachyderm-sdk (gRPC) | tusk client (HTTP) | gRPC / HTTP |")
    print("|---|---|---|---|")
    for op, label in (("put", "ModifyFile / put-file"), ("get", "GetFile / get-file")):
        g, h = samples[f"grpc_{op}"], samples[f"http_{op}"]
        ratios = [a / b for a, b in zip(g, h, strict=True)]
        print(
            f"| {label} | {_cell(g)} | {_cell(h)} | {statistics.median(ratios):.0%} "
            f"({min(ratios):.0%}-{max(ratios):.0%}) |"
        )
    raw, http = samples["raw_put"], samples["http_put"]
    ratios = [a / b for a, b in zip(raw, http, strict=True)]
    print(
        f"| ModifyFile, hand-encoded messages (the server's side) | {_cell(raw)} | {_cell(http)} "
        f"| {statistics.median(ratios):.0%} ({min(ratios):.0%}-{max(ratios):.0%}) |"
    )
    small = samples["sdk_put_4m"]
    ratios = [a / b for a, b in zip(small, http, strict=True)]
    print(
        f"| ModifyFile, pachyderm-sdk modify_file with 4 MiB messages | {_cell(small)} "
        f"| {_cell(http)} | {statistics.median(ratios):.0%} ({min(ratios):.0%}-{max(ratios):.0%}) |"
    )
    print(
        f"\npachyderm-sdk's own encoding of the ModifyFile messages alone: "
        f"{_cell(samples['sdk_encode'])} MiB/s (19 MiB messages), "
        f"{_cell(samples['sdk_encode_4m'])} MiB/s (4 MiB messages)"
    )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})"


if __name__ == "__main__":
    sys.exit(main())
