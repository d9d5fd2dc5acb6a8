"""The shared ResNet-18 trunk and its checkpoint loader: layouts, reports, clear failures, no network."""

from __future__ import annotations

import socket
import urllib.request

import pytest
import torch
import torchvision

from baselines.backbone import (
    IMAGENET_FILES,
    IMAGENET_URL,
    ResNet18Trunk,
    build_trunk,
    load_trunk_weights,
)
from lldif_bench.errors import UserError
from lldif_bench.methods import METHODS


@pytest.fixture(scope="module")
def torchvision_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return torchvision.models.resnet18(weights=None).state_dict()


def assert_trunk_equals(trunk: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    for key, value in trunk.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_trunk_shapes_and_torchvision_names():
    out = ResNet18Trunk()(torch.zeros(1, 3, 64, 64))
    assert [m.shape[1] for m in out.maps] == [64, 128, 256, 512] and out.pooled.shape == (1, 512)
    names = set(torchvision.models.resnet18(weights=None).state_dict())
    assert set(ResNet18Trunk().state_dict()) == {k for k in names if not k.startswith("fc.")}
    assert len(ResNet18Trunk(num_stages=2)(torch.zeros(1, 3, 32, 32)).maps) == 2


def test_module_prefixed_state_dict_loads_fully(tmp_path, torchvision_state):
    path = tmp_path / "resnet18_msceleb.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in torchvision_state.items()}, "epoch": 3}, path)
    trunk = build_trunk(str(path))
    report = trunk.init_report
    assert report.fraction == 1.0 and not report.missing and not report.mismatched
    assert set(report.unexpected) == {"fc.weight", "fc.bias"}
    assert_trunk_equals(trunk, torchvision_state)


def test_dream_and_scn_layouts_load(tmp_path, torchvision_state):
    dream = {f"module.{k}": v for k, v in torchvision_state.items() if not k.startswith("fc.")}
    dream.update({"module.feature.weight": torch.zeros(256, 512), "module.fc.weight": torch.zeros(50, 256)})
    torch.save({"state_dict": dream, "arch": "resnet18"}, tmp_path / "ijba_res18_naive.pth.tar")
    report = load_trunk_weights(ResNet18Trunk(), tmp_path / "ijba_res18_naive.pth.tar")
    assert report.fraction == 1.0 and "feature.weight" in report.unexpected

    index = {"conv1": "0", "bn1": "1", "layer1": "4", "layer2": "5", "layer3": "6", "layer4": "7"}
    scn = {f"features.{index[k.split('.')[0]]}.{k.split('.', 1)[1]}": v
           for k, v in torchvision_state.items() if not k.startswith("fc.")}
    torch.save({"state_dict": scn}, tmp_path / "scn.pth")
    trunk = ResNet18Trunk()
    report = load_trunk_weights(trunk, tmp_path / "scn.pth")
    assert report.layout == "scn-features" and report.fraction == 1.0
    assert_trunk_equals(trunk, torchvision_state)


def test_partial_stem_reports_the_rest_as_unexpected(tmp_path, torchvision_state):
    torch.save(torchvision_state, tmp_path / "r18.pth")
    trunk = build_trunk(str(tmp_path / "r18.pth"), num_stages=2)
    assert trunk.init_report.fraction == 1.0
    assert any(k.startswith("layer3.") for k in trunk.init_report.unexpected)


@pytest.mark.parametrize("arch", ["resnet50", "resnet34"])
def test_mismatched_file_fails_with_a_clear_error(tmp_path, arch):
    path = tmp_path / f"{arch}.pth"
    torch.save(getattr(torchvision.models, arch)(weights=None).state_dict(), path)
    with pytest.raises(UserError, match="does not fit the ResNet-18 trunk") as err:
        build_trunk(str(path))
    assert "resnet18_msceleb.pth" in str(err.value) and "loaded" in str(err.value)


def test_mostly_missing_file_fails(tmp_path, torchvision_state):
    half = {k: v for i, (k, v) in enumerate(torchvision_state.items()) if i % 2}
    torch.save(half, tmp_path / "half.pth")
    with pytest.raises(UserError, match="95 %"):
        build_trunk(str(tmp_path / "half.pth"))


def test_unreadable_or_missing_files_fail_clearly(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        build_trunk(str(tmp_path / "nope.pth"))
    with pytest.raises(UserError, match="resnet18_msceleb.pth"):
        build_trunk("msceleb")
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read checkpoint"):
        build_trunk(str(tmp_path / "bad.pth"))


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def test_imagenet_absent_is_a_clear_error_without_network(tmp_path, monkeypatch, no_network):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(UserError) as err:
        build_trunk("imagenet")
    message = str(err.value)
    assert IMAGENET_FILES[0] in message and IMAGENET_URL in message
    assert str(tmp_path / "hub" / "checkpoints") in message and "--pretrained PATH" in message


def test_imagenet_cached_file_is_used(tmp_path, monkeypatch, no_network, torchvision_state):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    torch.save(torchvision_state, tmp_path / "checkpoints" / IMAGENET_FILES[0])
    trunk = build_trunk("imagenet")
    assert trunk.init_report.fraction == 1.0
    assert_trunk_equals(trunk, torchvision_state)


def test_method_builders_pass_pretrained_through(tmp_path, torchvision_state):
    torch.save({"state_dict": torchvision_state}, tmp_path / "r18.pth")
    model = METHODS.get("scn")(7, num_train=4, pretrained=str(tmp_path / "r18.pth"))
    assert model.init_report is not None and model.init_report.fraction == 1.0
    assert model.init_report.as_dict()["loaded"] == len(model.init_report.loaded)
    assert METHODS.get("resnet18")(7, num_train=4, pretrained="scratch").init_report is None
