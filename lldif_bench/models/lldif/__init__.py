"""LLDif (Wang, Zhang, Sankaranarayanan): the paper's method, one module per part (design note §1.2).

Importing this package registers ``--method lldif`` with :data:`lldif_bench.methods.METHODS`.
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
