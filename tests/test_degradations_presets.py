"""Presets, reproducible sampling and Lightroom XMP import."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from degradations import BUILTIN_PRESETS, degrade_batch_uint8, load_preset
from degradations.numerics import np_linear_to_srgb, np_srgb_to_linear
from degradations.xmp import parse_xmp
from lldif_bench.errors import UserError

LIGHTROOM_PRESET = """<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="Adobe XMP Core 7.0-c000 1.000000">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/"
   crs:PresetType="Normal"
   crs:Cluster=""
   crs:UUID="0F6C1D5B0A7B4B8E9D3E1A2B3C4D5E6F"
   crs:SupportsAmount="False"
   crs:SupportsColor="True"
   crs:SupportsMonochrome="True"
   crs:SupportsHighDynamicRange="True"
   crs:SupportsNormalDynamicRange="True"
   crs:SupportsSceneReferredProfiles="False"
   crs:SupportsOutputReferred="False"
   crs:CameraModelRestriction=""
   crs:Copyright=""
   crs:ContactInfo=""
   crs:Version="15.4"
   crs:ProcessVersion="11.0"
   crs:WhiteBalance="Custom"
   crs:IncrementalTemperature="-15"
   crs:IncrementalTint="+5"
   crs:Exposure2012="-2.50"
   crs:Contrast2012="+10"
   crs:Highlights2012="-60"
   crs:Shadows2012="-30"
   crs:Whites2012="0"
   crs:Blacks2012="-5"
   crs:HasSettings="True">
   <crs:Name>
    <rdf:Alt>
     <rdf:li xml:lang="x-default">Night walk</rdf:li>
    </rdf:Alt>
   </crs:Name>
   <crs:ToneCurvePV2012>
    <rdf:Seq>
     <rdf:li>0, 0</rdf:li>
     <rdf:li>255, 255</rdf:li>
    </rdf:Seq>
   </crs:ToneCurvePV2012>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"""

ELEMENT_FORM = """<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/">
   <crs:ProcessVersion>11.0</crs:ProcessVersion>
   <crs:WhiteBalance>Custom</crs:WhiteBalance>
   <crs:IncrementalTemperature>-15</crs:IncrementalTemperature>
   <crs:IncrementalTint>+5</crs:IncrementalTint>
   <crs:Exposure2012>-2.50</crs:Exposure2012>
   <crs:Contrast2012>+10</crs:Contrast2012>
   <crs:Highlights2012>-60</crs:Highlights2012>
   <crs:Shadows2012>-30</crs:Shadows2012>
   <crs:Whites2012>0</crs:Whites2012>
   <crs:Blacks2012>-5</crs:Blacks2012>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"""


def xmp_with(**attrs: str) -> str:
    body = " ".join(f'crs:{k}="{v}"' for k, v in attrs.items())
    return ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
            'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
            f'xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/" {body}/></rdf:RDF></x:xmpmeta>')


# ------------------------------------------------------------------ sampling

def test_builtin_presets_exist_and_serialise():
    assert {"paper", "paper-fixed", "paper-kosugi", "realistic"} <= set(BUILTIN_PRESETS.names())
    for name in BUILTIN_PRESETS.names():
        p = load_preset(name)
        d = json.loads(json.dumps(p.to_dict()))
        assert d["name"] == name and d["options"]["flavor"] in ("lrlike", "kosugi")
        s = p.sample(0, "train/x.jpg")
        assert json.loads(json.dumps(s)) == s
        assert "jpeg_quality" in s and "noise_seed" in s


def test_sampling_is_deterministic_per_key_and_seed():
    p = load_preset("realistic")
    a = p.sample(3, "train/img_001.jpg")
    assert a == p.sample(3, "train/img_001.jpg")
    assert a != p.sample(4, "train/img_001.jpg")
    assert a["exposure_ev"] != p.sample(3, "train/img_002.jpg")["exposure_ev"]
    # order/batching cannot matter: the value depends on (seed, key) only
    keys = [f"k{i}" for i in range(20)]
    forward = [p.sample(1, k) for k in keys]
    backward = [p.sample(1, k) for k in reversed(keys)][::-1]
    assert forward == backward


def test_sampled_values_lie_in_preset_ranges():
    p = load_preset("realistic")
    samples = [p.sample(0, f"img{i}") for i in range(300)]
    ev = np.array([s["exposure_ev"] for s in samples])
    assert ev.min() >= -4.5 and ev.max() <= -1.5 and ev.std() > 0.5
    q = {s["jpeg_quality"] for s in samples}
    assert min(q) >= 60 and max(q) <= 95 and all(isinstance(v, int) for v in q)
    shot = np.array([s["noise_shot"] for s in samples])
    assert shot.min() >= 2e-4 and shot.max() <= 4e-3
    assert all(s["noise_read"] > 0 for s in samples)


def test_switching_a_parameter_off_keeps_other_draws(tmp_path):
    base = load_preset("paper")
    f = tmp_path / "no_wb.yaml"
    f.write_text("params:\n  exposure_ev: [-4.0, -2.0]\n  highlights: [-70, -20]\n  shadows: [-50, 0]\n")
    other = load_preset(f)
    a, b = base.sample(9, "x.png"), other.sample(9, "x.png")
    assert a["exposure_ev"] == b["exposure_ev"] and a["shadows"] == b["shadows"]
    assert "d_temp" not in b and b["wb_mode"] == "none"


@pytest.mark.parametrize("name", ["paper", "paper-kosugi"])
def test_paper_presets_give_a_dark_histogram(name):
    """Fig. 1 property: most pixels at the dark end (design note section 6.2)."""
    g = torch.Generator().manual_seed(0)
    clear = torch.clamp(torch.normal(0.45, 0.2, (16, 3, 12, 12), generator=g), 0, 1)
    clear = torch.nn.functional.interpolate(clear, size=(48, 48), mode="bilinear")
    x = (clear * 255).round().to(torch.uint8)
    p = load_preset(name)
    out = degrade_batch_uint8(x, [p.sample(0, f"{i}.png") for i in range(16)], preset=p).float() / 255
    luma = out[:, 0] * 0.2126 + out[:, 1] * 0.7152 + out[:, 2] * 0.0722
    assert 0.05 <= float(luma.mean()) <= 0.25
    assert float((luma < 0.25).float().mean()) >= 0.8


# ------------------------------------------------------------------ user files

def test_user_yaml_and_json_presets(tmp_path):
    y = tmp_path / "mine.yaml"
    y.write_text("name: mine\nflavor: kosugi\nparams:\n  exposure_ev: {uniform: [-3, -1]}\n"
                 "  d_temp: -20\n  jpeg_quality: {choice: [70, 90]}\n")
    p = load_preset(y)
    assert p.name == "mine" and p.flavor == "kosugi" and p.sha256
    s = p.sample(0, "a")
    assert -3 <= s["exposure_ev"] <= -1 and s["d_temp"] == -20 and s["jpeg_quality"] in (70, 90)
    j = tmp_path / "mine.json"
    j.write_text(json.dumps({"params": {"highlights": [-50, -10]}, "options": {"radius_frac": 0}}))
    assert load_preset(j).options.radius_frac == 0


@pytest.mark.parametrize("text,match", [
    ("params:\n  exposur_ev: -1\n", "unknown parameter"),
    ("params:\n  exposure_ev: [-9, -1]\n", "leaves the allowed"),
    ("params:\n  exposure_ev: {gauss: [0, 1]}\n", "unknown distribution"),
    ("params:\n  exposure_ev: [-1, -3]\n", "above high"),
    ("params:\n  d_temp: 5\n  temperature_k: 5000\n", "not both"),
    ("flavor: darkroom\n", "flavour"),
    ("colour: red\n", "unknown key"),
    ("params: [1, 2]\n", "mapping"),
    ("params:\n  jpeg_quality: [60.5, 90]\n", "integer"),
    ("params: {exposure_ev: -1\n", "cannot parse"),
])
def test_bad_user_presets_are_user_errors(tmp_path, text, match):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(UserError, match=match):
        load_preset(f)


def test_unknown_preset_name_lists_builtins():
    with pytest.raises(UserError, match="paper"):
        load_preset("no-such-preset")


# ------------------------------------------------------------------ XMP

def test_real_lightroom_preset_shape(tmp_path, caplog):
    f = tmp_path / "night.xmp"
    f.write_text(LIGHTROOM_PRESET)
    with caplog.at_level(logging.WARNING, logger="degradations"):
        p = load_preset(f)
    assert p.name == "Night walk"
    s = p.sample(0, "any.jpg")
    assert s["exposure_ev"] == -2.5 and s["highlights"] == -60 and s["shadows"] == -30
    assert s["d_temp"] == -15 and s["d_tint"] == 5 and s["wb_mode"] == "incremental"
    ignored = p.to_dict()["xmp"]["ignored_tags"]
    assert set(ignored) == {"Contrast2012", "Whites2012", "Blacks2012", "ToneCurvePV2012"}
    assert "Contrast2012=+10" in caplog.text and "ignored 2 unsupported" in caplog.text
    assert "Whites2012" not in caplog.text and "2 more at their neutral value" in caplog.text
    assert "PresetType" not in ignored and "UUID" not in ignored


# what a Lightroom sidecar of a barely edited photo holds: mostly sliders at zero, detail sliders at
# their defaults while their master slider is off, and a few real edits
SIDECAR_NEUTRAL = {
    "Contrast2012": "0", "Whites2012": "0", "Blacks2012": "0", "Texture": "0", "Dehaze": "0", "Saturation": "0",
    "ParametricShadows": "0", "ParametricHighlights": "0", "HueAdjustmentRed": "0", "SaturationAdjustmentBlue": "0",
    "SplitToningShadowHue": "0", "Sharpness": "0", "SharpenRadius": "+1.0", "SharpenDetail": "25",
    "LuminanceSmoothing": "0", "LuminanceNoiseReductionDetail": "50", "ColorNoiseReduction": "0",
    "ColorNoiseReductionDetail": "50", "GrainAmount": "0", "GrainSize": "25", "GrainFrequency": "50",
    "PostCropVignetteAmount": "0", "PostCropVignetteMidpoint": "50", "HasCrop": "False", "CropRight": "1",
    "CropBottom": "1", "CropAngle": "0", "ToneCurveName2012": "Linear", "PerspectiveScale": "100",
    "ConvertToGrayscale": "False", "LensProfileEnable": "0", "LensProfileSetup": "LensDefaults",
}


def test_warning_lists_only_ignored_settings_that_change_the_image(caplog):
    from degradations.xmp import is_neutral

    tags = dict(SIDECAR_NEUTRAL, Clarity2012="+20", Vibrance="+15", ProcessVersion="11.0", Exposure2012="-1")
    settings = parse_xmp(xmp_with(**tags).encode())
    assert set(settings.ignored_tags) == set(SIDECAR_NEUTRAL) | {"Clarity2012", "Vibrance"}  # all recorded
    (warning,) = [w for w in settings.warnings if "ignored" in w]
    assert "ignored 2 unsupported" in warning and "Clarity2012=+20, Vibrance=+15" in warning
    assert f"{len(SIDECAR_NEUTRAL)} more at their neutral value" in warning
    assert not is_neutral("SharpenDetail", "25", {"Sharpness": "40"})  # active once sharpening is on
    assert is_neutral("ToneCurvePV2012", "0, 0; 128, 128; 255, 255", {})
    assert not is_neutral("ToneCurvePV2012", "0, 0; 128, 150; 255, 255", {})


def test_attribute_and_element_forms_parse_the_same():
    a = parse_xmp(LIGHTROOM_PRESET.encode())
    b = parse_xmp(ELEMENT_FORM.encode())
    assert a.params == b.params and a.wb_mode == b.wb_mode
    assert set(b.ignored_tags) == {"Contrast2012", "Whites2012", "Blacks2012"}


def test_xmp_white_balance_modes():
    assert parse_xmp(xmp_with(ProcessVersion="11.0", WhiteBalance="As Shot",
                              IncrementalTemperature="20").encode()).wb_mode == "none"
    auto = parse_xmp(xmp_with(ProcessVersion="11.0", WhiteBalance="Auto").encode())
    assert auto.wb_mode == "none" and any("Auto" in w for w in auto.warnings)
    absolute = parse_xmp(xmp_with(ProcessVersion="11.0", WhiteBalance="Custom", Temperature="3200",
                                  Tint="+12").encode())
    assert absolute.wb_mode == "absolute" and absolute.params["temperature_k"] == 3200


def test_xmp_rejects_old_process_versions_and_bad_values():
    with pytest.raises(UserError, match="predates process 2012"):
        parse_xmp(xmp_with(ProcessVersion="5.7", Exposure="-1.0").encode())
    with pytest.raises(UserError, match="not a number"):
        parse_xmp(xmp_with(ProcessVersion="11.0", Exposure2012="dark").encode())
    with pytest.raises(UserError, match="outside"):
        parse_xmp(xmp_with(ProcessVersion="11.0", Exposure2012="-7").encode())
    with pytest.raises(UserError, match="no Camera Raw settings"):
        parse_xmp(b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/>')
    assert any("ProcessVersion" in w for w in parse_xmp(xmp_with(Exposure2012="+0.50").encode()).warnings)
    assert parse_xmp(xmp_with(Exposure2012="+0.50").encode()).params["exposure_ev"] == 0.5


@pytest.mark.parametrize("payload", [
    # billion laughs
    (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
     b'<x:xmpmeta xmlns:x="adobe:ns:meta/">&lol2;</x:xmpmeta>'),
    # external entity
    (b'<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
     b'<x:xmpmeta xmlns:x="adobe:ns:meta/">&xxe;</x:xmpmeta>'),
    # any DTD at all
    b'<?xml version="1.0"?><!DOCTYPE x:xmpmeta SYSTEM "http://example.com/x.dtd"><x:xmpmeta xmlns:x="adobe:ns:meta/"/>',
    # not XML
    b"<x:xmpmeta><unclosed>",
])
def test_hostile_or_broken_xml_is_a_user_error(tmp_path, payload):
    f = tmp_path / "evil.xmp"
    f.write_bytes(payload)
    with pytest.raises(UserError):
        load_preset(f)


def test_xmp_exposure_minus_one_halves_linear_light_of_a_flat_image(tmp_path):
    """Done-when: flat v through an XMP with only Exposure2012=-1.00 -> sRGB(0.5 linear(v))."""
    f = tmp_path / "minus1.xmp"
    f.write_text(xmp_with(ProcessVersion="11.0", Exposure2012="-1.00"))
    p = load_preset(f)
    levels = np.arange(0, 256, 5)
    x = torch.from_numpy(np.repeat(levels, 3 * 8 * 8).reshape(len(levels), 3, 8, 8).astype(np.uint8))
    out = degrade_batch_uint8(x, [p.sample(0, f"{v}.png") for v in levels], preset=p)
    expected = np_linear_to_srgb(0.5 * np_srgb_to_linear(levels / 255.0)) * 255
    got = out.double().mean(dim=(1, 2, 3)).numpy()
    assert np.abs(got - expected).max() <= 1.0
    assert bool((out == out[:, :1, :1, :1]).all())  # still flat and neutral
