"""Rasterise a synthetic face with OpenCV: background, hair, head, shading, features, glasses, camera.

Drawing happens at ``SUPERSAMPLE``× the output size on a float canvas with anti-aliased sub-pixel
polygons, then is area-downsampled; landmarks are in output pixel coordinates (pixel centres at
integers) and are the very points the feature polygons pass through.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from lldif_bench.synthetic.appearance import Look, Scene, sample_look, sample_scene
from lldif_bench.synthetic.backgrounds import BACKGROUNDS, render_background
from lldif_bench.synthetic.expressions import ActionUnits, sample_action_units
from lldif_bench.synthetic.face_model import (
    FaceShape,
    Pose,
    build_face,
    sample_face_shape,
    sample_pose,
)
from lldif_bench.synthetic.fine_cues import FineCues, cue_curves, draw_fine_cues
from lldif_bench.synthetic.revisions import DEFAULT_REVISION, generator_revision

SUPERSAMPLE = 2
IMAGE_STREAM = 0  # SeedSequence tag of per-image streams (other tags: dataset-level draws)
_SHIFT = 4  # OpenCV fixed-point bits for sub-pixel drawing


@dataclass(frozen=True)
class FaceSpec:
    """Everything that determines one picture."""

    shape: FaceShape
    look: Look
    units: ActionUnits
    pose: Pose
    scene: Scene
    cues: FineCues | None = None  # revision 4's fine creases; None: revision 3's unit-driven ones


def sample_face_spec(label: int, seed: int, index: int, revision: int = DEFAULT_REVISION) -> FaceSpec:
    """The picture for image ``index`` of a dataset made with ``seed`` by generator ``revision``.

    Identity, pose and scene come from generators that never see the label; only the action units
    (and, from revision 4, the fine cues) depend on it. So the same (seed, index) shows the same
    person, pose and scene in any class and in any revision.
    """
    rev = generator_revision(revision)
    identity_rng, expression_rng, scene_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, IMAGE_STREAM, index]).spawn(3))
    return FaceSpec(shape=sample_face_shape(identity_rng), look=sample_look(identity_rng),
                    units=sample_action_units(label, expression_rng, rev.expressions), pose=sample_pose(scene_rng),
                    scene=sample_scene(scene_rng, BACKGROUNDS.names()), cues=rev.sample_cues(label, seed, index))


class _Canvas:
    """A float RGB canvas at supersampled resolution that takes output-pixel coordinates.

    ``origin`` (canvas pixels) lets a crop of the canvas be drawn on with the same coordinates.
    """

    def __init__(self, img: np.ndarray, px_per_unit: float, origin=(0.0, 0.0)) -> None:
        self.img = img
        self.px_per_unit = px_per_unit
        self.unit = px_per_unit * SUPERSAMPLE  # canvas pixels per face unit
        self.origin = np.asarray(origin, dtype=np.float64)

    def pts(self, p) -> np.ndarray:
        q = (np.asarray(p, dtype=np.float64) + 0.5) * SUPERSAMPLE - 0.5 - self.origin
        return np.round(q * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)

    def thick(self, width_units: float) -> int:
        return max(1, round(width_units * self.unit))

    def fill(self, p, colour) -> None:
        cv2.fillPoly(self.img, [self.pts(p)], _c(colour), cv2.LINE_AA, _SHIFT)

    def line(self, p, colour, width_units: float, closed: bool = False) -> None:
        cv2.polylines(self.img, [self.pts(p)], closed, _c(colour), self.thick(width_units), cv2.LINE_AA, _SHIFT)

    def disc(self, centre, radius_units: float, colour) -> None:
        c = self.pts(centre).reshape(2)
        cv2.circle(self.img, (int(c[0]), int(c[1])), round(radius_units * self.unit * (1 << _SHIFT)),
                   _c(colour), -1, cv2.LINE_AA, _SHIFT)

    def region(self, points: list, pad_units: float) -> tuple[slice, slice] | None:
        """Canvas slices around ``points`` (output pixels) grown by ``pad_units``; None if off-canvas."""
        q = (np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in points]) + 0.5) \
            * SUPERSAMPLE - 0.5 - self.origin
        pad = pad_units * self.unit + 3
        h, w = self.img.shape[:2]
        x0, y0 = (max(int(v), 0) for v in np.floor(q.min(0) - pad))
        x1, y1 = min(int(np.ceil(q[:, 0].max() + pad)), w), min(int(np.ceil(q[:, 1].max() + pad)), h)
        return None if x1 <= x0 or y1 <= y0 else (slice(y0, y1), slice(x0, x1))

    def crop(self, rows: slice, cols: slice) -> _Canvas:
        """A copy of part of the canvas that is drawn on with the same coordinates."""
        return _Canvas(self.img[rows, cols].copy(), self.px_per_unit,
                       self.origin + [cols.start, rows.start])

    def blend(self, alpha: float, points: list, draw, pad_units: float = 0.1) -> None:
        """Draw with ``draw(sub_canvas)`` on a copy of the region around ``points``, mix it in with
        opacity ``alpha``."""
        alpha = min(float(alpha), 1.0)
        region = self.region(points, pad_units) if alpha > 0.01 else None
        if region is None:
            return
        layer = self.crop(*region)
        draw(layer)
        roi = self.img[region]
        roi += alpha * (layer.img - roi)

    def mask(self, polygons: list[np.ndarray]) -> np.ndarray:
        m = np.zeros(self.img.shape[:2], np.float32)
        cv2.fillPoly(m, [self.pts(p) for p in polygons], 1.0, cv2.LINE_AA, _SHIFT)
        return m


def _c(colour) -> tuple[float, float, float]:
    return tuple(np.asarray(colour, dtype=np.float64).ravel()[:3].tolist())


def _hair_curves(shape: FaceShape, look: Look) -> dict[str, np.ndarray]:
    """Hair outlines in face units: the mass behind the head and the cap over the forehead."""
    w, top = shape.jaw_half_width, shape.jaw_top_y
    ry = shape.crown_height + top
    v = look.hair_volume
    a = np.linspace(0, -np.pi, 21)
    outer = np.stack([(w + v) * np.cos(a), top + (ry + v) * np.sin(a)], -1)  # right → left over the top
    curves: dict[str, np.ndarray] = {}
    if look.hair_style == "long":
        drop = top + look.hair_length
        sides = np.array([[-(w + v + 0.08), drop], [w + v + 0.08, drop]])
        curves["hair_back"] = np.concatenate([outer, sides])
    elif look.hair_style != "bald":
        curves["hair_back"] = np.concatenate([outer, [[-(w + v), top + 0.3], [w + v, top + 0.3]]])
    if look.hair_style in ("short", "long", "fringe", "receding"):
        centre = {"fringe": max(look.hairline, -0.5) + 0.05, "receding": -0.95}.get(look.hair_style,
                                                                                     look.hairline)
        x = np.linspace(-1.03, 1.03, 21)
        y = centre + (max(look.temple, centre) - centre) * np.abs(x) ** 3
        if look.hair_style == "fringe":
            y = y + 0.035 * (np.arange(len(x)) % 2)
        line = np.stack([x * w, y], -1)
        curves["hair_cap"] = np.concatenate([line, outer[1:-1]])
    return curves


def _glasses_curves(shape: FaceShape, look: Look) -> dict[str, np.ndarray]:
    if look.glasses == "none":
        return {}
    rx, ry = look.glasses_size
    a = np.linspace(0, 2 * np.pi, 33)[:-1]
    if look.glasses == "round":
        frame = np.stack([rx * np.cos(a), ry * np.sin(a)], -1)
    else:  # rounded rectangle as a superellipse
        c, s = np.cos(a), np.sin(a)
        frame = np.stack([rx * np.sign(c) * np.abs(c) ** 0.4, ry * np.sign(s) * np.abs(s) ** 0.4], -1)
    ex, w = shape.eye_x, shape.jaw_half_width
    lens_l, lens_r = frame + [-ex, 0.01], frame + [ex, 0.01]
    return {"lens_l": lens_l, "lens_r": lens_r,
            "bridge": np.array([[-ex + rx * 0.95, -0.02], [0.0, -0.05], [ex - rx * 0.95, -0.02]]),
            "temple_l": np.array([[-ex - rx, -0.02], [-w, 0.0]]),
            "temple_r": np.array([[ex + rx, -0.02], [w, 0.0]])}


@dataclass(frozen=True)
class RenderedFace:
    image: np.ndarray       # (size, size, 3) uint8 RGB
    landmarks: np.ndarray   # (68, 2) float32, output pixel coordinates


def render_face(spec: FaceSpec, size: int) -> RenderedFace:
    """Draw ``spec`` into a ``size``×``size`` RGB image; returns it with its 68 landmarks."""
    shape, look, au, scene = spec.shape, spec.look, spec.units, spec.scene
    extras = {**_hair_curves(shape, look), **_glasses_curves(shape, look),
              **(cue_curves(shape, au) if spec.cues is not None else {})}
    geo = build_face(shape, au, spec.pose, size, extras=extras)
    cv = geo.curves
    lm = geo.landmarks
    big = size * SUPERSAMPLE
    canvas = _Canvas(render_background(scene.background, np.random.default_rng(scene.texture_seed), big, big),
                     geo.px_per_unit)
    skin, hair = look.skin, look.hair

    # --- behind the face ----------------------------------------------------------------------
    if "hair_back" in cv:
        canvas.fill(cv["hair_back"], hair * 0.85)
    canvas.fill(cv["neck"], skin * 0.72)
    canvas.fill(cv["shoulders"], look.clothes)
    for ear in ("ear_l", "ear_r"):
        canvas.fill(cv[ear], skin * 0.88)
    face_outline = np.concatenate([lm[0:17], cv["forehead"]])  # jaw left→right, forehead back right→left
    canvas.fill(face_outline, skin)

    # --- folds and wrinkles ---------------------------------------------------------------------
    if spec.cues is None:
        _draw_unit_creases(canvas, cv, au, look)
    else:
        _draw_cheek_bulge(canvas, cv, au, look)
        draw_fine_cues(canvas, cv, spec.cues, look)

    # --- eyes --------------------------------------------------------------------------------
    for eye, iris in (("eye_l", "iris_l"), ("eye_r", "iris_r")):
        _draw_eye(canvas, cv[eye], cv[iris][0], look, shape.iris_radius)
    # --- brows ------------------------------------------------------------------------------
    for brow in ("brow_l", "brow_r"):
        canvas.fill(cv[brow], look.toward_skin(look.brow))
    # --- nose -------------------------------------------------------------------------------
    side_key = "nose_side_l" if np.cos(scene.light_angle) > 0 else "nose_side_r"
    canvas.blend(0.35, [cv[side_key]], lambda c: c.line(cv[side_key], skin * 0.6, 0.02))
    canvas.blend(0.45, [lm[31:36]], lambda c: c.line(lm[31:36], skin * 0.55, 0.018))
    for nostril in ("nostril_l", "nostril_r"):
        canvas.fill(cv[nostril], skin * 0.35)
    # --- mouth ------------------------------------------------------------------------------
    canvas.fill(cv["mouth_outer"], look.toward_skin(look.lip))
    if geo.mouth_open:
        canvas.fill(cv["mouth_inner"], np.array([70, 25, 30]) * (0.5 + 0.5 * skin / 255))
        canvas.fill(cv["mouth_upper_teeth"], (230, 225, 210))
        if au.jaw_drop > 0.45:
            canvas.fill(cv["mouth_lower_teeth"], (215, 210, 195))
    else:
        canvas.line(cv["mouth_line"], look.toward_skin(look.lip * 0.45), 0.014)
    _draw_facial_hair(canvas, look, lm, cv)
    _shade_face(canvas, face_outline, float(lm[27:31, 0].mean() + 0.5) * SUPERSAMPLE, scene)
    # --- hair over the forehead, glasses ---------------------------------------------------
    if "hair_cap" in cv:
        canvas.fill(cv["hair_cap"], hair)
    if "lens_l" in cv:
        for lens in ("lens_l", "lens_r"):
            canvas.blend(look.lens_alpha, [cv[lens]], lambda c, lens=lens: c.fill(cv[lens], look.lens_colour))
            canvas.line(cv[lens], look.glasses_colour, look.glasses_width, closed=True)
        for part in ("bridge", "temple_l", "temple_r"):
            canvas.line(cv[part], look.glasses_colour, look.glasses_width)

    image = _camera(canvas.img, scene, size)
    return RenderedFace(image=image, landmarks=lm)


def _draw_unit_creases(canvas: _Canvas, cv: dict[str, np.ndarray], au: ActionUnits, look: Look) -> None:
    """Revision 3's folds, cheek bulge and wrinkles: geometry-driven, opacity from the action units.
    Expression-bearing features are drawn at the person's feature contrast (Look.toward_skin)."""
    skin = look.skin
    dark = look.toward_skin(skin * 0.62)
    fold_alpha = 0.12 + 0.55 * max(au.cheek_raise, au.lip_corner_pull, au.upper_lip_raise, au.nose_wrinkle)
    folds = [cv["fold_l"], cv["fold_r"]]
    canvas.blend(fold_alpha, folds, lambda c: [c.line(f, dark, 0.018) for f in folds])
    _draw_cheek_bulge(canvas, cv, au, look)
    raise_ = 0.5 * (au.brow_inner_raise + au.brow_outer_raise)
    lines = [cv[f"forehead_line_{k}"] for k in range(3)]
    canvas.blend(0.9 * (raise_ - 0.25), lines, lambda c: [c.line(f, dark, 0.014) for f in lines])
    g = cv["glabella"]
    canvas.blend(1.0 * (au.brow_lower - 0.25), [g], lambda c: [c.line(g[i:i + 2], dark, 0.016) for i in (0, 2)])
    nwr = cv["nose_wrinkles"]
    canvas.blend(0.9 * au.nose_wrinkle, [nwr], lambda c: [c.line(nwr[i:i + 2], dark, 0.014) for i in (0, 2, 4)])


