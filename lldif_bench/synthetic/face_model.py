"""A parametric face: identity shape + action units + head pose → 68 iBUG landmarks and drawing curves.

Geometry lives in *face units*: x to the image right, y down, origin between the eye centres, the
cheek half-width about 1. Every feature is an analytic curve (eyelids, lips, brows, jaw); the 68
landmarks are samples of exactly those curves, and the renderer fills polygons made of denser
samples of the same curves, so each landmark lies on the drawn feature. Points carry a depth (nose
forward, cheeks back) so yaw and pitch move features realistically; an orthographic projection, an
in-plane rotation, a scale and a shift then place the face in the image (output pixel coordinates,
pixel centres at integers).

iBUG-68 order: jaw 0–16 (image-left to image-right via the chin), brows 17–21 and 22–26 (each from
image-left to image-right), nose bridge 27–30 and base 31–35, eyes 36–41 and 42–47 (left corner,
two upper-lid points, right corner, two lower-lid points), outer lips 48–59 (from the left corner,
clockwise), inner lips 60–67.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lldif_bench.synthetic.expressions import ActionUnits

# Landmark index ranges (iBUG-68), for tests and callers.
JAW = range(17)
BROWS = range(17, 27)
NOSE = range(27, 36)
LEFT_EYE = range(36, 42)
RIGHT_EYE = range(42, 48)
OUTER_LIPS = range(48, 60)
INNER_LIPS = range(60, 68)
MOUTH_CORNERS = (48, 54)


@dataclass(frozen=True)
class FaceShape:
    """Identity geometry in face units (sampled once per synthetic person)."""

    jaw_half_width: float
    jaw_top_y: float
    jaw_squareness: float
    chin_gap: float          # chin below the lower lip
    crown_height: float      # top of the skull above the eye line
    eye_x: float
    eye_half_width: float
    upper_lid: float
    lower_lid: float
    eye_tilt: float          # outer-corner raise
    iris_radius: float
    gaze_x: float
    brow_y: float
    brow_arch: float
    brow_thickness: float
    brow_inner_x: float
    brow_outer_x: float
    brow_slope: float        # + raises the inner end
    nose_length: float
    nose_width: float
    philtrum: float
    mouth_half_width: float
    upper_lip: float
    lower_lip: float
    resting_corner: float    # + = corners naturally lower


def sample_face_shape(rng: np.random.Generator) -> FaceShape:
    # Brows and lips are drawn thick enough (about 1-2 px at 48 px) to survive the downscaled
    # training size; their ranges are part of the difficulty calibration (see expressions.py).
    u = rng.uniform
    return FaceShape(
        jaw_half_width=u(0.86, 1.02), jaw_top_y=u(-0.08, 0.06), jaw_squareness=u(2.0, 3.2),
        chin_gap=u(0.22, 0.36), crown_height=u(1.0, 1.2),
        eye_x=u(0.36, 0.43), eye_half_width=u(0.15, 0.185), upper_lid=u(0.055, 0.08),
        lower_lid=u(0.035, 0.05), eye_tilt=u(-0.02, 0.035), iris_radius=u(0.055, 0.068),
        gaze_x=u(-0.25, 0.25),
        brow_y=u(-0.31, -0.22), brow_arch=u(0.02, 0.075), brow_thickness=u(0.06, 0.1),
        brow_inner_x=u(0.09, 0.15), brow_outer_x=u(0.6, 0.72), brow_slope=u(-0.03, 0.03),
        nose_length=u(0.38, 0.5), nose_width=u(0.13, 0.19), philtrum=u(0.15, 0.23),
        mouth_half_width=u(0.28, 0.36), upper_lip=u(0.055, 0.085), lower_lip=u(0.07, 0.1),
        resting_corner=u(-0.02, 0.025),
    )


@dataclass(frozen=True)
class Pose:
    """Head pose and placement: angles in degrees, scale relative to the default face size."""

    yaw: float
    pitch: float
    roll: float
    scale: float
    shift_x: float   # fraction of the image size
    shift_y: float


def sample_pose(rng: np.random.Generator) -> Pose:
    """Head turns as in the wild; roll, scale and shift small, as after RAF-DB's eye/mouth alignment."""
    return Pose(yaw=rng.uniform(-20, 20), pitch=rng.uniform(-10, 10), roll=rng.uniform(-6, 6),
                scale=rng.uniform(0.93, 1.07), shift_x=rng.uniform(-0.025, 0.025),
                shift_y=rng.uniform(-0.025, 0.025))


