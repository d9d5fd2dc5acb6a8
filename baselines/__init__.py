"""ResNet-18-based FER baselines of LLDif Tables 1–4, one module per method, sharing one backbone.

Importing this package registers every method with :data:`lldif_bench.methods.METHODS`.
"""

from . import arm, dacl, dan, eac, manet, posterpp, resnet18, rul, scn  # noqa: F401  (registration)
