"""Giving freed memory back to the operating system after a big operation.

CPython frees small objects into its own arenas and glibc keeps freed heap pages in each
thread's malloc arena; after a put of a million files the server's resident size would stay at
its peak though the objects are gone. ``malloc_trim(0)`` returns the free pages of every arena.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        fn = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to call
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


def release_free_memory() -> bool:
    """Return the C heap's free pages to the OS; False where the C library cannot."""
    fn = _malloc_trim()
    if fn is None:
        return False
    fn(0)
    return True