def _draw_cheek_bulge(canvas: _Canvas, cv: dict[str, np.ndarray], au: ActionUnits, look: Look) -> None:
    cheeks = [cv["cheek_l"][0], cv["cheek_r"][0]]
    canvas.blend(0.5 * au.cheek_raise, cheeks,
                 lambda c: [c.disc(k, 0.13, look.toward_skin(look.skin * 1.12)) for k in cheeks], 0.15)


def _shade_face(canvas: _Canvas, face_outline: np.ndarray, centre_x: float, scene: Scene) -> None:
    """Rounded-face shading (darker towards the outline) and a side light, over the face and its
    features alike, so a feature keeps its contrast to the skin around it."""
    big = canvas.img.shape[0]
    mask = canvas.mask([face_outline])
    small = cv2.resize(mask, (big // 4, big // 4), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 0.14 * canvas.unit / 4)
    soft = cv2.resize(small, (big, big), interpolation=cv2.INTER_LINEAR)
    region = canvas.region([face_outline], 0.0)  # outside the face the factor is exactly 1
    if region is None:
        return
    rows, cols = region
    xs = (np.arange(cols.start, cols.stop, dtype=np.float32) - centre_x) / canvas.unit
    side = 1 + 0.5 * scene.light_strength * np.cos(scene.light_angle) * np.clip(xs, -1, 1)
    shade = (1 - scene.face_contrast) + scene.face_contrast * np.clip(soft[rows, cols] * 1.6, 0, 1)
    shade = shade * side[None, :]
    canvas.img[rows, cols] *= (1 + mask[rows, cols] * (shade - 1))[..., None]


def _draw_eye(canvas: _Canvas, contour: np.ndarray, iris_centre: np.ndarray, look: Look,
              iris_radius: float) -> None:
    """Sclera, iris and pupil clipped to the lid contour, then the lash line."""
    region = canvas.region([contour, iris_centre], iris_radius)
    if region is None:
        return
    layer = canvas.crop(*region)
    layer.fill(contour, look.sclera)
    layer.disc(iris_centre, iris_radius, look.iris)
    layer.disc(iris_centre, 0.45 * iris_radius, (15, 12, 12))
    layer.disc(iris_centre - 0.3 * iris_radius * canvas.px_per_unit, 0.2 * iris_radius, (240, 240, 240))
    m = np.zeros(layer.img.shape[:2], np.float32)
    cv2.fillPoly(m, [layer.pts(contour)], 1.0, cv2.LINE_AA, _SHIFT)
    roi = canvas.img[region]
    roi += m[..., None] * (layer.img - roi)
    n = len(contour)
    canvas.line(contour[: n // 2 + 1], look.toward_skin(look.brow * 0.5), 0.022)  # lash line along the upper lid
    lower = np.concatenate([contour[n // 2:], contour[:1]])
    canvas.blend(0.35, [lower], lambda c: c.line(lower, look.toward_skin(look.skin * 0.55), 0.01))


def _draw_facial_hair(canvas: _Canvas, look: Look, lm: np.ndarray, cv: dict[str, np.ndarray]) -> None:
    if look.facial_hair == "none":
        return
    colour = look.hair * 0.9
    if look.facial_hair == "moustache":
        gap = lm[51] - lm[33]  # nose base to the top of the upper lip
        top = lm[31:36] + 0.15 * gap
        bottom = lm[48:55][::-1] - 0.05 * gap
        moustache = np.concatenate([top, bottom])
        canvas.blend(0.85, [moustache], lambda c: c.fill(moustache, colour))
        return
    # Jaw 2..14, then the lower lip from the right corner back to the left one (just below it).
    below_lip = lm[[54, 55, 56, 57, 58, 59, 48]] + [0, 0.03 * canvas.unit / SUPERSAMPLE]
    region = np.concatenate([lm[2:15], below_lip])
    alpha = 0.22 if look.facial_hair == "stubble" else 0.85
    canvas.blend(alpha, [region], lambda c: c.fill(region, colour))


def _camera(img: np.ndarray, scene: Scene, size: int) -> np.ndarray:
    """Area downsampling, directional light, white balance, lens blur and sensor noise."""
    out = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
    light = scene.ambient * (1 + scene.light_strength * (np.float32(np.cos(scene.light_angle)) * coords[None, :]
                                                          + np.float32(np.sin(scene.light_angle)) * coords[:, None]))
    out *= np.clip(light, 0.3, 1.6)[..., None]
    out *= scene.colour_cast
    if scene.blur_sigma > 0.05:
        out = cv2.GaussianBlur(out, (0, 0), scene.blur_sigma)
    rng = np.random.default_rng(scene.texture_seed + 1)
    out += rng.standard_normal(out.shape, dtype=np.float32) * np.float32(scene.noise_sigma)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