FRONTAL = Pose(yaw=0.0, pitch=0.0, roll=0.0, scale=1.0, shift_x=0.0, shift_y=0.0)

# Default placement (RAF-DB aligned crops): eye line at 42% of the height, 0.36·size per face unit.
PX_PER_UNIT = 0.36
EYE_LINE = 0.42


@dataclass(frozen=True)
class FaceGeometry:
    """Projected face: 68 landmarks and named drawing curves, in output pixel coordinates."""

    landmarks: np.ndarray            # (68, 2) float32, x y
    curves: dict[str, np.ndarray]    # name -> (n, 2) float
    px_per_unit: float               # pixels per face unit (for line widths)
    mouth_open: bool


def _head_depth(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Depth of the skull surface (forward = +), 0 at the face centre, receding to the sides."""
    r = np.clip(1.0 - (x / 1.2) ** 2, 0.0, 1.0)
    return 0.6 * (np.sqrt(r) - 1.0) - 0.08 * np.clip(y - 0.9, 0.0, None)


def _eye(shape: FaceShape, au: ActionUnits, side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Landmarks (6,2), dense contour, and iris centre of one eye; side -1 = image-left."""
    cx, ew = side * shape.eye_x, shape.eye_half_width
    hu = shape.upper_lid * (1 + 0.9 * au.upper_lid_raise - 0.35 * au.lid_tighten - 0.25 * au.cheek_raise
                            - 0.55 * au.lid_droop)
    hl = shape.lower_lid * (1 + 0.25 * au.upper_lid_raise - 0.55 * au.lid_tighten - 0.7 * au.cheek_raise)
    hu, hl = max(hu, 0.012), max(hl, 0.008)

    def base(u):  # eye axis: the outer corner raised by the tilt
        return -shape.eye_tilt * (1 - side * u) / 2

    def upper(u):
        return np.stack([cx + ew * u, base(u) - hu * (1 - u ** 2) ** 0.55], -1)

    def lower(u):
        return np.stack([cx + ew * u, base(u) + hl * (1 - u ** 2) ** 0.7], -1)

    third = np.array([-1, -1 / 3, 1 / 3, 1.0])
    marks = np.concatenate([upper(third), lower(np.array([1 / 3, -1 / 3]))])
    grid = np.linspace(-1, 1, 13)  # contains ±1/3
    contour = np.concatenate([upper(grid), lower(grid[::-1][1:-1])])
    iris = np.array([cx + shape.gaze_x * ew * 0.6, base(0.0) - 0.25 * shape.upper_lid])
    return marks, contour, iris


def _brow(shape: FaceShape, au: ActionUnits, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Brow centre line: 5 landmarks (image-left to image-right) and a closed polygon."""
    u = np.linspace(0, 1, 9)  # 0 = inner end, 1 = outer end; landmarks at quarters
    arch = shape.brow_arch * (1 - 0.5 * au.brow_lower) * np.sin(np.pi * u ** 1.36)
    y = (shape.brow_y - shape.brow_slope * (1 - u) - arch
         - (0.13 * au.brow_inner_raise * (1 - u) ** 1.3 + 0.02 * au.brow_inner_raise)
         - 0.11 * au.brow_outer_raise * (0.35 + 0.65 * u)
         + 0.07 * au.brow_lower * (1 - 0.5 * u) + 0.03 * au.brow_lower * (1 - u) ** 2)
    inner = shape.brow_inner_x - 0.05 * au.brow_lower * (1 - u) + 0.01 * au.brow_inner_raise
    x = side * (inner + (shape.brow_outer_x - shape.brow_inner_x) * u)
    centre = np.stack([x, y], -1)
    half = 0.5 * shape.brow_thickness * (1.15 - 0.6 * u)
    polygon = np.concatenate([centre - np.stack([np.zeros_like(half), half], -1),
                              (centre + np.stack([np.zeros_like(half), half], -1))[::-1]])
    marks = centre[::2]
    if side < 0:  # image-left brow runs outer → inner
        marks = marks[::-1]
    return marks, polygon


def _mouth(shape: FaceShape, au: ActionUnits) -> dict[str, np.ndarray | float | bool]:
    my = (shape.nose_length + 0.1 + shape.philtrum - 0.02 * au.upper_lip_raise - 0.015 * au.chin_raise)
    mw = shape.mouth_half_width * (1 + 0.22 * au.lip_corner_pull + 0.28 * au.lip_stretch
                                   - 0.15 * au.lip_press - 0.1 * au.jaw_drop + 0.04 * au.lip_corner_depress)
    corner = (shape.resting_corner - 0.18 * au.lip_corner_pull + 0.15 * au.lip_corner_depress
              - 0.02 * au.upper_lip_raise + 0.02 * au.lip_stretch)
    opening = 0.025 * au.lips_part + 0.3 * au.jaw_drop
    lift = 0.045 * max(au.upper_lip_raise - 0.3, 0.0)
    gap_up, gap_down = 0.2 * opening + lift, 0.8 * opening
    is_open = gap_up + gap_down > 0.03  # below: lips touch
    if not is_open:
        gap_up = gap_down = 0.0
    tu = shape.upper_lip * (1 - 0.5 * au.lip_press) * (1 - 0.25 * au.lip_corner_pull)
    tl = shape.lower_lip * (1 - 0.5 * au.lip_press) * (1 + 0.25 * au.chin_raise)

    def mid(u):
        return my + corner * u ** 2 - 0.025 * au.chin_raise * (1 - u ** 2)

    def prof(u):
        return np.clip(1 - np.abs(u) ** (2 + 2 * au.lip_stretch), 0, 1) ** 0.6

    def inner_up(u):
        return mid(u) - gap_up * prof(u)

    def inner_down(u):
        return mid(u) + gap_down * prof(u)

    def outer_up(u):
        bow = 1 - 0.25 * np.exp(-(u / 0.13) ** 2)
        return inner_up(u) - tu * (0.25 + 0.75 * np.sqrt(np.clip(1 - u ** 2, 0, 1))) * bow

    def outer_down(u):
        return inner_down(u) + tl * (0.25 + 0.75 * np.clip(1 - u ** 2, 0, 1) ** 0.6)

    def pts(u, fy):
        u = np.asarray(u, dtype=float)
        return np.stack([mw * u, fy(u)], -1)

    sixth = np.array([-1, -2 / 3, -1 / 3, 0, 1 / 3, 2 / 3, 1.0])
    outer_marks = np.concatenate([pts(sixth, outer_up), pts(sixth[::-1][1:-1], outer_down)])
    inner_marks = np.concatenate([pts([-0.9], mid), pts([-0.45, 0, 0.45], inner_up), pts([0.9], mid),
                                  pts([0.45, 0, -0.45], inner_down)])
    grid = np.linspace(-1, 1, 25)             # contains the sixths
    igrid = np.linspace(-0.9, 0.9, 25)[1:-1]  # contains ±0.45 and 0
    outer = np.concatenate([pts(grid, outer_up), pts(grid[::-1][1:-1], outer_down)])
    inner = np.concatenate([pts([-0.9], mid), pts(igrid, inner_up), pts([0.9], mid),
                            pts(igrid[::-1], inner_down)])
    tgrid = np.linspace(-0.72, 0.72, 15)
    tooth_h = 0.05
    upper_teeth = np.concatenate([pts(tgrid, inner_up),
                                  np.stack([mw * tgrid[::-1], np.minimum(inner_up(tgrid[::-1]) + tooth_h,
                                                                         inner_down(tgrid[::-1]))], -1)])
    lower_teeth = np.concatenate([np.stack([mw * tgrid, np.maximum(inner_down(tgrid) - 0.6 * tooth_h,
                                                                   inner_up(tgrid) + tooth_h)], -1),
                                  pts(tgrid[::-1], inner_down)])
    return {"outer_marks": outer_marks, "inner_marks": inner_marks, "outer": outer, "inner": inner,
                "line": pts(grid, mid), "upper_teeth": upper_teeth, "lower_teeth": lower_teeth,
                "open": bool(is_open),
                "corner_y": float(mid(1.0)), "half_width": float(mw), "gap_down": float(gap_down),
                "rest_bottom": float(outer_down(0.0) - gap_down)}


def mouth_anchors(shape: FaceShape, au: ActionUnits) -> dict[str, float]:
    """Where the mouth puts things around it (face units): its half width, the corner height, and
    the top of the chin (the lower lip's rest bottom plus the jaw drop)."""
    mouth = _mouth(shape, au)
    return {"half_width": mouth["half_width"], "corner_y": mouth["corner_y"],
            "chin_top_y": mouth["rest_bottom"] + mouth["gap_down"]}


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 24, a0: float = 0.0,
             a1: float = 2 * np.pi) -> np.ndarray:
    a = np.linspace(a0, a1, n)
    return np.stack([cx + rx * np.cos(a), cy + ry * np.sin(a)], -1)


def build_face(shape: FaceShape, au: ActionUnits, pose: Pose, size: int, *,
               extras: dict[str, np.ndarray] | None = None) -> FaceGeometry:
    """Landmarks and drawing curves of one face, projected into a ``size``×``size`` image.

    ``extras`` adds caller-defined curves (face units, (n,2)) that are projected with the face,
    e.g. glasses or hair outlines.
    """
    parts: dict[str, np.ndarray] = {}
    depth: dict[str, float | np.ndarray] = {}

    # --- eyes, brows, nose, mouth -------------------------------------------------------------
    eye_l, contour_l, iris_l = _eye(shape, au, -1)
    eye_r, contour_r, iris_r = _eye(shape, au, +1)
    brow_l, brow_poly_l = _brow(shape, au, -1)
    brow_r, brow_poly_r = _brow(shape, au, +1)
    tip = shape.nose_length - 0.015 * au.nose_wrinkle
    nose_bridge = np.stack([np.zeros(4), np.linspace(-0.05, tip, 4)], -1)
    nw = shape.nose_width * (1 + 0.15 * au.nose_wrinkle)
    base_y = tip + 0.06 - 0.035 * au.nose_wrinkle - 0.02 * au.upper_lip_raise
    nose_base = np.array([[-nw, base_y], [-0.5 * nw, base_y + 0.03], [0, base_y + 0.045],
                          [0.5 * nw, base_y + 0.03], [nw, base_y]])
    mouth = _mouth(shape, au)

    # --- jaw: superellipse from the ears round the chin; the jaw drop lowers its lower part ---
    chin_y = mouth["rest_bottom"] + shape.chin_gap  # the jaw drop is added below
    t = np.linspace(0, 1, 17)
    c, s = np.cos(np.pi * t), np.sin(np.pi * t)
    e = 2.0 / shape.jaw_squareness
    jaw_x = -np.sign(c) * np.abs(c) ** e * shape.jaw_half_width * (1 - 0.12 * s ** 4)
    jaw_y = shape.jaw_top_y + (chin_y - shape.jaw_top_y) * np.abs(s) ** e
    jaw_y = jaw_y + mouth["gap_down"] * s ** 3
    jaw = np.stack([jaw_x, jaw_y], -1)

    landmarks = np.concatenate([jaw, brow_l, brow_r, nose_bridge, nose_base, eye_l, eye_r,
                                mouth["outer_marks"], mouth["inner_marks"]])
    lm_depth = np.concatenate([
        _head_depth(jaw[:, 0], jaw[:, 1]),
        np.full(10, 0.06),
        np.array([0.08, 0.16, 0.25, 0.36]),
        np.array([0.13, 0.22, 0.27, 0.22, 0.13]),
        np.full(12, -0.02),
        np.full(20, 0.08),
    ])
    parts["landmarks"], depth["landmarks"] = landmarks, lm_depth

    forehead = _ellipse(0, shape.jaw_top_y, shape.jaw_half_width, shape.jaw_top_y + shape.crown_height,
                        n=25, a0=0.0, a1=-np.pi)[1:-1]
    parts["forehead"] = forehead
    parts["eye_l"], parts["eye_r"] = contour_l, contour_r
    depth["eye_l"] = depth["eye_r"] = -0.02
    parts["iris_l"], parts["iris_r"] = iris_l[None], iris_r[None]
    depth["iris_l"] = depth["iris_r"] = -0.01
    parts["brow_l"], parts["brow_r"] = brow_poly_l, brow_poly_r
    depth["brow_l"] = depth["brow_r"] = 0.06
    for name in ("outer", "inner", "line", "upper_teeth", "lower_teeth"):
        parts["mouth_" + name] = mouth[name]
        depth["mouth_" + name] = 0.08
    # Nostrils and the nose sides
    parts["nostril_l"] = _ellipse(-0.55 * nw, base_y - 0.005, 0.05 * (nw / 0.16), 0.022, n=12)
    parts["nostril_r"] = _ellipse(0.55 * nw, base_y - 0.005, 0.05 * (nw / 0.16), 0.022, n=12)
    depth["nostril_l"] = depth["nostril_r"] = 0.2
    parts["nose_side_l"] = np.array([[-0.07, 0.02], [-0.09, 0.5 * tip], [-0.8 * nw, base_y - 0.05]])
    parts["nose_side_r"] = parts["nose_side_l"] * [-1, 1]
    depth["nose_side_l"] = depth["nose_side_r"] = np.array([0.05, 0.16, 0.12])
    # Folds and wrinkles (their visibility is decided by the renderer from the units)
    cx_m, cy_m = mouth["half_width"], mouth["corner_y"]
    for side, name in ((-1, "fold_l"), (1, "fold_r")):
        parts[name] = np.array([[side * (nw + 0.04), base_y - 0.04],
                                [side * (0.5 * (nw + cx_m) + 0.1), 0.5 * (base_y + cy_m)],
                                [side * (cx_m + 0.07), cy_m + 0.06]])
        depth[name] = np.array([0.12, 0.06, 0.02])
    top = min(brow_l[:, 1].min(), brow_r[:, 1].min())
    for k in range(3):
        parts[f"forehead_line_{k}"] = _ellipse(0, top - 0.11 - 0.08 * k + 0.3, 0.34, 0.3, n=9,
                                               a0=-0.75 * np.pi, a1=-0.25 * np.pi)
    inner_brow_y = 0.5 * (brow_l[-1, 1] + brow_r[0, 1])
    parts["glabella"] = np.array([[-0.045, inner_brow_y - 0.06], [-0.035, inner_brow_y + 0.07],
                                  [0.045, inner_brow_y - 0.06], [0.035, inner_brow_y + 0.07]])
    parts["nose_wrinkles"] = np.array([[-0.08, 0.12], [0.08, 0.12], [-0.09, 0.18], [0.09, 0.18],
                                       [-0.07, 0.06], [0.07, 0.06]])
    depth["nose_wrinkles"] = 0.15
    parts["cheek_l"] = np.array([[-shape.eye_x, 0.3]])
    parts["cheek_r"] = np.array([[shape.eye_x, 0.3]])
    parts["ear_l"] = _ellipse(-shape.jaw_half_width - 0.02, 0.2, 0.1, 0.19)
    parts["ear_r"] = _ellipse(shape.jaw_half_width + 0.02, 0.2, 0.1, 0.19)
    depth["ear_l"] = depth["ear_r"] = -0.45
    parts["neck"] = np.array([[-0.42, 0.7], [0.42, 0.7], [0.5, chin_y + 1.2], [-0.5, chin_y + 1.2]])
    depth["neck"] = -0.3
    parts["shoulders"] = _ellipse(0, chin_y + 1.05, 1.9, 0.55, n=32)
    depth["shoulders"] = -0.3
    parts["eye_centres"] = np.array([[-shape.eye_x, 0.0], [shape.eye_x, 0.0]])
    for name, pts in (extras or {}).items():
        parts[name] = np.asarray(pts, dtype=float)

    names = list(parts)
    counts = [len(parts[n]) for n in names]
    xy = np.concatenate([parts[n] for n in names]).astype(np.float64)
    z = _head_depth(xy[:, 0], xy[:, 1])  # the skull surface, unless a part sets its own depth
    for name, start, count in zip(names, np.cumsum([0, *counts[:-1]]), counts):
        if name in depth:
            z[start:start + count] = depth[name]
    projected, px_per_unit = _project(xy, z, pose, size)
    split = np.split(projected, np.cumsum(counts)[:-1])
    curves = dict(zip(names, split))
    return FaceGeometry(landmarks=curves.pop("landmarks").astype(np.float32), curves=curves,
                        px_per_unit=px_per_unit, mouth_open=bool(mouth["open"]))


def _project(xy: np.ndarray, z: np.ndarray, pose: Pose, size: int) -> tuple[np.ndarray, float]:
    """Yaw/pitch about the head centre, orthographic view, then roll, scale and shift (pixels)."""
    yaw, pitch, roll = np.deg2rad([pose.yaw, pose.pitch, pose.roll])
    pivot = np.array([0.0, 0.35])
    x, y = xy[:, 0] - pivot[0], xy[:, 1] - pivot[1]
    zc = z - 0.6  # rotate about a point inside the head, not on the face surface
    x1 = x * np.cos(yaw) + zc * np.sin(yaw)
    z1 = -x * np.sin(yaw) + zc * np.cos(yaw)
    y1 = y * np.cos(pitch) - z1 * np.sin(pitch)
    x1 = x1 - 0.6 * np.sin(yaw)  # keep the face centre where it was
    y1 = y1 + 0.6 * np.sin(pitch) * np.cos(yaw)
    px_per_unit = PX_PER_UNIT * size * pose.scale
    cr, sr = np.cos(roll), np.sin(roll)
    u = (cr * x1 - sr * y1) * px_per_unit
    v = (sr * x1 + cr * y1) * px_per_unit
    centre = np.array([0.5 * size + pose.shift_x * size,
                       EYE_LINE * size + pivot[1] * PX_PER_UNIT * size + pose.shift_y * size])
    out = np.stack([u, v], -1) + centre - 0.5  # pixel centres at integer coordinates
    return out, float(px_per_unit)
