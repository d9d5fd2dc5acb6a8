"""Where a build's work runs: decode → degrade → encode → atomic write, and which process does what.

Two strategies (:data:`PIPELINES`), chosen by the degradation device (:func:`strategy_for`):

* ``chained`` (CPU): each worker process runs the whole chain for a chunk of items — decode and
  hash the sources, sample their parameters, degrade its own same-shape batches with one torch
  thread, encode, write atomically — and returns the chunk's manifest rows. The main process only
  schedules chunks, journals the rows and drives the progress bar, so N processes use N cores.
  ``workers`` 0 or 1 runs the chain in this process (no pool to start, nothing to pickle): 0 keeps
  torch's thread count, 1 uses one thread (one worker's worth of CPU).
* ``staged`` (CUDA and other accelerators): workers decode and encode; the main process gathers
  same-shape batches and degrades them on the device, where big batches pay. ``workers`` 0 runs
  decode and encode in this process.

Rows do not depend on the strategy, the worker count, the batch size or the order: every item's
parameters are seeded by its relative path and the degradation is batch-invariant.

One :class:`~concurrent.futures.ProcessPoolExecutor` per build (a worker that dies surfaces as an
error instead of a hang). Start method: ``fork`` on Linux — workers inherit the imported torch, cv2
and package and the opened dataset, where ``spawn``/``forkserver`` would re-import them in every
worker (about 2.4 s of CPU each here, longer than a 4,096-image build takes). Forking a process
that has used torch is safe because a worker never touches CUDA (CUDA only runs in the main
process, ``staged``) and never enters torch's or OpenCV's thread pools (one thread each, as
torch's DataLoader workers do). Other platforms use ``spawn`` (macOS frameworks are not
fork-safe); :class:`BuildJob` is picklable for that.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from math import ceil
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from degradations.files import encode_degraded, jpeg_round_trip
from lldif_bench.datasets.base import Dataset, SkipItem, sha256_bytes
from lldif_bench.datasets.manifest import make_row
from lldif_bench.datasets.record import Record
from lldif_bench.errors import UserError
from lldif_bench.imageio import atomic_write_bytes, image_format_of, write_at
from lldif_bench.registry import Registry

Item = tuple[int, Record]  # (plan index, record)
Emit = Callable[[list[dict]], None]  # receives finished manifest rows (journal + progress)

PIPELINES: Registry = Registry("build pipeline")


@dataclass
class BuildJob:
    """What turning records into output files and manifest rows needs (sent to each worker once)."""

    dataset: Dataset
    preset: Any  # degradations.Preset
    seed: int
    out: Path
    image_format: str = "same"
    jpeg_quality: int = 95
    batch_size: int = 64
    device: str = "cpu"


_JOB: list[BuildJob] = []  # the job of this process (set by init_worker / in_process)


def init_worker(job: BuildJob) -> None:
    """Pool initializer: remember the job, one torch thread (the processes are the parallelism),
    and leave Ctrl-C to the main process, which shuts the pool down after the running chunks."""
    import torch

    _JOB[:] = [job]
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _job() -> BuildJob:
    if not _JOB:
        raise RuntimeError("pipeline task called outside a build (init_worker was not run)")
    return _JOB[0]


# -- the per-item steps (run wherever the strategy puts them) --------------------------------------

def mean_luma(img: np.ndarray) -> float:
    """Mean BT.709 luma of an sRGB-encoded uint8 image (grey: the mean), in 0..255.

    Luma is linear in R, G, B, so its mean is the weighted per-channel mean (cv2.mean: no copy)."""
    means = cv2.mean(np.ascontiguousarray(img))
    if img.shape[2] == 3:
        return 0.2126 * means[0] + 0.7152 * means[1] + 0.0722 * means[2]
    return means[0]


def decode_item(job: BuildJob, record: Record) -> tuple[np.ndarray | None, dict]:
    """Read + decode one source, hash it and sample its parameters; ``None`` image = skipped."""
    ds = job.dataset
    info: dict[str, Any] = {"params": job.preset.sample(job.seed, f"{ds.name}/{record.relpath}")}
    try:
        img, sha = ds.read_source(record)
    except SkipItem as skip:
        info.update(status=f"skipped:{skip.code}", detail=skip.detail)
        return None, info
    info.update(src_sha256=sha, height=img.shape[0], width=img.shape[1], channels=img.shape[2],
                mean_luma_in=round(mean_luma(img), 3), flags=ds.image_flags(record, img))
    return img, info


def item_row(job: BuildJob, index: int, record: Record, info: dict, **extra: Any) -> dict[str, str]:
    """The manifest row of one item (``extra``: the output's hash and luma once written)."""
    ds = job.dataset
    virtual = ds.virtual_output(record)
    fields = {"index": index, "key": record.relpath, "source": virtual or source_rel(ds, record),
              "output": virtual or ds.output_relpath(record, job.image_format), "split": record.split,
              "label": record.label, "class_name": ds.class_names[record.label] if record.label >= 0 else "",
              "native_label": record.native_label, "subject": record.subject, "angle": record.angle,
              "status": info.get("status", "ok"), "detail": info.get("detail", ""),
              "src_sha256": info.get("src_sha256"), "height": info.get("height"), "width": info.get("width"),
              "channels": info.get("channels"), "mean_luma_in": info.get("mean_luma_in"),
              "flags": info.get("flags") or None, **extra}
    return make_row(fields, info["params"])


def source_rel(dataset: Dataset, record: Record) -> str:
    path = dataset.source_path(record)
    try:
        return str(path.relative_to(dataset.root))
    except ValueError:
        return str(path)


def degrade_arrays(images: list[np.ndarray], params: list[dict], job: BuildJob) -> list[np.ndarray]:
    """Degrade same-shape uint8 ``(H, W, C)`` images as one batch on ``job.device``."""
    import torch

    import degradations  # looked up per call, so a test can patch degrade_batch_uint8

    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    y = degradations.degrade_batch_uint8(x.to(job.device), params, preset=job.preset)
    y = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    return [np.ascontiguousarray(img) for img in y.transpose(0, 2, 3, 1)]


def encode_item(job: BuildJob, index: int, record: Record, info: dict, low: np.ndarray) -> dict[str, str]:
    """Encode a degraded image in its output's format, write it atomically; its manifest row."""
    relpath = job.dataset.output_relpath(record, job.image_format)
    sampled_quality = info["params"].get("jpeg_quality")
    recompress = bool(job.preset.jpeg_recompress and sampled_quality)
    quality = int(sampled_quality or job.jpeg_quality)
    slot = job.dataset.output_slot(record)
    try:
        if slot is None:
            data = encode_degraded(low, image_format_of(relpath), quality, recompress=recompress)
            atomic_write_bytes(job.out / relpath, data)
        else:  # raw pixels (lossless, as a PNG would be) at the item's offset of a shared work file
            relpath, offset, size = slot
            data = np.ascontiguousarray(jpeg_round_trip(low, quality) if recompress else low).tobytes()
            if len(data) != size:
                raise ValueError(f"{record.relpath}: {len(data)} output bytes for a slot of {size}")
            write_at(job.out / relpath, offset, data)
    except OSError as err:  # disk full, permissions: stop (every later write would fail too)
        raise UserError(f"cannot write {job.out / relpath}: {err.strerror or err}; fix that and run the same "
                        f"command again to resume") from None
    return item_row(job, index, record, info, dst_sha256=sha256_bytes(data), mean_luma_out=round(mean_luma(low), 3))


# -- chained: one process runs the whole chain for its chunk ---------------------------------------

def chain_chunk(items: list[Item]) -> list[dict[str, str]]:
    """Decode, degrade (same-shape batches of at most ``batch_size``), encode and write a chunk."""
    job = _job()
    rows: list[dict[str, str]] = []
    by_shape: dict[tuple, list] = defaultdict(list)
    for index, record in items:
        img, info = decode_item(job, record)
        if img is None:
            rows.append(item_row(job, index, record, info))
        else:
            by_shape[img.shape].append((index, record, img, info))
    for group in by_shape.values():
        for s in range(0, len(group), job.batch_size):
            batch = group[s:s + job.batch_size]
            lows = degrade_arrays([b[2] for b in batch], [b[3]["params"] for b in batch], job)
            rows += [encode_item(job, index, record, info, low) for (index, record, _, info), low in zip(batch, lows)]
    return rows


@PIPELINES.register("chained", help="CPU: every worker decodes, degrades, encodes and writes its own chunk")
def run_chained(job: BuildJob, todo: list[Item], workers: int, emit: Emit) -> None:
    if workers <= 1:
        with in_process(job, threads=1 if workers == 1 else None):
            for chunk in _chunks(todo, job.batch_size):
                emit(chain_chunk(chunk))
        return
    size = max(1, min(job.batch_size, ceil(len(todo) / (4 * workers))))  # ~4 chunks per worker at least
    feed = _chunks(todo, size)
    with worker_pool(workers, job) as pool:
        pending: set[Future] = set()
        try:
            while True:
                while len(pending) < 2 * workers and (chunk := next(feed, None)) is not None:
                    pending.add(pool.submit(chain_chunk, chunk))
                if not pending:
                    break
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                _emit_done(done, emit)
        except BaseException:  # Ctrl-C or a failed chunk: journal what the running chunks finish
            for f in pending:
                f.cancel()
            with contextlib.suppress(BaseException):
                _emit_done(wait(pending).done, emit, reraise=False)
            raise


def _emit_done(done: set[Future], emit: Emit, reraise: bool = True) -> None:
    """Emit the rows of every successful future, then raise the first failure."""
    error = None
    for f in done:
        if f.cancelled():
            continue
        if f.exception() is not None:
            error = error or f.exception()
        else:
            emit(f.result())
    if error is not None and reraise:
        raise error


# -- staged: workers decode and encode, the main process degrades on the device --------------------

def decode_chunk(items: list[Item]) -> list[tuple[int, Record, np.ndarray | None, dict]]:
    job = _job()
    return [(index, record, *decode_item(job, record)) for index, record in items]


def encode_chunk(items: list[tuple[int, Record, dict, np.ndarray]]) -> list[dict[str, str]]:
    job = _job()
    return [encode_item(job, index, record, info, low) for index, record, info, low in items]


@PIPELINES.register("staged", help="accelerator: workers decode and encode, the main process degrades batches")
def run_staged(job: BuildJob, todo: list[Item], workers: int, emit: Emit) -> None:
    import os

    import torch

    chunk = max(1, min(32, job.batch_size))
    ahead = 2 * max(workers, 1) + 2
    threads = torch.get_num_threads()
    if job.device == "cpu":  # leave the cores the worker processes use; oversubscribing is far slower
        torch.set_num_threads(max(1, (os.cpu_count() or 1) - workers))
    try:
        with (worker_pool(workers, job) if workers > 0 else in_process(job)) as pool:
            _Staged(job, pool, chunk, ahead, emit).run(todo)
    finally:
        torch.set_num_threads(threads)


class _Staged:
    """The main-process loop of ``staged``: decode chunks ahead, batch by shape, degrade, encode."""

    def __init__(self, job: BuildJob, pool, chunk: int, ahead: int, emit: Emit) -> None:
        self.job, self.pool, self.chunk, self.ahead, self.emit = job, pool, chunk, ahead, emit
        self.buffers: dict[tuple, list] = defaultdict(list)  # shape -> [(index, record, img, info)]
        self.encodes: list[Future] = []

    def run(self, todo: list[Item]) -> None:
        try:
            feed = _chunks(todo, self.chunk)
            decodes = [self.pool.submit(decode_chunk, c) for c in _take(feed, self.ahead)]
            while decodes:
                results = decodes.pop(0).result()
                decodes += [self.pool.submit(decode_chunk, c) for c in _take(feed, 1)]
                skips = []
                for index, record, img, info in results:
                    if img is None:
                        skips.append(item_row(self.job, index, record, info))
                        continue
                    self.buffers[img.shape].append((index, record, img, info))
                    if len(self.buffers[img.shape]) >= self.job.batch_size:
                        self.flush(img.shape)
                if skips:
                    self.emit(skips)
                self.harvest(block=False)
            for shape in list(self.buffers):
                self.flush(shape)
            self.harvest(block=True)
        except BaseException:  # journal the outputs already written, then re-raise
            with contextlib.suppress(BaseException):
                self.harvest(block=False)
            raise

    def flush(self, shape: tuple) -> None:
        batch = self.buffers.pop(shape, [])
        if not batch:
            return
        lows = degrade_arrays([b[2] for b in batch], [b[3]["params"] for b in batch], self.job)
        jobs = [(index, record, info, low) for (index, record, _, info), low in zip(batch, lows)]
        self.encodes += [self.pool.submit(encode_chunk, c) for c in _chunks(jobs, self.chunk)]
        while len(self.encodes) > self.ahead:  # bounded memory: wait for the oldest encode
            self.encodes[0].result()
            self.harvest(block=False)

    def harvest(self, block: bool) -> None:
        while self.encodes and (block or self.encodes[0].done()):
            self.emit(self.encodes.pop(0).result())


# -- where tasks run -------------------------------------------------------------------------------

def strategy_for(device_type: str) -> str:
    """``chained`` for the CPU, ``staged`` for an accelerator."""
    return "chained" if device_type == "cpu" else "staged"


def start_method() -> str:
    """``fork`` on Linux (cheap, safe here; see the module docstring), else ``spawn``."""
    return "fork" if sys.platform.startswith("linux") else "spawn"


class _InlineExecutor:
    """Runs each task at once in this process; the bit of the Executor interface we use."""

    def submit(self, fn: Callable, *args: Any) -> Future:
        future: Future = Future()
        future.set_result(fn(*args))
        return future


@contextlib.contextmanager
def in_process(job: BuildJob, threads: int | None = None) -> Iterator[_InlineExecutor]:
    """Run tasks in this process (``threads``: torch's thread count meanwhile; None = unchanged)."""
    import torch

    before = torch.get_num_threads()
    _JOB[:] = [job]
    if threads:
        torch.set_num_threads(threads)
    try:
        yield _InlineExecutor()
    finally:
        _JOB.clear()
        torch.set_num_threads(before)


@contextlib.contextmanager
def worker_pool(workers: int, job: BuildJob) -> Iterator[ProcessPoolExecutor]:
    """One process pool for the whole build; on exit, queued chunks are cancelled and running ones
    finish (their files are written whole)."""
    pool = ProcessPoolExecutor(workers, mp_context=mp.get_context(start_method()), initializer=init_worker,
                               initargs=(job,))
    try:
        yield pool
    except BrokenProcessPool:
        raise UserError("a make-dataset worker process died (out of memory, or a crash inside an image "
                        "decoder); run the same command again to resume, with --workers 0 to see the "
                        "failing item, or fewer --workers/--batch-size if memory is short") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _chunks(items: list, size: int) -> Iterator[list]:
    return (items[i:i + size] for i in range(0, len(items), size))


def _take(it: Iterator, n: int) -> list:
    return [x for _, x in zip(range(n), it)]
