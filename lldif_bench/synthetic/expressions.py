"""The 7 basic expressions as facial action-unit (FACS) settings, with per-image intensity jitter.

An expression is a registry entry with one or more *variants* (e.g. a closed- and an open-mouth
smile); each variant sets some action units to a prototype intensity in [0, 1]. Sampling picks a
variant, scales it by a per-image overall intensity, jitters every unit multiplicatively, and adds a
small "resting face" activation to *every* unit in every class.

The intensity range is the dataset's difficulty knob: expressions are posed at or above their
prototype strength (1.0-1.6×), because at 48 px (the demo's input size) a weak unit moves a brow or a
mouth corner by under a pixel (calibration: benchmarks/calibrate_synthetic.py and the README).
How much of that survives the low-light copy is set by the degradation, not here: the demo's
`realistic` preset adds sensor noise and JPEG to the paper's Lightroom adjustments
(``lldif_bench.demo.DEMO_PRESET``); the person's feature contrast (``appearance.FEATURE_CONTRAST_RANGE``) and
dim scenes (``appearance.DIM_SCENE_FRACTION``) can make the clear set itself harder.

The label only ever reaches the face through these units, i.e. through geometry (brow, lid, mouth,
jaw and nose shapes) — and, from generator revision 4, through the intensities of fine creases
(``fine_cues``, ``revision4``, which also brings its own expression table); identity, colours,
lighting and background are sampled independently.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from lldif_bench.emotions import CANONICAL
from lldif_bench.registry import Registry


@dataclass(frozen=True)
class ActionUnits:
    """Intensities (0 = off, 1 = strong) of the action units the face model implements."""

    brow_inner_raise: float = 0.0    # AU1
    brow_outer_raise: float = 0.0    # AU2
    brow_lower: float = 0.0          # AU4: brows down and drawn together
    upper_lid_raise: float = 0.0     # AU5: eyes wide open
    cheek_raise: float = 0.0         # AU6: lower lid pushed up, cheek bulge
    lid_tighten: float = 0.0         # AU7: narrowed eyes
    nose_wrinkle: float = 0.0        # AU9
    upper_lip_raise: float = 0.0     # AU10
    lip_corner_pull: float = 0.0     # AU12: smile, corners up and out
    lip_corner_depress: float = 0.0  # AU15: corners down
    chin_raise: float = 0.0          # AU17: lower lip pushed up
    lip_stretch: float = 0.0         # AU20: corners pulled sideways
    lip_press: float = 0.0           # AU23/24: thin, narrow lips
    lips_part: float = 0.0           # AU25
    jaw_drop: float = 0.0            # AU26/27
    lid_droop: float = 0.0           # AU41/43: heavy upper lids

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


UNIT_NAMES = ActionUnits.names()


@dataclass(frozen=True)
class Expression:
    """Prototype action-unit settings; ``variants`` are (weight, {unit: intensity}) pairs."""

    variants: tuple[tuple[float, dict[str, float]], ...]


EXPRESSIONS: Registry[Expression] = Registry("expression")


def add_expression(table: Registry[Expression], name: str, help: str,
                   *variants: tuple[float, dict[str, float]]) -> None:
    """Register expression ``name`` in ``table`` (an expression registry of one generator revision)."""
    for _, units in variants:
        unknown = set(units) - set(UNIT_NAMES)
        if unknown:
            raise ValueError(f"expression {name!r} uses unknown action units {sorted(unknown)}")
    table.add(name, Expression(tuple(variants)), help)


def _add(name: str, help: str, *variants: tuple[float, dict[str, float]]) -> None:
    add_expression(EXPRESSIONS, name, help, *variants)


_add("surprise", "AU1+2 brows up, AU5 wide eyes, AU25+26 dropped jaw",
     (0.7, {"brow_inner_raise": 1.0, "brow_outer_raise": 1.0, "upper_lid_raise": 0.9, "lips_part": 0.8, "jaw_drop": 0.9}),
     (0.3, {"brow_inner_raise": 0.9, "brow_outer_raise": 0.9, "upper_lid_raise": 0.8, "lips_part": 0.7, "jaw_drop": 0.4}))
_add("fear", "AU1+2+4 raised but drawn brows, AU5+7 wide tense eyes, AU20 stretched lips, AU25+26",
     (0.7, {"brow_inner_raise": 1.0, "brow_outer_raise": 0.5, "brow_lower": 0.6, "upper_lid_raise": 0.9,
                "lid_tighten": 0.3, "lip_stretch": 0.9, "lips_part": 0.8, "jaw_drop": 0.35}),
     (0.3, {"brow_inner_raise": 0.9, "brow_outer_raise": 0.4, "brow_lower": 0.6, "upper_lid_raise": 0.8,
                "lip_stretch": 0.8, "lip_corner_depress": 0.3, "lips_part": 0.4}))
_add("disgust", "AU9 nose wrinkle, AU10 upper lip raise, AU4 brow lower, AU15+17",
     (0.6, {"nose_wrinkle": 1.0, "upper_lip_raise": 0.9, "brow_lower": 0.5, "cheek_raise": 0.3, "lid_tighten": 0.4,
                "lip_corner_depress": 0.4, "chin_raise": 0.5}),
     (0.4, {"nose_wrinkle": 0.9, "upper_lip_raise": 1.0, "brow_lower": 0.4, "lid_tighten": 0.4, "lips_part": 0.5,
                "lip_corner_depress": 0.3}))
_add("happiness", "AU6 cheek raise, AU12 lip-corner pull (closed or open smile)",
     (0.45, {"cheek_raise": 0.8, "lip_corner_pull": 1.0}),
     (0.55, {"cheek_raise": 0.9, "lip_corner_pull": 1.0, "lips_part": 0.9, "jaw_drop": 0.25}))
_add("sadness", "AU1 inner brow raise, AU4, AU15 lip-corner depress, AU17, heavy lids",
     (0.7, {"brow_inner_raise": 0.9, "brow_lower": 0.5, "lip_corner_depress": 0.9, "chin_raise": 0.6, "lid_droop": 0.6}),
     (0.3, {"brow_inner_raise": 0.8, "brow_lower": 0.4, "lip_corner_depress": 0.8, "lid_droop": 0.5, "lips_part": 0.4}))
_add("anger", "AU4 lowered brows, AU5+7 glare, AU23/24 pressed lips (or a bared-teeth snarl)",
     (0.65, {"brow_lower": 1.0, "upper_lid_raise": 0.4, "lid_tighten": 0.8, "lip_press": 0.9, "chin_raise": 0.4}),
     (0.35, {"brow_lower": 1.0, "upper_lid_raise": 0.5, "lid_tighten": 0.7, "upper_lip_raise": 0.6, "lips_part": 0.8,
                 "jaw_drop": 0.3, "lip_stretch": 0.3}))
_add("neutral", "no action units beyond the resting-face jitter", (1.0, {}))

if EXPRESSIONS.names() != list(CANONICAL):
    raise RuntimeError("expression registry must follow lldif_bench.emotions.CANONICAL order")

# Jitter: overall intensity per image (the difficulty knob, see the module docstring), per-unit
# multiplicative spread, resting activation of every unit.
INTENSITY_RANGE = (1.0, 1.6)
UNIT_SPREAD = 0.12     # sigma of the log-normal per-unit factor
RESTING_SIGMA = 0.04   # |N(0, sigma)| added to every unit, any class
UNIT_MAX = 2.0         # a unit's intensity is clipped to [0, UNIT_MAX]


def sample_action_units(label: int, rng: np.random.Generator,
                        table: Registry[Expression] = EXPRESSIONS) -> ActionUnits:
    """Action units for canonical class ``label`` (0 surprise … 6 neutral), jittered per image.

    ``table`` is the expression registry (revision 3's ``EXPRESSIONS`` unless a revision brings its
    own); every table makes the same draws from ``rng``.
    """
    if not 0 <= label < len(CANONICAL):
        raise ValueError(f"label must be a canonical index 0..{len(CANONICAL) - 1}, got {label}")
    expression = table.get(CANONICAL[label])
    weights = np.array([w for w, _ in expression.variants], dtype=float)
    variant = expression.variants[int(rng.choice(len(weights), p=weights / weights.sum()))][1]
    intensity = rng.uniform(*INTENSITY_RANGE)
    factors = rng.lognormal(0.0, UNIT_SPREAD, size=len(UNIT_NAMES))
    resting = np.abs(rng.normal(0.0, RESTING_SIGMA, size=len(UNIT_NAMES)))
    values = {
        name: float(np.clip(variant.get(name, 0.0) * intensity * f + r, 0.0, UNIT_MAX))
        for name, f, r in zip(UNIT_NAMES, factors, resting)
    }
    return ActionUnits(**values)
