"""Textured backgrounds: each entry draws a float32 RGB (H, W, 3) image in 0..255 from a generator."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from lldif_bench.registry import Registry

Background = Callable[[np.random.Generator, int, int], np.ndarray]
BACKGROUNDS: Registry[Background] = Registry("background")


def _axes(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Broadcastable pixel coordinates: x as (1, W), y as (H, 1), float32."""
    return np.arange(w, dtype=np.float32)[None, :], np.arange(h, dtype=np.float32)[:, None]


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(15, 240, 3).astype(np.float32)


@BACKGROUNDS.register("gradient", help="linear blend of two colours at a random angle")
def gradient(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    a, b = _colour(rng), _colour(rng)
    angle = rng.uniform(0, 2 * np.pi)
    xs, ys = _axes(h, w)
    t = float(np.cos(angle) / w) * xs + float(np.sin(angle) / h) * ys
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    return a + t[..., None] * (b - a)


@BACKGROUNDS.register("blobs", help="smooth low-frequency colour noise (out-of-focus scene)")
def blobs(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    cells = int(rng.integers(3, 8))
    grid = rng.uniform(10, 245, (cells, cells, 3)).astype(np.float32)
    return np.clip(cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC), 0, 255)


@BACKGROUNDS.register("stripes", help="sinusoidal stripes of two colours (fabric, blinds)")
def stripes(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    a, b = _colour(rng), _colour(rng)
    angle, period = rng.uniform(0, np.pi), rng.uniform(0.05, 0.3) * w
    xs, ys = _axes(h, w)
    k = 2 * np.pi / period
    t = 0.5 + 0.5 * np.sin(float(k * np.cos(angle)) * xs + float(k * np.sin(angle)) * ys)
    return a + t[..., None] * (b - a)


@BACKGROUNDS.register("clutter", help="overlapping rectangles and discs (indoor clutter)")
def clutter(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    img = np.empty((h, w, 3), np.float32)
    img[:] = _colour(rng)
    for _ in range(int(rng.integers(4, 12))):
        c = tuple(float(v) for v in _colour(rng))
        x0, y0 = rng.integers(-w // 4, w, 2)
        if rng.random() < 0.5:
            x1, y1 = x0 + rng.integers(w // 8, w // 2), y0 + rng.integers(h // 8, h // 2)
            cv2.rectangle(img, (int(x0), int(y0)), (int(x1), int(y1)), c, -1)
        else:
            cv2.circle(img, (int(x0), int(y0)), int(rng.integers(w // 16, w // 4)), c, -1, cv2.LINE_AA)
    return cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 3.0))


@BACKGROUNDS.register("grain", help="a flat colour with fine grain (plaster, paper)")
def grain(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = _colour(rng)
    noise = rng.standard_normal((h, w, 1), dtype=np.float32) * np.float32(rng.uniform(4, 20))
    noise = cv2.GaussianBlur(noise, (0, 0), rng.uniform(0.5, 1.5))[..., None]
    return np.clip(base + noise, 0, 255)


def render_background(name: str, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return np.ascontiguousarray(BACKGROUNDS.get(name)(rng, h, w), dtype=np.float32)
