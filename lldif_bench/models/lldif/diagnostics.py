"""EPD diagnostics: does the prior Z / Ẑ carry label information, and does the LLformer use it?

Functional core (plain tensors in, floats out) plus :func:`collect`, which runs a trained
:class:`~lldif_bench.models.lldif.model.LLDif` over a split once and returns every figure:

======================== =======================================================================
key                      meaning
======================== =======================================================================
``s1_oracle_acc``        LLformer(x, Z) accuracy: Z from the GT label (stage-1 "oracle")
``acc_zhat``             LLformer(x, Ẑ): the label-free model (what ``test_accuracy`` reports)
``acc_zhat_shuffled``    LLformer(x, Ẑ of another image of the batch): per-image prior removed
``zhat_shuffle_drop``    ``acc_zhat - acc_zhat_shuffled``: how much per-image information Ẑ carries
``kl``, ``cos``, ``l1``  KL_τ(Z ‖ Ẑ) (Eq. 17), mean cosine(Z, Ẑ), mean |Z − Ẑ|
``spread_z/zhat``        per-dimension standard deviation across the split, averaged over dimensions
``centroid_acc_z/zhat``  leave-one-out nearest-class-centroid accuracy of Z / Ẑ (label information)
``collapsed``            1.0 when Ẑ's spread < 0.1 · Z's, both measured after a LayerNorm over C (the
                         LLformer sees Z's direction, dtnet.z_norm): Ẑ points the same way for every image
======================== =======================================================================

``acc_z_teacher`` is ``s1_oracle_acc`` (the LLformer fed the teacher's Z) under its stage-1 name.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .losses import kl_epd

COLLAPSE_RATIO = 0.1


def per_dim_spread(z: Tensor) -> float:
    """Mean over dimensions of the standard deviation across samples of (N, C)."""
    return float(z.float().std(0, unbiased=False).mean()) if z.shape[0] > 1 else 0.0


def nearest_centroid_accuracy(z: Tensor, labels: Tensor) -> float:
    """Leave-one-out nearest-class-centroid accuracy (Euclidean) of (N, C) features.

    Each sample is scored against centroids that exclude itself, so a constant or label-free Z
    scores at most the chance level of its class mix, never 100%.
    """
    z, labels = z.float(), labels.long()
    classes = labels.unique()
    if classes.numel() < 2:
        return float("nan")
    onehot = (labels[:, None] == classes[None, :]).float()            # (N, K')
    sums = onehot.t() @ z                                               # (K', C)
    counts = onehot.sum(0)                                              # (K',)
    own = (onehot * counts[None]).sum(1)                                # size of each sample's class
    # distance to every class centroid; the own class's centroid leaves the sample out
    cent = sums[None] / counts[None, :, None]                           # (1, K', C)
    loo = (sums[None] - onehot[:, :, None] * z[:, None]) / (counts[None, :, None] - onehot[:, :, None]).clamp(min=1)
    centroids = torch.where(onehot[:, :, None].bool(), loo, cent)       # (N, K', C)
    dist = (centroids - z[:, None]).pow(2).sum(-1)                      # (N, K')
    dist = torch.where((onehot.bool() & (own[:, None] < 2)), torch.full_like(dist, float("inf")), dist)
    pred = classes[dist.argmin(1)]
    return float((pred == labels).float().mean())


def shuffle_within_batch(z: Tensor) -> Tensor:
    """Every row gets another row's vector (a cyclic shift: no row keeps its own)."""
    return z.roll(1, dims=0) if z.shape[0] > 1 else z


def _direction(z: Tensor) -> Tensor:
    """Z as the EPDMods see it with dtnet.z_norm: LayerNorm over C (no affine), so a scaled-down but
    varied Ẑ is not called collapsed (measured: a 2a Ẑ with a tenth of Z's raw spread gave 69.6% fed
    its own Ẑ against 27.8% fed another image's)."""
    return F.layer_norm(z.float(), z.shape[-1:])


