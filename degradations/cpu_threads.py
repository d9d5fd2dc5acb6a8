"""Run independent slices of a CPU job on worker threads that each use one torch thread.

Why not torch's own intra-op threads for the uint8 path (measured on the project's 2-core machine,
torch 2.14.1, OpenMP backend):

* a 1-D ``index_select`` (every table look-up of the path: decode, tone curve, encode) runs on the
  calling thread only (per-thread CPU time of a 20M-element gather with 2 threads: all of it on
  the caller, where a ``mul`` splits evenly); those gathers are about a quarter of the path's CPU
  time at 100x100 and 224x224;
* ops on fewer than 32,768 elements (torch's grain size: the 1/4-resolution halo mask of a
  chunk, the per-call tables) run on one thread;
* every parallel op ends in a barrier that waits for all threads of the team: while other
  processes keep the cores busy, each op can wait a scheduler time slice (about 4-8 ms per op
  measured under load 3-6).

Splitting the *images* of a chunk between threads instead keeps every op of every slice busy with
one barrier per chunk, and the bytes do not change: every value depends only on its own image.

A worker's torch thread count is thread-local with the OpenMP backend (``omp_set_num_threads``), so
a worker sets it to 1 once; ``torch.set_num_threads`` also stores a process-wide default for threads
that start later, which is put back to the caller's count after starting workers.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
from collections.abc import Callable
from typing import TypeVar

import torch

Task = Callable[[int, int], None]
R = TypeVar("R")


class _Worker:
    """One daemon thread with one torch thread, running ``(job, done)`` pairs: ``job()``, then
    ``done.put(None)``, or ``done.put(error)`` if it raised."""

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
            job, done = self.jobs.get()
            try:
                job()
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


def run_slices(task: Task, n_items: int, threads: int, per_thread: int = 1, *, caller_joins: bool = False) -> None:
    """Call ``task(start, stop)`` for ``threads * per_thread`` slices of ``range(n_items)`` and wait
    for all of them. ``threads`` worker threads with one torch thread each take the slices in
    order as they finish the previous one (so a slow slice does not hold the others up). With
    ``caller_joins`` the calling thread is one of them (with one torch thread meanwhile, its own
    count put back afterwards) and ``threads - 1`` workers help: one wake-up fewer per call, which
    can take a scheduler time slice while other processes keep the cores busy. (Meanwhile torch's
    process-wide default is 1 too, as while workers start: a thread that first uses torch in that
    window starts with one torch thread.) With one slice
    (``threads <= 1`` or one item) the task runs inline on the calling thread with its own torch
    threads. Slices must be independent; the first error raised by a slice is re-raised here after
    the others have finished."""
    parts = slices(n_items, max(1, threads) * max(1, per_thread))
    runners = min(threads, len(parts))
    if runners <= 1:
        for start, stop in parts:
            task(start, stop)
        return
    todo: queue.SimpleQueue = queue.SimpleQueue()
    for part in parts:
        todo.put(part)

    def drain() -> None:
        while True:
            try:
                start, stop = todo.get_nowait()
            except queue.Empty:
                return
            task(start, stop)

    if caller_joins:
        _run_on_workers([drain] * (runners - 1), caller=drain)
    else:
        _run_on_workers([drain] * runners)


def on_one_thread(fn: Callable[[], R], threads: int) -> R:
    """``fn()`` on a worker thread with one torch thread if ``threads > 1``, else inline.

    For the serial steps between parallel ones: their ops would otherwise open torch's intra-op
    parallel regions (ops over 32,768 elements), whose barrier waits for every thread of the team,
    so while other processes keep the cores busy each such op can wait for a scheduler time slice
    (measured on this 2-core machine under load: about 4 ms per op on 65,000-element tensors)."""
    if threads <= 1:
        return fn()
    result: list[R] = []
    _run_on_workers([lambda: result.append(fn())])
    return result[0]


def _run_on_workers(jobs: list[Callable[[], None]], caller: Callable[[], None] | None = None) -> None:
    """Run job ``i`` on worker ``i`` (and ``caller`` on the calling thread with one torch thread);
    wait for all; re-raise the first error."""
    done: queue.SimpleQueue = queue.SimpleQueue()
    for worker, job in zip(_workers(len(jobs)), jobs):
        worker.jobs.put((job, done))
    own: list[BaseException] = []
    if caller is not None:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            caller()
        except BaseException as err:  # noqa: BLE001 (re-raised below, after the workers finish)
            own.append(err)
        finally:
            torch.set_num_threads(threads)
    errors = own + [err for err in (done.get() for _ in jobs) if err is not None]
    if errors:
        raise errors[0]
