"""The per-op kernel registry of the uint8 path (degradations/kernels.py): every registered kernel
agrees with the torch kernel (bit for bit where marked exact, within the numerics contract
otherwise), the CPU's picks keep the bytes batch-invariant, and the benchmark's per-op mode runs.
The fused numba kernels of the ``colour`` and ``grey`` ops give the torch kernels' bytes at every
batch size and worker count."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from degradations import degrade_batch_uint8, fused, load_preset
from degradations import kernels as K
from degradations.kernels import CONTRACT, CPU_CHOICE, KERNELS, OPS, use_kernels
from degradations.uint8_path import Workspace

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


def _images(b: int, c: int, h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, c, max(2, h // 6), max(2, w // 6), generator=g)
    x = torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def _op_inputs(op: str, h: int, w: int, b: int = 3, seed: int = 0) -> tuple:
    """Fresh inputs for one call of ``op`` (a new workspace each time: kernels may return views
    of their workspace buffers)."""
    from degradations.numerics import DETERMINISTIC
    from degradations.tone import mask_downscale
    from degradations.transfer import decode_lut

    g = torch.Generator().manual_seed(seed)
    ws = Workspace(CPU)
    f = mask_downscale(h, w)
    if op == "decode":
        codes = _images(b, 3, h, w, seed)
        return codes, torch.empty(codes.shape), torch.empty(codes.shape, dtype=torch.int32), decode_lut(CPU)
    if op == "levels":
        codes = _images(b, 1, h, w, seed)
        tables = (torch.rand(b * 256, generator=g) * 256).to(torch.uint8)
        return codes, torch.empty(codes.shape, dtype=torch.uint8), tables, 0, ws
    lum = torch.rand(b, 1, h, w, generator=g) * 0.3
    if op == "downsample":
        return lum, f, ws
    small = DETERMINISTIC.lightness(torch.rand(b, 1, -(-h // f), -(-w // f), generator=g))
    if op == "blur":
        return small, 0.05 * min(h, w) / f, ws
    if op == "upsample":
        return small, (h, w), f, ws
    if op == "mix":
        lin = torch.rand(b, 3, h, w, generator=g)
        coefs = [torch.rand(b, 1, 1, 1, generator=g) - 0.2 for _ in range(3)]
        return [lin[:, j:j + 1] for j in range(3)], coefs, torch.empty(b, 1, h, w), torch.empty(b, 1, h, w)
    if op in ("colour", "grey"):  # a chunk with halo images, +2 EV and noise: every branch of the kernels
        return _chunk_inputs(op, h, w, b, seed)
    if op == "white_balance":  # illuminants (mired, tint) across and beyond the Robertson table's range
        return (torch.rand(b + 4, generator=g, dtype=torch.float64) * 600 - 30,
                torch.rand(b + 4, generator=g, dtype=torch.float64) * 300 - 150)
    if op == "grey_tables":  # a grey plan's per-image tables of the 256 codes
        _, _, plan, _, ws = _chunk_inputs("grey", h, w, b, seed)
        return plan, ws
    if op == "halo":  # the halo gain of a chunk's luminance, in 256**2 units as the colour chunks give it
        _, _, plan, first, ws = _chunk_inputs("colour", h, w, b, seed)
        return torch.rand(b, 1, h, w, generator=g) * (0.4 * 65536.0), plan, first, ws, 65536.0
    if op == "curves":  # tone and halo curves of b images (one without sliders), one with the encoder scale
        from degradations.tone import lightness_knots, sqrt_lightness_knots

        sliders = (torch.rand(2, 2, b, generator=g, dtype=torch.float64) * 200 - 100) * 0.015
        sliders[:, 0, 0] = 0.0
        scale = torch.stack([torch.full((b,), 131070.0, dtype=torch.float64), torch.ones(b, dtype=torch.float64)])
        return (sliders[0], sliders[1], torch.stack([sqrt_lightness_knots(CPU), lightness_knots(CPU)]), scale, ws,
                ("tone", "halo"))
    raise AssertionError(op)


def _values(result) -> torch.Tensor:
    """A kernel's result as one tensor (the ``curves`` kernels return :class:`Curves`, the
    ``grey_tables`` kernels three tables)."""
    if isinstance(result, list):
        return torch.cat([torch.cat([c.base, c.slope]) for c in result])
    if isinstance(result, tuple):
        return torch.cat([t.reshape(-1).double() for t in result])
    return result


def _chunk_inputs(op: str, h: int, w: int, b: int, seed: int) -> tuple:
    from degradations.pipeline import params_to_tensors, wb_matrices
    from degradations.uint8_path import make_plan

    c = 3 if op == "colour" else 1
    preset = load_preset("realistic")
    x = _images(b, c, h, w, seed)
    t = params_to_tensors(_strong_params(preset, b), CPU)
    wb = wb_matrices(t, preset.options, t["exposure_ev"]) if c == 3 else None
    plan = make_plan(t, preset.options, c, x, wb)
    return x, torch.empty(x.shape, dtype=torch.uint8), plan, 0, Workspace(CPU)


def test_every_op_has_a_torch_kernel_and_a_valid_cpu_pick():
    assert set(CPU_CHOICE) == set(OPS) == set(KERNELS)
    for op in OPS:
        assert "torch" in KERNELS[op] and KERNELS[op].get("torch").exact
        assert CPU_CHOICE[op] in KERNELS[op]
    assert set(K.cpu_kernels()) == set(OPS) | {"opencv_version", "numba_version"}
    assert K.cpu_kernels()["numba_version"] == fused.VERSION


@pytest.mark.parametrize("size", [(48, 48), (40, 36), (37, 53), (100, 100), (12, 12)])
@pytest.mark.parametrize("op", OPS)
def test_every_kernel_matches_the_torch_kernel(op, size):
    """Exact kernels give the torch kernel's bits; the others its values to float32 rounding."""
    h, w = size
    want = _values(KERNELS[op].get("torch").fn(*_op_inputs(op, h, w))).clone()
    for entry in KERNELS[op]:
        got = _values(entry.obj.fn(*_op_inputs(op, h, w)))
        assert got.shape == want.shape and got.dtype == want.dtype, (op, entry.name)
        if entry.obj.exact:
            assert torch.equal(got, want), (op, entry.name)
        else:
            torch.testing.assert_close(got, want, rtol=2e-6, atol=2e-7, msg=f"{op}/{entry.name}")


