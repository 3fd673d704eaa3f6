"""Run a pure per-item function over many items on every core.

Workers are forked, so they inherit the items (and the caller's loaded rubric, templates …) instead
of receiving them pickled; only results travel back. Where fork is unavailable, or there are too few
items for worker start-up to pay, everything runs in this process.

A batch's records are millions of small objects (a Word per character): :func:`no_collection` while
they are built, :func:`long_lived` while they are used, so that Python's cycle collector does not
walk them again and again (a third of reading 10,000 transcripts) and forked workers do not copy
their pages by touching them. Neither changes what any code computes.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_job: tuple[Callable, Sequence] | None = None  # in a forked worker: the function and items it works on


def map_chunks(fn: Callable[[Sequence[T]], list[R]], items: Sequence[T], *, min_items: int = 500,
               workers: int | None = None) -> list[R]:
    """`fn(items[a:b])` over chunks of `items`, concatenated in order."""
    return start_chunks(fn, items, min_items=min_items, workers=workers).result()


class Started:
    """`fn(items[a:b])` over chunks of `items` under way in forked workers while the caller goes on
    (:func:`start_chunks`); `result()` waits for them. As a context manager, the workers are stopped
    if the block fails before it waited."""

    def __init__(self, pool=None, pending=None, done: list | None = None) -> None:
        self._pool, self._pending, self._done = pool, pending, done

    def result(self) -> list:
        if self._done is None:
            try:
                parts = self._pending.get()
            finally:
                self._stop()
            self._done = [result for part in parts for result in part]
        return self._done

    def _stop(self) -> None:
        self._pool.terminate()
        self._pool.join()

    def __enter__(self) -> Started:
        return self

    def __exit__(self, *exc) -> None:
        if self._done is None and self._pool is not None:
            if exc[0] is None:
                self.result()
            else:
                self._stop()


def start_chunks(fn: Callable[[Sequence[T]], list[R]], items: Sequence[T], *, min_items: int = 500,
                 workers: int | None = None) -> Started:
    """:func:`map_chunks` begun in the background: the workers fork now (they see the world as it is
    now) and work while the caller does something else; with too few items, done here and now."""
    workers = workers or min(os.cpu_count() or 1, 8)
    if len(items) < min_items or workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return Started(done=list(fn(items)))
    size = -(-len(items) // (workers * 4))
    ranges = [(start, min(start + size, len(items))) for start in range(0, len(items), size)]
    # each worker is handed the job as it starts (a forked worker inherits the arguments, unpickled),
    # so that chunks begun meanwhile in this process have their own
    pool = multiprocessing.get_context("fork").Pool(workers, initializer=_take_job, initargs=(fn, items))
    return Started(pool, pool.map_async(_run_range, ranges))


def _take_job(fn: Callable, items: Sequence) -> None:
    global _job
    _job = (fn, items)


def _run_range(bounds: tuple[int, int]) -> list:
    fn, items = _job
    return list(fn(items[bounds[0]:bounds[1]]))


@contextmanager
def no_collection() -> Iterator[None]:
    """No cycle collection while the block builds many objects (it makes no garbage cycles)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@contextmanager
def long_lived() -> Iterator[Callable[[], None]]:
    """Yields `keep()`: every object alive when it is called is left out of cycle collection until
    the block ends (gc.freeze; they are still freed when no longer referenced)."""
    try:
        yield gc.freeze
    finally:
        gc.unfreeze()
