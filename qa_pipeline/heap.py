"""How glibc's allocator holds this process's memory: small and flat between stages, reused inside
Whisper's decoding.

Between stages (issue 12): every block of 64 KB or more is mapped alone and unmapped when freed, so
that one stage's transient buffers (Silero's batches, the level profiles, the speaker embeddings)
never pile up under the next one's and a 4-hour call stays under 2 GB (bench/memory.py).

Inside Whisper's decoding (issue 24) that costs a third of the CPU time in the kernel: CTranslate2
allocates and frees the same large buffers for every layer of every batch (an encoder layer's
attention scores are 72 MB per 30 s window, over 1 GB for a batch of 16), and a block mapped alone
is faulted in a page at a time each time (`qa run` on the dev calls: 15.5 M minor faults). So while
a group of windows is decoded (:func:`held`), no block is mapped alone and a freed top of the heap
is kept: each buffer is the previous layer's; afterwards the freed memory is handed back
(malloc_trim) and the mapping policy returns.

What the held heap keeps must still fit issue 12's bound (a 4-hour call under 2 GB). On the CPU
the passes themselves are kept small (EasedWhisper in qa_pipeline.asr.transcribe): the encoder takes
a batch 4 windows at a time (16 windows of noise at once took the process to about 2 GB) and the
word alignment 3 windows and the batch's longest at a time (16 full windows at once: past 3.5 GB);
both give the same output as the whole batch. Between CTranslate2's passes, after encoding and after
decoding, the freed memory is handed back once the process holds more than HELD_RSS_CAP
(:func:`ease`), and leaving each held() (a batch) hands it all back; batches that stay under the
cap keep their buffers from pass to pass. A 4 h call of noise peaks at about 1.7 GB
(bench/memory.py).

That needs the decoding thread (CTranslate2's worker) to allocate from the heap that :func:`held`
governs: :func:`share_one_arena` has every thread use glibc's main arena. It must run before the
process starts its threads (`qa run` does it first thing); once threads own arenas of their own
they keep them (a thread's arena is a 64 MB heap that maps anything bigger alone anyway).
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

logger = logging.getLogger("qa_pipeline")

# glibc's malloc.h and its defaults
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4
M_ARENA_MAX = -8
DEFAULT_MMAP_MAX = 65536
DEFAULT_TRIM_THRESHOLD = 128 * 1024
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

MAPPED_THRESHOLD = 64 * 1024  # between stages: every block from this size on mapped alone, returned when freed
HELD_RSS_CAP = 1024 * 2**20  # inside held(): over this resident size, freed memory is handed back between passes
HELD_TRIM_THRESHOLD = 2**31 - 1  # while decoding: a freed top of the heap is kept (mallopt takes an int: 2 GB; a batch of 16 windows frees 1.2 GB at once)


@dataclass(frozen=True)
class HeapPolicy:
    one_arena: bool  # every thread allocates from the main arena (False: threads owned arenas already)
    arenas: int  # malloc arenas when the policy was set (0: unknown, or not glibc)
    glibc: bool = True


_policy: HeapPolicy | None = None
_lock = threading.Lock()
_held = 0  # nesting depth of held()


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 (glibc's, or not glibc)
    except (OSError, AttributeError):
        return None
    return libc


def share_one_arena() -> HeapPolicy:
    """Set this process's allocator policy (once; later calls return the first answer): one arena
    for every thread when no thread owns one yet, and blocks of 64 KB or more mapped alone."""
    global _policy
    with _lock:
        if _policy is None:
            libc = _libc()
            if libc is None:
                _policy = HeapPolicy(False, 0, glibc=False)  # not glibc: its allocator decides
            else:
                arenas = arena_count(libc)
                if arenas == 1:
                    libc.mallopt(M_ARENA_MAX, 1)
                libc.mallopt(M_MMAP_THRESHOLD, MAPPED_THRESHOLD)
                _policy = HeapPolicy(arenas == 1, arenas)
            logger.debug("heap policy: %s", _policy)
        return _policy


@contextmanager
def held() -> Iterator[None]:
    """Within: freed memory stays in the heap for the next allocation (Whisper's per-layer buffers);
    on leaving the outermost one: handed back, and big blocks mapped alone again."""
    global _held
    libc = _libc() if share_one_arena().glibc else None
    if libc is None:
        yield
        return
    with _lock:
        _held += 1
        if _held == 1:
            libc.mallopt(M_MMAP_MAX, 0)
            libc.mallopt(M_TRIM_THRESHOLD, HELD_TRIM_THRESHOLD)
    try:
        yield
    finally:
        with _lock:
            _held -= 1
            if _held == 0:
                libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
                libc.mallopt(M_MMAP_THRESHOLD, MAPPED_THRESHOLD)
                libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
            libc.malloc_trim(0)  # each held() is one batch: the next one starts from what is live


def ease() -> None:
    """Inside held(): hand the freed memory back if the process holds more than HELD_RSS_CAP
    (between two passes of the decoder, so that the next one does not grow on top of it)."""
    libc = _libc() if share_one_arena().glibc else None
    if libc is not None and _held and resident_bytes() > HELD_RSS_CAP:
        libc.malloc_trim(0)


def resident_bytes() -> int:
    """This process's resident memory (0 when /proc cannot tell)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return 0


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
