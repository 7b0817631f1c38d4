"""The worker thread's home CPU while datum batching runs.

A batch of quick datums is mostly hand-overs between three processes (the user code asking for
the next datum, the agent, the worker). On a virtual machine, waking a process that sleeps on
another CPU costs tens of microseconds, waking one on the same CPU a few. So while datum
batching's code runs, the worker's thread stays on the CPU it was on when the code started (its
home), the agent runs there too, and the agent has the code woken there after a quick datum
(``agent.c``). When the batch ends the thread gets its CPUs back. The local executor gives each
worker a CPU of its own in turn (``--home-cpu``), so that two workers' batches do not share one.
"""

from __future__ import annotations

import contextlib
import os
import threading


def current_cpu() -> int:
    """The CPU this thread runs on now (-1 when the kernel does not say)."""
    try:
        with open("/proc/thread-self/stat", "rb") as f:
            stat = f.read()
        # the fields after the command name (which may hold spaces) in parentheses
        return int(stat[stat.rindex(b")") + 2 :].split()[36])
    except (OSError, ValueError, IndexError):
        return -1


class HomeCpu:
    """Holds one thread on one CPU, and gives it back its CPUs."""

    def __init__(self, preferred: int | None = None) -> None:
        self.preferred = preferred  # the CPU to hold on, when allowed (else the current one)
        self.cpu = -1
        self._thread = 0
        self._saved: set[int] | None = None

    def hold(self) -> int:
        """Keep the calling thread on the preferred CPU, or else the one it runs on; that CPU,
        or -1 (not known). A thread already allowed a single CPU (a pinned worker) keeps it."""
        if self.cpu >= 0:
            return self.cpu
        allowed = os.sched_getaffinity(0)
        if len(allowed) == 1:
            self.cpu = next(iter(allowed))
            return self.cpu
        cpu = self.preferred if self.preferred in allowed else current_cpu()
        if cpu not in allowed:
            return -1
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError:
            return -1
        self.cpu, self._thread, self._saved = cpu, threading.get_native_id(), allowed
        return cpu

    def release(self) -> None:
        """Give the held thread back the CPUs it had."""
        saved, self._saved = self._saved, None
        self.cpu = -1
        if saved is not None:
            with contextlib.suppress(OSError):  # the thread may have ended
                os.sched_setaffinity(self._thread, saved)
