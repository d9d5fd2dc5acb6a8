"""The training harness: config, packed batches, the loop, checkpoints, metrics, DDP, leaderboard.

>>> from lldif_bench.training import RunConfig, run_training
>>> run_dir = run_training(RunConfig(method="resnet18", data="data/syn", epochs=2))  # doctest: +SKIP
"""

from lldif_bench.training.config import RunConfig, resolve_config
from lldif_bench.training.engine import run_training

__all__ = ["RunConfig", "resolve_config", "run_training"]
