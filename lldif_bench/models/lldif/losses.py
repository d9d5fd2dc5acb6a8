"""LLDif losses: LA-CLIP objectives (stage 0, note §2.0), Eq. 13, Eq. 17 (KL on the EPD), Eq. 18."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def soft_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    return -(target * F.log_softmax(logits, dim=-1)).sum(-1).mean()


def multi_positive_itc(image_emb: Tensor, text_emb: Tensor, keys: Tensor, scale: Tensor) -> Tensor:
    """Symmetric InfoNCE where every pair with the same key (label, luminance bucket) is a positive."""
    sim = scale * image_emb.float() @ text_emb.float().t()
    positives = (keys[:, None] == keys[None, :]).float()
    target = positives / positives.sum(1, keepdim=True)
    return 0.5 * (soft_cross_entropy(sim, target) + soft_cross_entropy(sim.t(), target.t()))


def label_alignment(label_emb: Tensor, bank_labels: Tensor, labels: Tensor, scale: Tensor) -> Tensor:
    """CE over similarities to the K label-prompt embeddings + (1 − cosine to the GT prompt)."""
    logits = scale * label_emb.float() @ bank_labels.float().t()
    cosine = (label_emb.float() * bank_labels[labels].float()).sum(-1)
    return F.cross_entropy(logits, labels) + (1 - cosine).mean()


def kl_epd(z: Tensor, z_hat: Tensor, temperature: float = 0.15) -> Tensor:
    """Eq. 17 (DiffIR KDLoss): KL(softmax(Z/τ) ‖ softmax(Ẑ/τ)), teacher detached, batch mean, fp32."""
    p_log = F.log_softmax(z.detach().float() / temperature, dim=-1)
    q_log = F.log_softmax(z_hat.float() / temperature, dim=-1)
    return F.kl_div(q_log, p_log, reduction="batchmean", log_target=True)


def epd_l1(z: Tensor, z_hat: Tensor) -> Tensor:
    """DiffIR's L1 pin of Ẑ to the (detached) teacher Z (A17)."""
    return F.l1_loss(z_hat.float(), z.detach().float())


def total_loss(logits: Tensor, labels: Tensor, z: Tensor, z_hat: Tensor, *, kl_weight: float,
               abs_weight: float, temperature: float) -> tuple[Tensor, dict[str, float]]:
    """Eq. 18: L = L_ce (Eq. 13, batch mean) + λ_kl·L_kl (+ λ_abs·L1); weights 0 skip the term."""
    ce = F.cross_entropy(logits.float(), labels)
    loss, parts = ce, {"ce": float(ce.detach())}
    if kl_weight:
        kl = kl_epd(z, z_hat, temperature)
        loss = loss + kl_weight * kl
        parts["kl"] = float(kl.detach())
    if abs_weight:
        l1 = epd_l1(z, z_hat)
        loss = loss + abs_weight * l1
        parts["l1"] = float(l1.detach())
    return loss, parts
