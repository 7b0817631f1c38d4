"""The local executor's reader of a worker's result lines (several may come in one read, one
may span many)."""

from __future__ import annotations

import os
import threading

from tusk.pps.executors.local import _Lines


def test_lines_that_come_together_are_taken_one_by_one() -> None:
    r, w = os.pipe()
    try:
        lines = _Lines(os.fdopen(r, "rb", closefd=False))
        assert not lines.pending()
        os.write(w, b'{"a":1}\n{"b":2}\n{"c"')
        assert lines.readline() == b'{"a":1}\n'
        assert lines.pending()  # the second came with the first: no read needed for it
        assert lines.readline() == b'{"b":2}\n'
        assert not lines.pending()  # the third is not whole yet
        os.write(w, b":3}\n")
        assert lines.readline() == b'{"c":3}\n'
    finally:
        os.close(r)
        os.close(w)


def test_a_long_line_over_many_reads_and_a_cut_line_at_the_end() -> None:
    r, w = os.pipe()
    big = b"x" * (5 << 20) + b"\n"

    def write() -> None:
        os.write(w, big + b"cut short")
        os.close(w)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        lines = _Lines(os.fdopen(r, "rb", closefd=False))
        assert lines.readline() == big
        assert lines.readline() == b""  # a worker killed mid-write: its last line is no result
        assert lines.readline() == b""
    finally:
        writer.join()
        os.close(r)