def _strong_params(preset, n: int) -> list[dict]:
    """The preset's draws, with some images pushed past +-50 (halo mask) and some at +2 EV (values
    clamped at white)."""
    params = [preset.sample(3, f"k{i}.png") for i in range(n)]
    for i, p in enumerate(params):
        if i % 3 == 0:
            p["highlights"], p["shadows"] = -95.0, -80.0
        if i % 5 == 1:
            p["exposure_ev"] = 2.0
    return params


def _contract_diff(a: torch.Tensor, b: torch.Tensor) -> tuple[int, float]:
    d = (a.int() - b.int()).abs()
    return int(d.max()), float((d > 0).float().mean())


@pytest.mark.parametrize("preset", ["paper", "realistic"])
@pytest.mark.parametrize("c,h,w", [(3, 64, 64), (3, 50, 38), (1, 48, 48), (1, 37, 41)])
def test_cpu_picks_within_the_contract_of_the_torch_kernels(preset, c, h, w):
    """What the CPU runs vs what the GPU runs (every op on torch): one code value at most, in at
    most 0.1% of the values; each non-torch kernel alone too."""
    p = load_preset(preset)
    x = _images(12, c, h, w, seed=h + c)
    params = _strong_params(p, 12)
    with use_kernels.all("torch"):
        reference = degrade_batch_uint8(x, params, preset=p)
    picked = degrade_batch_uint8(x, params, preset=p)
    worst, fraction = _contract_diff(picked, reference)
    assert worst <= CONTRACT.max_code_diff and fraction <= CONTRACT.max_fraction, (worst, fraction)
    for op in OPS:
        for entry in KERNELS[op]:
            with use_kernels.all("torch"), use_kernels(**{op: entry.name}):
                got = degrade_batch_uint8(x, params, preset=p)
            worst, fraction = _contract_diff(got, reference)
            if entry.obj.exact:
                assert torch.equal(got, reference), (op, entry.name)
            else:
                assert worst <= CONTRACT.max_code_diff and fraction <= CONTRACT.max_fraction, (op, entry.name)


