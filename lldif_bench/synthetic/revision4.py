"""Generator revision 4: expressions told apart mainly by fine cues, as disgust / anger / fear /
sadness are in RAF-DB.

Surprise, happiness and neutral keep revision 3's large shapes (open mouth, smile, rest). The four
negative expressions share one pool of large shapes (``NEGATIVE_BASE``: brows down, mouth corners
down, sometimes parted lips), drawn with the same probabilities whatever the class, so brow and
mouth outlines only say "a negative expression". What tells them apart is small:

* geometry of a few pixels at 100 px (``NEGATIVE_SPECIFIC``): eye aperture (anger narrows, fear
  widens, sadness droops the lids), the inner brow ends (fear, sadness), the upper lip (disgust);
* fine, low-contrast creases (``CUE_PROTOTYPES``, drawn by ``fine_cues``): glabellar lines (anger),
  forehead lines (fear), nose wrinkles and nasolabial folds (disgust), central forehead lines and
  the chin crease (sadness); happiness adds crow's feet and lip-corner dimples to its smile.

Both survive a clear photo at the training size and are what darkening, sensor noise, 8-bit
quantisation and JPEG destroy first.
"""

from __future__ import annotations

from lldif_bench.emotions import CANONICAL
from lldif_bench.registry import Registry
from lldif_bench.synthetic.expressions import EXPRESSIONS, Expression, add_expression

NEGATIVE_BASE: tuple[tuple[float, dict[str, float]], ...] = (
    (0.4, {"brow_lower": 0.7, "lip_corner_depress": 0.6, "chin_raise": 0.3}),
    (0.35, {"brow_lower": 0.55, "brow_inner_raise": 0.35, "lip_corner_depress": 0.5, "lips_part": 0.5}),
    (0.25, {"brow_lower": 0.6, "lip_stretch": 0.4, "lip_corner_depress": 0.3, "lips_part": 0.6, "jaw_drop": 0.15}),
)
NEGATIVE_SPECIFIC: dict[str, dict[str, float]] = {
    "fear": {"upper_lid_raise": 0.5, "brow_inner_raise": 0.3},
    "disgust": {"upper_lip_raise": 0.4, "nose_wrinkle": 0.5},
    "sadness": {"lid_droop": 0.5, "brow_inner_raise": 0.3},
    "anger": {"lid_tighten": 0.5, "brow_lower": 0.3},
}
CUE_PROTOTYPES: dict[str, dict[str, float]] = {
    "surprise": {"forehead": 1.0},
    "fear": {"forehead": 0.7, "glabella": 0.5},
    "disgust": {"nose_wrinkle": 1.0, "nasolabial": 1.0},
    "happiness": {"crows_feet": 0.9, "nasolabial": 0.8, "lip_dimple": 0.7},
    "sadness": {"forehead_centre": 1.0, "chin_dimple": 0.9},
    "anger": {"glabella": 1.0, "lower_lid": 0.9},
    "neutral": {},
}

EXPRESSIONS_REV4: Registry[Expression] = Registry("expression (revision 4)")


def _merged(base: dict[str, float], extra: dict[str, float]) -> dict[str, float]:
    return {k: base.get(k, 0.0) + extra.get(k, 0.0) for k in sorted({*base, *extra})}


for _name in CANONICAL:
    if _name in NEGATIVE_SPECIFIC:
        add_expression(EXPRESSIONS_REV4, _name, f"shared negative shapes + {NEGATIVE_SPECIFIC[_name]}",
                       *((w, _merged(base, NEGATIVE_SPECIFIC[_name])) for w, base in NEGATIVE_BASE))
    else:
        add_expression(EXPRESSIONS_REV4, _name, "as revision 3", *EXPRESSIONS.get(_name).variants)
if set(CUE_PROTOTYPES) != set(CANONICAL):
    raise RuntimeError("CUE_PROTOTYPES needs an entry per canonical class")
