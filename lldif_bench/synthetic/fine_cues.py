"""Fine expression cues (generator revision 4): thin, low-contrast creases that real faces show with
an expression, drawn at the rendered size (100 px: about one pixel wide, a few grey levels deep).

Each cue is a set of crease segments (``CUE_SEGMENTS``) whose opacity is the cue's intensity in a
:class:`FineCues`. An intensity is the expression's prototype value (``revision4.CUE_PROTOTYPES``),
jittered per image, times the *person's* strength for that cue (how deeply this face creases),
plus a small resting crease every person shows in every class. Strengths and resting creases come
from a generator that never sees the label.

The creases do not move any landmark: they are drawn beside the features, on the skin, with
curves that are projected with the face (``cue_curves`` → ``build_face(extras=...)``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

from lldif_bench.synthetic.expressions import ActionUnits
from lldif_bench.synthetic.face_model import FaceShape, mouth_anchors


@dataclass(frozen=True)
class FineCues:
    """Crease intensities (0 = not shown; 1 = a typical full expression on an average face)."""

    glabella: float = 0.0         # AU4: vertical lines between the brows
    forehead: float = 0.0         # AU1+2: horizontal lines across the forehead
    forehead_centre: float = 0.0  # AU1 (+4): short lines over the brows' inner ends only
    nose_wrinkle: float = 0.0     # AU9: across the nose bridge
    nasolabial: float = 0.0       # AU6/10/12: nose wing to mouth corner
    crows_feet: float = 0.0       # AU6: fans at the outer eye corners
    lip_dimple: float = 0.0       # AU12/14: small arcs beside the lip corners
    chin_dimple: float = 0.0      # AU17: the mentalis crease under the lower lip
    lower_lid: float = 0.0        # AU7: a tension line under each lower lid

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


CUE_NAMES = FineCues.names()

# Drawing: opacity of a crease at intensity 1 (mixed towards ``CREASE_DARKNESS`` × skin, so a full
# crease is about 15% darker than the skin beside it), its width in face units (≈ 1 px at 100 px).
CUE_OPACITY = 0.42
CREASE_DARKNESS = 0.62
CREASE_WIDTH = 0.022
MAX_OPACITY = 0.9

# Sampling: the person's strength per cue, a resting crease per cue (× strength), the per-image
# overall intensity and the per-cue multiplicative jitter.
STRENGTH_RANGE = (0.5, 1.5)
RESTING_SIGMA = 0.1
INTENSITY_RANGE = (0.8, 1.25)
CUE_SPREAD = 0.15


def sample_fine_cues(prototype: dict[str, float], person_rng: np.random.Generator,
                     expression_rng: np.random.Generator) -> FineCues:
    """Cue intensities for one image: ``prototype`` (the label's, via the caller) jittered by
    ``expression_rng``, scaled by the person's strengths drawn from ``person_rng``.

    Both generators make the same draws whatever the prototype, so the label moves nothing else.
    """
    unknown = set(prototype) - set(CUE_NAMES)
    if unknown:
        raise ValueError(f"unknown fine cues {sorted(unknown)}")
    n = len(CUE_NAMES)
    strength = person_rng.uniform(*STRENGTH_RANGE, n)
    resting = np.abs(person_rng.normal(0.0, RESTING_SIGMA, n))
    overall = expression_rng.uniform(*INTENSITY_RANGE)
    jitter = expression_rng.lognormal(0.0, CUE_SPREAD, n)
    values = strength * (np.array([prototype.get(k, 0.0) for k in CUE_NAMES]) * overall * jitter + resting)
    return FineCues(**{k: float(v) for k, v in zip(CUE_NAMES, values)})


def cue_curves(shape: FaceShape, au: ActionUnits) -> dict[str, np.ndarray]:
    """Crease curves (face units) that the face model does not already provide."""
    curves: dict[str, np.ndarray] = {}
    mouth = mouth_anchors(shape, au)
    fan = np.array([-0.5, 0.0, 0.5])  # ray angles (radians) of a crow's foot
    for side, tag in ((-1, "l"), (1, "r")):
        corner_x = side * (shape.eye_x + shape.eye_half_width + 0.035)
        start = np.stack([np.full(3, corner_x), 0.025 * np.sin(fan)], -1)
        end = start + 0.085 * np.stack([side * np.cos(fan), np.sin(fan)], -1)
        curves[f"cue_crows_{tag}"] = np.stack([start, end], 1).reshape(-1, 2)  # (start, end) pairs
        mx, my = side * mouth["half_width"], mouth["corner_y"]
        curves[f"cue_dimple_{tag}"] = np.array([[mx + side * 0.035, my - 0.045], [mx + side * 0.055, my],
                                                [mx + side * 0.035, my + 0.045]])
        u = np.linspace(-0.6, 0.6, 5)
        curves[f"cue_lower_lid_{tag}"] = np.stack(
            [side * shape.eye_x + shape.eye_half_width * u,
             shape.lower_lid + 0.045 + 0.015 * (1 - u ** 2)], -1)
    chin_y = mouth["chin_top_y"] + 0.45 * shape.chin_gap
    x = np.linspace(-0.1, 0.1, 5)
    curves["cue_chin"] = np.stack([x, chin_y - 0.02 * (1 - (x / 0.1) ** 2)], -1)
    return curves


def _pairs(points: np.ndarray) -> list[np.ndarray]:
    return [points[i:i + 2] for i in range(0, len(points) - 1, 2)]


# Which projected curves each cue creases (``cv`` = FaceGeometry.curves plus ``cue_curves``).
CUE_SEGMENTS: dict[str, Callable[[dict[str, np.ndarray]], list[np.ndarray]]] = {
    "glabella": lambda cv: _pairs(cv["glabella"]),
    "forehead": lambda cv: [cv[f"forehead_line_{k}"] for k in range(3)],
    "forehead_centre": lambda cv: [cv[f"forehead_line_{k}"][2:7] for k in range(2)],
    "nose_wrinkle": lambda cv: _pairs(cv["nose_wrinkles"]),
    "nasolabial": lambda cv: [cv["fold_l"], cv["fold_r"]],
    "crows_feet": lambda cv: _pairs(cv["cue_crows_l"]) + _pairs(cv["cue_crows_r"]),
    "lip_dimple": lambda cv: [cv["cue_dimple_l"], cv["cue_dimple_r"]],
    "chin_dimple": lambda cv: [cv["cue_chin"]],
    "lower_lid": lambda cv: [cv["cue_lower_lid_l"], cv["cue_lower_lid_r"]],
}
if tuple(CUE_SEGMENTS) != CUE_NAMES:
    raise RuntimeError("CUE_SEGMENTS must list every FineCues field, in order")


def draw_fine_cues(canvas, cv: dict[str, np.ndarray], cues: FineCues, look) -> None:
    """Blend every cue's creases onto ``canvas`` (render._Canvas) at its intensity."""
    dark = look.toward_skin(look.skin * CREASE_DARKNESS)
    for name, segments_of in CUE_SEGMENTS.items():
        alpha = min(CUE_OPACITY * getattr(cues, name), MAX_OPACITY)
        segments = segments_of(cv)
        canvas.blend(alpha, segments, lambda c, segments=segments: [c.line(s, dark, CREASE_WIDTH) for s in segments])