@pytest.mark.parametrize("c", [3, 1])
def test_cpu_picks_give_the_same_bytes_alone_in_any_batch_and_at_any_thread_count(c):
    p = load_preset("paper")
    x = _images(9, c, 44, 52, seed=7)
    params = _strong_params(p, 9)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        whole = degrade_batch_uint8(x, params, preset=p)
        alone = torch.cat([degrade_batch_uint8(x[i:i + 1], params[i:i + 1], preset=p) for i in range(9)])
        torch.set_num_threads(2)
        threaded = degrade_batch_uint8(x, params, preset=p)
        again = degrade_batch_uint8(x, params, preset=p)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(whole, alone) and torch.equal(whole, threaded) and torch.equal(whole, again)


def test_use_kernels_restores_the_choice_and_rejects_unknown_names():
    with use_kernels(blur="torch"):
        assert K.active_choice()["blur"] == "torch"
    assert K.active_choice() == CPU_CHOICE
    with pytest.raises(KeyError):
        use_kernels(blur="nope")
    # other devices always run torch
    assert K.pick("blur", torch.device("meta")) is KERNELS["blur"].get("torch").fn


def test_benchmark_per_op_mode_runs_and_names_the_machine():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_degradations.py"), "--per-op", "--quick",
                          "--sizes", "48"], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout
    assert "machine:" in out and "cores" in out and "opencv" in out and "torch" in out
    for op in ("decode", "levels", "downsample", "blur", "upsample"):
        assert any(line.split()[1:2] == [op] for line in out.splitlines() if line.strip().startswith("48x48g")), op
    assert "other/chosen" in out


def test_cpu_model_is_read_from_proc_cpuinfo():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_degradations
    finally:
        sys.path.pop(0)
    model = bench_degradations.cpu_model()
    assert isinstance(model, str) and model
    if Path("/proc/cpuinfo").is_file() and "model name" in Path("/proc/cpuinfo").read_text():
        assert model in Path("/proc/cpuinfo").read_text()
    assert np.isfinite(len(bench_degradations.machine_line()))


def test_the_fused_kernels_are_the_cpu_pick_exactly_where_numba_is_installed():
    fallback = {"colour": "torch", "grey": "torch", "curves": "torch", "halo": "torch", "grey_tables": "torch",
                "white_balance": "torch", "levels": "opencv"}
    for op, other in fallback.items():
        assert CPU_CHOICE[op] == ("numba" if fused.AVAILABLE else other)
        assert ("numba" in KERNELS[op]) == fused.AVAILABLE
        if fused.AVAILABLE:  # the plan's float tables: float rounding (see degradations/uint8_fused.py)
            assert KERNELS[op].get("numba").exact == (op not in ("grey_tables", "white_balance"))


def _cases() -> list[tuple[str, int, int, int]]:
    """(preset, channels, height, width): both presets, colour and grey, sides not multiples of 4."""
    return [(preset, c, h, w) for preset in ("paper", "realistic") for c, h, w in ((3, 37, 53), (1, 41, 30))]


