"""Every registered method trains on a tiny separable fixture, predicts without labels, has a recipe.

timm-style: a new method is covered by registering it.
"""

from __future__ import annotations

import pytest
import torch

import baselines  # noqa: F401  (registers the baseline methods)
from lldif_bench.methods import METHODS

# every method registered by the ``baselines`` package (LLDif, multi-stage, has its own tests)
NAMES = [n for n in METHODS.names() if METHODS.get(n).__module__.startswith("baselines.")]
RECIPE_KEYS = {"optimizer", "lr", "weight_decay", "epochs", "batch_size", "scheduler", "scheduler_params",
               "image_size"}
SIZE, NUM_CLASSES, PER_CLASS = 32, 3, 2
STEPS = 6


@pytest.fixture(autouse=True)
def one_thread():
    """The CI box has 2 shared cores; one intra-op thread avoids oversubscription."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def separable_batch(seed: int = 0) -> dict:
    """3 classes told apart by a colour-and-half-image pattern, with per-class landmark layouts."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(NUM_CLASSES).repeat_interleave(PER_CLASS)
    images = 0.3 * torch.randn(len(labels), 3, SIZE, SIZE, generator=g)
    for i, y in enumerate(labels.tolist()):
        images[i, y] += 1.5
        images[i, :, : SIZE // 2 if y == 1 else SIZE] += 0.5 * (y - 1)
    base = torch.rand(68, 2, generator=g) * (SIZE - 1)
    landmarks = torch.stack([(base + 6 * y) % (SIZE - 1) for y in labels.tolist()])
    return {"image": images, "label": labels, "index": torch.arange(len(labels)), "landmarks": landmarks,
            "epoch": 0}


def build(name: str, num_train: int = NUM_CLASSES * PER_CLASS):
    return METHODS.get(name)(NUM_CLASSES, num_train=num_train, pretrained=None, image_size=SIZE)


@pytest.mark.parametrize("name", NAMES)
def test_method_trains_and_predicts_without_labels(name):
    torch.manual_seed(0)
    model = build(name)
    batch = separable_batch()
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-4)
    losses = []
    for _ in range(STEPS):
        model.train()
        out = model(batch)
        assert out["logits"].shape == (len(batch["label"]), NUM_CLASSES)
        loss, logs = model.loss(out, batch)
        assert loss.ndim == 0 and torch.isfinite(loss)
        assert all(isinstance(v, float) for v in logs.values())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2, losses

    model.eval()
    images, landmarks = batch["image"], batch["landmarks"] if model.needs_landmarks else None
    with torch.no_grad():
        logits = model.predict(images, landmarks)            # no label anywhere
        feats = model.features(images, landmarks)
    assert logits.shape == (len(images), NUM_CLASSES) and torch.isfinite(logits).all()
    assert feats.ndim == 2 and feats.shape[0] == len(images) and torch.isfinite(feats).all()


@pytest.mark.parametrize("name", NAMES)
def test_method_declares_its_paper_recipe(name):
    builder = METHODS.get(name)
    assert RECIPE_KEYS <= set(builder.DEFAULTS)
    assert builder.DEFAULTS["lr"] > 0 and builder.DEFAULTS["epochs"] > 0
    assert METHODS.help(name)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_option_is_a_clear_error(name):
    from lldif_bench.errors import UserError

    with pytest.raises(UserError, match="no option"):
        METHODS.get(name)(NUM_CLASSES, num_train=4, pretrained=None, image_size=SIZE, bogus_option=1)


def test_param_groups_cover_every_trainable_parameter():
    model = build("rul")
    groups = model.param_groups(2e-4)
    assert sorted(g["lr"] for g in groups) == pytest.approx([2e-4, 2e-3])
    assert sum(len(g["params"]) for g in groups) == sum(1 for p in model.parameters() if p.requires_grad)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_method_at_paper_resolution(name):
    """224×224 (every baseline's paper input): the hard-coded 7×7 / 25,088 / 11×11 shapes hold."""
    torch.manual_seed(0)
    model = METHODS.get(name)(7, num_train=4, pretrained=None)
    batch = {"image": torch.randn(2, 3, 224, 224), "label": torch.tensor([0, 6]), "index": torch.arange(2),
             "landmarks": torch.rand(2, 68, 2) * 223, "epoch": 12}
    loss, _ = model.loss(model.train()(batch), batch)
    loss.backward()
    assert torch.isfinite(loss)
    widths = {"rul": lambda m: m.mu[3].in_features, "dacl": lambda m: m.attention[0].in_features}
    if name in widths:
        assert widths[name](model) == 512 * 7 * 7
    with torch.no_grad():
        assert model.eval().predict(batch["image"], batch["landmarks"]).shape == (2, 7)
