"""Lightroom-style low-light degradations on batched tensors, with presets, XMP import and
reproducible per-image sampling.

Using the API
-------------
Build a low-light copy of uint8 images (what the dataset builder and ``lldif-bench degrade`` do)::

    from degradations import load_preset, degrade_batch_uint8
    preset = load_preset("paper")           # built-in name, or a .yaml/.json/.xmp path
    params = [preset.sample(seed, relpath) for relpath in relpaths]   # flat JSON-able dicts
    out = degrade_batch_uint8(images_u8, params, preset=preset)       # (B,C,H,W) uint8, C in {1,3}
    # write each image with lldif_bench.imageio.encode_image(img, fmt,
    #     jpeg_quality=params[i]["jpeg_quality"] or 95)

``preset.sample(seed, key)`` depends only on ``(seed, key)``, so results do not depend on batch
size, worker count or order; an image's output bytes are the same alone or in any batch.
``preset.to_dict()`` is the full resolved description for a dataset card.

Differentiable float path (training-time augmentation, gradients to the image and parameters)::

    from degradations import degrade, PipelineOptions
    y = degrade(x, {"exposure_ev": ev, "highlights": h, "shadows": s, "d_temp": t, "d_tint": k},
                options=preset.options)    # x: float sRGB (B,C,H,W) in [0,1]; ev etc.: (B,) tensors

Single ops (functional, on linear light): ``adjust_exposure``, ``white_balance_matrix`` +
``apply_matrix``, ``highlights_shadows``, ``poisson_gaussian_noise``, ``kosugi_edit``; module
wrappers in :mod:`degradations.modules`. Design notes: ``shared/design/degradations.md``.
"""

from degradations.exposure import adjust_exposure
from degradations.kosugi import kosugi_edit
from degradations.noise import poisson_gaussian_noise
from degradations.pipeline import (
    FLAVORS,
    PipelineOptions,
    degrade,
    degrade_batch_uint8,
    params_to_tensors,
)
from degradations.presets import BUILTIN_PRESETS, Preset, load_preset
from degradations.tone import highlights_shadows
from degradations.transfer import linear_to_srgb, luminance, srgb_to_linear
from degradations.white_balance import apply_matrix, white_balance_matrix

__all__ = [
    "BUILTIN_PRESETS", "FLAVORS", "PipelineOptions", "Preset", "adjust_exposure", "apply_matrix",
    "degrade", "degrade_batch_uint8", "highlights_shadows", "kosugi_edit", "linear_to_srgb",
    "load_preset", "luminance", "params_to_tensors", "poisson_gaussian_noise", "srgb_to_linear",
    "white_balance_matrix",
]
