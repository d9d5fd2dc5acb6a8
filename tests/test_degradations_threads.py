"""The uint8 path on CPU worker threads: same bytes at any thread count, caller's settings kept."""

from __future__ import annotations

import multiprocessing as mp
import sys
import threading

import pytest
import torch

from degradations import degrade_batch_uint8
from degradations.cpu_threads import on_one_thread, run_slices, slices


@pytest.fixture
def torch_threads():
    """Set torch's thread count for a test and put the original back afterwards."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def _images(b: int, c: int, h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, c, h // 4, w // 4, generator=g)
    x = torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    return (x * 255).round().to(torch.uint8)


def _params(b: int) -> list[dict]:
    """Every image its own exposure, white balance, sliders (halo on some) and noise seed."""
    return [{"exposure_ev": -1.0 - 0.4 * i, "d_temp": -30.0 + 11 * i, "d_tint": 4.0 - i,
             "highlights": -85.0 + 12 * i, "shadows": -70.0 + 9 * i, "noise_shot": 2e-3 * (i % 2),
             "noise_read": 1e-5, "cam_gain_r": 2.0, "cam_gain_b": 1.7, "noise_seed": i} for i in range(b)]


@pytest.mark.parametrize("c", [3, 1])
def test_bytes_do_not_depend_on_the_thread_count(torch_threads, c):
    x, params = _images(7, c, 40, 36, seed=c), _params(7)
    torch_threads(1)
    single = degrade_batch_uint8(x, params)
    alone = torch.cat([degrade_batch_uint8(x[i:i + 1], params[i:i + 1]) for i in range(7)])
    for threads in (2, 3):  # 3: slices of 3, 2 and 2 images
        torch_threads(threads)
        assert torch.equal(degrade_batch_uint8(x, params), single)
        assert torch.get_num_threads() == threads
    assert torch.equal(single, alone)


@pytest.mark.parametrize("c", [3, 1])
def test_whole_batch_over_the_workers_gives_the_same_bytes(torch_threads, c):
    from degradations.pipeline import PipelineOptions, params_to_tensors, wb_matrices
    from degradations.uint8_path import degrade_images, make_plan, workspace

    x, params = _images(7, c, 40, 36, seed=10 + c), _params(7)
    torch_threads(1)
    expected = degrade_batch_uint8(x, params)
    options = PipelineOptions()
    for threads in (2, 3):
        torch_threads(threads)
        t = params_to_tensors(params, x.device)
        wb = wb_matrices(t, options, t["exposure_ev"]) if c == 3 else None
        plan = make_plan(t, options, c, x, wb)
        for step in (1, 2, 7):  # 1: one image per chunk (large images), all images on both threads
            out = torch.zeros_like(x)
            degrade_images(x, out, plan, step, workspace(x.device))
            assert torch.equal(out, expected), (threads, step)


def test_slices_cover_the_range_once():
    for n, parts in [(7, 3), (2, 5), (1, 2), (6, 2), (0, 2)]:
        cut = slices(n, parts)
        assert [i for a, b in cut for i in range(a, b)] == list(range(n))
        assert len(cut) == min(n, parts) and all(b > a for a, b in cut)
        sizes = [b - a for a, b in cut]
        assert not sizes or max(sizes) - min(sizes) <= 1


def test_workers_use_one_torch_thread_and_keep_the_callers_setting(torch_threads):
    torch_threads(2)
    seen: dict[tuple[int, int], tuple[int, str]] = {}

    def task(start: int, stop: int) -> None:
        seen[(start, stop)] = (torch.get_num_threads(), threading.current_thread().name)

    run_slices(task, 5, 2)
    assert sorted(seen) == [(0, 2), (2, 5)]
    assert all(n == 1 for n, _ in seen.values())
    assert all(name.startswith("degrade-cpu-") for _, name in seen.values())
    assert torch.get_num_threads() == 2
    fresh: list[int] = []  # a thread started afterwards gets the caller's count, not the workers'
    t = threading.Thread(target=lambda: fresh.append(torch.get_num_threads()))
    t.start()
    t.join()
    assert fresh == [2]


def test_one_slice_runs_inline(torch_threads):
    torch_threads(2)
    seen: list[tuple[str, int]] = []
    run_slices(lambda a, b: seen.append((threading.current_thread().name, torch.get_num_threads())), 1, 2)
    assert seen == [(threading.current_thread().name, 2)]


def test_an_error_in_a_slice_reaches_the_caller_and_the_workers_survive(torch_threads):
    torch_threads(2)

    def task(start: int, stop: int) -> None:
        if start == 0:
            raise ValueError("slice 0 failed")

    with pytest.raises(ValueError, match="slice 0 failed"):
        run_slices(task, 4, 2)
    done: list[int] = []
    run_slices(lambda a, b: done.append(b - a), 4, 2)
    assert sorted(done) == [2, 2]


def test_on_one_thread_returns_the_result_and_raises_the_error(torch_threads):
    torch_threads(2)
    caller = threading.current_thread().name
    name, n = on_one_thread(lambda: (threading.current_thread().name, torch.get_num_threads()), 2)
    assert name.startswith("degrade-cpu-") and n == 1
    assert on_one_thread(lambda: threading.current_thread().name, 1) == caller
    with pytest.raises(KeyError):
        on_one_thread(lambda: {}["missing"], 2)
    assert torch.get_num_threads() == 2


def _child_degrades(x: torch.Tensor, params: list[dict], expected: torch.Tensor, result) -> None:
    torch.set_num_threads(2)
    result.put(bool(torch.equal(degrade_batch_uint8(x, params), expected)))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork start method")
def test_a_forked_child_starts_its_own_workers(torch_threads):
    torch_threads(2)
    x, params = _images(4, 3, 24, 24, seed=5), _params(4)
    expected = degrade_batch_uint8(x, params)  # the parent's workers exist now
    ctx = mp.get_context("fork")
    result = ctx.Queue()
    child = ctx.Process(target=_child_degrades, args=(x, params, expected, result))
    child.start()
    child.join(timeout=120)
    if child.is_alive():
        child.kill()
        pytest.fail("the forked child hung (it waited on the parent's worker threads)")
    assert child.exitcode == 0 and result.get(timeout=5) is True


@pytest.mark.parametrize("c", [3, 1])
def test_images_needing_the_halo_mask_go_first_and_the_bytes_stay(torch_threads, monkeypatch, c):
    from degradations import pipeline
    from degradations.pipeline import PipelineOptions, params_to_tensors
    from degradations.uint8_path import halo_first_order

    x, params = _images(7, c, 40, 36, seed=20 + c), _params(7)[::-1]  # _params 0-2 (halo) come last
    options = PipelineOptions()
    assert halo_first_order(params_to_tensors(params), options).tolist() == [4, 5, 6, 0, 1, 2, 3]
    assert halo_first_order(params_to_tensors(params[4:]), options) is None  # all need it
    assert halo_first_order(params_to_tensors(params[:4]), options) is None  # none does
    assert halo_first_order(params_to_tensors(params), PipelineOptions(halo=False)) is None
    for threads in (1, 2):
        torch_threads(threads)
        reordered = degrade_batch_uint8(x, params)
        with monkeypatch.context() as m:
            m.setattr(pipeline, "halo_first_order", lambda t, o: None)
            assert torch.equal(degrade_batch_uint8(x, params), reordered), threads
