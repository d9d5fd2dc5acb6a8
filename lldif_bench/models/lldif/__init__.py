"""LLDif (Wang, Zhang, Sankaranarayanan): the paper's method, one module per part (design note §1.2).

Importing this package registers ``--method lldif`` with :data:`lldif_bench.methods.METHODS`.

Parts: ``text`` (frozen text encoders + caption bank), ``laclip`` (F_l, luminance buckets), ``pnet``
(PNET_s1 Eq. 1, PNET_s2 Eq. 15), ``dtnet`` (Eqs. 2–4), ``landmark_trunk`` (heatmaps → 3 scales),
``dlnet`` (Eqs. 5–9), ``fusion`` (Eqs. 10–12 + head), ``diffusion`` (Eqs. 14, 16), ``losses`` (LA-CLIP,
Eqs. 13, 17, 18), ``llformer`` (the classifier), ``model`` (stages, label-free model), ``config``
(presets base/small/tiny, variants V1–V4), ``builder`` (registration), ``configs/*.yaml`` (run configs).

Harness seam: ``build.STAGES`` lists stages ``0, 1, 2a, 2b`` with their paper length and schedule;
the engine calls ``set_stage(name)`` in order and builds each stage's optimiser from
``param_groups(lr)``. Method options (run config ``method_options``): ``config`` (preset),
``variant`` and any nested :class:`LLDifConfig` override, e.g. ``{"diffusion": {"timesteps": 8}}``.
"""

from .builder import build, config_from_options
from .config import PRESETS, VARIANTS, LLDifConfig, resolve_config
from .model import (
    STAGES,
    LabelFreeLLDif,
    LLDif,
    StageSpec,
    label_free_from_state,
    load_label_free,
    save_label_free,
)

__all__ = [
    "PRESETS",
    "STAGES",
    "VARIANTS",
    "LLDif",
    "LLDifConfig",
    "LabelFreeLLDif",
    "StageSpec",
    "build",
    "config_from_options",
    "label_free_from_state",
    "load_label_free",
    "resolve_config",
    "save_label_free",
]
