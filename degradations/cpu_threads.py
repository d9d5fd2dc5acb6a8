"""Run independent slices of a CPU job on worker threads that each use one torch thread.

Torch's intra-op parallelism splits every op across its threads, but only ops of more than its
grain size (32,768 elements) are split, and each op ends with a barrier. The uint8 export path is a
long chain of such ops; at 224x224 a cache-sized chunk holds only a few images, and its many small
ops (the 1/4-resolution halo mask: area mean, blur, upsampling) run on one thread while the other
waits. Splitting the *images* of a chunk between threads instead keeps every op of every slice busy,
and the bytes do not change: every per-pixel value depends only on its own image.

A worker's torch thread count is thread-local with the OpenMP backend (``omp_set_num_threads``), so
a worker sets it to 1 once; ``torch.set_num_threads`` also stores a process-wide default for threads
that start later, which :func:`run_slices` restores to the caller's count after starting workers.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
from collections.abc import Callable

import torch

Task = Callable[[int, int], None]


class _Worker:
    """One daemon thread with one torch thread, running ``(task, start, stop, done)`` jobs."""

    def __init__(self, index: int) -> None:
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._loop, args=(ready,), name=f"degrade-cpu-{index}",
                                       daemon=True)
        self.thread.start()
        ready.wait()

    def _loop(self, ready: threading.Event) -> None:
        torch.get_num_threads()  # torch's lazy per-thread init first, or it would undo the next line
        torch.set_num_threads(1)
        ready.set()
        while True:
            task, start, stop, done = self.jobs.get()
            try:
                task(start, stop)
            except BaseException as err:  # noqa: BLE001 (handed to the caller, which re-raises it)
                done.put(err)
            else:
                done.put(None)


_WORKERS: list[_Worker] = []
_LOCK = threading.Lock()


def _workers(n: int) -> list[_Worker]:
    """At least ``n`` started workers; the caller's torch thread count is kept."""
    with _LOCK:
        if len(_WORKERS) < n:
            threads = torch.get_num_threads()
            while len(_WORKERS) < n:
                _WORKERS.append(_Worker(len(_WORKERS)))
            torch.set_num_threads(threads)  # the process-wide default the workers overwrote
        return _WORKERS[:n]


def _forget_workers() -> None:
    """A forked child has none of the parent's threads."""
    _WORKERS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers)


def slices(n_items: int, parts: int) -> list[tuple[int, int]]:
    """``range(n_items)`` cut into at most ``parts`` contiguous, near-equal, non-empty slices."""
    parts = max(1, min(parts, n_items))
    bounds = [n_items * i // parts for i in range(parts + 1)]
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def run_slices(task: Task, n_items: int, threads: int) -> None:
    """Call ``task(start, stop)`` for ``threads`` slices of ``range(n_items)``, on as many worker
    threads with one torch thread each, and wait for all of them. With one slice (``threads <= 1``
    or one item) the task runs inline on the calling thread with its own torch threads. Slices must
    be independent; the first error raised by a slice is re-raised here after all have finished."""
    parts = slices(n_items, threads)
    if len(parts) <= 1:
        for start, stop in parts:
            task(start, stop)
        return
    done: queue.SimpleQueue = queue.SimpleQueue()
    for worker, (start, stop) in zip(_workers(len(parts)), parts):
        worker.jobs.put((task, start, stop, done))
    errors = [err for err in (done.get() for _ in parts) if err is not None]
    if errors:
        raise errors[0]
