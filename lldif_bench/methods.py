"""The method registry and the contract every method (baseline or LLDif) meets.

A method is an ``nn.Module`` with three jobs; the training harness knows nothing method-specific:

- ``forward(batch) -> dict``: training/eval outputs (must contain ``"logits"`` ``(B, K)``);
- ``loss(outputs, batch) -> (scalar, {name: float})``: the method's own loss and its logged parts;
- ``predict(images, landmarks=None) -> logits``: inference, never sees a label.

``batch`` is a dict of tensors on the training device:
``image`` float ``(B,3,S,S)`` (ImageNet-normalised), ``label`` long ``(B,)``, ``index`` long ``(B,)``
(position in the training set, for methods that keep per-sample state), ``landmarks`` float
``(B,68,2)`` in pixels of the ``S×S`` input when the dataset has them (else absent),
``epoch`` int (0-based) for schedule-aware losses.

Methods register a builder ``build(num_classes: int, *, num_train: int, pretrained: str | None,
**config) -> Method`` with :data:`METHODS`. ``DEFAULTS`` on the builder (a dict) holds the method's
own paper hyper-parameters (optimizer, lr, epochs, …) that override the suite defaults; ``STAGES``
(optional) lists stage names for multi-stage methods such as LLDif.
"""

from __future__ import annotations

from collections.abc import Callable

from lldif_bench.registry import Registry

METHODS: Registry[Callable] = Registry("method")


def load_all_methods() -> Registry[Callable]:
    """Import every module that registers methods, then return the registry."""
    import importlib

    for module in ("baselines", "lldif_bench.models.lldif"):
        importlib.import_module(module)
    return METHODS