def epd_figures(z: Tensor, z_hat: Tensor, labels: Tensor, temperature: float) -> dict[str, float]:
    """Prior-only figures from the teacher Z and the student Ẑ of a whole split."""
    spread_z, spread_zhat = per_dim_spread(z), per_dim_spread(z_hat)
    return {
        "kl": float(kl_epd(z, z_hat, temperature)),
        "cos": float(F.cosine_similarity(z.float(), z_hat.float(), dim=-1).mean()),
        "l1": float((z.float() - z_hat.float()).abs().mean()),
        "spread_z": spread_z,
        "spread_zhat": spread_zhat,
        "centroid_acc_z": nearest_centroid_accuracy(z, labels),
        "centroid_acc_zhat": nearest_centroid_accuracy(z_hat, labels),
        "collapsed": float(per_dim_spread(_direction(z_hat)) < COLLAPSE_RATIO * per_dim_spread(_direction(z))),
    }


@torch.no_grad()
def collect(model: Any, batches: Iterable[dict], *, with_logits: bool = True) -> dict[str, float]:
    """Run ``model`` (an LLDif past stage 0) over ``batches`` (dicts with image, label, landmarks).

    Ẑ is drawn exactly as ``predict`` draws it (seeded Z_T, eval chain), batch by batch. Returns the
    table of the module docstring; the accuracies are skipped when ``with_logits`` is false.
    """
    was_training = model.training
    model.eval()
    zs, zhats, labels = [], [], []
    correct = {"s1_oracle_acc": 0.0, "acc_zhat": 0.0, "acc_zhat_shuffled": 0.0}
    student, cfg = model.student, model.cfg
    for data in batches:
        images, y, lm = data["image"], data["label"], data.get("landmarks")
        z = model.teacher_epd(images, y).float()
        gen = torch.Generator(device=images.device)
        gen.manual_seed(cfg.diffusion.eval_seed)
        z_hat = student.estimate_epd(images, generator=gen).z_hat.float()
        zs.append(z.cpu())
        zhats.append(z_hat.cpu())
        labels.append(y.cpu())
        if with_logits:
            for key, prior in (("s1_oracle_acc", z), ("acc_zhat", z_hat),
                               ("acc_zhat_shuffled", shuffle_within_batch(z_hat))):
                pred = student.llformer(images, prior, lm).argmax(1)
                correct[key] += float((pred == y).sum())
    model.train(was_training)
    if not zs:
        return {}
    z, z_hat, y = torch.cat(zs), torch.cat(zhats), torch.cat(labels)
    out = epd_figures(z, z_hat, y, cfg.stages.kl_temperature)
    if with_logits:
        n = float(y.numel())
        out.update({k: v / n for k, v in correct.items()})
        out["zhat_shuffle_drop"] = out["acc_zhat"] - out["acc_zhat_shuffled"]
    return out


def summary_line(d: dict[str, float], stage: str | None = None) -> str:
    """One log line that makes a collapse visible at a glance. In stage 1 PNET_s2 has not been
    trained yet (it learns from phase 2a on), so a constant Ẑ there is said to be untrained, not
    flagged as a collapse."""
    if not d:
        return "EPD diagnostics: none"
    parts = [f"spread Ẑ {d['spread_zhat']:.4g} vs Z {d['spread_z']:.4g}",
             f"centroid acc Ẑ {d['centroid_acc_zhat']:.3f} / Z {d['centroid_acc_z']:.3f}",
             f"KL {d['kl']:.4g}, cos {d['cos']:.3f}"]
    if "acc_zhat" in d:
        parts.append(f"LLformer acc fed Z {d['s1_oracle_acc']:.3f} / Ẑ {d['acc_zhat']:.3f} / "
                     f"shuffled Ẑ {d['acc_zhat_shuffled']:.3f}")
    flag = ""
    if d.get("collapsed"):
        flag = ("  (Ẑ constant: PNET_s2 is trained from phase 2a on)" if stage == "1"
                else "  ** Ẑ COLLAPSED (constant prior) **")
    return "EPD diagnostics: " + "; ".join(parts) + flag