@pytest.mark.skipif(not fused.AVAILABLE, reason="numba is not installed")
@pytest.mark.parametrize("preset,c,h,w", _cases())
def test_fused_kernels_give_the_torch_kernels_bytes_at_any_batch_size_and_worker_count(preset, c, h, w):
    """Halo images and +2 EV among 64 images; batches of 1, 7 and 64; one and two threads (the
    caller and a worker); a rerun gives the same bytes."""
    p = load_preset(preset)
    x = _images(64, c, h, w, seed=3 * h + c)
    params = _strong_params(p, 64)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with use_kernels(colour="torch", grey="torch", curves="torch", halo="torch", grey_tables="torch",
                         white_balance="torch", levels="opencv"):
            reference = degrade_batch_uint8(x, params, preset=p)
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for batch in (1, 7, 64):
                got = torch.cat([degrade_batch_uint8(x[s:s + batch], params[s:s + batch], preset=p)
                                 for s in range(0, 64, batch)])
                assert torch.equal(got, reference), (threads, batch)
        assert torch.equal(degrade_batch_uint8(x, params, preset=p), reference)
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(not fused.AVAILABLE, reason="numba is not installed")
def test_fused_kernels_are_compiled_without_fused_multiply_adds():
    """No ``fastmath``: a fused multiply-add rounds once where the torch kernels round twice."""
    for fn in (fused.colour_pixels, fused.grey_pixels, fused.colour_luminance, fused.gain_curves,
               fused.table_per_image, fused.halo_lightness, fused.curve_at, fused.grey_tables,
               fused.white_balance):
        assert not fn.targetoptions.get("fastmath"), fn.__name__
        assert fn.targetoptions.get("nogil"), fn.__name__


_WITHOUT_NUMBA = """
import hashlib, sys
sys.modules["numba"] = None  # import numba now raises ImportError
import torch
from degradations import degrade_batch_uint8, load_preset
from degradations.kernels import CPU_CHOICE, cpu_kernels
assert cpu_kernels()["numba_version"] is None, cpu_kernels()
print(*(CPU_CHOICE[op] for op in ("colour", "grey", "curves", "halo", "grey_tables", "white_balance", "levels")))
g = torch.Generator().manual_seed(0)
for c in (3, 1):
    x = (torch.rand(6, c, 30, 26, generator=g) * 255).to(torch.uint8)
    p = load_preset("paper")
    params = [p.sample(0, f"i{i}") for i in range(6)]
    params[0]["highlights"] = -90.0
    print(hashlib.sha256(degrade_batch_uint8(x, params, preset=p).numpy().tobytes()).hexdigest())
"""


def test_without_numba_the_cpu_runs_the_other_kernels_with_the_same_bytes():
    import hashlib

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", _WITHOUT_NUMBA], capture_output=True, text=True, env=env,
                         timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stdout.split()
    assert lines[:7] == ["torch"] * 6 + ["opencv"]
    g = torch.Generator().manual_seed(0)
    for c, digest in zip((3, 1), lines[7:]):
        x = (torch.rand(6, c, 30, 26, generator=g) * 255).to(torch.uint8)
        p = load_preset("paper")
        params = [p.sample(0, f"i{i}") for i in range(6)]
        params[0]["highlights"] = -90.0
        assert hashlib.sha256(degrade_batch_uint8(x, params, preset=p).numpy().tobytes()).hexdigest() == digest


@pytest.mark.skipif(not fused.AVAILABLE, reason="numba is not installed")
@pytest.mark.parametrize("normalisation", ["luminance", "green", "none"])
def test_white_balance_kernel_gives_the_torch_matrices_to_float64_rounding(normalisation):
    """At every Robertson knot (the interpolation's edges), between them and beyond the clamp. Bit for
    bit on an Intel Xeon VM; on an AMD EPYC VM (AVX2) 2 of these 231 matrices differ by 1 ulp, so the
    bound is a few float64 ulps (a wrong formula or order of operations is off by far more)."""
    from degradations.white_balance import ROBERTSON_TABLE

    g = torch.Generator().manual_seed(1)
    knots = torch.from_numpy(ROBERTSON_TABLE[:, 0].copy())
    mired = torch.cat([knots, torch.rand(200, generator=g, dtype=torch.float64) * 600 - 30])
    tint = torch.rand(mired.shape[0], generator=g, dtype=torch.float64) * 300 - 150
    want = KERNELS["white_balance"].get("torch").fn(mired, tint, normalisation=normalisation)
    got = KERNELS["white_balance"].get("numba").fn(mired, tint, normalisation=normalisation)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, want, rtol=1e-14, atol=1e-15)
    assert (got == want).float().mean() > 0.99    # nearly every entry bit for bit
    with pytest.raises(ValueError):
        KERNELS["white_balance"].get("numba").fn(mired, tint, normalisation="nope")
