"""What a hand-over between two processes costs, on one CPU and on two.

    python bench/wakeup_bench.py [--trips 20000] [--rounds 3]

Two Python processes play ping-pong over a unix socketpair (a message of the size of a
datum's variables each way, as datum batching's hand-overs are): first free to run on any CPU
(the kernel wakes the sleeping one on the other CPU when it is idle), then both pinned to one
CPU. On a virtual machine waking a sleeping CPU is most of a round trip; this is why datum
batching keeps its hand-overs on one CPU (tusk.worker.cpus).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import sys
import time
from collections.abc import Iterator

MESSAGE = b"dPACH_DATUM_ID=0123456789abcdef\x00in=/pfs/in/f00001\x00PACH_JOB_ID=abc\x00"


@contextlib.contextmanager
def answering(cpu: int | None) -> Iterator[socket.socket]:
    """A socket to a forked process that answers each message sent on it; both processes run
    on ``cpu`` (None: free) until the block ends, when the other one is waited for."""
    here, there = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        here.close()
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        while there.recv(4096):
            there.send(b"n")
        os._exit(0)
    there.close()
    saved = os.sched_getaffinity(0)
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    try:
        yield here
    finally:
        here.close()
        os.waitpid(pid, 0)
        os.sched_setaffinity(0, saved)


def round_trip(trips: int, cpu: int | None) -> float:
    """Seconds per round trip, the two processes pinned to ``cpu`` (None: not pinned)."""
    with answering(cpu) as here:
        for _ in range(100):  # both running and pinned before the clock starts
            here.send(MESSAGE)
            here.recv(4096)
        t = time.perf_counter()
        for _ in range(trips):
            here.send(MESSAGE)
            here.recv(4096)
        return (time.perf_counter() - t) / trips


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trips", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        print("needs a process allowed two CPUs or more", file=sys.stderr)
        return 2
    free: list[float] = []
    one: list[float] = []
    for r in range(args.rounds):  # alternating order
        for mode in ("free", "one") if r % 2 == 0 else ("one", "free"):
            if mode == "free":
                free.append(round_trip(args.trips, None))
            else:
                one.append(round_trip(args.trips, cpus[0]))
    print(f"trips: {args.trips}, rounds: {args.rounds}, cpus allowed: {len(cpus)}")
    print("| processes | µs per round trip (median) | runs |")
    print("|---|---|---|")
    for label, values in (("free to use any CPU", free), ("both on one CPU", one)):
        runs = ", ".join(f"{v * 1e6:.1f}" for v in values)
        print(f"| {label} | {statistics.median(values) * 1e6:.1f} | {runs} |")
    print(f"\nfree ÷ one CPU: {statistics.median(free) / statistics.median(one):.1f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
