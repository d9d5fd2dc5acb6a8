"""LLDif as a method: the training-time model with its stages, and the label-free deployed model.

Stages (note §2), each one harness stage with its own checkpoint and optimiser:

====== ==================================== ============================== =========================
stage  trains                               loss                           logits (train / eval)
====== ==================================== ============================== =========================
``0``  LA-CLIP F_l + heads + logit scales   L_itc + L_lab                  zero-shot F_l vs label bank
``1``  PNET_s1 + LLformer                   L_ce (Eq. 13)                  LLformer(x | Z): ORACLE
``2a`` PNET_s2 + denoiser (LLformer frozen) KL_τ(Z, Ẑ) + L1(Ẑ, Z)          train: none (LLformer idle;
                                            [+ CE via frozen LLformer]     with warmup_ce_weight: Ẑ's);
``2b`` PNET_s2 + denoiser + LLformer        L_ce + λ_kl KL + λ_abs L1      eval: label-free chain
====== ==================================== ============================== =========================

Stage 1 must learn to read the label from Z (issue 17). Measured on the demo's low-light data (56 px,
batch 32, Adam 3.5e-4, LA-CLIP at init; the README gives the commands and the curves): with the note's literal
choices — Eq. 2 as a pure product ``W1 Z ∘ LN(F) + W2 Z``, raw MiniLM label/caption embeddings (the 7
label prompts share a cosine of 0.69-0.85), fusion init std 0.01 — Z's class signal shrank (per-dim
spread 0.006 → 0.0017 in 20 steps while |Z| grew) and the LLformer stayed at the majority class.
Three causes, three defaults: ``pnet_s1.center_text`` (subtract the class-mean text embedding, so the
label is most of PNET_s1's text input), ``dtnet.mod = one_plus`` (A19: a block's input is not scaled by
W1 Z ≈ 0.03 at init) with ``dtnet.z_norm`` (LayerNorm of Z before the EPDMods: Z's norm grew 0.05 →
1.4 and the loss spiked back to the majority level at step 50 without it), and for the narrow `cpu`
preset a fusion init std of 0.05; stage-1 gradients clipped at 1 (run config). With all of them the
train oracle accuracy reached 86% after 40 steps and 100% after 140. The printed reading is still
available: ``dtnet.mod=pure, dtnet.z_norm=false, pnet_s1.center_text=false``.

Stage 2 on the same data (README, "LLDif's diffusion prior on the proxy"): the stage-1 LLformer reads
the label from Z alone (A20), so Ẑ is only as informative as PNET_s2 is an image classifier. With
pixels only (the note's default) PNET_s2 never left the majority class here — 14 epochs of plain CE
with or without BatchNorm, while a ResNet-18 in the same loop reached 59% train accuracy in 2 — so
phase 2a's KL + L1 settled at the mean code (spread 0.015 vs Z's 0.50) and the literal V4 phase 2b
kept Ẑ constant. The `cpu` preset therefore takes A22 (``pnet_s2.use_laclip_image``, LRDif's design,
label-free): PNET_s2 also reads the frozen LA-CLIP embeddings f_c^l, f_l^l, and LA-CLIP keeps the
note's ResNet-18 trunk (the 3-conv trunk stayed at the majority class through stage 0; ResNet-18 gave
73% zero-shot after 6 stage-0 epochs). Then Ẑ carries the label per image (after 2a: LLformer fed
its own Ẑ 72.8%, fed another image's 27.8%). ``stages.warmup_ce_weight`` (the `cpu` preset's 1.0)
adds CE through the frozen LLformer to 2a. The default phase-2b loss stays the literal V4;
``V4-pin`` keeps the 2a pin in 2b.

Ground-truth label/caption enter only through PNET_s1 (stage 1, and as the frozen stage-2 teacher).
:class:`LabelFreeLLDif` (PNET_s2, denoiser, diffusion, LLformer) is a submodule (``student``) of the
training model, so the deployed model is exactly the ``student.*`` weights of a stage-2 checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lldif_bench.errors import UserError

from . import diagnostics as epd_diagnostics
from .config import LLDifConfig, config_from_dict
from .diffusion import ChainResult, Denoiser, EPDDiffusion
from .laclip import LAClipImage, LuminanceBuckets, mean_luma
from .llformer import LLformer
from .losses import epd_l1, kl_epd, label_alignment, multi_positive_itc, total_loss
from .pnet import PNetS1, PNetS2

log = logging.getLogger(__name__)
STAGES = ("0", "1", "2a", "2b")
EMA_DECAY = 0.999  # note §5: every stage is evaluated (and handed on) with EMA weights [D] ema_decay 0.999


@dataclass(frozen=True)
class StageSpec:
    """What the harness needs to run one stage: its length and optimiser/schedule recipe."""

    name: str
    epochs: int
    lr: float
    scheduler: str
    scheduler_params: dict
    description: str
    oracle: bool = False   # eval accuracy of this stage uses labels (stage 1): log it, never report it
    ema_decay: float | None = EMA_DECAY


def stage_plan(cfg: LLDifConfig) -> list[StageSpec]:
    """Stage lengths from ``cfg.stages``; Adam 3.5e-4 with ExponentialLR(0.98) restarted per stage;
    phase 2a at 3.5e-4 ×0.1 after ``warmup_lr_drop_at`` of the phase; EMA 0.999 in every stage (note §5)."""
    s = cfg.stages
    exp = {"gamma": 0.98}
    warm_drop = max(1, round(s.warmup_lr_drop_at * s.warmup_epochs))
    return [
        StageSpec("0", s.stage0_epochs, 3.5e-4, "exponential", exp, "LA-CLIP: image-caption + label alignment"),
        StageSpec("1", s.stage1_epochs, 3.5e-4, "exponential", exp,
                  "PNET_s1 + LLformer, CE; accuracy uses GT labels (oracle)", oracle=True),
        StageSpec("2a", s.warmup_epochs, 3.5e-4, "multistep", {"milestones": [warm_drop], "gamma": 0.1},
                  "DM warm-up: PNET_s2 + denoiser fit the teacher EPD (KL + L1)"),
        StageSpec("2b", s.joint_epochs, 3.5e-4, "exponential", exp, "joint: PNET_s2 + denoiser + LLformer"),
    ]


def stage_specs(cfg: LLDifConfig) -> list[dict[str, Any]]:
    """:func:`stage_plan` as mappings of run-config keys, the form the harness's ``STAGES`` takes."""
    return [{"name": s.name, "epochs": s.epochs, "lr": s.lr, "scheduler": s.scheduler,
             "scheduler_params": dict(s.scheduler_params), "ema_decay": s.ema_decay} for s in stage_plan(cfg)]


