"""How glibc's allocator holds this process's memory while calls are transcribed.

Whisper on the CPU (CTranslate2) allocates and frees the same large buffers for every layer of every
batch: an encoder layer's attention scores alone are 72 MB per 30 s window, over 1 GB for a batch of
16. glibc serves any block over 32 MB, and any block of a thread's own arena over its 64 MB heaps,
with a fresh mmap that is unmapped again when freed, so each of these buffers is faulted in a page at
a time, every layer of every batch (`qa run` on the dev calls: 15.5 M minor faults, a third of its
CPU time in the kernel, see bench/throughput.py).

:func:`hold_heap` has every thread allocate from the one main arena, with mmap off and the heap kept
when freed: a buffer freed by one layer is the next layer's, and memory that one stage frees is
reused by the next instead of piling up in another thread's arena (issue 12's memory bound, kept by
bench/memory.py). It must run before the process starts its threads (`qa run` does it first thing):
arenas that threads already own cannot be taken back, and holding their freed memory would let it
pile up, so then the older setting stays: blocks of 64 KB and more mapped and unmapped alone.
"""

from __future__ import annotations

import ctypes
import logging
import re
from dataclasses import dataclass

logger = logging.getLogger("qa_pipeline")

# glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4
M_ARENA_MAX = -8

HELD_TRIM_THRESHOLD = 1 << 30  # a freed top of the heap is kept up to this (the largest buffers Whisper reuses)
MAPPED_THRESHOLD = 64 * 1024  # the fallback: every block from this size on mapped alone, returned when freed


@dataclass(frozen=True)
class HeapPolicy:
    mode: str  # "held" (one arena, no mmap), "mapped" (64 KB mmap threshold) or "default" (not glibc)
    arenas: int  # malloc arenas when the policy was set (0: unknown)


_policy: HeapPolicy | None = None


def hold_heap() -> HeapPolicy:
    """Set this process's allocator policy (once; later calls return the first answer)."""
    global _policy
    if _policy is None:
        _policy = _set_policy()
        logger.debug("heap policy: %s (%d arenas)", _policy.mode, _policy.arenas)
    return _policy


def _set_policy() -> HeapPolicy:
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return HeapPolicy("default", 0)  # not glibc: its allocator decides
    arenas = arena_count(libc)
    if arenas == 1:
        mallopt(M_ARENA_MAX, 1)
        mallopt(M_MMAP_MAX, 0)
        mallopt(M_TRIM_THRESHOLD, HELD_TRIM_THRESHOLD)
        return HeapPolicy("held", arenas)
    mallopt(M_MMAP_THRESHOLD, MAPPED_THRESHOLD)
    return HeapPolicy("mapped", arenas)


def arena_count(libc: ctypes.CDLL | None = None) -> int:
    """How many malloc arenas the process has (glibc's malloc_info), 0 when it cannot tell."""
    try:
        libc = libc or ctypes.CDLL("libc.so.6")
        buffer, size = ctypes.c_void_p(), ctypes.c_size_t()
        libc.open_memstream.restype = ctypes.c_void_p
        stream = libc.open_memstream(ctypes.byref(buffer), ctypes.byref(size))
        if not stream:
            return 0
        libc.malloc_info(0, ctypes.c_void_p(stream))
        libc.fclose(ctypes.c_void_p(stream))
        text = ctypes.string_at(buffer, size.value).decode("ascii", "replace")
        libc.free(buffer)
    except (OSError, AttributeError):
        return 0
    return len(re.findall(r'<heap nr="\d+">', text))
