"""On-device augmentation: determinism, identity, landmarks following flip and crop, erasing."""

from __future__ import annotations

import torch

from lldif_bench.training.augment import (
    IBUG68_MIRROR,
    augment_images,
    normalize,
    sample_params,
    transform_landmarks,
)
from lldif_bench.training.config import AugmentConfig


def test_same_generator_same_batch_and_identity_when_off():
    x = torch.rand(6, 3, 24, 24)
    cfg = AugmentConfig(jitter_p=1.0, hue=0.1)
    a = augment_images(x, sample_params(6, 24, cfg, torch.Generator().manual_seed(3)))
    b = augment_images(x, sample_params(6, 24, cfg, torch.Generator().manual_seed(3)))
    assert torch.equal(a, b) and not torch.allclose(a, normalize(x))
    off = AugmentConfig(hflip=0, crop_p=0, erase_p=0, jitter_p=0)
    assert torch.allclose(augment_images(x, sample_params(6, 24, off, torch.Generator())), normalize(x), atol=1e-6)
    # the slice of a global batch's parameters is what a DDP rank applies
    p = sample_params(6, 24, cfg, torch.Generator().manual_seed(3))
    assert torch.equal(augment_images(x[2:4], p[2:4]), a[2:4])


def test_landmarks_follow_the_crop_and_the_flip():
    size = 32
    x = torch.zeros(8, 3, size, size)
    pts = torch.zeros(8, 68, 2)
    pts[:, 36] = torch.tensor([8.0, 12.0])   # a bright dot at landmark 36 (an eye corner)
    x[:, :, 12, 8] = 1.0
    p = sample_params(8, size, AugmentConfig(hflip=0.5, crop_p=1.0, crop_scale=(0.6, 0.9), erase_p=0),
                      torch.Generator().manual_seed(1))
    y = augment_images(x, p)
    moved = transform_landmarks(pts, p, size)
    for i in range(8):
        k = 45 if p.flip[i] else 36            # the mirrored point takes the mirror index
        col, row = moved[i, k].round().long().tolist()
        brightest = int(y[i, 0].argmax())
        assert divmod(brightest, size) in {(row + dr, col + dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)}
    assert sorted(IBUG68_MIRROR) == list(range(68))


def test_erasing_sets_a_rectangle_to_the_mean_colour():
    x = torch.rand(4, 3, 20, 20)
    p = sample_params(4, 20, AugmentConfig(hflip=0, crop_p=0, erase_p=1.0), torch.Generator().manual_seed(0))
    y = augment_images(x, p)
    for i in range(4):
        x0, y0, x1, y1 = p.erase[i].tolist()
        assert (y[i, :, y0:y1, x0:x1] == 0).all()
        assert (x1 - x0) * (y1 - y0) >= 0.02 * 400 * 0.5