class LabelFreeLLDif(nn.Module):
    """The deployed model: x → PNET_s2 → c; Z_T ~ N(0, I) (seeded) → T reverse steps → Ẑ → LLformer → logits.

    It holds no LA-CLIP, PNET_s1, text bank or text encoder, and no method takes a label.
    """

    def __init__(self, cfg: LLDifConfig, num_classes: int, text_dim: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_classes = num_classes
        # pnet_s2.use_laclip_image (A22): LA-CLIP's image tower (trained in stage 0, frozen after) lives
        # here, so the deployed model is self-contained; the training model reaches it as ``laclip``.
        self.laclip: LAClipImage | None = None
        extra_dim = 0
        if cfg.pnet_s2.use_laclip_image:
            if text_dim < 1:
                raise ValueError("pnet_s2.use_laclip_image needs the text width d_t (LA-CLIP's embedding size)")
            self.laclip = LAClipImage(text_dim, cfg.laclip.trunk, cfg.laclip.width)
            extra_dim = 2 * text_dim
        self.pnet_s2 = PNetS2(cfg.image_size, cfg.epd_dim, cfg.pnet_s2.n_feats, cfg.pnet_s2.n_res,
                              extra_dim=extra_dim, grid=cfg.pnet_s2.grid)
        self.denoiser = Denoiser(cfg.epd_dim)
        d = cfg.diffusion
        self.diffusion = EPDDiffusion(d.timesteps, d.linear_start, d.linear_end, d.schedule, d.parameterization)
        self.llformer = LLformer(cfg, num_classes)

    @property
    def needs_landmarks(self) -> bool:
        """DLNet consumes 68-point landmarks (the harness checks this before training/predicting)."""
        return self.llformer.use_landmarks

    def check_input(self, images: Tensor) -> None:
        size = self.cfg.image_size
        if images.dim() != 4 or images.shape[1] != 3 or tuple(images.shape[-2:]) != (size, size):
            raise UserError(f"this LLDif model takes (B, 3, {size}, {size}) images, got {tuple(images.shape)}; "
                            f"build it with image_size={images.shape[-1]} (method option) or resize the input")

    def condition(self, images: Tensor, laclip_out: Mapping[str, Tensor] | None = None) -> Tensor:
        """c = PNET_s2(x) (Eq. 15), with the frozen LA-CLIP embeddings appended when the config asks (A22).
        ``laclip_out`` reuses an LA-CLIP forward of the same images (the training step's teacher ran it)."""
        if self.laclip is None:
            return self.pnet_s2(images)
        if laclip_out is None:
            with torch.no_grad():
                laclip_out = self.laclip(images)
        extra = torch.cat([laclip_out["f_c"], laclip_out["f_l"]], dim=-1).detach()
        return self.pnet_s2(images, extra)

    def estimate_epd(self, images: Tensor, *, z_start: Tensor | None = None, insert_noise: bool | None = None,
                     generator: torch.Generator | None = None) -> ChainResult:
        """Ẑ from the images alone. ``z_start`` defaults to N(0, I) drawn from ``generator``."""
        cond = self.condition(images)
        if not self.cfg.stages.use_diffusion:  # V1: Ẑ = PNET_s2(x), no denoiser, no chain
            return ChainResult(cond.float(), [cond.float()])
        if z_start is None:
            z_start = torch.randn(cond.shape, generator=generator, device=cond.device)
        noise = self.cfg.diffusion.insert_noise_eval if insert_noise is None else insert_noise
        return self.diffusion.reverse(self.denoiser, z_start, cond, insert_noise=noise, generator=generator)

    def forward(self, images: Tensor, landmarks: Tensor | None = None, *, n_samples: int | None = None,
                seed: int | None = None) -> Tensor:
        """Logits (B, K), averaged over ``n_samples`` seeded Z_T draws (config default)."""
        self.check_input(images)
        n = n_samples or self.cfg.diffusion.n_samples_eval
        gen = torch.Generator(device=images.device)
        gen.manual_seed(self.cfg.diffusion.eval_seed if seed is None else seed)
        logits = 0
        for _ in range(n):
            z_hat = self.estimate_epd(images, generator=gen).z_hat
            logits = logits + self.llformer(images, z_hat, landmarks)
        return logits / n

    def predict(self, images: Tensor, landmarks: Tensor | None = None) -> Tensor:
        return self.forward(images, landmarks)


class LLDif(nn.Module):
    """The training-time LLDif: LA-CLIP, text bank, PNET_s1 teacher and the label-free student."""

    def __init__(self, cfg: LLDifConfig, num_classes: int, text_bank: Mapping[str, Tensor],
                 text_encoder_name: str = "") -> None:
        super().__init__()
        if num_classes < 2:
            raise UserError(f"num_classes must be at least 2, got {num_classes}")
        self.cfg = cfg
        self.num_classes = num_classes
        self.text_encoder_name = text_encoder_name
        labels, captions = text_bank["labels"], text_bank["captions"]
        if labels.shape[0] != num_classes or captions.shape[0] != num_classes:
            raise ValueError(f"text bank has {labels.shape[0]} classes, the model {num_classes}")
        text_dim = labels.shape[-1]
        self.register_buffer("bank_labels", labels.float().clone())
        self.register_buffer("bank_captions", captions.float().clone())
        self.register_buffer("bank_neutral", text_bank["neutral"].float().clone())
        # class means of the label and caption banks (pnet_s1.center_text); derived, so not saved
        self.register_buffer("bank_label_mean", labels.float().mean(0), persistent=False)
        self.register_buffer("bank_caption_mean", F.normalize(captions.float().mean(2), dim=-1).mean(0),
                             persistent=False)
        if not cfg.pnet_s2.use_laclip_image:  # else the student owns it (see the ``laclip`` property)
            self.laclip = LAClipImage(text_dim, cfg.laclip.trunk, cfg.laclip.width)
        self.luminance = LuminanceBuckets()
        n_tokens = (-(-cfg.image_size // 32)) ** 2 if cfg.laclip.trunk == "resnet18" else 16
        width = 512 if cfg.laclip.trunk == "resnet18" else cfg.laclip.width
        p = cfg.pnet_s1
        self.pnet_s1 = PNetS1(width, n_tokens, text_dim, cfg.epd_dim, p.dim, p.blocks, p.heads, p.layout)
        self.student = LabelFreeLLDif(cfg, num_classes, text_dim)
        self.stage = ""
        self.set_stage("0")

    @property
    def laclip(self) -> LAClipImage:
        """LA-CLIP's image tower: the training model's own, or the student's with pnet_s2.use_laclip_image
        (one module, so its weights are saved once, under ``student.laclip``)."""
        own = self._modules.get("laclip")
        return own if own is not None else self.student.laclip

    @property
    def needs_landmarks(self) -> bool:
        return self.student.needs_landmarks

    # --- stages ---------------------------------------------------------------------------------
    def stage_plan(self) -> list[StageSpec]:
        return stage_plan(self.cfg)

    def stage_specs(self) -> list[dict[str, Any]]:
        """The stage plan as the harness's per-stage override mappings (``name`` + run-config keys)."""
        return stage_specs(self.cfg)

    def trainable_modules(self, stage: str) -> list[nn.Module]:
        st = self.student
        return {
            "0": [self.laclip],
            "1": [self.pnet_s1, st.llformer],
            "2a": [st.pnet_s2, st.denoiser],
            "2b": [st.pnet_s2, st.denoiser, st.llformer],
        }[stage]

    def set_stage(self, stage: str) -> None:
        """Select the stage: sets ``requires_grad`` (frozen parts off) and keeps frozen parts in eval."""
        stage = str(stage)
        if stage not in STAGES:
            raise UserError(f"unknown LLDif stage {stage!r}; stages are {', '.join(STAGES)}")
        self.stage = stage
        self.requires_grad_(False)
        for module in self.trainable_modules(stage):
            module.requires_grad_(True)
        llf = self.student.llformer
        if llf.use_landmarks and llf.landmark_frozen:
            llf.landmark_trunk.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> LLDif:
        super().train(False)
        self.training = mode
        if mode:
            for module in self.trainable_modules(self.stage):
                module.train(True)
            llf = self.student.llformer
            if llf.use_landmarks and llf.landmark_frozen:
                llf.landmark_trunk.train(False)
        return self

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """One optimiser group over the current stage's trainable parameters."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr": lr}]

    # --- text and teacher -------------------------------------------------------------------------
    def luminance_bucket(self, images: Tensor, update: bool) -> Tensor:
        luma = mean_luma(images)
        if update:
            self.luminance.update(luma)
        return self.luminance(luma)

    def caption_embedding(self, labels: Tensor, buckets: Tensor, random_template: bool) -> Tensor:
        caps = self.bank_captions[labels, buckets]  # (B, n_tpl, d_t)
        if random_template:
            idx = torch.randint(caps.shape[1], (caps.shape[0],), device=caps.device)
            return caps[torch.arange(caps.shape[0], device=caps.device), idx]
        return F.normalize(caps.mean(1), dim=-1)

    def teacher_epd(self, images: Tensor, labels: Tensor, *, text_dropout: float = 0.0,
                    laclip_out: Mapping[str, Tensor] | None = None) -> Tensor:
        """Eq. 1: Z = PNET_s1(F_l(x), I_e(x)) from the frozen LA-CLIP and the GT caption/label bank."""
        with torch.no_grad():
            la = self.laclip(images) if laclip_out is None else laclip_out
            buckets = self.luminance_bucket(images, update=self.training and self.luminance.count < 256)
        cap = self.caption_embedding(labels, buckets, random_template=False)
        lab = self.bank_labels[labels]
        if text_dropout > 0:
            drop = torch.rand(labels.shape[0], device=labels.device) < text_dropout
            neutral = self.bank_neutral.expand_as(cap)
            cap = torch.where(drop[:, None], neutral, cap)
            lab = torch.where(drop[:, None], neutral, lab)
        if self.cfg.pnet_s1.center_text:
            cap = F.normalize(cap - self.bank_caption_mean[buckets], dim=-1)
            lab = F.normalize(lab - self.bank_label_mean, dim=-1)
        return self.pnet_s1(la, cap, lab)

    # --- method contract --------------------------------------------------------------------------
    def forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        images, landmarks = batch["image"], batch.get("landmarks")
        self.student.check_input(images)
        return getattr(self, f"_forward_stage{self.stage}")(images, batch.get("label"), landmarks)

    def _need_labels(self, labels: Tensor | None) -> Tensor:
        if labels is None:
            raise UserError(f"LLDif stage {self.stage} needs labels (training/teacher); use predict() for inference")
        return labels

    def _forward_stage0(self, images: Tensor, labels: Tensor | None, landmarks: Tensor | None) -> dict[str, Tensor]:
        la = self.laclip(images)
        scale_c, scale_l = self.laclip.scales()
        out = {"logits": scale_l * la["f_l"] @ self.bank_labels.t(), "f_c": la["f_c"], "f_l": la["f_l"],
               "scale_c": scale_c, "scale_l": scale_l}
        if labels is not None:
            buckets = self.luminance_bucket(images, update=self.training)
            out["text_caption"] = self.caption_embedding(labels, buckets, self.training and self.cfg.laclip.random_template)
            out["keys"] = labels * len(self.bank_captions[0]) + buckets
        return out

    def _forward_stage1(self, images: Tensor, labels: Tensor | None, landmarks: Tensor | None) -> dict[str, Tensor]:
        labels = self._need_labels(labels)
        dropout = self.cfg.pnet_s1.text_dropout if self.training else 0.0
        z = self.teacher_epd(images, labels, text_dropout=dropout)
        return {"logits": self.student.llformer(images, z, landmarks), "z": z}

    def _stage2_chain(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            la = self.laclip(images)
            z = self.teacher_epd(images, labels, laclip_out=la)
        st = self.student
        cond = st.condition(images, la)
        if not self.cfg.stages.use_diffusion:
            return z, cond.float()
        z_start = st.diffusion.training_start(z, self.cfg.diffusion.train_chain_start)
        z_hat = st.diffusion.reverse(st.denoiser, z_start, cond, insert_noise=self.cfg.diffusion.insert_noise_train).z_hat
        return z, z_hat

    def _forward_stage2a(self, images: Tensor, labels: Tensor | None, landmarks: Tensor | None) -> dict[str, Tensor]:
        """Warm-up: the LLformer is frozen and not run in training (no logits; the loss is on Ẑ only)."""
        if not self.training:
            return {"logits": self.student(images, landmarks)}
        z, z_hat = self._stage2_chain(images, self._need_labels(labels))
        if self.cfg.stages.warmup_ce_weight:  # CE through the frozen LLformer (its parameters get no grad)
            return {"z": z, "z_hat": z_hat, "logits": self.student.llformer(images, z_hat, landmarks)}
        return {"z": z, "z_hat": z_hat}

    def _forward_stage2b(self, images: Tensor, labels: Tensor | None, landmarks: Tensor | None) -> dict[str, Tensor]:
        if not self.training:
            return {"logits": self.student(images, landmarks)}
        z, z_hat = self._stage2_chain(images, self._need_labels(labels))
        return {"logits": self.student.llformer(images, z_hat, landmarks), "z": z, "z_hat": z_hat}

    def loss(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, float]]:
        labels = batch["label"]
        s = self.cfg.stages
        if self.stage == "0":
            itc = multi_positive_itc(outputs["f_c"], outputs["text_caption"], outputs["keys"], outputs["scale_c"])
            lab = label_alignment(outputs["f_l"], self.bank_labels, labels, outputs["scale_l"])
            return itc + lab, {"itc": float(itc.detach()), "lab": float(lab.detach())}
        if self.stage == "1":
            ce = F.cross_entropy(outputs["logits"].float(), labels)
            oracle = (outputs["logits"].detach().argmax(1) == labels).float().mean()
            return ce, {"ce": float(ce.detach()), "s1_oracle_acc": float(oracle)}
        z, z_hat = outputs.get("z"), outputs.get("z_hat")
        if z is None:  # eval-mode outputs carry no teacher: plain CE for a validation loss
            ce = F.cross_entropy(outputs["logits"].float(), labels)
            return ce, {"ce": float(ce.detach())}
        if self.stage == "2a":
            kl, l1 = kl_epd(z, z_hat, s.kl_temperature), epd_l1(z, z_hat)
            loss = s.warmup_kl_weight * kl + s.warmup_abs_weight * l1
            parts = {"kl": float(kl.detach()), "l1": float(l1.detach())}
            if s.warmup_ce_weight:
                ce = F.cross_entropy(outputs["logits"].float(), labels)
                loss = loss + s.warmup_ce_weight * ce
                parts["ce"] = float(ce.detach())
            return loss, parts
        return total_loss(outputs["logits"], labels, z, z_hat, kl_weight=s.kl_weight, abs_weight=s.abs_weight,
                          temperature=s.kl_temperature)

    def diagnostics(self, batches: Iterable[Mapping[str, Any]]) -> dict[str, float]:
        """The harness's diagnostics seam: EPD figures (:mod:`.diagnostics`) over the given test batches,
        as ``epd_*`` columns; logged as one line that flags a collapsed Ẑ. Nothing in stage 0 (no Z yet)."""
        if self.stage == "0":
            return {}
        figures = epd_diagnostics.collect(self, batches)
        log.info("stage %s %s", self.stage, epd_diagnostics.summary_line(figures, self.stage))
        return {f"epd_{k}": v for k, v in figures.items()}

    def predict(self, images: Tensor, landmarks: Tensor | None = None) -> Tensor:
        """Label-free logits: stage 0 → zero-shot LA-CLIP; later stages → the deployed student model."""
        if self.stage == "0":
            self.student.check_input(images)
            return self._forward_stage0(images, None, None)["logits"]
        return self.student(images, landmarks)

    # --- export -----------------------------------------------------------------------------------
    def export_label_free(self, path: str | Path) -> Path:
        """Write the deployed model (student weights + config) as one safetensors file."""
        return save_label_free(self.student, path)


def save_label_free(model: LabelFreeLLDif, path: str | Path) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": "lldif-label-free", "num_classes": str(model.num_classes),
            "lldif_config": json.dumps(dataclasses.asdict(model.cfg))}
    save_file(state, str(path), metadata=meta)
    return path


def label_free_from_state(state: Mapping[str, Tensor], cfg: LLDifConfig, num_classes: int) -> LabelFreeLLDif:
    """Build the deployed model from a full LLDif state dict (``student.*`` keys) or a student state dict."""
    student = {k[len("student."):]: v for k, v in state.items() if k.startswith("student.")}
    if not student:
        student = dict(state)
    text_dim = student["laclip.head_c.weight"].shape[0] if "laclip.head_c.weight" in student else 0
    model = LabelFreeLLDif(cfg, num_classes, text_dim)
    missing, unexpected = model.load_state_dict(student, strict=False)
    if missing or unexpected:
        raise UserError(f"checkpoint does not fit the LLDif config: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.eval()


def load_label_free(path: str | Path, cfg: LLDifConfig | None = None, num_classes: int | None = None) -> LabelFreeLLDif:
    """Load the deployed model from :func:`save_label_free` output, or from a stage-2 LLDif checkpoint
    (safetensors state dict) when ``cfg`` and ``num_classes`` are given."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise UserError(f"LLDif checkpoint {str(path)!r} not found")
    with safe_open(str(path), "pt") as handle:
        meta = handle.metadata() or {}
    if cfg is None:
        if "lldif_config" not in meta:
            raise UserError(f"{path} carries no LLDif config; pass the run's config to load it")
        cfg = config_from_dict(json.loads(meta["lldif_config"]))
    if num_classes is None:
        if "num_classes" not in meta:
            raise UserError(f"{path} does not record num_classes; pass it")
        num_classes = int(meta["num_classes"])
    return label_free_from_state(load_file(str(path)), cfg, num_classes)
