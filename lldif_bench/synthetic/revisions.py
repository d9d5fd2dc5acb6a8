"""Generator revisions: what each revision draws for an image, selectable by number.

A revision decides the expression table (action units per class) and whether, and how, fine cues
(``fine_cues``) are drawn. Identity, pose and scene are sampled the same way in every revision, so
image ``index`` of a dataset made with ``seed`` shows the same person in the same scene in revision
3 and 4. A dataset records its revision in ``synthetic.json`` (``generator_revision``); asking for an
older revision reproduces its files byte for byte.

Revisions 1 and 2 are gone (their renders are no longer reproducible); 3 is the default until the
convergence calibration of 4 (``benchmarks/calibrate_synthetic.py --converge``) is done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lldif_bench.emotions import CANONICAL
from lldif_bench.registry import Registry
from lldif_bench.synthetic.expressions import EXPRESSIONS, Expression
from lldif_bench.synthetic.fine_cues import FineCues, sample_fine_cues
from lldif_bench.synthetic.revision4 import CUE_PROTOTYPES, EXPRESSIONS_REV4

CUE_STREAM = 2  # SeedSequence tag of the per-image fine-cue streams (0: image, 1: label shuffle)

CueSampler = Callable[[int, int, int], "FineCues | None"]  # (label, seed, index) -> cues


@dataclass(frozen=True)
class GeneratorRevision:
    number: int
    expressions: Registry[Expression]
    sample_cues: CueSampler


def _no_cues(label: int, seed: int, index: int) -> None:
    return None


def _rev4_cues(label: int, seed: int, index: int) -> FineCues:
    person_rng, expression_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, CUE_STREAM, index]).spawn(2))
    return sample_fine_cues(CUE_PROTOTYPES[CANONICAL[label]], person_rng, expression_rng)


REVISIONS: Registry[GeneratorRevision] = Registry("generator revision")
REVISIONS.add("3", GeneratorRevision(3, EXPRESSIONS, _no_cues),
              "large shapes only (brows, lids, mouth, jaw); features at full contrast, no dim scenes")
REVISIONS.add("4", GeneratorRevision(4, EXPRESSIONS_REV4, _rev4_cues),
              "fine cues: negative expressions share large shapes and differ in few-pixel geometry and "
              "low-contrast creases, with per-person crease strength")
DEFAULT_REVISION = 3
LATEST_REVISION = max(int(n) for n in REVISIONS.names())


def generator_revision(number: int) -> GeneratorRevision:
    """The revision ``number`` (an unknown one is an error that lists the known ones)."""
    return REVISIONS.get(str(number))
