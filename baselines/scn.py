"""SCN — Self-Cure Network (Wang et al., CVPR 2020), as its paper and official code define it.

- Importance branch: α_i = sigmoid(Linear 512→1) on the pooled feature; logits = α_i · fc(x)
  (the weighted CE trains on the α-scaled logits, and inference uses them too).
- Rank regularisation: sort α in the batch, top β (70 %) = high group, rest = low group;
  L_RR = max(0, δ1 − (mean_high − mean_low)), δ1 = 0.07 at batch 64 (README), weight 1.
- Relabelling from epoch ``relabel_epoch`` (10): a sample whose max probability exceeds the
  probability of its current label by more than δ2 = 0.2 gets the argmax as its new label, stored
  per training index (so it persists across epochs, like the code writing into the dataset). The
  paper restricts it to the low-importance group (``relabel_scope="low"``, default); the official
  code relabels every sample (``relabel_scope="all"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lldif_bench.methods import METHODS

from .backbone import build_trunk
from .common import BaselineMethod, all_gather_rows, check, parse_options, recipe


@dataclass(frozen=True)
class SCNOptions:
    beta: float = 0.7            # fraction of the batch in the high-importance group
    margin_rr: float = 0.07      # δ1 (0.15 at batch 1024 in the paper)
    margin_relabel: float = 0.2  # δ2
    relabel_epoch: int = 10
    relabel_scope: str = "low"   # "low" (paper) or "all" (official code)
    dropout: float = 0.0


def rank_regularisation(alpha: Tensor, beta: float, margin: float) -> Tensor:
    """max(0, δ1 − (mean of the top-β α − mean of the rest)); 0 for a batch of one."""
    alpha = alpha.flatten()
    n = alpha.numel()
    n_high = min(max(int(n * beta), 1), n - 1) if n > 1 else 0
    if n_high == 0:
        return alpha.sum() * 0
    ranked = alpha.sort(descending=True).values
    return F.relu(margin - (ranked[:n_high].mean() - ranked[n_high:].mean()))


def low_importance_mask(alpha: Tensor, beta: float) -> Tensor:
    """True for the samples outside the top-β importance group of the batch."""
    alpha = alpha.flatten()
    n = alpha.numel()
    n_high = min(max(int(n * beta), 1), n - 1) if n > 1 else n
    mask = torch.ones(n, dtype=torch.bool, device=alpha.device)
    mask[alpha.topk(n_high).indices] = False
    return mask


def relabel_decisions(probs: Tensor, targets: Tensor, margin: float,
                      candidates: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """(mask of samples to relabel, their new labels): P_max − P_label > δ2, among ``candidates``."""
    p_max, predicted = probs.max(dim=1)
    p_label = probs.gather(1, targets.view(-1, 1)).squeeze(1)
    mask = (p_max - p_label) > margin
    if candidates is not None:
        mask &= candidates
    return mask, predicted


class SCN(BaselineMethod):
    """ResNet-18 + importance weighting, rank regularisation and per-sample relabelling."""

    def __init__(self, num_classes: int, num_train: int, pretrained: str | None, opts: SCNOptions) -> None:
        super().__init__(num_classes)
        self.opts = opts
        self.trunk = build_trunk(pretrained)
        self.init_report = self.trunk.init_report
        self.dropout = nn.Dropout(opts.dropout)
        self.fc = nn.Linear(512, num_classes)
        self.alpha = nn.Sequential(nn.Linear(512, 1), nn.Sigmoid())
        # current label of every training sample; -1 = the dataset's own label
        self.register_buffer("relabels", torch.full((num_train,), -1, dtype=torch.long))

    def embed(self, images: Tensor, landmarks: Tensor | None = None) -> dict[str, Tensor]:
        feat = self.dropout(self.trunk(images).pooled)
        alpha = self.alpha(feat)
        return {"features": feat, "alpha": alpha.squeeze(1), "logits": alpha * self.fc(feat)}

    def current_labels(self, batch: Mapping[str, Any]) -> Tensor:
        relabel = self.relabels[batch["index"]]
        return torch.where(relabel >= 0, relabel, batch["label"])

    def loss(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, float]]:
        o = self.opts
        targets = self.current_labels(batch)
        ce = F.cross_entropy(outputs["logits"], targets)
        rr = rank_regularisation(outputs["alpha"], o.beta, o.margin_rr)
        logs = {"ce": float(ce.detach()), "rank_reg": float(rr.detach()),
                "alpha_mean": float(outputs["alpha"].detach().mean())}
        if self.training and int(batch.get("epoch", 0)) >= o.relabel_epoch:
            logs["relabelled"] = float(self._relabel(outputs, batch, targets))
        return ce + rr, logs

    @torch.no_grad()
    def _relabel(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Any], targets: Tensor) -> int:
        alpha = outputs["alpha"].detach()
        candidates = low_importance_mask(alpha, self.opts.beta) if self.opts.relabel_scope == "low" else None
        mask, predicted = relabel_decisions(outputs["logits"].detach().float().softmax(1), targets,
                                            self.opts.margin_relabel, candidates)
        index, new, update = all_gather_rows(batch["index"], predicted, mask.long())
        update = update.bool()
        self.relabels[index[update]] = new[update]
        return int(mask.sum())


@METHODS.register("scn", help="SCN: importance-weighted CE + rank regularisation + relabelling (CVPR'20)")
def build(num_classes: int, *, num_train: int, pretrained: str | None = None, **config) -> SCN:
    opts = parse_options(SCNOptions, config, "scn")
    check(0 < opts.beta < 1, f"scn: beta must be in (0, 1), got {opts.beta}")
    check(opts.relabel_scope in ("low", "all"), f"scn: relabel_scope must be 'low' or 'all', "
                                                f"got {opts.relabel_scope!r}")
    check(num_train > 0, f"scn: num_train must be positive, got {num_train}")
    return SCN(num_classes, num_train, pretrained, opts)


build.DEFAULTS = recipe("adam", 1e-3, 1e-4, 70, 64, "exponential", {"gamma": 0.9},
                        notes="official code defaults: Adam at torch's default lr 1e-3")
