"""LLDif configuration: one dataclass tree, named presets (base/small/tiny) and Table 5 variants.

Presets follow ``shared/design/lldif-model.md`` §0 and §7; variants follow §3. Overrides are plain
nested dicts (e.g. from YAML or the CLI) applied with :func:`resolve_config`, which rejects unknown
keys with a message listing the valid ones.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from lldif_bench.errors import UserError


@dataclass
class TextConfig:
    kind: str = "minilm"          # minilm | openclip | hash (see text.py)
    dim: int = 384                # d_t; only used by "hash" (the others report their own width)
    model: str = "ViT-B-32"       # open_clip architecture name
    pretrained: str | None = None  # open_clip weights file or tag


@dataclass
class LAClipConfig:
    trunk: str = "resnet18"       # resnet18 | small_cnn
    width: int = 512              # trunk output channels (512 for resnet18)
    random_template: bool = True  # stage 0: one random caption template per sample


@dataclass
class PNetS1Config:
    dim: int = 256                # d_p
    blocks: int = 2
    heads: int = 4
    layout: str = "text_queries"  # text_queries (Q = text + learned, KV = image) | image_queries (A4 switch)
    text_dropout: float = 0.0     # stage-1 probability of swapping GT text for the neutral caption (A20)
    # subtract the K classes' mean embedding from the GT caption/label embeddings (then renormalise)
    # before PNET_s1: MiniLM's label prompts share a cosine of 0.69-0.85, so most of the text input is
    # the same for every class (measured: Z's per-dim spread at init 0.006 vs |Z| 0.047).
    center_text: bool = True


@dataclass
class PNetS2Config:
    n_feats: int = 64
    n_res: int = 5
    grid: int = 28                # PixelUnshuffle to this side (note §1.9: r = S/28); `cpu`: 14
    # A22 (LRDif's design, label-free so legal at inference): concatenate the frozen LA-CLIP image
    # embeddings f_c^l, f_l^l to PNET_s2's pooled vector. The deployed model then carries LA-CLIP's
    # image tower. Issue 17: a pixel-only PNET_s2 never left the majority class on the demo's data.
    use_laclip_image: bool = False


@dataclass
class DTNetConfig:
    widths: tuple[int, int, int] = (48, 96, 192)
    heads: tuple[int, int, int] = (1, 2, 4)
    enc_blocks: tuple[int, int, int] = (2, 3, 4)
    dec_blocks: tuple[int, int] = (3, 2)
    ffn_factor: float = 2.66
    # one_plus (A19, default since issue 17): (1 + W1 Z) ∘ LN(F) + W2 Z. pure (Eq. 2 as printed, DiffIR):
    # W1 Z ∘ LN(F) + W2 Z scales every block's input by W1 Z ≈ 0.03 at init, and stage 1 sat at the
    # majority class (see the README's stage-1 measurements).
    mod: str = "one_plus"
    # PixelUnshuffle factor of the stem; 0 = image_size / 56 (the note: level 1 at 56², grids 28/14/7
    # at 112 and 224 alike). The DTNet's level-1 side g = image_size / stem_stride sets every later
    # grid: F1..F3 at g/2, g/4, ceil(g/8), landmark heatmaps at g. `cpu` uses 2 at 56 px (g = 28).
    stem_stride: int = 0
    # LayerNorm (no affine) of Z/Ẑ before the EPDMods: the modulation sees Z's direction, not its scale
    # (PNET_s1's LeakyReLU output is unbounded; its norm grew 0.05 -> 1.4 in 50 stage-1 steps).
    z_norm: bool = True


@dataclass
class DLNetConfig:
    dims: tuple[int, int, int] = (64, 128, 256)
    heads: tuple[int, int, int] = (2, 4, 8)
    windows: tuple[int, int, int] = (28, 14, 7)   # 0 = the whole map of that scale (one window)
    mlp_ratio: float = 4.0
    layer_scale: float = 1e-5
    drop_path: tuple[float, float, float] = (0.0, 0.125, 0.25)
    enabled: bool = True          # False: no landmark branch (x_i = F_i), the "DLNet off" ablation


@dataclass
class LandmarkConfig:
    heatmap_size: int = 0         # heatmap side; 0 = the DTNet level-1 side (56: the trunk gives 28/14/7)
    sigma: float = 1.5            # Gaussian sigma in heatmap pixels
    weights: str | None = None    # pretrained trunk (safetensors or torch state dict); loaded and frozen


@dataclass
class FusionConfig:
    embed_dim: int = 768          # E
    depth: int = 2
    heads: int = 8
    mlp_ratio: float = 4.0
    # trunc-normal std of the ViT/head Linear weights: 0.01 as POSTER++ (note §5) at E = 768. At
    # tiny widths 0.01 starves the cls token of image signal: tiny stage 1 stayed at ln 7 for 85+ steps.
    init_std: float = 0.01


@dataclass
class DiffusionConfig:
    timesteps: int = 4
    linear_start: float = 0.1
    linear_end: float = 0.99
    schedule: str = "sqrt_linear"     # sqrt_linear (DiffIR "linear") | linear
    parameterization: str = "x0"      # x0 (DiffIR) | eps (textbook Eq. 16)
    insert_noise_train: bool = True   # sigma_t * eps after each training reverse step with k > 0
    insert_noise_eval: bool = False
    train_chain_start: str = "q_sample"  # q_sample (Eq. 14 at t = T, DiffIR) | pure_noise
    n_samples_eval: int = 1           # average logits over this many Z_T draws at inference
    eval_seed: int = 0                # seed of the inference Z_T generator


@dataclass
class StageConfig:
    stage0_epochs: int = 60
    stage1_epochs: int = 200
    warmup_epochs: int = 20           # phase 2a
    joint_epochs: int = 180           # phase 2b
    use_diffusion: bool = True        # False: V1 (Z_hat = PNET_s2(x) directly)
    kl_weight: float = 0.0            # phase-2b lambda_kl (V4: 0)
    abs_weight: float = 0.0           # phase-2b lambda_abs
    warmup_kl_weight: float = 1.0
    warmup_abs_weight: float = 1.0
    # phase 2a + λ·CE(LLformer(x, Ẑ), y) through the frozen stage-1 LLformer (issue 17): KL + L1 alone
    # regress Ẑ onto label-coded targets and Ẑ settles at their mean (spread 0.015 vs Z's 0.50 after
    # 6 epochs); the frozen LLformer, which decodes Z perfectly, turns CE into a classification signal
    # for PNET_s2 + denoiser. 0 = the note's 2a.
    warmup_ce_weight: float = 0.0
    kl_temperature: float = 0.15
    warmup_lr_drop_at: float = 0.6    # phase 2a: lr x0.1 after this fraction of the phase


@dataclass
class LLDifConfig:
    image_size: int = 112
    epd_dim: int = 256                # C
    text: TextConfig = field(default_factory=TextConfig)
    laclip: LAClipConfig = field(default_factory=LAClipConfig)
    pnet_s1: PNetS1Config = field(default_factory=PNetS1Config)
    pnet_s2: PNetS2Config = field(default_factory=PNetS2Config)
    dtnet: DTNetConfig = field(default_factory=DTNetConfig)
    dlnet: DLNetConfig = field(default_factory=DLNetConfig)
    landmark: LandmarkConfig = field(default_factory=LandmarkConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    stages: StageConfig = field(default_factory=StageConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS: dict[str, dict[str, Any]] = {
    "base": {},
    "small": {"fusion": {"embed_dim": 384, "heads": 6}},
    # Not in the note: the note's structure (every part) at smaller widths/depths, sized for issue 4's
    # goal "training cost per image <= 3x ResNet-18's" that `base` (~12x) cannot meet (note §7).
    "fast": {
        "pnet_s2": {"n_feats": 16, "n_res": 2},
        "dtnet": {"widths": (24, 48, 96), "heads": (1, 2, 4), "enc_blocks": (1, 2, 2), "dec_blocks": (1, 1)},
        "dlnet": {"dims": (32, 64, 128), "heads": (1, 2, 4)},
        "fusion": {"embed_dim": 192, "depth": 2, "heads": 4},
    },
    # Issue 17: every part of the architecture at CPU cost (<= 3x ResNet-18's training wall time per image
    # at the same input size, benchmarks/bench_lldif.py), sized for the demo's 56 px: the stem stride 2
    # puts DTNet level 1 at S/2 (28² at 56 px) so the internal grids shrink with the input (F1..F3 at
    # 14/7/4, one DLNet window per scale, 28² heatmaps) instead of staying at the note's 56/28/14/7;
    # LA-CLIP keeps the note's ResNet-18 trunk and PNET_s2 reads its frozen embeddings (A22): on the demo's
    # data the 3-conv LA-CLIP trunk stayed at the majority class through stage 0 and a pixel-only PNET_s2
    # never left it (14 epochs of plain CE, with or without BatchNorm), so Ẑ could carry no label
    # information; LA-CLIP's ResNet-18 reached 68.5% zero-shot after 6 stage-0 epochs (README, issue 17).
    "cpu": {
        "laclip": {"trunk": "resnet18"},
        "pnet_s2": {"n_feats": 16, "n_res": 2, "grid": 14, "use_laclip_image": True},
        "dtnet": {"widths": (16, 32, 64), "heads": (1, 2, 4), "enc_blocks": (1, 2, 2), "dec_blocks": (1, 1),
                  "stem_stride": 2},
        "dlnet": {"dims": (32, 64, 128), "heads": (1, 2, 4), "windows": (0, 0, 0)},
        # init std 0.05: with 0.01 (POSTER++ at E = 768) the E = 128 cls token barely sees the image
        # (stage-1 probe: 85% vs 61% train oracle accuracy after 40 steps of 32 images with 0.02)
        "fusion": {"embed_dim": 128, "depth": 2, "heads": 4, "init_std": 0.05},
        "stages": {"warmup_ce_weight": 1.0},
    },
    "tiny": {
        "epd_dim": 32,
        "text": {"kind": "hash", "dim": 32},
        "laclip": {"trunk": "small_cnn", "width": 32},
        "pnet_s1": {"dim": 32, "heads": 2},
        "pnet_s2": {"n_feats": 8, "n_res": 1},
        "dtnet": {"widths": (8, 16, 32), "heads": (1, 1, 2), "enc_blocks": (1, 1, 1), "dec_blocks": (1, 1)},
        "dlnet": {"dims": (16, 32, 64), "heads": (1, 2, 4)},
        "fusion": {"embed_dim": 64, "depth": 1, "heads": 2, "init_std": 0.1},
        "stages": {"stage0_epochs": 2, "stage1_epochs": 3, "warmup_epochs": 1, "joint_epochs": 3},
    },
}

# Table 5 (design note §3): all variants share stages 0-1 and warm-up 2a; they differ in phase 2b.
VARIANTS: dict[str, dict[str, Any]] = {
    "V1": {"stages": {"use_diffusion": False, "kl_weight": 0.0}},
    "V2": {"stages": {"kl_weight": 1.0}, "diffusion": {"insert_noise_train": True}},
    "V3": {"stages": {"kl_weight": 0.0}, "diffusion": {"insert_noise_train": False}},
    "V4": {"stages": {"kl_weight": 0.0}, "diffusion": {"insert_noise_train": True}},
    "V4-eq18": {"stages": {"kl_weight": 1.0}, "diffusion": {"insert_noise_train": True}},
    # V4 with the phase-2a pin kept in 2b (Eq. 18 plus DiffIR's L1): Ẑ stays tied to the teacher's Z
    "V4-pin": {"stages": {"kl_weight": 1.0, "abs_weight": 1.0}, "diffusion": {"insert_noise_train": True}},
}


# Settings that stages 0 and 1 never read, by the first stage that reads them: two configs that differ
# only in these compute stages 0-1 identically (same data and seed), and 2a too when none of the
# differing keys is read from 2a on (Table 5's variants and the T sweep branch from finished stages).
PHASE2_KEYS: dict[str, tuple[str, ...]] = {
    "2a": ("diffusion.", "stages.use_diffusion", "stages.warmup_"),
    "2b": ("stages.kl_weight", "stages.abs_weight", "stages.joint_epochs"),
}


def _read_from(key: str, stage: str) -> bool:
    return key.startswith(PHASE2_KEYS[stage])


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def shared_stages(a: LLDifConfig, b: LLDifConfig) -> tuple[str, ...]:
    """The leading stages two configs compute identically (same data and seed assumed): all four when
    equal; none unless they differ only in :data:`PHASE2_KEYS`; else 0 and 1, and 2a when every
    differing key is first read in 2b."""
    flat_a, flat_b = _flat(a.to_dict()), _flat(b.to_dict())
    differing = {k for k in flat_a if flat_a[k] != flat_b.get(k)}
    if not differing:
        return ("0", "1", "2a", "2b")
    if not all(_read_from(k, "2a") or _read_from(k, "2b") for k in differing):
        return ()
    return ("0", "1") if any(_read_from(k, "2a") for k in differing) else ("0", "1", "2a")


def _merge(node: Any, overrides: dict[str, Any], path: str) -> Any:
    if not dataclasses.is_dataclass(node):
        raise UserError(f"LLDif config: {path or 'root'} is a value, not a section")
    names = {f.name: f for f in dataclasses.fields(node)}
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        key = str(key).replace("-", "_")
        if key not in names:
            raise UserError(
                f"unknown LLDif config key {path + key!r}; valid keys here: {', '.join(sorted(names))}"
            )
        current = getattr(node, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise UserError(f"LLDif config: {path + key} is a section; give a mapping, got {value!r}")
            changes[key] = _merge(current, value, f"{path}{key}.")
        else:
            if isinstance(current, tuple):
                if not isinstance(value, (list, tuple)) or len(value) != len(current):
                    raise UserError(
                        f"LLDif config: {path + key} needs {len(current)} values, got {value!r}"
                    )
                value = tuple(value)
            changes[key] = value
    return dataclasses.replace(node, **changes)


def resolve_config(preset: str = "base", variant: str | None = None,
                   overrides: dict[str, Any] | None = None) -> LLDifConfig:
    """Preset → variant → overrides, each a nested dict merged onto the dataclass tree."""
    if preset not in PRESETS:
        raise UserError(f"unknown LLDif config {preset!r}; available: {', '.join(PRESETS)}")
    if variant is not None and variant not in VARIANTS:
        raise UserError(f"unknown LLDif variant {variant!r}; available: {', '.join(VARIANTS)}")
    cfg = _merge(LLDifConfig(), PRESETS[preset], "")
    if variant is not None:
        cfg = _merge(cfg, VARIANTS[variant], "")
    if overrides:
        cfg = _merge(cfg, overrides, "")
    validate(cfg)
    return cfg


def config_from_dict(data: dict[str, Any]) -> LLDifConfig:
    """Rebuild a config saved with :meth:`LLDifConfig.to_dict` (e.g. from checkpoint metadata)."""
    cfg = _merge(LLDifConfig(), data, "")
    validate(cfg)
    return cfg


def level1_side(cfg: LLDifConfig) -> int:
    """The DTNet's level-1 side g = image_size / stem stride (56 with the note's stride S/56)."""
    stride = cfg.dtnet.stem_stride or cfg.image_size // 56
    return cfg.image_size // stride


def grid_sizes(cfg: LLDifConfig) -> tuple[int, int, int]:
    """Sides of F1, F2, F3 (and of O1..O3, the landmark maps): g/2, g/4, ceil(g/8); 28/14/7 at g = 56."""
    g = level1_side(cfg)
    return g // 2, g // 4, -(-g // 8)


def validate(cfg: LLDifConfig) -> None:
    if cfg.image_size % 56 != 0:
        raise UserError(f"LLDif image_size must be a multiple of 56 (112 or 224), got {cfg.image_size}")
    stride = cfg.dtnet.stem_stride or cfg.image_size // 56
    if stride < 1 or cfg.image_size % stride or (cfg.image_size // stride) % 4 or cfg.image_size // stride < 16:
        raise UserError(f"dtnet.stem_stride {cfg.dtnet.stem_stride} must divide image_size {cfg.image_size} "
                        "into a level-1 side that is a multiple of 4 and at least 16")
    if cfg.image_size % cfg.pnet_s2.grid:
        raise UserError(f"pnet_s2.grid {cfg.pnet_s2.grid} must divide image_size {cfg.image_size}")
    g = level1_side(cfg)
    if cfg.dlnet.enabled and cfg.landmark.heatmap_size not in (0, g):
        raise UserError(f"landmark.heatmap_size must equal the DTNet level-1 side {g} "
                        f"(image_size / stem stride), got {cfg.landmark.heatmap_size}")
    for size, window in zip(grid_sizes(cfg), cfg.dlnet.windows):
        if window and size % window:
            raise UserError(f"dlnet.windows {cfg.dlnet.windows} must divide the feature grids {grid_sizes(cfg)}")
    if cfg.diffusion.timesteps < 1:
        raise UserError("diffusion.timesteps must be >= 1")
    for name, dim, heads in (("pnet_s1", cfg.pnet_s1.dim, cfg.pnet_s1.heads),
                             ("fusion", cfg.fusion.embed_dim, cfg.fusion.heads)):
        if dim % heads:
            raise UserError(f"{name}: width {dim} is not divisible by {heads} heads")
    for level, (w, h) in enumerate(zip(cfg.dtnet.widths, cfg.dtnet.heads), 1):
        if w % h:
            raise UserError(f"dtnet level {level}: width {w} is not divisible by {h} heads")
    for level, (d, h) in enumerate(zip(cfg.dlnet.dims, cfg.dlnet.heads), 1):
        if d % h:
            raise UserError(f"dlnet scale {level}: dim {d} is not divisible by {h} heads")
